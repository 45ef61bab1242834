//! A read of an order sees what was acknowledged before the read was asked (Jepsen's
//! real-time order: a write whose `ok` came before a read's invoke precedes it). After a
//! placement answered confirmed, a read finds the order confirmed, or cancelled when a cancel
//! of it was asked before the read's answer; after a cancel answered `ok`, it finds it
//! cancelled. Reads never go back either: a read invoked after another read of the order was
//! answered finds it as far on in its life (pending, then confirmed or failed, then
//! cancelled), and never missing after it was found. A read answered neither 200 nor 404
//! (a timeout, a 5xx) saw nothing and is not judged.

use lemonade_domain::order::OrderStatus;

use super::Context;
use crate::history::{Operation, Phase};
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::Part;

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::ReadsSeeWrites);
    let node = cx.state.node(Part::Orders);
    let mut unanswered = 0;
    for read in &cx.ops {
        let Op::ReadOrder { order } = read.op() else {
            continue;
        };
        let status = read.told().and_then(|t| t.http_status);
        let seen = match status {
            Some(200) => read.told().and_then(|t| t.order.as_ref()).map(|o| o.status),
            Some(404) => None,
            _ => {
                unanswered += 1;
                continue;
            }
        };
        f.checked();
        if let Some(before) = went_back(cx, order, read, seen) {
            f.flag(Violation::at_op(
                read.index(),
                read.time_ms(),
                node,
                format!(
                    "a read of order {order} found {}, after an earlier read found it {before}",
                    seen.map_or("no such order", OrderStatus::as_str)
                ),
            ));
            continue;
        }
        let Some(expected) = expected(cx, order, read) else {
            continue;
        };
        if !seen.is_some_and(|s| expected.contains(&s)) {
            let seen = seen.map_or("no such order", OrderStatus::as_str);
            let expected: Vec<_> = expected.iter().map(|s| s.as_str()).collect();
            f.flag(Violation::at_op(
                read.index(),
                read.time_ms(),
                node,
                format!(
                    "a read of order {order} found {seen}, after it was acknowledged {}",
                    expected.join(" or ")
                ),
            ));
        }
    }
    f.count("reads without an answer", unanswered);
    f.report()
}

/// What a read of `order` may find, given what was acknowledged before it was invoked;
/// `None` when nothing was.
fn expected(cx: &Context<'_>, order: &str, read: &Operation<'_>) -> Option<&'static [OrderStatus]> {
    let asked = read.invoke.index;
    let acked_before = |ops: Option<&Vec<usize>>, told: Option<OrderStatus>| {
        ops.into_iter().flatten().map(|&i| &cx.ops[i]).any(|op| {
            op.outcome() == Phase::Ok
                && op.completion.is_some_and(|c| c.index < asked)
                && told.is_none_or(|s| op.told().and_then(|t| t.order.as_ref()).is_some_and(|o| o.status == s))
        })
    };
    let cancels = cx.cancels_by_order.get(order);
    if acked_before(cancels, None) {
        return Some(&[OrderStatus::Cancelled]);
    }
    if !acked_before(cx.placements_by_order.get(order), Some(OrderStatus::Confirmed)) {
        return None;
    }
    // A cancel asked before the read's answer may have come first.
    let answered = read.index();
    let cancel_asked = cancels
        .into_iter()
        .flatten()
        .any(|&i| cx.ops[i].invoke.index < answered);
    Some(if cancel_asked {
        &[OrderStatus::Confirmed, OrderStatus::Cancelled]
    } else {
        &[OrderStatus::Confirmed]
    })
}

/// How far on in its life an order is: pending, then confirmed or failed, then cancelled.
fn stage(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::Pending => 0,
        OrderStatus::Confirmed | OrderStatus::Failed => 1,
        OrderStatus::Cancelled => 2,
    }
}

/// What an earlier read of `order` (answered before `read` was invoked) found that `seen`
/// goes back from, if any: it existed and now is missing, or it was further on in its life.
fn went_back(cx: &Context<'_>, order: &str, read: &Operation<'_>, seen: Option<OrderStatus>) -> Option<&'static str> {
    let asked = read.invoke.index;
    cx.reads_by_order
        .get(order)
        .into_iter()
        .flatten()
        .map(|&i| &cx.ops[i])
        .filter(|earlier| earlier.completion.is_some_and(|c| c.index < asked))
        .filter(|earlier| earlier.told().and_then(|t| t.http_status) == Some(200))
        .filter_map(|earlier| earlier.told().and_then(|t| t.order.as_ref()).map(|o| o.status))
        .find(|&before| seen.is_none_or(|now| stage(now) < stage(before)))
        .map(OrderStatus::as_str)
}
