//! `lemonade bench`: a load generator for a Lemonade server.
//!
//! It picks a product, restocks its ingredients for the whole run, then places exactly
//! `--orders` orders from `--concurrency` workers, each on its own keep-alive HTTP/1.1
//! connection, and reports throughput, latency percentiles and errors by code.
//!
//! The client is built to be cheap on CPU, since it shares the machine with the server:
//! hyper's HTTP/1 connection API directly, each connection driven by the worker task that
//! uses it, request bodies serialised once, TCP_NODELAY, per-worker counters merged at the end.
//!
//! ```no_run
//! # async fn cli(args: lemonade_bench::BenchArgs) -> anyhow::Result<()> {
//! let json = args.json;
//! let report = lemonade_bench::run(args).await?;
//! lemonade_bench::print_report(&report, json);
//! # Ok(()) }
//! ```

mod client;
mod report;
mod setup;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, Uri};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use client::error_code;
pub use report::{BenchReport, LatencyUs, print_report};

use client::{Conn, IDEMPOTENCY_KEY, Target};
use report::{RunInfo, Tally};

/// Places N orders against a Lemonade server and reports throughput and latency.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Base URL of the server (plain HTTP).
    #[arg(long, env = "LEMONADE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// How many orders to place in all (1 to 10,000,000: the stock a run restocks for must
    /// fit what the shop holds).
    #[arg(long, env = "LEMONADE_BENCH_ORDERS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub orders: u64,

    /// How many orders are in flight at once (one connection each).
    #[arg(long, env = "LEMONADE_BENCH_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// Print the report as one JSON object (and no progress bar).
    #[arg(long)]
    pub json: bool,

    /// Bearer token sent as `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "LEMONADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Product to order, by id or name (default: the first active product).
    #[arg(long, env = "LEMONADE_BENCH_PRODUCT")]
    pub product: Option<String>,

    /// Timeout of each request attempt, in milliseconds (1 to 600,000).
    #[arg(long, env = "LEMONADE_BENCH_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            url: "http://127.0.0.1:8080".into(),
            orders: 10_000,
            concurrency: 64,
            json: false,
            token: None,
            product: None,
            timeout_ms: 10_000,
        }
    }
}

/// A fresh idempotency key (UUIDv7: unique within the process, and sorted by time).
pub(crate) fn new_idempotency_key() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

/// What every worker shares.
struct Plan {
    target: Target,
    addr: SocketAddr,
    orders_uri: Uri,
    /// The order's JSON, serialised once.
    order_body: Bytes,
    orders: u64,
    /// Next order number to take; a worker stops once it reaches `orders`.
    next: AtomicU64,
    /// Orders answered (either way), for the progress bar.
    done: AtomicU64,
}

/// Runs the benchmark: finds the product, restocks, places the orders, and reports.
///
/// Fails (with the reason) only when the run cannot start: bad arguments, no server, no
/// product, a rejected restock. Failed orders are counted in the report, never returned as
/// errors.
pub async fn run(args: BenchArgs) -> anyhow::Result<BenchReport> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.timeout_ms == 0 {
        bail!("--timeout-ms must be at least 1");
    }
    let target = Target::new(&args.url, args.token.as_deref(), Duration::from_millis(args.timeout_ms))?;
    let addr = target.resolve().await?;

    let mut setup_conn: Option<Conn> = None;
    let product = setup::find_product(&target, addr, &mut setup_conn, args.product.as_deref()).await?;
    let product_id = setup::id_text(&product.id);
    if !product.active {
        bail!(
            "product {:?} ({product_id}) is not active: every order for it would be refused",
            product.name
        );
    }
    setup::restock(&target, addr, &mut setup_conn, &product, args.orders).await?;
    drop(setup_conn);

    let order_body = serde_json::to_vec(&serde_json::json!({
        "lines": [{"product_id": product.id, "quantity": 1}]
    }))
    .context("cannot serialise the order")?;
    let plan = Arc::new(Plan {
        orders_uri: target.uri("/api/v1/orders")?,
        target,
        addr,
        order_body: Bytes::from(order_body),
        orders: args.orders,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });

    let workers = u64::from(args.concurrency).min(args.orders.max(1)) as usize;
    let progress = progress_bar(args.orders, args.json);

    // Workers connect first; the clock starts once all have (or failed to).
    let start_line = Arc::new(tokio::sync::Barrier::new(workers + 1));
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let plan = Arc::clone(&plan);
        let start_line = Arc::clone(&start_line);
        handles.push(tokio::spawn(async move {
            let conn = tokio::time::timeout(plan.target.timeout(), Conn::connect(plan.addr))
                .await
                .ok()
                .and_then(Result::ok);
            start_line.wait().await;
            place_orders(&plan, conn).await
        }));
    }
    start_line.wait().await;
    let started = Instant::now();
    let ticker = (!progress.is_hidden()).then(|| {
        let plan = Arc::clone(&plan);
        let progress = progress.clone();
        progress.reset_elapsed();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                let done = plan.done.load(Ordering::Relaxed);
                progress.set_position(done);
                let secs = progress.elapsed().as_secs_f64();
                if secs > 0.0 {
                    progress.set_message(format!("{:.0} orders/s", done as f64 / secs));
                }
            }
        })
    });

    let mut tally = Tally::new();
    let mut lost = None;
    for handle in handles {
        match handle.await {
            Ok(worker) => tally.merge(worker),
            Err(e) => lost = Some(e),
        }
    }
    let elapsed = started.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    progress.finish_and_clear();
    if let Some(e) = lost {
        return Err(anyhow::Error::new(e).context("a bench worker failed"));
    }

    let info = RunInfo {
        url: plan.target.url.clone(),
        product_id,
        product_name: product.name,
        orders_requested: args.orders,
        concurrency: args.concurrency,
    };
    Ok(BenchReport::new(info, &tally, elapsed))
}

/// One worker: takes order numbers until all are taken, placing each on its connection.
async fn place_orders(plan: &Plan, mut conn: Option<Conn>) -> Tally {
    let mut tally = Tally::new();
    while plan.next.fetch_add(1, Ordering::Relaxed) < plan.orders {
        let key = new_idempotency_key();
        let make = || {
            let mut request = plan
                .target
                .request(Method::POST, plan.orders_uri.clone(), Some(plan.order_body.clone()));
            request.headers_mut().insert(&IDEMPOTENCY_KEY, key.clone());
            request
        };
        let started = Instant::now();
        let outcome = plan
            .target
            .send_with_retries(plan.addr, &mut conn, make, false, &mut tally.retries)
            .await;
        let latency = started.elapsed();
        match outcome {
            Ok(answer) if answer.status.as_u16() == 201 || answer.status.as_u16() == 202 => tally.record_ok(latency),
            Ok(answer) => tally.record_error(&error_code(answer.status, &answer.body), latency),
            Err(failure) => tally.record_error(failure.code(), latency),
        }
        plan.done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// A bar on stderr, hidden for `--json` or when stderr is not a terminal.
fn progress_bar(orders: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(orders), ProgressDrawTarget::stderr_with_hz(10));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} orders  {msg}  eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, FromArgMatches as _};

    use super::*;

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        let command = BenchArgs::augment_args(clap::Command::new("bench").no_binary_name(true));
        command.clone().debug_assert();
        let matches = command.try_get_matches_from(argv)?;
        BenchArgs::from_arg_matches(&matches)
    }

    #[test]
    fn bench_args_parse_every_flag() {
        let args = parse(&[
            "--url",
            "http://10.0.0.1:9000",
            "--orders",
            "500",
            "--concurrency",
            "8",
            "--json",
            "--token",
            "t",
            "--product",
            "Lemonade",
            "--timeout-ms",
            "250",
        ])
        .unwrap();
        assert_eq!(args.url, "http://10.0.0.1:9000");
        assert_eq!((args.orders, args.concurrency, args.timeout_ms), (500, 8, 250));
        assert!(args.json);
        assert_eq!(args.token.as_deref(), Some("t"));
        assert_eq!(args.product.as_deref(), Some("Lemonade"));
    }

    #[test]
    fn bench_args_reject_zero_orders_concurrency_and_timeout() {
        assert!(parse(&["--orders", "0"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
        assert!(parse(&["--timeout-ms", "0"]).is_err());
    }

    #[test]
    fn idempotency_keys_are_distinct_uuids() {
        let a = new_idempotency_key();
        let b = new_idempotency_key();
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(a.to_str().unwrap()).is_ok());
    }
}
