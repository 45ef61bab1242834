//! The saga machine, stepped without I/O: every state against every result, the log's
//! states read back, and random runs against a model of the services.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proptest::prelude::*;

use super::*;
use crate::ids::{CustomerId, OrderId, ProductId};
use crate::order::OrderLine;
use crate::saga::PricedOrder;
use crate::values::{Money, Timestamp};

const GIVE_UP_MS: u64 = 120_000;

fn plan() -> OrderPlan {
    OrderPlan {
        order_id: OrderId::parse("o1").unwrap(),
        customer_id: Some(CustomerId::parse("c1").unwrap()),
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

fn confirmed_order() -> Order {
    plan().order(OrderStatus::Confirmed, plan().created_at)
}

fn running(next: Forward) -> SagaState {
    SagaState::Running { plan: plan(), next }
}

fn compensating(next: Undo) -> SagaState {
    SagaState::Compensating {
        plan: plan(),
        reason: "why".into(),
        next,
    }
}

/// Every state a saga can be in, with a name for the table.
fn states() -> Vec<(&'static str, SagaState)> {
    vec![
        ("running/commit", running(Forward::Commit)),
        ("running/create", running(Forward::Create)),
        ("compensating/record", compensating(Undo::Record)),
        ("compensating/fail", compensating(Undo::Fail)),
        ("compensating/release", compensating(Undo::Release)),
        ("compensating/record-failed", compensating(Undo::RecordFailed)),
        ("confirmed", SagaState::Confirmed { plan: plan() }),
        (
            "failed",
            SagaState::Failed {
                plan: plan(),
                reason: "why".into(),
            },
        ),
    ]
}

/// Every kind of result, with a name for the table.
fn results() -> Vec<(&'static str, StepResult)> {
    vec![
        ("done", StepResult::Done),
        ("created", StepResult::Created(confirmed_order())),
        ("conflict", StepResult::Refused(ShopError::conflict("why"))),
        ("refused", StepResult::Refused(ShopError::not_found("reservation"))),
        ("unanswered", StepResult::Unanswered),
    ]
}

fn name_of(state: &SagaState) -> &'static str {
    states()
        .into_iter()
        .find(|(_, s)| std::mem::discriminant(s) == std::mem::discriminant(state) && same_step(s, state))
        .map(|(n, _)| n)
        .unwrap()
}

fn same_step(a: &SagaState, b: &SagaState) -> bool {
    match (a, b) {
        (SagaState::Running { next: x, .. }, SagaState::Running { next: y, .. }) => x == y,
        (SagaState::Compensating { next: x, .. }, SagaState::Compensating { next: y, .. }) => x == y,
        _ => true,
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Commit => "commit",
        Action::Create => "create",
        Action::Fail { .. } => "fail",
        Action::Release => "release",
        Action::Record(Mark::Compensating { .. }) => "record compensating",
        Action::Record(Mark::Confirmed) => "record confirmed",
        Action::Record(Mark::Failed { .. }) => "record failed",
        Action::Stop(Stop::Confirmed(_)) => "stop confirmed",
        Action::Stop(Stop::Failed(_)) => "stop failed",
        Action::Stop(Stop::Pending) => "stop pending",
    }
}

/// The whole machine: (state, result) → (next state, next action), `None` where the result
/// is not one the state's action can give (the driver's bug: it panics).
/// A row: a state, a result, and the next state and action (`None`: a panic).
type Row = (&'static str, &'static str, Option<(&'static str, &'static str)>);

const TABLE: &[Row] = &[
    ("running/commit", "done", Some(("running/create", "create"))),
    ("running/commit", "created", None),
    (
        "running/commit",
        "conflict",
        Some(("compensating/record", "record compensating")),
    ),
    (
        "running/commit",
        "refused",
        Some(("compensating/record", "record compensating")),
    ),
    ("running/commit", "unanswered", Some(("running/commit", "stop pending"))),
    ("running/create", "done", None),
    ("running/create", "created", Some(("confirmed", "stop confirmed"))),
    (
        "running/create",
        "conflict",
        Some(("compensating/record", "record compensating")),
    ),
    (
        "running/create",
        "refused",
        Some(("compensating/record", "record compensating")),
    ),
    ("running/create", "unanswered", Some(("running/create", "stop pending"))),
    ("compensating/record", "done", Some(("compensating/fail", "fail"))),
    ("compensating/record", "created", None),
    (
        "compensating/record",
        "conflict",
        Some(("compensating/record", "stop pending")),
    ),
    (
        "compensating/record",
        "refused",
        Some(("compensating/record", "stop pending")),
    ),
    (
        "compensating/record",
        "unanswered",
        Some(("compensating/record", "stop pending")),
    ),
    ("compensating/fail", "done", Some(("compensating/release", "release"))),
    ("compensating/fail", "created", None),
    ("compensating/fail", "conflict", Some(("confirmed", "stop confirmed"))),
    (
        "compensating/fail",
        "refused",
        Some(("compensating/fail", "stop pending")),
    ),
    (
        "compensating/fail",
        "unanswered",
        Some(("compensating/fail", "stop pending")),
    ),
    (
        "compensating/release",
        "done",
        Some(("compensating/record-failed", "record failed")),
    ),
    ("compensating/release", "created", None),
    (
        "compensating/release",
        "conflict",
        Some(("compensating/release", "stop pending")),
    ),
    (
        "compensating/release",
        "refused",
        Some(("compensating/release", "stop pending")),
    ),
    (
        "compensating/release",
        "unanswered",
        Some(("compensating/release", "stop pending")),
    ),
    ("compensating/record-failed", "done", Some(("failed", "stop failed"))),
    ("compensating/record-failed", "created", None),
    (
        "compensating/record-failed",
        "conflict",
        Some(("compensating/record-failed", "stop pending")),
    ),
    (
        "compensating/record-failed",
        "refused",
        Some(("compensating/record-failed", "stop pending")),
    ),
    (
        "compensating/record-failed",
        "unanswered",
        Some(("compensating/record-failed", "stop pending")),
    ),
    ("confirmed", "done", None),
    ("confirmed", "created", None),
    ("confirmed", "conflict", None),
    ("confirmed", "refused", None),
    ("confirmed", "unanswered", None),
    ("failed", "done", None),
    ("failed", "created", None),
    ("failed", "conflict", None),
    ("failed", "refused", None),
    ("failed", "unanswered", None),
];

#[test]
fn every_state_meets_every_result_as_the_table_says() {
    assert_eq!(TABLE.len(), states().len() * results().len(), "the table is exhaustive");
    for (state_name, state) in states() {
        for (result_name, result) in results() {
            let row = TABLE
                .iter()
                .find(|(s, r, _)| *s == state_name && *r == result_name)
                .unwrap_or_else(|| panic!("no row for {state_name} × {result_name}"));
            let stepped = catch_unwind(AssertUnwindSafe(|| state.clone().step(result.clone())));
            match (row.2, stepped) {
                (None, Err(_)) => {}
                (Some((next, action)), Ok((got, got_action))) => {
                    assert_eq!(
                        (name_of(&got), action_name(&got_action)),
                        (next, action),
                        "{state_name} × {result_name}"
                    );
                    assert_eq!(got.plan(), &plan(), "the plan is carried as it is");
                }
                (expected, got) => panic!("{state_name} × {result_name}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn every_state_asks_for_the_action_its_step_names() {
    for (name, state) in states() {
        let expected = match name {
            "running/commit" => "commit",
            "running/create" => "create",
            "compensating/record" => "record compensating",
            "compensating/fail" => "fail",
            "compensating/release" => "release",
            "compensating/record-failed" => "record failed",
            "confirmed" => "stop confirmed",
            "failed" => "stop failed",
            other => unreachable!("{other}"),
        };
        assert_eq!(action_name(&state.action()), expected, "{name}");
    }
}

#[test]
fn a_refusal_going_forward_compensates_for_the_refusal() {
    let (state, action) =
        running(Forward::Commit).step(StepResult::Refused(ShopError::conflict("the reservation was released")));
    let reason = "the reservation was released".to_owned();
    assert_eq!(action, Action::Record(Mark::Compensating { reason: reason.clone() }));
    let (_, action) = state.step(StepResult::Done);
    assert_eq!(action, Action::Fail { reason });
}

#[test]
fn a_created_order_is_the_answer_and_a_fail_that_finds_it_confirmed_answers_the_plan() {
    let mut cancelled = confirmed_order();
    cancelled.status = OrderStatus::Cancelled;
    let (_, action) = running(Forward::Create).step(StepResult::Created(cancelled.clone()));
    assert_eq!(action, Action::Stop(Stop::Confirmed(cancelled)));
    let (_, action) = compensating(Undo::Fail).step(StepResult::Refused(ShopError::conflict("confirmed")));
    assert_eq!(action, Action::Stop(Stop::Confirmed(confirmed_order())));
}

#[test]
fn resuming_starts_each_unfinished_state_at_its_first_step_and_gives_up_on_old_running_ones() {
    let (state, action) = SagaState::resume(Logged::Running { plan: plan() }, 10, GIVE_UP_MS).unwrap();
    assert_eq!((state, action), (running(Forward::Commit), Action::Commit));
    let (_, action) = SagaState::resume(Logged::Running { plan: plan() }, GIVE_UP_MS as i64 + 1, GIVE_UP_MS).unwrap();
    assert_eq!(
        action,
        Action::Record(Mark::Compensating {
            reason: "it could not be completed within 120 s".into()
        })
    );
    let compensating = Logged::Compensating {
        plan: plan(),
        reason: "why".into(),
    };
    let (_, action) = SagaState::resume(compensating, 0, GIVE_UP_MS).unwrap();
    assert_eq!(action, Action::Record(Mark::Compensating { reason: "why".into() }));
    for finished in [
        Logged::Confirmed { plan: plan() },
        Logged::Failed {
            plan: plan(),
            reason: "why".into(),
        },
        Logged::Rejected {
            refusal: ShopError::not_found("customer"),
        },
    ] {
        assert_eq!(SagaState::resume(finished, GIVE_UP_MS as i64 * 2, GIVE_UP_MS), None);
    }
}

#[test]
fn every_logged_state_reads_back_as_it_was_written() {
    let logged = [
        Logged::Running { plan: plan() },
        Logged::Compensating {
            plan: plan(),
            reason: "why".into(),
        },
        Logged::Confirmed { plan: plan() },
        Logged::Failed {
            plan: plan(),
            reason: "why".into(),
        },
        Logged::Rejected {
            refusal: ShopError::not_found("customer"),
        },
    ];
    for l in logged {
        let back = Logged::from_parts(l.phase().as_str(), l.plan().cloned(), l.outcome());
        assert_eq!(back, Ok(l));
    }
}

#[test]
fn a_mark_writes_the_state_the_log_reads_back() {
    let marks = [
        Mark::Compensating { reason: "why".into() },
        Mark::Confirmed,
        Mark::Failed { reason: "why".into() },
    ];
    for mark in marks {
        let back = Logged::from_parts(mark.phase().as_str(), Some(plan()), mark.outcome()).unwrap();
        let expected = match &mark {
            Mark::Compensating { reason } => Logged::Compensating {
                plan: plan(),
                reason: reason.clone(),
            },
            Mark::Confirmed => Logged::Confirmed { plan: plan() },
            Mark::Failed { reason } => Logged::Failed {
                plan: plan(),
                reason: reason.clone(),
            },
        };
        assert_eq!(back, expected);
    }
}

#[test]
fn an_impossible_stored_saga_is_an_error_not_a_panic() {
    assert_eq!(
        Logged::from_parts("paused", Some(plan()), None),
        Err(ImpossibleSaga::UnknownState("paused".into()))
    );
    for phase in [Phase::Running, Phase::Compensating, Phase::Confirmed, Phase::Failed] {
        assert_eq!(
            Logged::from_parts(phase.as_str(), None, None),
            Err(ImpossibleSaga::NoPlan(phase))
        );
    }
    assert_eq!(
        Logged::from_parts("rejected", Some(plan()), Some(ShopError::not_found("customer"))),
        Err(ImpossibleSaga::RejectedWithPlan)
    );
    assert_eq!(
        Logged::from_parts("rejected", None, None),
        Err(ImpossibleSaga::RejectedWithoutRefusal)
    );
}

#[test]
fn a_failed_or_compensating_saga_without_a_reason_failed_for_the_general_one() {
    let failed = Logged::from_parts("failed", Some(plan()), Some(ShopError::conflict("odd"))).unwrap();
    assert_eq!(
        failed,
        Logged::Failed {
            plan: plan(),
            reason: FAILED_WITHOUT_REASON.into()
        }
    );
}

#[test]
fn the_log_answers_pending_for_an_unfinished_saga_failed_with_its_reason_and_nothing_else() {
    let at = Timestamp(5_000);
    let pending = Logged::Compensating {
        plan: plan(),
        reason: "why".into(),
    }
    .order(at)
    .unwrap();
    // Pending since it was placed, as its confirmed order will say: times never go back.
    assert_eq!(
        (pending.status, pending.updated_at, pending.points),
        (OrderStatus::Pending, plan().created_at, 7)
    );
    assert_eq!(pending.updated_at, confirmed_order().updated_at);
    let failed = Logged::Failed {
        plan: plan(),
        reason: "why".into(),
    }
    .order(at)
    .unwrap();
    assert_eq!(
        (failed.status, failed.points, failed.failure_reason.as_deref()),
        (OrderStatus::Failed, 0, Some("why"))
    );
    assert_eq!(Logged::Confirmed { plan: plan() }.order(at), None);
}

#[test]
fn phases_read_back_from_their_words() {
    for phase in Phase::ALL {
        assert_eq!(Phase::parse(phase.as_str()), Some(phase));
    }
    assert_eq!(Phase::parse("Running"), None);
}

// Random runs against a model of the services. The model keeps what the real ones keep: a
// reservation (held under a lease, committed, released), the order at the orders service,
// and each step's first result under its step key, replayed when the step is asked again.
// Faults are drawn: a call not sent, a reply lost after the call was carried out, a lease
// running out, a log write lost or written without its answer, a restart with the saga old
// enough to be given up.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reservation {
    Held,
    Committed,
    Released,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderAt {
    None,
    Confirmed,
    Failed,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    NotSent,
    ReplyLost,
    LeaseRunsOut,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::None),
        1 => Just(Fault::NotSent),
        1 => Just(Fault::ReplyLost),
        1 => Just(Fault::LeaseRunsOut),
    ]
}

struct World {
    reservation: Reservation,
    order: OrderAt,
    steps: HashMap<&'static str, StepResult>,
    log: Logged,
    /// Every call carried out, in order.
    calls: Vec<&'static str>,
}

impl World {
    fn new() -> World {
        World {
            reservation: Reservation::Held,
            order: OrderAt::None,
            steps: HashMap::new(),
            log: Logged::Running { plan: plan() },
            calls: Vec::new(),
        }
    }

    /// Carries out a call once per step key, as the services do.
    fn carry_out(&mut self, action: &Action) -> StepResult {
        let key = action_name(action);
        if let Some(stored) = self.steps.get(key) {
            return stored.clone();
        }
        self.calls.push(key);
        let result = match action {
            Action::Commit => match self.reservation {
                Reservation::Held | Reservation::Committed => {
                    self.reservation = Reservation::Committed;
                    StepResult::Done
                }
                Reservation::Released => StepResult::Refused(ShopError::conflict("released")),
            },
            Action::Create => match self.order {
                OrderAt::None | OrderAt::Confirmed => {
                    assert_eq!(
                        self.reservation,
                        Reservation::Committed,
                        "an order is created only once committed"
                    );
                    self.order = OrderAt::Confirmed;
                    StepResult::Created(confirmed_order())
                }
                OrderAt::Failed => StepResult::Refused(ShopError::conflict("failed")),
            },
            Action::Fail { .. } => match self.order {
                OrderAt::None | OrderAt::Failed => {
                    self.order = OrderAt::Failed;
                    StepResult::Done
                }
                OrderAt::Confirmed => StepResult::Refused(ShopError::conflict("confirmed")),
            },
            Action::Release => {
                assert_ne!(
                    self.order,
                    OrderAt::Confirmed,
                    "a confirmed order's stock is never released"
                );
                self.reservation = Reservation::Released;
                StepResult::Done
            }
            Action::Record(_) | Action::Stop(_) => unreachable!("not a call"),
        };
        self.steps.insert(key, result.clone());
        result
    }

    fn write(&mut self, mark: &Mark) {
        let plan = plan();
        self.log = match mark.clone() {
            Mark::Compensating { reason } => Logged::Compensating { plan, reason },
            Mark::Confirmed => Logged::Confirmed { plan },
            Mark::Failed { reason } => Logged::Failed { plan, reason },
        };
    }

    /// Runs one action under a fault; returns its result as the driver sees it.
    fn run(&mut self, action: &Action, fault: Fault) -> StepResult {
        if let (Fault::LeaseRunsOut, Reservation::Held) = (fault, self.reservation) {
            self.reservation = Reservation::Released;
        }
        match (action, fault) {
            (_, Fault::NotSent) => StepResult::Unanswered,
            (Action::Record(mark), Fault::ReplyLost) => {
                self.write(mark);
                StepResult::Unanswered
            }
            (Action::Record(mark), _) => {
                self.write(mark);
                StepResult::Done
            }
            (_, Fault::ReplyLost) => {
                self.carry_out(action);
                StepResult::Unanswered
            }
            _ => self.carry_out(action),
        }
    }

    /// Drives the saga once from its log, as the sweeper does; the first drive starts it.
    /// Returns where it stopped.
    fn drive(&mut self, first: bool, old: bool, faults: &mut impl Iterator<Item = Fault>) -> Option<Stop> {
        let (mut state, mut action) = if first {
            SagaState::start(plan())
        } else {
            let age = if old { GIVE_UP_MS as i64 + 1 } else { 0 };
            SagaState::resume(self.log.clone(), age, GIVE_UP_MS)?
        };
        let mut actions = 0;
        loop {
            if let Action::Stop(stop) = action {
                if let Stop::Confirmed(_) = &stop {
                    // Recorded without waiting: it may be lost.
                    if !matches!(faults.next().unwrap_or(Fault::None), Fault::NotSent) {
                        self.write(&Mark::Confirmed);
                    }
                }
                return Some(stop);
            }
            actions += 1;
            assert!(actions <= 6, "a drive ends within six actions");
            let result = self.run(&action, faults.next().unwrap_or(Fault::None));
            (state, action) = state.step(result);
        }
    }

    fn check(&self) {
        if self.order == OrderAt::Confirmed {
            assert_eq!(
                self.reservation,
                Reservation::Committed,
                "a confirmed order keeps its stock"
            );
        }
        match &self.log {
            Logged::Confirmed { .. } => assert_eq!(self.order, OrderAt::Confirmed),
            Logged::Failed { .. } => {
                assert_eq!(self.order, OrderAt::Failed);
                assert_eq!(
                    self.reservation,
                    Reservation::Released,
                    "compensation releases what was reserved"
                );
            }
            _ => {}
        }
    }
}

proptest! {
    #[test]
    fn any_run_of_faults_ends_with_the_saga_settled_once_the_services_answer(
        faults in proptest::collection::vec(fault(), 0..40),
        restarts_old in proptest::collection::vec(any::<bool>(), 0..8),
        last_old in any::<bool>(),
    ) {
        let mut world = World::new();
        let mut faults = faults.into_iter();
        let mut stops = vec![world.drive(true, false, &mut faults)];
        world.check();
        for old in restarts_old {
            stops.push(world.drive(false, old, &mut faults));
            world.check();
        }
        // Faults spent or not, the services now answer: one more drive settles the saga.
        let mut none = std::iter::repeat(Fault::None);
        stops.push(world.drive(false, last_old, &mut none));
        world.check();
        prop_assert!(world.log.phase().is_finished(), "{:?}", world.log);
        // A saga that answered confirmed never compensates afterwards.
        if let Some(i) = stops.iter().position(|s| matches!(s, Some(Stop::Confirmed(_)))) {
            prop_assert!(stops[i..].iter().all(|s| !matches!(s, Some(Stop::Failed(_)))));
            prop_assert_eq!(world.order, OrderAt::Confirmed);
        }
        // Failing comes before releasing, and releasing only for an order that failed.
        if let Some(release) = world.calls.iter().position(|c| *c == "release") {
            let fail = world.calls.iter().position(|c| *c == "fail");
            prop_assert!(fail.is_some_and(|f| f < release), "{:?}", world.calls);
        }
        // A saga answers failed only once its log says so (the reverse need not hold: the
        // write's answer may be lost, and the client was told pending).
        if stops.iter().any(|s| matches!(s, Some(Stop::Failed(_)))) {
            let failed = matches!(world.log, Logged::Failed { .. });
            prop_assert!(failed);
        }
    }

    #[test]
    fn any_sequence_of_results_stops_within_six_steps(
        results in proptest::collection::vec(0usize..5, 0..12),
        old in any::<bool>(),
        compensating in any::<bool>(),
    ) {
        let logged = match compensating {
            true => Logged::Compensating { plan: plan(), reason: "why".into() },
            false => Logged::Running { plan: plan() },
        };
        let age = if old { GIVE_UP_MS as i64 + 1 } else { 0 };
        let (mut state, mut action) = SagaState::resume(logged, age, GIVE_UP_MS).unwrap();
        let mut results = results.into_iter();
        let mut steps = 0;
        while !matches!(action, Action::Stop(_)) {
            steps += 1;
            prop_assert!(steps <= 6);
            // Any result the action can give; past the drawn ones, everything is done.
            let drawn = results.next().unwrap_or(0);
            let result = match (&action, drawn) {
                (Action::Create, 0) | (Action::Create, 1) => StepResult::Created(confirmed_order()),
                (_, 0) | (_, 1) => StepResult::Done,
                (_, 2) => StepResult::Refused(ShopError::conflict("why")),
                (_, 3) => StepResult::Refused(ShopError::not_found("reservation")),
                _ => StepResult::Unanswered,
            };
            let was_undoing = matches!(state, SagaState::Compensating { .. });
            (state, action) = state.step(result);
            // Once undoing, a saga never goes forward again.
            if was_undoing {
                let forward = matches!(action, Action::Commit | Action::Create);
                prop_assert!(!forward);
            }
        }
        if let Action::Stop(Stop::Failed(_)) = action {
            let failed = matches!(state, SagaState::Failed { .. });
            prop_assert!(failed);
        }
    }
}
