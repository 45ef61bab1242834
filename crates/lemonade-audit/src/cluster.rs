//! The rules the distributed mode adds, across its four databases attached under the
//! schema names of [`CLUSTER_SCHEMAS`]: each database's own check, no saga unfinished, no
//! reservation held, every event delivered, each order's reservation, status and saga
//! agreeing, and no stock taken for an order the orders service does not have.

use crate::database::{INTEGRITY_RULES, integrity};
use crate::rule::{Audit, Finding, Group, QueryRule, Rule, names, rows};

pub(crate) const GROUP: Group = Group { run, rules };

/// The schema names a cluster's databases are attached under, one per service.
pub const CLUSTER_SCHEMAS: [&str; 4] = ["coordinator", "stock", "orders", "crm"];

/// The monolith's tables, as views over the services' databases: the monolith's rules then
/// read the cluster as one shop. Public idempotency keys live in the saga log.
const CLUSTER_VIEWS: &str = r#"
    CREATE TEMP VIEW ingredients AS SELECT * FROM stock.ingredients;
    CREATE TEMP VIEW stock_moves AS SELECT * FROM stock.stock_moves;
    CREATE TEMP VIEW products AS SELECT * FROM stock.products;
    CREATE TEMP VIEW recipe_versions AS SELECT * FROM stock.recipe_versions;
    CREATE TEMP VIEW orders AS SELECT * FROM orders.orders;
    CREATE TEMP VIEW order_lines AS SELECT * FROM orders.order_lines;
    CREATE TEMP VIEW customers AS SELECT * FROM crm.customers;
    CREATE TEMP VIEW customer_activity AS SELECT * FROM crm.customer_activity;
    CREATE TEMP VIEW idempotency_keys AS
        SELECT idempotency_key AS key,
               CASE WHEN state = 'confirmed' THEN order_id END AS order_id,
               CASE WHEN state = 'confirmed' THEN json_extract(plan, '$.points') END AS answered_points,
               CASE WHEN state = 'rejected' THEN outcome END AS rejection
        FROM coordinator.sagas WHERE idempotency_key IS NOT NULL AND state IN ('confirmed', 'rejected');
"#;

/// Creates, in `conn`'s temporary schema, the monolith's tables as views over the cluster's
/// databases, which must be attached under [`CLUSTER_SCHEMAS`]. Call it before making the
/// connection read-only.
pub fn create_cluster_views(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(CLUSTER_VIEWS)
}

const SAGA_FINISHED: QueryRule = QueryRule {
    name: "saga-finished",
    sql: "SELECT order_id, state FROM coordinator.sagas WHERE state IN ('running', 'compensating')",
    finding: |r| {
        let (order, state) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        Ok(Finding::new(format!("saga {order}"), format!("still {state}")))
    },
};

const RESERVATION_SETTLED: QueryRule = QueryRule {
    name: "reservation-settled",
    sql: "SELECT order_id, expires_at FROM stock.reservations WHERE status = 'held'",
    finding: |r| {
        let (order, expires_at) = (r.get::<_, String>(0)?, r.get::<_, i64>(1)?);
        Ok(Finding::new(
            format!("reservation {order}"),
            format!("still held (lease until {expires_at})"),
        ))
    },
};

const EVENTS_DELIVERED: QueryRule = QueryRule {
    name: "events-delivered",
    sql: "SELECT id, destination FROM orders.outbox WHERE delivered_at IS NULL",
    finding: |r| {
        let (id, destination) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        Ok(Finding::new(
            format!("event {id}"),
            format!("not yet delivered to {destination}"),
        ))
    },
};

/// Stock moved for an order the orders service never had must have come back in full...
const NO_MOVES_FOR_NO_ORDER: QueryRule = QueryRule {
    name: "no-stock-for-no-order",
    sql: "SELECT m.order_id, SUM(m.delta) FROM stock.stock_moves m
            WHERE m.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = m.order_id)
            GROUP BY m.order_id HAVING SUM(m.delta) <> 0",
    finding: |r| {
        let (order, net) = (r.get::<_, String>(0)?, r.get::<_, i64>(1)?);
        Ok(Finding::new(
            format!("order {order}"),
            format!("net move {net}, no such order"),
        ))
    },
};

/// ... and none of its stock may be committed.
const NO_RESERVATION_FOR_NO_ORDER: QueryRule = QueryRule {
    name: "no-stock-for-no-order",
    sql: "SELECT r.order_id, r.status FROM stock.reservations r
            WHERE r.status = 'committed' AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = r.order_id)",
    finding: |r| {
        let (order, reservation) = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        Ok(Finding::new(
            format!("order {order}"),
            format!("reservation {reservation}, no such order"),
        ))
    },
};

/// An order of the orders service, with its reservation's status at stock and its saga's
/// state at the coordinator, where they have one.
struct Across {
    order: String,
    status: String,
    reservation: Option<String>,
    saga: Option<String>,
}

const ORDER_RULES: &[Rule<Across>] = &[
    Rule {
        name: "reservation-matches-order",
        check: reservation_matches_order,
    },
    Rule {
        name: "saga-matches-order",
        check: saga_matches_order,
    },
];

fn reservation_matches_order(o: &Across) -> Option<Finding> {
    let (status, reservation) = (o.status.as_str(), &o.reservation);
    let ok = matches!(
        (status, reservation.as_deref()),
        ("confirmed", Some("committed")) | ("cancelled" | "failed", Some("released")) | ("pending", _)
    );
    (!ok).then(|| {
        Finding::new(
            format!("{status} order {}", o.order),
            format!("reservation {reservation:?}"),
        )
    })
}

/// A finished saga may have been forgotten after its retention; one that is there agrees.
fn saga_matches_order(o: &Across) -> Option<Finding> {
    let (status, saga) = (o.status.as_str(), &o.saga);
    let ok = matches!(
        (status, saga.as_deref()),
        (_, None)
            | ("confirmed" | "cancelled", Some("confirmed"))
            | ("failed", Some("failed"))
            | ("pending", Some("running" | "compensating"))
    );
    (!ok).then(|| Finding::new(format!("{status} order {}", o.order), format!("saga {saga:?}")))
}

fn read_across(audit: &Audit<'_>) -> rusqlite::Result<Vec<Across>> {
    rows(
        audit.conn,
        "SELECT o.id, o.status, r.status, s.state FROM orders.orders o
           LEFT JOIN stock.reservations r ON r.order_id = o.id
           LEFT JOIN coordinator.sagas s ON s.order_id = o.id",
        |r| {
            Ok(Across {
                order: r.get(0)?,
                status: r.get(1)?,
                reservation: r.get(2)?,
                saga: r.get(3)?,
            })
        },
    )
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    let checked = CLUSTER_SCHEMAS
        .iter()
        .map(|schema| integrity(audit, schema, schema))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    audit.report.check_rows(&checked, INTEGRITY_RULES);
    for rule in [&SAGA_FINISHED, &RESERVATION_SETTLED, &EVENTS_DELIVERED] {
        audit.check_query(rule)?;
    }
    let orders = read_across(audit)?;
    audit.report.check_rows(&orders, ORDER_RULES);
    audit.check_query(&NO_MOVES_FOR_NO_ORDER)?;
    audit.check_query(&NO_RESERVATION_FOR_NO_ORDER)
}

fn rules() -> Vec<&'static str> {
    names(INTEGRITY_RULES)
        .chain([SAGA_FINISHED.name, RESERVATION_SETTLED.name, EVENTS_DELIVERED.name])
        .chain(names(ORDER_RULES))
        .chain([NO_MOVES_FOR_NO_ORDER.name, NO_RESERVATION_FOR_NO_ORDER.name])
        .collect()
}
