//! The orders service's relay, the one path of events: a commit that writes an event wakes
//! it (its safety poll is an hour here, so nothing else could have sent the event), it sends
//! each event once, and it says how far it has delivered. Against a real orders service's
//! router and SQLite database, with a transport that stands for stock and CRM and records
//! what reaches them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request as HttpRequest;
use bytes::Bytes;
use lemonade_cluster::orders::{self, OrdersService};
use lemonade_cluster::relay::Relay;
use lemonade_cluster::rpc::{Call, CreateOrder, CrmEvents, OutboxProgress, STEP_KEY_HEADER, Settled, StockEvents};
use lemonade_cluster::transport::{Reply, Request, Transport, TransportError};
use lemonade_cluster::{CallPolicy, Clients, Node, Protection};
use lemonade_domain::ids::{CustomerId, OrderId, ProductId};
use lemonade_domain::order::OrderLine;
use lemonade_domain::saga::{Destination, OrderPlan, PricedOrder};
use lemonade_domain::values::{Money, Timestamp};
use lemonade_store::migrations::Role;
use lemonade_store::system::{SystemClock, UuidV7Ids};
use lemonade_store::{Database, WriterConfig};
use parking_lot::Mutex;
use tower::ServiceExt as _;

const TOKEN: &str = "a-cluster-token-for-tests";
/// Longer than any test here runs: an event delivered was woken, not polled.
const SAFETY_POLL_MS: u64 = 3_600_000;
/// How long a test waits for what must happen at once, on a busy machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Stock and CRM as the relay sees them: each delivery answered as committed, and every event
/// id recorded each time it arrives.
#[derive(Default)]
struct Receivers {
    arrived: Mutex<Vec<String>>,
}

#[async_trait]
impl Transport for Receivers {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        let events = if request.path == CrmEvents::PATH {
            serde_json::from_slice::<CrmEvents>(&request.body).unwrap().events
        } else if request.path == StockEvents::PATH {
            serde_json::from_slice::<StockEvents>(&request.body).unwrap().events
        } else {
            panic!("the relay calls only the receivers of events, not {}", request.path)
        };
        self.arrived.lock().extend(events.into_iter().map(|e| e.id));
        Ok(Reply {
            status: 200,
            retry_after: None,
            body: Bytes::from_static(b"null"),
            hlc: None,
        })
    }
}

struct Orders {
    router: axum::Router,
    relay: Relay,
    receivers: Arc<Receivers>,
    _dir: tempfile::TempDir,
}

fn orders_service() -> Orders {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_role(&dir.path().join("orders.db"), Role::Orders, WriterConfig::default()).unwrap();
    let node = Node::new(db, Arc::new(SystemClock), Arc::new(UuidV7Ids));
    let receivers = Arc::new(Receivers::default());
    let clients = Arc::new(Clients::new(
        Arc::clone(&receivers) as Arc<dyn Transport>,
        CallPolicy::default(),
        7,
    ));
    let relay = Relay::new(SAFETY_POLL_MS);
    for to in Destination::ALL {
        relay.spawn(node.clone(), Arc::clone(&clients), to);
    }
    let service = OrdersService {
        node,
        relay: relay.clone(),
    };
    Orders {
        router: orders::router(service, TOKEN, Protection::default()),
        relay,
        receivers,
        _dir: dir,
    }
}

fn plan(order: &str) -> OrderPlan {
    OrderPlan {
        order_id: OrderId::parse(order).unwrap(),
        customer_id: Some(CustomerId::parse("customer-1").unwrap()),
        priced: PricedOrder {
            lines: vec![OrderLine {
                product_id: ProductId::parse("lemonade").unwrap(),
                name: "Lemonade".into(),
                quantity: 2,
                unit_price: Money::from_stored(350),
            }],
            total: Money::from_stored(700),
            recipe_versions: vec![1],
        },
        points: 7,
        created_at: Timestamp(1_000),
    }
}

impl Orders {
    async fn call<C: Call>(&self, call: &C, step_key: Option<&str>) -> C::Reply {
        let mut request = HttpRequest::post(C::PATH)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json");
        if let Some(key) = step_key {
            request = request.header(STEP_KEY_HEADER, key);
        }
        let body = Body::from(serde_json::to_vec(call).unwrap());
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", C::PATH);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn place(&self, order: &str) -> Settled {
        let create = CreateOrder { plan: plan(order) };
        self.call(&create, Some(&format!("{order}:place"))).await
    }

    /// Waits until the relay says it has delivered to CRM through `mark`.
    async fn delivered_through(&self, mark: i64) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while self.relay.delivered_through(Destination::Crm) < mark {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the relay never delivered through {mark}");
    }

    fn arrived(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.receivers.arrived.lock().iter() {
            *counts.entry(id.clone()).or_insert(0) += 1;
        }
        counts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_writes_an_event_wakes_the_relay_which_sends_it_once() {
    let orders = orders_service();
    let first = orders.place("o-1").await;
    let first_mark = first.marks.crm.expect("a sale to a customer tells CRM");
    assert_eq!(first.marks.stock, None, "a sale tells stock nothing");
    orders.delivered_through(first_mark).await;
    // The relay has found the outbox empty again and sleeps; its poll is an hour away.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let second = orders.place("o-2").await;
    let second_mark = second.marks.crm.unwrap();
    assert!(second_mark > first_mark);
    orders.delivered_through(second_mark).await;

    // A retried step replays its marks and wakes the relay again; it finds nothing to send.
    let again = orders.place("o-2").await;
    assert_eq!(again, second);
    let progress = OutboxProgress {
        to: Destination::Crm,
        at_least: second_mark,
        hold_ms: 0,
    };
    assert!(orders.call(&progress, None).await >= second_mark);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let arrived = orders.arrived();
    assert_eq!(arrived.len(), 2, "one event per sale: {arrived:?}");
    assert!(arrived.values().all(|n| *n == 1), "each sent once: {arrived:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_held_for_a_mark_not_reached_only_as_long_as_asked_then_says_where_delivery_is() {
    let orders = orders_service();
    let sold = orders.place("o-1").await;
    let mark = sold.marks.crm.unwrap();
    orders.delivered_through(mark).await;
    let ahead = OutboxProgress {
        to: Destination::Crm,
        at_least: mark + 1_000,
        hold_ms: 10,
    };
    assert_eq!(orders.call(&ahead, None).await, mark, "nothing past the last event");
}
