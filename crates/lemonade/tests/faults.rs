//! The article's failure cases, injected into every call the coordinator makes: the
//! connection refused, 429, a timeout, a reply that cannot be decoded, and a call carried out
//! whose reply was lost. After each, the client's answer is right, a retry with the same key
//! replays it, the customer's points match, and the audit across the four databases is clean.
//! Then the faults that last: a service away past the request's deadline (202, then settled
//! by the sweeper) and a lease that runs out (the saga compensates). Last, the inbox's retention
//! against the real relay.

use std::time::{Duration, Instant};

use lemonade::cluster::{InProcess, start_in_process_with_faults};
use lemonade::serve::ServeArgs;
use lemonade_cluster::faults::{Fault, FaultPlan};
use lemonade_cluster::rpc::{
    Call, CancelOrder, CommitReservation, CreateOrder, CrmEvents, CrmStatus, GetCustomer, Reserve, StockEvents,
};
use serde_json::{Value, json};

struct Shop {
    cluster: InProcess,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    base: String,
    plan: FaultPlan,
}

async fn shop(configure: impl FnOnce(&mut ServeArgs)) -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::default();
    let cluster = start_in_process_with_faults(dir.path(), configure, Some(plan.clone()))
        .await
        .expect("start the cluster");
    let base = format!("http://{}/api/v1", cluster.coordinator.addr);
    Shop {
        cluster,
        dir,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base,
        plan,
    }
}

impl Shop {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let reply = request.send().await.expect("the coordinator answers");
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
    async fn product(&self) -> String {
        self.get("/products").await["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn customer(&self) -> String {
        let (status, c) = self
            .send(
                reqwest::Method::POST,
                "/customers",
                Some(json!({"name": "Faulty"})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{c}");
        c["id"].as_str().unwrap().to_owned()
    }
    async fn place(&self, customer: &str, product: &str, key: &str) -> (u16, Value) {
        let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 2}]});
        self.send(reqwest::Method::POST, "/orders", Some(body), Some(key)).await
    }

    /// Waits until the cluster has settled and its audit is clean; fails with the report if
    /// it does not within 20 s.
    async fn assert_settles_clean(&self) {
        let started = Instant::now();
        loop {
            let dir = self.dir.path().to_owned();
            let report = tokio::task::spawn_blocking(move || lemonade_store::audit::audit_cluster(&dir))
                .await
                .unwrap()
                .expect("the cluster can be audited");
            if report.is_clean() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the audit found violations:\n{}",
                report.to_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One fault on the first call of `path`: the order still goes through exactly once, and
/// its cancellation gives everything back exactly once.
async fn one_fault_is_absorbed(path: &'static str, fault: Fault) {
    let shop = shop(|_| {}).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let stock_before = shop.get("/ingredients").await;
    shop.plan.inject(path, fault, 1);
    let (status, order) = shop.place(&customer, &product, "k-1").await;
    assert_eq!(status, 201, "{path} {fault:?}: {order}");
    assert_eq!(order["status"], "confirmed");
    let (again, replay) = shop.place(&customer, &product, "k-1").await;
    assert_eq!((again, &replay), (201, &order), "{path} {fault:?}: the retry replays");
    shop.assert_settles_clean().await;
    let orders = shop.get(&format!("/orders?customer_id={customer}")).await;
    assert_eq!(
        orders["items"].as_array().unwrap().len(),
        1,
        "{path} {fault:?}: one order"
    );
    let points = shop.get(&format!("/customers/{customer}")).await["points"].clone();
    assert_eq!(points, order["points"], "{path} {fault:?}: points awarded once");

    let id = order["id"].as_str().unwrap();
    let (status, cancelled) = shop
        .send(
            reqwest::Method::POST,
            &format!("/orders/{id}/cancel"),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{path} {fault:?}: {cancelled}");
    shop.assert_settles_clean().await;
    assert_eq!(shop.plan.injected(path), 1, "{path} {fault:?} was injected");
    assert_eq!(
        shop.get(&format!("/customers/{customer}")).await["points"],
        0,
        "{path} {fault:?}"
    );
    assert_eq!(
        shop.get("/ingredients").await,
        stock_before,
        "{path} {fault:?}: stock back once"
    );
    drop(shop.cluster);
}

const EVERY_CALL: [&str; 7] = [
    GetCustomer::PATH,
    Reserve::PATH,
    CommitReservation::PATH,
    CreateOrder::PATH,
    CrmEvents::PATH,
    CancelOrder::PATH,
    StockEvents::PATH,
];

async fn every_call_absorbs(fault: Fault) {
    for path in EVERY_CALL {
        one_fault_is_absorbed(path, fault).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_on_any_call_is_retried_and_the_order_placed_once() {
    every_call_absorbs(Fault::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_any_call_is_retried_after_its_delay_and_the_order_placed_once() {
    every_call_absorbs(Fault::RateLimit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_cannot_be_decoded_is_an_error_like_any_other_and_the_order_placed_once() {
    every_call_absorbs(Fault::Garble).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_carried_out_whose_reply_was_lost_is_asked_again_and_never_acts_twice() {
    every_call_absorbs(Fault::LoseReply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_on_any_call_is_retried_within_the_deadline_and_the_order_placed_once() {
    every_call_absorbs(Fault::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_unreachable_means_503_and_nothing_held_or_recorded() {
    let shop = shop(|_| {}).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let before = shop.get("/ingredients").await;
    shop.plan.inject(Reserve::PATH, Fault::LoseReply, 1);
    shop.plan.inject(Reserve::PATH, Fault::Refuse, 10_000);
    let (status, problem) = shop.place(&customer, &product, "k-down").await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "unavailable");
    shop.plan.heal();
    shop.assert_settles_clean().await;
    assert_eq!(
        shop.get("/ingredients").await,
        before,
        "the lost reservation was given back"
    );
    // The key was not used up: once stock is back, the same key places the order.
    let (status, order) = shop.place(&customer, &product, "k-down").await;
    assert_eq!(status, 201, "{order}");
    shop.assert_settles_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_away_past_the_deadline_gives_202_pending_and_the_sweeper_confirms_it() {
    let shop = shop(|a| a.order_deadline_ms = 500).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    shop.plan.inject(CreateOrder::PATH, Fault::Refuse, 10_000);
    let (status, order) = shop.place(&customer, &product, "k-late").await;
    assert_eq!(status, 202, "{order}");
    assert_eq!(order["status"], "pending");
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(shop.get(&format!("/orders/{id}")).await["status"], "pending");
    shop.plan.heal();
    shop.assert_settles_clean().await;
    let settled = shop.get(&format!("/orders/{id}")).await;
    assert_eq!(settled["status"], "confirmed", "{settled}");
    assert_eq!(
        shop.get(&format!("/customers/{customer}")).await["points"],
        settled["points"]
    );
    let (status, replay) = shop.place(&customer, &product, "k-late").await;
    assert_eq!((status, &replay["status"]), (201, &json!("confirmed")), "{replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_runs_out_before_the_commit_fails_the_order_and_gives_the_stock_back() {
    let shop = shop(|a| {
        a.order_deadline_ms = 300;
        a.lease_ms = 1_000;
    })
    .await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let before = shop.get("/ingredients").await;
    shop.plan.inject(CommitReservation::PATH, Fault::Refuse, 10_000);
    let (status, order) = shop.place(&customer, &product, "k-lease").await;
    assert_eq!(status, 202, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    shop.plan.heal();
    shop.assert_settles_clean().await;
    let failed = shop.get(&format!("/orders/{id}")).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["failure_reason"].as_str().is_some_and(|r| r.contains("lease")),
        "{failed}"
    );
    assert_eq!(shop.get("/ingredients").await, before, "the stock came back");
    assert_eq!(shop.get(&format!("/customers/{customer}")).await["points"], 0);
    // A failed placement frees its key: the client's retry places the order afresh.
    let (status, retry) = shop.place(&customer, &product, "k-lease").await;
    assert_eq!(status, 201, "{retry}");
    assert_ne!(retry["id"], failed["id"]);
    shop.assert_settles_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_crm_down_the_shop_still_sells_and_health_names_what_is_degraded() {
    let shop = shop(|a| a.order_deadline_ms = 1_000).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    for path in [GetCustomer::PATH, CrmStatus::PATH, CrmEvents::PATH] {
        shop.plan.inject(path, Fault::Refuse, 100_000);
    }
    shop.get("/products").await;
    shop.get("/ingredients").await;
    let walk_in = json!({"lines": [{"product_id": product, "quantity": 1}]});
    let (status, order) = shop
        .send(reqwest::Method::POST, "/orders", Some(walk_in), Some("walk-in"))
        .await;
    assert_eq!(status, 201, "an order without a customer needs no CRM: {order}");
    let (status, health) = shop.send(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!(status, 503, "{health}");
    let deps = health["dependencies"].as_array().unwrap();
    let crm = deps.iter().find(|d| d["name"] == "crm").expect("crm is listed");
    assert_eq!(crm["ok"], false, "{health}");
    assert!(!crm["degrades"].as_array().unwrap().is_empty(), "{health}");
    assert!(
        deps.iter().filter(|d| d["name"] != "crm").all(|d| d["ok"] == true),
        "{health}"
    );
    let (status, problem) = shop.place(&customer, &product, "for-a-customer").await;
    assert_eq!((status, &problem["code"]), (503, &json!("unavailable")), "{problem}");
    shop.plan.heal();
    // The circuit to CRM is open for a moment after the failures: a client retrying its key
    // gets through once a probe has found CRM back.
    let since = Instant::now();
    let order = loop {
        let (status, order) = shop.place(&customer, &product, "for-a-customer").await;
        if status == 201 {
            break order;
        }
        assert_eq!(status, 503, "{order}");
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "CRM never came back: {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(order["customer_id"], json!(customer));
    shop.assert_settles_clean().await;
}

/// The inbox's retention against the real relay: once CRM has forgotten what lies below the
/// relay's mark (as it would after the retention), the orders service losing its record of
/// every later delivery (applied, never marked: it died first) makes the relay send those
/// again, and CRM still applies none of them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_the_inbox_forgot_what_it_could_is_still_a_no_op() {
    use lemonade_domain::values::Timestamp;
    use lemonade_store::sql::events;

    let shop = shop(|_| {}).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    for key in ["k-1", "k-2", "k-3"] {
        assert_eq!(shop.place(&customer, &product, key).await.0, 201);
    }
    let (_, order) = shop.place(&customer, &product, "k-4").await;
    let id = order["id"].as_str().unwrap();
    let cancel = format!("/orders/{id}/cancel");
    assert_eq!(
        shop.send(reqwest::Method::POST, &cancel, Some(json!({})), None).await.0,
        200
    );
    shop.assert_settles_clean().await;
    let points = shop.get(&format!("/customers/{customer}")).await["points"].clone();

    let open = |name: &str| rusqlite::Connection::open(shop.dir.path().join(name)).unwrap();
    let (crm, orders) = (open("crm.db"), open("orders.db"));
    let mark: i64 = crm
        .query_row(
            "SELECT delivered_below FROM inbox_senders WHERE source = 'orders'",
            [],
            |r| r.get(0),
        )
        .expect("the relay's deliveries carry its mark");
    let forgotten = events::forget_applied(&crm, Timestamp(i64::MAX), 1_000).unwrap();
    let below: i64 = crm
        .query_row("SELECT COUNT(*) FROM inbox WHERE seq < ?1", [mark], |r| r.get(0))
        .unwrap();
    assert_eq!(below, 0, "everything below the mark is forgotten ({forgotten} ids)");

    // The relay never sends what lies below its mark again; what lies above it, it may.
    let undelivered: i64 = orders
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE destination = 'crm' AND (delivered_at IS NULL OR seq >= ?1)",
            [mark],
            |r| r.get(0),
        )
        .unwrap();
    assert!(undelivered > 0, "something above the mark to send again");
    orders
        .execute(
            "UPDATE outbox SET delivered_at = NULL WHERE destination = 'crm' AND seq >= ?1",
            [mark],
        )
        .unwrap();
    let started = Instant::now();
    while orders
        .query_row("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        > 0
    {
        assert!(started.elapsed() < Duration::from_secs(20), "the relay delivers again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        shop.get(&format!("/customers/{customer}")).await["points"],
        points,
        "no event applied twice"
    );
    shop.assert_settles_clean().await;
}
