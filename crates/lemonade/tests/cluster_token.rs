//! `lemonade cluster --token`: the real binary, with an access token (as it must have when it
//! listens beyond loopback). Its supervisor checks the coordinator's health through the
//! public API, which then wants the token too. And the cluster token of the internal calls,
//! read from the `Authorization` header as the public token is.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lemonade");

/// Starts the real `lemonade cluster` on a free port with `data` and one more variable in its
/// environment; its standard output comes line by line through the receiver.
fn start_cluster(data: &std::path::Path, (name, value): (&str, &str)) -> (Child, Receiver<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["cluster", "--empty", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env(name, value)
        .env("LEMONADE_LOG", "warn")
        .env_remove("LEMONADE_SERVICES_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lemonade cluster");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Before the fix the supervisor probed without the token, got 401 for 30 s, called the
/// coordinator unhealthy and stopped every process; it never said the cluster was up.
#[test]
fn a_cluster_with_an_access_token_comes_up_and_stays_up() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, rx) = start_cluster(data.path(), ("LEMONADE_TOKEN", "a-token-of-sixteen-or-more"));
    // Well within the 30 s after which the old supervisor gave up.
    let up = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(25)).ok())
        .any(|line| line.starts_with("Lemonade cluster is up"));
    let still_running = child.try_wait().unwrap().is_none();
    // SIGTERM: the supervisor stops its processes, then itself.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(up, "the supervisor never said the cluster was up");
    assert!(still_running, "the supervisor stopped the cluster");
}

/// A service takes the cluster token with the scheme in any case (RFC 7235: the scheme is
/// case-insensitive), as the public API does; before, only `Bearer` with a capital B passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_takes_the_cluster_token_with_the_scheme_in_any_case_and_nothing_else() {
    let data = tempfile::tempdir().unwrap();
    let token = "the-cluster-token-of-this-test";
    let mut cluster = lemonade::cluster::start_in_process(data.path(), |args| {
        args.cluster_token = Some(token.to_owned());
        args.empty = true;
    })
    .await
    .expect("start a cluster");
    let stock = cluster
        .services
        .iter()
        .find(|(role, _)| *role == lemonade::serve::RoleArg::Stock)
        .expect("a stock service")
        .1
        .addr;
    let http = reqwest::Client::new();
    let status_with = |authorization: String| {
        let request = http
            .post(format!("http://{stock}/internal/v1/stock/status"))
            .header("content-type", "application/json")
            .header("authorization", authorization)
            .body("{}");
        async move { request.send().await.expect("stock answers").status().as_u16() }
    };
    for scheme in ["Bearer", "bearer", "BEARER"] {
        assert_eq!(status_with(format!("{scheme} {token}")).await, 200, "{scheme}");
    }
    for wrong in [
        format!("Basic {token}"),
        format!("Bearer {token}x"),
        token.to_owned(),
        "Bearer ".to_owned(),
    ] {
        assert_eq!(status_with(wrong.clone()).await, 401, "{wrong}");
    }
    cluster.stop().await.expect("stop the cluster");
}

/// `LEMONADE_CLUSTER_TOKEN` given to `lemonade cluster` is the token of its services (it was
/// ignored: the supervisor made up its own, so an operator could not call them): a service
/// answers a call that carries it, and refuses one that carries another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_token_given_to_the_supervisor_is_the_one_its_services_take() {
    let data = tempfile::tempdir().unwrap();
    let token = "the-operators-cluster-token";
    let (mut child, rx) = start_cluster(data.path(), ("LEMONADE_CLUSTER_TOKEN", token));
    // The supervisor's table: `  stock        127.0.0.1:40123        /tmp/.../stock.db`.
    let stock = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(25)).ok()).find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("stock"))
            .then(|| words.next().map(str::to_owned))
            .flatten()
    });
    let statuses = match &stock {
        Some(stock) => {
            let http = reqwest::Client::new();
            let mut statuses = Vec::new();
            for presented in [token.to_owned(), format!("{token}x")] {
                let status = http
                    .post(format!("http://{stock}/internal/v1/stock/status"))
                    .header("content-type", "application/json")
                    .bearer_auth(presented)
                    .body("{}")
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                statuses.push(status.ok());
            }
            statuses
        }
        None => vec![],
    };
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(stock.is_some(), "the supervisor never said where stock is");
    assert_eq!(statuses, [Some(200), Some(401)], "the given token, and another");
}
