//! The rule tables as a whole. Each rule is exercised on real databases, written by the
//! writers' own functions, in `lemonade-store`'s audit tests and `lemonade check`'s.

use std::collections::BTreeSet;

use super::*;

/// Rule names are what scripts and tests match on: a rename shows here.
#[test]
fn every_rule_is_in_a_table_under_its_name() {
    assert_eq!(
        monolith_rules(),
        [
            "database-integrity",
            "foreign-keys",
            "on-hand-equals-ledger",
            "on-hand-never-negative",
            "ledger-never-negative",
            "recipe-version-is-the-products",
            "order-line-recipe-readable",
            "order-has-lines",
            "order-total-equals-lines",
            "confirmed-order-took-its-recipe",
            "confirmed-order-not-returned",
            "cancelled-order-took-its-recipe",
            "cancelled-order-returned-its-stock",
            "cancelled-order-has-no-points",
            "unfinished-order-holds-no-stock",
            "points-need-a-customer",
            "erasure-forfeits-points",
            "points-equal-orders",
            "points-equal-activity",
            "activity-once-per-order",
            "idempotency-record-is-real",
            "name-keys-match-names",
            "search-text-matches-customer",
        ]
    );
    assert_eq!(
        cluster_rules(),
        [
            "database-integrity",
            "saga-finished",
            "reservation-settled",
            "events-delivered",
            "reservation-matches-order",
            "saga-matches-order",
            "no-stock-for-no-order",
            "no-stock-for-no-order",
        ]
    );
}

#[test]
fn a_rule_name_is_one_rule_within_its_mode() {
    let monolith = monolith_rules();
    assert_eq!(monolith.iter().collect::<BTreeSet<_>>().len(), monolith.len());
    // The cluster checks each of its databases as the monolith checks its file, and states
    // "no stock for no order" of moves and of reservations: one rule each.
    let cluster: BTreeSet<_> = cluster_rules().into_iter().collect();
    let shared: Vec<_> = cluster.iter().filter(|r| monolith.contains(r)).collect();
    assert_eq!(shared, [&"database-integrity"]);
}

/// An empty monolith database with just the tables the rules read holds every invariant.
#[test]
fn an_empty_shop_is_clean_and_a_missing_table_is_an_error() {
    let conn = Connection::open_in_memory().unwrap();
    assert!(audit(&conn).is_err(), "no tables: the database cannot be audited");
    conn.execute_batch(
        "CREATE TABLE ingredients (id TEXT, name TEXT, name_key TEXT, on_hand INTEGER);
         CREATE TABLE stock_moves (seq INTEGER, ingredient_id TEXT, delta INTEGER, reason TEXT, order_id TEXT);
         CREATE TABLE products (id TEXT, name TEXT, name_key TEXT);
         CREATE TABLE recipe_versions (id INTEGER, product_id TEXT, recipe TEXT);
         CREATE TABLE orders (id TEXT, status TEXT, customer_id TEXT, total INTEGER, points INTEGER);
         CREATE TABLE order_lines (order_id TEXT, product_id TEXT, recipe_version INTEGER, quantity INTEGER, unit_price INTEGER);
         CREATE TABLE customers (id TEXT, name TEXT, email TEXT, phone TEXT, search_text TEXT, points INTEGER, anonymised_at INTEGER);
         CREATE TABLE customer_activity (customer_id TEXT, order_id TEXT, kind TEXT, points_delta INTEGER);
         CREATE TABLE idempotency_keys (key TEXT, order_id TEXT, answered_points INTEGER, rejection TEXT);",
    )
    .unwrap();
    let report = audit(&conn).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    assert!(audit_cluster(&conn).is_err(), "no cluster attached");
}

/// A row is checked against every rule of its table before the next row: the report lists
/// a row's violations together, as the JSON of `lemonade check` shows them.
#[test]
fn a_rows_violations_come_together() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (on_hand INTEGER, ledger INTEGER);
         INSERT INTO t VALUES (-1, 0), (-2, 0);",
    )
    .unwrap();
    let rows: Vec<(i64, i64)> =
        rule::rows(&conn, "SELECT on_hand, ledger FROM t", |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let rules: &[rule::Rule<(i64, i64)>] = &[
        rule::Rule {
            name: "equal",
            check: |&(a, b)| (a != b).then(|| rule::Finding::new(a.to_string(), "unequal")),
        },
        rule::Rule {
            name: "positive",
            check: |&(a, _)| (a < 0).then(|| rule::Finding::new(a.to_string(), "negative")),
        },
    ];
    let mut report = AuditReport::default();
    report.check_rows(&rows, rules);
    let found: Vec<_> = report.violations.iter().map(|v| (v.rule, v.subject.as_str())).collect();
    assert_eq!(
        found,
        [("equal", "-1"), ("positive", "-1"), ("equal", "-2"), ("positive", "-2")]
    );
}
