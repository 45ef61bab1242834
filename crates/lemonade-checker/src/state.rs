//! What the checker needs from the shop's databases once the run is over: the ledger, the
//! orders, the customers and their points, what is still in flight, and what the audit
//! found. Plain data (serde), so a chaos run can write it beside its history; read from a
//! stopped shop's data folder by [`crate::read`]. Ids are as stored.

use std::collections::{BTreeMap, BTreeSet};

use lemonade_domain::customer::ActivityKind;
use lemonade_domain::order::OrderStatus;
use lemonade_domain::stock::MoveReason;
use serde::{Deserialize, Serialize};

use crate::op::Line;

/// Which shop the state was read from, which names the node that holds each part: the
/// store's own (`lemonade_store::audit::Layout`).
pub use lemonade_store::audit::Layout;

/// A part of the shop, owned by one node of the distributed mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Stock,
    Orders,
    Crm,
    Coordinator,
}

/// What existed before the run the history records: the ledger up to a move, and the orders
/// then. The checker judges only what came after (the run's moves and orders).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// The sequence number of the last ledger move before the run (0: none).
    pub ledger_seq: i64,
    /// The orders that existed before the run.
    pub orders: BTreeSet<String>,
    /// The ingredients that existed before the run: only their adjustments are traced to
    /// the history's (an ingredient created during the run has an opening move no
    /// operation of the history made).
    #[serde(default)]
    pub ingredients: BTreeSet<String>,
}

/// One move of the ledger (`stock_moves`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerMove {
    /// Its sequence number: the order moves were written in.
    pub seq: i64,
    pub kind: MoveReason,
    /// Signed, in the ingredient's unit: sales and waste are negative.
    pub delta: i64,
    /// The order of a sale or cancel move.
    pub order: Option<String>,
    pub note: Option<String>,
    /// When it was written, in ms of the node's clock.
    pub at_ms: i64,
}

/// One ingredient: its on-hand before the run, the run's moves in order, and its on-hand after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngredientState {
    pub id: String,
    /// On-hand after the baseline's last move (the sum of the moves up to it).
    pub initial_on_hand: i64,
    /// The moves after the baseline, in `seq` order.
    pub moves: Vec<LedgerMove>,
    /// On-hand as stored at the end.
    pub final_on_hand: i64,
}

/// One order as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub id: String,
    /// The client's idempotency key, while the shop keeps it (the monolith's
    /// `idempotency_keys`, the coordinator's saga log; a failed saga lets go of its key).
    pub key: Option<String>,
    pub customer: Option<String>,
    pub status: OrderStatus,
    /// In minor units.
    pub total: i64,
    /// The points it holds, as stored.
    pub points: u64,
    pub lines: Vec<Line>,
    /// What its lines take from stock by the recipe versions they were sold with, per
    /// ingredient: what a confirmed order took.
    pub consumption: BTreeMap<String, u64>,
    /// When it last changed, in ms of the node's clock.
    pub updated_at_ms: i64,
}

/// One customer as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerState {
    pub id: String,
    pub points: u64,
    /// Anonymised (`DELETE /customers/{id}`): the points were forfeited.
    pub erased: bool,
}

/// One entry of a customer's points ledger (their activity, `customer_activity`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsEntry {
    pub customer: String,
    pub kind: ActivityKind,
    pub order: Option<String>,
    pub delta: i64,
    pub at_ms: i64,
}

/// A saga of the coordinator not finished: `running` or `compensating`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSaga {
    pub order: String,
    pub phase: String,
    pub updated_at_ms: i64,
}

/// A reservation of the stock service still `held`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldReservation {
    pub order: String,
    pub expires_at_ms: i64,
}

/// An event of a node's outbox not delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliveredEvent {
    /// The node whose outbox holds it.
    pub node: String,
    pub id: String,
    pub destination: String,
}

/// A circuit breaker's state, as its node reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPhase {
    Closed,
    Open,
    HalfOpen,
}

/// One node's breaker for the calls to one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerState {
    pub node: String,
    pub target: String,
    pub phase: BreakerPhase,
}

/// One node's pool of read connections, as its process saw it: whole when every permit
/// came with an idle connection, and every connection came back by the node's clean stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPoolState {
    pub node: String,
    /// Reads refused because their permit came without an idle connection (a connection
    /// lent twice, or a permit freed while its connection was out), over all of the node's
    /// runs, crashed ones included.
    pub strays: u64,
    /// Whether every read connection was back in the pool when the node stopped cleanly at
    /// the end; `None` if it did not stop cleanly.
    pub returned_at_stop: Option<bool>,
}

/// A read asked of the healed shop at the end, as Jepsen's final reads are: the shop must
/// answer it again, whatever the faults did to its pools and breakers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    /// What was asked, e.g. `GET /api/v1/orders?limit=20`.
    pub request: String,
    /// Whether the answer was what a healthy shop gives (2xx; for health, every
    /// dependency ok).
    pub answered: bool,
    /// The status and what was wrong, when it was not.
    pub detail: String,
}

/// A violation `lemonade check` reported (`lemonade_audit::Violation`, owned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditViolation {
    pub rule: String,
    pub subject: String,
    pub detail: String,
}

/// The shop after the run, as the checker reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalState {
    pub layout: Layout,
    /// The points rule the shop ran with (`lemonade_domain::order::points_earned`), > 0.
    pub minor_units_per_point: u64,
    pub baseline: Baseline,
    pub ingredients: Vec<IngredientState>,
    pub orders: Vec<OrderState>,
    pub customers: Vec<CustomerState>,
    /// Every customer's activity with its points, if the store keeps it (both modes do).
    pub points_ledger: Option<Vec<PointsEntry>>,
    pub open_sagas: Vec<OpenSaga>,
    pub held_reservations: Vec<HeldReservation>,
    pub undelivered_events: Vec<UndeliveredEvent>,
    /// Every breaker's state; `None` when nobody asked the nodes (no database holds them).
    pub breakers: Option<Vec<BreakerState>>,
    /// Every node's read pool; `None` when nobody asked the processes (not judged then).
    #[serde(default)]
    pub read_pools: Option<Vec<ReadPoolState>>,
    /// The reads asked of the healed shop; `None` when none were (not judged then).
    #[serde(default)]
    pub final_reads: Option<Vec<FinalRead>>,
    /// What `lemonade check` found; `None` when it did not run.
    pub audit: Option<Vec<AuditViolation>>,
}

impl FinalState {
    /// A shop that holds nothing, for building states by hand (tests, a simulation).
    pub fn empty(layout: Layout, minor_units_per_point: u64) -> FinalState {
        FinalState {
            layout,
            minor_units_per_point,
            baseline: Baseline::default(),
            ingredients: Vec::new(),
            orders: Vec::new(),
            customers: Vec::new(),
            points_ledger: Some(Vec::new()),
            open_sagas: Vec::new(),
            held_reservations: Vec::new(),
            undelivered_events: Vec::new(),
            breakers: Some(Vec::new()),
            read_pools: None,
            final_reads: None,
            audit: Some(Vec::new()),
        }
    }

    /// The node holding `part` in this shop: `monolith`, or the service's role name.
    pub fn node(&self, part: Part) -> &'static str {
        match (self.layout, part) {
            (Layout::Monolith, _) => "monolith",
            (Layout::Cluster, Part::Stock) => "stock",
            (Layout::Cluster, Part::Orders) => "orders",
            (Layout::Cluster, Part::Crm) => "crm",
            (Layout::Cluster, Part::Coordinator) => "coordinator",
        }
    }
}
