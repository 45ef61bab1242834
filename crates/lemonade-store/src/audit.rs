//! The audit behind `lemonade check`: reads a shop's database in one snapshot and lists every
//! place where an invariant does not hold. It shares no code with the writers on purpose: it
//! recomputes from raw rows what the writers maintain incrementally.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::db::OpenError;

/// Most violations listed per rule; the count is always complete.
pub const VIOLATIONS_SHOWN_MAX: usize = 20;

#[derive(Debug, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    pub ingredients: u64,
    pub orders: u64,
    pub customers: u64,
    pub idempotency_keys: u64,
    pub violations: Vec<Violation>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    fn flag(&mut self, rule: &'static str, subject: impl Into<String>, detail: impl Into<String>) {
        self.violations.push(Violation {
            rule,
            subject: subject.into(),
            detail: detail.into(),
        });
    }

    /// A report a person can read: counts, then each broken rule with its first examples.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "audited {} ingredients, {} orders, {} customers, {} idempotency keys\n",
            self.ingredients, self.orders, self.customers, self.idempotency_keys
        );
        if self.is_clean() {
            out.push_str("ok: every invariant holds\n");
            return out;
        }
        let mut by_rule: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
        for v in &self.violations {
            by_rule.entry(v.rule).or_default().push(v);
        }
        out.push_str(&format!(
            "FAILED: {} violations of {} rules\n",
            self.violations.len(),
            by_rule.len()
        ));
        for (rule, vs) in by_rule {
            out.push_str(&format!("\n{rule} ({} violations)\n", vs.len()));
            for v in vs.iter().take(VIOLATIONS_SHOWN_MAX) {
                out.push_str(&format!("  {}: {}\n", v.subject, v.detail));
            }
            if vs.len() > VIOLATIONS_SHOWN_MAX {
                out.push_str(&format!("  ... and {} more\n", vs.len() - VIOLATIONS_SHOWN_MAX));
            }
        }
        out
    }
}

/// Audits the database file at `path`, opened read-only (safe while the shop runs).
pub fn audit_file(path: &Path) -> Result<AuditReport, OpenError> {
    if !path.exists() {
        return Err(OpenError::Other(format!("no database at {}", path.display())));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != crate::migrations::SCHEMA_VERSION {
        return Err(OpenError::Other(format!(
            "schema version {version}, this binary audits version {}",
            crate::migrations::SCHEMA_VERSION
        )));
    }
    conn.execute_batch("BEGIN")?;
    let report = audit(&conn)?;
    conn.execute_batch("COMMIT")?;
    Ok(report)
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare(sql)?.query_map([], f)?.collect()
}

/// Runs every check on an open connection, inside the caller's read transaction.
pub fn audit(conn: &Connection) -> rusqlite::Result<AuditReport> {
    let mut report = AuditReport::default();

    let integrity: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        report.flag("database-integrity", "file", integrity);
    }
    for (table, rowid, parent) in rows(conn, "PRAGMA foreign_key_check", |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        report.flag(
            "foreign-keys",
            format!("{table} row {rowid:?}"),
            format!("points at a missing {parent}"),
        );
    }

    // Stock: on-hand equals the ledger, and is never negative.
    let ingredients = rows(
        conn,
        "SELECT i.id, i.name, i.on_hand, COALESCE((SELECT SUM(delta) FROM stock_moves m WHERE m.ingredient_id = i.id), 0)
         FROM ingredients i",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)),
    )?;
    report.ingredients = ingredients.len() as u64;
    for (id, name, on_hand, ledger) in &ingredients {
        if on_hand != ledger {
            report.flag(
                "on-hand-equals-ledger",
                format!("ingredient {name} ({id})"),
                format!("on_hand {on_hand}, ledger sum {ledger}"),
            );
        }
        if *on_hand < 0 {
            report.flag(
                "on-hand-never-negative",
                format!("ingredient {name} ({id})"),
                format!("on_hand {on_hand}"),
            );
        }
    }
    // The running balance must never have gone below zero either.
    let mut balance: HashMap<String, i64> = HashMap::new();
    for (ingredient, delta, move_id) in rows(
        conn,
        "SELECT ingredient_id, delta, id FROM stock_moves ORDER BY id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
    )? {
        let b = balance.entry(ingredient.clone()).or_insert(0);
        *b += delta;
        if *b < 0 {
            report.flag(
                "ledger-never-negative",
                format!("move {move_id}"),
                format!("ingredient {ingredient} balance {b} after it"),
            );
        }
    }

    // Orders: totals match lines; stock moves match the recipes sold; statuses explain moves.
    let orders = rows(conn, "SELECT id, status, customer_id, total, points FROM orders", |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    report.orders = orders.len() as u64;
    let mut needs: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
    let mut totals: HashMap<String, (i64, i64)> = HashMap::new();
    for (order, quantity, unit_price, recipe) in rows(
        conn,
        "SELECT order_id, quantity, unit_price, recipe FROM order_lines",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    )? {
        let t = totals.entry(order.clone()).or_default();
        t.0 += quantity * unit_price;
        t.1 += 1;
        match serde_json::from_str::<Vec<(String, i64)>>(&recipe) {
            Ok(items) => {
                let n = needs.entry(order).or_default();
                for (ingredient, per_unit) in items {
                    *n.entry(ingredient).or_insert(0) += per_unit * quantity;
                }
            }
            Err(e) => report.flag("order-line-recipe-readable", format!("order {order}"), e.to_string()),
        }
    }
    let mut moved: HashMap<(String, &'static str), BTreeMap<String, i64>> = HashMap::new();
    for (order, reason, ingredient, delta) in rows(
        conn,
        "SELECT order_id, reason, ingredient_id, delta FROM stock_moves WHERE order_id IS NOT NULL",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )? {
        let reason: &'static str = if reason == "sale" { "sale" } else { "cancel" };
        *moved.entry((order, reason)).or_default().entry(ingredient).or_insert(0) += delta;
    }
    let mut earned: HashMap<String, i64> = HashMap::new();
    let empty = BTreeMap::new();
    for (id, status, customer, total, points) in &orders {
        let (line_total, line_count) = totals.get(id).copied().unwrap_or((0, 0));
        if line_count == 0 {
            report.flag("order-has-lines", format!("order {id}"), "no lines");
        }
        if line_total != *total {
            report.flag(
                "order-total-equals-lines",
                format!("order {id}"),
                format!("total {total}, lines sum {line_total}"),
            );
        }
        let expected: BTreeMap<String, i64> = needs
            .get(id)
            .unwrap_or(&empty)
            .iter()
            .filter(|(_, q)| **q != 0)
            .map(|(k, v)| (k.clone(), -v))
            .collect();
        let sold: BTreeMap<String, i64> = moved.get(&(id.clone(), "sale")).unwrap_or(&empty).clone();
        let returned: BTreeMap<String, i64> = moved.get(&(id.clone(), "cancel")).unwrap_or(&empty).clone();
        let reversed: BTreeMap<String, i64> = sold.iter().map(|(k, v)| (k.clone(), -v)).collect();
        match status.as_str() {
            "confirmed" => {
                if sold != expected {
                    report.flag(
                        "confirmed-order-took-its-recipe",
                        format!("order {id}"),
                        format!("sale moves {sold:?}, recipe says {expected:?}"),
                    );
                }
                if !returned.is_empty() {
                    report.flag(
                        "confirmed-order-not-returned",
                        format!("order {id}"),
                        format!("cancel moves {returned:?}"),
                    );
                }
            }
            "cancelled" => {
                if sold != expected {
                    report.flag(
                        "cancelled-order-took-its-recipe",
                        format!("order {id}"),
                        format!("sale moves {sold:?}, recipe says {expected:?}"),
                    );
                }
                if returned != reversed {
                    report.flag(
                        "cancelled-order-returned-its-stock",
                        format!("order {id}"),
                        format!("sale moves {sold:?}, cancel moves {returned:?}"),
                    );
                }
                if *points != 0 {
                    report.flag(
                        "cancelled-order-has-no-points",
                        format!("order {id}"),
                        format!("points {points}"),
                    );
                }
            }
            // Pending and failed orders hold no stock: whatever a saga took it gave back.
            _ => {
                let net: i64 = sold.values().sum::<i64>() + returned.values().sum::<i64>();
                if !returned.is_empty() && returned != reversed || (returned.is_empty() && !sold.is_empty()) || net != 0
                {
                    report.flag(
                        "unfinished-order-holds-no-stock",
                        format!("{status} order {id}"),
                        format!("sale {sold:?}, cancel {returned:?}"),
                    );
                }
            }
        }
        if let Some(c) = customer {
            *earned.entry(c.clone()).or_insert(0) += points;
        } else if *points != 0 {
            report.flag(
                "points-need-a-customer",
                format!("order {id}"),
                format!("points {points} without a customer"),
            );
        }
    }

    // Customers: points equal what their orders earned, and what the activity log says.
    let customers = rows(
        conn,
        "SELECT c.id, c.points, COALESCE((SELECT SUM(points_delta) FROM customer_activity a WHERE a.customer_id = c.id), 0)
         FROM customers c",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
    )?;
    report.customers = customers.len() as u64;
    for (id, points, logged) in &customers {
        let from_orders = earned.get(id).copied().unwrap_or(0);
        if *points != from_orders {
            report.flag(
                "points-equal-orders",
                format!("customer {id}"),
                format!("points {points}, orders earned {from_orders}"),
            );
        }
        if *points != *logged {
            report.flag(
                "points-equal-activity",
                format!("customer {id}"),
                format!("points {points}, activity sums to {logged}"),
            );
        }
    }

    // Idempotency: every record points at a real result.
    let keys = rows(conn, "SELECT key, order_id, outcome FROM idempotency_keys", |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    report.idempotency_keys = keys.len() as u64;
    let order_ids: std::collections::HashSet<&str> = orders.iter().map(|o| o.0.as_str()).collect();
    for (key, order_id, outcome) in &keys {
        let parsed: Result<crate::sql::idempotency::Outcome, _> = serde_json::from_str(outcome);
        match (parsed, order_id) {
            (Ok(crate::sql::idempotency::Outcome::Placed(order)), Some(id)) => {
                if order.id.as_str() != id {
                    report.flag(
                        "idempotency-record-is-real",
                        format!("key {key}"),
                        format!("column says {id}, outcome says {}", order.id),
                    );
                }
                if !order_ids.contains(id.as_str()) {
                    report.flag(
                        "idempotency-record-is-real",
                        format!("key {key}"),
                        format!("order {id} does not exist"),
                    );
                }
            }
            (Ok(crate::sql::idempotency::Outcome::Rejected(_)), None) => {}
            (Ok(_), _) => report.flag(
                "idempotency-record-is-real",
                format!("key {key}"),
                "order column and outcome disagree",
            ),
            (Err(e), _) => report.flag(
                "idempotency-record-is-real",
                format!("key {key}"),
                format!("unreadable outcome: {e}"),
            ),
        }
    }
    Ok(report)
}
