//! The distributed mode's crash proof, against real processes: `lemonade cluster` runs the
//! four processes; under load from clients that retry with their idempotency keys, each of
//! stock, orders, CRM and the coordinator is killed with SIGKILL in turn, and the cluster's
//! supervisor restarts it. Afterwards:
//! - every order a client got a 2xx for exists and ended confirmed or failed (none pending);
//! - each key ended in at most one order: retrying it replays the same order;
//! - `lemonade check`'s audit across the four databases is clean: no stock taken twice or
//!   left reserved, no points awarded twice, no saga unfinished, every event delivered.
//!
//! Also the supervisor's choice of ports: it picks the services' ports itself, so clusters
//! run side by side, and it refuses an address in use before starting anything. And partial
//! failures stay partial: a service that keeps dying is restarted with a growing delay while
//! the others keep serving; processes down at once come back each on its own; a process that
//! is alive but fails its health check (frozen) is killed and restarted, and the
//! coordinator's being degraded by a dependency that is down is not such a failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lemonade");

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lemonade cluster`, killed with its children when dropped.
struct Cluster {
    supervisor: Child,
}

impl Cluster {
    /// `lemonade cluster` with its coordinator on `port`, the services' ports left to it.
    fn spawn(port: u16, data: &Path, extra: &[String], log_path: &Path) -> Cluster {
        let log = std::fs::File::create(log_path).unwrap();
        Cluster::spawn_to(port, data, extra, Stdio::null(), Stdio::from(log))
    }

    /// [`Cluster::spawn`], with its standard output and error going where the caller says.
    fn spawn_to(port: u16, data: &Path, extra: &[String], stdout: Stdio, stderr: Stdio) -> Cluster {
        let supervisor = Command::new(BIN)
            .args(["cluster", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(extra)
            .env("LEMONADE_LOG", "warn")
            .env_remove("LEMONADE_TOKEN")
            .env_remove("LEMONADE_SERVICES_PORT")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start lemonade cluster");
        Cluster { supervisor }
    }

    /// `lemonade cluster` over `data` with all four processes up: its API's base URL and the
    /// path of its log. Another process may take one of the ports between picking and
    /// binding: then the supervisor exits, and the cluster is started again on other ports.
    async fn start(dir: &Path, data: &Path, extra: &[String], http: &reqwest::Client) -> (Cluster, String, PathBuf) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let log_path = dir.join(format!("cluster-{attempt}.log"));
            let mut cluster = Cluster::spawn(port, data, extra, &log_path);
            let base = format!("http://127.0.0.1:{port}/api/v1");
            if cluster.wait_up(http, &base, &log_path).await {
                return (cluster, base, log_path);
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(attempt < 3, "the cluster exited while starting, 3 times:\n{log}");
        }
    }

    /// Waits until the coordinator reports every service up (true) or the supervisor exits
    /// (false).
    async fn wait_up(&mut self, http: &reqwest::Client, base: &str, log_path: &Path) -> bool {
        let started = Instant::now();
        loop {
            if all_up(http, base).await {
                return true;
            }
            if self.supervisor.try_wait().unwrap().is_some() {
                return false;
            }
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the cluster did not come up:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stopped first, the supervisor cannot start a child again between the children's
        // death and its own (which would leave that child running after the test).
        let supervisor = self.supervisor.id().to_string();
        let _ = Command::new("kill").args(["-STOP", &supervisor]).status();
        for pid in children(self.supervisor.id()) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

fn children(pid: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The pid of the supervisor's child serving `role`.
fn pid_of(cluster: &Cluster, role: &str) -> Option<u32> {
    children(cluster.supervisor.id()).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(&format!("--role {role} "))
            })
            .unwrap_or(false)
    })
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn send(http: &reqwest::Client, url: &str, body: &Value, key: &str) -> Option<(u16, Value)> {
    let reply = http
        .post(url)
        .json(body)
        .header("idempotency-key", key)
        .send()
        .await
        .ok()?;
    let status = reply.status().as_u16();
    Some((status, reply.json().await.unwrap_or(Value::Null)))
}

/// The services' databases of a cluster under test: SQLite files in a folder, or databases
/// on the PostgreSQL server of `LEMONADE_TEST_POSTGRES`, dropped at the end.
enum Storage {
    Sqlite,
    Postgres(String),
}

impl Storage {
    fn postgres() -> Storage {
        Storage::Postgres(lemonade_store::postgres::test_base("c"))
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Storage::Postgres(base) = self {
            // The databases of a killed run are dropped by scripts/postgres.sh.
            let _ = lemonade_store::postgres::drop_cluster_databases(base);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_service_under_load_loses_and_duplicates_nothing() {
    kill_each_service_under_load(Storage::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_service_on_postgres_under_load_loses_and_duplicates_nothing() {
    kill_each_service_under_load(Storage::postgres()).await;
}

async fn kill_each_service_under_load(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let extra = match &storage {
        Storage::Sqlite => vec![],
        Storage::Postgres(base) => vec!["--postgres".to_owned(), base.clone()],
    };
    let (cluster, base, _) = Cluster::start(dir.path(), &data, &extra, &http).await;
    let product = http
        .get(format!("{base}/products"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = http
        .post(format!("{base}/customers"))
        .json(&json!({"name": "Crash test"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Clients: each order is retried with its key until it gets an answer that says what
    // happened (2xx, or a refusal).
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<HashMap<String, (String, Value)>>> = Arc::default();
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..6 {
        let (http, base, stop, acknowledged) = (http.clone(), base.clone(), stop.clone(), acknowledged.clone());
        let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 1}]});
        clients.spawn(async move {
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("crash-{worker}-{n}");
                let tried = Instant::now();
                loop {
                    assert!(tried.elapsed() < Duration::from_secs(60), "{key} never got an answer");
                    match send(&http, &format!("{base}/orders"), &body, &key).await {
                        Some((status @ (201 | 202), order)) => {
                            acknowledged
                                .lock()
                                .unwrap()
                                .insert(key, (order["id"].as_str().unwrap().to_owned(), order));
                            let _ = status;
                            break;
                        }
                        Some((409, p)) if p["code"] == "insufficient_stock" => break,
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        });
    }
    for role in ["stock", "orders", "crm", "coordinator"] {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let pid = pid_of(&cluster, role).unwrap_or_else(|| panic!("the {role} process is running"));
        let killed = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        // The supervisor notices and starts it again.
        let since = Instant::now();
        while pid_of(&cluster, role).is_none_or(|p| p == pid) {
            assert!(since.elapsed() < Duration::from_secs(30), "{role} was not restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = clients.join_next().await {
        done.expect("a client ran to the end");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20, "load went through: {}", acknowledged.len());

    // Settled: the audit across the databases is clean and nothing is pending.
    let since = Instant::now();
    loop {
        let (data, postgres) = (
            data.clone(),
            match &storage {
                Storage::Sqlite => None,
                Storage::Postgres(base) => Some(base.clone()),
            },
        );
        let report = tokio::task::spawn_blocking(move || match postgres {
            Some(base) => lemonade_store::audit::audit_postgres_cluster(&base),
            None => lemonade_store::audit::audit_cluster(&data),
        })
        .await
        .unwrap()
        .expect("the cluster can be audited");
        if report.is_clean() {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "not clean:\n{}",
            report.to_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 1}]});
    for (key, (id, _)) in &acknowledged {
        let order = get_json(&http, format!("{base}/orders/{id}")).await;
        assert!(
            order["status"] == "confirmed" || order["status"] == "failed",
            "acknowledged order {id} ended {order}"
        );
        if order["status"] == "confirmed" {
            let (status, replay) = send(&http, &format!("{base}/orders"), &body, key)
                .await
                .expect("an answer");
            assert_eq!(
                (status, replay["id"].as_str()),
                (201, Some(id.as_str())),
                "{key} replays its order"
            );
        }
    }
}

/// The supervisor picks the services' ports itself: two clusters started with nothing but
/// their public addresses run side by side, each with all four processes healthy.
#[tokio::test]
async fn two_clusters_without_chosen_service_ports_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut running = Vec::new();
    for name in ["one", "two"] {
        let port = free_port();
        let log_path = dir.path().join(format!("{name}.log"));
        let cluster = Cluster::spawn(port, &dir.path().join(name), &[], &log_path);
        running.push((cluster, format!("http://127.0.0.1:{port}/api/v1"), log_path));
    }
    for (cluster, base, log_path) in &mut running {
        let log = || std::fs::read_to_string(&*log_path).unwrap_or_default();
        assert!(
            cluster.wait_up(&http, base, log_path).await,
            "a cluster exited:\n{}",
            log()
        );
        let health = get_json(&http, format!("{base}/health")).await;
        assert_eq!(health["ok"], true, "{health}");
        let deps = health["dependencies"].as_array().unwrap();
        for service in ["stock", "orders", "crm"] {
            assert!(
                deps.iter().any(|d| d["name"] == service && d["ok"] == true),
                "{service} is not up: {health}"
            );
        }
    }
    for (cluster, _, log_path) in &mut running {
        assert!(
            cluster.supervisor.try_wait().unwrap().is_none(),
            "a cluster stopped:\n{}",
            std::fs::read_to_string(&*log_path).unwrap_or_default()
        );
    }
}

/// A public address already in use stops `lemonade cluster` before it starts anything, with
/// a message naming the option that changes it.
#[test]
fn a_cluster_on_an_address_in_use_refuses_to_start_and_names_the_option() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cluster", "--addr", &addr.to_string(), "--data"])
        .arg(dir.path())
        .env_remove("LEMONADE_SERVICES_PORT")
        .stdin(Stdio::null())
        .output()
        .expect("run lemonade cluster");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(
        stderr.contains(&addr.to_string()) && stderr.contains("--addr"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "it created databases"
    );
}

/// The address the supervisor's child serving `role` listens on, from its command line.
fn addr_of(cluster: &Cluster, role: &str) -> Option<String> {
    let pid = pid_of(cluster, role)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--addr")?;
    args.get(at + 1).cloned()
}

/// Sends `signal` (`KILL`, `STOP`) to `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Waits, up to `within`, until `role` runs as a process other than `old` and answers its
/// own health check: the new pid.
async fn wait_restarted(cluster: &Cluster, role: &str, old: u32, within: Duration, log: &Path) -> u32 {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let since = Instant::now();
    loop {
        if let (Some(pid), Some(addr)) = (pid_of(cluster, role), addr_of(cluster, role))
            && pid != old
            && http
                .get(format!("http://{addr}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        {
            return pid;
        }
        assert!(
            since.elapsed() < within,
            "{role} was not back within {within:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the coordinator answers its `/api/v1/health` with every service up (a service
/// down leaves it at 200 with `"ok": false`).
async fn all_up(http: &reqwest::Client, base: &str) -> bool {
    match http.get(format!("{base}/health")).send().await {
        Ok(reply) if reply.status() == 200 => reply.json::<Value>().await.is_ok_and(|h| h["ok"] == true),
        _ => false,
    }
}

/// Waits, up to a minute, until the coordinator reports every service up.
async fn wait_all_up(http: &reqwest::Client, base: &str, log: &Path) {
    let since = Instant::now();
    loop {
        if all_up(http, base).await {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the cluster did not recover:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restocks every ingredient plenty, for orders that must not run out.
async fn restock_all(http: &reqwest::Client, base: &str) {
    let ingredients = get_json(http, format!("{base}/ingredients?limit=200")).await;
    for ingredient in ingredients["items"].as_array().unwrap() {
        let id = ingredient["id"].as_str().unwrap();
        let restocked = http
            .post(format!("{base}/ingredients/{id}/restock"))
            .json(&json!({"quantity": 100_000_000}))
            .send()
            .await
            .unwrap();
        assert_eq!(restocked.status(), 200);
    }
}

/// The flapping service: CRM is killed six times about two seconds apart. The
/// supervisor restarts it each time after a growing delay and never stops the others: the
/// coordinator, stock and orders keep their processes and serve walk-in orders throughout,
/// the coordinator shows CRM down, and CRM is back once the kills stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_service_is_restarted_with_backoff_while_the_rest_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (cluster, base, log) = Cluster::start(dir.path(), &dir.path().join("data"), &[], &http).await;
    restock_all(&http, &base).await;
    let product = get_json(&http, format!("{base}/products")).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let others: Vec<(&str, u32)> = ["coordinator", "stock", "orders"]
        .into_iter()
        .map(|role| (role, pid_of(&cluster, role).unwrap()))
        .collect();

    // A counter selling to walk-in customers (no CRM needed), one order at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let body = json!({"lines": [{"product_id": product, "quantity": 1}]});
            let mut answers = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let answer = send(&http, &format!("{base}/orders"), &body, &format!("walk-in-{n}")).await;
                answers.push(answer.map(|(status, body)| (status, body.to_string())));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        })
    };

    let mut crm_seen_down = false;
    let mut crm = pid_of(&cluster, "crm").unwrap();
    for kill in 0..6 {
        if kill > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            crm = wait_restarted(&cluster, "crm", crm, Duration::from_secs(40), &log).await;
        }
        signal(crm, "KILL");
        let health = get_json(&http, format!("{base}/health")).await;
        let crm_health = health["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "crm")
            .cloned()
            .unwrap();
        crm_seen_down |= crm_health["ok"] == false;
    }
    wait_restarted(&cluster, "crm", crm, Duration::from_secs(60), &log).await;
    wait_all_up(&http, &base, &log).await;
    stop.store(true, Ordering::Relaxed);
    let answers = counter.await.unwrap();

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(crm_seen_down, "the coordinator never showed CRM down");
    assert!(answers.len() >= 20, "the counter sold: {answers:?}");
    for answer in &answers {
        assert!(
            matches!(answer, Some((201, _))),
            "a walk-in order was not sold: {answer:?}\n{log_text}"
        );
    }
    for (role, pid) in others {
        assert_eq!(pid_of(&cluster, role), Some(pid), "{role} was restarted:\n{log_text}");
    }
    // The delays grew: 0.2 s, 0.4 s, ... 6.4 s for the sixth death in a row.
    assert!(log_text.contains("restarting it in 6.4 s"), "{log_text}");
}

/// Processes that are down at once come back each on its own: with stock frozen (alive but
/// not answering, so the coordinator is degraded), the coordinator is killed, then CRM. Both
/// come back at once, without waiting for stock; stock, failing its health check, is killed
/// and restarted; and the coordinator is not restarted for being degraded meanwhile.
///
/// The coordinator's degraded health is read before it is killed: after its restart, stock
/// may already have been killed and restarted by its own supervisor (about nine seconds
/// after the freeze), so only "serving" holds whatever the machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_down_at_once_come_back_each_on_its_own_and_a_frozen_one_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (cluster, base, log) = Cluster::start(dir.path(), &dir.path().join("data"), &[], &http).await;
    let stock = pid_of(&cluster, "stock").unwrap();
    signal(stock, "STOP");
    let degraded = get_json(&http, format!("{base}/health")).await;
    assert_eq!(
        (&degraded["ok"], &degraded["serving"]),
        (&json!(false), &json!(true)),
        "stock is frozen: the coordinator is degraded, and serves: {degraded}"
    );

    let coordinator = pid_of(&cluster, "coordinator").unwrap();
    signal(coordinator, "KILL");
    let coordinator = wait_restarted(&cluster, "coordinator", coordinator, Duration::from_secs(20), &log).await;
    let restarted = get_json(&http, format!("{base}/health")).await;
    assert_eq!(
        restarted["serving"],
        json!(true),
        "the restarted coordinator serves: {restarted}"
    );

    let crm = pid_of(&cluster, "crm").unwrap();
    signal(crm, "KILL");
    // Well within the 30 s a supervisor restarting one process at a time would wait for the
    // degraded coordinator.
    wait_restarted(&cluster, "crm", crm, Duration::from_secs(15), &log).await;

    wait_restarted(&cluster, "stock", stock, Duration::from_secs(60), &log).await;
    wait_all_up(&http, &base, &log).await;
    assert_eq!(
        pid_of(&cluster, "coordinator"),
        Some(coordinator),
        "the coordinator was restarted for being degraded:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Continues a process stopped with SIGSTOP when dropped, whatever the test did.
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Frozen {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

/// CRM frozen (SIGSTOP: it accepts connections and never answers): `/health` says so, a
/// customer the shop knows is still sold to, one it does not know is refused in words a
/// cashier can act on, erasing a known customer is answered 202 (recorded, no order can
/// name them, finishing by itself) rather than a 503, and once CRM runs again (continued,
/// or killed and restarted by the supervisor for failing its health checks, whichever
/// comes first) the points follow and the erasure finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_crm_still_lets_the_shop_sell_to_known_customers_and_their_points_follow() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let (cluster, base, _log) = Cluster::start(dir.path(), &dir.path().join("data"), &[], &http).await;
    let product = get_json(&http, format!("{base}/products")).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer: Value = http
        .post(format!("{base}/customers"))
        .json(&json!({"name": "Frozen CRM"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer = customer["id"].as_str().unwrap().to_owned();
    let leaving: Value = http
        .post(format!("{base}/customers"))
        .json(&json!({"name": "Leaving"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let leaving = leaving["id"].as_str().unwrap().to_owned();

    let crm = Frozen::freeze(pid_of(&cluster, "crm").expect("the crm process is running"));
    let health = get_json(&http, format!("{base}/health")).await;
    let deps = health["dependencies"].as_array().unwrap();
    let down: Vec<&str> = deps
        .iter()
        .filter(|d| d["ok"] == false)
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(down, ["crm"], "{health}");
    assert!(health.to_string().contains("sell without the customer"), "{health}");

    let orders = format!("{base}/orders");
    let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 2}]});
    let (status, sold) = send(&http, &orders, &body, "frozen-known").await.expect("an answer");
    assert_eq!((status, &sold["status"]), (201, &json!("confirmed")), "{sold}");
    let stranger = json!({"customer_id": "not-known-here", "lines": [{"product_id": product, "quantity": 1}]});
    let (status, problem) = send(&http, &orders, &stranger, "frozen-unknown")
        .await
        .expect("an answer");
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("sell without the customer")),
        "{problem}"
    );
    let erasure = http
        .delete(format!("{base}/customers/{leaving}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(erasure.status(), 202);
    assert_eq!(
        erasure.headers()["location"].to_str().unwrap(),
        format!("/api/v1/customers/{leaving}")
    );
    let erasure: Value = erasure.json().await.unwrap();
    assert!(
        erasure["detail"]
            .as_str()
            .is_some_and(|d| d.contains("the erasure is recorded") && d.contains("by themselves")),
        "{erasure}"
    );
    let named = json!({"customer_id": leaving, "lines": [{"product_id": product, "quantity": 1}]});
    let (status, refused) = send(&http, &orders, &named, "frozen-erased").await.expect("an answer");
    assert_eq!(
        status, 422,
        "no order names them once the erasure was answered: {refused}"
    );

    drop(crm);
    let since = Instant::now();
    loop {
        let reply = http.get(format!("{base}/customers/{customer}")).send().await.unwrap();
        if reply.status() == 200 && reply.json::<Value>().await.unwrap()["points"] == sold["points"] {
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(30), "the points never followed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let reply = http.get(format!("{base}/customers/{leaving}")).send().await.unwrap();
        if reply.status() == 200 && reply.json::<Value>().await.unwrap()["anonymised"] == true {
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(30), "the erasure never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `lemonade cluster 2>&1 | <reader>` with all four processes up, on a free port: the
/// cluster, its base URL and the reading end of the pipe its output goes to (a new cluster
/// on other ports when another process took one of them meanwhile).
async fn start_into_a_pipe(data: &Path, http: &reqwest::Client) -> (Cluster, String, std::io::PipeReader) {
    for _ in 0..3 {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        let port = free_port();
        let out = Stdio::from(writer.try_clone().expect("a second end"));
        let mut cluster = Cluster::spawn_to(port, data, &[], out, Stdio::from(writer));
        let base = format!("http://127.0.0.1:{port}/api/v1");
        if cluster.wait_up(http, &base, Path::new("/dev/null")).await {
            return (cluster, base, reader);
        }
    }
    panic!("the cluster exited while starting, 3 times");
}

/// `lemonade cluster 2>&1 | less`, with less never scrolling: nobody reads the cluster's
/// output. CRM is frozen and the shop is flooded with orders for customers it does not know,
/// each of which the coordinator logs. Every request is answered, the coordinator's own
/// health check answers, and the supervisor kills and restarts the frozen CRM. Before, the
/// supervisor blocked writing the children's log lines to the full pipe, stopped reading
/// theirs, and the coordinator blocked writing its log: nothing answered, and nothing was
/// restarted, until somebody read the pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_output_nobody_reads_keeps_serving_and_restarts_a_frozen_child() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let (cluster, base, unread) = start_into_a_pipe(&dir.path().join("data"), &http).await;
    let product = get_json(&http, format!("{base}/products")).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let crm = pid_of(&cluster, "crm").unwrap();
    let _frozen = Frozen::freeze(crm);

    // Each logs a warning line of a few hundred bytes: several times what the pipes between
    // the coordinator, the supervisor and the reader hold (64 KiB each).
    let orders = 1_500;
    let at_once = 16;
    for first in (0..orders).step_by(at_once) {
        let batch: Vec<_> = (first..orders.min(first + at_once))
            .map(|n| {
                let body = json!({
                    "customer_id": format!("01900000-0000-7000-8000-{n:012}"),
                    "lines": [{"product_id": product, "quantity": 1}],
                });
                let request = http.post(format!("{base}/orders")).json(&body);
                tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
            })
            .collect();
        for task in batch {
            if let Err(e) = task.await.expect("a request task") {
                panic!("after {first} of {orders} orders, one got no answer: {e}");
            }
        }
    }
    let root = base.trim_end_matches("/api/v1");
    let health = http.get(format!("{root}/health")).send().await.map(|r| r.status());
    assert!(
        health.as_ref().is_ok_and(|s| *s == 200),
        "the coordinator's health: {health:?}"
    );
    wait_restarted(&cluster, "crm", crm, Duration::from_secs(60), Path::new("/dev/null")).await;
    wait_all_up(&http, &base, Path::new("/dev/null")).await;
    drop(unread);
}

/// `lemonade cluster 2>&1 | head -1`: the reader takes one line and leaves. The next thing
/// the supervisor writes (that CRM, killed, is down) meets a closed pipe: the supervisor
/// keeps running, restarts CRM, keeps the others, and stops cleanly on SIGTERM, taking its
/// children with it. Before, the write panicked (Rust's print macros do on EPIPE): the task
/// watching CRM died with it, and CRM was never restarted (the same panic in the startup
/// lines took the whole cluster down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_reader_left_keeps_running_and_stops_on_sigterm() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (mut cluster, base, reader) = start_into_a_pipe(&dir.path().join("data"), &http).await;
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(reader).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .expect("the cluster wrote a line");
    assert!(!first.is_empty(), "no output at all");
    // The reader is gone now.

    let others: Vec<(&str, u32)> = ["coordinator", "stock", "orders"]
        .into_iter()
        .map(|role| (role, pid_of(&cluster, role).unwrap()))
        .collect();
    let crm = pid_of(&cluster, "crm").unwrap();
    signal(crm, "KILL");
    let crm = wait_restarted(&cluster, "crm", crm, Duration::from_secs(30), Path::new("/dev/null")).await;
    wait_all_up(&http, &base, Path::new("/dev/null")).await;
    for (role, pid) in &others {
        assert_eq!(pid_of(&cluster, role), Some(*pid), "{role} was restarted");
    }
    assert!(
        cluster.supervisor.try_wait().unwrap().is_none(),
        "the supervisor exited"
    );

    signal(cluster.supervisor.id(), "TERM");
    let since = Instant::now();
    let status = loop {
        if let Some(status) = cluster.supervisor.try_wait().unwrap() {
            break status;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "no stop within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "the supervisor stopped with {status}");
    for pid in others.iter().map(|(_, pid)| *pid).chain([crm]) {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived its supervisor"
        );
    }
}

/// The state letter of `pid` in `/proc/<pid>/stat` (`T`: stopped), if it is there.
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Waits, up to 20 s, until every process of `pids` is stopped (`stopped`) or running.
async fn wait_states(pids: &[u32], stopped: bool) {
    let since = Instant::now();
    loop {
        let states: Vec<_> = pids.iter().map(|&pid| state_of(pid)).collect();
        if states.iter().all(|s| (*s == Some('T')) == stopped) {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "states of {pids:?}: {states:?}, wanted all {}",
            if stopped { "stopped" } else { "running" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ctrl-Z (SIGTSTP to the supervisor, the only process of the terminal's job: its children
/// have process groups of their own) pauses every process of the cluster, and SIGCONT (`fg`)
/// continues them all, none restarted. Before, only the supervisor stopped: the children went
/// on unsupervised, waiting on it as soon as their log pipes were full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_z_pauses_every_process_of_the_cluster_and_fg_continues_them() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (cluster, base, log) = Cluster::start(dir.path(), &dir.path().join("data"), &[], &http).await;
    let children: Vec<u32> = ["coordinator", "stock", "orders", "crm"]
        .into_iter()
        .map(|role| pid_of(&cluster, role).unwrap())
        .collect();
    let supervisor = cluster.supervisor.id();
    let everyone: Vec<u32> = children.iter().copied().chain([supervisor]).collect();

    signal(supervisor, "TSTP");
    wait_states(&everyone, true).await;
    signal(supervisor, "CONT");
    wait_states(&everyone, false).await;
    wait_all_up(&http, &base, &log).await;
    let now: Vec<Option<u32>> = ["coordinator", "stock", "orders", "crm"]
        .into_iter()
        .map(|role| pid_of(&cluster, role))
        .collect();
    assert_eq!(
        now,
        children.into_iter().map(Some).collect::<Vec<_>>(),
        "a process was restarted:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
