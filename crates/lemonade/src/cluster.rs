//! `lemonade cluster`: the distributed mode on one machine, in one command. It starts the
//! stock, orders and CRM services and the coordinator as child processes of this binary on
//! local ports, waits until each answers its health check, prints where they are, and keeps
//! each one running on its own: a child that dies, or stays alive but keeps failing its health
//! check, is restarted after a growing delay while the others go on serving (the article's
//! partial failure stays partial). Ctrl-C or SIGTERM stops them all.
//!
//! The health check is each process's own `GET /health` (outside `/api/v1`), which answers
//! non-2xx only when that process itself cannot serve; the coordinator's `/api/v1/health`,
//! which reports the other services, is never a reason to restart it.
//!
//! [`start_in_process`] starts the same four servers inside the calling process instead
//! (still talking over loopback sockets): the black-box test suite runs against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use lemonade_cluster::faults::FaultPlan;

use crate::footprint::Footprint;
use crate::lock::WriterLock;
use lemonade_cluster::Protection;
use lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT;
use lemonade_store::writer::BATCH_MAX_DEFAULT;

use crate::serve::{
    BATCH_MAX_RANGE, LEASE_MS_RANGE, MINOR_UNITS_PER_POINT_RANGE, ORDER_DEADLINE_MS_RANGE, RATE_PER_S_RANGE, RoleArg,
    Running, ServeArgs,
};

#[derive(Clone, Debug, clap::Args)]
pub struct ClusterArgs {
    /// Where the coordinator (the public API and the web app) listens; the port may not be 0.
    /// Anything but loopback requires an access token (one is generated and printed if none
    /// is given).
    #[arg(long, env = "LEMONADE_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_fixed_addr)]
    pub addr: SocketAddr,
    /// Folder holding one database per service (created if missing).
    #[arg(long, env = "LEMONADE_DATA", default_value = "data-cluster")]
    pub data: PathBuf,
    /// First of three consecutive loopback ports for the stock, orders and CRM services
    /// (1 to 65533). By default the system picks three free ports; either way a service that
    /// is restarted comes back on the port it had.
    #[arg(long, env = "LEMONADE_SERVICES_PORT", value_parser = clap::value_parser!(u16).range(1..=65_533))]
    pub services_port: Option<u16>,
    /// Do not create the demo shop on empty databases.
    #[arg(long, env = "LEMONADE_EMPTY")]
    pub empty: bool,
    /// The public API's access token (see `serve --token`).
    #[arg(long, env = "LEMONADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The token of the calls between the four processes (at least 16 characters: letters,
    /// digits, `-._~+/`), so that an operator can call the services too. By default the
    /// supervisor makes one up for each run, which no one else knows.
    #[arg(long, env = "LEMONADE_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Keep the services' databases on this PostgreSQL server instead of in `--data`:
    /// `postgres://user@host:port/name` gives databases name_stock, name_orders, name_crm
    /// and name_coordinator, created if missing.
    #[arg(long, env = "LEMONADE_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
    /// Coordinator: how long the stock service holds an uncommitted reservation (1000 to
    /// 600000; longer than --order-deadline-ms).
    #[arg(long, env = "LEMONADE_LEASE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(LEASE_MS_RANGE))]
    pub lease_ms: u64,
    /// Coordinator: how long placing an order may take before the answer is 202 (pending)
    /// (100 to 60000).
    #[arg(long, env = "LEMONADE_ORDER_DEADLINE_MS", default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(ORDER_DEADLINE_MS_RANGE))]
    pub order_deadline_ms: u64,
    /// Most orders each process's writer commits together (see `serve --batch-max`; 1 to
    /// 4096).
    #[arg(long, env = "LEMONADE_BATCH_MAX", default_value_t = BATCH_MAX_DEFAULT as u32, value_parser = clap::value_parser!(u32).range(BATCH_MAX_RANGE))]
    pub batch_max: u32,
    /// Loyalty: one point per this many minor currency units spent (1 to 1000000).
    #[arg(long, env = "LEMONADE_MINOR_UNITS_PER_POINT", default_value_t = MINOR_UNITS_PER_POINT_DEFAULT, value_parser = clap::value_parser!(u64).range(MINOR_UNITS_PER_POINT_RANGE))]
    pub minor_units_per_point: u64,
    /// Requests per second each service takes before answering 429 (1 to 10000000).
    #[arg(long, env = "LEMONADE_RATE_PER_S", default_value_t = Protection::default().rate_per_s, value_parser = clap::value_parser!(u32).range(RATE_PER_S_RANGE))]
    pub rate_per_s: u32,
    /// Faults to inject from the start (see `serve --faults`): each process is given the
    /// sections of calls (used by those that make such calls: the coordinator, and the
    /// orders service's relay) and its own `@process` section. A restarted process starts
    /// with these again, not with what `lemonade faults` set since.
    #[arg(long, env = "LEMONADE_FAULTS", default_value = "", hide_default_value = true, value_parser = crate::faults::parse_spec)]
    pub faults: lemonade_cluster::switchboard::FaultSpec,
    /// The seed of the processes' randomness: each process gets this plus its place (stock
    /// 0, crm 1, orders 2, coordinator 3); random when not given.
    #[arg(long, env = "LEMONADE_SEED")]
    pub seed: Option<u64>,
    /// Distributed mode: how far ahead of this process's clock another process's clock
    /// stamp may be before its call is refused (`503 clock_skew`; 1 to 3600000 ms). Every
    /// process of one cluster should have the same.
    #[arg(long, env = "LEMONADE_MAX_CLOCK_OFFSET_MS", default_value_t = lemonade_domain::hlc::SKEW_BOUND_MS_DEFAULT as u64, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub max_clock_offset_ms: u64,
}

/// `--addr` of the cluster: a socket address with a port the supervisor can find again (the
/// coordinator is restarted on it and checked there).
fn parse_fixed_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|e| format!("{e} (expected an address such as 127.0.0.1:8080)"))?;
    if addr.port() == 0 {
        return Err("the port must be 1 to 65535: the coordinator is restarted on it".into());
    }
    Ok(addr)
}

impl ClusterArgs {
    /// Refuses what the flags' own parsers cannot see (combinations, URLs, the folder),
    /// before anything starts or any file is created.
    fn check(&self) -> anyhow::Result<()> {
        crate::serve::check_token(self.token.as_deref(), "--token (LEMONADE_TOKEN)")?;
        crate::serve::check_token(
            self.cluster_token.as_deref(),
            "--cluster-token (LEMONADE_CLUSTER_TOKEN)",
        )?;
        crate::serve::check_lease(self.lease_ms, self.order_deadline_ms)?;
        match &self.postgres {
            Some(base) => {
                for (role, _) in ROLES {
                    lemonade_store::postgres::role_url(base, role.store_role())
                        .context("--postgres (LEMONADE_POSTGRES)")?;
                }
            }
            None => crate::serve::check_data_folder(&self.data, lemonade_store::migrations::Role::Coordinator)?,
        }
        if let Some(first) = self.services_port {
            anyhow::ensure!(
                !(first..=first + 2).contains(&self.addr.port()),
                "--services-port {first} takes ports {first} to {}, which include --addr's port {}",
                first + 2,
                self.addr.port()
            );
        }
        Ok(())
    }
}

/// The four processes, in the order they first start (each only needs those before it).
const ROLES: [(RoleArg, &str); 4] = [
    (RoleArg::Stock, "stock"),
    (RoleArg::Crm, "crm"),
    (RoleArg::Orders, "orders"),
    (RoleArg::Coordinator, "coordinator"),
];

/// Where `role` is in [`ROLES`].
fn place_of(role: RoleArg) -> usize {
    ROLES
        .iter()
        .position(|(r, _)| *r == role)
        .expect("every role has a place")
}

/// Whether `pid` is a child of this process (running, stopped or exited but not reaped):
/// its parent in `/proc/<pid>/stat`.
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (name) state ppid ...": the name may hold spaces and parentheses.
    let parent = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse::<u32>().ok());
    parent == Some(std::process::id())
}

/// Ctrl-Z pauses the whole cluster, as it pauses any job. The terminal sends SIGTSTP to
/// the supervisor alone: the children run in process groups of their own (so that Ctrl-C
/// reaches the supervisor only, which then stops them in order). So the supervisor stops
/// each child (SIGSTOP), then itself; continued (`fg`, `bg`, SIGCONT), it continues them.
///
/// A supervisor stopped otherwise (SIGSTOP, a debugger) leaves its children running,
/// unsupervised until it runs again; they never wait for it, since their log lines, which it
/// does not read meanwhile, are dropped and counted rather than waited on
/// ([`crate::output`]).
fn spawn_job_control(plan: Arc<Plan>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut pause = signal(SignalKind::from_raw(libc::SIGTSTP)).context("handling Ctrl-Z (SIGTSTP)")?;
    tokio::spawn(async move {
        while pause.recv().await.is_some() {
            let children = plan.children();
            for &pid in &children {
                // SAFETY: signalling our own child, checked not reaped just above.
                unsafe {
                    libc::kill(pid as i32, libc::SIGSTOP);
                }
            }
            // SAFETY: stops this whole process until a SIGCONT; returns after it.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
            for pid in children.into_iter().filter(|&pid| is_our_child(pid)) {
                // SAFETY: as above.
                unsafe {
                    libc::kill(pid as i32, libc::SIGCONT);
                }
            }
        }
    });
    Ok(())
}

/// Every role's own health check: non-2xx only when that process itself cannot serve.
const HEALTH_PATH: &str = "/health";
/// How long a started process may take to answer its health check.
const STARTUP_WITHIN: Duration = Duration::from_secs(30);
/// How often a running process's health is checked, and how long one check may take.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A process that failed every health check for this long is killed and restarted.
const UNHEALTHY_FOR: Duration = Duration::from_secs(6);
/// The first delay before a restart; it doubles with each restart, up to the cap.
const RESTART_DELAY_FIRST: Duration = Duration::from_millis(200);
const RESTART_DELAY_MAX: Duration = Duration::from_secs(30);
/// A process that stayed healthy this long before going down is restarted after the first
/// delay again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long a stopping process may take to finish what it is doing before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// How long a killed process may take to be reaped.
const REAP_WITHIN: Duration = Duration::from_secs(5);
/// Longest line of a child's log kept to explain why it stopped.
const REASON_LEN_MAX: usize = 500;

/// What every supervising task shares: how to start each process.
struct Plan {
    args: ClusterArgs,
    /// The log filter, the supervisor's own.
    log: String,
    exe: PathBuf,
    cluster_token: String,
    /// The public token the coordinator is given: `--token`, or one generated for an
    /// address beyond loopback.
    token: Option<String>,
    addrs: [SocketAddr; 4],
    /// The process id each role was last started as, in the order of [`ROLES`] (for
    /// [`pause_with_the_terminal`]).
    pids: Mutex<[Option<u32>; 4]>,
}

/// One child process and what its log last said of an error.
struct Process {
    child: Child,
    /// The last `error: ...` line the child wrote to its log.
    last_error: Arc<Mutex<Option<String>>>,
    /// The task relaying its log; ends once the child's end of the pipe is closed.
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Plan {
    fn addr_of(&self, role: RoleArg) -> SocketAddr {
        self.addrs[place_of(role)]
    }

    /// The children running now (started by us and not reaped: a process id that was
    /// reused since is someone else's and left out).
    fn children(&self) -> Vec<u32> {
        let pids = *self.pids.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pids.into_iter().flatten().filter(|&pid| is_our_child(pid)).collect()
    }

    fn database(&self, role: RoleArg) -> PathBuf {
        crate::serve::database_path(&self.args.data, role.store_role())
    }

    /// Starts the process of `role`, its log relayed to ours line by line, each line led by
    /// its name. It gets every setting from the supervisor, which checked them all: no
    /// `LEMONADE_*` variable of our environment reaches it unchecked.
    fn spawn(&self, role: RoleArg, name: &'static str) -> anyhow::Result<Process> {
        let mut command = Command::new(&self.exe);
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("LEMONADE_") {
                command.env_remove(variable);
            }
        }
        command
            .args(["--log", &self.log])
            .arg("serve")
            .args(["--role", name, "--addr", &self.addr_of(role).to_string(), "--data"])
            .arg(&self.args.data)
            .args(["--stock-addr", &self.addr_of(RoleArg::Stock).to_string()])
            .args(["--orders-addr", &self.addr_of(RoleArg::Orders).to_string()])
            .args(["--crm-addr", &self.addr_of(RoleArg::Crm).to_string()])
            .args(["--lease-ms", &self.args.lease_ms.to_string()])
            .args(["--order-deadline-ms", &self.args.order_deadline_ms.to_string()])
            .args(["--batch-max", &self.args.batch_max.to_string()])
            .args(["--minor-units-per-point", &self.args.minor_units_per_point.to_string()])
            .args(["--rate-per-s", &self.args.rate_per_s.to_string()])
            .args(["--max-clock-offset-ms", &self.args.max_clock_offset_ms.to_string()])
            .env("LEMONADE_CLUSTER_TOKEN", &self.cluster_token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal reaches the supervisor only,
            // which then stops the children in order.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches only the new process. A child
        // whose supervisor died (even by SIGKILL) is stopped rather than left holding its
        // port and database. The signal follows the thread that spawned the child: children
        // are spawned from the runtime's long-lived threads only.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if self.args.empty {
            command.arg("--empty");
        }
        let faults = self.args.faults.for_role(role.store_role());
        if !faults.is_empty() {
            command.args(["--faults", &faults.to_string()]);
        }
        if let Some(seed) = self.args.seed {
            command.args(["--seed", &seed.wrapping_add(place_of(role) as u64).to_string()]);
        }
        if let Some(base) = &self.args.postgres {
            command.env(
                "LEMONADE_DATABASE_URL",
                lemonade_store::postgres::role_url(base, role.store_role())?,
            );
        }
        if let (Some(token), RoleArg::Coordinator) = (&self.token, role) {
            command.env("LEMONADE_TOKEN", token);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the {name} process"))?;
        self.pids.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[place_of(role)] = child.id();
        let last_error = Arc::new(Mutex::new(None));
        let relay = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(relay(name, stderr, Arc::clone(&last_error))));
        Ok(Process {
            child,
            last_error,
            relay,
        })
    }
}

/// Copies a child's log to ours, each line led by the child's name, and keeps its last
/// `error:` line. It reads whatever becomes of our own output: the lines go to our lossy
/// queue ([`crate::output`]), so a child never waits on a supervisor whose reader does not
/// read. A line is relayed up to [`RELAYED_LINE_BYTES_MAX`], bytes that are not UTF-8 as
/// U+FFFD. Ends when the child closes its end (it exited) or the pipe fails.
async fn relay(name: &'static str, stderr: tokio::process::ChildStderr, last_error: Arc<Mutex<Option<String>>>) {
    let mut reader = tokio::io::BufReader::new(stderr);
    let mut line = Vec::new();
    while let Ok(read) = read_line_bounded(&mut reader, &mut line, RELAYED_LINE_BYTES_MAX).await
        && read > 0
    {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        crate::output::tell(&format!("[{name}] {text}"));
        if text.starts_with("error: ") {
            let mut kept = text.to_owned();
            kept.truncate(kept.floor_char_boundary(REASON_LEN_MAX));
            *last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(kept);
        }
    }
}

/// Longest part of one line of a child's log that is relayed; the rest of a longer line is
/// read and let go.
const RELAYED_LINE_BYTES_MAX: usize = 16 * 1024;

/// Reads one line, up to and including its `\n`, into `line` (cleared first), keeping at
/// most `max` bytes of it. Returns how many bytes it consumed: 0 at the end of the stream.
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    line.clear();
    let mut consumed = 0;
    loop {
        let buffered = reader.fill_buf().await?;
        if buffered.is_empty() {
            return Ok(consumed);
        }
        let (chunk, ended) = match buffered.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffered[..=end], true),
            None => (buffered, false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let taken = chunk.len();
        reader.consume(taken);
        consumed += taken;
        if ended {
            return Ok(consumed);
        }
    }
}

/// Why a child went down.
struct Down {
    reason: String,
    /// How long it had been healthy before.
    healthy_for: Duration,
}

/// How long the log of a process that exited may take to be relayed to its end.
const LOG_DRAINED_WITHIN: Duration = Duration::from_secs(1);

impl Process {
    /// How it exited, with the last error it logged (once its log is relayed to the end).
    async fn describe_exit(&mut self, status: ExitStatus) -> String {
        if let Some(relay) = self.relay.take() {
            let _ = tokio::time::timeout(LOG_DRAINED_WITHIN, relay).await;
        }
        match self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_deref()
        {
            Some(error) => format!("{status}; it said {error}"),
            None => status.to_string(),
        }
    }

    /// SIGTERM, up to [`STOP_WITHIN`] for it to finish, then SIGKILL.
    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: sending a signal to our own child process, not yet reaped.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(STOP_WITHIN, self.child.wait()).await.is_err() {
            self.kill().await;
        }
    }

    /// SIGKILL, then reap it (bounded: a process stuck in the kernel is left to
    /// `kill_on_drop`).
    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(REAP_WITHIN, self.child.wait()).await;
    }

    /// Waits until the process has answered its health check once: `Err` with the reason
    /// if it exits first or does not answer within [`STARTUP_WITHIN`].
    async fn started(&mut self, addr: SocketAddr) -> Result<(), String> {
        let since = Instant::now();
        loop {
            let exited = tokio::select! {
                status = self.child.wait() => Some(status),
                healthy = healthy(addr) => {
                    if healthy {
                        return Ok(());
                    }
                    None
                }
            };
            match exited {
                Some(Ok(status)) => {
                    return Err(format!("exited while starting ({})", self.describe_exit(status).await));
                }
                Some(Err(e)) => return Err(format!("could not be watched: {e}")),
                None => {}
            }
            if since.elapsed() >= STARTUP_WITHIN {
                return Err(format!(
                    "did not answer its health check within {} s of starting",
                    STARTUP_WITHIN.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Watches a process that passed its first health check until it goes down: it exits,
    /// or it fails every health check for [`UNHEALTHY_FOR`] and is then killed.
    async fn watch(&mut self, addr: SocketAddr) -> Down {
        let healthy_since = Instant::now();
        let mut failing_since: Option<Instant> = None;
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let passed = tokio::select! {
                status = self.child.wait() => {
                    let reason = match status {
                        Ok(status) => format!("exited: {}", self.describe_exit(status).await),
                        Err(e) => format!("could not be watched: {e}"),
                    };
                    return Down {
                        reason,
                        healthy_for: healthy_since.elapsed(),
                    };
                }
                passed = async { tick.tick().await; healthy(addr).await } => passed,
            };
            if passed {
                failing_since = None;
                continue;
            }
            let failing = *failing_since.get_or_insert_with(Instant::now);
            if failing.elapsed() >= UNHEALTHY_FOR {
                self.kill().await;
                return Down {
                    reason: format!(
                        "alive but failing its health check for {} s; killed",
                        failing.elapsed().as_secs()
                    ),
                    healthy_for: failing.duration_since(healthy_since),
                };
            }
        }
    }
}

/// One health check: 2xx within [`PROBE_TIMEOUT`]. A frozen process does not answer.
async fn healthy(addr: SocketAddr) -> bool {
    lemonade_cluster::transport::probe(addr, HEALTH_PATH, PROBE_TIMEOUT)
        .await
        .is_some_and(|status| (200..300).contains(&status))
}

/// The delay before the next restart of one process: doubling from
/// [`RESTART_DELAY_FIRST`] up to [`RESTART_DELAY_MAX`].
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: RESTART_DELAY_FIRST,
        }
    }

    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(RESTART_DELAY_MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = RESTART_DELAY_FIRST;
    }
}

/// Keeps one process running until `stop`, on its own: restarts it after a growing delay
/// whenever it goes down, whatever the others do. Returns the running process (if any) for
/// the orderly stop.
async fn supervise(
    plan: Arc<Plan>,
    role: RoleArg,
    name: &'static str,
    first: Process,
    mut stop: watch::Receiver<bool>,
) -> Option<Process> {
    let addr = plan.addr_of(role);
    let mut backoff = Backoff::new();
    let mut process = first;
    loop {
        let down = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return Some(process),
            down = process.watch(addr) => down,
        };
        if down.healthy_for >= STABLE_AFTER {
            backoff.reset();
        }
        let mut reason = down.reason;
        process = loop {
            let delay = backoff.next();
            crate::output::tell(&format!(
                "{name} is down ({reason}); restarting it in {:.1} s",
                delay.as_secs_f64()
            ));
            tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            let mut next = match plan.spawn(role, name) {
                Ok(next) => next,
                Err(e) => {
                    reason = format!("could not be started: {e:#}");
                    continue;
                }
            };
            let started = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => return Some(next),
                started = next.started(addr) => started,
            };
            match started {
                Ok(()) => {
                    crate::output::tell(&format!("{name} is up again at {addr}"));
                    break next;
                }
                Err(why) => {
                    next.kill().await;
                    reason = why;
                }
            }
        };
    }
}

/// The stock, orders and CRM services' addresses: three consecutive ports from `first`, or
/// three free ports the system picks. They are chosen once, so a restarted service is found
/// where it was.
fn service_addrs(first: Option<u16>) -> anyhow::Result<[SocketAddr; 3]> {
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    match first {
        Some(first) => {
            let last = first
                .checked_add(2)
                .with_context(|| format!("--services-port {first} leaves no room for three services"))?;
            Ok([loopback(first), loopback(first + 1), loopback(last)])
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

/// Refuses to start on addresses something else listens on, naming the option that changes
/// each, rather than letting a child process fail to bind. All are held at once, so two
/// that clash are caught too.
fn ensure_free(addrs: &[(SocketAddr, &str)]) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for (addr, option) in addrs {
        held.push(
            std::net::TcpListener::bind(addr).with_context(|| {
                format!("{addr} cannot be listened on (is it in use?); choose another with {option}")
            })?,
        );
    }
    Ok(())
}

/// Runs the cluster until Ctrl-C or SIGTERM; `log` is the log filter, passed on to the
/// children.
pub async fn run(
    args: ClusterArgs,
    log: String,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // Everything that can be refused is refused before anything starts or is created.
    args.check()?;
    let [stock, orders, crm] = service_addrs(args.services_port)?;
    let services = if args.services_port.is_some() {
        "--services-port"
    } else {
        "another run"
    };
    ensure_free(&[
        (args.addr, "--addr"),
        (stock, services),
        (orders, services),
        (crm, services),
    ])?;
    let token = crate::serve::token_for(args.token.as_ref(), args.addr);
    let plan = Arc::new(Plan {
        exe: std::env::current_exe().context("finding this binary")?,
        cluster_token: args.cluster_token.clone().unwrap_or_else(crate::serve::random_token),
        token,
        log,
        addrs: [stock, crm, orders, args.addr],
        pids: Mutex::new([None; 4]),
        args,
    });
    spawn_job_control(Arc::clone(&plan))?;
    // What the folder holds now, put back if this first start fails; and no database is
    // written before every one of them is known to be usable.
    let footprint = match &plan.args.postgres {
        None => {
            let databases: Vec<_> = ROLES.iter().map(|(role, _)| plan.database(*role)).collect();
            let footprint = Footprint::take(&plan.args.data, &databases);
            for (role, _) in ROLES {
                let database = plan.database(role);
                if let Some(holder) = WriterLock::holder(&database)? {
                    anyhow::bail!(
                        "{} is in use by {holder}; stop it or choose another --data",
                        database.display()
                    );
                }
                lemonade_store::db::check_file(&database, role.store_role())?;
            }
            Some(footprint)
        }
        Some(base) => {
            for (role, name) in ROLES {
                let url = lemonade_store::postgres::role_url(base, role.store_role())?;
                let role = role.store_role();
                tokio::task::spawn_blocking(move || lemonade_store::postgres::check_database(&url, role))
                    .await?
                    .with_context(|| format!("the {name} database"))?;
            }
            None
        }
    };

    let mut started = Vec::new();
    for (role, name) in ROLES {
        let outcome = match plan.spawn(role, name) {
            Ok(mut process) => match process.started(plan.addr_of(role)).await {
                Ok(()) => Ok(process),
                Err(reason) => {
                    process.kill().await;
                    Err(anyhow::anyhow!("the {name} process {reason}"))
                }
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(process) => started.push(process),
            Err(e) => {
                for process in started.iter_mut().rev() {
                    process.stop().await;
                }
                if let Some(footprint) = &footprint {
                    footprint.restore();
                }
                return Err(e);
            }
        }
    }

    crate::output::say("Lemonade cluster is up:");
    crate::output::say(&format!("  {:<12} {:<22} database", "process", "address"));
    for (role, name) in ROLES {
        let db = match &plan.args.postgres {
            Some(base) => lemonade_store::db::redact(&lemonade_store::postgres::role_url(base, role.store_role())?),
            None => plan.database(role).display().to_string(),
        };
        crate::output::say(&format!("  {:<12} {:<22} {db}", name, plan.addr_of(role).to_string()));
    }
    crate::output::say(&format!(
        "Open http://{}/ — Ctrl-C stops every process.",
        plan.addr_of(RoleArg::Coordinator)
    ));

    let (stop, stopping) = watch::channel(false);
    let supervisors: Vec<_> = ROLES
        .into_iter()
        .zip(started)
        .map(|((role, name), process)| {
            tokio::spawn(supervise(Arc::clone(&plan), role, name, process, stopping.clone()))
        })
        .collect();
    shutdown.await;
    let _ = stop.send(true);
    let mut running = Vec::new();
    for supervisor in supervisors {
        running.push(supervisor.await.context("a supervising task failed")?);
    }
    // Stop in reverse: the coordinator first, so nothing new starts while the rest stop.
    for process in running.iter_mut().rev().flatten() {
        process.stop().await;
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

/// [`start_in_process`], with the calls of the coordinator and of the orders service's relay
/// failing as `faults` says.
pub async fn start_in_process_with_faults(
    data: &Path,
    configure: impl FnOnce(&mut ServeArgs),
    faults: Option<FaultPlan>,
) -> anyhow::Result<InProcess> {
    let system: Arc<dyn lemonade_domain::ports::Clock> = Arc::new(lemonade_store::system::SystemClock);
    start_in_process_with(data, configure, faults, |_| Arc::clone(&system)).await
}

/// [`start_in_process_with_faults`], each process reading the clock `clock_of` gives for its
/// role (tests that skew the machines' clocks).
pub async fn start_in_process_with(
    data: &Path,
    configure: impl FnOnce(&mut ServeArgs),
    faults: Option<FaultPlan>,
    clock_of: impl Fn(RoleArg) -> Arc<dyn lemonade_domain::ports::Clock>,
) -> anyhow::Result<InProcess> {
    let (stop, stopped) = watch::channel(false);
    let shutdown = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut args = ServeArgs::for_tests(data.to_path_buf());
    args.cluster_token = Some(crate::serve::random_token());
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
        // The relay's calls meet the same faults as the coordinator's.
        let faults = (*role == RoleArg::Orders).then(|| faults.clone()).flatten();
        let running = crate::serve::start_with(service, shutdown(), faults, clock_of(*role)).await?;
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
    let coordinator = crate::serve::start_with(args, shutdown(), faults, clock_of(RoleArg::Coordinator)).await?;
    Ok(InProcess {
        coordinator,
        services,
        stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relayed_line_is_cut_at_its_limit_and_the_next_line_read_whole() {
        let input: &[u8] = b"short\n0123456789abcdef\nnot utf-8 \xff\nno end";
        // A reader that hands out 3 bytes at a time: lines span several reads.
        let mut reader = tokio::io::BufReader::with_capacity(3, input);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while read_line_bounded(&mut reader, &mut line, 10).await.unwrap() > 0 {
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        assert_eq!(lines, ["short\n", "0123456789", "not utf-8 ", "no end"]);
    }

    #[test]
    fn restart_delays_double_up_to_the_cap_and_start_over_after_a_reset() {
        let mut backoff = Backoff::new();
        let delays: Vec<_> = (0..10).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000]
        );
        backoff.reset();
        assert_eq!(backoff.next(), RESTART_DELAY_FIRST);
    }
}
