//! The article's failure cases, injected into every call the coordinator and the orders
//! service's relay make: the
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
    Call, CancelOrder, CommitReservation, CreateOrder, CrmEvents, GetCustomer, Reserve, Service, StockEvents,
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

    /// Heals every fault, then waits (at most 20 s) until the customer at `path` reads as
    /// anonymised, and checks the shop settles clean.
    async fn heal_and_wait_for_the_erasure(&self, path: &str) {
        self.plan.heal();
        let since = Instant::now();
        while self.get(path).await["anonymised"] != true {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "the erasure was never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.assert_settles_clean().await;
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

/// A reserve that was carried out but whose reply never came back in time spends the whole
/// request's deadline; the release that follows has time of its own, so the stock is given
/// back before the client is answered rather than held until the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_that_spends_the_deadline_still_gives_its_stock_back_before_the_answer() {
    let shop = shop(|a| a.order_deadline_ms = 500).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let before = shop.get("/ingredients").await;
    shop.plan.inject(Reserve::PATH, Fault::LoseReply, 1);
    shop.plan.inject(Reserve::PATH, Fault::Hang, 10_000);
    let (status, problem) = shop.place(&customer, &product, "k-spent").await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(shop.get("/ingredients").await, before, "the reservation was given back");
    shop.plan.heal();
    let (status, order) = shop.place(&customer, &product, "k-spent").await;
    assert_eq!(status, 201, "the key was not used up: {order}");
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

/// The coordinator's health as (names of dependencies down, what each says is degraded).
async fn health(shop: &Shop) -> (Vec<String>, String) {
    let (status, health) = shop.send(reqwest::Method::GET, "/health", None, None).await;
    let deps = health["dependencies"].as_array().unwrap();
    let down: Vec<String> = deps
        .iter()
        .filter(|d| d["ok"] == false)
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    // A service down degrades the coordinator; it still serves, so it stays 200 and a
    // supervisor leaves it running.
    assert_eq!((status, &health["serving"]), (200, &json!(true)), "{health}");
    assert_eq!(health["ok"] == true, down.is_empty(), "{health}");
    let degrades = deps
        .iter()
        .flat_map(|d| d["degrades"].as_array().unwrap())
        .map(|d| d.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    (down, degrades)
}

impl Shop {
    /// The status a GET of `path` is answered with.
    async fn status_of(&self, path: &str) -> u16 {
        self.send(reqwest::Method::GET, path, None, None).await.0
    }

    /// Makes the coordinator forget `customer`, as for a customer created before it kept a
    /// directory (a version-1 database): it must then ask CRM about them.
    fn forget_in_directory(&self, customer: &str) {
        let conn = lemonade_store::db::open_connection(&self.dir.path().join("coordinator.db")).unwrap();
        let forgotten = conn
            .execute("DELETE FROM customer_directory WHERE customer_id = ?1", [customer])
            .unwrap();
        assert_eq!(forgotten, 1, "the directory knew {customer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_crm_down_a_known_customer_is_sold_to_and_an_unknown_one_is_refused_in_words_a_cashier_can_act_on() {
    let shop = shop(|a| a.order_deadline_ms = 1_000).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let older = shop.customer().await;
    shop.forget_in_directory(&older);
    shop.plan.take_down(Service::Crm);

    let walk_in = json!({"lines": [{"product_id": product, "quantity": 1}]});
    let (status, order) = shop
        .send(reqwest::Method::POST, "/orders", Some(walk_in), Some("walk-in"))
        .await;
    assert_eq!(status, 201, "an order without a customer needs no CRM: {order}");
    let (status, sold) = shop.place(&customer, &product, "for-a-customer").await;
    assert_eq!(status, 201, "a customer the coordinator knows needs no CRM: {sold}");
    assert_eq!(
        (&sold["status"], &sold["customer_id"]),
        (&json!("confirmed"), &json!(customer))
    );
    assert!(sold["points"].as_u64().unwrap() > 0, "{sold}");
    let listed = shop.get(&format!("/orders?customer_id={customer}")).await;
    assert_eq!(
        listed["items"][0]["id"], sold["id"],
        "their orders are listed without CRM"
    );

    let (status, problem) = shop.place(&older, &product, "for-an-older-customer").await;
    assert_eq!((status, &problem["code"]), (503, &json!("unavailable")), "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("sell without the customer")),
        "{problem}"
    );
    let (down, degrades) = health(&shop).await;
    assert_eq!(down, ["crm"]);
    assert!(degrades.contains("sell without the customer"), "{degrades}");
    assert!(
        !degrades.contains("placing orders"),
        "orders are still placed: {degrades}"
    );

    shop.plan.heal();
    shop.assert_settles_clean().await;
    // The circuit to CRM is open for a moment after the failures.
    let since = Instant::now();
    while shop.status_of(&format!("/customers/{customer}")).await != 200 {
        assert!(since.elapsed() < Duration::from_secs(10), "CRM never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shop.get(&format!("/customers/{customer}")).await["points"],
        sold["points"],
        "the points followed once CRM was back"
    );
    // The refusal used up nothing: the same key sells once CRM answers again.
    let since = Instant::now();
    let order = loop {
        let (status, order) = shop.place(&older, &product, "for-an-older-customer").await;
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
    assert_eq!(order["customer_id"], json!(older));
    shop.assert_settles_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_orders_down_the_saga_log_answers_for_the_orders_it_knows_for_certain() {
    let shop = shop(|a| {
        a.order_deadline_ms = 300;
        a.lease_ms = 1_000;
    })
    .await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let (status, confirmed) = shop.place(&customer, &product, "k-confirmed").await;
    assert_eq!(status, 201, "{confirmed}");
    // An order whose lease runs out before its commit: the saga fails it.
    shop.plan.inject(CommitReservation::PATH, Fault::Refuse, 10_000);
    let (status, failing) = shop.place(&customer, &product, "k-failing").await;
    assert_eq!(status, 202, "{failing}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    shop.plan.heal();
    shop.assert_settles_clean().await;
    let failed = shop.get(&format!("/orders/{}", failing["id"].as_str().unwrap())).await;
    assert_eq!(failed["status"], "failed", "{failed}");

    shop.plan.take_down(Service::Orders);
    let (status, pending) = shop.place(&customer, &product, "k-pending").await;
    assert_eq!((status, &pending["status"]), (202, &json!("pending")), "{pending}");
    let id = pending["id"].as_str().unwrap();
    let read = shop.get(&format!("/orders/{id}")).await;
    assert_eq!(read["status"], "pending", "the Location of a 202 answers: {read}");
    let read = shop.get(&format!("/orders/{}", failed["id"].as_str().unwrap())).await;
    assert_eq!(
        (&read["status"], &read["failure_reason"]),
        (&failed["status"], &failed["failure_reason"])
    );
    assert_eq!(read["points"], 0);
    // A confirmed order may have been cancelled since: the log cannot say, so it does not.
    let (status, problem) = shop
        .send(
            reqwest::Method::GET,
            &format!("/orders/{}", confirmed["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!((status, &problem["code"]), (503, &json!("unavailable")), "{problem}");

    shop.plan.heal();
    shop.assert_settles_clean().await;
    assert_eq!(shop.get(&format!("/orders/{id}")).await["status"], "confirmed");
}

/// Each service in turn is taken away: `/health` names it alone, and what it says still
/// works and what does not is what the shop then does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_what_works_with_each_service_down_and_the_shop_does_as_it_says() {
    for service in Service::ALL {
        let shop = shop(|a| a.order_deadline_ms = 500).await;
        let (product, customer) = (shop.product().await, shop.customer().await);
        shop.plan.take_down(service);
        let (down, degrades) = health(&shop).await;
        assert_eq!(down, [service.as_str()]);
        let (placed, order) = shop.place(&customer, &product, "k").await;
        match service {
            Service::Stock => {
                assert!(degrades.contains("placing orders"), "{degrades}");
                assert_eq!(placed, 503, "{order}");
                assert!(degrades.contains("products"), "{degrades}");
                assert_eq!(shop.status_of("/products").await, 503);
                assert_eq!(shop.status_of(&format!("/customers/{customer}")).await, 200);
            }
            Service::Orders => {
                assert!(!degrades.contains("placing orders"), "{degrades}");
                assert!(degrades.contains("accepted as pending (202)"), "{degrades}");
                assert_eq!((placed, &order["status"]), (202, &json!("pending")), "{order}");
                let id = order["id"].as_str().unwrap();
                assert_eq!(shop.status_of(&format!("/orders/{id}")).await, 200);
                assert!(degrades.contains("order lists"), "{degrades}");
                assert_eq!(shop.status_of("/orders").await, 503);
                assert!(degrades.contains("sales reports"), "{degrades}");
                assert_eq!(shop.status_of("/products").await, 200);
            }
            Service::Crm => {
                assert!(!degrades.contains("placing orders"), "{degrades}");
                assert_eq!((placed, &order["status"]), (201, &json!("confirmed")), "{order}");
                assert!(
                    degrades.contains("points of orders are awarded once it is back"),
                    "{degrades}"
                );
                assert!(degrades.contains("customers"), "{degrades}");
                assert_eq!(shop.status_of(&format!("/customers/{customer}")).await, 503);
                assert_eq!(shop.status_of("/products").await, 200);
            }
        }
        shop.plan.heal();
        shop.assert_settles_clean().await;
        drop(shop.cluster);
    }
}

impl Shop {
    /// `DELETE` of `path`: the status, the `Location` and the body.
    async fn delete(&self, path: &str) -> (u16, Option<String>, Value) {
        let reply = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the coordinator answers");
        let status = reply.status().as_u16();
        let location = reply.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        (status, location, reply.json().await.unwrap_or(Value::Null))
    }
}

/// The answer to an erasure that is recorded but cannot finish now: 202, the customer as
/// `Location`, and words that say it is recorded, that no order can name them, and that it
/// finishes by itself.
fn assert_erasure_under_way(customer: &str, (status, location, body): &(u16, Option<String>, Value), because: &str) {
    assert_eq!(*status, 202, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/customers/{customer}").as_str())
    );
    assert_eq!(body["id"], json!(customer), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    for words in [
        "the erasure is recorded",
        "no new order can name this customer",
        "by themselves",
        because,
    ] {
        assert!(detail.contains(words), "{words:?} in {body}");
    }
}

/// An erasure while an order of the customer cannot finish (the orders service is away):
/// it is answered 202 (recorded, finishing by itself), and from then on no order can name
/// the customer; once the order has finished, the sweeper completes the erasure by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_waits_for_the_customers_orders_in_flight_and_is_finished_by_the_sweeper() {
    let shop = shop(|a| a.order_deadline_ms = 500).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    shop.plan.take_down(Service::Orders);
    let (status, in_flight) = shop.place(&customer, &product, "k-in-flight").await;
    assert_eq!(status, 202, "{in_flight}");

    let path = format!("/customers/{customer}");
    let answer = shop.delete(&path).await;
    assert_erasure_under_way(&customer, &answer, "of theirs are still being completed");
    let (status, refused) = shop.place(&customer, &product, "k-after").await;
    assert_eq!(
        status, 422,
        "no order may name them once their erasure was asked for: {refused}"
    );
    assert_eq!(refused["errors"][0]["field"], "customer_id", "{refused}");

    shop.heal_and_wait_for_the_erasure(&path).await;
    let order = shop
        .get(&format!("/orders/{}", in_flight["id"].as_str().unwrap()))
        .await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let export = shop.get(&format!("{path}/export")).await;
    let activity = export["activity"].as_array().unwrap();
    assert_eq!(activity.last().unwrap()["kind"], "anonymised", "{export}");
    assert_eq!(export["customer"]["points"], 0, "{export}");
    let (status, gone) = shop.send(reqwest::Method::DELETE, &path, None, None).await;
    assert_eq!((status, &gone), (200, &export["customer"]));
}

/// CRM down when a known customer is erased: the erasure is recorded (no order can name
/// them from the answer on), and the answer says so, with 202 and where to look, rather
/// than a 503 that reads as "nothing happened, try again". The sweeper finishes it once
/// CRM is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_while_crm_is_down_is_answered_as_recorded_and_finishes_by_itself() {
    let shop = shop(|_| {}).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    shop.plan.take_down(Service::Crm);
    let path = format!("/customers/{customer}");
    let answer = shop.delete(&path).await;
    assert_erasure_under_way(&customer, &answer, "as soon as the customer list answers again");
    let (status, refused) = shop.place(&customer, &product, "k-after").await;
    assert_eq!(
        (status, &refused["errors"][0]["message"]),
        (422, &json!("this customer was anonymised")),
        "no order may name them once the answer said so: {refused}"
    );

    shop.plan.heal();
    let since = Instant::now();
    loop {
        let (status, read) = shop.send(reqwest::Method::GET, &path, None, None).await;
        if status == 200 && read["anonymised"] == true {
            assert_eq!(read["name"], "Anonymised customer", "{read}");
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "the erasure was never finished: {read}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// CRM frozen: every call to it is sent and never answered while the test holds it, past
/// any timeout, so nothing the coordinator does for a sale may wait for CRM except by a
/// bound of its own. Sales to a known customer are answered all the same (before, each
/// waited for the delivery of its points to CRM), the deliveries of their points are still
/// held when the answers come, and once CRM answers again, a read of the customer sees the
/// points (it waits for the deliveries under way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_crm_frozen_sales_to_a_known_customer_do_not_wait_for_it_and_the_points_follow() {
    let shop = shop(|_| {}).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    shop.plan.freeze(Service::Crm);
    let mut points = 0;
    for key in ["frozen-1", "frozen-2", "frozen-3"] {
        let (status, sold) = shop.place(&customer, &product, key).await;
        assert_eq!((status, &sold["status"]), (201, &json!("confirmed")), "{sold}");
        points += sold["points"].as_u64().unwrap();
    }
    assert!(
        shop.plan.held(Service::Crm) > 0,
        "the answers came while CRM still held the deliveries of their points"
    );

    shop.plan.heal();
    assert_eq!(
        shop.get(&format!("/customers/{customer}")).await["points"],
        points,
        "the points followed"
    );
    shop.assert_settles_clean().await;
}

/// Events take one path, the orders service's relay, woken by the commit that wrote them:
/// a sale's points reach CRM in one delivery (nobody else sends them, so they are not sent
/// twice), and the customer read right after the sale's answer has them (the coordinator
/// waits, boundedly, for the relay to pass the sale's place in the outbox).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_s_points_reach_crm_in_one_delivery_by_the_relay_and_are_read_right_after() {
    let shop = shop(|_| {}).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    let (status, sold) = shop.place(&customer, &product, "k-once").await;
    assert_eq!(status, 201, "{sold}");
    assert_eq!(
        shop.get(&format!("/customers/{customer}")).await["points"],
        sold["points"],
        "the points are read right after the sale"
    );
    shop.assert_settles_clean().await;
    assert_eq!(
        shop.plan.sent(CrmEvents::PATH),
        1,
        "one delivery of the sale's points, by the relay alone"
    );
}

/// CRM down: once the breaker knows, a change that needs CRM fails at once, in words that
/// say what was tried (before, it retried for its whole deadline, and the words named only
/// the last attempt's timeout). A client's call never takes the breaker's probe; the
/// prober finds CRM back, and the same change then goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_crm_down_a_change_to_customers_fails_at_once_once_the_breaker_knows_and_says_what_was_tried() {
    let shop = shop(|_| {}).await;
    shop.plan.take_down(Service::Crm);
    let new = json!({"name": "Waiting"});
    let mut tried = Vec::new();
    loop {
        let (status, problem) = shop
            .send(reqwest::Method::POST, "/customers", Some(new.clone()), None)
            .await;
        assert_eq!((status, &problem["code"]), (503, &json!("unavailable")), "{problem}");
        let detail = problem["detail"].as_str().unwrap().to_owned();
        assert!(detail.starts_with("the customer list (crm service) "), "{detail}");
        assert!(detail.ends_with("try again in a moment"), "{detail}");
        let failed_fast = detail.contains("nothing was sent this time");
        tried.push(detail);
        if failed_fast {
            break;
        }
        assert!(tried.len() < 10, "the breaker never opened: {tried:#?}");
    }
    assert!(
        tried[0].contains(" attempts over ") && tried[0].contains("cannot connect to crm"),
        "the first answers say what was tried: {tried:#?}"
    );

    shop.plan.heal();
    let since = Instant::now();
    loop {
        let (status, created) = shop
            .send(reqwest::Method::POST, "/customers", Some(new.clone()), None)
            .await;
        if status == 201 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "CRM never came back: {created}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `field`s of a validation problem, sorted.
fn fields_of(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("a validation problem: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

/// A service frozen (its calls held past any timeout): a refusal is answered all the same,
/// by the coordinator's own bound, without what only that service could have added to it;
/// and a customer the coordinator knows is checked against its directory, not CRM, so the
/// rest of the answer is whole. (Before, each of these answers waited for the frozen
/// service, and a failed customer check dropped stock's findings too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_service_frozen_a_refusal_is_answered_without_what_only_it_could_add() {
    let shop = shop(|_| {}).await;
    let customer = shop.customer().await;
    let erased = shop.customer().await;
    let (status, _) = shop
        .send(reqwest::Method::DELETE, &format!("/customers/{erased}"), None, None)
        .await;
    assert_eq!(status, 200);
    let post = |path: &'static str, body: Value| shop.send(reqwest::Method::POST, path, Some(body), None);

    shop.plan.freeze(Service::Stock);
    let order = json!({"customer_id": erased, "lines": [{"product_id": "no-such-product", "quantity": 1}]});
    let (status, refused) = post("/orders", order).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        fields_of(&refused),
        ["customer_id"],
        "stock's findings left out: {refused}"
    );
    let product = json!({"name": "", "price": 100, "recipe": [{"ingredient_id": "no-such-ingredient", "quantity": 1}]});
    let (status, refused) = post("/products", product).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(fields_of(&refused), ["name"], "stock's findings left out: {refused}");
    let bad = json!({"lines": [{"product_id": "no-such-product", "quantity": 0}]});
    let (status, refused) = post("/orders", bad).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(fields_of(&refused), ["lines[0].quantity"], "{refused}");
    shop.plan.heal();

    shop.plan.freeze(Service::Crm);
    for (customer, expected) in [
        (&customer, vec!["lines[0].product_id", "lines[0].quantity"]),
        (&erased, vec!["customer_id", "lines[0].product_id", "lines[0].quantity"]),
    ] {
        let bad = json!({"customer_id": customer, "lines": [{"product_id": "no-such-product", "quantity": 0}]});
        let (status, refused) = post("/orders", bad).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(fields_of(&refused), expected, "{refused}");
    }
    shop.plan.heal();
    shop.assert_settles_clean().await;
}

/// A placement whose create call was carried out at the orders service but whose replies
/// were lost: the order is there, confirmed, while the saga log still says `running` (a
/// client could read it confirmed there and cancel it). With the orders service then down,
/// the 202's `Location` is not answered `pending` from the log, which is not certain of it
/// (the simulation's seed 770088 read `pending` after an acknowledged cancel): it is 503.
/// Once the service answers again, the order reads confirmed. (With every create call
/// certainly unsent, the log answers `pending`: `with_orders_down_the_saga_log_answers_...`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_create_call_may_have_been_carried_out_is_not_read_pending_from_the_saga_log() {
    let shop = shop(|a| a.order_deadline_ms = 300).await;
    let (product, customer) = (shop.product().await, shop.customer().await);
    shop.plan.inject(CreateOrder::PATH, Fault::LoseReply, 10_000);
    let (status, pending) = shop.place(&customer, &product, "k-lost").await;
    assert_eq!((status, &pending["status"]), (202, &json!("pending")), "{pending}");
    assert!(
        shop.plan.injected(CreateOrder::PATH) > 0,
        "the create call was carried out"
    );

    shop.plan.take_down(Service::Orders);
    let location = format!("/orders/{}", pending["id"].as_str().unwrap());
    let (status, problem) = shop.send(reqwest::Method::GET, &location, None, None).await;
    assert_eq!((status, &problem["code"]), (503, &json!("unavailable")), "{problem}");

    shop.plan.heal();
    shop.assert_settles_clean().await;
    assert_eq!(shop.get(&location).await["status"], "confirmed");
}

/// CRM frozen (its calls held past any timeout) when a known customer is erased: the answer
/// is 202, recorded, by the coordinator's own short wait (before, it waited for CRM its whole
/// deadline, and here, for ever). Its `Location`, read while CRM is still frozen, says the
/// erasure is under way (503 with `Retry-After`: the coordinator holds none of the person's
/// details), by the same short wait (before, it waited out the whole deadline and said only
/// that CRM failed). Once CRM answers again, the sweeper finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_crm_frozen_an_erasure_is_answered_as_recorded_at_once_and_finishes_by_itself() {
    let shop = shop(|_| {}).await;
    let customer = shop.customer().await;
    shop.plan.freeze(Service::Crm);
    let path = format!("/customers/{customer}");
    let answer = shop.delete(&path).await;
    assert_erasure_under_way(&customer, &answer, "as soon as the customer list answers again");

    let location = answer.1.expect("a Location");
    let read = shop
        .http
        .get(format!("{}{}", shop.base, location.trim_start_matches("/api/v1")))
        .send()
        .await
        .expect("the coordinator answers");
    assert_eq!(read.status().as_u16(), 503);
    assert!(read.headers().contains_key("retry-after"), "{:?}", read.headers());
    let problem: Value = read.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap_or_default();
    for words in ["erasure is recorded and under way", "not answering", "try again"] {
        assert!(detail.contains(words), "{words:?} in {problem}");
    }

    shop.heal_and_wait_for_the_erasure(&path).await;
}
