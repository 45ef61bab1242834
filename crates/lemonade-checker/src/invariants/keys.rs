//! At most one order per idempotency key: among the orders stored under a key and the orders
//! any answer told for it, at most one did not fail (a failed saga lets go of its key, so a
//! retry may make a second order once the first failed). An order told for a key is stored
//! under that key, while the shop keeps it.

use std::collections::{BTreeMap, BTreeSet};

use lemonade_domain::order::OrderStatus;

use super::Context;
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::Part;

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::OneOrderPerKey);
    let node = cx.state.node(Part::Coordinator);
    let mut by_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for order in &cx.state.orders {
        if let Some(key) = &order.key
            && !cx.before_run(&order.id)
        {
            by_key.entry(key).or_default().insert(&order.id);
        }
    }
    for (key, placements) in &cx.placements_by_key {
        for &i in placements {
            let op = &cx.ops[i];
            let Some(told) = op.told().and_then(|t| t.order.as_ref()) else {
                continue;
            };
            by_key.entry(key).or_default().insert(&told.id);
            if let Some(stored) = cx.orders.get(told.id.as_str()).and_then(|o| o.key.as_deref())
                && stored != *key
            {
                f.flag(Violation::at_op(
                    op.index(),
                    op.time_ms(),
                    node,
                    format!(
                        "order {} was told for key {key}, it is stored under key {stored}",
                        told.id
                    ),
                ));
            }
        }
    }
    for (key, ids) in &by_key {
        f.checked();
        let live: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| cx.orders.get(id).is_some_and(|o| o.status != OrderStatus::Failed))
            .collect();
        if live.len() > 1 {
            let first = cx
                .placements_by_key
                .get(key)
                .and_then(|ops| ops.first())
                .map(|&i| &cx.ops[i]);
            let message = format!(
                "key {key} made {} orders that did not fail: {}",
                live.len(),
                live.join(", ")
            );
            f.flag(match first {
                Some(op) => Violation::at_op(op.index(), op.time_ms(), node, message),
                None => Violation::on(node, None, message),
            });
        }
    }
    let placements = cx
        .ops
        .iter()
        .filter(|o| matches!(o.op(), Op::PlaceOrder { .. }))
        .count();
    f.count("placements", placements as u64);
    f.report()
}
