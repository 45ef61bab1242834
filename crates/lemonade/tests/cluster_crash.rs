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
//! run side by side, and it refuses an address in use before starting anything.

use std::collections::HashMap;
use std::path::Path;
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
        let supervisor = Command::new(BIN)
            .args(["cluster", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(extra)
            .env("LEMONADE_LOG", "warn")
            .env_remove("LEMONADE_TOKEN")
            .env_remove("LEMONADE_SERVICES_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log_path).unwrap()))
            .spawn()
            .expect("start lemonade cluster");
        Cluster { supervisor }
    }

    /// Waits until the coordinator answers healthy (true) or the supervisor exits (false).
    async fn wait_up(&mut self, http: &reqwest::Client, base: &str, log_path: &Path) -> bool {
        let started = Instant::now();
        loop {
            let healthy = http
                .get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if healthy {
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
    // Another process may take one of the ports between picking and binding: then the
    // supervisor exits, and the cluster is started again on other ports.
    let mut attempt = 0;
    let (cluster, base) = loop {
        attempt += 1;
        let port = free_port();
        let log_path = dir.path().join(format!("cluster-{attempt}.log"));
        let extra = match &storage {
            Storage::Sqlite => vec![],
            Storage::Postgres(base) => vec!["--postgres".to_owned(), base.clone()],
        };
        let mut cluster = Cluster::spawn(port, &data, &extra, &log_path);
        let base = format!("http://127.0.0.1:{port}/api/v1");
        let up = cluster.wait_up(&http, &base, &log_path).await;
        if up {
            break (cluster, base);
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(attempt < 3, "the cluster exited while starting, 3 times:\n{log}");
    };
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

/// Continues a process stopped with SIGSTOP when dropped, whatever the test did.
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Frozen {
        let stopped = Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap();
        assert!(stopped.success());
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
/// cashier can act on, and the points follow once CRM runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_crm_still_lets_the_shop_sell_to_known_customers_and_their_points_follow() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let port = free_port();
    let log_path = dir.path().join("cluster.log");
    let mut cluster = Cluster::spawn(port, &dir.path().join("data"), &[], &log_path);
    let base = format!("http://127.0.0.1:{port}/api/v1");
    assert!(
        cluster.wait_up(&http, &base, &log_path).await,
        "the cluster exited:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
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
}
