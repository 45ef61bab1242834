//! The audit behind `lemonade check`: reads a shop's database in one snapshot and lists every
//! place where an invariant does not hold. It shares no code with the writers on purpose: it
//! recomputes from raw rows what the writers maintain incrementally.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::db::OpenError;
use crate::migrations::Role;

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

/// Audits the monolith's database file at `path`; reads only and creates nothing (see
/// [`open_for_audit`]). Safe while the shop runs.
pub fn audit_file(path: &Path) -> Result<AuditReport, OpenError> {
    let conn = open_for_audit(path)?;
    check_audited(&conn, "main", Role::Monolith, path)?;
    conn.execute_batch("BEGIN")?;
    let report = audit(&conn)?;
    conn.execute_batch("COMMIT")?;
    Ok(report)
}

/// Audits what `data` holds: the monolith's database, or a cluster's four (see
/// [`audit_cluster`]). A folder that holds neither is refused, naming what it should hold.
pub fn audit_folder(data: &Path) -> Result<AuditReport, OpenError> {
    if !data.is_dir() {
        return Err(OpenError::Other(if data.exists() {
            format!("{} is not a folder", data.display())
        } else {
            format!("there is no folder {}", data.display())
        }));
    }
    let monolith = data.join(MONOLITH_DATABASE);
    if monolith.exists() {
        return audit_file(&monolith);
    }
    if CLUSTER_DATABASES.iter().any(|(_, file)| data.join(file).exists()) {
        return audit_cluster(data);
    }
    Err(OpenError::Other(format!(
        "{} holds no shop: neither {MONOLITH_DATABASE} (lemonade serve) nor {} (lemonade cluster)",
        data.display(),
        cluster_files()
    )))
}

/// The monolith's database file in its data folder.
const MONOLITH_DATABASE: &str = "lemonade.db";

/// "stock.db, orders.db, crm.db and coordinator.db".
fn cluster_files() -> String {
    let files: Vec<_> = CLUSTER_DATABASES.iter().map(|(_, file)| *file).collect();
    format!("{} and {}", files[..files.len() - 1].join(", "), files[files.len() - 1])
}

/// Opens a database file for the audit: see [`crate::db::open_to_read`].
fn open_for_audit(path: &Path) -> Result<Connection, OpenError> {
    ensure_audited_file(path)?;
    crate::db::open_to_read(path).map_err(|e| in_file(path, e))
}

/// Refuses a database file that is missing or empty, before SQLite would create or use it.
fn ensure_audited_file(path: &Path) -> Result<(), OpenError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(OpenError::Other(format!("no database at {}", path.display())))
        }
        Err(e) => Err(OpenError::Other(format!("cannot read {}: {e}", path.display()))),
        Ok(m) if !m.is_file() => Err(OpenError::Other(format!("{} is not a file", path.display()))),
        Ok(m) if m.len() == 0 => Err(OpenError::Other(format!(
            "{} is empty: no shop was ever stored in it",
            path.display()
        ))),
        Ok(_) => Ok(()),
    }
}

/// An error about the file at `path`, naming it.
fn in_file(path: &Path, e: impl std::fmt::Display) -> OpenError {
    OpenError::Other(format!("{}: {e}", path.display()))
}

/// Refuses a database attached as `schema` (from `path`) that is not `role`'s at this
/// binary's schema version: another program's file, another service's database, or a
/// version this binary does not audit.
fn check_audited(conn: &Connection, schema: &str, role: Role, path: &Path) -> Result<(), OpenError> {
    let version = crate::migrations::check_sqlite(conn, schema, role).map_err(|e| in_file(path, e))?;
    check_audited_version(version, &path.display().to_string())
}

/// Refuses a schema version other than this binary's, saying what to do.
fn check_audited_version(version: i64, what: &str) -> Result<(), OpenError> {
    let expected = crate::migrations::SCHEMA_VERSION;
    match version {
        0 => Err(OpenError::Other(format!("{what} holds no shop (it has no schema)"))),
        v if v < expected => Err(OpenError::Other(format!(
            "{what} has schema version {v}, this binary audits version {expected}: start the shop on it with this binary once to migrate it"
        ))),
        v if v > expected => Err(OpenError::Other(format!(
            "{what} has schema version {v}, this binary audits version {expected}: audit it with a newer lemonade"
        ))),
        _ => Ok(()),
    }
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
        "SELECT ingredient_id, delta, seq FROM stock_moves ORDER BY seq",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
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

    // Recipe versions belong to their products, and a line was sold with its product's recipe.
    for (what, id, product) in rows(
        conn,
        "SELECT 'recipe version', v.id, v.product_id FROM recipe_versions v
             WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = v.product_id)
         UNION ALL
         SELECT 'order line of ' || l.order_id, l.recipe_version, l.product_id FROM order_lines l
             JOIN recipe_versions v ON v.id = l.recipe_version WHERE v.product_id <> l.product_id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
    )? {
        report.flag(
            "recipe-version-is-the-products",
            format!("{what} ({id})"),
            format!("product {product}"),
        );
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
        "SELECT l.order_id, l.quantity, l.unit_price, COALESCE(v.recipe, 'missing')
         FROM order_lines l LEFT JOIN recipe_versions v ON v.id = l.recipe_version",
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

    // Customers: points equal what their orders earned, and what the activity log says. An
    // erasure forfeits the points: an erased customer has none, whatever their orders earned.
    let customers = rows(
        conn,
        "SELECT c.id, c.points, COALESCE((SELECT SUM(points_delta) FROM customer_activity a WHERE a.customer_id = c.id), 0),
                c.anonymised_at IS NOT NULL
         FROM customers c",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        },
    )?;
    report.customers = customers.len() as u64;
    for (id, points, logged, erased) in &customers {
        let from_orders = earned.get(id).copied().unwrap_or(0);
        if *erased {
            if *points != 0 {
                report.flag(
                    "erasure-forfeits-points",
                    format!("customer {id}"),
                    format!("erased, still holds {points} points"),
                );
            }
        } else if *points != from_orders {
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

    // Each order's points are awarded at most once, and taken back at most once.
    for (order, kind, count) in rows(
        conn,
        "SELECT order_id, kind, COUNT(*) FROM customer_activity WHERE order_id IS NOT NULL
         GROUP BY order_id, kind HAVING COUNT(*) > 1",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
    )? {
        report.flag(
            "activity-once-per-order",
            format!("order {order}"),
            format!("{count} × {kind}"),
        );
    }

    // Idempotency: every record points at a real result: an order that exists and was
    // answered with the points it earned, or a readable refusal.
    let keys = rows(
        conn,
        "SELECT key, order_id, answered_points, rejection FROM idempotency_keys",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        },
    )?;
    report.idempotency_keys = keys.len() as u64;
    let by_id: HashMap<&str, (&str, i64)> = orders.iter().map(|o| (o.0.as_str(), (o.1.as_str(), o.4))).collect();
    for (key, order_id, answered_points, rejection) in &keys {
        let subject = format!("key {key}");
        match (order_id, answered_points, rejection) {
            (Some(id), Some(points), None) => match by_id.get(id.as_str()) {
                None => report.flag(
                    "idempotency-record-is-real",
                    subject,
                    format!("order {id} does not exist"),
                ),
                Some(&(status, now_points)) => {
                    if status != "cancelled" && now_points != *points {
                        report.flag(
                            "idempotency-record-is-real",
                            subject,
                            format!("answered with {points} points, the order has {now_points}"),
                        );
                    }
                }
            },
            (None, None, Some(json)) => {
                if let Err(e) = serde_json::from_str::<lemonade_domain::ShopError>(json) {
                    report.flag(
                        "idempotency-record-is-real",
                        subject,
                        format!("unreadable refusal: {e}"),
                    );
                }
            }
            _ => report.flag(
                "idempotency-record-is-real",
                subject,
                "neither one order nor one refusal",
            ),
        }
    }
    audit_text_keys(conn, &mut report)?;
    Ok(report)
}

/// Names and their keys: every ingredient and product name has the key of its name (the key
/// is what makes two names that read the same one name, and the database keeps it unique),
/// and every customer the search text of their details.
fn audit_text_keys(conn: &Connection, report: &mut AuditReport) -> rusqlite::Result<()> {
    use lemonade_domain::text::name_key;
    for table in ["ingredients", "products"] {
        let named = rows(conn, &format!("SELECT id, name, name_key FROM {table}"), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        for (id, name, key) in named {
            if key.as_deref() != Some(name_key(&name).as_str()) {
                report.flag(
                    "name-keys-match-names",
                    format!("{table} {id}"),
                    format!("{name:?} has the key {key:?}"),
                );
            }
        }
    }
    let customers = rows(conn, "SELECT id, name, email, phone, search_text FROM customers", |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    for (id, name, email, phone, text) in customers {
        let expected = lemonade_domain::customer::search_text(&name, email.as_deref(), phone.as_deref());
        if text.as_deref() != Some(expected.as_str()) {
            report.flag(
                "search-text-matches-customer",
                format!("customer {id}"),
                "is not found by its details",
            );
        }
    }
    Ok(())
}

/// The files of a cluster's databases, by the schema name the audit attaches them under.
pub const CLUSTER_DATABASES: [(&str, &str); 4] = [
    ("coordinator", "coordinator.db"),
    ("stock", "stock.db"),
    ("orders", "orders.db"),
    ("crm", "crm.db"),
];

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

/// Audits a cluster's four databases together, read-only and each from one snapshot (safe
/// while the cluster runs, though work in flight between services then shows up: audit a
/// quiet cluster). Every rule of the monolith holds across them, and so do the saga rules:
/// no saga unfinished, no reservation held, every event delivered, each order's
/// reservation, status and saga agreeing, no stock taken for an order that does not exist.
pub fn audit_cluster(data: &Path) -> Result<AuditReport, OpenError> {
    let conn = Connection::open_in_memory()?;
    for (schema, file) in CLUSTER_DATABASES {
        let path = data.join(file);
        ensure_audited_file(&path)?;
        let attach = |mode: &str| {
            conn.execute(
                "ATTACH DATABASE ?1 AS ?2",
                rusqlite::params![format!("{}?mode={mode}", file_uri(&path)), schema],
            )
        };
        // Read-write (no create) when allowed, for the reason `open_for_audit` gives.
        attach("rw").or_else(|_| attach("ro")).map_err(|e| in_file(&path, e))?;
        check_audited(&conn, schema, role_of(schema), &path)?;
    }
    conn.execute_batch(CLUSTER_VIEWS)?;
    // After the views: they are written to the connection's temporary schema.
    conn.pragma_update(None, "query_only", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("BEGIN")?;
    let mut report = audit(&conn)?;
    audit_sagas(&conn, &mut report)?;
    conn.execute_batch("COMMIT")?;
    Ok(report)
}

/// The role whose database a cluster's schema name is.
fn role_of(schema: &str) -> Role {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == schema)
        .expect("every cluster database is a role's")
}

/// A `file:` URI for `path`, with the characters a URI gives a meaning escaped
/// (<https://sqlite.org/uri.html>).
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri
}

/// [`audit_cluster`] for a cluster on PostgreSQL, each service in the database
/// [`crate::postgres::role_url`] names after `base`. Every database is first checked to
/// exist and to hold its service's schema at this binary's version (creating and migrating
/// nothing); each is then copied, from one snapshot, into a SQLite file of a temporary
/// folder, and the copies are audited.
pub fn audit_postgres_cluster(base: &str) -> Result<AuditReport, OpenError> {
    let urls = CLUSTER_DATABASES
        .iter()
        .map(|(schema, file)| {
            let role = role_of(schema);
            Ok((role, crate::postgres::role_url(base, role)?, *file))
        })
        .collect::<Result<Vec<_>, OpenError>>()?;
    for (role, url, _) in &urls {
        let what = format!("the {} database ({})", role.as_str(), crate::db::redact(url));
        let version = crate::postgres::schema_of(url, *role).map_err(|e| OpenError::Other(format!("{what}: {e}")))?;
        check_audited_version(version, &what)?;
    }
    let dir = tempfile::tempdir().map_err(|e| OpenError::Other(format!("cannot make a folder for the copies: {e}")))?;
    for (role, url, file) in &urls {
        crate::postgres::copy_to_sqlite(url, *role, &dir.path().join(file)).map_err(|e| {
            OpenError::Other(format!(
                "copying the {} database ({}): {e}",
                role.as_str(),
                crate::db::redact(url)
            ))
        })?;
    }
    audit_cluster(dir.path())
}

fn audit_sagas(conn: &Connection, report: &mut AuditReport) -> rusqlite::Result<()> {
    for (schema, _) in CLUSTER_DATABASES {
        let integrity: String = conn.query_row(&format!("PRAGMA {schema}.quick_check"), [], |r| r.get(0))?;
        if integrity != "ok" {
            report.flag("database-integrity", schema, integrity);
        }
    }
    for (order, state) in rows(
        conn,
        "SELECT order_id, state FROM coordinator.sagas WHERE state IN ('running', 'compensating')",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )? {
        report.flag("saga-finished", format!("saga {order}"), format!("still {state}"));
    }
    for (order, expires_at) in rows(
        conn,
        "SELECT order_id, expires_at FROM stock.reservations WHERE status = 'held'",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )? {
        report.flag(
            "reservation-settled",
            format!("reservation {order}"),
            format!("still held (lease until {expires_at})"),
        );
    }
    for (id, destination) in rows(
        conn,
        "SELECT id, destination FROM orders.outbox WHERE delivered_at IS NULL",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )? {
        report.flag(
            "events-delivered",
            format!("event {id}"),
            format!("not yet delivered to {destination}"),
        );
    }
    // What each order's saga, reservation and status say must agree.
    for (order, status, reservation, saga) in rows(
        conn,
        "SELECT o.id, o.status, r.status, s.state FROM orders.orders o
           LEFT JOIN stock.reservations r ON r.order_id = o.id
           LEFT JOIN coordinator.sagas s ON s.order_id = o.id",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        },
    )? {
        let reservation_ok = matches!(
            (status.as_str(), reservation.as_deref()),
            ("confirmed", Some("committed")) | ("cancelled" | "failed", Some("released")) | ("pending", _)
        );
        if !reservation_ok {
            report.flag(
                "reservation-matches-order",
                format!("{status} order {order}"),
                format!("reservation {reservation:?}"),
            );
        }
        // A finished saga may have been forgotten after its retention; one that is there agrees.
        let saga_ok = matches!(
            (status.as_str(), saga.as_deref()),
            (_, None)
                | ("confirmed" | "cancelled", Some("confirmed"))
                | ("failed", Some("failed"))
                | ("pending", Some("running" | "compensating"))
        );
        if !saga_ok {
            report.flag(
                "saga-matches-order",
                format!("{status} order {order}"),
                format!("saga {saga:?}"),
            );
        }
    }
    // Stock moved for an order the orders service never had must have come back in full.
    for (order, net) in rows(
        conn,
        "SELECT m.order_id, SUM(m.delta) FROM stock.stock_moves m
           WHERE m.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = m.order_id)
           GROUP BY m.order_id HAVING SUM(m.delta) <> 0",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )? {
        report.flag(
            "no-stock-for-no-order",
            format!("order {order}"),
            format!("net move {net}, no such order"),
        );
    }
    for (order, reservation) in rows(
        conn,
        "SELECT r.order_id, r.status FROM stock.reservations r
           WHERE r.status = 'committed' AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = r.order_id)",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )? {
        report.flag(
            "no-stock-for-no-order",
            format!("order {order}"),
            format!("reservation {reservation}, no such order"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use lemonade_domain::ShopError;
    use lemonade_domain::catalog::NewProduct;
    use lemonade_domain::customer::CustomerFields;
    use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
    use lemonade_domain::order::{OrderDraft, RawOrderLine};
    use lemonade_domain::ports::{IdSource, IdempotencyKey};
    use lemonade_domain::stock::{MoveReason, NewIngredient, RecipeItem};
    use lemonade_domain::values::{Money, Quantity, Timestamp, Unit};

    use super::*;
    use crate::sql::idempotency::{self, Outcome};
    use crate::sql::{catalog, crm, orders, stock};
    use crate::tx::Tx;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    /// Ids from a counter: deterministic, and sorting by creation like UUIDv7.
    #[derive(Default)]
    struct Counter(AtomicU64);

    impl IdSource for Counter {
        fn next_id(&self) -> String {
            format!("id-{:08}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
        }
    }

    /// A small shop written by the same SQL functions the writer runs: lemons and sugar, a
    /// lemonade (350, one lemon and 30 g of sugar), one customer.
    struct Shop {
        _dir: tempfile::TempDir,
        path: PathBuf,
        conn: Connection,
        ids: Counter,
        lemons: IngredientId,
        lemonade: ProductId,
        customer: CustomerId,
    }

    impl Shop {
        fn new() -> Shop {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("lemonade.db");
            let mut conn = crate::db::open_connection(&path).unwrap();
            crate::migrations::migrate(&mut conn).unwrap();
            let ids = Counter::default();
            let ingredient = |name: &str, unit, on_hand| {
                let id = IngredientId::parse(&ids.next_id()).unwrap();
                let new = NewIngredient {
                    name: name.into(),
                    unit,
                    on_hand,
                    reorder_level: 0,
                };
                stock::create(&Tx::new(&conn, &Default::default(), &ids, NOW), id, &new)
                    .unwrap()
                    .id
            };
            let lemons = ingredient("Lemons", Unit::Piece, 10);
            let sugar = ingredient("Sugar", Unit::G, 1_000);
            let lemonade = ProductId::parse(&ids.next_id()).unwrap();
            let product = NewProduct {
                name: "Lemonade".into(),
                price: Money::new(350).unwrap(),
                recipe: vec![
                    RecipeItem {
                        ingredient_id: lemons.clone(),
                        quantity: Quantity::new(1).unwrap(),
                    },
                    RecipeItem {
                        ingredient_id: sugar,
                        quantity: Quantity::new(30).unwrap(),
                    },
                ],
                active: true,
            };
            catalog::create(
                &Tx::new(&conn, &Default::default(), &ids, NOW),
                lemonade.clone(),
                &product,
            )
            .unwrap();
            let customer = CustomerId::parse(&ids.next_id()).unwrap();
            let fields = lemonade_domain::error::FieldErrors::collect(|e| {
                CustomerFields::parse(e, Some("Ada"), None, None, true)
            })
            .unwrap();
            crm::create(
                &Tx::new(&conn, &Default::default(), &ids, NOW),
                customer.clone(),
                &fields,
            )
            .unwrap();
            Shop {
                _dir: dir,
                path,
                conn,
                ids,
                lemons,
                lemonade,
                customer,
            }
        }

        fn place(&self, with_customer: bool, quantity: i64) -> OrderId {
            let lines = [RawOrderLine::new(&self.lemonade.to_string(), quantity)];
            let draft = OrderDraft::from_lines(with_customer.then(|| self.customer.as_str()), &lines).unwrap();
            orders::place(&self.tx(&Default::default()), &draft, 100).unwrap().id
        }

        fn cancel(&self, order: &OrderId) {
            orders::cancel(&self.tx(&Default::default()), order).unwrap();
        }

        fn apply(&self, delta: i64, reason: MoveReason, order: Option<&OrderId>) {
            stock::apply_move(&self.tx(&Default::default()), &self.lemons, delta, reason, order, None).unwrap();
        }

        /// A writer job's context at `NOW`, with `cache` (each call had a cache of its own).
        fn tx<'a>(&'a self, cache: &'a crate::sql::cache::WriterCache) -> Tx<'a> {
            Tx::new(&self.conn, cache, &self.ids, NOW)
        }

        fn sql(&self, sql: &str) {
            self.conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }

        fn report(&self) -> AuditReport {
            self.conn.execute_batch("BEGIN").unwrap();
            let report = audit(&self.conn).unwrap();
            self.conn.execute_batch("COMMIT").unwrap();
            report
        }

        /// The rules the audit finds broken.
        fn broken(&self) -> BTreeSet<&'static str> {
            self.report().violations.iter().map(|v| v.rule).collect()
        }
    }

    fn rules(names: &[&'static str]) -> BTreeSet<&'static str> {
        names.iter().copied().collect()
    }

    #[test]
    fn a_shop_run_by_the_writers_functions_is_clean() {
        let shop = Shop::new();
        shop.place(false, 1);
        let kept = shop.place(true, 2);
        let cancelled = shop.place(true, 1);
        shop.cancel(&cancelled);
        shop.apply(5, MoveReason::Restock, None);
        shop.apply(-3, MoveReason::Waste, None);
        let key = IdempotencyKey::parse("k1", "f".into()).unwrap();
        let order = orders::require(&shop.conn, &kept).unwrap();
        idempotency::store(&shop.tx(&Default::default()), &key, &Outcome::Placed(order)).unwrap();
        let refused = IdempotencyKey::parse("k2", "f".into()).unwrap();
        let rejection = Outcome::Rejected(ShopError::conflict("no"));
        idempotency::store(&shop.tx(&Default::default()), &refused, &rejection).unwrap();

        let report = shop.report();
        assert!(report.is_clean(), "{}", report.to_text());
        assert_eq!(
            (
                report.ingredients,
                report.orders,
                report.customers,
                report.idempotency_keys
            ),
            (2, 3, 1, 2)
        );
        assert!(report.to_text().contains("ok: every invariant holds"));
    }

    /// The running balance follows the order moves were written in: the ledger's `seq`,
    /// assigned by the single writer, which is also the move id clients see, so no clock or
    /// id source can reorder it.
    #[test]
    fn the_ledger_is_replayed_in_the_order_it_was_written() {
        let shop = Shop::new();
        // All 10 lemons go, then a restock, then a waste of what the restock brought.
        shop.place(false, 10);
        let restock = stock::apply_move(
            &shop.tx(&Default::default()),
            &shop.lemons,
            5,
            MoveReason::Restock,
            None,
            None,
        )
        .unwrap();
        let waste = stock::apply_move(
            &shop.tx(&Default::default()),
            &shop.lemons,
            -5,
            MoveReason::Waste,
            None,
            None,
        )
        .unwrap();
        assert!(
            restock.id < waste.id,
            "move ids sort in the order the moves were written"
        );
        let report = shop.report();
        assert!(report.is_clean(), "{}", report.to_text());
    }

    #[test]
    fn a_ledger_that_went_below_zero_is_found() {
        let shop = Shop::new();
        // Written straight into the ledger, bypassing on-hand: 10 lemons, -15, +15. The sum
        // still equals on-hand; only the running balance shows the hole.
        let lemons = shop.lemons.as_str();
        // (The trigger that keeps on-hand would refuse the first move: drop it, as a database
        // corrupted by hand or by an older binary might have been.)
        shop.sql(&format!(
            "DROP TRIGGER stock_moves_apply;
             INSERT INTO stock_moves (ingredient_id, delta, reason, created_at)
                 VALUES ('{lemons}', -15, 'waste', 0);
             INSERT INTO stock_moves (ingredient_id, delta, reason, created_at)
                 VALUES ('{lemons}', 15, 'restock', 0);"
        ));
        assert_eq!(shop.broken(), rules(&["ledger-never-negative"]));
    }

    #[test]
    fn negative_on_hand_is_found() {
        let shop = Shop::new();
        shop.sql("PRAGMA ignore_check_constraints = ON; UPDATE ingredients SET on_hand = -1");
        assert_eq!(
            shop.broken(),
            rules(&["on-hand-never-negative", "on-hand-equals-ledger"])
        );
    }

    #[test]
    fn an_order_without_lines_is_found() {
        let shop = Shop::new();
        let order = shop.place(false, 1);
        shop.sql(&format!("DELETE FROM order_lines WHERE order_id = '{order}'"));
        assert_eq!(
            shop.broken(),
            rules(&[
                "order-has-lines",
                "order-total-equals-lines",
                "confirmed-order-took-its-recipe"
            ])
        );
    }

    #[test]
    fn an_unreadable_recipe_snapshot_is_found() {
        let shop = Shop::new();
        shop.place(false, 1);
        shop.sql("UPDATE recipe_versions SET recipe = 'not json'");
        assert_eq!(
            shop.broken(),
            rules(&["order-line-recipe-readable", "confirmed-order-took-its-recipe"])
        );
    }

    #[test]
    fn a_sale_move_of_the_wrong_size_is_found() {
        let shop = Shop::new();
        let order = shop.place(false, 2);
        // One more lemon taken for the order than its recipe says, on-hand kept in step.
        shop.apply(-1, MoveReason::Sale, Some(&order));
        assert_eq!(shop.broken(), rules(&["confirmed-order-took-its-recipe"]));
    }

    #[test]
    fn stock_returned_for_a_confirmed_order_is_found() {
        let shop = Shop::new();
        let order = shop.place(false, 1);
        shop.apply(1, MoveReason::Cancel, Some(&order));
        assert_eq!(shop.broken(), rules(&["confirmed-order-not-returned"]));
    }

    #[test]
    fn a_cancelled_order_returning_the_wrong_amount_is_found() {
        let shop = Shop::new();
        let order = shop.place(false, 2);
        shop.cancel(&order);
        shop.apply(1, MoveReason::Cancel, Some(&order));
        assert_eq!(shop.broken(), rules(&["cancelled-order-returned-its-stock"]));
    }

    #[test]
    fn a_recipe_version_of_no_product_is_found() {
        let shop = Shop::new();
        shop.place(false, 1);
        shop.sql("UPDATE recipe_versions SET product_id = 'ghost'");
        let report = shop.report();
        let subjects: Vec<_> = report
            .violations
            .iter()
            .map(|v| (v.rule, v.subject.split(' ').next().unwrap()))
            .collect();
        assert_eq!(
            subjects,
            [
                ("recipe-version-is-the-products", "recipe"),
                ("recipe-version-is-the-products", "order")
            ],
            "{}",
            report.to_text()
        );
    }

    #[test]
    fn a_cancelled_order_that_never_took_stock_is_found() {
        let shop = Shop::new();
        let order = shop.place(false, 1);
        shop.cancel(&order);
        // The recipe it was sold with now says two lemons; the sale and its return say one.
        shop.sql(&format!(
            "INSERT INTO recipe_versions (product_id, recipe, created_at)
                 SELECT product_id, json_array(json_array('{}', 2)), 0 FROM order_lines WHERE order_id = '{order}';
             UPDATE order_lines SET recipe_version = last_insert_rowid() WHERE order_id = '{order}'",
            shop.lemons
        ));
        assert_eq!(shop.broken(), rules(&["cancelled-order-took-its-recipe"]));
    }

    #[test]
    fn unfinished_orders_hold_no_stock() {
        let shop = Shop::new();
        let holding = shop.place(false, 1);
        let given_back = shop.place(false, 1);
        shop.cancel(&given_back);
        shop.sql(&format!(
            "UPDATE orders SET status = 'failed' WHERE id = '{given_back}';
             UPDATE orders SET status = 'pending' WHERE id = '{holding}';"
        ));
        let report = shop.report();
        assert_eq!(
            report
                .violations
                .iter()
                .map(|v| (v.rule, v.subject.clone()))
                .collect::<Vec<_>>(),
            vec![("unfinished-order-holds-no-stock", format!("pending order {holding}"))],
        );
    }

    #[test]
    fn points_are_checked_against_orders_and_the_activity_log() {
        let shop = Shop::new();
        let with = shop.place(true, 1);
        let without = shop.place(false, 1);
        let cancelled = shop.place(true, 1);
        shop.cancel(&cancelled);
        assert!(shop.report().is_clean());

        shop.sql(&format!("UPDATE orders SET points = 3 WHERE id = '{without}'"));
        assert_eq!(shop.broken(), rules(&["points-need-a-customer"]));
        shop.sql(&format!("UPDATE orders SET points = 0 WHERE id = '{without}'"));

        shop.sql(&format!("UPDATE orders SET points = 3 WHERE id = '{cancelled}'"));
        // The customer's 3 points no longer equal the 6 their orders say they earned.
        assert_eq!(
            shop.broken(),
            rules(&["cancelled-order-has-no-points", "points-equal-orders"])
        );
        shop.sql(&format!("UPDATE orders SET points = 0 WHERE id = '{cancelled}'"));

        shop.sql(&format!(
            "DELETE FROM customer_activity WHERE order_id = '{with}' AND kind = 'order_placed'"
        ));
        assert_eq!(shop.broken(), rules(&["points-equal-activity"]));
    }

    #[test]
    fn an_erased_customer_holds_no_points_and_what_reaches_them_later_changes_nothing() {
        let shop = Shop::new();
        let kept = shop.place(true, 2);
        crm::anonymise(&shop.tx(&Default::default()), &shop.customer).unwrap();
        assert!(shop.report().is_clean(), "{}", shop.report().to_text());
        // A cancellation after the erasure takes back nothing and adds no activity.
        shop.cancel(&kept);
        let activity = crm::activity(&shop.conn, &shop.customer).unwrap();
        let kinds: Vec<_> = activity.iter().map(|a| (a.kind.as_str(), a.points_delta)).collect();
        assert_eq!(kinds, [("created", 0), ("order_placed", 7), ("anonymised", -7)]);
        assert!(shop.report().is_clean(), "{}", shop.report().to_text());

        shop.sql(&format!(
            "UPDATE customers SET points = 7 WHERE id = '{}'; UPDATE customer_activity SET points_delta = 0 WHERE kind = 'anonymised'",
            shop.customer
        ));
        assert_eq!(shop.broken(), rules(&["erasure-forfeits-points"]));
    }

    #[test]
    fn a_name_or_a_customer_without_its_key_is_found() {
        let shop = Shop::new();
        shop.place(true, 1);
        assert!(shop.report().is_clean());
        shop.sql("UPDATE products SET name = 'Something else'");
        shop.sql("UPDATE customers SET email = 'new@example.org'");
        assert_eq!(
            shop.broken(),
            rules(&["name-keys-match-names", "search-text-matches-customer"])
        );
    }

    #[test]
    fn idempotency_records_must_match_their_orders() {
        let shop = Shop::new();
        let first = shop.place(false, 1);
        let order = orders::require(&shop.conn, &first).unwrap();
        let key = |k: &str| IdempotencyKey::parse(k, "f".into()).unwrap();
        idempotency::store(&shop.tx(&Default::default()), &key("placed"), &Outcome::Placed(order)).unwrap();
        let rejection = Outcome::Rejected(ShopError::conflict("no"));
        idempotency::store(&shop.tx(&Default::default()), &key("refused"), &rejection).unwrap();
        assert!(shop.report().is_clean());

        let details = |shop: &Shop| -> Vec<(&'static str, String, String)> {
            shop.report()
                .violations
                .iter()
                .map(|v| (v.rule, v.subject.clone(), v.detail.clone()))
                .collect()
        };
        // Answered with points the order never earned.
        shop.sql("UPDATE idempotency_keys SET answered_points = answered_points + 1 WHERE key = 'placed'");
        let found = details(&shop);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].0, found[0].1.as_str()),
            ("idempotency-record-is-real", "key placed")
        );
        shop.sql("UPDATE idempotency_keys SET answered_points = answered_points - 1 WHERE key = 'placed'");

        shop.sql("UPDATE idempotency_keys SET rejection = '{\"code\": 1}' WHERE key = 'refused'");
        let found = details(&shop);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].2.starts_with("unreadable refusal"), "{found:?}");
    }

    #[test]
    fn the_ledger_is_append_only() {
        let shop = Shop::new();
        shop.place(false, 1);
        for sql in ["DELETE FROM stock_moves", "UPDATE stock_moves SET delta = 0"] {
            let e = shop.conn.execute_batch(sql).expect_err(sql);
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        assert!(shop.report().is_clean());
    }

    #[test]
    fn audit_file_reads_without_writing_and_refuses_what_it_cannot_audit() {
        let shop = Shop::new();
        shop.place(true, 1);
        let report = audit_file(&shop.path).unwrap();
        assert!(report.is_clean(), "{}", report.to_text());
        assert_eq!(report.orders, 1);

        let missing = shop.path.with_file_name("missing.db");
        assert!(audit_file(&missing).is_err());
        assert!(!missing.exists(), "the audit must not create a database");

        shop.conn
            .pragma_update(None, "user_version", SCHEMA_VERSION_NEXT)
            .unwrap();
        let e = audit_file(&shop.path).unwrap_err().to_string();
        assert!(e.contains(&format!("schema version {SCHEMA_VERSION_NEXT}")), "{e}");
    }

    const SCHEMA_VERSION_NEXT: i64 = crate::migrations::SCHEMA_VERSION + 1;

    #[test]
    fn the_text_report_groups_by_rule_and_caps_the_examples() {
        let mut report = AuditReport::default();
        for i in 0..VIOLATIONS_SHOWN_MAX + 5 {
            report.flag(
                "order-total-equals-lines",
                format!("order o{i}"),
                "total 1, lines sum 0",
            );
        }
        report.flag("foreign-keys", "orders row Some(1)", "points at a missing customers");
        let text = report.to_text();
        assert!(text.contains("FAILED: 26 violations of 2 rules"), "{text}");
        assert!(text.contains("\norder-total-equals-lines (25 violations)\n"), "{text}");
        assert!(text.contains("  ... and 5 more\n"), "{text}");
        assert!(text.contains("\nforeign-keys (1 violations)\n"), "{text}");
        assert_eq!(text.matches("  order o").count(), VIOLATIONS_SHOWN_MAX);
        // Rules come in a stable (alphabetical) order.
        assert!(text.find("foreign-keys").unwrap() < text.find("order-total-equals-lines").unwrap());
    }
}
