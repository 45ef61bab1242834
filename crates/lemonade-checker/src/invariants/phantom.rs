//! No order that no client asked for: every order made during the run was told to a client
//! (its id in an answer) or carries a key a client sent, and one found by its key is what
//! that key's request asked for. A failed order without a key is only counted: a failed
//! saga lets go of its key, and a failed order took nothing.

use lemonade_domain::order::OrderStatus;

use super::{Context, as_asked};
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::Part;

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::NoPhantomOrders);
    let node = cx.state.node(Part::Orders);
    let mut untraced_failed = 0;
    for order in &cx.state.orders {
        if cx.before_run(&order.id) {
            continue;
        }
        f.checked();
        if cx.placements_by_order.contains_key(order.id.as_str()) {
            continue;
        }
        let asked = order
            .key
            .as_deref()
            .and_then(|k| cx.placements_by_key.get(k))
            .and_then(|ops| ops.first())
            .map(|&i| &cx.ops[i]);
        match asked {
            Some(op) => {
                if let Op::PlaceOrder { customer, lines, .. } = op.op()
                    && let Err(why) = as_asked(order, customer, lines)
                {
                    f.flag(Violation::at_op(
                        op.index(),
                        op.time_ms(),
                        node,
                        format!(
                            "order {} under this request's key is not what it asked: {why}",
                            order.id
                        ),
                    ));
                }
            }
            None if order.status == OrderStatus::Failed && order.key.is_none() => untraced_failed += 1,
            None => f.flag(Violation::on(
                node,
                Some(order.updated_at_ms),
                format!(
                    "{} order {} ({}): no client asked for it (no answer told its id, no request sent its key)",
                    order.status.as_str(),
                    order.id,
                    order.key.as_deref().map_or("no key".to_owned(), |k| format!("key {k}"))
                ),
            )),
        }
    }
    f.count("failed orders without a key, not traced", untraced_failed);
    f.report()
}
