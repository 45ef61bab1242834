//! Every acknowledged order exists and ends as its client was told: a placement answered
//! `ok` made the order it named, as asked (customer and lines), and that order ends
//! confirmed, or cancelled when a cancel of it was acknowledged (either, when a cancel's
//! outcome is unknown); a cancel answered `ok` left its order cancelled. A refusal (`fail`)
//! is an answer too, "definitely not applied": a key whose every placement was refused has
//! no order that did not fail, and an order whose every cancel was refused is not cancelled.

use lemonade_domain::ShopError;
use lemonade_domain::order::OrderStatus;

use super::{Context, as_asked};
use crate::history::{Operation, Phase};
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::Part;

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::OrdersAcknowledged);
    let node = cx.state.node(Part::Orders);
    let mut without_id = 0;
    for op in &cx.ops {
        if op.outcome() == Phase::Fail {
            refused_not_applied(cx, op, &mut f);
            continue;
        }
        if op.outcome() != Phase::Ok {
            continue;
        }
        let flag =
            |f: &mut Findings, message: String| f.flag(Violation::at_op(op.index(), op.time_ms(), node, message));
        match op.op() {
            Op::PlaceOrder { customer, lines, .. } => {
                f.checked();
                let Some(told) = op.told().and_then(|t| t.order.as_ref()) else {
                    without_id += 1;
                    continue;
                };
                let Some(order) = cx.orders.get(told.id.as_str()) else {
                    flag(
                        &mut f,
                        format!(
                            "order {} was acknowledged {}, it does not exist",
                            told.id,
                            told.status.as_str()
                        ),
                    );
                    continue;
                };
                let allowed = ends_as(cx, &told.id, told.status);
                if !allowed.contains(&order.status) {
                    flag(
                        &mut f,
                        format!(
                            "order {} was acknowledged {}, it ends {} (may end {})",
                            told.id,
                            told.status.as_str(),
                            order.status.as_str(),
                            allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
                        ),
                    );
                }
                if let Err(why) = as_asked(order, customer, lines) {
                    flag(&mut f, format!("order {} is not what was asked: {why}", told.id));
                }
            }
            Op::CancelOrder { order: id } => {
                f.checked();
                match cx.orders.get(id.as_str()) {
                    None => flag(
                        &mut f,
                        format!("order {id}'s cancel was acknowledged, the order does not exist"),
                    ),
                    Some(order) if order.status != OrderStatus::Cancelled => flag(
                        &mut f,
                        format!(
                            "order {id}'s cancel was acknowledged, it ends {}",
                            order.status.as_str()
                        ),
                    ),
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    f.count("ok placements without an order id", without_id);
    f.report()
}

/// A refused placement or cancel did nothing, unless another request with the same key
/// (placement) or for the same order (cancel) was not refused. And a retry is told what its
/// key already did: a placement refused (for anything but "in progress") after an earlier
/// try with its key, whose order ends other than failed, should have replayed that order.
fn refused_not_applied(cx: &Context<'_>, op: &Operation<'_>, f: &mut Findings) {
    refused_retry(cx, op, f);
    let node = cx.state.node(Part::Orders);
    let all_refused = |ops: Option<&Vec<usize>>| ops.into_iter().flatten().all(|&i| cx.ops[i].outcome() == Phase::Fail);
    let applied = match op.op() {
        Op::PlaceOrder { key: Some(key), .. } if all_refused(cx.placements_by_key.get(key.as_str())) => cx
            .orders_by_key
            .get(key.as_str())
            .into_iter()
            .flatten()
            .find(|o| o.status != OrderStatus::Failed)
            .map(|o| {
                format!(
                    "placement with key {key} was refused, yet {} order {} has its key",
                    o.status.as_str(),
                    o.id
                )
            }),
        Op::CancelOrder { order } if all_refused(cx.cancels_by_order.get(order.as_str())) => cx
            .orders
            .get(order.as_str())
            .filter(|o| o.status == OrderStatus::Cancelled)
            .map(|o| format!("every cancel of order {} was refused, yet it is cancelled", o.id)),
        _ => None,
    };
    if let Some(message) = applied {
        f.checked();
        f.flag(Violation::at_op(op.index(), op.time_ms(), node, message));
    }
}

/// The statuses an order told `status` may end in, given the cancels of it.
fn ends_as(cx: &Context<'_>, id: &str, status: OrderStatus) -> Vec<OrderStatus> {
    use OrderStatus::*;
    let cancelled = cx.cancel_ended(id, Phase::Ok);
    let maybe_cancelled = cx.cancel_ended(id, Phase::Info);
    match status {
        Confirmed | Pending if cancelled => vec![Cancelled],
        Confirmed if maybe_cancelled => vec![Confirmed, Cancelled],
        Confirmed => vec![Confirmed],
        // A placement answered ok but pending (not the API's way: 202 is info) may still
        // have ended either way.
        Pending if maybe_cancelled => vec![Confirmed, Failed, Cancelled],
        Pending => vec![Confirmed, Failed],
        Failed => vec![Failed],
        Cancelled => vec![Cancelled],
    }
}

/// A refused retry of a key whose earlier try made an order that did not fail: the refusal
/// hid that order from its client, who was told nothing was placed.
fn refused_retry(cx: &Context<'_>, op: &Operation<'_>, f: &mut Findings) {
    let Op::PlaceOrder { key: Some(key), .. } = op.op() else {
        return;
    };
    if op
        .told()
        .and_then(|t| t.error.as_deref())
        // "Another request with this key is still being carried out": the one refusal a
        // retry may get while its key's order exists.
        .is_some_and(|e| e.ends_with(ShopError::RequestInProgress.code()))
    {
        return;
    }
    let earlier_try = cx
        .placements_by_key
        .get(key.as_str())
        .into_iter()
        .flatten()
        .any(|&i| cx.ops[i].index() < op.index());
    if !earlier_try {
        return;
    }
    let live = cx
        .orders_by_key
        .get(key.as_str())
        .into_iter()
        .flatten()
        .find(|o| o.status != OrderStatus::Failed);
    if let Some(order) = live {
        f.checked();
        f.flag(Violation::at_op(
            op.index(),
            op.time_ms(),
            cx.state.node(Part::Orders),
            format!(
                "a retry with key {key} was refused ({}), yet an earlier try made order {}, which ends {}: a retry is told what its key did",
                op.told().and_then(|t| t.error.as_deref()).unwrap_or("no problem type"),
                order.id,
                order.status.as_str()
            ),
        ));
    }
}
