//! Placing an order: the steps before the saga is logged (the customer, the reservation),
//! then the driver of the domain's saga machine (`lemonade_domain::saga::machine`): it asks
//! the machine for the next action, runs it (a call to a service, or a write to the saga
//! log), feeds the result back, and repeats until the machine stops. Also the answers the
//! saga log gives: a retried request's, and an order's while the orders service is down.

use std::sync::Arc;

use lemonade_domain::ShopError;
use lemonade_domain::customer::check_order_customer;
use lemonade_domain::ids::OrderId;
use lemonade_domain::order::{Order, OrderStatus, points_earned};
use lemonade_domain::ports::{IdempotencyKey, PlaceOrder, Placed, new_id};
use lemonade_domain::saga::OrderPlan;
use lemonade_domain::saga::machine::{Action, Logged, Mark, SagaState, StepResult, Stop};
use lemonade_store::sql::directory::{self, Standing};
use lemonade_store::sql::sagas::{self, Saga};
use tokio::time::Instant;

use super::{Coordinator, UNWRITTEN_MAX, step_key};
use crate::client::CallError;
use crate::group::Joined;
use crate::rpc::*;

/// Least time the coordinator gives the release of a failed placement's reservation.
const RELEASE_MIN_MS: u64 = 1_000;

/// A call's outcome as the saga machine takes it: a refusal is final (the step key keeps it),
/// any other failure leaves the step undecided.
fn step_result<T>(outcome: Result<T, CallError>) -> StepResult {
    match outcome {
        Ok(_) => StepResult::Done,
        Err(CallError::Refused(e)) => StepResult::Refused(e),
        Err(e) => {
            tracing::debug!(error = ?e, "a saga step was not answered");
            StepResult::Unanswered
        }
    }
}

fn failed(order: &OrderId, reason: &str) -> ShopError {
    ShopError::unavailable(format!(
        "order {order} could not be completed ({reason}); nothing was taken from stock. Try again"
    ))
}

impl Coordinator {
    /// A placement with the client's idempotency key, if any: a key that has a saga replays
    /// it (or drives it on); a new one places the order.
    pub(super) async fn place_keyed(&self, request: PlaceOrder) -> Result<Placed, ShopError> {
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
        // Run in a task of its own: a client that hangs up must not cut a saga in half. The
        // node owns the task, and its stop does cut it (at its next await), as a crash would.
        // That leaves nothing wrong, as after a crash: a reservation taken before the saga is
        // logged runs out with its lease (stock releases it); a logged saga is driven on from
        // its log by the sweeper, or by the client's retry with its key (`replay`), every
        // step keyed so that none is done twice.
        let this = self.clone();
        let placing = self.inner.node.db.tasks.spawn_short(async move {
            let _claim = claim;
            this.place(request).await
        });
        match placing.await {
            Ok(Some(placed)) => placed,
            Ok(None) => Err(ShopError::unavailable(
                "the coordinator stopped while placing the order; try again with the same key",
            )),
            Err(e) => {
                tracing::error!(error = %e, "placing an order panicked");
                Err(ShopError::unavailable("placing the order failed unexpectedly"))
            }
        }
    }

    /// Places an order, from the client's request to the end of the saga or its deadline.
    async fn place(&self, request: PlaceOrder) -> Result<Placed, ShopError> {
        // The id and the creation time are drawn together, so the newest-first list (by id)
        // never shows `created_at` going backwards within this coordinator, however the
        // placements under way interleave.
        let order_id = new_id(self.inner.node.ids.as_ref(), OrderId::parse);
        let created_at = self.inner.node.now();
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
                    created_at,
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
                .write(move |tx| sagas::reject(tx, &order, &key, &refused))
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
                .write(move |tx| {
                    if let Some(customer) = &plan.customer_id {
                        match directory::standing(tx.conn, customer)? {
                            Some(standing) => check_order_customer(Some(standing))?,
                            None => directory::learn(tx, customer, Standing::Active)?,
                        }
                    }
                    sagas::start(tx, &plan, key.as_ref())
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
        // The saga is logged: from here its outcome is the log's, whoever drives it. The
        // sweeper may have taken it already, if it read the log while this write waited for
        // its disk (a slow commit, or a clock that jumped and aged it): the order is then
        // accepted and pending, never "in progress", which would tell the client that
        // another request with its key was running and that this one did nothing.
        let Ok(_driving) = self.inner.driving.claim(plan.order_id.as_str()) else {
            return Ok(self.answer(&plan, Stop::Pending));
        };
        {
            let mut unwritten = self.inner.unwritten.lock();
            if unwritten.len() < UNWRITTEN_MAX {
                unwritten.insert(plan.order_id.clone());
            }
        }
        let (state, stop) = self.drive(SagaState::start(plan), deadline).await;
        Ok(self.answer(state.plan(), stop))
    }

    fn answer(&self, plan: &OrderPlan, stop: Stop) -> Placed {
        let outcome = match stop {
            Stop::Confirmed(order) => Ok(order),
            Stop::Pending => Ok(plan.order(OrderStatus::Pending, plan.created_at)),
            Stop::Failed(reason) => Err(failed(&plan.order_id, &reason)),
        };
        Placed {
            outcome,
            replayed: false,
        }
    }

    /// Drives a saga from `state`, which asks for `action`, until the machine stops or a step
    /// cannot be done before `deadline`. Returns the state it stopped in and why.
    async fn drive(&self, (mut state, mut action): (SagaState, Action), deadline: Instant) -> (SagaState, Stop) {
        loop {
            let result = match action {
                Action::Stop(stop) => {
                    if let Stop::Confirmed(_) = &stop {
                        self.confirmed(&state.plan().order_id);
                    }
                    if !matches!(stop, Stop::Pending) {
                        self.inner.unwritten.lock().remove(&state.plan().order_id);
                    }
                    return (state, stop);
                }
                action => self.run_step(state.plan(), action, deadline).await,
            };
            (state, action) = state.step(result);
        }
    }

    /// Runs one action of a saga: a call under the step key `<order>:<step>`, or a write to
    /// the saga log.
    async fn run_step(&self, plan: &OrderPlan, action: Action, deadline: Instant) -> StepResult {
        let id = &plan.order_id;
        let clients = &self.inner.clients;
        let result = match &action {
            Action::Commit => {
                let commit = CommitReservation { order_id: id.clone() };
                step_result(clients.call(&commit, step_key(id, "commit"), deadline).await)
            }
            Action::Create => {
                let create = CreateOrder { plan: plan.clone() };
                let created = self
                    .writing_the_order(id, clients.call(&create, step_key(id, "place"), deadline))
                    .await;
                match created {
                    Ok(settled) => {
                        // The relay delivers its events; a client's next read of the customer
                        // waits for it to pass these marks.
                        self.inner.written.wrote(plan.customer_id.as_ref(), settled.marks);
                        StepResult::Created(settled.order)
                    }
                    Err(e) => step_result::<()>(Err(e)),
                }
            }
            Action::Fail { reason } => {
                let fail = FailOrder {
                    plan: plan.clone(),
                    reason: reason.clone(),
                };
                step_result(
                    self.writing_the_order(id, clients.call(&fail, step_key(id, "fail"), deadline))
                        .await,
                )
            }
            Action::Release => {
                let release = ReleaseReservation { order_id: id.clone() };
                step_result(clients.call(&release, step_key(id, "release"), deadline).await)
            }
            Action::Record(mark) => {
                if let Mark::Compensating { reason } = mark {
                    tracing::warn!(order = %id, reason, "compensating an order placement");
                }
                self.record(id, mark.clone()).await
            }
            Action::Stop(_) => unreachable!("the driver stops before"),
        };
        if matches!(result, StepResult::Unanswered) {
            tracing::warn!(order = %id, ?action, "a saga step cannot be done yet; the sweeper goes on with it");
        }
        result
    }

    /// Writes a change of a saga to its log, and waits until it is durable.
    async fn record(&self, order: &OrderId, mark: Mark) -> StepResult {
        let order = order.clone();
        match self
            .inner
            .node
            .write(move |tx| sagas::set_state(tx, &order, &mark))
            .await
        {
            Ok(()) => StepResult::Done,
            Err(e) => {
                tracing::warn!(error = %e, "could not write to the saga log");
                StepResult::Unanswered
            }
        }
    }

    /// Records the end of a confirmed saga. The client need not wait for it: the order is
    /// confirmed at the orders service already, and a saga left `running` is driven again by
    /// the sweeper, every step of which then replays.
    ///
    /// The ends are recorded in groups: the first confirmation to wait sends one write, and
    /// that write records every confirmation waiting when the writer runs it (one write per
    /// saga cost throughput: docs/decisions.md, "Figures out of code comments").
    pub(super) fn confirmed(&self, id: &OrderId) {
        // Until a write makes it durable (this one's, or the sweeper's later), the log lags.
        self.inner.unrecorded.lock().insert(id.clone());
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
        let unrecorded = Arc::clone(&self.inner.unrecorded);
        // Cut by the node's stop, the write may or may not have run: either is as after a
        // crash, the sagas it did not record stay `running` in the log and the sweeper of the
        // next start records them. (The group then waits on a write that never comes; it
        // dies with this coordinator.)
        self.inner.node.db.tasks.spawn_short(async move {
            let group = Arc::clone(&confirms);
            let recorded = node
                .write(move |tx| {
                    let ids = group.take();
                    for id in &ids {
                        sagas::set_state(tx, id, &Mark::Confirmed)?;
                    }
                    Ok(ids)
                })
                .await;
            match recorded {
                // Durable now: the log answers for them.
                Ok(ids) => {
                    let mut unrecorded = unrecorded.lock();
                    for id in &ids {
                        unrecorded.remove(id);
                    }
                }
                // They stay unrecorded until the sweeper confirms them again and this records it.
                Err(e) => {
                    let left = confirms.abandon();
                    tracing::warn!(error = %e, left, "could not record confirmed sagas; the sweeper will");
                }
            }
        });
    }

    /// Drives one unfinished saga on (a retried request, or the sweeper), from its log as it
    /// is now: the caller holds the claim to drive it, and the saga is read again under that
    /// claim, since another driver may have moved it on between the caller's read and its
    /// claim. (Driven from that earlier read, a saga the sweeper had begun to compensate ran
    /// forward again, compensated for another reason, and its order's fail step, sent again
    /// with another body under the same step key, was refused for good: seed 304,725.)
    /// `None` for a finished saga, or one that cannot be read now: there is nothing to drive.
    pub(super) async fn resume(&self, id: &OrderId, deadline: Instant) -> Option<(SagaState, Stop)> {
        let lookup = id.clone();
        let saga = match self.inner.node.lookup(move |db| sagas::get(db, &lookup)).await {
            Ok(saga) => saga?,
            Err(e) => {
                tracing::warn!(order = %id, error = %e, "cannot read a saga to drive it on; the sweeper will");
                return None;
            }
        };
        let age_ms = self.inner.node.now().millis() - saga.created_at.millis();
        let start = SagaState::resume(saga.state, age_ms, self.inner.config.give_up_ms)?;
        Some(self.drive(start, deadline).await)
    }

    /// A retried request whose key has a saga: its answer, replayed or driven on.
    async fn replay(&self, saga: Saga) -> Result<Placed, ShopError> {
        let replayed = |outcome| Placed {
            outcome,
            replayed: true,
        };
        let plan = match &saga.state {
            Logged::Rejected { refusal } => return Ok(replayed(Err(refusal.clone()))),
            Logged::Confirmed { plan } => {
                return Ok(replayed(Ok(plan.order(OrderStatus::Confirmed, plan.created_at))));
            }
            Logged::Failed { .. } => {
                // A failed saga frees its key in the write that fails it.
                tracing::error!(order = %saga.order_id, "a failed saga still holds its idempotency key");
                return Err(ShopError::unavailable(
                    "the saga log holds a failed order under this key",
                ));
            }
            Logged::Running { plan } | Logged::Compensating { plan, .. } => plan,
        };
        let Ok(_driving) = self.inner.driving.claim(saga.order_id.as_str()) else {
            return Ok(replayed(Ok(plan.order(OrderStatus::Pending, plan.created_at))));
        };
        // The log's answer is known (the order is pending, as the client was told): driving
        // the saga on gets a short wait for its services, and the sweeper does the rest.
        let deadline = self.deadline(self.inner.config.order_deadline_ms);
        let driven = async { Ok::<_, CallError>(self.resume(&saga.order_id, deadline).await) };
        let driven = match self.log_lags(&saga.order_id) {
            // Confirmed a moment ago, not yet in the log: the log knows nothing for certain.
            true => Some(driven.await.map_err(ShopError::from)),
            false => self.unless_known(driven).await,
        };
        match driven {
            Some(Ok(Some((state, stop)))) => {
                let mut placed = self.answer(state.plan(), stop);
                placed.replayed = true;
                Ok(placed)
            }
            Some(Ok(None)) => {
                // Another driver finished it between this request's read and its claim:
                // what the log says now.
                let id = saga.order_id.clone();
                match self.inner.node.lookup(move |db| sagas::get(db, &id)).await {
                    Ok(Some(Saga {
                        state: Logged::Confirmed { plan },
                        ..
                    })) => Ok(replayed(Ok(plan.order(OrderStatus::Confirmed, plan.created_at)))),
                    Ok(Some(Saga {
                        state: Logged::Failed { plan, reason },
                        ..
                    })) => Ok(replayed(Err(failed(&plan.order_id, &reason)))),
                    _ => Ok(replayed(Ok(plan.order(OrderStatus::Pending, plan.created_at)))),
                }
            }
            Some(Err(_)) | None => Ok(replayed(Ok(plan.order(OrderStatus::Pending, plan.created_at)))),
        }
    }

    /// Runs `call`, which writes saga `id`'s order at the orders service (create, or fail):
    /// from the moment it may go out, the order may be there, so the saga is no longer held
    /// as unwritten ([`Coordinator::order_unwritten`]), unless the call certainly never
    /// reached the service (refused before it was sent: `unknown` is false) and it was held
    /// before. Dropped mid-call, the saga stays not held: the safe side.
    async fn writing_the_order<T>(
        &self,
        id: &OrderId,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let was_unwritten = self.inner.unwritten.lock().remove(id);
        let outcome = call.await;
        if was_unwritten && matches!(outcome, Err(CallError::Failed { unknown: false, .. })) {
            self.inner.unwritten.lock().insert(id.clone());
        }
        outcome
    }

    /// Whether saga `id`'s order certainly is not at the orders service yet: this coordinator
    /// logged the saga, and no call that writes the order may have reached that service. The
    /// log's `pending` is then the truth, and the orders service need not be asked.
    pub(super) fn order_unwritten(&self, id: &OrderId) -> bool {
        self.inner.unwritten.lock().contains(id)
    }

    /// Whether this coordinator confirmed saga `id` and the log does not say so yet (its end
    /// is recorded in a group write, after the client's answer): the log's `running` is then
    /// out of date, and no answer of the coordinator's own.
    pub(super) fn log_lags(&self, id: &OrderId) -> bool {
        self.inner.unrecorded.lock().contains(id)
    }

    /// An order of the saga log ([`Logged::order`]): an unfinished saga's order is `pending`
    /// while the orders service does not have it; a failed saga's order failed for good; a
    /// rejected saga has no order (not found). A confirmed saga's order may have been
    /// cancelled since, so the log cannot answer for it (`None`).
    pub(super) async fn order_from_saga_log(&self, id: &OrderId) -> Result<Option<Order>, ShopError> {
        let lookup = id.clone();
        let Some(saga) = self.inner.node.lookup(move |db| sagas::get(db, &lookup)).await? else {
            return Ok(None);
        };
        match saga.state {
            Logged::Rejected { .. } => Err(ShopError::not_found("order")),
            state => Ok(state.order(saga.updated_at)),
        }
    }
}
