//! Stock is conserved per ingredient: final on-hand = initial + restocks − waste ± counts −
//! what confirmed (not cancelled) orders took by their recipes; the ledger replayed from the
//! initial on-hand never went below zero and sums to the final on-hand; every adjustment
//! a client was told was written (its move id) is in the ledger as asked; and every
//! adjustment of an ingredient older than the run is one a client asked for, once.

use std::collections::{BTreeMap, BTreeSet};

use lemonade_domain::order::OrderStatus;
use lemonade_domain::stock::MoveReason;

use super::Context;
use crate::history::Phase;
use crate::op::Op;
use crate::report::{Findings, Invariant, Report, Violation};
use crate::state::{IngredientState, LedgerMove, Part};

pub(crate) fn check(cx: &Context<'_>) -> Report {
    let mut f = Findings::new(Invariant::StockConserved);
    let node = cx.state.node(Part::Stock);
    let taken = taken_by_orders(cx);
    let known: BTreeSet<&str> = cx.state.ingredients.iter().map(|i| i.id.as_str()).collect();
    for (ingredient, quantity) in &taken {
        if !known.contains(ingredient) {
            f.flag(Violation::on(
                node,
                None,
                format!("confirmed orders took {quantity} of ingredient {ingredient}, which the stock does not have"),
            ));
        }
    }
    for ingredient in &cx.state.ingredients {
        f.checked();
        conserved(
            cx,
            ingredient,
            taken.get(ingredient.id.as_str()).copied().unwrap_or(0),
            &mut f,
        );
    }
    acknowledged_moves_written(cx, &mut f);
    adjustments_asked_for(cx, &mut f);
    f.report()
}

/// What the run's confirmed orders took, per ingredient, by their recipes.
fn taken_by_orders<'a>(cx: &Context<'a>) -> BTreeMap<&'a str, u64> {
    let mut taken = BTreeMap::new();
    for order in cx.state.orders.iter() {
        if order.status != OrderStatus::Confirmed || cx.before_run(&order.id) {
            continue;
        }
        for (ingredient, quantity) in &order.consumption {
            *taken.entry(ingredient.as_str()).or_insert(0u64) += quantity;
        }
    }
    taken
}

fn conserved(cx: &Context<'_>, ingredient: &IngredientState, taken: u64, f: &mut Findings) {
    let node = cx.state.node(Part::Stock);
    let id = &ingredient.id;
    let mut balance = ingredient.initial_on_hand;
    let mut below_zero = false;
    let mut by_kind: BTreeMap<&str, i64> = BTreeMap::new();
    for m in &ingredient.moves {
        if let Some(order) = &m.order
            && cx.before_run(order)
        {
            f.unknown(format!(
                "order {order}, older than the run, moved stock of {id} during it (move {})",
                m.seq
            ));
        }
        balance += m.delta;
        if balance < 0 && !below_zero {
            below_zero = true;
            f.flag(Violation::on(
                node,
                Some(m.at_ms),
                format!(
                    "ingredient {id}: the ledger went below zero ({balance}) at move {}",
                    m.seq
                ),
            ));
        }
        if m.order.is_none() {
            *by_kind.entry(m.kind.as_str()).or_insert(0) += m.delta;
        }
    }
    let staff: i64 = by_kind.values().sum();
    let expected = ingredient.initial_on_hand + staff - taken as i64;
    let last_ms = ingredient.moves.last().map(|m| m.at_ms);
    if ingredient.final_on_hand != expected {
        let kind = |k: MoveReason| by_kind.get(k.as_str()).copied().unwrap_or(0);
        f.flag(Violation::on(
            node,
            last_ms,
            format!(
                "ingredient {id}: on-hand {}, expected {expected} = initial {} + restocks {} + waste {} + counts {} − confirmed orders took {taken}",
                ingredient.final_on_hand,
                ingredient.initial_on_hand,
                kind(MoveReason::Restock),
                kind(MoveReason::Waste),
                kind(MoveReason::Count)
            ),
        ));
    }
    if ingredient.final_on_hand != balance {
        f.flag(Violation::on(
            node,
            last_ms,
            format!(
                "ingredient {id}: on-hand {}, its ledger sums to {balance}",
                ingredient.final_on_hand
            ),
        ));
    }
}

/// Every adjustment answered `ok` with a move id is that move of the ledger, as asked.
fn acknowledged_moves_written(cx: &Context<'_>, f: &mut Findings) {
    let node = cx.state.node(Part::Stock);
    let moves: BTreeMap<i64, (&str, &LedgerMove)> = cx
        .state
        .ingredients
        .iter()
        .flat_map(|i| i.moves.iter().map(move |m| (m.seq, (i.id.as_str(), m))))
        .collect();
    for op in &cx.ops {
        let (ingredient, kind, delta) = match op.op() {
            Op::Restock {
                ingredient, quantity, ..
            } => (ingredient, MoveReason::Restock, Some(*quantity as i64)),
            Op::Waste {
                ingredient, quantity, ..
            } => (ingredient, MoveReason::Waste, Some(-(*quantity as i64))),
            Op::Count { ingredient, .. } => (ingredient, MoveReason::Count, None),
            _ => continue,
        };
        let Some(move_id) = op.told().and_then(|t| t.move_id.as_deref()) else {
            continue;
        };
        if op.outcome() != Phase::Ok {
            continue;
        }
        let name = op.op().name();
        let found = move_id.parse::<i64>().ok().and_then(|seq| moves.get(&seq));
        let wrong = match found {
            None => Some(format!(
                "{name} of {ingredient} acknowledged as move {move_id}, not in the run's ledger"
            )),
            Some((at, m)) if *at != ingredient || m.kind != kind || delta.is_some_and(|d| d != m.delta) => {
                Some(format!(
                    "{name} of {ingredient} acknowledged as move {move_id}, which is a {} of {} on {at}",
                    m.kind.as_str(),
                    m.delta
                ))
            }
            Some(_) => None,
        };
        if let Some(message) = wrong {
            f.flag(Violation::at_op(op.index(), op.time_ms(), node, message));
        }
    }
}

/// Every restock, waste and count move of the run, of an ingredient older than the run, was
/// asked for once: by an operation not refused that was told its move id, or that gave its
/// note (one move per such operation), or else one of the operations that can be traced by
/// neither (answered without a move id, or unanswered without a note), at most one move
/// each. More moves than that is an adjustment applied twice, or one nobody asked for.
fn adjustments_asked_for(cx: &Context<'_>, f: &mut Findings) {
    let node = cx.state.node(Part::Stock);
    for ingredient in &cx.state.ingredients {
        if !cx.state.baseline.ingredients.contains(&ingredient.id) {
            continue;
        }
        for kind in [MoveReason::Restock, MoveReason::Waste, MoveReason::Count] {
            let (mut by_id, mut by_note, mut untraceable) = (BTreeSet::new(), BTreeMap::new(), 0u64);
            for op in &cx.ops {
                let note = match (op.op(), kind) {
                    (
                        Op::Restock {
                            ingredient: i, note, ..
                        },
                        MoveReason::Restock,
                    )
                    | (
                        Op::Waste {
                            ingredient: i, note, ..
                        },
                        MoveReason::Waste,
                    )
                    | (
                        Op::Count {
                            ingredient: i, note, ..
                        },
                        MoveReason::Count,
                    ) if *i == ingredient.id => note,
                    _ => continue,
                };
                if op.outcome() == Phase::Fail {
                    continue;
                }
                match (op.told().and_then(|t| t.move_id.as_deref()), note) {
                    (Some(id), _) => {
                        by_id.insert(id.parse::<i64>().unwrap_or(-1));
                    }
                    (None, Some(note)) => *by_note.entry(note.as_str()).or_insert(0u64) += 1,
                    (None, None) => untraceable += 1,
                }
            }
            let mut unasked = Vec::new();
            for m in ingredient.moves.iter().filter(|m| m.kind == kind && m.order.is_none()) {
                if by_id.contains(&m.seq) {
                    continue;
                }
                match m.note.as_deref().and_then(|n| by_note.get_mut(n)) {
                    Some(left) if *left > 0 => *left -= 1,
                    _ => unasked.push(m),
                }
            }
            if unasked.len() as u64 > untraceable {
                let first = unasked[untraceable as usize];
                f.flag(Violation::on(
                    node,
                    Some(first.at_ms),
                    format!(
                        "ingredient {}: {} {} moves, {} more than the operations that may have made them (first: move {})",
                        ingredient.id,
                        unasked.len(),
                        kind.as_str(),
                        unasked.len() as u64 - untraceable,
                        first.seq
                    ),
                ));
            }
        }
    }
}
