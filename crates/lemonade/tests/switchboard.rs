//! The fault switchboard against a real `lemonade cluster`: faults set at runtime through
//! `lemonade faults` are injected, counted in `/metrics` and shown, orders still end 201 or
//! 202, and bad input is refused and changes nothing; and a coordinator made to exit after
//! its commit, before its reply, is restarted by the supervisor, and the client's retry with
//! the same idempotency key gets the one order that was made.

#[allow(dead_code)] // this test crate uses only the clean command and the free port
mod binary;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use binary::{free_port, lemonade_command};
use serde_json::{Value, json};

const CLUSTER_TOKEN: &str = "a-cluster-token-of-the-switchboard-test";

/// `lemonade cluster`, its children killed with it when dropped.
struct Cluster {
    supervisor: Child,
    url: String,
    log: PathBuf,
}

impl Cluster {
    /// A cluster with every service up, the cluster token known to the test. Another
    /// process may take a port between picking and binding: then it is started again.
    async fn start(dir: &Path, http: &reqwest::Client, extra: &[&str]) -> Cluster {
        for attempt in 1..=3 {
            let port = free_port();
            let log = dir.join(format!("cluster-{attempt}.log"));
            let supervisor = lemonade_command()
                .args(["cluster", "--addr", &format!("127.0.0.1:{port}"), "--data"])
                .arg(dir.join("data"))
                .args(["--cluster-token", CLUSTER_TOKEN, "--seed", "20261201"])
                .args(extra)
                .env("LEMONADE_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
                .spawn()
                .expect("start lemonade cluster");
            let mut cluster = Cluster {
                supervisor,
                url: format!("http://127.0.0.1:{port}"),
                log,
            };
            if cluster.wait_up(http).await {
                return cluster;
            }
        }
        panic!("the cluster did not start in 3 attempts");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the coordinator reports every service up (true) or the supervisor exits.
    async fn wait_up(&mut self, http: &reqwest::Client) -> bool {
        let since = Instant::now();
        loop {
            let up = match http.get(format!("{}/api/v1/health", self.url)).send().await {
                Ok(reply) if reply.status() == 200 => reply.json::<Value>().await.is_ok_and(|h| h["ok"] == true),
                _ => false,
            };
            if up {
                return true;
            }
            if self.supervisor.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(since.elapsed() < Duration::from_secs(60), "not up:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `lemonade faults <args> --url <coordinator>`: its status and output.
    fn faults(&self, args: &[&str]) -> (i32, String) {
        let out = lemonade_command()
            .arg("faults")
            .args(args)
            .args(["--url", &self.url])
            .env("LEMONADE_CLUSTER_TOKEN", CLUSTER_TOKEN)
            .env("LEMONADE_LOG", "warn")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let supervisor = self.supervisor.id().to_string();
        let _ = Command::new("kill").args(["-STOP", &supervisor]).status();
        let out = Command::new("pgrep").args(["-P", &supervisor]).output().unwrap();
        for pid in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A product of the demo shop.
async fn a_product(http: &reqwest::Client, url: &str) -> String {
    let page: Value = http
        .get(format!("{url}/api/v1/products?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"][0]["id"]
        .as_str()
        .expect("the demo shop has products")
        .to_owned()
}

async fn place(http: &reqwest::Client, url: &str, product: &str, key: &str) -> reqwest::Result<(u16, Value)> {
    let reply = http
        .post(format!("{url}/api/v1/orders"))
        .header("idempotency-key", key)
        .json(&json!({"lines": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await?;
    let status = reply.status().as_u16();
    Ok((status, reply.json().await.unwrap_or(Value::Null)))
}

/// The lines of the coordinator's `/metrics` that count injected faults of `kind`.
async fn injected_lines(http: &reqwest::Client, url: &str, kind: &str) -> Vec<String> {
    let text = http
        .get(format!("{url}/api/v1/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("lemonade_faults_injected_total{") && l.contains(&format!("kind=\"{kind}\"")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_set_through_the_cli_are_injected_counted_and_cleared_and_orders_still_end_201_or_202() {
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    // Given at start, each process gets the calls' sections and its own: the orders
    // service would refuse to start with the coordinator's.
    let at_start = "stock: delay 1ms; @coordinator: clock +1s";
    // A clock 1 s ahead is past the default bound of the hybrid logical clocks (500 ms),
    // whose services would refuse the coordinator's calls (503 clock_skew): this test is of
    // the switchboard, so the bound is wider.
    let cluster = Cluster::start(
        dir.path(),
        &http,
        &["--faults", at_start, "--max-clock-offset-ms", "5000"],
    )
    .await;
    let url = cluster.url.clone();
    let product = a_product(&http, &url).await;
    let (status, out) = cluster.faults(&["show"]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains(&format!("coordinator process: faults {at_start}")),
        "{out}"
    );

    let faults = "stock: delay 2ms±2ms, rate-limit 100ms 20%; orders: duplicate 50%, lose-reply 10%";
    let (status, out) = cluster.faults(&["set", faults]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains(&format!("coordinator process: faults {faults}")), "{out}");

    let mut statuses = Vec::new();
    for i in 0..20 {
        let (status, order) = place(&http, &url, &product, &format!("switchboard-{i}")).await.unwrap();
        assert!(matches!(status, 201 | 202), "{status}: {order}\n{}", cluster.log());
        statuses.push(status);
    }
    assert!(statuses.contains(&201), "{statuses:?}");
    let delays = injected_lines(&http, &url, "delay").await;
    assert!(
        delays.iter().any(|l| l.contains("target=\"stock\"")),
        "every call to stock is delayed, and counted: {delays:?}"
    );
    assert!(!injected_lines(&http, &url, "duplicate").await.is_empty());
    let (status, out) = cluster.faults(&["show"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("delay") && out.contains("injected"), "{out}");

    // Bad input: refused at the edge by the command, by the endpoint with a problem, and
    // nothing changes.
    let (status, out) = cluster.faults(&["set", "stock: refuse 200%"]);
    assert_ne!(status, 0);
    assert!(out.contains("column 15") && out.contains("0% to 100%"), "{out}");
    let put = |body: Value, token: Option<&str>| {
        let mut request = http.put(format!("{url}/admin/faults")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let reply = put(json!({"faults": "crm: refuse"}), None).await.unwrap();
    assert_eq!(reply.status(), 401);
    let reply = put(json!({"faults": "crm: refuse"}), Some("not-the-cluster-token-at-all"))
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let reply = put(json!({"faults": "crm: refuse 5"}), Some(CLUSTER_TOKEN))
        .await
        .unwrap();
    assert_eq!(reply.status(), 422);
    assert_eq!(reply.headers()["content-type"], "application/problem+json");
    let problem: Value = reply.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("column 13"), "{problem}");
    let reply = put(json!({"faults": "@crm: clock +1s"}), Some(CLUSTER_TOKEN))
        .await
        .unwrap();
    assert_eq!(reply.status(), 422);
    let reply = put(json!({"spec": "crm: refuse"}), Some(CLUSTER_TOKEN)).await.unwrap();
    assert_eq!(reply.status(), 400);
    let (_, out) = cluster.faults(&["show"]);
    assert!(out.contains(&format!("faults {faults}")), "unchanged: {out}");

    let (status, out) = cluster.faults(&["clear"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("coordinator process: faults none"), "{out}");
    let before = injected_lines(&http, &url, "delay").await;
    let (status, _) = place(&http, &url, &product, "switchboard-after").await.unwrap();
    assert_eq!(status, 201);
    assert_eq!(
        injected_lines(&http, &url, "delay").await,
        before,
        "nothing injected once cleared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_that_exits_after_its_commit_is_restarted_and_the_retry_gets_the_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let mut cluster = Cluster::start(dir.path(), &http, &[]).await;
    let url = cluster.url.clone();
    let product = a_product(&http, &url).await;

    let (status, out) = cluster.faults(&["set", "@coordinator: exit after-commit"]);
    assert_eq!(status, 0, "{out}");
    let lost = place(&http, &url, &product, "exit-once").await;
    assert!(lost.is_err(), "the process exits before its reply: {lost:?}");

    // The supervisor restarts it, without the faults set at runtime.
    assert!(cluster.wait_up(&http).await, "{}", cluster.log());
    assert!(cluster.log().contains("restarting it"), "{}", cluster.log());
    let (status, order) = place(&http, &url, &product, "exit-once").await.unwrap();
    assert!(matches!(status, 201 | 202), "{status}: {order}");
    let (again, replayed) = place(&http, &url, &product, "exit-once").await.unwrap();
    assert_eq!((again, &replayed["id"]), (status, &order["id"]), "the key replays");
    let orders: Value = http
        .get(format!("{url}/api/v1/orders?limit=200"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = orders["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(ids, [order["id"].clone()], "exactly one order was made");
}
