//! `lemonade serve`: the monolith on one SQLite database, or one role of the distributed mode
//! (`--role coordinator|stock|orders|crm`), each on its own database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lemonade_cluster::faults::{FaultPlan, FaultyTransport};
use lemonade_cluster::switchboard::{
    ExitPoint, ExitSeam, FaultSpec, OffsetClock, Switchboard, SwitchboardTransport, exit_points,
};
use lemonade_cluster::transport::{HttpTransport, Transport};
use lemonade_cluster::{CoordinatorConfig, Protection, Service};
use lemonade_domain::ports::Clock;
use lemonade_node::{NodeConfig, Seams};
use lemonade_store::migrations::Role;
use lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT;
use lemonade_store::system::{SystemClock, UuidV7Ids};
use lemonade_store::writer::BATCH_MAX_DEFAULT;
use lemonade_store::{Database, WriterConfig};
use std::ops::RangeInclusive;

use crate::footprint::Footprint;
use crate::lock::WriterLock;

/// `--lease-ms`: what the stock service accepts as a reservation's lease.
pub const LEASE_MS_RANGE: RangeInclusive<u64> = 1_000..=lemonade_cluster::stock::LEASE_MS_MAX;
/// `--order-deadline-ms`; it must also be shorter than the lease.
pub const ORDER_DEADLINE_MS_RANGE: RangeInclusive<u64> = 100..=60_000;
/// `--batch-max`: orders per group commit.
pub const BATCH_MAX_RANGE: RangeInclusive<i64> = 1..=4096;
/// `--minor-units-per-point`.
pub const MINOR_UNITS_PER_POINT_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `--rate-per-s`: a service's sustained requests per second.
pub const RATE_PER_S_RANGE: RangeInclusive<i64> = 1..=10_000_000;
/// Shortest access token or cluster token, in bytes.
pub const TOKEN_LEN_MIN: usize = 16;

/// What this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// The whole shop in one process.
    Monolith,
    /// The public API of the distributed mode; runs the sagas.
    Coordinator,
    Stock,
    Orders,
    Crm,
}

impl RoleArg {
    pub fn store_role(self) -> Role {
        match self {
            RoleArg::Monolith => Role::Monolith,
            RoleArg::Coordinator => Role::Coordinator,
            RoleArg::Stock => Role::Stock,
            RoleArg::Orders => Role::Orders,
            RoleArg::Crm => Role::Crm,
        }
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// What this process is: the monolith, or one part of the distributed mode.
    #[arg(long, env = "LEMONADE_ROLE", value_enum, default_value = "monolith")]
    pub role: RoleArg,
    /// Address to listen on. Anything but loopback requires an access token.
    #[arg(long, env = "LEMONADE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder holding the shop's database (created if missing).
    #[arg(long, env = "LEMONADE_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Distributed mode: keep this service's database on PostgreSQL instead of in a SQLite
    /// file of `--data` (`postgres://user@host:port/name`; the database is created if
    /// missing). The monolith always runs on SQLite.
    #[arg(long, env = "LEMONADE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Do not create the demo shop on an empty database.
    #[arg(long, env = "LEMONADE_EMPTY")]
    pub empty: bool,
    /// Access token clients must send as `Authorization: Bearer <token>`. Generated and
    /// printed once when listening beyond loopback without one.
    #[arg(long, env = "LEMONADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Most orders committed together (group commit; 1 to 4096). 1 commits each order on its
    /// own. A cap below the number of clients lets one batch sync while the next is written.
    #[arg(long, env = "LEMONADE_BATCH_MAX", default_value_t = BATCH_MAX_DEFAULT as u32, value_parser = clap::value_parser!(u32).range(BATCH_MAX_RANGE))]
    pub batch_max: u32,
    /// Loyalty: one point per this many minor currency units spent (1 to 1000000).
    #[arg(long, env = "LEMONADE_MINOR_UNITS_PER_POINT", default_value_t = MINOR_UNITS_PER_POINT_DEFAULT, value_parser = clap::value_parser!(u64).range(MINOR_UNITS_PER_POINT_RANGE))]
    pub minor_units_per_point: u64,
    /// Distributed mode: the token the services require of each other (at least 16
    /// characters). Every process of one cluster must have the same.
    #[arg(long, env = "LEMONADE_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Distributed mode: where the stock service listens.
    #[arg(long, env = "LEMONADE_STOCK_ADDR")]
    pub stock_addr: Option<SocketAddr>,
    /// Distributed mode: where the orders service listens.
    #[arg(long, env = "LEMONADE_ORDERS_ADDR")]
    pub orders_addr: Option<SocketAddr>,
    /// Distributed mode: where the CRM service listens.
    #[arg(long, env = "LEMONADE_CRM_ADDR")]
    pub crm_addr: Option<SocketAddr>,
    /// Coordinator: how long the stock service holds an uncommitted reservation (1000 to
    /// 600000; longer than --order-deadline-ms).
    #[arg(long, env = "LEMONADE_LEASE_MS", default_value_t = CoordinatorConfig::default().lease_ms, value_parser = clap::value_parser!(u64).range(LEASE_MS_RANGE))]
    pub lease_ms: u64,
    /// Coordinator: how long placing an order may take before the answer is 202 (pending; 100
    /// to 60000).
    #[arg(long, env = "LEMONADE_ORDER_DEADLINE_MS", default_value_t = CoordinatorConfig::default().order_deadline_ms, value_parser = clap::value_parser!(u64).range(ORDER_DEADLINE_MS_RANGE))]
    pub order_deadline_ms: u64,
    /// Distributed mode: requests per second a service takes before answering 429 (1 to
    /// 10000000).
    #[arg(long, env = "LEMONADE_RATE_PER_S", default_value_t = Protection::default().rate_per_s, value_parser = clap::value_parser!(u32).range(RATE_PER_S_RANGE))]
    pub rate_per_s: u32,
    /// Distributed mode: faults to inject from the start (the fault switchboard), e.g.
    /// `"stock: lose-reply 10%, delay 50ms±20ms; crm: refuse 5%; @orders: exit after-commit 1%"`
    /// (syntax: README). Changed at runtime with `lemonade faults`.
    #[arg(long, env = "LEMONADE_FAULTS", default_value = "", hide_default_value = true, value_parser = crate::faults::parse_spec)]
    pub faults: FaultSpec,
    /// The seed of this process's randomness (retry jitter, the faults drawn); random when
    /// not given. A run with the same seed draws the same faults for the same calls.
    #[arg(long, env = "LEMONADE_SEED")]
    pub seed: Option<u64>,
    /// Distributed mode: how far ahead of this process's clock another process's clock
    /// stamp may be before its call is refused (`503 clock_skew`; 1 to 3600000 ms). Every
    /// process of one cluster should have the same.
    #[arg(long, env = "LEMONADE_MAX_CLOCK_OFFSET_MS", default_value_t = lemonade_domain::hlc::SKEW_BOUND_MS_DEFAULT as u64, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub max_clock_offset_ms: u64,
}

impl ServeArgs {
    /// Settings for a test server: loopback, an OS-chosen port, the given folder.
    pub fn for_tests(data: PathBuf) -> Self {
        ServeArgs {
            addr: "127.0.0.1:0".parse().expect("valid address"),
            data,
            database_url: None,
            empty: false,
            token: None,
            batch_max: BATCH_MAX_DEFAULT as u32,
            minor_units_per_point: MINOR_UNITS_PER_POINT_DEFAULT,
            role: RoleArg::Monolith,
            cluster_token: None,
            stock_addr: None,
            orders_addr: None,
            crm_addr: None,
            lease_ms: CoordinatorConfig::default().lease_ms,
            order_deadline_ms: CoordinatorConfig::default().order_deadline_ms,
            rate_per_s: Protection::default().rate_per_s,
            faults: FaultSpec::default(),
            seed: None,
            max_clock_offset_ms: lemonade_domain::hlc::SKEW_BOUND_MS_DEFAULT as u64,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        database_path(&self.data, self.role.store_role())
    }

    fn writer_config(&self) -> WriterConfig {
        WriterConfig {
            batch_max: self.batch_max as usize,
            ..WriterConfig::default()
        }
    }

    /// Who this process is, for the lock file of its database: `lemonade serve --role stock
    /// (pid 1234, http://127.0.0.1:4001)`.
    fn holder(&self, addr: SocketAddr) -> String {
        let role = match self.role {
            RoleArg::Monolith => String::new(),
            other => format!(" --role {}", other.store_role().as_str()),
        };
        format!("lemonade serve{role} (pid {}, http://{addr})", std::process::id())
    }

    /// Refuses settings this role cannot run with (the ranges of single flags are clap's).
    pub fn check(&self) -> anyhow::Result<()> {
        check_token(self.token.as_deref(), "--token (LEMONADE_TOKEN)")?;
        if self.database_url.is_none() {
            check_data_folder(&self.data, self.role.store_role())?;
        }
        if let Some(url) = &self.database_url {
            anyhow::ensure!(
                self.role != RoleArg::Monolith,
                "--database-url is for the services of the distributed mode; the monolith keeps its database in a SQLite file of --data"
            );
            // The same parsing that names the cluster's databases: refuse what it refuses.
            lemonade_store::postgres::role_url(url, self.role.store_role())?;
        }
        if self.role == RoleArg::Monolith {
            anyhow::ensure!(
                self.faults.is_empty(),
                "--faults is for the processes of the distributed mode: the monolith makes no calls between services"
            );
        }
        let role = self.role.store_role();
        if let Some((other, _)) = self.faults.processes().iter().find(|(r, _)| *r != role) {
            anyhow::bail!(
                "--faults: this process is {}; the faults of @{} belong to that process",
                role.as_str(),
                other.as_str()
            );
        }
        match self.role {
            RoleArg::Monolith => {}
            RoleArg::Coordinator => {
                self.cluster_token()?;
                self.peers()?;
                check_lease(self.lease_ms, self.order_deadline_ms)?;
            }
            RoleArg::Orders => {
                self.cluster_token()?;
                self.peers_of_orders()?;
            }
            RoleArg::Stock | RoleArg::Crm => {
                self.cluster_token()?;
            }
        }
        Ok(())
    }

    fn cluster_token(&self) -> anyhow::Result<&str> {
        match &self.cluster_token {
            Some(t) => {
                check_token(Some(t), "--cluster-token (LEMONADE_CLUSTER_TOKEN)")?;
                Ok(t)
            }
            None => anyhow::bail!("the distributed mode needs --cluster-token (LEMONADE_CLUSTER_TOKEN)"),
        }
    }

    /// The orders service calls the stock and CRM services (its relay delivers events).
    fn peers_of_orders(&self) -> anyhow::Result<HashMap<Service, SocketAddr>> {
        let mut peers = HashMap::new();
        for (service, addr, flag) in [
            (Service::Stock, self.stock_addr, "--stock-addr"),
            (Service::Crm, self.crm_addr, "--crm-addr"),
        ] {
            peers.insert(
                service,
                addr.with_context(|| format!("the orders service needs {flag}"))?,
            );
        }
        Ok(peers)
    }

    fn peers(&self) -> anyhow::Result<HashMap<Service, SocketAddr>> {
        let need = |addr: Option<SocketAddr>, flag: &str| addr.with_context(|| format!("the coordinator needs {flag}"));
        Ok(HashMap::from([
            (Service::Stock, need(self.stock_addr, "--stock-addr")?),
            (Service::Orders, need(self.orders_addr, "--orders-addr")?),
            (Service::Crm, need(self.crm_addr, "--crm-addr")?),
        ]))
    }
}

/// Refuses a token shorter than [`TOKEN_LEN_MIN`] or one that an `Authorization: Bearer`
/// header cannot carry as given ([`lemonade_api::auth::check_bearer_token`]: with a trailing
/// space, say, every request would be refused), naming the flag that gave it.
pub fn check_token(token: Option<&str>, flag: &str) -> anyhow::Result<()> {
    let Some(token) = token else { return Ok(()) };
    if let Err(why) = lemonade_api::auth::check_bearer_token(token) {
        anyhow::bail!("{flag} cannot be sent as a bearer token: {why}");
    }
    anyhow::ensure!(
        token.len() >= TOKEN_LEN_MIN,
        "{flag} must be at least {TOKEN_LEN_MIN} characters"
    );
    Ok(())
}

/// The coordinator's lease must outlive its order deadline (each flag's own range is clap's).
pub fn check_lease(lease_ms: u64, order_deadline_ms: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        lease_ms > order_deadline_ms,
        "--lease-ms ({lease_ms}) must be longer than --order-deadline-ms ({order_deadline_ms})"
    );
    Ok(())
}

/// Refuses a `--data` that exists but is not a folder (a missing one is created later), or
/// that holds the other kind of shop than `role` starts: a monolith's `lemonade.db` for a
/// service of the distributed mode, a cluster's databases for the monolith. The error names
/// what the folder holds and the command that starts it.
pub fn check_data_folder(data: &std::path::Path, role: Role) -> anyhow::Result<()> {
    anyhow::ensure!(
        !data.exists() || data.is_dir(),
        "--data {} is not a folder",
        data.display()
    );
    // A data folder holds one shop: the monolith's database or a cluster's. A start of the
    // other kind beside one would make a second shop there, which `check` cannot tell apart.
    let shops = lemonade_store::audit::shops_in(data);
    if let Some(refusal) = shops.two_shops(data) {
        anyhow::bail!("--data {refusal}");
    }
    let lemonade_store::audit::ShopsIn { monolith, cluster } = shops;
    match role {
        Role::Monolith if !cluster.is_empty() => anyhow::bail!(
            "--data {} holds a cluster's databases ({}): start that shop with `lemonade cluster --data {0}`, or choose another --data",
            data.display(),
            cluster.join(", ")
        ),
        Role::Monolith => Ok(()),
        _ if monolith => anyhow::bail!(
            "--data {} holds a monolith's database (lemonade.db): start that shop with `lemonade serve --data {0}`, or choose another --data",
            data.display()
        ),
        _ => Ok(()),
    }
}

/// Where a role keeps its database in a data folder (the store's one map of the files).
pub use lemonade_store::audit::database_path;

/// A started shop: where it listens and the token it wants (if any).
pub struct Running {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A fresh random token: 32 bytes, in hex.
pub fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// Binds, opens the database (taking its writer lock), builds the node of `--role` on it
/// ([`lemonade_node::build`]: the demo shop if asked, its tasks, its router), and starts
/// serving in the background; the server's end stops the node. Returns once the socket is listening. What can fail
/// cheaply (the settings, the address) is checked before anything is created, so a refused
/// start leaves no data folder or database behind.
pub async fn start(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    start_with_faults(args, shutdown, None).await
}

/// [`start`], with the calls this process makes to the services (the coordinator's, the
/// orders service's relay) going through a transport that fails as `faults` says (tests of
/// the failure cases).
pub async fn start_with_faults(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    faults: Option<FaultPlan>,
) -> anyhow::Result<Running> {
    start_with(args, shutdown, faults, Arc::new(SystemClock)).await
}

/// [`start_with_faults`], reading `clock` instead of the system clock (tests that skew one
/// process's clock).
pub async fn start_with(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    faults: Option<FaultPlan>,
    clock: Arc<dyn lemonade_domain::ports::Clock>,
) -> anyhow::Result<Running> {
    // Refuse bad settings before opening anything: nothing may be left running on a refusal.
    args.check()?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {} (is it in use?); choose another with --addr", args.addr))?;
    let addr = listener.local_addr()?;
    let (db, lock) = open_database(&args, addr).await?;
    let seed = args.seed.unwrap_or_else(rand::random);
    // The switchboard draws from a stream of its own, so that setting faults does not
    // change the jitter the node draws from `seed`.
    let board = match args.role {
        RoleArg::Monolith => None,
        role => {
            let board = Arc::new(Switchboard::new(role.store_role(), seed ^ SWITCHBOARD_SEED_MIX)?);
            if !args.faults.is_empty() {
                board.set(args.faults.clone())?;
            }
            Some(board)
        }
    };
    let transport: Option<Arc<dyn Transport>> = match args.role {
        RoleArg::Coordinator => {
            let http: Arc<dyn Transport> = Arc::new(HttpTransport::new(args.peers()?, args.cluster_token()?));
            Some(match faults {
                Some(plan) => Arc::new(FaultyTransport::new(http, plan)),
                None => http,
            })
        }
        RoleArg::Orders => {
            let http: Arc<dyn Transport> = Arc::new(HttpTransport::new(args.peers_of_orders()?, args.cluster_token()?));
            Some(match faults {
                Some(plan) => Arc::new(FaultyTransport::new(http, plan)),
                None => http,
            })
        }
        RoleArg::Monolith | RoleArg::Stock | RoleArg::Crm => None,
    };
    let transport = match (transport, &board) {
        (Some(inner), Some(board)) => {
            Some(Arc::new(SwitchboardTransport::new(inner, Arc::clone(board))) as Arc<dyn Transport>)
        }
        (transport, _) => transport,
    };
    let clock: Arc<dyn Clock> = match &board {
        Some(board) => Arc::new(OffsetClock::new(clock, Arc::clone(board))),
        None => clock,
    };
    let token = match args.role {
        RoleArg::Monolith | RoleArg::Coordinator => public_token(&args)?,
        RoleArg::Stock | RoleArg::Orders | RoleArg::Crm => None,
    };
    let config = NodeConfig {
        role: args.role.store_role(),
        token: token.clone(),
        cluster_token: args.cluster_token.clone(),
        minor_units_per_point: args.minor_units_per_point,
        lease_ms: args.lease_ms,
        order_deadline_ms: args.order_deadline_ms,
        rate_per_s: args.rate_per_s,
        seed_demo: !args.empty,
    };
    db.hlc.set_bound_ms(args.max_clock_offset_ms as i64);
    let seams = Seams {
        db,
        clock,
        ids: Arc::new(UuidV7Ids),
        transport,
        seed,
        // The binary installs the process's recorder; the node only renders it.
        metrics: Some(lemonade_api::metrics_handle()),
    };
    let node = lemonade_node::build(config, seams).await?;
    if node.seeded() {
        tracing::info!("created the demo shop");
    }
    let app = match &board {
        None => node.router(),
        Some(board) => with_switchboard(node.router(), board, args.cluster_token()?),
    };
    let server = tokio::spawn(async move {
        // The database's writer lock is held for as long as this process serves it.
        let _lock = lock;
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        // A clean stop ends the node's tasks, then leaves the database whole in its file:
        // nothing deleted waits in a WAL.
        node.stop().await;
        served
    });
    Ok(Running { addr, token, server })
}

/// Mixed into the process's seed to seed its switchboard.
const SWITCHBOARD_SEED_MIX: u64 = 0x5717_c4b0_a2d0_f417;

/// The exit status of a process that exits at a point of the switchboard.
pub const EXIT_ON_PURPOSE: i32 = 86;

/// A process's router with its switchboard: the admin routes beside it, and the exit
/// points around every request.
fn with_switchboard(router: axum::Router, board: &Arc<Switchboard>, cluster_token: &str) -> axum::Router {
    let seam = ExitSeam {
        board: Arc::clone(board),
        exit: Arc::new(|point: ExitPoint| {
            crate::output::tell(&format!("exiting on purpose at {} (fault switchboard)", point.name()));
            std::process::exit(EXIT_ON_PURPOSE);
        }),
    };
    router
        .merge(crate::faults::admin_router(Arc::clone(board), cluster_token))
        .layer(axum::middleware::from_fn_with_state(seam, exit_points))
}

/// Opens this role's database: on PostgreSQL (whose writer takes a session lock), or in its
/// SQLite file of `--data`, after taking the file's writer lock. If the SQLite database cannot
/// be opened, the folder is put back as it was ([`Footprint`]): no lock file, database or
/// folder that this call made is left.
async fn open_database(args: &ServeArgs, addr: SocketAddr) -> anyhow::Result<(Database, Option<WriterLock>)> {
    let (role, config) = (args.role.store_role(), args.writer_config());
    if let Some(url) = args.database_url.clone() {
        // Compact: PostgreSQL keeps 63 bytes of a session's name.
        let holder = format!("lemonade {} (pid {}, {addr})", role.as_str(), std::process::id());
        let db = tokio::task::spawn_blocking(move || Database::open_postgres_as(&url, role, config, &holder))
            .await?
            .with_context(|| format!("opening the {} database on PostgreSQL", role.as_str()))?;
        return Ok((db, None));
    }
    let path = args.database_path();
    let footprint = Footprint::take(&args.data, std::slice::from_ref(&path));
    std::fs::create_dir_all(&args.data).with_context(|| format!("creating the data folder {}", args.data.display()))?;
    let lock = match WriterLock::acquire(&path, &args.holder(addr), crate::lock::WAIT_FOR_HOLDER).await {
        Ok(lock) => lock,
        Err(e) => {
            footprint.restore();
            return Err(e.into());
        }
    };
    match Database::open_role(&path, role, config) {
        Ok(db) => Ok((db, Some(lock))),
        Err(e) => {
            // The lock file is removed only once it is let go (see `lock`).
            drop(lock);
            footprint.restore();
            Err(e).with_context(|| format!("opening the database {}", path.display()))
        }
    }
}

/// The public API's access token: the one given, or one made up when listening beyond
/// loopback without one.
fn public_token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    check_token(args.token.as_deref(), "--token (LEMONADE_TOKEN)")?;
    Ok(token_for(args.token.as_ref(), args.addr))
}

/// The public API's token for a shop listening on `addr`: `given`; else none on loopback, and
/// beyond it one made up and shown once (a shop reachable from the network never goes
/// without one). The one rule of `serve` and `cluster`.
pub fn token_for(given: Option<&String>, addr: SocketAddr) -> Option<String> {
    match (given, addr.ip().is_loopback()) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => None,
        (None, false) => {
            let t = random_token();
            crate::output::say(&format!(
                "Listening beyond loopback: clients must send this access token (shown once):\n  {t}"
            ));
            Some(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Args as _;

    use super::*;

    #[test]
    fn faults_are_refused_on_the_monolith_and_another_process_s_section_on_a_service() {
        let mut args = ServeArgs::for_tests("unused-data".into());
        args.faults = "stock: refuse".parse().unwrap();
        let refused = args.check().unwrap_err().to_string();
        assert!(refused.contains("the monolith makes no calls"), "{refused}");
        args.role = RoleArg::Stock;
        args.cluster_token = Some("a-cluster-token-of-the-test".into());
        args.faults = "@crm: clock +1s".parse().unwrap();
        let refused = args.check().unwrap_err().to_string();
        assert!(refused.contains("this process is stock"), "{refused}");
        args.faults = "crm: refuse; @stock: exit after-commit 1%".parse().unwrap();
        args.check().unwrap();
    }

    /// `--help` of `serve` and `cluster` gives the range of every flag that has one, as the
    /// constants that check them say (found by a tester: `serve --help` gave none).
    #[test]
    fn the_help_of_serve_and_cluster_names_each_flag_s_range() {
        let ranges = [
            format!("{} to {}", BATCH_MAX_RANGE.start(), BATCH_MAX_RANGE.end()),
            format!(
                "{} to {}",
                MINOR_UNITS_PER_POINT_RANGE.start(),
                MINOR_UNITS_PER_POINT_RANGE.end()
            ),
            format!("{} to {}", LEASE_MS_RANGE.start(), LEASE_MS_RANGE.end()),
            format!(
                "{} to {}",
                ORDER_DEADLINE_MS_RANGE.start(),
                ORDER_DEADLINE_MS_RANGE.end()
            ),
            format!("{} to {}", RATE_PER_S_RANGE.start(), RATE_PER_S_RANGE.end()),
        ];
        let help = |command: clap::Command| command.term_width(1000).render_long_help().to_string();
        for (name, text) in [
            ("serve", help(ServeArgs::augment_args(clap::Command::new("serve")))),
            (
                "cluster",
                help(crate::cluster::ClusterArgs::augment_args(clap::Command::new("cluster"))),
            ),
        ] {
            for range in &ranges {
                let wrapped = text.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(wrapped.contains(range.as_str()), "lemonade {name} --help: no {range:?}");
            }
        }
    }
}
