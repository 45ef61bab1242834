//! What a rule is. A rule is one function: over one row of a kind (an ingredient, an order,
//! a customer, ...), what it finds wrong with it, if anything; or, for a rule a query states
//! better, the query whose every row is a violation. A group of rules reads its rows once
//! and runs its tables of rules over them.

use std::cell::OnceCell;

use rusqlite::Connection;

use crate::orders::Order;

use crate::report::AuditReport;

/// What a rule found wrong with one row: which row, and what is wrong with it.
pub(crate) struct Finding {
    pub subject: String,
    pub detail: String,
}

impl Finding {
    pub fn new(subject: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

/// An invariant over the rows of one kind: given a row, what is wrong with it, if anything.
pub(crate) struct Rule<R> {
    pub name: &'static str,
    pub check: fn(&R) -> Option<Finding>,
}

/// An invariant stated as a query: every row it returns is a violation, described by
/// `finding`.
pub(crate) struct QueryRule {
    pub name: &'static str,
    pub sql: &'static str,
    pub finding: fn(&rusqlite::Row) -> rusqlite::Result<Finding>,
}

/// A group of rules over one part of the shop: `run` reads the rows its rules need once
/// and runs its tables of rules over them, in their order; `rules` names them.
pub(crate) struct Group {
    pub run: fn(&mut Audit<'_>) -> rusqlite::Result<()>,
    pub rules: fn() -> Vec<&'static str>,
}

/// The names of a table's rules, for [`Group::rules`].
pub(crate) fn names<R>(rules: &[Rule<R>]) -> impl Iterator<Item = &'static str> + '_ {
    rules.iter().map(|r| r.name)
}

/// An audit under way: the connection it reads (inside the caller's read transaction),
/// what more than one group reads, and the report so far.
pub(crate) struct Audit<'c> {
    pub conn: &'c Connection,
    pub facts: Facts,
    pub report: AuditReport,
}

impl<'c> Audit<'c> {
    pub fn new(conn: &'c Connection) -> Audit<'c> {
        Audit {
            conn,
            facts: Facts::default(),
            report: AuditReport::default(),
        }
    }

    /// Runs a query rule, flagging each row it returns.
    pub fn check_query(&mut self, rule: &QueryRule) -> rusqlite::Result<()> {
        for found in rows(self.conn, rule.sql, rule.finding)? {
            self.report.flag(rule.name, found.subject, found.detail);
        }
        Ok(())
    }
}

/// Rows that more than one group reads, read once, when first asked for.
#[derive(Default)]
pub(crate) struct Facts {
    orders: OnceCell<Vec<Order>>,
}

impl Facts {
    /// Every order as stored.
    pub fn orders(&self, conn: &Connection) -> rusqlite::Result<&[Order]> {
        if let Some(orders) = self.orders.get() {
            return Ok(orders);
        }
        let read = crate::orders::read_orders(conn)?;
        Ok(self.orders.get_or_init(|| read))
    }
}

impl AuditReport {
    /// Runs every rule of `rules` over each row in turn, so a row's violations come together.
    pub(crate) fn check_rows<R>(&mut self, rows: &[R], rules: &[Rule<R>]) {
        for row in rows {
            for rule in rules {
                if let Some(found) = (rule.check)(row) {
                    self.flag(rule.name, found.subject, found.detail);
                }
            }
        }
    }
}

/// Every row of a query without parameters, mapped by `f`.
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare(sql)?.query_map([], f)?.collect()
}
