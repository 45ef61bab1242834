//! Each invariant against a history and a final state built by hand: a consistent pair is
//! valid on every invariant, and a pair that breaks one makes its report name it.

use std::collections::BTreeMap;

use lemonade_checker::state::{
    AuditViolation, BreakerPhase, BreakerState, CustomerState, FinalRead, FinalState, HeldReservation, IngredientState,
    Layout, LedgerMove, OpenSaga, OrderState, PointsEntry, ReadPoolState, UndeliveredEvent,
};
use lemonade_checker::{History, Invariant, Line, Op, Phase, Told, Verdict, check};
use lemonade_domain::customer::ActivityKind;
use lemonade_domain::order::OrderStatus;
use lemonade_domain::stock::MoveReason;

fn line(quantity: u64) -> Vec<Line> {
    vec![Line {
        product: "lemonade".into(),
        quantity,
    }]
}

fn place(key: &str, customer: Option<&str>, quantity: u64) -> Op {
    Op::PlaceOrder {
        key: Some(key.into()),
        customer: customer.map(str::to_owned),
        lines: line(quantity),
    }
}

fn mv(seq: i64, kind: MoveReason, delta: i64, order: Option<&str>, note: Option<&str>) -> LedgerMove {
    LedgerMove {
        seq,
        kind,
        delta,
        order: order.map(str::to_owned),
        note: note.map(str::to_owned),
        at_ms: seq * 10,
    }
}

fn order(id: &str, key: Option<&str>, customer: Option<&str>, status: OrderStatus, quantity: u64) -> OrderState {
    OrderState {
        id: id.into(),
        key: key.map(str::to_owned),
        customer: customer.map(str::to_owned),
        status,
        total: 350 * quantity as i64,
        points: if customer.is_some() && status == OrderStatus::Confirmed {
            350 * quantity / 100
        } else {
            0
        },
        lines: line(quantity),
        consumption: BTreeMap::from([("lemons".to_owned(), 2 * quantity)]),
        updated_at_ms: 50,
    }
}

/// A small run that holds together: an order for a customer, an order placed then
/// cancelled, a restock whose answer was lost (it happened), a placement refused for want of
/// stock, and a placement whose answer was lost (it did not happen).
fn consistent() -> (History, FinalState) {
    let mut h = History::new();
    h.record(
        1,
        place("k1", Some("c1"), 2),
        0,
        5,
        Told::order(201, "o1", OrderStatus::Confirmed),
    )
    .unwrap();
    h.record(
        2,
        place("k2", None, 1),
        1,
        6,
        Told::order(201, "o2", OrderStatus::Confirmed),
    )
    .unwrap();
    h.record(
        2,
        Op::CancelOrder { order: "o2".into() },
        7,
        9,
        Told::order(200, "o2", OrderStatus::Cancelled),
    )
    .unwrap();
    h.invoke(
        3,
        2,
        Op::Restock {
            ingredient: "lemons".into(),
            quantity: 10,
            note: Some("op-r1".into()),
        },
    )
    .unwrap();
    h.complete(3, 12, Phase::Info, Told::nothing()).unwrap();
    h.record(1, place("k3", Some("c1"), 100), 13, 14, Told::status(409))
        .unwrap();
    h.invoke(3, 15, place("k4", None, 1)).unwrap();
    h.complete(3, 20, Phase::Info, Told::status(503)).unwrap();

    let mut s = FinalState::empty(Layout::Monolith, 100);
    s.baseline.ingredients.insert("lemons".into());
    s.ingredients.push(IngredientState {
        id: "lemons".into(),
        initial_on_hand: 100,
        moves: vec![
            mv(2, MoveReason::Sale, -4, Some("o1"), None),
            mv(3, MoveReason::Sale, -2, Some("o2"), None),
            mv(4, MoveReason::Restock, 10, None, Some("op-r1")),
            mv(5, MoveReason::Cancel, 2, Some("o2"), None),
        ],
        final_on_hand: 106,
    });
    s.orders = vec![
        order("o1", Some("k1"), Some("c1"), OrderStatus::Confirmed, 2),
        order("o2", Some("k2"), None, OrderStatus::Cancelled, 1),
    ];
    s.customers.push(CustomerState {
        id: "c1".into(),
        points: 7,
        erased: false,
    });
    s.points_ledger = Some(vec![
        PointsEntry {
            customer: "c1".into(),
            kind: ActivityKind::Created,
            order: None,
            delta: 0,
            at_ms: 0,
        },
        PointsEntry {
            customer: "c1".into(),
            kind: ActivityKind::OrderPlaced,
            order: Some("o1".into()),
            delta: 7,
            at_ms: 5,
        },
    ]);
    (h, s)
}

/// The verdict on `invariant`, printing every report when it is not the expected kind.
fn verdict(h: &History, s: &FinalState, invariant: Invariant) -> Verdict {
    let reports = check(h, s);
    println!("{}", reports.to_text());
    reports
        .get(invariant)
        .expect("every invariant is reported")
        .verdict
        .clone()
}

fn assert_invalid(h: &History, s: &FinalState, invariant: Invariant, says: &str) {
    match verdict(h, s, invariant) {
        Verdict::Invalid { first, .. } => assert!(
            first.message.contains(says),
            "{}: expected a violation saying {says:?}, got {first:?}",
            invariant.name()
        ),
        other => panic!("{} should be invalid, is {other:?}", invariant.name()),
    }
}

fn assert_unknown(h: &History, s: &FinalState, invariant: Invariant) {
    let v = verdict(h, s, invariant);
    assert!(matches!(v, Verdict::Unknown { .. }), "{}: {v:?}", invariant.name());
}

#[test]
fn a_consistent_history_and_state_are_valid_on_every_invariant() {
    let (h, s) = consistent();
    let reports = check(&h, &s);
    assert!(reports.all_valid(), "{}", reports.to_text());
    assert_eq!(reports.0.len(), Invariant::ALL.len());
    let indefinite = reports.get(Invariant::IndefiniteResolved).unwrap();
    assert_eq!(
        indefinite.counts,
        vec![
            ("applied".to_owned(), 1),
            ("not applied".to_owned(), 1),
            ("indefinite".to_owned(), 0)
        ],
        "the lost restock happened, the lost placement did not"
    );
}

#[test]
fn a_history_and_state_written_as_json_check_the_same() {
    let (h, s) = consistent();
    let h2 = History::from_json(&h.to_json()).unwrap();
    let s2: FinalState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(check(&h2, &s2), check(&h, &s));
}

#[test]
fn stock_that_does_not_add_up_breaks_conservation() {
    let (h, mut s) = consistent();
    s.ingredients[0].final_on_hand = 105;
    assert_invalid(&h, &s, Invariant::StockConserved, "expected 106");
}

#[test]
fn a_confirmed_order_that_took_no_stock_breaks_conservation() {
    let (h, mut s) = consistent();
    s.ingredients[0].moves.remove(0);
    s.ingredients[0].final_on_hand = 110;
    assert_invalid(&h, &s, Invariant::StockConserved, "confirmed orders took 4");
}

#[test]
fn a_ledger_that_goes_below_zero_breaks_conservation() {
    let (h, mut s) = consistent();
    s.ingredients[0].initial_on_hand = 5;
    s.ingredients[0].final_on_hand = 11;
    assert_invalid(&h, &s, Invariant::StockConserved, "below zero");
}

#[test]
fn an_acknowledged_restock_missing_from_the_ledger_breaks_conservation() {
    let (mut h, s) = consistent();
    let restock = Op::Restock {
        ingredient: "lemons".into(),
        quantity: 5,
        note: None,
    };
    let told = Told {
        move_id: Some("0000000000000099".into()),
        ..Told::status(200)
    };
    h.record(4, restock, 30, 31, told).unwrap();
    assert_invalid(&h, &s, Invariant::StockConserved, "not in the run's ledger");
}

#[test]
fn a_restock_applied_twice_breaks_conservation() {
    let (h, mut s) = consistent();
    s.ingredients[0]
        .moves
        .push(mv(6, MoveReason::Restock, 10, None, Some("op-r1")));
    s.ingredients[0].final_on_hand = 116;
    assert_invalid(&h, &s, Invariant::StockConserved, "1 more than the operations");
}

#[test]
fn a_restock_no_client_asked_for_breaks_conservation() {
    let (h, mut s) = consistent();
    s.ingredients[0].moves.push(mv(6, MoveReason::Waste, -1, None, None));
    s.ingredients[0].final_on_hand = 105;
    assert_invalid(&h, &s, Invariant::StockConserved, "1 waste moves");
    let (mut h, _) = consistent();
    let waste = Op::Waste {
        ingredient: "lemons".into(),
        quantity: 1,
        note: None,
    };
    h.invoke(4, 30, waste).unwrap();
    let reports = check(&h, &s);
    assert!(
        reports.get(Invariant::StockConserved).unwrap().is_valid(),
        "an unanswered waste without a note may have made it: {}",
        reports.to_text()
    );
}

#[test]
fn an_acknowledged_order_that_ends_cancelled_without_a_cancel_is_invalid() {
    let (h, mut s) = consistent();
    s.orders[0].status = OrderStatus::Cancelled;
    assert_invalid(&h, &s, Invariant::OrdersAcknowledged, "it ends cancelled");
}

#[test]
fn an_acknowledged_order_that_does_not_exist_is_invalid() {
    let (h, mut s) = consistent();
    s.orders.remove(0);
    assert_invalid(&h, &s, Invariant::OrdersAcknowledged, "does not exist");
}

#[test]
fn an_acknowledged_order_with_other_lines_than_asked_is_invalid() {
    let (h, mut s) = consistent();
    s.orders[0].lines = line(3);
    assert_invalid(&h, &s, Invariant::OrdersAcknowledged, "not what was asked");
}

#[test]
fn an_acknowledged_cancel_of_an_order_still_confirmed_is_invalid() {
    let (h, mut s) = consistent();
    s.orders[1].status = OrderStatus::Confirmed;
    assert_invalid(&h, &s, Invariant::OrdersAcknowledged, "ends confirmed");
}

#[test]
fn an_order_under_a_key_whose_every_placement_was_refused_is_invalid() {
    let (h, mut s) = consistent();
    let mut applied = order("o3", Some("k3"), Some("c1"), OrderStatus::Failed, 100);
    applied.consumption.clear();
    s.orders.push(applied.clone());
    assert!(check(&h, &s).all_valid(), "a failed order under a refused key is fine");
    applied.status = OrderStatus::Cancelled;
    s.orders.pop();
    s.orders.push(applied);
    assert_invalid(
        &h,
        &s,
        Invariant::OrdersAcknowledged,
        "was refused, yet cancelled order o3",
    );
}

#[test]
fn a_retry_refused_after_its_key_made_an_order_is_invalid() {
    let (mut h, s) = consistent();
    // k1's order o1 is confirmed; a retry with k1 told "insufficient stock" hid it.
    let mut refused = Told::status(409);
    refused.error = Some("https://lemonade.example/problems/insufficient_stock".into());
    h.record(1, place("k1", Some("c1"), 2), 30, 31, refused).unwrap();
    assert_invalid(
        &h,
        &s,
        Invariant::OrdersAcknowledged,
        "a retry with key k1 was refused (https://lemonade.example/problems/insufficient_stock), yet an earlier try made order o1",
    );

    let (mut h, s) = consistent();
    let mut in_progress = Told::status(409);
    in_progress.error = Some("https://lemonade.example/problems/request_in_progress".into());
    h.record(1, place("k1", Some("c1"), 2), 30, 31, in_progress).unwrap();
    let reports = check(&h, &s);
    assert!(
        reports.all_valid(),
        "'in progress' is a retry's fair answer: {}",
        reports.to_text()
    );
}

#[test]
fn an_erasure_answered_yes_whose_customer_is_not_erased_is_invalid() {
    for status in [200, 202] {
        let (mut h, s) = consistent();
        h.record(
            4,
            Op::EraseCustomer { customer: "c1".into() },
            30,
            31,
            Told::status(status),
        )
        .unwrap();
        assert_invalid(
            &h,
            &s,
            Invariant::ErasuresDone,
            &format!("customer c1's erasure was answered {status}, yet they are not erased"),
        );
    }
    let (mut h, s) = consistent();
    h.record(4, Op::EraseCustomer { customer: "c1".into() }, 30, 31, Told::nothing())
        .unwrap();
    assert!(
        check(&h, &s).get(Invariant::ErasuresDone).unwrap().is_valid(),
        "an erasure whose answer was lost may not have happened"
    );
}

#[test]
fn two_live_orders_for_one_key_are_invalid() {
    let (mut h, mut s) = consistent();
    h.record(
        5,
        place("k1", Some("c1"), 2),
        40,
        41,
        Told::order(201, "o5", OrderStatus::Confirmed),
    )
    .unwrap();
    s.orders.push(order("o5", None, Some("c1"), OrderStatus::Confirmed, 2));
    assert_invalid(&h, &s, Invariant::OneOrderPerKey, "key k1 made 2 orders");
}

#[test]
fn a_retry_after_a_failed_order_may_make_a_second_order_for_its_key() {
    let (mut h, mut s) = consistent();
    h.record(
        5,
        place("k9", None, 1),
        40,
        41,
        Told::order(202, "o6", OrderStatus::Pending),
    )
    .unwrap();
    h.record(
        5,
        place("k9", None, 1),
        42,
        43,
        Told::order(201, "o7", OrderStatus::Confirmed),
    )
    .unwrap();
    let mut failed = order("o6", None, None, OrderStatus::Failed, 1);
    failed.consumption.clear();
    s.orders.push(failed);
    s.orders.push(order("o7", Some("k9"), None, OrderStatus::Confirmed, 1));
    s.ingredients[0]
        .moves
        .push(mv(6, MoveReason::Sale, -2, Some("o7"), None));
    s.ingredients[0].final_on_hand = 104;
    let reports = check(&h, &s);
    assert!(reports.all_valid(), "{}", reports.to_text());
}

#[test]
fn an_order_no_client_asked_for_is_invalid() {
    let (h, mut s) = consistent();
    let mut phantom = order("o9", None, None, OrderStatus::Confirmed, 1);
    phantom.consumption.clear();
    s.orders.push(phantom);
    assert_invalid(&h, &s, Invariant::NoPhantomOrders, "no client asked for it");
}

#[test]
fn an_order_found_by_its_key_that_differs_from_the_request_is_invalid() {
    let (h, mut s) = consistent();
    // The placement with key k4 was lost; an order under k4 for another customer shows up.
    let mut other = order("o4", Some("k4"), Some("c1"), OrderStatus::Failed, 1);
    other.consumption.clear();
    s.orders.push(other);
    assert_invalid(&h, &s, Invariant::NoPhantomOrders, "not what it asked");
}

#[test]
fn an_unknown_placement_still_pending_is_unresolved() {
    let (h, mut s) = consistent();
    let mut pending = order("o4", Some("k4"), None, OrderStatus::Pending, 1);
    pending.consumption.clear();
    s.orders.push(pending);
    assert_invalid(&h, &s, Invariant::IndefiniteResolved, "still pending");
}

#[test]
fn unknown_operations_without_a_key_or_note_count_as_indefinite() {
    let (mut h, s) = consistent();
    h.invoke(
        6,
        50,
        Op::PlaceOrder {
            key: None,
            customer: None,
            lines: line(1),
        },
    )
    .unwrap();
    let reports = check(&h, &s);
    let report = reports.get(Invariant::IndefiniteResolved).unwrap();
    assert!(report.is_valid(), "{}", reports.to_text());
    assert!(report.counts.contains(&("indefinite".to_owned(), 1)), "{report:?}");
}

#[test]
fn points_that_differ_from_what_orders_earned_are_invalid() {
    let (h, mut s) = consistent();
    s.customers[0].points = 8;
    assert_invalid(
        &h,
        &s,
        Invariant::PointsMatchOrders,
        "points 8, their confirmed orders earned 7",
    );
}

#[test]
fn points_awarded_twice_for_one_order_are_invalid() {
    let (h, mut s) = consistent();
    let ledger = s.points_ledger.as_mut().unwrap();
    let award = ledger[1].clone();
    ledger.push(award);
    assert_invalid(&h, &s, Invariant::PointsMatchOrders, "2 × order_placed");
}

#[test]
fn an_erased_customer_holding_points_is_invalid() {
    let (h, mut s) = consistent();
    s.customers[0].erased = true;
    assert_invalid(&h, &s, Invariant::PointsMatchOrders, "was erased and holds 7 points");
}

#[test]
fn an_open_saga_is_a_liveness_violation() {
    let (h, mut s) = consistent();
    s.layout = Layout::Cluster;
    s.open_sagas.push(OpenSaga {
        order: "o1".into(),
        phase: "compensating".into(),
        updated_at_ms: 60,
    });
    assert_invalid(&h, &s, Invariant::Liveness, "still compensating");
}

#[test]
fn a_held_reservation_an_undelivered_event_and_an_open_breaker_are_liveness_violations() {
    let (h, mut s) = consistent();
    s.layout = Layout::Cluster;
    s.held_reservations.push(HeldReservation {
        order: "o1".into(),
        expires_at_ms: 70,
    });
    assert_invalid(&h, &s, Invariant::Liveness, "still held");
    s.held_reservations.clear();
    s.undelivered_events.push(UndeliveredEvent {
        node: "orders".into(),
        id: "e1".into(),
        destination: "crm".into(),
    });
    assert_invalid(&h, &s, Invariant::Liveness, "never delivered");
    s.undelivered_events.clear();
    s.breakers = Some(vec![BreakerState {
        node: "coordinator".into(),
        target: "stock".into(),
        phase: BreakerPhase::HalfOpen,
    }]);
    assert_invalid(&h, &s, Invariant::Liveness, "HalfOpen");
    s.breakers = None;
    assert_unknown(&h, &s, Invariant::Liveness);
}

#[test]
fn a_read_that_misses_an_acknowledged_write_is_invalid() {
    let (mut h, s) = consistent();
    let read = |o: &str| Op::ReadOrder { order: o.into() };
    // o1 was acknowledged confirmed and o2's cancel was: reads that see so are valid, and a
    // read without an answer is not judged.
    h.record(9, read("o1"), 30, 31, Told::order(200, "o1", OrderStatus::Confirmed))
        .unwrap();
    h.record(9, read("o2"), 32, 33, Told::order(200, "o2", OrderStatus::Cancelled))
        .unwrap();
    h.record(9, read("o1"), 34, 35, Told::status(503)).unwrap();
    assert_eq!(verdict(&h, &s, Invariant::ReadsSeeWrites), Verdict::Valid);
    // With no read before it, the acknowledgements alone judge a read.
    let (mut first, _) = consistent();
    first
        .record(9, read("o2"), 30, 31, Told::order(200, "o2", OrderStatus::Confirmed))
        .unwrap();
    assert_invalid(
        &first,
        &s,
        Invariant::ReadsSeeWrites,
        "a read of order o2 found confirmed, after it was acknowledged cancelled",
    );
    let after = |answer: Told| {
        let mut h = h.clone();
        h.record(
            9,
            read(answer.order.as_ref().map_or("o1", |o| o.id.as_str())),
            36,
            37,
            answer.clone(),
        )
        .unwrap();
        h
    };
    assert_invalid(
        &after(Told::order(200, "o2", OrderStatus::Confirmed)),
        &s,
        Invariant::ReadsSeeWrites,
        "a read of order o2 found confirmed, after",
    );
    assert_invalid(
        &after(Told::status(404)),
        &s,
        Invariant::ReadsSeeWrites,
        "a read of order o1 found no such order, after",
    );
    assert_invalid(
        &after(Told::order(200, "o1", OrderStatus::Pending)),
        &s,
        Invariant::ReadsSeeWrites,
        "found pending",
    );
}

#[test]
fn a_read_that_goes_back_from_what_an_earlier_read_found_is_invalid() {
    let (mut h, s) = consistent();
    let read = |o: &str| Op::ReadOrder { order: o.into() };
    // o5 was never acknowledged to anyone: a read found it pending, then one confirmed.
    h.record(9, read("o5"), 30, 31, Told::order(200, "o5", OrderStatus::Pending))
        .unwrap();
    h.record(9, read("o5"), 32, 33, Told::order(200, "o5", OrderStatus::Confirmed))
        .unwrap();
    assert_eq!(verdict(&h, &s, Invariant::ReadsSeeWrites), Verdict::Valid);
    let mut back = h.clone();
    back.record(9, read("o5"), 34, 35, Told::order(200, "o5", OrderStatus::Pending))
        .unwrap();
    assert_invalid(
        &back,
        &s,
        Invariant::ReadsSeeWrites,
        "a read of order o5 found pending, after an earlier read found it confirmed",
    );
    h.record(9, read("o5"), 34, 35, Told::status(404)).unwrap();
    assert_invalid(
        &h,
        &s,
        Invariant::ReadsSeeWrites,
        "found no such order, after an earlier read found it",
    );
}

#[test]
fn a_read_pool_not_whole_and_a_final_read_unanswered_are_liveness_violations() {
    let (h, mut s) = consistent();
    s.layout = Layout::Cluster;
    let pool = |strays, returned_at_stop| ReadPoolState {
        node: "crm".into(),
        strays,
        returned_at_stop,
    };
    s.read_pools = Some(vec![pool(0, Some(true)), pool(0, None)]);
    let whole = verdict(&h, &s, Invariant::Liveness);
    assert_eq!(whole, Verdict::Valid, "{whole:?}");
    s.read_pools = Some(vec![pool(2, Some(true))]);
    assert_invalid(&h, &s, Invariant::Liveness, "2 permit(s) without a connection");
    s.read_pools = Some(vec![pool(0, Some(false))]);
    assert_invalid(&h, &s, Invariant::Liveness, "still out when the node stopped");
    s.read_pools = None;
    s.final_reads = Some(vec![FinalRead {
        request: "GET /api/v1/orders?limit=20".into(),
        answered: false,
        detail: "503: no read connection is free".into(),
    }]);
    assert_invalid(&h, &s, Invariant::Liveness, "did not answer GET /api/v1/orders");
}

#[test]
fn an_accepted_order_left_pending_is_a_liveness_violation() {
    let (mut h, mut s) = consistent();
    h.record(
        5,
        place("k8", None, 1),
        40,
        41,
        Told::order(202, "o8", OrderStatus::Pending),
    )
    .unwrap();
    let mut pending = order("o8", Some("k8"), None, OrderStatus::Pending, 1);
    pending.consumption.clear();
    s.orders.push(pending);
    assert_invalid(&h, &s, Invariant::Liveness, "order o8 is still pending");
    s.orders.pop();
    assert_invalid(&h, &s, Invariant::Liveness, "accepted (202), it does not exist");
}

#[test]
fn a_violation_the_audit_reported_is_invalid_and_no_audit_is_unknown() {
    let (h, mut s) = consistent();
    s.audit = Some(vec![AuditViolation {
        rule: "on-hand-equals-ledger".into(),
        subject: "ingredient Lemons (lemons)".into(),
        detail: "on_hand 106, ledger sum 105".into(),
    }]);
    assert_invalid(&h, &s, Invariant::Audit, "on-hand-equals-ledger");
    s.audit = None;
    assert_unknown(&h, &s, Invariant::Audit);
}
