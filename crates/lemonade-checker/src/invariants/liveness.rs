//! Liveness, once the faults are healed and the shop had time to settle: no saga running or
//! compensating, no reservation held, every outbox event delivered, no order pending (so
//! every order answered 202 ended confirmed, failed or cancelled, and exists), every breaker
//! closed, every read pool whole (no permit without its connection; every connection back
//! at the clean stop), and the healed shop answering its final reads. Unknown when the
//! breaker states were not given and nothing else is wrong; the pools and final reads are
//! judged when given.

use lemonade_domain::order::OrderStatus;

use super::Context;
use crate::history::Phase;
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::{BreakerPhase, Part};

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::Liveness);
    let state = cx.state;
    for saga in &state.open_sagas {
        f.checked();
        f.flag(Violation::on(
            state.node(Part::Coordinator),
            Some(saga.updated_at_ms),
            format!("the saga of order {} is still {}", saga.order, saga.phase),
        ));
    }
    for held in &state.held_reservations {
        f.checked();
        f.flag(Violation::on(
            state.node(Part::Stock),
            None,
            format!(
                "the reservation of order {} is still held (lease until {} ms)",
                held.order, held.expires_at_ms
            ),
        ));
    }
    for event in &state.undelivered_events {
        f.checked();
        f.flag(Violation::on(
            &event.node,
            None,
            format!("event {} to {} was never delivered", event.id, event.destination),
        ));
    }
    for order in &state.orders {
        f.checked();
        if order.status == OrderStatus::Pending {
            f.flag(Violation::on(
                state.node(Part::Orders),
                Some(order.updated_at_ms),
                format!("order {} is still pending", order.id),
            ));
        }
    }
    for op in &cx.ops {
        let accepted = op
            .told()
            .and_then(|t| t.order.as_ref())
            .filter(|o| o.status == OrderStatus::Pending);
        if let (Op::PlaceOrder { .. }, Phase::Info, Some(told)) = (op.op(), op.outcome(), accepted)
            && !cx.orders.contains_key(told.id.as_str())
        {
            f.flag(Violation::at_op(
                op.index(),
                op.time_ms(),
                state.node(Part::Orders),
                format!("order {} was accepted (202), it does not exist", told.id),
            ));
        }
    }
    match &state.breakers {
        None => f.unknown("the breakers' states were not given"),
        Some(breakers) => {
            for b in breakers {
                f.checked();
                if b.phase != BreakerPhase::Closed {
                    f.flag(Violation::on(
                        &b.node,
                        None,
                        format!("the breaker for {} is {:?}", b.target, b.phase),
                    ));
                }
            }
        }
    }
    for pool in state.read_pools.iter().flatten() {
        f.checked();
        if pool.strays > 0 {
            f.flag(Violation::on(
                &pool.node,
                None,
                format!(
                    "the read pool gave {} permit(s) without a connection (a connection lent twice, or a permit freed while its connection was out)",
                    pool.strays
                ),
            ));
        }
        if pool.returned_at_stop == Some(false) {
            f.flag(Violation::on(
                &pool.node,
                None,
                "a read connection was still out when the node stopped, with nothing left to read",
            ));
        }
    }
    for read in state.final_reads.iter().flatten() {
        f.checked();
        if !read.answered {
            f.flag(Violation::on(
                state.node(Part::Coordinator),
                None,
                format!("the healed shop did not answer {}: {}", read.request, read.detail),
            ));
        }
    }
    f.report()
}
