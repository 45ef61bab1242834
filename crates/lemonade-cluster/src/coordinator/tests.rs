//! The coordinator against services that are frozen: every call is sent and never answered
//! until its attempt's timeout, as a stopped process is seen over a socket. In paused tokio
//! time, so that how long a client waited is exact and costs the test nothing: the clock
//! moves only when every task waits on a timer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lemonade_domain::ShopError;
use lemonade_domain::customer::Erasure;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::order::{OrderDraft, OrderStatus};
use lemonade_domain::ports::{IdempotencyKey, PlaceOrder, Shop, new_id};
use lemonade_domain::saga::machine::Mark;
use lemonade_domain::saga::{OrderPlan, PricedOrder};
use lemonade_domain::values::Money;
use lemonade_store::migrations::Role;
use lemonade_store::sql::directory::{self, Standing};
use lemonade_store::sql::sagas;
use lemonade_store::system::{SystemClock, UuidV7Ids};
use lemonade_store::{Database, WriterConfig};
use tokio::time::Instant;

use super::{Coordinator, CoordinatorConfig, KNOWN_ANSWER_MS};
use crate::client::{CallPolicy, Clients};
use crate::node::Node;
use crate::transport::{Reply, Request, Transport, TransportError};

/// Every service frozen: a call is answered by nothing but its own timeout.
struct Frozen;

#[async_trait]
impl Transport for Frozen {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        tokio::time::sleep(request.timeout).await;
        Err(TransportError::TimedOut(request.service, request.timeout.as_millis()))
    }
}

/// Every service up, and none has the order asked for: each call is answered 404.
struct NoSuchOrder;

#[async_trait]
impl Transport for NoSuchOrder {
    async fn send(&self, _request: Request) -> Result<Reply, TransportError> {
        Ok(Reply {
            status: 404,
            retry_after: None,
            body: serde_json::to_vec(&ShopError::not_found("order")).unwrap().into(),
            hlc: None,
        })
    }
}

struct FrozenCluster {
    coordinator: Coordinator,
    node: Node,
    config: CoordinatorConfig,
    _dir: tempfile::TempDir,
}

fn cluster_frozen() -> FrozenCluster {
    cluster_over(Arc::new(Frozen))
}

fn cluster_over(transport: Arc<dyn Transport>) -> FrozenCluster {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_role(
        &dir.path().join("coordinator.db"),
        Role::Coordinator,
        WriterConfig::default(),
    )
    .unwrap();
    let node = Node::new(db, Arc::new(SystemClock), Arc::new(UuidV7Ids));
    let clients = Arc::new(Clients::new(transport, CallPolicy::default(), 7));
    let config = CoordinatorConfig::default();
    FrozenCluster {
        coordinator: Coordinator::new(node.clone(), clients, config),
        node,
        config,
        _dir: dir,
    }
}

impl FrozenCluster {
    /// A saga logged for a new order of `customer`, in the state `mark` leaves it (`None`:
    /// running, as a placement answered 202 leaves it), under the client's `key` if any.
    async fn saga(&self, customer: Option<CustomerId>, mark: Option<Mark>, key: Option<IdempotencyKey>) -> OrderPlan {
        let plan = OrderPlan {
            order_id: new_id(self.node.ids.as_ref(), OrderId::parse),
            customer_id: customer,
            priced: PricedOrder {
                lines: vec![],
                total: Money::new(300).unwrap(),
                recipe_versions: vec![],
            },
            points: 3,
            created_at: self.node.now(),
        };
        let logged = plan.clone();
        self.node
            .write(move |tx| {
                sagas::start(tx, &logged, key.as_ref())?;
                match mark {
                    Some(mark) => sagas::set_state(tx, &logged.order_id, &mark),
                    None => Ok(()),
                }
            })
            .await
            .unwrap();
        plan
    }

    /// A customer the directory knows as active.
    async fn known_customer(&self) -> CustomerId {
        let id = new_id(self.node.ids.as_ref(), CustomerId::parse);
        let learned = id.clone();
        self.node
            .write(move |tx| directory::learn(tx, &learned, Standing::Active))
            .await
            .unwrap();
        id
    }

    fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.config.call_deadline_ms)
    }
}

/// An unfinished saga's order is not answered `pending` from the log while the orders
/// service cannot be asked: its create step may have reached that service, where the order
/// may have been confirmed and cancelled since (the simulation's seed 770088 read `pending`
/// after an acknowledged cancel). So the read waits for the orders service, at least a whole
/// attempt, then is 503.
#[tokio::test(start_paused = true)]
async fn with_orders_frozen_an_unfinished_sagas_order_waits_for_the_orders_service_then_is_503_never_a_stale_pending() {
    let cluster = cluster_frozen();
    let plan = cluster.saga(None, None, None).await;
    let asked = Instant::now();
    let answer = cluster.coordinator.get_order(plan.order_id.clone()).await;
    assert!(matches!(answer, Err(ShopError::Unavailable { .. })), "{answer:?}");
    let attempt = Duration::from_millis(CallPolicy::default().attempt_timeout_ms);
    assert!(asked.elapsed() >= attempt, "{:?}", asked.elapsed());
}

/// The orders service answers that it has no such order: the saga has not created it yet,
/// so it is pending, as the client was told.
#[tokio::test(start_paused = true)]
async fn an_unfinished_sagas_order_the_orders_service_does_not_have_yet_is_pending() {
    let cluster = cluster_over(Arc::new(NoSuchOrder));
    let plan = cluster.saga(None, None, None).await;
    let order = cluster.coordinator.get_order(plan.order_id.clone()).await.unwrap();
    assert_eq!(order, plan.order(OrderStatus::Pending, plan.created_at));
}

#[tokio::test(start_paused = true)]
async fn with_orders_frozen_a_failed_orders_location_answers_failed_from_the_saga_log_without_waiting_out_the_deadline()
{
    let cluster = cluster_frozen();
    let reason = "the lease ran out".to_owned();
    let plan = cluster.saga(None, Some(Mark::Failed { reason }), None).await;
    let asked = Instant::now();
    let order = cluster.coordinator.get_order(plan.order_id.clone()).await.unwrap();
    assert_eq!(order.status, OrderStatus::Failed, "{order:?}");
    assert!(asked.elapsed() < cluster.call_deadline());
}

/// Where the coordinator has no answer of its own, the call keeps its whole deadline: a
/// confirmed order may have been cancelled since, which only the orders service knows.
#[tokio::test(start_paused = true)]
async fn with_orders_frozen_a_confirmed_order_waits_for_the_orders_service_its_whole_deadline_then_is_503() {
    let cluster = cluster_frozen();
    let plan = cluster.saga(None, Some(Mark::Confirmed), None).await;
    let asked = Instant::now();
    let answer = cluster.coordinator.get_order(plan.order_id.clone()).await;
    assert!(matches!(answer, Err(ShopError::Unavailable { .. })), "{answer:?}");
    let attempt = Duration::from_millis(CallPolicy::default().attempt_timeout_ms);
    assert!(asked.elapsed() >= attempt, "{:?}", asked.elapsed());
}

#[tokio::test(start_paused = true)]
async fn with_crm_frozen_an_erasure_answers_202_recorded_without_waiting_out_the_deadline() {
    let cluster = cluster_frozen();
    let customer = cluster.known_customer().await;
    let asked = Instant::now();
    let erasure = cluster.coordinator.anonymise_customer(customer.clone()).await.unwrap();
    let waited = asked.elapsed();
    let Erasure::UnderWay(under_way) = erasure else {
        panic!("recorded, not done: {erasure:?}");
    };
    assert_eq!(under_way.id, customer);
    assert!(
        under_way.detail.contains("as soon as the customer list answers again"),
        "{under_way:?}"
    );
    assert_eq!(waited, Duration::from_millis(KNOWN_ANSWER_MS));
    let standing = cluster
        .node
        .lookup(move |db| directory::standing(db, &customer))
        .await
        .unwrap();
    assert_eq!(standing, Some(Standing::Erasing), "the erasure is recorded");
}

/// The `Location` of that 202, read while CRM is still frozen: the coordinator holds no
/// personal data to show, but it knows the erasure is under way, so the reader waits for CRM
/// no longer than the erasure did and hears so, to try again (503, `Retry-After`); and so
/// for a customer the directory knows as erased.
#[tokio::test(start_paused = true)]
async fn with_crm_frozen_the_location_of_an_erasure_says_it_is_under_way_without_waiting_out_the_deadline() {
    let cluster = cluster_frozen();
    let customer = cluster.known_customer().await;
    let erasure = cluster.coordinator.anonymise_customer(customer.clone()).await.unwrap();
    assert!(matches!(erasure, Erasure::UnderWay(_)), "{erasure:?}");

    let asked = Instant::now();
    let read = cluster.coordinator.get_customer(customer.clone()).await;
    assert_eq!(asked.elapsed(), Duration::from_millis(KNOWN_ANSWER_MS));
    let Err(ShopError::Unavailable { detail }) = read else {
        panic!("503, not the customer: {read:?}");
    };
    for words in ["erasure is recorded and under way", "not answering", "try again"] {
        assert!(detail.contains(words), "{words:?} in {detail}");
    }

    let erased = cluster.known_customer().await;
    let learned = erased.clone();
    cluster
        .node
        .write(move |tx| directory::learn(tx, &learned, Standing::Erased))
        .await
        .unwrap();
    let asked = Instant::now();
    let read = cluster.coordinator.get_customer(erased).await;
    assert_eq!(asked.elapsed(), Duration::from_millis(KNOWN_ANSWER_MS));
    let Err(ShopError::Unavailable { detail }) = read else {
        panic!("503, not the customer: {read:?}");
    };
    assert!(detail.contains("was erased"), "{detail}");
}

/// A customer with no erasure: the coordinator has no answer of its own, so the read waits
/// for CRM as any read does (at least a whole attempt), then is 503.
#[tokio::test(start_paused = true)]
async fn with_crm_frozen_a_customer_not_being_erased_waits_for_crm_then_is_503() {
    let cluster = cluster_frozen();
    let customer = cluster.known_customer().await;
    let asked = Instant::now();
    let read = cluster.coordinator.get_customer(customer).await;
    let Err(ShopError::Unavailable { detail }) = read else {
        panic!("503: {read:?}");
    };
    assert!(!detail.contains("erasure"), "{detail}");
    let attempt = Duration::from_millis(CallPolicy::default().attempt_timeout_ms);
    assert!(asked.elapsed() >= attempt, "{:?}", asked.elapsed());
}

#[tokio::test(start_paused = true)]
async fn with_the_services_frozen_a_retry_of_a_pending_order_replays_it_pending_without_waiting_out_the_order_deadline()
{
    let cluster = cluster_frozen();
    let key = IdempotencyKey {
        key: "k-retried".into(),
        fingerprint: "f".into(),
    };
    let plan = cluster.saga(None, None, Some(key.clone())).await;
    let retry = PlaceOrder {
        draft: OrderDraft {
            customer_id: None,
            lines: vec![],
        },
        idempotency: Some(key),
    };
    let asked = Instant::now();
    let placed = cluster.coordinator.place_order(retry).await.unwrap();
    assert!(placed.replayed);
    assert_eq!(placed.outcome, Ok(plan.order(OrderStatus::Pending, plan.created_at)));
    assert_eq!(asked.elapsed(), Duration::from_millis(KNOWN_ANSWER_MS));
    assert!(asked.elapsed() < Duration::from_millis(cluster.config.order_deadline_ms));
}

/// A saga this coordinator has just confirmed (the client was answered 201) whose end the
/// log does not hold yet: the log's `running` is out of date, so the coordinator has no
/// answer of its own, and the orders service alone answers, with its whole deadline, never
/// `pending`. Once the end is durable in the log, the log answers for it again.
#[tokio::test(start_paused = true)]
async fn an_order_confirmed_a_moment_ago_is_not_answered_pending_from_a_log_that_lags() {
    let cluster = cluster_frozen();
    let plan = cluster.saga(None, None, None).await;
    let id = plan.order_id.clone();
    // As `confirmed` leaves it until the group write is durable (held here, so that the
    // write cannot land between the test's steps).
    cluster.coordinator.inner.unrecorded.lock().insert(id.clone());
    assert!(cluster.coordinator.log_lags(&id));
    let answer = cluster.coordinator.get_order(id.clone()).await;
    assert!(matches!(answer, Err(ShopError::Unavailable { .. })), "{answer:?}");
    cluster.coordinator.inner.unrecorded.lock().clear();

    // The real thing: lagging from the confirmation until the group write records it (on
    // the writer's thread, in real time).
    cluster.coordinator.confirmed(&id);
    assert!(cluster.coordinator.log_lags(&id));
    for _ in 0..10_000 {
        if !cluster.coordinator.log_lags(&id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
        tokio::task::yield_now().await;
    }
    assert!(!cluster.coordinator.log_lags(&id), "recorded");
    let lookup = id.clone();
    let saga = cluster
        .node
        .lookup(move |db| sagas::get(db, &lookup))
        .await
        .unwrap()
        .unwrap();
    assert!(
        saga.state.order(saga.updated_at).is_none(),
        "the log says confirmed: {saga:?}"
    );
}
