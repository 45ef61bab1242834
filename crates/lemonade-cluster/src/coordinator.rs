//! The coordinator: the public API of the distributed mode. It implements the same
//! [`Shop`] port as the monolith, so the same router serves it; reads and simple changes go
//! to the service that owns the data, and placing an order is a saga with a durable log in
//! the coordinator's own database.
//!
//! Placing an order:
//! 1. check the customer in the coordinator's directory (CRM only for one it does not know),
//!    then reserve its stock at the stock service, which prices it (it owns the catalogue),
//!    under a lease on the stock service's clock;
//! 2. log the saga (`running`), with the priced plan and the client's idempotency key, in
//!    the transaction that checks the customer in the directory once more;
//! 3. commit the reservation;
//! 4. create the order, confirmed, at the orders service, which puts "award the points" in
//!    its outbox in the same transaction; its relay tells CRM;
//! 5. mark the saga `confirmed`.
//!
//! Until step 4 the orders service does not know the order: a client who got 202 reads it
//! as `pending` from the saga log.
//!
//! Every step carries the key `<order id>:<step>`, and its receiver keeps the step's result
//! under it, so the saga can repeat any step it is unsure of. A refusal after step 2 (the
//! lease ran out, say) compensates: the order is marked failed (first, so that a confirm and
//! a fail can never both win), then the reservation released. A step that cannot be done
//! now (a service down) leaves the saga where it is: the client gets 202 with the pending
//! order, and the sweeper drives the saga on until it ends, also after a restart.
//!
//! Every change of a customer passes through here, so the coordinator keeps a directory of
//! customers (ids and standing, no personal data; `sql::directory`): a sale to a customer it
//! knows needs no CRM, and an erasure is marked in it before anything else, so that no order
//! can name the customer from then on (see [`Coordinator::anonymise_customer`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lemonade_domain::catalog::{CatalogRefs, NewProduct, Product, ProductPatch};
use lemonade_domain::customer::check_order_customer;
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields, Erasure, ErasureUnderWay};
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{Order, OrderStatus, points_earned};
use lemonade_domain::order::{OrderDraft, OrderRefs};
use lemonade_domain::ports::{
    DependencyHealth, Health, IdempotencyKey, OrderFilter, Page, PageRequest, PlaceOrder, Placed, Shop,
};
use lemonade_domain::report::{SalesQuery, SalesReport};
use lemonade_domain::saga::OrderPlan;
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use lemonade_domain::values::Timestamp;
use lemonade_domain::{FieldError, ShopError};
use lemonade_store::inflight::InFlight;
use lemonade_store::sql::directory::{self, Standing};
use lemonade_store::sql::sagas::{self, Saga, SagaState};
use tokio::time::Instant;

use crate::client::{CallError, Clients};
use crate::eager::Eager;
use crate::group::{Group, Joined};
use crate::node::Node;
use crate::rpc::*;

/// How the coordinator runs sagas. Units are in the names.
#[derive(Clone, Copy, Debug)]
pub struct CoordinatorConfig {
    /// How long the stock service holds a reservation that was not committed.
    pub lease_ms: u64,
    /// How long placing an order may take before the client gets 202 and a pending order.
    pub order_deadline_ms: u64,
    /// How long other requests may take, retries included.
    pub call_deadline_ms: u64,
    /// A saga still running after this long is given up and compensated.
    pub give_up_ms: u64,
    /// How often the sweeper looks for unfinished sagas, and how long a saga must have been
    /// left alone before it picks it up.
    pub sweep_period_ms: u64,
    pub minor_units_per_point: u64,
    /// How long finished sagas (and with them the clients' idempotency keys) are kept.
    pub retention_ms: i64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            lease_ms: 30_000,
            order_deadline_ms: 3_000,
            call_deadline_ms: 5_000,
            give_up_ms: 120_000,
            sweep_period_ms: 500,
            minor_units_per_point: lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT,
            retention_ms: 48 * 3_600_000,
        }
    }
}

/// Least time the coordinator gives the release of a failed placement's reservation.
const RELEASE_MIN_MS: u64 = 1_000;
/// Longest a client's answer waits for what is only extra to it: what stock finds wrong in
/// the products of an order refused for its customer, in the same answer. A service that
/// does not answer within this is left out of the answer rather than keep it waiting.
const BEST_EFFORT_MS: u64 = 250;
/// Longest `/health` waits for each service's status.
const HEALTH_CHECK_MS: u64 = 500;
/// Most unfinished sagas the sweeper takes on per round.
const SWEEP_BATCH_MAX: u32 = 64;
/// Most confirmed sagas waiting to be recorded; past that one is left to the sweeper.
const CONFIRMS_WAITING_MAX: usize = 4_096;
/// Longest an order waits for CRM to check a customer the directory does not know: a sale
/// must not wait out its whole deadline for a service it can do without.
const CUSTOMER_CHECK_MS: u64 = 1_000;
/// How often an erasure looks again whether the customer's orders in flight have finished.
const ERASURE_POLL_MS: u64 = 20;

/// The answer to an order naming a customer the directory does not know while CRM cannot be
/// asked: what a cashier can do about it.
const CUSTOMER_LIST_DOWN: &str = "the customer list is unavailable and this customer is not known here yet: sell without the customer, or try again in a moment";

/// An erasure recorded, not finished: the answer's words, whatever held it up.
const ERASURE_RECORDED: &str =
    "the erasure is recorded and cannot be undone: no new order can name this customer from now on";
const ERASURE_WHEN_CRM_BACK: &str = "their details are removed by themselves as soon as the customer list \
     answers again (it is not answering now); nothing more needs doing";
const ERASURE_AFTER_ORDERS: &str = "orders of theirs are still being completed, and their details are \
     removed by themselves once those have finished; nothing more needs doing";
const ERASURE_LATER: &str = "their details are removed by themselves shortly; nothing more needs doing";

fn under_way(id: &CustomerId, then: &str) -> Erasure {
    Erasure::UnderWay(ErasureUnderWay {
        id: id.clone(),
        detail: format!("{ERASURE_RECORDED}. {}{}", then[..1].to_uppercase(), &then[1..]),
    })
}

#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    node: Node,
    clients: Arc<Clients>,
    config: CoordinatorConfig,
    /// Client idempotency keys being worked on in this process.
    keys: InFlight,
    /// Sagas being driven in this process (by a request or by the sweeper).
    driving: InFlight,
    /// Confirmed sagas whose end is not recorded yet (see [`Coordinator::confirmed`]).
    confirms: Arc<Group<OrderId>>,
    /// Events being delivered to their receivers without the relay.
    eager: Eager,
}

/// Where driving a saga got to.
enum Progress {
    Confirmed(Order),
    /// Compensated: the order failed, for this reason, and nothing is held.
    Failed(String),
    /// Not finished yet; the sweeper goes on with it.
    Pending,
}

fn step_key(order: &OrderId, step: &str) -> Option<String> {
    Some(format!("{order}:{step}"))
}

impl Coordinator {
    pub fn new(node: Node, clients: Arc<Clients>, config: CoordinatorConfig) -> Self {
        assert!(config.minor_units_per_point > 0);
        assert!(
            config.lease_ms > config.order_deadline_ms,
            "a lease outlives the request"
        );
        Coordinator {
            inner: Arc::new(Inner {
                node,
                config,
                keys: InFlight::default(),
                driving: InFlight::default(),
                confirms: Arc::new(Group::new(CONFIRMS_WAITING_MAX)),
                eager: Eager::new(Arc::clone(&clients)),
                clients,
            }),
        }
    }

    pub fn clients(&self) -> &Arc<Clients> {
        &self.inner.clients
    }

    fn deadline(&self, ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// A read forwarded for a client. It sees what the eager deliveries under way to its
    /// service do (a client reads the points of the order it was just answered).
    async fn ask<C: Call>(&self, call: C) -> Result<C::Reply, ShopError> {
        self.inner.eager.caught_up(C::SERVICE).await;
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        Ok(self.inner.clients.call(&call, None, deadline).await?)
    }

    /// A change forwarded for a client: one fresh step key for this request, kept over its
    /// retries, so a retried call whose reply was lost is not carried out twice. Like a read,
    /// it comes after the eager deliveries under way to its service.
    async fn change<C: Call>(&self, call: C) -> Result<C::Reply, ShopError> {
        self.inner.eager.caught_up(C::SERVICE).await;
        let key = format!("req:{}", self.inner.node.ids.next_id());
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        Ok(self.inner.clients.call(&call, Some(key), deadline).await?)
    }

    /// A call whose reply only adds to a client's answer: it waits at most
    /// [`BEST_EFFORT_MS`], whatever the service does.
    async fn extra_call<C: Call>(&self, call: C) -> Result<C::Reply, CallError> {
        let within = Duration::from_millis(BEST_EFFORT_MS);
        let reply = self.inner.clients.call_within(&call, within).await;
        if let Err(e) = &reply {
            tracing::debug!(path = C::PATH, error = ?e, "left out of an answer");
        }
        reply
    }

    /// [`Coordinator::extra_call`]'s reply, `None` if there is none.
    async fn extra<C: Call>(&self, call: C) -> Option<C::Reply> {
        self.extra_call(call).await.ok()
    }

    async fn log(&self, order: &OrderId, state: SagaState, outcome: Option<ShopError>) -> Result<(), ShopError> {
        let order = order.clone();
        self.inner
            .node
            .write(move |db, now| sagas::set_state(db, &order, state, outcome.as_ref(), now))
            .await
    }

    /// Places an order, from the client's request to the end of the saga or its deadline.
    async fn place(&self, request: PlaceOrder) -> Result<Placed, ShopError> {
        let order_id = OrderId::parse(&self.inner.node.ids.next_id()).expect("the id source makes valid ids");
        let deadline = self.deadline(self.inner.config.order_deadline_ms);
        let draft = request.draft;
        let reserve = Reserve {
            order_id: order_id.clone(),
            draft: draft.clone(),
            lease_ms: self.inner.config.lease_ms,
        };
        let clients = &self.inner.clients;
        // The customer first: a refused order must leave no trace, not even a reservation
        // taken and given back in the ledger.
        if let Some(id) = &draft.customer_id
            && let Some(refusal) = self.check_customer(id, deadline).await?
        {
            let refusal = self.with_product_errors(refusal, &draft).await;
            return self.refuse(&order_id, request.idempotency, refusal).await;
        }
        let refusal = match clients.call(&reserve, step_key(&order_id, "reserve"), deadline).await {
            Ok(priced) => {
                let points = points_earned(
                    draft.customer_id.as_ref(),
                    priced.total,
                    self.inner.config.minor_units_per_point,
                );
                let plan = OrderPlan {
                    order_id,
                    customer_id: draft.customer_id.clone(),
                    priced,
                    points,
                    created_at: self.inner.node.now(),
                };
                return self.run(plan, request.idempotency, deadline).await;
            }
            Err(CallError::Refused(e)) => e,
            Err(e) => {
                // Whatever the reservation did, give it up: release is safe on an order that
                // holds nothing (it then never will).
                self.release_now(&order_id, deadline).await;
                return Err(e.into());
            }
        };
        self.refuse(&order_id, request.idempotency, refusal).await
    }

    /// Whether an order may name customer `id`: `Some(refusal)` if not. The directory answers
    /// for a customer it knows, without CRM; one it does not know is looked up at CRM, within
    /// [`CUSTOMER_CHECK_MS`], and if CRM cannot say, the answer tells the cashier what to do.
    async fn check_customer(&self, id: &CustomerId, deadline: Instant) -> Result<Option<ShopError>, ShopError> {
        if let Some(standing) = self.standing(id).await? {
            return Ok(check_order_customer(Some(standing)).err().map(ShopError::from));
        }
        let budget = deadline.min(self.deadline(CUSTOMER_CHECK_MS));
        match self
            .inner
            .clients
            .call(&GetCustomer { id: id.clone() }, None, budget)
            .await
        {
            // An active customer is learned when the saga is logged, in that same transaction.
            Ok(c) => {
                let refusal = check_order_customer(Some(c.standing())).err();
                if refusal.is_some() {
                    self.learn(&c).await;
                }
                Ok(refusal.map(ShopError::from))
            }
            Err(CallError::Refused(ShopError::NotFound { .. })) => {
                Ok(check_order_customer(None).err().map(ShopError::from))
            }
            Err(CallError::Refused(e)) => Err(e),
            Err(e) => {
                tracing::warn!(customer = %id, error = ?e, "cannot check a customer the directory does not know");
                Err(ShopError::unavailable(CUSTOMER_LIST_DOWN))
            }
        }
    }

    /// What the directory knows of a customer.
    async fn standing(&self, id: &CustomerId) -> Result<Option<Standing>, ShopError> {
        let id = id.clone();
        self.inner.node.lookup(move |db| directory::standing(db, &id)).await
    }

    /// Writes what CRM answered about a customer through to the directory, when it did not
    /// know as much. Best effort: a customer the directory misses is asked at CRM.
    async fn learn(&self, customer: &Customer) {
        let standing = customer.standing();
        if self.standing(&customer.id).await.ok().flatten() >= Some(standing) {
            return;
        }
        let id = customer.id.clone();
        if let Err(e) = self
            .inner
            .node
            .write(move |db, now| directory::learn(db, &id, standing, now))
            .await
        {
            tracing::warn!(customer = %customer.id, error = %e, "could not write a customer to the directory");
        }
    }

    /// A refused customer, together with what stock finds wrong in the order's products, so
    /// that the client hears of both in one answer. Best effort: stock's errors are left out
    /// when it cannot answer within [`BEST_EFFORT_MS`].
    async fn with_product_errors(&self, refusal: ShopError, draft: &OrderDraft) -> ShopError {
        let ShopError::ValidationFailed { mut errors } = refusal else {
            return refusal;
        };
        let products = draft
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.product_id.clone()))
            .collect();
        if let Some(more) = self.extra(CheckOrderProducts { products }).await {
            errors.extend(more);
        }
        ShopError::ValidationFailed { errors }
    }

    /// Answers a placement refused before it held anything, recording the refusal under the
    /// client's key so a retry gets it again.
    async fn refuse(
        &self,
        order_id: &OrderId,
        key: Option<IdempotencyKey>,
        refusal: ShopError,
    ) -> Result<Placed, ShopError> {
        assert!(refusal.is_refusal(), "only refusals are recorded: {refusal:?}");
        if let Some(key) = key {
            let (order, refused) = (order_id.clone(), refusal.clone());
            self.inner
                .node
                .write(move |db, now| sagas::reject(db, &order, &key, &refused, now))
                .await?;
        }
        Ok(Placed {
            outcome: Err(refusal),
            replayed: false,
        })
    }

    /// Gives a failed placement's reservation back. It has a second of its own when the
    /// request's deadline is (nearly) spent, as after a reserve that used it up: otherwise
    /// the stock would stay held, unsold, until its lease ran out.
    async fn release_now(&self, order: &OrderId, deadline: Instant) {
        let deadline = deadline.max(self.deadline(RELEASE_MIN_MS));
        let release = ReleaseReservation {
            order_id: order.clone(),
        };
        if let Err(e) = self
            .inner
            .clients
            .call(&release, step_key(order, "release"), deadline)
            .await
        {
            tracing::warn!(order = %order, error = ?e, "could not release a reservation now; its lease will");
        }
    }

    /// Logs the saga, then drives it until it ends or the deadline passes.
    ///
    /// The saga is logged in the transaction that checks its customer in the directory again
    /// (and learns a customer CRM just vouched for): an erasure marked after the first check
    /// either comes after this saga, and then waits for it, or before, and then refuses it.
    async fn run(&self, plan: OrderPlan, key: Option<IdempotencyKey>, deadline: Instant) -> Result<Placed, ShopError> {
        let logged = {
            let (plan, key) = (plan.clone(), key.clone());
            self.inner
                .node
                .write(move |db, now| {
                    if let Some(customer) = &plan.customer_id {
                        match directory::standing(db, customer)? {
                            Some(standing) => check_order_customer(Some(standing))?,
                            None => directory::learn(db, customer, Standing::Active, now)?,
                        }
                    }
                    sagas::start(db, &plan, key.as_ref(), now)
                })
                .await
        };
        if let Err(e) = logged {
            self.release_now(&plan.order_id, deadline).await;
            if e.is_refusal() {
                return self.refuse(&plan.order_id, key, e).await;
            }
            return Err(e);
        }
        let _driving = self.inner.driving.claim(plan.order_id.as_str())?;
        let progress = self.advance(&plan, deadline).await;
        Ok(self.answer(&plan, progress))
    }

    fn answer(&self, plan: &OrderPlan, progress: Progress) -> Placed {
        let outcome = match progress {
            Progress::Confirmed(order) => Ok(order),
            Progress::Pending => Ok(plan.order(OrderStatus::Pending, self.inner.node.now())),
            Progress::Failed(reason) => Err(failed(&plan.order_id, &reason)),
        };
        Placed {
            outcome,
            replayed: false,
        }
    }

    /// Drives a running saga forward: commit the reservation, then create the order confirmed.
    async fn advance(&self, plan: &OrderPlan, deadline: Instant) -> Progress {
        let id = &plan.order_id;
        let clients = &self.inner.clients;
        let commit = CommitReservation { order_id: id.clone() };
        match clients.call(&commit, step_key(id, "commit"), deadline).await {
            Ok(()) => {}
            Err(CallError::Refused(e)) => return self.compensate(plan, e.to_string(), deadline).await,
            Err(_) => return Progress::Pending,
        }
        let create = CreateOrder { plan: plan.clone() };
        match clients.call(&create, step_key(id, "place"), deadline).await {
            Ok(settled) => {
                self.confirmed(id);
                // Not waited for: a client's next read waits for it instead.
                self.inner.eager.deliver(settled.events);
                Progress::Confirmed(settled.order)
            }
            Err(CallError::Refused(e)) => self.compensate(plan, e.to_string(), deadline).await,
            Err(_) => Progress::Pending,
        }
    }

    /// Records the end of a confirmed saga. The client need not wait for it: the order is
    /// confirmed at the orders service already, and a saga left `running` is driven again by
    /// the sweeper, every step of which then replays.
    ///
    /// The ends are recorded in groups: the first confirmation to wait sends one write, and
    /// that write records every confirmation waiting when the writer runs it (measured: one
    /// write per saga cost about 7% of the cluster's throughput at concurrency 64).
    fn confirmed(&self, id: &OrderId) {
        match self.inner.confirms.join(id.clone()) {
            Ok(Joined::First) => {}
            Ok(Joined::Queued) => return,
            Err(_) => {
                tracing::debug!(order = %id, "too many confirmations waiting; the sweeper will record this one");
                return;
            }
        }
        let node = self.inner.node.clone();
        let confirms = Arc::clone(&self.inner.confirms);
        tokio::spawn(async move {
            let group = Arc::clone(&confirms);
            let recorded = node
                .write(move |db, now| {
                    for id in group.take() {
                        sagas::set_state(db, &id, SagaState::Confirmed, None, now)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = recorded {
                let left = confirms.abandon();
                tracing::warn!(error = %e, left, "could not record confirmed sagas; the sweeper will");
            }
        });
    }

    /// Undoes a saga: the order fails (or, if it was confirmed after all, the saga is
    /// confirmed), then its reservation is released.
    async fn compensate(&self, plan: &OrderPlan, reason: String, deadline: Instant) -> Progress {
        let id = &plan.order_id;
        tracing::warn!(order = %id, reason, "compensating an order placement");
        if let Err(e) = self
            .log(
                id,
                SagaState::Compensating,
                Some(ShopError::unavailable(reason.clone())),
            )
            .await
        {
            tracing::warn!(order = %id, error = %e, "could not log compensation");
            return Progress::Pending;
        }
        let clients = &self.inner.clients;
        let fail = FailOrder {
            plan: plan.clone(),
            reason: reason.clone(),
        };
        match clients.call(&fail, step_key(id, "fail"), deadline).await {
            Ok(_) => {}
            Err(CallError::Refused(ShopError::Conflict { .. })) => {
                // Confirmed before the fail arrived: the order stands, and so does its
                // committed reservation.
                let _ = self.log(id, SagaState::Confirmed, None).await;
                return Progress::Confirmed(plan.order(OrderStatus::Confirmed, plan.created_at));
            }
            Err(e) => {
                tracing::warn!(order = %id, error = ?e, "could not fail the order yet");
                return Progress::Pending;
            }
        }
        let release = ReleaseReservation { order_id: id.clone() };
        if let Err(e) = clients.call(&release, step_key(id, "release"), deadline).await {
            tracing::warn!(order = %id, error = ?e, "could not release the reservation yet");
            return Progress::Pending;
        }
        match self
            .log(id, SagaState::Failed, Some(ShopError::unavailable(reason.clone())))
            .await
        {
            Ok(()) => Progress::Failed(reason),
            Err(_) => Progress::Pending,
        }
    }

    /// Drives one unfinished saga on (a retried request, or the sweeper).
    async fn resume(&self, saga: &Saga, deadline: Instant) -> Progress {
        let plan = saga.plan.as_ref().expect("an unfinished saga has a plan");
        let age_ms = self.inner.node.now().millis() - saga.created_at.millis();
        match saga.state {
            SagaState::Running if age_ms > self.inner.config.give_up_ms as i64 => {
                let reason = format!(
                    "it could not be completed within {} s",
                    self.inner.config.give_up_ms / 1_000
                );
                self.compensate(plan, reason, deadline).await
            }
            SagaState::Running => self.advance(plan, deadline).await,
            SagaState::Compensating => {
                let reason = match &saga.outcome {
                    Some(ShopError::Unavailable { detail }) => detail.clone(),
                    _ => "the order could not be completed".to_owned(),
                };
                self.compensate(plan, reason, deadline).await
            }
            finished => unreachable!("resume of a finished saga ({finished:?})"),
        }
    }

    /// Drives every unfinished saga left alone for a sweep period, until stopped. Started
    /// with the coordinator, so a crash mid-saga is picked up on restart.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.inner.node.db.tasks.spawn("the saga sweeper", async move {
            let period = Duration::from_millis(this.inner.config.sweep_period_ms);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut first = true;
            loop {
                tick.tick().await;
                // On start, everything unfinished is somebody's crash: take it all at once.
                let idle_ms = if first {
                    0
                } else {
                    this.inner.config.sweep_period_ms as i64 * 2
                };
                first = false;
                // `unfinished` takes sagas last touched strictly before this instant.
                let idle_before = Timestamp(this.inner.node.now().millis() - idle_ms + 1);
                let swept = this
                    .inner
                    .node
                    .read(move |db| sagas::unfinished(db, idle_before, SWEEP_BATCH_MAX))
                    .await;
                let unfinished = match swept {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(error = %e, "the sweeper cannot read the saga log");
                        continue;
                    }
                };
                for saga in unfinished {
                    let Ok(_driving) = this.inner.driving.claim(saga.order_id.as_str()) else {
                        continue; // a request is driving it
                    };
                    let id = saga.order_id.clone();
                    let _ = this
                        .inner
                        .node
                        .write(move |db, now| sagas::attempted(db, &id, now))
                        .await;
                    let deadline = this.deadline(this.inner.config.call_deadline_ms);
                    match this.resume(&saga, deadline).await {
                        Progress::Confirmed(_) => tracing::info!(order = %saga.order_id, "sweeper confirmed an order"),
                        Progress::Failed(reason) => {
                            tracing::info!(order = %saga.order_id, reason, "sweeper failed an order")
                        }
                        Progress::Pending => {}
                    }
                }
                this.sweep_erasures(idle_before).await;
            }
        })
    }

    /// Probes the circuits of the services that are down, so that no client's request has
    /// to (see [`Clients::spawn_prober`]). A vital task of the coordinator.
    pub fn spawn_prober(&self) -> tokio::task::JoinHandle<()> {
        self.inner.clients.spawn_prober(&self.inner.node.db.tasks)
    }

    /// Forgets finished sagas past retention, now and then.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let node = &self.inner.node;
        lemonade_store::maintenance::spawn_expiry(
            &node.db,
            Arc::clone(&node.clock),
            self.inner.config.retention_ms,
            "finished sagas",
            sagas::expire,
        )
    }

    /// A retried request whose key has a saga: its answer, replayed or driven on.
    async fn replay(&self, saga: Saga) -> Result<Placed, ShopError> {
        let replayed = |outcome| Placed {
            outcome,
            replayed: true,
        };
        match saga.state {
            SagaState::Rejected => Ok(replayed(Err(saga.outcome.expect("a rejected saga has its refusal")))),
            SagaState::Confirmed => {
                let plan = saga.plan.expect("a confirmed saga has a plan");
                Ok(replayed(Ok(plan.order(OrderStatus::Confirmed, plan.created_at))))
            }
            SagaState::Failed => unreachable!("a failed saga frees its key"),
            SagaState::Running | SagaState::Compensating => {
                let plan = saga.plan.clone().expect("an unfinished saga has a plan");
                let Ok(_driving) = self.inner.driving.claim(saga.order_id.as_str()) else {
                    return Ok(replayed(Ok(plan.order(OrderStatus::Pending, self.inner.node.now()))));
                };
                let deadline = self.deadline(self.inner.config.order_deadline_ms);
                let progress = self.resume(&saga, deadline).await;
                let mut placed = self.answer(&plan, progress);
                placed.replayed = true;
                Ok(placed)
            }
        }
    }
}

impl Coordinator {
    /// Waits, at most `wait_ms`, until no saga naming `customer` is unfinished. Returns
    /// whether none is.
    async fn orders_in_flight_finish(&self, customer: &CustomerId, wait_ms: u64) -> Result<bool, ShopError> {
        let until = self.deadline(wait_ms);
        loop {
            let id = customer.clone();
            let unfinished = self
                .inner
                .node
                .lookup(move |db| sagas::unfinished_of_customer(db, &id))
                .await?;
            if unfinished == 0 {
                return Ok(true);
            }
            if Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(ERASURE_POLL_MS)).await;
        }
    }

    /// The last step of an erasure, once no order of the customer is in flight: CRM
    /// anonymises them, then the directory records it. The step key is the customer's, so
    /// however many times this is asked (by clients retrying, by the sweeper), CRM erases once.
    async fn finish_erasure(&self, customer: &CustomerId, deadline: Instant) -> Result<Customer, CallError> {
        // After the eager deliveries to CRM under way: the points it forfeits include theirs.
        self.inner.eager.caught_up(Service::Crm).await;
        let erase = AnonymiseCustomer { id: customer.clone() };
        let erased = self
            .inner
            .clients
            .call(&erase, Some(format!("erase:{customer}")), deadline)
            .await?;
        // Left `erasing` if this write fails: the sweeper asks CRM again, which changes nothing.
        self.learn(&erased).await;
        Ok(erased)
    }

    /// Finishes erasures that were asked for but not done (their orders in flight took too
    /// long, or CRM was down), once their customer has no order in flight.
    async fn sweep_erasures(&self, idle_before: Timestamp) {
        let erasing = self
            .inner
            .node
            .read(move |db| directory::erasing(db, idle_before, SWEEP_BATCH_MAX))
            .await;
        let erasing = match erasing {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "the sweeper cannot read the customer directory");
                return;
            }
        };
        for customer in erasing {
            let id = customer.clone();
            let _ = self
                .inner
                .node
                .write(move |db, now| directory::touch(db, &id, now))
                .await;
            if !matches!(self.orders_in_flight_finish(&customer, 0).await, Ok(true)) {
                continue;
            }
            let deadline = self.deadline(self.inner.config.call_deadline_ms);
            match self.finish_erasure(&customer, deadline).await {
                Ok(_) => tracing::info!(customer = %customer, "sweeper finished an erasure"),
                Err(e) => tracing::warn!(customer = %customer, error = ?e, "could not finish an erasure yet"),
            }
        }
    }

    /// An order of the saga log, for when the orders service cannot be asked: what the log
    /// knows for certain. An unfinished saga's order is `pending` (the client was told so);
    /// a failed saga's order failed for good; a rejected saga has no order. A confirmed
    /// saga's order may have been cancelled since, so the log cannot answer for it.
    async fn order_from_saga_log(&self, id: &OrderId) -> Result<Option<Order>, ShopError> {
        let lookup = id.clone();
        let Some(saga) = self.inner.node.lookup(move |db| sagas::get(db, &lookup)).await? else {
            return Ok(None);
        };
        Ok(match saga.state {
            SagaState::Running | SagaState::Compensating => {
                let plan = saga.plan.expect("an unfinished saga has a plan");
                Some(plan.order(OrderStatus::Pending, saga.updated_at))
            }
            SagaState::Failed => {
                let plan = saga.plan.expect("a failed saga has a plan");
                let mut order = plan.order(OrderStatus::Failed, saga.updated_at);
                order.failure_reason = Some(match saga.outcome {
                    Some(ShopError::Unavailable { detail }) => detail,
                    _ => "the order could not be completed".to_owned(),
                });
                Some(order)
            }
            SagaState::Rejected => return Err(ShopError::not_found("order")),
            SagaState::Confirmed => None,
        })
    }

    /// Whether customer `id` exists, from the directory when it knows them, else from CRM.
    async fn require_customer(&self, id: &CustomerId) -> Result<(), ShopError> {
        if self.standing(id).await?.is_some() {
            return Ok(());
        }
        let customer = self.ask(GetCustomer { id: id.clone() }).await?;
        self.learn(&customer).await;
        Ok(())
    }
}

fn failed(order: &OrderId, reason: &str) -> ShopError {
    ShopError::unavailable(format!(
        "order {order} could not be completed ({reason}); nothing was taken from stock. Try again"
    ))
}

#[async_trait]
impl Shop for Coordinator {
    async fn list_ingredients(&self, page: PageRequest) -> Result<Page<Ingredient>, ShopError> {
        self.ask(ListIngredients { page }).await
    }
    async fn get_ingredient(&self, id: IngredientId) -> Result<Ingredient, ShopError> {
        self.ask(GetIngredient { id }).await
    }
    async fn create_ingredient(&self, new: NewIngredient) -> Result<Ingredient, ShopError> {
        self.change(CreateIngredient { new }).await
    }
    async fn adjust_stock(
        &self,
        id: IngredientId,
        adjustment: StockAdjustment,
    ) -> Result<(Ingredient, StockMove), ShopError> {
        self.change(AdjustStock { id, adjustment }).await
    }
    async fn list_moves(
        &self,
        ingredient: Option<IngredientId>,
        page: PageRequest,
    ) -> Result<Page<StockMove>, ShopError> {
        self.ask(ListMoves { ingredient, page }).await
    }

    async fn list_products(&self, page: PageRequest) -> Result<Page<Product>, ShopError> {
        self.ask(ListProducts { page }).await
    }
    async fn get_product(&self, id: ProductId) -> Result<Product, ShopError> {
        self.ask(GetProduct { id }).await
    }
    async fn create_product(&self, new: NewProduct) -> Result<Product, ShopError> {
        self.change(CreateProduct { new }).await
    }
    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product, ShopError> {
        self.change(UpdateProduct { id, patch }).await
    }

    async fn list_customers(&self, search: Option<String>, page: PageRequest) -> Result<Page<Customer>, ShopError> {
        self.ask(ListCustomers { search, page }).await
    }
    async fn get_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        let customer = self.ask(GetCustomer { id }).await?;
        self.learn(&customer).await;
        Ok(customer)
    }
    async fn create_customer(&self, fields: CustomerFields) -> Result<Customer, ShopError> {
        let customer = self.change(CreateCustomer { fields }).await?;
        self.learn(&customer).await;
        Ok(customer)
    }
    async fn update_customer(&self, id: CustomerId, fields: CustomerFields) -> Result<Customer, ShopError> {
        let customer = self.change(UpdateCustomer { id, fields }).await?;
        self.learn(&customer).await;
        Ok(customer)
    }

    /// Erases a customer without a race with their orders:
    /// 1. the directory marks them `erasing`, durably: from then on no order can name them
    ///    (an order checks the directory, and checks it again in the transaction that logs
    ///    its saga);
    /// 2. it waits, at most as long as an order may take (`order_deadline_ms`), until no
    ///    saga naming them is unfinished;
    /// 3. CRM anonymises them (forfeiting their points; an award that reaches CRM later
    ///    changes nothing), and the directory marks them `erased`.
    ///
    /// Once step 1 is done the erasure is recorded for good: if step 2 or 3 cannot be done
    /// now (orders still in flight, CRM not answering), the answer is
    /// [`Erasure::UnderWay`] (202) saying so, never an error, and the sweeper finishes it.
    async fn anonymise_customer(&self, id: CustomerId) -> Result<Erasure, ShopError> {
        if self.standing(&id).await?.is_none() {
            // Unknown here: CRM says whether they exist (404 stays 404, nothing is marked).
            let customer = self.ask(GetCustomer { id: id.clone() }).await?;
            self.learn(&customer).await;
        }
        let marked = id.clone();
        self.inner
            .node
            .write(move |db, now| directory::learn(db, &marked, Standing::Erasing, now))
            .await?;
        // From here on the erasure is recorded: whatever stops it now, the sweeper finishes
        // it, and the answer says so rather than fail.
        match self
            .orders_in_flight_finish(&id, self.inner.config.order_deadline_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Ok(under_way(&id, ERASURE_AFTER_ORDERS)),
            Err(e) => {
                tracing::warn!(customer = %id, error = %e, "cannot see the orders in flight of a customer being erased");
                return Ok(under_way(&id, ERASURE_LATER));
            }
        }
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        match self.finish_erasure(&id, deadline).await {
            Ok(erased) => Ok(Erasure::Done(erased)),
            Err(CallError::Refused(e)) => Err(e),
            Err(e) => {
                tracing::warn!(customer = %id, error = ?e, "an erasure is recorded; the sweeper finishes it once CRM answers");
                Ok(under_way(&id, ERASURE_WHEN_CRM_BACK))
            }
        }
    }
    async fn export_customer(&self, id: CustomerId) -> Result<CustomerExport, ShopError> {
        let (customer, orders, activity) = tokio::join!(
            self.ask(GetCustomer { id: id.clone() }),
            self.ask(CustomerOrders {
                customer_id: id.clone()
            }),
            self.ask(CustomerActivity { id })
        );
        let customer = customer?;
        self.learn(&customer).await;
        Ok(CustomerExport {
            customer,
            orders: orders?,
            activity: activity?,
            exported_at: self.inner.node.now(),
        })
    }

    /// Best effort, for a request that has other errors already: what stock cannot tell
    /// within [`BEST_EFFORT_MS`] is left out.
    async fn check_catalog_refs(&self, refs: CatalogRefs) -> Result<Vec<FieldError>, ShopError> {
        Ok(self.extra(CheckCatalog { refs }).await.unwrap_or_default())
    }

    /// Best effort, for a request that has other errors already, each part on its own: the
    /// customer from the directory when it knows them, else from CRM; the products from
    /// stock. What cannot be told within [`BEST_EFFORT_MS`] is left out.
    async fn check_order_refs(&self, refs: OrderRefs) -> Result<Vec<FieldError>, ShopError> {
        let customer = async {
            let id = refs.customer_id.clone()?;
            if let Ok(Some(standing)) = self.standing(&id).await {
                return check_order_customer(Some(standing)).err();
            }
            match self.extra_call(GetCustomer { id }).await {
                Ok(c) => check_order_customer(Some(c.standing())).err(),
                Err(CallError::Refused(ShopError::NotFound { .. })) => check_order_customer(None).err(),
                Err(_) => None,
            }
        };
        let products = async {
            match refs.products.is_empty() {
                true => Vec::new(),
                false => self
                    .extra(CheckOrderProducts {
                        products: refs.products.clone(),
                    })
                    .await
                    .unwrap_or_default(),
            }
        };
        let (customer, products) = tokio::join!(customer, products);
        Ok(customer.into_iter().chain(products).collect())
    }

    async fn place_order(&self, request: PlaceOrder) -> Result<Placed, ShopError> {
        let claim = match &request.idempotency {
            Some(k) => Some(self.inner.keys.claim(&k.key)?),
            None => None,
        };
        if let Some(key) = &request.idempotency {
            let lookup = key.key.clone();
            if let Some(saga) = self.inner.node.lookup(move |db| sagas::by_key(db, &lookup)).await? {
                if saga.fingerprint.as_deref() != Some(key.fingerprint.as_str()) {
                    return Err(ShopError::IdempotencyKeyReused);
                }
                return self.replay(saga).await;
            }
        }
        // Run in a task of its own: a client that hangs up must not cut a saga in half.
        let this = self.clone();
        tokio::spawn(async move {
            let _claim = claim;
            this.place(request).await
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "placing an order panicked");
            Err(ShopError::unavailable("placing the order failed unexpectedly"))
        })
    }

    async fn list_orders(&self, filter: OrderFilter, page: PageRequest) -> Result<Page<Order>, ShopError> {
        if let Some(customer) = &filter.customer_id {
            self.require_customer(customer).await?;
        }
        self.ask(ListOrders { filter, page }).await
    }

    async fn get_order(&self, id: OrderId) -> Result<Order, ShopError> {
        match self.ask(GetOrder { id: id.clone() }).await {
            Err(ShopError::NotFound { what }) => {
                // Not at the orders service yet: a saga that has not created it shows it pending.
                match self.order_from_saga_log(&id).await? {
                    Some(order) if order.status == OrderStatus::Pending => Ok(order),
                    _ => Err(ShopError::NotFound { what }),
                }
            }
            // The orders service cannot be asked: answer what the saga log knows for certain.
            Err(down @ ShopError::Unavailable { .. }) => match self.order_from_saga_log(&id).await {
                Ok(Some(order)) => Ok(order),
                Err(e @ ShopError::NotFound { .. }) => Err(e),
                Ok(None) | Err(_) => Err(down),
            },
            other => other,
        }
    }

    async fn cancel_order(&self, id: OrderId) -> Result<Order, ShopError> {
        let settled = self.change(CancelOrder { order_id: id }).await?;
        self.inner.eager.deliver(settled.events);
        Ok(settled.order)
    }

    async fn sales_report(&self, query: SalesQuery) -> Result<SalesReport, ShopError> {
        self.ask(Sales { query }).await
    }

    async fn live(&self) -> Result<(), ShopError> {
        self.inner.node.probe().await
    }

    async fn health(&self) -> Health {
        let within = Duration::from_millis(HEALTH_CHECK_MS);
        let clients = &self.inner.clients;
        let (db, stock, orders, crm) = tokio::join!(
            self.inner.node.probe(),
            clients.call_within(&StockStatus {}, within),
            clients.call_within(&OrdersStatus {}, within),
            clients.call_within(&CrmStatus {}, within),
        );
        // Only its own database stops the coordinator; services that are down degrade it.
        let serving = db.is_ok();
        let dependency = |name: &str, outcome: Result<Option<String>, String>, degrades: &[&str]| {
            let ok = outcome.is_ok();
            DependencyHealth {
                name: name.into(),
                ok,
                detail: match outcome {
                    Ok(detail) => detail,
                    Err(e) => Some(e),
                },
                degrades: if ok {
                    vec![]
                } else {
                    degrades.iter().map(|d| d.to_string()).collect()
                },
            }
        };
        let status = |r: Result<ServiceStatus, CallError>, what: &str| {
            r.map(|s| (s.waiting > 0).then(|| format!("{} {what}", s.waiting)))
                .map_err(|e| ShopError::from(e).to_string())
        };
        // What the shop does without each one, as it really behaves (the fault-injection
        // tests take each service away and check these against what happens).
        let dependencies = vec![
            dependency(
                "saga log",
                db.map(|_| None).map_err(|e| e.to_string()),
                &["placing orders", "erasing customers"],
            ),
            dependency(
                "stock",
                status(stock, "reservations held"),
                &[
                    "placing orders",
                    "ingredients, stock and products",
                    "stock of cancelled orders comes back once it is back",
                ],
            ),
            dependency(
                "orders",
                status(orders, "events waiting for delivery"),
                &[
                    "new orders are accepted as pending (202) and confirmed once it is back",
                    "order lists, cancellations, and details of orders already settled",
                    "sales reports",
                    "customer exports",
                ],
            ),
            dependency(
                "crm",
                status(crm, "waiting"),
                &[
                    "customers: lists, details, changes, erasure and exports",
                    "orders naming a customer not seen here before (sell without the customer, or try again)",
                    "points of orders are awarded once it is back",
                ],
            ),
        ];
        Health {
            ok: dependencies.iter().all(|d| d.ok),
            serving,
            mode: "coordinator".into(),
            dependencies,
        }
    }
}
