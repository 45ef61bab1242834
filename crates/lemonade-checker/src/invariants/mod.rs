//! The invariants, each a function over the history and the final state (issue 12's list),
//! one module each, and what they share: the history's operations indexed by order and key.

mod acknowledged;
mod audit;
mod erasures;
mod indefinite;
mod keys;
mod liveness;
mod phantom;
mod points;
mod reads;
mod stock;

use std::collections::BTreeMap;

use crate::history::{History, Operation, Phase};
use crate::op::{Line, Op};
use crate::report::Reports;
use crate::state::{FinalState, OrderState};

/// Checks every invariant of `history` against `state`; one report per invariant, in
/// [`crate::Invariant::ALL`]'s order.
pub fn check(history: &History, state: &FinalState) -> Reports {
    let cx = Context::new(history, state);
    Reports(vec![
        stock::check(&cx),
        acknowledged::check(&cx),
        keys::check(&cx),
        phantom::check(&cx),
        indefinite::check(&cx),
        points::check(&cx),
        erasures::check(&cx),
        reads::check(&cx),
        liveness::check(&cx),
        audit::check(&cx),
    ])
}

/// The history and the state, with the lookups several invariants make.
pub(crate) struct Context<'a> {
    pub state: &'a FinalState,
    /// Every operation, in the order of their invokes.
    pub ops: Vec<Operation<'a>>,
    /// Every stored order, by id.
    pub orders: BTreeMap<&'a str, &'a OrderState>,
    /// The stored orders under each idempotency key.
    pub orders_by_key: BTreeMap<&'a str, Vec<&'a OrderState>>,
    /// The placements (indexes into `ops`) that sent each idempotency key.
    pub placements_by_key: BTreeMap<&'a str, Vec<usize>>,
    /// The placements whose answer told each order id.
    pub placements_by_order: BTreeMap<&'a str, Vec<usize>>,
    /// The cancels of each order id.
    pub cancels_by_order: BTreeMap<&'a str, Vec<usize>>,
    /// The reads of each order id.
    pub reads_by_order: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Context<'a> {
    fn new(history: &'a History, state: &'a FinalState) -> Context<'a> {
        let ops = history.operations();
        let mut cx = Context {
            state,
            orders: state.orders.iter().map(|o| (o.id.as_str(), o)).collect(),
            orders_by_key: BTreeMap::new(),
            placements_by_key: BTreeMap::new(),
            placements_by_order: BTreeMap::new(),
            cancels_by_order: BTreeMap::new(),
            reads_by_order: BTreeMap::new(),
            ops: Vec::new(),
        };
        for (i, op) in ops.iter().enumerate() {
            match op.op() {
                Op::PlaceOrder { key, .. } => {
                    if let Some(key) = key {
                        cx.placements_by_key.entry(key).or_default().push(i);
                    }
                    if let Some(told) = op.told().and_then(|t| t.order.as_ref()) {
                        cx.placements_by_order.entry(&told.id).or_default().push(i);
                    }
                }
                Op::CancelOrder { order } => cx.cancels_by_order.entry(order).or_default().push(i),
                Op::ReadOrder { order } => cx.reads_by_order.entry(order).or_default().push(i),
                _ => {}
            }
        }
        for order in &state.orders {
            if let Some(key) = &order.key {
                cx.orders_by_key.entry(key).or_default().push(order);
            }
        }
        cx.ops = ops;
        cx
    }

    /// Whether order `id` existed before the run (the baseline's).
    pub fn before_run(&self, id: &str) -> bool {
        self.state.baseline.orders.contains(id)
    }

    /// Whether some cancel of `order` ended `phase`.
    pub fn cancel_ended(&self, order: &str, phase: Phase) -> bool {
        self.cancels_by_order
            .get(order)
            .is_some_and(|ops| ops.iter().any(|&i| self.ops[i].outcome() == phase))
    }
}

/// Whether a stored order is what a placement asked for: its customer and its lines (in any
/// order: the shop refuses a product named twice).
pub(crate) fn as_asked(order: &OrderState, customer: &Option<String>, lines: &[Line]) -> Result<(), String> {
    if order.customer != *customer {
        return Err(format!(
            "customer {:?}, the request named {:?}",
            order.customer, customer
        ));
    }
    let mut stored = order.lines.clone();
    let mut asked = lines.to_vec();
    stored.sort();
    asked.sort();
    if stored != asked {
        return Err(format!("lines {stored:?}, the request asked for {asked:?}"));
    }
    Ok(())
}
