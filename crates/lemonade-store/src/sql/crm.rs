//! Customers, points and the activity log.

use lemonade_domain::ShopError;
use lemonade_domain::customer::{ANONYMISED_NAME, Activity, ActivityKind, Customer, CustomerFields};
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::ports::{Page, PageRequest};
use lemonade_domain::values::Timestamp;

use super::{SqlResult, optional, ts, unsigned};
use crate::conn::{Db, Row};
use crate::params;

const COLUMNS: &str = "id, name, email, phone, points, anonymised_at, created_at";

fn from_row(r: &Row) -> crate::conn::DbResult<Customer> {
    Ok(Customer {
        id: CustomerId::parse(&r.get::<_, String>(0)?).expect("stored ids are valid"),
        name: r.get(1)?,
        email: r.get(2)?,
        phone: r.get(3)?,
        points: unsigned(r.get(4)?),
        anonymised: r.get::<_, Option<i64>>(5)?.is_some(),
        created_at: ts(r.get(6)?),
    })
}

pub fn get(conn: &dyn Db, id: &CustomerId) -> Result<Option<Customer>, ShopError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM customers WHERE id = ?1"))
        .db()?;
    optional(stmt.query_row(params![id.as_str()], from_row))
}

pub fn require(conn: &dyn Db, id: &CustomerId) -> Result<Customer, ShopError> {
    get(conn, id)?.ok_or_else(|| ShopError::not_found("customer"))
}

/// Customers oldest first; `search` matches name, email or phone, case-insensitively (for
/// ASCII letters, as SQLite's `lower` and PostgreSQL's under the "C" collation fold).
pub fn list(conn: &dyn Db, search: Option<&str>, page: &PageRequest) -> Result<Page<Customer>, ShopError> {
    let pattern = search.map(|s| {
        let escaped = s
            .to_ascii_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM customers
             WHERE id > ?1 AND (CAST(?2 AS TEXT) IS NULL OR lower(name) LIKE ?2 ESCAPE '\\'
                  OR lower(email) LIKE ?2 ESCAPE '\\' OR lower(phone) LIKE ?2 ESCAPE '\\')
             ORDER BY id LIMIT ?3"
        ))
        .db()?
        .query_map(
            params![page.cursor.as_deref().unwrap_or(""), pattern, page.limit + 1],
            from_row,
        )
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    Ok(Page::from_rows(rows, page.limit, |c| c.id.to_string()))
}

pub fn record_activity(
    conn: &dyn Db,
    id: String,
    customer: &CustomerId,
    kind: ActivityKind,
    order: Option<&OrderId>,
    points_delta: i64,
    now: Timestamp,
) -> Result<(), ShopError> {
    conn.prepare_cached(
        "INSERT INTO customer_activity (id, customer_id, kind, order_id, points_delta, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![id, customer.as_str(), kind.as_str(), order.map(|o| o.as_str()), points_delta, now.millis()])
    .db()?;
    Ok(())
}

pub fn activity(conn: &dyn Db, customer: &CustomerId) -> Result<Vec<Activity>, ShopError> {
    conn.prepare_cached(
        "SELECT kind, order_id, points_delta, created_at FROM customer_activity WHERE customer_id = ?1 ORDER BY id",
    )
    .db()?
    .query_map(params![customer.as_str()], |r| {
        Ok(Activity {
            kind: ActivityKind::parse(&r.get::<_, String>(0)?).expect("only known kinds are written"),
            order_id: r
                .get::<_, Option<String>>(1)?
                .map(|o| OrderId::parse(&o).expect("stored ids are valid")),
            points_delta: r.get(2)?,
            created_at: ts(r.get(3)?),
        })
    })
    .db()?
    .collect::<Result<Vec<_>, _>>()
    .db()
}

/// Refuses an order for a customer who does not exist or was anonymised.
pub fn check_can_order(conn: &dyn Db, customer: &CustomerId) -> Result<(), ShopError> {
    match lemonade_domain::customer::order_customer_error(get(conn, customer)?.as_ref()) {
        None => Ok(()),
        Some(e) => Err(ShopError::ValidationFailed { errors: vec![e] }),
    }
}

/// An order of this customer was placed (`OrderPlaced`: its points are added) or cancelled
/// (`OrderCancelled`: they are taken back), and the activity recorded.
pub fn order_points(
    conn: &dyn Db,
    activity_id: String,
    customer: &CustomerId,
    order: &OrderId,
    kind: ActivityKind,
    points: u64,
    now: Timestamp,
) -> Result<(), ShopError> {
    let delta = match kind {
        ActivityKind::OrderPlaced => points as i64,
        ActivityKind::OrderCancelled => -(points as i64),
        other => unreachable!("{other:?} is not about an order's points"),
    };
    if delta != 0 {
        add_points(conn, customer, delta, now)?;
    }
    record_activity(conn, activity_id, customer, kind, Some(order), delta, now)
}

/// Adds (or with a negative delta takes back) points. The CHECK keeps the balance non-negative.
pub fn add_points(conn: &dyn Db, customer: &CustomerId, delta: i64, now: Timestamp) -> Result<(), ShopError> {
    let changed = conn
        .prepare_cached("UPDATE customers SET points = points + ?2, updated_at = ?3 WHERE id = ?1 AND points + ?2 >= 0")
        .db()?
        .execute(params![customer.as_str(), delta, now.millis()])
        .db()?;
    if changed != 1 {
        return Err(ShopError::conflict(
            "the customer's points changed while this request ran; try again",
        ));
    }
    Ok(())
}

pub fn create(
    conn: &dyn Db,
    id: CustomerId,
    activity_id: String,
    fields: &CustomerFields,
    now: Timestamp,
) -> Result<Customer, ShopError> {
    let name = fields
        .name
        .as_deref()
        .expect("a new customer's name is required when parsing");
    conn.prepare_cached(
        "INSERT INTO customers (id, name, email, phone, points, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
    )
    .db()?
    .execute(params![
        id.as_str(),
        name,
        fields.email.clone().flatten(),
        fields.phone.clone().flatten(),
        now.millis()
    ])
    .db()?;
    record_activity(conn, activity_id, &id, ActivityKind::Created, None, 0, now)?;
    require(conn, &id)
}

pub fn update(
    conn: &dyn Db,
    id: &CustomerId,
    activity_id: String,
    fields: &CustomerFields,
    now: Timestamp,
) -> Result<Customer, ShopError> {
    let current = require(conn, id)?;
    if current.anonymised {
        return Err(ShopError::conflict("this customer was anonymised and cannot be edited"));
    }
    conn.prepare_cached("UPDATE customers SET name = ?2, email = ?3, phone = ?4, updated_at = ?5 WHERE id = ?1")
        .db()?
        .execute(params![
            id.as_str(),
            fields.name.as_ref().unwrap_or(&current.name),
            fields.email.clone().unwrap_or(current.email),
            fields.phone.clone().unwrap_or(current.phone),
            now.millis()
        ])
        .db()?;
    record_activity(conn, activity_id, id, ActivityKind::Updated, None, 0, now)?;
    require(conn, id)
}

/// Forgets who the customer is but keeps the accounting: orders, points and activity stay,
/// linked to a record with no name, email or phone. Doing it twice changes nothing.
pub fn anonymise(conn: &dyn Db, id: &CustomerId, activity_id: String, now: Timestamp) -> Result<Customer, ShopError> {
    let current = require(conn, id)?;
    if current.anonymised {
        return Ok(current);
    }
    conn.prepare_cached(
        "UPDATE customers SET name = ?2, email = NULL, phone = NULL, anonymised_at = ?3, updated_at = ?3 WHERE id = ?1",
    )
    .db()?
    .execute(params![id.as_str(), ANONYMISED_NAME, now.millis()])
    .db()?;
    record_activity(conn, activity_id, id, ActivityKind::Anonymised, None, 0, now)?;
    require(conn, id)
}
