//! The order saga of the distributed mode as a state machine, without I/O.
//!
//! A saga starts once its order is priced and reserved at the stock service and logged
//! `running` ([`SagaState::start`]). Going forward it commits the reservation, then creates
//! the order, confirmed, at the orders service. A refusal on the way (the lease ran out, the
//! order failed) compensates: the saga is logged `compensating`, the order is failed at the
//! orders service (first, so that a confirm and a fail can never both win: the orders service
//! decides between them), the reservation is released, and the saga is logged `failed`. If the
//! fail finds the order confirmed after all, the saga is confirmed.
//!
//! The machine is one function, [`SagaState::step`]: from a state and the result of the
//! action that state asked for, the next state and the next action. A driver (the
//! coordinator) asks the state for its action ([`SagaState::action`]), runs it (a call to a
//! service, or a write to the saga log), and feeds the result back, until the action is a
//! [`Stop`]. What survives the driver is the saga log alone: it holds a [`Logged`] state, and
//! [`SagaState::resume`] picks a saga up from it (the sweeper, a retried request, a restart).
//! Every step is safe to repeat, since every call carries the step key `<order>:<step>`.

use super::OrderPlan;
use crate::ShopError;
use crate::order::{Order, OrderStatus};

/// Why a saga failed, when its log says nothing more precise.
pub const FAILED_WITHOUT_REASON: &str = "the order could not be completed";

/// The word the saga log stores for a saga's state (`sagas.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Running,
    Compensating,
    Confirmed,
    Failed,
    Rejected,
}

impl Phase {
    /// Every phase, in the order a saga may go through them.
    pub const ALL: [Phase; 5] = [
        Phase::Running,
        Phase::Compensating,
        Phase::Confirmed,
        Phase::Failed,
        Phase::Rejected,
    ];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Compensating => "compensating",
            Phase::Confirmed => "confirmed",
            Phase::Failed => "failed",
            Phase::Rejected => "rejected",
        }
    }

    /// The phase a stored word names, `None` for a word that names none.
    pub fn parse(raw: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// Whether a saga in this phase is over (nothing drives it any more).
    pub fn is_finished(self) -> bool {
        !matches!(self, Phase::Running | Phase::Compensating)
    }

    /// The phases of a saga that is not over (see [`Phase::is_finished`]), for storage that
    /// must apply the rule in a query.
    pub fn unfinished() -> impl Iterator<Item = Phase> {
        Phase::ALL.into_iter().filter(|p| !p.is_finished())
    }
}

/// A saga as its log holds it, parsed: each state carries what it needs, and nothing can be
/// missing (a running saga has its plan, a rejected one its refusal and no plan).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Logged {
    /// Reserved and logged; the reservation may be committed and the order created already.
    Running { plan: OrderPlan },
    /// Being undone, for `reason`: its order may be failed and its reservation released.
    Compensating { plan: OrderPlan, reason: String },
    /// The order was created, confirmed (it may have been cancelled since).
    Confirmed { plan: OrderPlan },
    /// Undone: the order failed for `reason` and nothing is held.
    Failed { plan: OrderPlan, reason: String },
    /// Refused before it held anything (not enough stock, a bad customer); there is no order.
    /// Kept only so that the client's idempotency key replays the refusal.
    Rejected { refusal: ShopError },
}

/// Why a stored saga cannot be read back as a [`Logged`] state. The store names the saga.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImpossibleSaga {
    #[error("its state {0:?} is not a saga state")]
    UnknownState(String),
    #[error("it is {} but has no plan", .0.as_str())]
    NoPlan(Phase),
    #[error("it is rejected but has a plan")]
    RejectedWithPlan,
    #[error("it is rejected but its refusal is missing")]
    RejectedWithoutRefusal,
}

impl Logged {
    /// Reads a saga back from the log's columns: its state word, its plan and its outcome
    /// (why it compensated, failed or was rejected). An outcome on a saga that has none to
    /// give is ignored; a compensating or failed saga whose outcome is not an `unavailable`
    /// error failed for [`FAILED_WITHOUT_REASON`].
    ///
    /// # Errors
    /// [`ImpossibleSaga`] for a word that is no state, a saga that needs a plan without one,
    /// or a rejected saga with a plan or without its refusal.
    pub fn from_parts(
        state: &str,
        plan: Option<OrderPlan>,
        outcome: Option<ShopError>,
    ) -> Result<Logged, ImpossibleSaga> {
        let phase = Phase::parse(state).ok_or_else(|| ImpossibleSaga::UnknownState(state.to_owned()))?;
        if phase == Phase::Rejected {
            if plan.is_some() {
                return Err(ImpossibleSaga::RejectedWithPlan);
            }
            let refusal = outcome.ok_or(ImpossibleSaga::RejectedWithoutRefusal)?;
            return Ok(Logged::Rejected { refusal });
        }
        let plan = plan.ok_or(ImpossibleSaga::NoPlan(phase))?;
        Ok(match phase {
            Phase::Running => Logged::Running { plan },
            Phase::Compensating => Logged::Compensating {
                plan,
                reason: reason_of(outcome),
            },
            Phase::Confirmed => Logged::Confirmed { plan },
            Phase::Failed => Logged::Failed {
                plan,
                reason: reason_of(outcome),
            },
            Phase::Rejected => unreachable!("answered above"),
        })
    }

    /// The stored word of this state.
    pub fn phase(&self) -> Phase {
        match self {
            Logged::Running { .. } => Phase::Running,
            Logged::Compensating { .. } => Phase::Compensating,
            Logged::Confirmed { .. } => Phase::Confirmed,
            Logged::Failed { .. } => Phase::Failed,
            Logged::Rejected { .. } => Phase::Rejected,
        }
    }

    /// The plan of a saga that has one (all but a rejected one).
    pub fn plan(&self) -> Option<&OrderPlan> {
        match self {
            Logged::Running { plan }
            | Logged::Compensating { plan, .. }
            | Logged::Confirmed { plan }
            | Logged::Failed { plan, .. } => Some(plan),
            Logged::Rejected { .. } => None,
        }
    }

    /// The outcome column of this state: why it compensated or failed (as an `unavailable`
    /// error), or the refusal of a rejected saga.
    pub fn outcome(&self) -> Option<ShopError> {
        match self {
            Logged::Compensating { reason, .. } | Logged::Failed { reason, .. } => {
                Some(ShopError::unavailable(reason.clone()))
            }
            Logged::Rejected { refusal } => Some(refusal.clone()),
            Logged::Running { .. } | Logged::Confirmed { .. } => None,
        }
    }

    /// The order as the saga log alone knows it: an unfinished saga's order is `pending`
    /// (what the client was told) while the orders service does not have it (once its create
    /// step reached the orders service, that service's answer is the truth: the order may
    /// be confirmed, or cancelled, before the log says so), and a failed one's is `failed`
    /// with its reason and no points, for good. `None` for a confirmed saga (its order may have
    /// been cancelled since, which only the orders service knows) and a rejected one (it has
    /// no order). `updated_at` is when the log last changed: a failed order's update time. A
    /// pending order has not changed since it was placed, so its `updated_at` is its
    /// `created_at`, as the confirmed order's is: an order's times never go backwards.
    pub fn order(&self, updated_at: crate::values::Timestamp) -> Option<Order> {
        match self {
            Logged::Running { plan } | Logged::Compensating { plan, .. } => {
                Some(plan.order(OrderStatus::Pending, plan.created_at))
            }
            Logged::Failed { plan, reason } => {
                let mut order = plan.order(OrderStatus::Failed, updated_at);
                order.failure_reason = Some(reason.clone());
                Some(order)
            }
            Logged::Confirmed { .. } | Logged::Rejected { .. } => None,
        }
    }
}

fn reason_of(outcome: Option<ShopError>) -> String {
    match outcome {
        Some(ShopError::Unavailable { detail }) => detail,
        _ => FAILED_WITHOUT_REASON.to_owned(),
    }
}

/// A change of a saga's logged state, as the driver writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// It compensates, for `reason`; written before the order is failed.
    Compensating { reason: String },
    /// It ended confirmed.
    Confirmed,
    /// It ended failed, for `reason`, with nothing held; a failed saga frees the client's
    /// idempotency key (the failure was the cluster's, not the request's).
    Failed { reason: String },
}

impl Mark {
    /// The state this mark writes.
    pub fn phase(&self) -> Phase {
        match self {
            Mark::Compensating { .. } => Phase::Compensating,
            Mark::Confirmed => Phase::Confirmed,
            Mark::Failed { .. } => Phase::Failed,
        }
    }

    /// The outcome column this mark writes: why, as an `unavailable` error.
    pub fn outcome(&self) -> Option<ShopError> {
        match self {
            Mark::Compensating { reason } | Mark::Failed { reason } => Some(ShopError::unavailable(reason.clone())),
            Mark::Confirmed => None,
        }
    }
}

/// The next step of a saga going forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forward {
    /// Commit the reservation at stock.
    Commit,
    /// Create the order, confirmed, at orders.
    Create,
}

/// The next step of a saga being undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Undo {
    /// Log it `compensating` (before anyone is told).
    Record,
    /// Fail the order at orders.
    Fail,
    /// Release the reservation at stock.
    Release,
    /// Log it `failed`.
    RecordFailed,
}

impl Undo {
    /// The step after this one; `None` after the last.
    fn then(self) -> Option<Undo> {
        match self {
            Undo::Record => Some(Undo::Fail),
            #[cfg(not(feature = "plant-compensation-skips-release"))]
            Undo::Fail => Some(Undo::Release),
            #[cfg(feature = "plant-compensation-skips-release")]
            Undo::Fail => Some(Undo::RecordFailed),
            Undo::Release => Some(Undo::RecordFailed),
            Undo::RecordFailed => None,
        }
    }
}

/// A saga being driven: where it is and what it does next. Only a state that has a plan
/// exists here (a rejected saga is never driven).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SagaState {
    /// Logged `running`; `next` is the step it waits on.
    Running { plan: OrderPlan, next: Forward },
    /// Being undone for `reason`; `next` is the step it waits on.
    Compensating {
        plan: OrderPlan,
        reason: String,
        next: Undo,
    },
    /// The order stands, confirmed. Final.
    Confirmed { plan: OrderPlan },
    /// The order failed for `reason` and its reservation is released. Final.
    Failed { plan: OrderPlan, reason: String },
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Call stock: commit the reservation (step `commit`).
    Commit,
    /// Call orders: create the order, confirmed, from the plan (step `place`). Its result is
    /// [`StepResult::Created`].
    Create,
    /// Call orders: fail the order for `reason` (step `fail`).
    Fail { reason: String },
    /// Call stock: release the reservation (step `release`).
    Release,
    /// Write this change to the saga log and wait until it is durable.
    Record(Mark),
    /// Stop driving the saga.
    Stop(Stop),
}

/// Where driving a saga stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Confirmed; `order` is the answer. The driver records [`Mark::Confirmed`] without
    /// waiting for it: the order is confirmed at the orders service already, and a saga whose
    /// record is lost stays unfinished in the log, so the sweeper drives it again, every step
    /// of which then replays.
    Confirmed(Order),
    /// Compensated: the order failed for this reason, nothing is held, and the log says so.
    Failed(String),
    /// A step cannot be done now (a service down, the deadline passed, the log not written):
    /// the saga stays as its log says, and the sweeper goes on with it.
    Pending,
}

/// What came of an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// The call was carried out, or the log written durably.
    Done,
    /// The answer to [`Action::Create`]: the order as the orders service holds it.
    Created(Order),
    /// The service refused the step; asked again, it refuses again (its step key keeps the
    /// refusal).
    Refused(ShopError),
    /// No answer: the service is down, the deadline passed, or the log write failed. The step
    /// may or may not have been carried out.
    Unanswered,
}

impl SagaState {
    /// A saga just logged `running`: it commits its reservation first.
    pub fn start(plan: OrderPlan) -> (SagaState, Action) {
        let state = SagaState::Running {
            plan,
            next: Forward::Commit,
        };
        let action = state.action();
        (state, action)
    }

    /// Picks an unfinished saga up from its log, `age_ms` after it was created. A running saga
    /// older than `give_up_ms` is given up (compensated); one that was compensating logs it
    /// again and goes on undoing. `None` for a finished saga: there is nothing to drive.
    pub fn resume(logged: Logged, age_ms: i64, give_up_ms: u64) -> Option<(SagaState, Action)> {
        let state = match logged {
            Logged::Running { plan } if age_ms > give_up_ms as i64 => SagaState::Compensating {
                plan,
                reason: format!("it could not be completed within {} s", give_up_ms / 1_000),
                next: Undo::Record,
            },
            Logged::Running { plan } => SagaState::Running {
                plan,
                next: Forward::Commit,
            },
            Logged::Compensating { plan, reason } => SagaState::Compensating {
                plan,
                reason,
                next: Undo::Record,
            },
            Logged::Confirmed { .. } | Logged::Failed { .. } | Logged::Rejected { .. } => return None,
        };
        let action = state.action();
        Some((state, action))
    }

    /// The saga's plan.
    pub fn plan(&self) -> &OrderPlan {
        match self {
            SagaState::Running { plan, .. }
            | SagaState::Compensating { plan, .. }
            | SagaState::Confirmed { plan }
            | SagaState::Failed { plan, .. } => plan,
        }
    }

    /// Whether the saga is over.
    pub fn is_final(&self) -> bool {
        matches!(self, SagaState::Confirmed { .. } | SagaState::Failed { .. })
    }

    /// What the driver does in this state. A final state stops: a confirmed one answers the
    /// order as its plan placed it.
    pub fn action(&self) -> Action {
        match self {
            SagaState::Running {
                next: Forward::Commit, ..
            } => Action::Commit,
            SagaState::Running {
                next: Forward::Create, ..
            } => Action::Create,
            SagaState::Compensating { reason, next, .. } => match next {
                Undo::Record => Action::Record(Mark::Compensating { reason: reason.clone() }),
                Undo::Fail => Action::Fail { reason: reason.clone() },
                Undo::Release => Action::Release,
                Undo::RecordFailed => Action::Record(Mark::Failed { reason: reason.clone() }),
            },
            SagaState::Confirmed { plan } => {
                Action::Stop(Stop::Confirmed(plan.order(OrderStatus::Confirmed, plan.created_at)))
            }
            SagaState::Failed { reason, .. } => Action::Stop(Stop::Failed(reason.clone())),
        }
    }

    /// The machine: from this state and the result of the action it asked for, the next state
    /// and the next action. A step that cannot be done now stops the saga as it is
    /// ([`Stop::Pending`]); a refusal going forward compensates; the fail of a compensation
    /// that finds the order confirmed confirms the saga.
    ///
    /// # Panics
    /// On a result its action cannot give (a [`StepResult::Created`] to anything but
    /// [`Action::Create`], or `Done` to it) or a result given to a final state: the driver's
    /// error, not the data's.
    pub fn step(self, result: StepResult) -> (SagaState, Action) {
        assert!(
            !self.is_final(),
            "a finished saga takes no step result: {self:?} got {result:?}"
        );
        assert!(self.takes(&result), "{self:?} cannot get {result:?}");
        match (self, result) {
            (state, StepResult::Unanswered) => (state, Action::Stop(Stop::Pending)),
            (SagaState::Running { plan, .. }, StepResult::Refused(refusal)) => SagaState::Compensating {
                plan,
                reason: refusal.to_string(),
                next: Undo::Record,
            }
            .with_action(),
            (
                SagaState::Running {
                    plan,
                    next: Forward::Commit,
                },
                StepResult::Done,
            ) => SagaState::Running {
                plan,
                next: Forward::Create,
            }
            .with_action(),
            (
                SagaState::Running {
                    plan,
                    next: Forward::Create,
                },
                StepResult::Created(order),
            ) => (SagaState::Confirmed { plan }, Action::Stop(Stop::Confirmed(order))),
            (
                SagaState::Compensating {
                    plan, next: Undo::Fail, ..
                },
                StepResult::Refused(ShopError::Conflict { .. }),
            ) => {
                // Confirmed before the fail arrived: the order stands, and so does its
                // committed reservation.
                SagaState::Confirmed { plan }.with_action()
            }
            (state @ SagaState::Compensating { .. }, StepResult::Refused(_)) => (state, Action::Stop(Stop::Pending)),
            (SagaState::Compensating { plan, reason, next }, StepResult::Done) => match next.then() {
                Some(next) => SagaState::Compensating { plan, reason, next },
                None => SagaState::Failed { plan, reason },
            }
            .with_action(),
            (state, result) => unreachable!("{state:?} cannot get {result:?}"),
        }
    }

    /// Whether `result` is one this state's action can give.
    fn takes(&self, result: &StepResult) -> bool {
        let asks_create = matches!(
            self,
            SagaState::Running {
                next: Forward::Create,
                ..
            }
        );
        match result {
            StepResult::Done => !asks_create,
            StepResult::Created(_) => asks_create,
            StepResult::Refused(_) | StepResult::Unanswered => true,
        }
    }

    fn with_action(self) -> (SagaState, Action) {
        let action = self.action();
        (self, action)
    }
}

#[cfg(test)]
mod tests;
