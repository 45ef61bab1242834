//! Each unknown (`info`, or never completed) operation resolved from the final state as
//! applied or not applied, and counted (TigerBeetle's "indefinite" count):
//!
//! - a placement: applied if an order it made (by the id an answer told, or its key) is
//!   confirmed or cancelled; not applied if there is none or it failed; unresolved (a
//!   violation) if it is still pending; indefinite without a key or an id;
//! - a cancel: applied if the order is cancelled, not applied if it is not; unresolved while
//!   it is pending;
//! - a restock, waste or count with a note: applied if a move of its kind with that note is
//!   in the ingredient's ledger (so a client that wants its adjustments resolved gives each a
//!   unique note, in the form the shop stores: plain ASCII, no outer spaces); indefinite
//!   without a note;
//! - an erasure: applied if the customer is erased;
//! - creating or updating a customer: indefinite (the state holds no names).

use lemonade_domain::order::OrderStatus;

use super::Context;
use crate::history::{Operation, Phase};
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::Part;

/// What became of an unknown operation.
enum Resolution {
    Applied,
    NotApplied,
    /// The final state cannot tell (the operation carries nothing to find it by).
    Indefinite,
    /// It should be decided by now and is not: why.
    Unresolved(String),
}

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::IndefiniteResolved);
    let node = cx.state.node(Part::Orders);
    let (mut applied, mut not_applied, mut indefinite) = (0, 0, 0);
    for op in cx.ops.iter().filter(|o| o.outcome() == Phase::Info && o.op().writes()) {
        f.checked();
        match resolve(cx, op) {
            Resolution::Applied => applied += 1,
            Resolution::NotApplied => not_applied += 1,
            Resolution::Indefinite => indefinite += 1,
            Resolution::Unresolved(why) => f.flag(Violation::at_op(
                op.index(),
                op.time_ms(),
                node,
                format!("{} unresolved: {why}", op.op().name()),
            )),
        }
    }
    f.count("applied", applied);
    f.count("not applied", not_applied);
    f.count("indefinite", indefinite);
    f.report()
}

fn resolve(cx: &Context<'_>, op: &Operation<'_>) -> Resolution {
    match op.op() {
        Op::PlaceOrder { key, .. } => placement(cx, op, key.as_deref()),
        Op::CancelOrder { order } => match cx.orders.get(order.as_str()).map(|o| o.status) {
            Some(OrderStatus::Cancelled) => Resolution::Applied,
            Some(OrderStatus::Pending) => Resolution::Unresolved(format!("order {order} is still pending")),
            Some(_) | None => Resolution::NotApplied,
        },
        Op::Restock { ingredient, note, .. }
        | Op::Waste { ingredient, note, .. }
        | Op::Count { ingredient, note, .. } => {
            let Some(note) = note else {
                return Resolution::Indefinite;
            };
            let kind = match op.op() {
                Op::Restock { .. } => "restock",
                Op::Waste { .. } => "waste",
                _ => "count",
            };
            let found = cx
                .state
                .ingredients
                .iter()
                .filter(|i| i.id == *ingredient)
                .flat_map(|i| &i.moves)
                .any(|m| m.order.is_none() && m.kind.as_str() == kind && m.note.as_deref() == Some(note));
            if found {
                Resolution::Applied
            } else {
                Resolution::NotApplied
            }
        }
        Op::EraseCustomer { customer } => {
            let erased = cx.state.customers.iter().any(|c| c.id == *customer && c.erased);
            if erased {
                Resolution::Applied
            } else {
                Resolution::NotApplied
            }
        }
        Op::CreateCustomer { .. } | Op::UpdateCustomer { .. } => Resolution::Indefinite,
        Op::ReadOrder { .. } => unreachable!("a read has no outcome to resolve (filtered by `Op::writes`)"),
    }
}

/// A placement: the orders it may have made are the one its answer named and every order of
/// its key (stored under it, or told to another request with it).
fn placement(cx: &Context<'_>, op: &Operation<'_>, key: Option<&str>) -> Resolution {
    let mut ids: Vec<&str> = op
        .told()
        .and_then(|t| t.order.as_ref())
        .map(|o| o.id.as_str())
        .into_iter()
        .collect();
    if let Some(key) = key {
        ids.extend(
            cx.state
                .orders
                .iter()
                .filter(|o| o.key.as_deref() == Some(key))
                .map(|o| o.id.as_str()),
        );
        for &i in cx.placements_by_key.get(key).into_iter().flatten() {
            ids.extend(cx.ops[i].told().and_then(|t| t.order.as_ref()).map(|o| o.id.as_str()));
        }
    }
    if ids.is_empty() && key.is_none() {
        return Resolution::Indefinite;
    }
    let statuses: Vec<(&str, OrderStatus)> = ids
        .iter()
        .filter_map(|id| cx.orders.get(id).map(|o| (*id, o.status)))
        .collect();
    if let Some((id, _)) = statuses.iter().find(|(_, s)| *s == OrderStatus::Pending) {
        return Resolution::Unresolved(format!("order {id} is still pending"));
    }
    if statuses
        .iter()
        .any(|(_, s)| matches!(s, OrderStatus::Confirmed | OrderStatus::Cancelled))
    {
        Resolution::Applied
    } else {
        Resolution::NotApplied
    }
}
