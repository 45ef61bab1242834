//! The audit behind `lemonade check`: reads a shop's database in one snapshot and lists every
//! place where an invariant does not hold. It shares no code with the writers on purpose: it
//! recomputes from raw rows what the writers maintain incrementally, and this crate depends
//! on nothing that writes them (only on the domain, for what a name's key is). Finding and
//! opening the databases, and checking their schema version, is the store's
//! (`lemonade_store::audit`).
//!
//! The rules come in groups, one module each, run in the order of `MONOLITH` and
//! `CLUSTER`: `database` (SQLite's own check, foreign keys), `stock` (on-hand and the
//! ledger, recipe versions), `orders` (lines, totals, what an order took from stock and
//! gave back), `customers` (points against orders and the activity log), `idempotency`
//! (records point at real results), `text_keys` (name keys and search texts), and, for the
//! distributed mode only, `cluster` (sagas, reservations and the outbox against the orders).
//! Within a group a rule is one function over one row (see `rule`) and one row of the
//! group's table of rules; adding an invariant is adding both.

mod cluster;
mod customers;
mod database;
mod idempotency;
mod orders;
mod report;
mod rule;
mod stock;
mod text_keys;

use rusqlite::Connection;

pub use cluster::{CLUSTER_SCHEMAS, create_cluster_views};
pub use report::{AuditReport, VIOLATIONS_SHOWN_MAX, Violation};
use rule::{Audit, Group};

/// The monolith's rules, group by group, in the order they run (and are reported in).
const MONOLITH: &[Group] = &[
    database::GROUP,
    stock::GROUP,
    orders::GROUP,
    customers::GROUP,
    idempotency::GROUP,
    text_keys::GROUP,
];

/// The rules the distributed mode adds, run after the monolith's.
const CLUSTER: &[Group] = &[cluster::GROUP];

/// Runs every rule of the monolith on an open connection, inside the caller's read
/// transaction. An error is the database's (a table missing, a value of the wrong type): a
/// rule that does not hold is a [`Violation`] in the report.
pub fn audit(conn: &Connection) -> rusqlite::Result<AuditReport> {
    run(conn, &[MONOLITH])
}

/// Runs every rule of the monolith and of the distributed mode on a connection to which a
/// cluster's databases are attached under [`CLUSTER_SCHEMAS`], with the views of
/// [`create_cluster_views`], inside the caller's read transaction.
pub fn audit_cluster(conn: &Connection) -> rusqlite::Result<AuditReport> {
    run(conn, &[MONOLITH, CLUSTER])
}

/// The names of the monolith's rules, in the order they run.
pub fn monolith_rules() -> Vec<&'static str> {
    rule_names(MONOLITH)
}

/// The names of the rules the distributed mode adds, in the order they run (a name stated
/// of two kinds of rows comes twice).
pub fn cluster_rules() -> Vec<&'static str> {
    rule_names(CLUSTER)
}

fn rule_names(groups: &[Group]) -> Vec<&'static str> {
    groups.iter().flat_map(|g| (g.rules)()).collect()
}

fn run(conn: &Connection, groups: &[&[Group]]) -> rusqlite::Result<AuditReport> {
    let mut audit = Audit::new(conn);
    for group in groups.iter().copied().flatten() {
        (group.run)(&mut audit)?;
    }
    Ok(audit.report)
}

#[cfg(test)]
mod tests;
