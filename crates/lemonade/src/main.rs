use std::io::Write as _;

use clap::{Parser, Subcommand};

// The write path allocates many small short-lived values per order, where glibc's malloc
// costs more (docs/decisions.md, "Figures out of code comments").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use lemonade::serve::{ServeArgs, start};

/// Lemonade: shop software for orders, stock and customers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log filter, e.g. `info` or `lemonade=debug` [default: `info`; `error` for `simulate`,
    /// whose simulated nodes of many seeds at once would fill the log with their faults].
    #[arg(long, env = "LEMONADE_LOG", global = true, value_parser = parse_log_filter)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// `--log`: a filter tracing-subscriber accepts, refused here rather than ignored later.
fn parse_log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("{e} (expected e.g. info, warn or lemonade=debug)"))
}

#[derive(Subcommand)]
enum Command {
    /// Run the shop: the API and the web app on one SQLite database; or, with `--role`, one
    /// process of the distributed mode.
    Serve(ServeArgs),
    /// Run the distributed mode on this machine: the coordinator and the stock, orders and
    /// CRM services as child processes, each with its own database.
    Cluster(lemonade::cluster::ClusterArgs),
    /// Audit a shop's database; exits non-zero with a report on any violation.
    Check(CheckArgs),
    /// Place orders against a running shop as fast as it takes them and report the figures.
    Bench(lemonade_bench::BenchArgs),
    /// Run the whole cluster in a seeded deterministic simulation, with faults, and check
    /// what its clients saw; exits non-zero if a seed broke an invariant.
    Simulate(lemonade_sim::cli::SimulateArgs),
    /// Show, set or clear the faults a running process of the distributed mode injects on
    /// purpose (the fault switchboard; see `serve --faults`).
    Faults(lemonade::faults::FaultsArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Folder holding the shop's database, or a cluster's four.
    #[arg(long, env = "LEMONADE_DATA", default_value = "data")]
    data: std::path::PathBuf,
    /// Audit a cluster whose services keep their databases on PostgreSQL (the base URL given
    /// to `cluster --postgres`) instead of the folder.
    #[arg(long, env = "LEMONADE_POSTGRES", hide_env_values = true)]
    postgres: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit codes: 0 clean, 1 violations found, 2 the database could not be audited. A data
/// folder of the distributed mode is audited across its four databases.
fn check(args: &CheckArgs) -> std::process::ExitCode {
    let (what, audited) = match &args.postgres {
        Some(base) => (
            lemonade_store::db::redact(base),
            lemonade_store::audit::audit_postgres_cluster(base),
        ),
        None => (
            args.data.display().to_string(),
            lemonade_store::audit::audit_folder(&args.data, &refuse_held_elsewhere),
        ),
    };
    match audited {
        Ok(report) => {
            let text = if args.json {
                let mut json = serde_json::to_string_pretty(&report).expect("reports serialise");
                json.push('\n');
                json
            } else {
                report.to_text()
            };
            // The report is what was asked for: written whole, waiting for the reader as any
            // command's output does; a reader that left (`| head`) is no error of the audit.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
            if report.is_clean() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            lemonade::output::tell(&format!("error: cannot audit {what}: {e}"));
            std::process::ExitCode::from(2)
        }
    }
}

/// Refuses to audit a database file that a running process writes through another path (a
/// hard link in another folder, say): its latest changes lie in the WAL beside that path, so
/// an audit through this one would read an old state, and leave a WAL and shared memory of
/// its own beside this path. The holder and its path are named, as a second writer hears them.
fn refuse_held_elsewhere(database: &std::path::Path) -> Result<(), String> {
    match lemonade::lock::WriterLock::holder_elsewhere(database) {
        Ok(None) => Ok(()),
        Ok(Some(holder)) => Err(format!(
            "{} is in use by {holder}, which opened it by another path: its latest changes are \
             beside that path, not this one; audit the folder it runs on instead",
            database.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Colour codes in the log only on a terminal, and not there either when `NO_COLOR` is set
/// (<https://no-color.org>): a log written to a file or a pipe is plain text.
fn colour_logs() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Dropped last, at the end of `main`: what is still queued is written out then.
    let log = cli.log.clone().unwrap_or_else(|| match cli.command {
        Command::Simulate(_) => "error".into(),
        _ => "info".into(),
    });
    let _output = lemonade::output::init(&log, colour_logs());
    lemonade::output::spawn_dropped_reports();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Cluster(args) => lemonade::cluster::run(args, log.clone(), shutdown_signal()).await,
        Command::Check(args) => return check(&args),
        Command::Faults(args) => lemonade::faults::run(args).await,
        // Each seed runs on a runtime of its own, on threads of its own.
        Command::Simulate(args) => return tokio::task::block_in_place(|| lemonade_sim::cli::run(&args)),
        Command::Bench(args) => {
            let json = args.json;
            lemonade_bench::run(args)
                .await
                .map(|report| lemonade_bench::print_report(&report, json))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            lemonade::output::tell(&format!("error: {e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let role = args.role;
    let running = start(args, shutdown_signal()).await?;
    match role {
        lemonade::serve::RoleArg::Monolith | lemonade::serve::RoleArg::Coordinator => {
            lemonade::output::say(&format!("Lemonade is open at http://{}/", running.addr))
        }
        service => lemonade::output::say(&format!("Lemonade {service:?} service listening on {}", running.addr)),
    }
    running.server.await??;
    Ok(())
}
