//! `lemonade cluster`: the distributed mode on one machine, in one command. It starts the
//! stock, orders and CRM services and the coordinator as child processes of this binary on
//! local ports, waits until each answers `/health`, prints where they are, restarts one that
//! dies, and stops them all on Ctrl-C.
//!
//! [`start_in_process`] starts the same four servers inside the calling process instead
//! (still talking over loopback sockets): the black-box test suite runs against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use lemonade_cluster::faults::FaultPlan;

use crate::serve::{RoleArg, Running, ServeArgs, start, start_with_faults};

#[derive(Clone, Debug, clap::Args)]
pub struct ClusterArgs {
    /// Where the coordinator (the public API and the web app) listens.
    #[arg(long, env = "LEMONADE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder holding one database per service (created if missing).
    #[arg(long, env = "LEMONADE_DATA", default_value = "data-cluster")]
    pub data: PathBuf,
    /// First of three consecutive loopback ports for the stock, orders and CRM services. By
    /// default the system picks three free ports; either way a service that is restarted
    /// comes back on the port it had.
    #[arg(long, env = "LEMONADE_SERVICES_PORT")]
    pub services_port: Option<u16>,
    /// Do not create the demo shop on empty databases.
    #[arg(long, env = "LEMONADE_EMPTY")]
    pub empty: bool,
    /// The public API's access token (see `serve --token`).
    #[arg(long, env = "LEMONADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Keep the services' databases on this PostgreSQL server instead of in `--data`:
    /// `postgres://user@host:port/name` gives databases name_stock, name_orders, name_crm
    /// and name_coordinator, created if missing.
    #[arg(long, env = "LEMONADE_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
    /// Coordinator: how long the stock service holds an uncommitted reservation.
    #[arg(long, env = "LEMONADE_LEASE_MS", default_value_t = 30_000)]
    pub lease_ms: u64,
    /// Coordinator: how long placing an order may take before the answer is 202 (pending).
    #[arg(long, env = "LEMONADE_ORDER_DEADLINE_MS", default_value_t = 3_000)]
    pub order_deadline_ms: u64,
}

/// The four processes, in the order they start (each only needs those before it).
const ROLES: [(RoleArg, &str); 4] = [
    (RoleArg::Stock, "stock"),
    (RoleArg::Crm, "crm"),
    (RoleArg::Orders, "orders"),
    (RoleArg::Coordinator, "coordinator"),
];

/// How long one process may take to answer `/health` after starting.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// Most restarts of one process a minute before `cluster` gives up on it.
const RESTARTS_PER_MINUTE_MAX: usize = 5;

fn cluster_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

struct Member {
    role: RoleArg,
    name: &'static str,
    addr: SocketAddr,
    child: Child,
    restarts: Vec<Instant>,
}

struct Plan {
    args: ClusterArgs,
    exe: PathBuf,
    cluster_token: String,
    addrs: [SocketAddr; 4],
}

impl Plan {
    fn addr_of(&self, role: RoleArg) -> SocketAddr {
        let i = ROLES
            .iter()
            .position(|(r, _)| *r == role)
            .expect("every role has a place");
        self.addrs[i]
    }

    fn spawn(&self, role: RoleArg, name: &str) -> anyhow::Result<Child> {
        let mut command = Command::new(&self.exe);
        command
            .arg("serve")
            .args(["--role", name, "--addr", &self.addr_of(role).to_string(), "--data"])
            .arg(&self.args.data)
            .args(["--stock-addr", &self.addr_of(RoleArg::Stock).to_string()])
            .args(["--orders-addr", &self.addr_of(RoleArg::Orders).to_string()])
            .args(["--crm-addr", &self.addr_of(RoleArg::Crm).to_string()])
            .args(["--lease-ms", &self.args.lease_ms.to_string()])
            .args(["--order-deadline-ms", &self.args.order_deadline_ms.to_string()])
            .env("LEMONADE_CLUSTER_TOKEN", &self.cluster_token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        if self.args.empty {
            command.arg("--empty");
        }
        match &self.args.postgres {
            Some(base) => {
                command.env(
                    "LEMONADE_DATABASE_URL",
                    lemonade_store::postgres::role_url(base, role.store_role())?,
                );
            }
            None => {
                command.env_remove("LEMONADE_DATABASE_URL");
            }
        }
        match (&self.args.token, role) {
            (Some(token), RoleArg::Coordinator) => {
                command.env("LEMONADE_TOKEN", token);
            }
            _ => {
                command.env_remove("LEMONADE_TOKEN");
            }
        }
        command.spawn().with_context(|| format!("starting the {name} process"))
    }
}

async fn wait_healthy(addr: SocketAddr, name: &str, child: &mut Child) -> anyhow::Result<()> {
    let started = Instant::now();
    let path = if name == "coordinator" {
        "/api/v1/health"
    } else {
        "/health"
    };
    while started.elapsed() < HEALTHY_WITHIN {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the {name} process exited while starting ({status})");
        }
        if lemonade_cluster::transport::probe(addr, path, Duration::from_secs(2)).await == Some(200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "the {name} process did not become healthy within {} s",
        HEALTHY_WITHIN.as_secs()
    )
}

/// The stock, orders and CRM services' addresses: three consecutive ports from `first`, or
/// three free ports the system picks. They are chosen once, so a restarted service is found
/// where it was.
fn service_addrs(first: Option<u16>) -> anyhow::Result<[SocketAddr; 3]> {
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    match first {
        Some(first) => {
            anyhow::ensure!(
                first.checked_add(2).is_some(),
                "--services-port {first} leaves no room for three services"
            );
            let addrs = [loopback(first), loopback(first + 1), loopback(first + 2)];
            for addr in addrs {
                ensure_free(addr, "--services-port")?;
            }
            Ok(addrs)
        }
        None => {
            // All three are held until all are picked, so they differ.
            let held = (0..3)
                .map(|_| std::net::TcpListener::bind(loopback(0)))
                .collect::<Result<Vec<_>, _>>()
                .context("finding free loopback ports for the services")?;
            let mut addrs = [loopback(0); 3];
            for (addr, listener) in addrs.iter_mut().zip(&held) {
                *addr = listener.local_addr().context("reading a picked port")?;
            }
            Ok(addrs)
        }
    }
}

/// Refuses to start on an address something else listens on, with the option to change it,
/// rather than letting a child process fail to bind.
fn ensure_free(addr: SocketAddr, option: &str) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("{addr} cannot be listened on (is it in use?); choose another with {option}"))
}

/// Runs the cluster until Ctrl-C or SIGTERM.
pub async fn run(args: ClusterArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let [stock, orders, crm] = service_addrs(args.services_port)?;
    ensure_free(args.addr, "--addr")?;
    let plan = Plan {
        exe: std::env::current_exe().context("finding this binary")?,
        cluster_token: cluster_token(),
        addrs: [stock, crm, orders, args.addr],
        args,
    };
    if let Some(base) = &plan.args.postgres {
        for (role, _) in ROLES {
            lemonade_store::postgres::role_url(base, role.store_role())?;
        }
    }
    if plan.args.postgres.is_none() {
        std::fs::create_dir_all(&plan.args.data)
            .with_context(|| format!("creating the data folder {}", plan.args.data.display()))?;
    }
    let mut members = Vec::new();
    for (role, name) in ROLES {
        let mut child = plan.spawn(role, name)?;
        let addr = plan.addr_of(role);
        wait_healthy(addr, name, &mut child).await?;
        members.push(Member {
            role,
            name,
            addr,
            child,
            restarts: Vec::new(),
        });
    }
    println!("Lemonade cluster is up:");
    println!("  {:<12} {:<22} database", "process", "address");
    for m in &members {
        let db = match &plan.args.postgres {
            Some(base) => lemonade_store::db::redact(&lemonade_store::postgres::role_url(base, m.role.store_role())?),
            None => crate::serve::database_path(&plan.args.data, m.role.store_role())
                .display()
                .to_string(),
        };
        println!("  {:<12} {:<22} {db}", m.name, m.addr.to_string());
    }
    println!(
        "Open http://{}/ — Ctrl-C stops every process.",
        plan.addr_of(RoleArg::Coordinator)
    );

    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        for m in members.iter_mut() {
            let Some(status) = m.child.try_wait()? else { continue };
            m.restarts.retain(|at| at.elapsed() < Duration::from_secs(60));
            anyhow::ensure!(
                m.restarts.len() < RESTARTS_PER_MINUTE_MAX,
                "the {} process keeps dying ({status}); stopping the cluster",
                m.name
            );
            eprintln!("the {} process exited ({status}); restarting it", m.name);
            m.restarts.push(Instant::now());
            m.child = plan.spawn(m.role, m.name)?;
            if let Err(e) = wait_healthy(m.addr, m.name, &mut m.child).await {
                eprintln!("{e:#}");
            }
        }
    }
    // Stop in reverse: the coordinator first, so nothing new starts while the rest stop.
    for m in members.iter_mut().rev() {
        if let Some(pid) = m.child.id() {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), m.child.wait()).await;
        let _ = m.child.kill().await;
    }
    Ok(())
}

/// A cluster running inside this process; stops when dropped.
pub struct InProcess {
    pub coordinator: Running,
    pub services: Vec<(RoleArg, Running)>,
    stop: watch::Sender<bool>,
}

impl InProcess {
    /// Stops every server the way Ctrl-C does and waits until each has finished stopping
    /// (its database closed cleanly). Call it once.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for running in std::iter::once(&mut self.coordinator).chain(self.services.iter_mut().map(|(_, r)| r)) {
            (&mut running.server).await??;
        }
        Ok(())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the three services and the coordinator in this process, on loopback ports the OS
/// picks, with databases in `data`. `configure` adjusts the settings for tests (a public
/// token, an empty shop, ...) of all four; a `database_url` it sets is the cluster's base
/// PostgreSQL URL, each process getting its own database named after it (as `cluster
/// --postgres` does).
pub async fn start_in_process(data: &Path, configure: impl FnOnce(&mut ServeArgs)) -> anyhow::Result<InProcess> {
    start_in_process_with_faults(data, configure, None).await
}

/// [`start_in_process`], with the coordinator's calls failing as `faults` says.
pub async fn start_in_process_with_faults(
    data: &Path,
    configure: impl FnOnce(&mut ServeArgs),
    faults: Option<FaultPlan>,
) -> anyhow::Result<InProcess> {
    let (stop, stopped) = watch::channel(false);
    let shutdown = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut args = ServeArgs::for_tests(data.to_path_buf());
    args.cluster_token = Some(cluster_token());
    // A test's answers should not turn into 202 because a busy machine was slow.
    args.order_deadline_ms = 10_000;
    configure(&mut args);
    // Settle the coordinator's settings before any service starts, so a refusal leaves
    // nothing running on a folder the caller is about to delete.
    let mut coordinator = args.clone();
    coordinator.role = RoleArg::Coordinator;
    let placeholder = Some(SocketAddr::from(([127, 0, 0, 1], 9)));
    (coordinator.stock_addr, coordinator.orders_addr, coordinator.crm_addr) = (placeholder, placeholder, placeholder);
    coordinator.check()?;
    let base = args.database_url.take();
    let url_of = |role: RoleArg| -> anyhow::Result<Option<String>> {
        base.as_deref()
            .map(|b| lemonade_store::postgres::role_url(b, role.store_role()))
            .transpose()
            .map_err(Into::into)
    };
    let mut services = Vec::new();
    for (role, _) in &ROLES[..3] {
        let mut service = args.clone();
        service.role = *role;
        service.database_url = url_of(*role)?;
        let running = start(service, shutdown()).await?;
        match role {
            RoleArg::Stock => args.stock_addr = Some(running.addr),
            RoleArg::Crm => args.crm_addr = Some(running.addr),
            RoleArg::Orders => args.orders_addr = Some(running.addr),
            _ => unreachable!("services only"),
        }
        services.push((*role, running));
    }
    args.role = RoleArg::Coordinator;
    args.database_url = url_of(RoleArg::Coordinator)?;
    let coordinator = start_with_faults(args, shutdown(), faults).await?;
    Ok(InProcess {
        coordinator,
        services,
        stop,
    })
}
