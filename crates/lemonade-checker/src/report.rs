//! What the checker found, per invariant: valid, invalid (how many violations and the first
//! one: operation index, node, time, what) or unknown (and why), with a compact text.

use serde::{Deserialize, Serialize};

/// The invariants the checker judges (issue 12's list), each with a stable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Per ingredient, final on-hand = initial + restocks − waste ± counts − what confirmed
    /// orders took, and the ledger never went below zero.
    StockConserved,
    /// Every acknowledged order exists and ends as its client was told.
    OrdersAcknowledged,
    /// At most one order per idempotency key (one that did not fail).
    OneOrderPerKey,
    /// No order that no client asked for.
    NoPhantomOrders,
    /// Each unknown (`info`) operation resolved as applied or not (the indefinite count).
    IndefiniteResolved,
    /// Points per customer equal what their confirmed orders earned, awarded and taken back
    /// at most once.
    PointsMatchOrders,
    /// Every erasure answered 2xx (done, or 202: accepted, finishing by itself) ends with
    /// its customer erased.
    ErasuresDone,
    /// A read of an order sees what was acknowledged before the read was asked: confirmed
    /// (or cancelled since), cancelled after an acknowledged cancel; never missing.
    ReadsSeeWrites,
    /// Nothing left in flight: sagas, reservations, events, 202 orders, breakers.
    Liveness,
    /// What `lemonade check` audits.
    Audit,
}

impl Invariant {
    /// Every invariant, in the order reports list them.
    pub const ALL: [Invariant; 10] = [
        Invariant::StockConserved,
        Invariant::OrdersAcknowledged,
        Invariant::OneOrderPerKey,
        Invariant::NoPhantomOrders,
        Invariant::IndefiniteResolved,
        Invariant::PointsMatchOrders,
        Invariant::ErasuresDone,
        Invariant::ReadsSeeWrites,
        Invariant::Liveness,
        Invariant::Audit,
    ];

    /// Its stable name (`stock-conserved`, ...): scripts match on it.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::StockConserved => "stock-conserved",
            Invariant::OrdersAcknowledged => "orders-acknowledged",
            Invariant::OneOrderPerKey => "one-order-per-key",
            Invariant::NoPhantomOrders => "no-phantom-orders",
            Invariant::IndefiniteResolved => "indefinite-resolved",
            Invariant::PointsMatchOrders => "points-match-orders",
            Invariant::ErasuresDone => "erasures-done",
            Invariant::ReadsSeeWrites => "reads-see-writes",
            Invariant::Liveness => "liveness",
            Invariant::Audit => "audit",
        }
    }
}

/// One place where an invariant does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The index of the history event it is about, when it is about an operation.
    pub op: Option<u64>,
    /// The node whose data shows it (`monolith`, `stock`, `orders`, `crm`, `coordinator`).
    pub node: Option<String>,
    /// When, in ms: the event's time, or the row's as its node stamped it.
    pub time_ms: Option<i64>,
    pub message: String,
}

impl Violation {
    /// A violation found in the state, on `node`.
    pub fn on(node: &str, time_ms: Option<i64>, message: impl Into<String>) -> Violation {
        Violation {
            op: None,
            node: Some(node.to_owned()),
            time_ms,
            message: message.into(),
        }
    }

    /// A violation about the operation decided at event `op` at `time_ms`, seen on `node`.
    pub fn at_op(op: u64, time_ms: i64, node: &str, message: impl Into<String>) -> Violation {
        Violation {
            op: Some(op),
            node: Some(node.to_owned()),
            time_ms: Some(time_ms),
            message: message.into(),
        }
    }
}

/// The checker's word on one invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// It holds.
    Valid,
    /// It does not: `count` violations, the first one found (in the history's order where
    /// the invariant follows the history).
    Invalid { count: u64, first: Violation },
    /// The history and state cannot tell, for `why` (something the checker was not given).
    Unknown { why: String },
}

/// The report on one invariant: the verdict, how many things were checked, and counts worth
/// telling (such as how the unknown operations resolved).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub invariant: Invariant,
    pub verdict: Verdict,
    /// How many items (ingredients, orders, operations, ...) were checked.
    pub checked: u64,
    /// Named counts, in the order they were added.
    pub counts: Vec<(String, u64)>,
}

impl Report {
    /// Whether the invariant was found to hold (neither invalid nor unknown).
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// One line: `name: valid (n checked)`, `name: INVALID, k violations, first: ...` or
    /// `name: unknown (why)`, with the counts.
    pub fn to_text(&self) -> String {
        let verdict = match &self.verdict {
            Verdict::Valid => "valid".to_owned(),
            Verdict::Invalid { count, first } => {
                let mut at = Vec::new();
                if let Some(op) = first.op {
                    at.push(format!("op {op}"));
                }
                if let Some(node) = &first.node {
                    at.push(format!("node {node}"));
                }
                if let Some(t) = first.time_ms {
                    at.push(format!("{t} ms"));
                }
                format!(
                    "INVALID, {count} violations, first [{}]: {}",
                    at.join(", "),
                    first.message
                )
            }
            Verdict::Unknown { why } => format!("unknown ({why})"),
        };
        let mut counts = vec![format!("{} checked", self.checked)];
        counts.extend(self.counts.iter().map(|(k, v)| format!("{k} {v}")));
        format!("{}: {verdict} ({})", self.invariant.name(), counts.join(", "))
    }
}

/// Every invariant's report, in [`Invariant::ALL`]'s order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reports(pub Vec<Report>);

impl Reports {
    /// Whether every invariant was found valid (none invalid, none unknown).
    pub fn all_valid(&self) -> bool {
        self.0.iter().all(Report::is_valid)
    }

    /// The invariants found invalid.
    pub fn invalid(&self) -> Vec<Invariant> {
        self.0
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Invalid { .. }))
            .map(|r| r.invariant)
            .collect()
    }

    /// The report on `invariant`.
    pub fn get(&self, invariant: Invariant) -> Option<&Report> {
        self.0.iter().find(|r| r.invariant == invariant)
    }

    /// One line per invariant.
    pub fn to_text(&self) -> String {
        self.0.iter().map(|r| r.to_text() + "\n").collect()
    }
}

/// Gathers an invariant's violations as they are found: keeps the count and the first.
#[derive(Debug)]
pub(crate) struct Findings {
    invariant: Invariant,
    checked: u64,
    count: u64,
    first: Option<Violation>,
    unknown: Option<String>,
    counts: Vec<(String, u64)>,
}

impl Findings {
    pub fn new(invariant: Invariant) -> Findings {
        Findings {
            invariant,
            checked: 0,
            count: 0,
            first: None,
            unknown: None,
            counts: Vec::new(),
        }
    }

    /// One more item checked.
    pub fn checked(&mut self) {
        self.checked += 1;
    }

    pub fn flag(&mut self, violation: Violation) {
        self.count += 1;
        self.first.get_or_insert(violation);
    }

    /// The invariant cannot be judged (unless a violation is found anyway), for `why`.
    pub fn unknown(&mut self, why: impl Into<String>) {
        self.unknown.get_or_insert_with(|| why.into());
    }

    pub fn count(&mut self, name: &str, n: u64) {
        self.counts.push((name.to_owned(), n));
    }

    /// The report: invalid if anything was flagged, else unknown if it could not be judged.
    pub fn report(self) -> Report {
        let verdict = match (self.first, self.unknown) {
            (Some(first), _) => Verdict::Invalid {
                count: self.count,
                first,
            },
            (None, Some(why)) => Verdict::Unknown { why },
            (None, None) => Verdict::Valid,
        };
        Report {
            invariant: self.invariant,
            verdict,
            checked: self.checked,
            counts: self.counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_report_names_the_first_violation_in_one_line() {
        let mut f = Findings::new(Invariant::Liveness);
        f.checked();
        f.flag(Violation::at_op(7, 1200, "orders", "order o1 still pending"));
        f.flag(Violation::on("stock", None, "reservation o2 still held"));
        let text = f.report().to_text();
        assert_eq!(
            text,
            "liveness: INVALID, 2 violations, first [op 7, node orders, 1200 ms]: order o1 still pending (1 checked)"
        );
    }

    #[test]
    fn a_violation_outweighs_an_unknown() {
        let mut f = Findings::new(Invariant::Liveness);
        f.unknown("breaker states not given");
        assert!(matches!(f.report().verdict, Verdict::Unknown { .. }));
        let mut f = Findings::new(Invariant::Liveness);
        f.unknown("breaker states not given");
        f.flag(Violation::on("stock", None, "x"));
        assert!(matches!(f.report().verdict, Verdict::Invalid { count: 1, .. }));
    }
}
