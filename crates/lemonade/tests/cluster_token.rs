//! `lemonade cluster --token`: the real binary, with an access token (as it must have when it
//! listens beyond loopback). Its supervisor checks the coordinator's health through the
//! public API, which then wants the token too.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lemonade");

/// Before the fix the supervisor probed without the token, got 401 for 30 s, called the
/// coordinator unhealthy and stopped every process; it never said the cluster was up.
#[test]
fn a_cluster_with_an_access_token_comes_up_and_stays_up() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["cluster", "--empty", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .env("LEMONADE_TOKEN", "a-token-of-sixteen-or-more")
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
