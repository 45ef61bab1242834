//! Every machine has its own clock (issue 13). The in-process cluster gives each process a
//! clock of its own, skewed by minutes, and shows that: ordering an order's events by their
//! wall-clock times puts effects before their causes, while the timeline's hybrid logical
//! clock order never does; a call whose stamp is beyond the bound is refused as decided
//! (`503 clock_skew`, not retried); and leases and idempotency keys follow only the clock of
//! the service that owns them. No test here waits on time: the skews are minutes, the checks
//! are orders of events.

use std::sync::Arc;
use std::time::Duration;

use lemonade::cluster::{InProcess, start_in_process_with};
use lemonade::serve::{RoleArg, ServeArgs};
use lemonade_cluster::faults::FaultPlan;
use lemonade_cluster::rpc::{Call, ListIngredients};
use lemonade_domain::ports::Clock;
use lemonade_domain::values::Timestamp;
use lemonade_store::system::SystemClock;
use serde_json::{Value, json};

const MINUTE_MS: i64 = 60_000;

/// The system clock, `offset_ms` off.
struct Skewed(i64);

impl Clock for Skewed {
    fn now(&self) -> Timestamp {
        Timestamp(SystemClock.now().millis() + self.0)
    }
}

struct Shop {
    cluster: InProcess,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    base: String,
    plan: FaultPlan,
}

/// A cluster whose processes read their clocks `offset_ms(role)` off, with `bound_ms` as
/// every process's bound.
async fn shop(bound_ms: u64, offset_ms: impl Fn(RoleArg) -> i64) -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::default();
    let cluster = start_in_process_with(
        dir.path(),
        |args: &mut ServeArgs| args.max_clock_offset_ms = bound_ms,
        Some(plan.clone()),
        |role| Arc::new(Skewed(offset_ms(role))) as Arc<dyn Clock>,
    )
    .await
    .expect("start the cluster");
    let base = format!("http://{}", cluster.coordinator.addr);
    Shop {
        cluster,
        _dir: dir,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base,
        plan,
    }
}

impl Shop {
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let reply = request.send().await.expect("the coordinator answers");
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}/api/v1{path}", self.base))).await
    }
    async fn post(&self, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}/api/v1{path}", self.base)).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        self.send(request).await
    }
    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
    /// A product of the demo shop and a new customer.
    async fn product_and_customer(&self) -> (String, String) {
        let product = self.ok("/products").await["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, customer) = self.post("/customers", json!({"name": "Skewed"}), None).await;
        assert_eq!(status, 201, "{customer}");
        (product, customer["id"].as_str().unwrap().to_owned())
    }
    /// A service's own `/health` (no token needed).
    async fn service_health(&self, role: RoleArg) -> Value {
        let addr = self.cluster.services.iter().find(|(r, _)| *r == role).unwrap().1.addr;
        let reply = self.http.get(format!("http://{addr}/health")).send().await.unwrap();
        reply.json().await.unwrap()
    }
}

/// Where `what` is in a timeline's events.
fn at(events: &[Value], what: &str) -> usize {
    events
        .iter()
        .position(|e| e["what"] == what)
        .unwrap_or_else(|| panic!("no {what} in {events:?}"))
}

fn wall(events: &[Value], what: &str) -> Timestamp {
    Timestamp::parse_rfc3339(events[at(events, what)]["wall_time"].as_str().unwrap()).unwrap()
}

/// The causes and effects of a placement, each pair in the order the saga makes them: stock
/// reserves before the coordinator logs the saga, which commits the reservation before the
/// orders service confirms the order, whose event CRM awards the points of.
const CAUSE_EFFECT: [(&str, &str); 4] = [
    ("stock_reserved", "saga_started"),
    ("saga_started", "stock_committed"),
    ("stock_committed", "order_confirmed"),
    ("order_confirmed", "points_awarded"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clocks_put_effects_before_causes_while_the_timeline_never_does() {
    const ORDERS: usize = 25;
    // Stock three minutes behind, CRM three minutes ahead; a bound wider than both.
    let mut shop = shop(10 * MINUTE_MS as u64, |role| match role {
        RoleArg::Stock => -3 * MINUTE_MS,
        RoleArg::Crm => 3 * MINUTE_MS,
        _ => 0,
    })
    .await;
    let (product, customer) = shop.product_and_customer().await;
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 1}]});
        let (status, order) = shop.post("/orders", body, None).await;
        assert_eq!(status, 201, "{order}");
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    // Reading the customer waits for CRM to have applied every order's points.
    let read = shop.ok(&format!("/customers/{customer}")).await;
    assert!(read["points"].as_u64().unwrap() > 0, "{read}");

    let mut wall_backwards = 0;
    for id in &orders {
        let timeline = shop.ok(&format!("/orders/{id}/timeline")).await;
        assert_eq!(timeline["unreachable"], json!([]), "{timeline}");
        let events = timeline["events"].as_array().unwrap();
        for (cause, effect) in CAUSE_EFFECT {
            assert!(
                at(events, cause) < at(events, effect),
                "{cause} before {effect}: {timeline}"
            );
        }
        // The same events by wall clock: stock's commit reads three minutes before the
        // coordinator's log of the saga that asked for it.
        if wall(events, "stock_committed") < wall(events, "saga_started") {
            wall_backwards += 1;
        }
        // And the timeline shows it: its wall times go backwards where stock comes in.
        let walls: Vec<Timestamp> = events
            .iter()
            .map(|e| Timestamp::parse_rfc3339(e["wall_time"].as_str().unwrap()).unwrap())
            .collect();
        assert!(walls.windows(2).any(|w| w[1] < w[0]), "{timeline}");
    }
    assert_eq!(
        wall_backwards, ORDERS,
        "by wall clock every order was committed before it was started"
    );

    // Each service measured its peers: the coordinator's stamps reach stock from its future.
    let stock = shop.service_health(RoleArg::Stock).await;
    let offset = stock["clock"]["peers"]["coordinator"]["offset_ms"].as_i64().unwrap();
    assert!(offset > 2 * MINUTE_MS, "{stock}");
    assert_eq!(stock["clock"]["peers"]["coordinator"]["stamps_refused"], 0, "{stock}");
    shop.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamp_beyond_the_bound_is_refused_and_not_retried() {
    // The default bound, 500 ms; stock's clock three minutes behind everyone's.
    let mut shop = shop(500, |role| if role == RoleArg::Stock { -3 * MINUTE_MS } else { 0 }).await;
    let (status, problem) = shop.get("/ingredients").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("clock_skew")),
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("coordinator") && detail.contains("stock") && detail.contains("500 ms"),
        "{detail}"
    );
    assert_eq!(
        shop.plan.sent(ListIngredients::PATH),
        1,
        "a refusal for skew is not retried"
    );

    let stock = shop.service_health(RoleArg::Stock).await;
    let coordinator = &stock["clock"]["peers"]["coordinator"];
    assert_eq!(coordinator["stamps_refused"], 1, "{stock}");
    assert!(coordinator["offset_ms"].as_i64().unwrap() > 2 * MINUTE_MS, "{stock}");
    // Refused without moving stock's clock: its last stamp is still of its own time.
    let last = stock["clock"]["last"].as_str().unwrap();
    let last_ms: i64 = last.split_once('.').unwrap().0.parse().unwrap();
    assert!(last_ms < SystemClock.now().millis() - 2 * MINUTE_MS, "{stock}");
    // The services that agree with the coordinator still serve.
    assert_eq!(shop.get("/customers").await.0, 200);
    shop.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_idempotency_keys_follow_only_their_owners_clock() {
    // The coordinator five minutes behind stock: a lease reckoned on the coordinator's
    // clock (30 s) would have run out at stock before it began, and every order would fail.
    // Stock reckons it on its own clock, so nothing changes.
    let mut shop = shop(10 * MINUTE_MS as u64, |role| match role {
        RoleArg::Coordinator => -5 * MINUTE_MS,
        RoleArg::Orders => 4 * MINUTE_MS,
        _ => 0,
    })
    .await;
    let (product, customer) = shop.product_and_customer().await;
    let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 1}]});
    let mut placed = Vec::new();
    for n in 0..5 {
        let key = format!("skewed-{n}");
        let (status, order) = shop.post("/orders", body.clone(), Some(&key)).await;
        assert_eq!((status, order["status"].as_str()), (201, Some("confirmed")), "{order}");
        placed.push((key, order));
    }
    // Each key still replays its order: the coordinator's keys live by the coordinator's
    // clock alone, however far the others' are.
    for (key, order) in &placed {
        let (status, again) = shop.post("/orders", body.clone(), Some(key)).await;
        assert_eq!((status, &again), (201, order));
        let id = order["id"].as_str().unwrap();
        let read = shop.ok(&format!("/orders/{id}")).await;
        assert_eq!(read["status"], "confirmed", "{read}");
        let timeline = shop.ok(&format!("/orders/{id}/timeline")).await;
        let events = timeline["events"].as_array().unwrap();
        assert!(events.iter().all(|e| e["what"] != "stock_released"), "{timeline}");
    }
    shop.cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_names_the_service_it_could_not_reach_and_gives_the_rest() {
    let mut shop = shop(500, |_| 0).await;
    let (product, customer) = shop.product_and_customer().await;
    let body = json!({"customer_id": customer, "lines": [{"product_id": product, "quantity": 1}]});
    let (status, order) = shop.post("/orders", body, None).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    shop.plan.take_down(lemonade_cluster::rpc::Service::Crm);
    let timeline = shop.ok(&format!("/orders/{id}/timeline")).await;
    assert_eq!(timeline["unreachable"], json!(["crm"]), "{timeline}");
    let events = timeline["events"].as_array().unwrap();
    assert!(events.iter().all(|e| e["service"] != "crm"), "{timeline}");
    assert!(
        at(events, "stock_committed") < at(events, "order_confirmed"),
        "{timeline}"
    );
    // An order no one knows is still 404, with a service down or not.
    shop.plan.heal();
    assert_eq!(shop.get("/orders/no-such-order/timeline").await.0, 404);
    shop.cluster.stop().await.unwrap();
}
