//! Customers and their points: a customer's points are what their orders earned (none once
//! erased: an erasure forfeits them) and what their activity log sums to, and an order's
//! points are awarded at most once and taken back at most once.

use std::collections::HashMap;

use crate::rule::{Audit, Finding, Group, QueryRule, Rule, names, rows};

pub(crate) const GROUP: Group = Group { run, rules };

/// A customer with what their activity sums to and what their orders earned.
struct Customer {
    id: String,
    points: i64,
    logged: i64,
    erased: bool,
    earned: i64,
}

impl Customer {
    fn subject(&self) -> String {
        format!("customer {}", self.id)
    }
}

const CUSTOMER_RULES: &[Rule<Customer>] = &[
    Rule {
        name: "erasure-forfeits-points",
        check: erasure_forfeits_points,
    },
    Rule {
        name: "points-equal-orders",
        check: points_equal_orders,
    },
    Rule {
        name: "points-equal-activity",
        check: points_equal_activity,
    },
];

fn erasure_forfeits_points(c: &Customer) -> Option<Finding> {
    let points = c.points;
    (c.erased && points != 0).then(|| Finding::new(c.subject(), format!("erased, still holds {points} points")))
}

fn points_equal_orders(c: &Customer) -> Option<Finding> {
    let (points, earned) = (c.points, c.earned);
    (!c.erased && points != earned)
        .then(|| Finding::new(c.subject(), format!("points {points}, orders earned {earned}")))
}

fn points_equal_activity(c: &Customer) -> Option<Finding> {
    let (points, logged) = (c.points, c.logged);
    (points != logged).then(|| Finding::new(c.subject(), format!("points {points}, activity sums to {logged}")))
}

/// Each order's points are awarded at most once, and taken back at most once.
const ACTIVITY_ONCE: QueryRule = QueryRule {
    name: "activity-once-per-order",
    sql: "SELECT order_id, kind, COUNT(*) FROM customer_activity WHERE order_id IS NOT NULL
          GROUP BY order_id, kind HAVING COUNT(*) > 1",
    finding: |r| {
        let (order, kind, count) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?);
        Ok(Finding::new(format!("order {order}"), format!("{count} × {kind}")))
    },
};

fn read_customers(audit: &Audit<'_>) -> rusqlite::Result<Vec<Customer>> {
    let mut earned: HashMap<&str, i64> = HashMap::new();
    for order in audit.facts.orders(audit.conn)? {
        if let Some(c) = &order.customer {
            *earned.entry(c.as_str()).or_insert(0) += order.points;
        }
    }
    rows(
        audit.conn,
        "SELECT c.id, c.points, COALESCE((SELECT SUM(points_delta) FROM customer_activity a WHERE a.customer_id = c.id), 0),
                c.anonymised_at IS NOT NULL
         FROM customers c",
        |r| {
            let id: String = r.get(0)?;
            Ok(Customer {
                earned: earned.get(id.as_str()).copied().unwrap_or(0),
                id,
                points: r.get(1)?,
                logged: r.get(2)?,
                erased: r.get(3)?,
            })
        },
    )
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    let customers = read_customers(audit)?;
    audit.report.customers = customers.len() as u64;
    audit.report.check_rows(&customers, CUSTOMER_RULES);
    audit.check_query(&ACTIVITY_ONCE)
}

fn rules() -> Vec<&'static str> {
    names(CUSTOMER_RULES).chain([ACTIVITY_ONCE.name]).collect()
}
