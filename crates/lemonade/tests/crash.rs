//! The crash-safety proof, against the real binary.
//!
//! A shop under load from many clients is killed with SIGKILL, restarted on the same data
//! folder, and then:
//! - every order the server acknowledged (201) is there, confirmed;
//! - every request whose outcome the client could not know (no answer, or an answer that does
//!   not say "done"), retried with the same body and idempotency key, ends in exactly one order:
//!   the first one replayed, or a new one if the first never committed;
//! - the shop holds exactly those orders, no duplicates, and the customer's points are exactly
//!   what those orders earned;
//! - `lemonade check` finds every invariant holding, on the files as the crash left them and
//!   after the restarted server stopped.
//!
//! Three kill/restart cycles run on the same shop. Every wait and loop is bounded, and the
//! server process is killed when the test fails (a guard that kills in `Drop`).
//!
//! Note what SIGKILL proves: committed data survives the process dying at any instant (the OS
//! still holds what was written). Power loss additionally depends on `synchronous=FULL`, which
//! this test cannot observe.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod binary;
use binary::{BIN, Server};

/// Concurrent clients placing orders.
const CLIENTS: usize = 16;
/// Acknowledged orders before the kill, per cycle.
const ACKED_BEFORE_KILL: usize = 200;
/// Most orders one client places in one cycle (a bound in case the kill never lands).
const ORDERS_PER_CLIENT_MAX: usize = 2_000;
const CYCLES: usize = 3;
/// Lemonade costs 350 minor units; one point per 100.
const POINTS_PER_ORDER: u64 = 3;
/// Enough stock for this many lemonades.
const STOCK_FOR_ORDERS: i64 = 100_000;

const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `lemonade check --data <data>`: (exit code, stdout, stderr).
fn check(data: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["check", "--data"])
        .arg(data)
        .env_remove("LEMONADE_DATA")
        .output()
        .expect("run lemonade check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_check_clean(data: &Path, when: &str) {
    let (code, stdout, stderr) = check(data);
    assert_eq!(
        code,
        Some(0),
        "lemonade check {when}: exit {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("ok"), "lemonade check {when} printed:\n{stdout}");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("build a client")
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let r = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

async fn post_json(client: &reqwest::Client, url: &str, body: Value, expect: u16) -> Value {
    let r = client
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, expect, "POST {url} {body}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: not JSON: {e}: {text}"))
}

/// The demo shop's lemonade, with its ingredients restocked for [`STOCK_FOR_ORDERS`] orders,
/// and a new customer. Returns (product id, customer id).
async fn prepare_shop(client: &reqwest::Client, base: &str) -> (String, String) {
    let products = get_json(client, &format!("{base}/products?limit=200")).await;
    let lemonade = products["items"]
        .as_array()
        .expect("a page of products")
        .iter()
        .find(|p| p["name"] == "Lemonade")
        .unwrap_or_else(|| panic!("the demo shop sells Lemonade: {products}"))
        .clone();
    assert_eq!(lemonade["price"], 350, "the points arithmetic assumes 350: {lemonade}");
    for item in lemonade["recipe"].as_array().expect("a recipe") {
        let ingredient = item["ingredient_id"].as_str().expect("an ingredient id");
        let per_unit = item["quantity"].as_i64().expect("a quantity");
        post_json(
            client,
            &format!("{base}/ingredients/{ingredient}/restock"),
            json!({ "quantity": per_unit * STOCK_FOR_ORDERS }),
            200,
        )
        .await;
    }
    let customer = post_json(
        client,
        &format!("{base}/customers"),
        json!({ "name": "Crash Test Dummy" }),
        201,
    )
    .await;
    (
        lemonade["id"].as_str().expect("a product id").to_owned(),
        customer["id"].as_str().expect("a customer id").to_owned(),
    )
}

/// What the clients saw during one cycle's load.
#[derive(Default)]
struct Seen {
    /// Order ids answered 201.
    acked: Vec<String>,
    /// Keys whose outcome the client does not know: no response, or a response other than 201
    /// (a 503 from the request timeout may still commit behind it).
    unknown: Vec<String>,
    /// Statuses other than 201 that came back, for the failure message.
    other_statuses: Vec<u16>,
    /// Clients still placing orders when the kill came.
    sending_at_kill: usize,
}

/// Places orders from [`CLIENTS`] tasks until the server dies (or each has placed
/// [`ORDERS_PER_CLIENT_MAX`]); SIGKILLs the server once [`ACKED_BEFORE_KILL`] were acked.
async fn load_and_kill(server: &mut Server, order_body: &Value, cycle: usize) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let http = client();
    let mut tasks = Vec::with_capacity(CLIENTS);
    for task in 0..CLIENTS {
        let (seen, acked_count, stop, http) = (seen.clone(), acked_count.clone(), stop.clone(), http.clone());
        let url = format!("{}/orders", server.base);
        let body = order_body.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..ORDERS_PER_CLIENT_MAX {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("crash-{cycle}-{task}-{n}-{}", uuid::Uuid::now_v7());
                let sent = http.post(&url).header("Idempotency-Key", &key).json(&body).send().await;
                let response = match sent {
                    Ok(r) => r,
                    Err(_) => {
                        // The server is gone (or the answer was lost): nobody knows.
                        seen.lock().unwrap().unknown.push(key);
                        break;
                    }
                };
                let status = response.status().as_u16();
                let order: Option<Value> = if status == 201 {
                    response.json().await.ok()
                } else {
                    None
                };
                let mut seen = seen.lock().unwrap();
                match order {
                    Some(order) => {
                        assert_eq!(order["status"], "confirmed", "a 201 says confirmed: {order}");
                        seen.acked.push(order["id"].as_str().expect("an order id").to_owned());
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        // A 201 whose body was cut off by the kill is as unknown as no answer.
                        seen.unknown.push(key);
                        seen.other_statuses.push(status);
                    }
                }
            }
        }));
    }

    let deadline = Instant::now() + LOAD_TIMEOUT;
    while acked_count.load(Ordering::Relaxed) < ACKED_BEFORE_KILL + 50 * cycle {
        assert!(
            Instant::now() < deadline,
            "only {} orders acknowledged within {LOAD_TIMEOUT:?}",
            acked_count.load(Ordering::Relaxed)
        );
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sending_at_kill = tasks.iter().filter(|t| !t.is_finished()).count();
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(REQUEST_TIMEOUT * 2, task)
            .await
            .expect("a client task ended after the kill")
            .expect("a client task did not panic");
    }
    let mut seen = Arc::try_unwrap(seen)
        .ok()
        .expect("every task has ended")
        .into_inner()
        .unwrap();
    seen.sending_at_kill = sending_at_kill;
    seen
}

/// Every order id in the shop, paging with `limit=200`; panics on a duplicate.
async fn all_order_ids(client: &reqwest::Client, base: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor: Option<String> = None;
    for _page in 0..10_000 {
        let url = match &cursor {
            None => format!("{base}/orders?limit=200"),
            Some(c) => format!("{base}/orders?limit=200&cursor={c}"),
        };
        let page = get_json(client, &url).await;
        for order in page["items"].as_array().expect("a page of orders") {
            let id = order["id"].as_str().expect("an order id").to_owned();
            assert!(ids.insert(id.clone()), "order {id} listed twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
    panic!("more than 10 000 pages of orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_orders_survive_sigkill_and_retries_never_duplicate() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let data = tmp.path().join("shop");
    let logs = tmp.path();
    let http = client();

    let mut server = Server::start(&data, logs, "setup").await;
    let (product, customer) = prepare_shop(&http, &server.base).await;
    let order_body = json!({
        "customer_id": customer,
        "lines": [{ "product_id": product, "quantity": 1 }],
    });

    // Every order the shop should hold, across all cycles.
    let mut expected: HashSet<String> = HashSet::new();
    for cycle in 1..=CYCLES {
        let seen = load_and_kill(&mut server, &order_body, cycle).await;
        assert!(
            seen.acked.len() >= ACKED_BEFORE_KILL,
            "cycle {cycle}: the kill came after only {} acknowledged orders",
            seen.acked.len()
        );
        assert_eq!(
            seen.sending_at_kill, CLIENTS,
            "cycle {cycle}: the kill did not land mid-load"
        );

        // The files exactly as the crash left them (WAL not checkpointed, no clean close).
        assert_check_clean(&data, &format!("after the SIGKILL of cycle {cycle}"));

        server = Server::start(&data, logs, &format!("cycle-{cycle}")).await;
        let base = server.base.clone();

        // Every acknowledged order is there and confirmed.
        for id in &seen.acked {
            let r = http
                .get(format!("{base}/orders/{id}"))
                .send()
                .await
                .expect("the restarted server answers");
            assert_eq!(
                r.status(),
                200,
                "cycle {cycle}: order {id} was acknowledged with 201 before the kill and is gone after it"
            );
            let order: Value = r.json().await.expect("an order");
            assert_eq!(
                order["status"], "confirmed",
                "cycle {cycle}: acknowledged order {order}"
            );
            assert!(
                expected.insert(id.clone()),
                "cycle {cycle}: order {id} acknowledged twice"
            );
        }

        // Every unknown outcome, retried with its key, ends in exactly one order.
        let (mut replayed, mut fresh) = (0, 0);
        for key in &seen.unknown {
            let r = http
                .post(format!("{base}/orders"))
                .header("Idempotency-Key", key)
                .json(&order_body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: retry of {key}: {e}"));
            let status = r.status();
            let was_replayed = r
                .headers()
                .get("idempotent-replayed")
                .is_some_and(|v| v.as_bytes() == b"true");
            let order: Value = r.json().await.expect("an order");
            assert_eq!(status, 201, "cycle {cycle}: retry of {key}: {order}");
            assert_eq!(order["status"], "confirmed", "cycle {cycle}: retry of {key}: {order}");
            let id = order["id"].as_str().expect("an order id").to_owned();
            assert!(
                expected.insert(id.clone()),
                "cycle {cycle}: retry of {key} answered with order {id}, which another request already has"
            );
            if was_replayed {
                replayed += 1
            } else {
                fresh += 1
            }
            // A second retry is a replay of the same order.
            let again = http
                .post(format!("{base}/orders"))
                .header("Idempotency-Key", key)
                .json(&order_body)
                .send()
                .await
                .expect("a second retry");
            assert_eq!(again.status(), 201);
            assert_eq!(
                again.headers().get("idempotent-replayed").map(|v| v.as_bytes()),
                Some(&b"true"[..])
            );
            let again: Value = again.json().await.expect("an order");
            assert_eq!(again["id"], order["id"], "cycle {cycle}: a second retry of {key}");
        }
        eprintln!(
            "cycle {cycle}: {} acknowledged, {} unknown ({replayed} had committed, {fresh} had not; other statuses {:?})",
            seen.acked.len(),
            seen.unknown.len(),
            seen.other_statuses
        );

        // The shop holds exactly these orders: none lost, none twice.
        let listed = all_order_ids(&http, &base).await;
        assert_eq!(
            listed.len(),
            expected.len(),
            "cycle {cycle}: {} orders listed, {} expected",
            listed.len(),
            expected.len()
        );
        assert_eq!(
            listed, expected,
            "cycle {cycle}: the listed orders are not the expected ones"
        );

        let customer_now = get_json(&http, &format!("{base}/customers/{customer}")).await;
        assert_eq!(
            customer_now["points"].as_u64(),
            Some(POINTS_PER_ORDER * expected.len() as u64),
            "cycle {cycle}: {} orders of 3 points each",
            expected.len()
        );

        let status = server.terminate().await;
        assert!(status.success(), "cycle {cycle}: the server stopped with {status}");
        assert_check_clean(&data, &format!("after the restart of cycle {cycle}"));

        if cycle < CYCLES {
            server = Server::start(&data, logs, &format!("load-{}", cycle + 1)).await;
        }
    }
}
