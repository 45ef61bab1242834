//! The coordinator: the public API of the distributed mode. It implements the same
//! [`Shop`] port as the monolith, so the same router serves it; reads and simple changes go
//! to the service that owns the data, and placing an order is a saga with a durable log in
//! the coordinator's own database.
//!
//! Placing an order:
//! 1. reserve its stock at the stock service, which prices it (it owns the catalogue), under
//!    a lease on the stock service's clock; meanwhile check the customer at CRM;
//! 2. log the saga (`running`), with the priced plan and the client's idempotency key;
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

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lemonade_domain::ShopError;
use lemonade_domain::catalog::{NewProduct, Product, ProductPatch};
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields};
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{Order, OrderStatus, points_earned};
use lemonade_domain::ports::{
    DependencyHealth, Health, IdempotencyKey, OrderFilter, Page, PageRequest, PlaceOrder, Placed, Shop,
};
use lemonade_domain::report::{SalesQuery, SalesReport};
use lemonade_domain::saga::{Destination, Envelope, OrderPlan};
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use lemonade_domain::values::Timestamp;
use lemonade_store::inflight::InFlight;
use lemonade_store::sql::sagas::{self, Saga, SagaState};
use tokio::time::Instant;

use crate::client::{CallError, Clients};
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

/// Longest the coordinator waits to deliver an order's events itself.
const EAGER_DELIVERY_MS: u64 = 1_000;
/// Most unfinished sagas the sweeper takes on per round.
const SWEEP_BATCH_MAX: u32 = 64;
/// Most confirmed sagas waiting to be recorded; past that one is left to the sweeper.
const CONFIRMS_WAITING_MAX: usize = 4_096;

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
                clients,
                config,
                keys: InFlight::default(),
                driving: InFlight::default(),
                confirms: Arc::new(Group::new(CONFIRMS_WAITING_MAX)),
            }),
        }
    }

    pub fn clients(&self) -> &Arc<Clients> {
        &self.inner.clients
    }

    fn deadline(&self, ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    async fn ask<C: Call>(&self, call: C) -> Result<C::Reply, ShopError> {
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        Ok(self.inner.clients.call(&call, None, deadline).await?)
    }

    /// A change forwarded for a client: one fresh step key for this request, kept over its
    /// retries, so a retried call whose reply was lost is not carried out twice.
    async fn change<C: Call>(&self, call: C) -> Result<C::Reply, ShopError> {
        let key = format!("req:{}", self.inner.node.ids.next_id());
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        Ok(self.inner.clients.call(&call, Some(key), deadline).await?)
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
        if let Some(id) = &draft.customer_id {
            let refusal = match clients.call(&GetCustomer { id: id.clone() }, None, deadline).await {
                Ok(c) if c.anonymised => Some(ShopError::validation("customer_id", "this customer was anonymised")),
                Ok(_) => None,
                Err(CallError::Refused(ShopError::NotFound { .. })) => {
                    Some(ShopError::validation("customer_id", "no such customer"))
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(refusal) = refusal {
                return self.refuse(&order_id, request.idempotency, refusal).await;
            }
        }
        let refusal = match clients.call(&reserve, step_key(&order_id, "reserve"), deadline).await {
            Ok(priced) => {
                let points = match draft.customer_id {
                    Some(_) => points_earned(priced.total, self.inner.config.minor_units_per_point),
                    None => 0,
                };
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

    async fn release_now(&self, order: &OrderId, deadline: Instant) {
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
    async fn run(&self, plan: OrderPlan, key: Option<IdempotencyKey>, deadline: Instant) -> Result<Placed, ShopError> {
        let logged = {
            let plan = plan.clone();
            self.inner
                .node
                .write(move |db, now| sagas::start(db, &plan, key.as_ref(), now))
                .await
        };
        if let Err(e) = logged {
            self.release_now(&plan.order_id, deadline).await;
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
                self.deliver(settled.events).await;
                Progress::Confirmed(settled.order)
            }
            Err(CallError::Refused(e)) => self.compensate(plan, e.to_string(), deadline).await,
            Err(_) => Progress::Pending,
        }
    }

    /// Delivers events a change just put in the orders service's outbox, so that the client's
    /// next read sees their effect (points awarded, stock given back). Best effort and brief:
    /// the relay delivers them anyway, and the receivers apply each event once.
    async fn deliver(&self, events: Vec<Envelope>) {
        if events.is_empty() {
            return;
        }
        let deadline = self.deadline(EAGER_DELIVERY_MS);
        let (to_stock, to_crm): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| e.event.destination() == Destination::Stock);
        let clients = &self.inner.clients;
        let stock = async {
            if to_stock.is_empty() {
                return Ok(());
            }
            clients
                .call(
                    &StockEvents {
                        events: to_stock,
                        delivered_below: None,
                    },
                    None,
                    deadline,
                )
                .await
        };
        let crm = async {
            if to_crm.is_empty() {
                return Ok(());
            }
            clients
                .call(
                    &CrmEvents {
                        events: to_crm,
                        delivered_below: None,
                    },
                    None,
                    deadline,
                )
                .await
        };
        let (stock, crm) = tokio::join!(stock, crm);
        for e in [stock, crm].into_iter().filter_map(Result::err) {
            tracing::debug!(error = ?e, "eager delivery failed; the relay will deliver");
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
        tokio::spawn(async move {
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
            }
        })
    }

    /// Forgets finished sagas past retention, now and then.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let node = &self.inner.node;
        lemonade_store::maintenance::spawn_expiry(
            node.db.writer.clone(),
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
        self.ask(GetCustomer { id }).await
    }
    async fn create_customer(&self, fields: CustomerFields) -> Result<Customer, ShopError> {
        self.change(CreateCustomer { fields }).await
    }
    async fn update_customer(&self, id: CustomerId, fields: CustomerFields) -> Result<Customer, ShopError> {
        self.change(UpdateCustomer { id, fields }).await
    }
    async fn anonymise_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        self.change(AnonymiseCustomer { id }).await
    }
    async fn export_customer(&self, id: CustomerId) -> Result<CustomerExport, ShopError> {
        let (customer, orders, activity) = tokio::join!(
            self.ask(GetCustomer { id: id.clone() }),
            self.ask(CustomerOrders {
                customer_id: id.clone()
            }),
            self.ask(CustomerActivity { id })
        );
        Ok(CustomerExport {
            customer: customer?,
            orders: orders?,
            activity: activity?,
            exported_at: self.inner.node.now(),
        })
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
            self.ask(GetCustomer { id: customer.clone() }).await?;
        }
        self.ask(ListOrders { filter, page }).await
    }

    async fn get_order(&self, id: OrderId) -> Result<Order, ShopError> {
        match self.ask(GetOrder { id: id.clone() }).await {
            Err(ShopError::NotFound { what }) => {
                // Not at the orders service yet: a saga that has not created it shows it pending.
                let saga = self.inner.node.read(move |db| sagas::get(db, &id)).await?;
                match saga {
                    Some(s) if !s.state.is_finished() => {
                        let plan = s.plan.expect("an unfinished saga has a plan");
                        Ok(plan.order(OrderStatus::Pending, s.updated_at))
                    }
                    _ => Err(ShopError::NotFound { what }),
                }
            }
            other => other,
        }
    }

    async fn cancel_order(&self, id: OrderId) -> Result<Order, ShopError> {
        let settled = self.change(CancelOrder { order_id: id }).await?;
        self.deliver(settled.events).await;
        Ok(settled.order)
    }

    async fn sales_report(&self, query: SalesQuery) -> Result<SalesReport, ShopError> {
        self.ask(Sales { query }).await
    }

    async fn health(&self) -> Health {
        let deadline = self.deadline(500);
        let clients = &self.inner.clients;
        let (db, stock, orders, crm) = tokio::join!(
            self.inner.node.probe(),
            clients.call(&StockStatus {}, None, deadline),
            clients.call(&OrdersStatus {}, None, deadline),
            clients.call(&CrmStatus {}, None, deadline),
        );
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
        let dependencies = vec![
            dependency(
                "saga log",
                db.map(|_| None).map_err(|e| e.to_string()),
                &["placing orders"],
            ),
            dependency(
                "stock",
                status(stock, "reservations held"),
                &["placing orders", "ingredients and products"],
            ),
            dependency(
                "orders",
                status(orders, "events waiting for delivery"),
                &["placing orders", "orders and cancellations", "sales reports"],
            ),
            dependency(
                "crm",
                status(crm, "waiting"),
                &[
                    "customers",
                    "orders for a customer (points are awarded once it is back)",
                ],
            ),
        ];
        Health {
            ok: dependencies.iter().all(|d| d.ok),
            mode: "coordinator".into(),
            dependencies,
        }
    }
}
