//! Points per customer equal what their confirmed (not cancelled) orders earned, by the
//! domain's rule (`lemonade_domain::order::points_earned`); an erased customer holds none
//! (the erasure forfeits them). Where the store keeps a points ledger, each order's points
//! are awarded at most once, as the rule says, and taken back at most once, only for a
//! cancelled order, exactly what was awarded.

use std::collections::BTreeMap;

use lemonade_domain::customer::ActivityKind;
use lemonade_domain::ids::CustomerId;
use lemonade_domain::order::{OrderStatus, points_earned};
use lemonade_domain::values::Money;

use super::Context;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::{OrderState, Part};

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::PointsMatchOrders);
    let rule = cx.state.minor_units_per_point;
    if rule == 0 {
        f.unknown("the state gives no points rule (minor_units_per_point is 0)");
        return f.report();
    }
    let node = cx.state.node(Part::Crm);
    let mut earned: BTreeMap<&str, u64> = BTreeMap::new();
    let mut pending: BTreeMap<&str, u64> = BTreeMap::new();
    for order in &cx.state.orders {
        let Some(customer) = order.customer.as_deref() else {
            continue;
        };
        match order.status {
            OrderStatus::Confirmed => match earns(order, rule) {
                Some(points) => *earned.entry(customer).or_insert(0) += points,
                None => f.unknown(format!("order {}'s customer {customer} cannot be an id", order.id)),
            },
            OrderStatus::Pending => *pending.entry(customer).or_insert(0) += 1,
            OrderStatus::Failed | OrderStatus::Cancelled => {}
        }
    }
    let mut skipped = 0;
    for customer in &cx.state.customers {
        f.checked();
        let id = customer.id.as_str();
        let expected = earned.get(id).copied().unwrap_or(0);
        if customer.erased {
            if customer.points != 0 {
                f.flag(Violation::on(
                    node,
                    None,
                    format!("customer {id} was erased and holds {} points", customer.points),
                ));
            }
        } else if pending.contains_key(id) {
            skipped += 1;
        } else if customer.points != expected {
            f.flag(Violation::on(
                node,
                None,
                format!(
                    "customer {id}: points {}, their confirmed orders earned {expected}",
                    customer.points
                ),
            ));
        }
    }
    f.count("customers with pending orders, not judged", skipped);
    match &cx.state.points_ledger {
        Some(_) => ledger(cx, rule, &mut f),
        None => f.count("points ledger not given", 1),
    }
    f.report()
}

/// What `order` earns by the domain's rule, `None` if its customer cannot be an id.
fn earns(order: &OrderState, rule: u64) -> Option<u64> {
    let customer = CustomerId::parse(order.customer.as_deref()?)?;
    Some(points_earned(Some(&customer), Money::from_stored(order.total), rule))
}

/// Each order's award and take-back in the points ledger: at most one each, as the rule says.
fn ledger(cx: &Context<'_>, rule: u64, f: &mut Findings) {
    let node = cx.state.node(Part::Crm);
    let mut per_order: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    for entry in cx.state.points_ledger.iter().flatten() {
        if let (Some(order), ActivityKind::OrderPlaced | ActivityKind::OrderCancelled) = (&entry.order, entry.kind) {
            per_order
                .entry((order, entry.kind.as_str()))
                .or_default()
                .push(entry.delta);
        }
    }
    for ((id, kind), deltas) in &per_order {
        if deltas.len() > 1 {
            f.flag(Violation::on(
                node,
                None,
                format!("order {id}: {} × {kind}, at most one", deltas.len()),
            ));
        }
        let order = cx.orders.get(id);
        let award = order.and_then(|o| earns(o, rule)).unwrap_or(0) as i64;
        match kind {
            placed if *placed == ActivityKind::OrderPlaced.as_str() && deltas[0] != award && order.is_some() => {
                f.flag(Violation::on(
                    node,
                    None,
                    format!("order {id}: awarded {} points, it earns {award}", deltas[0]),
                ))
            }
            cancelled if *cancelled == ActivityKind::OrderCancelled.as_str() => {
                if order.is_some_and(|o| o.status != OrderStatus::Cancelled) {
                    f.flag(Violation::on(
                        node,
                        None,
                        format!("order {id}: points taken back, the order is not cancelled"),
                    ));
                }
                let awarded = per_order
                    .get(&(*id, ActivityKind::OrderPlaced.as_str()))
                    .map_or(0, |d| d[0]);
                if deltas[0] != -awarded {
                    f.flag(Violation::on(
                        node,
                        None,
                        format!("order {id}: took back {} points, {awarded} were awarded", -deltas[0]),
                    ));
                }
            }
            _ => {}
        }
    }
}
