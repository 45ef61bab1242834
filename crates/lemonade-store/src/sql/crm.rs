//! Customers, points and the activity log.

use lemonade_domain::ShopError;
use lemonade_domain::customer::{
    ANONYMISED_NAME, Activity, ActivityKind, Customer, CustomerFields, CustomerSearch, check_order_customer,
    search_text,
};
use lemonade_domain::hlc::What;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::ports::{Page, PageRequest};

use super::{SqlResult, Stored, optional, stored_id, ts, unsigned};
use crate::conn::{Db, Row};
use crate::params;
use crate::tx::Tx;

const COLUMNS: &str = "id, name, email, phone, points, anonymised_at, created_at";

fn from_row(r: &Row) -> crate::conn::DbResult<Customer> {
    let id: String = r.get(0)?;
    Ok(Customer {
        id: stored_id(CustomerId::parse, &id, "customers", &id)?,
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

/// Customers oldest first; `search` is a [`CustomerSearch`] of the query: case and accents
/// do not matter, a query that reads as a phone number matches by its digits, and `%`, `_`
/// and `\` in it are matched as themselves.
pub fn list(conn: &dyn Db, search: Option<&str>, page: &PageRequest) -> Result<Page<Customer>, ShopError> {
    let search = search.and_then(CustomerSearch::parse);
    let like = |s: &str| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let text = search.as_ref().map(|s| like(&s.text));
    let digits = search.as_ref().and_then(|s| s.digits.as_deref()).map(like);
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM customers
             WHERE id > ?1 AND (CAST(?2 AS TEXT) IS NULL OR search_text LIKE ?2 ESCAPE '\\'
                  OR search_text LIKE CAST(?4 AS TEXT) ESCAPE '\\')
             ORDER BY id LIMIT ?3"
        ))
        .db()?
        .query_map(
            params![page.cursor.as_deref().unwrap_or(""), text, page.limit + 1, digits],
            from_row,
        )
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    Ok(Page::from_rows(rows, page.limit, |c| c.id.to_string()))
}

/// Records one activity of a customer, stamped now, under the id `id` (drawn by the caller
/// when it began, so ids follow the order jobs were applied in).
fn record_activity(
    tx: &Tx,
    id: String,
    customer: &CustomerId,
    kind: ActivityKind,
    order: Option<&OrderId>,
    points_delta: i64,
) -> Result<(), ShopError> {
    tx.conn.prepare_cached(
        "INSERT INTO customer_activity (id, customer_id, kind, order_id, points_delta, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![id, customer.as_str(), kind.as_str(), order.map(|o| o.as_str()), points_delta, tx.now.millis()])
    .db()?;
    Ok(())
}

pub fn activity(conn: &dyn Db, customer: &CustomerId) -> Result<Vec<Activity>, ShopError> {
    conn.prepare_cached(
        "SELECT kind, order_id, points_delta, created_at, id FROM customer_activity WHERE customer_id = ?1 ORDER BY id",
    )
    .db()?
    .query_map(params![customer.as_str()], |r| {
        let (kind, row): (String, String) = (r.get(0)?, r.get(4)?);
        Ok(Activity {
            kind: ActivityKind::parse(&kind)
                .stored("customer_activity", &row, || format!("an unknown kind '{kind}'"))?,
            order_id: r
                .get::<_, Option<String>>(1)?
                .map(|o| stored_id(OrderId::parse, &o, "customer_activity", &row))
                .transpose()?,
            points_delta: r.get(2)?,
            created_at: ts(r.get(3)?),
        })
    })
    .db()?
    .collect::<Result<Vec<_>, _>>()
    .db()
}

/// Refuses an order for a customer who does not exist or was anonymised (the domain's
/// [`check_order_customer`]).
pub fn check_can_order(conn: &dyn Db, customer: &CustomerId) -> Result<(), ShopError> {
    let known = get(conn, customer)?.map(|c| c.standing());
    Ok(check_order_customer(known)?)
}

/// An order of this customer was placed (`OrderPlaced`: its points are added) or cancelled
/// (`OrderCancelled`: they are taken back), and the activity recorded. For a customer who
/// was erased this changes nothing and records nothing: the erasure forfeited their points
/// and closed their record (an order in flight when they were erased, or a cancellation
/// after, reaches here late). Returns whether it applied.
pub fn order_points(
    tx: &Tx,
    customer: &CustomerId,
    order: &OrderId,
    kind: ActivityKind,
    points: u64,
) -> Result<bool, ShopError> {
    let activity_id = tx.next_id();
    let delta = match kind {
        ActivityKind::OrderPlaced => points as i64,
        ActivityKind::OrderCancelled => -(points as i64),
        other => unreachable!("{other:?} is not about an order's points"),
    };
    let applies = if delta != 0 {
        add_points(tx, customer, delta)?
    } else {
        !require(tx.conn, customer)?.anonymised
    };
    if applies {
        record_activity(tx, activity_id, customer, kind, Some(order), delta)?;
        let what = match kind {
            ActivityKind::OrderPlaced => What::PointsAwarded,
            _ => What::PointsTakenBack,
        };
        super::timeline::record(
            tx,
            what,
            Some(order),
            Some(customer),
            &format!("{} points", delta.abs()),
        )?;
    }
    Ok(applies)
}

/// Adds (or with a negative delta takes back) points of a customer who was not erased;
/// returns false, changing nothing, for one who was. The CHECK keeps the balance
/// non-negative.
fn add_points(tx: &Tx, customer: &CustomerId, delta: i64) -> Result<bool, ShopError> {
    let changed = tx
        .conn
        .prepare_cached(
            "UPDATE customers SET points = points + ?2, updated_at = ?3
             WHERE id = ?1 AND anonymised_at IS NULL AND points + ?2 >= 0",
        )
        .db()?
        .execute(params![customer.as_str(), delta, tx.now.millis()])
        .db()?;
    if changed == 1 {
        return Ok(true);
    }
    if require(tx.conn, customer)?.anonymised {
        return Ok(false);
    }
    Err(ShopError::conflict(
        "the customer's points changed while this request ran; try again",
    ))
}

/// Creates customer `id` and records it in their activity (an id drawn from `tx`).
pub fn create(tx: &Tx, id: CustomerId, fields: &CustomerFields) -> Result<Customer, ShopError> {
    let (conn, now, activity_id) = (tx.conn, tx.now, tx.next_id());
    let name = fields
        .name
        .as_deref()
        .expect("a new customer's name is required when parsing");
    let (email, phone) = (fields.email.clone().flatten(), fields.phone.clone().flatten());
    conn.prepare_cached(
        "INSERT INTO customers (id, name, email, phone, search_text, points, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?6, 0, ?5, ?5)",
    )
    .db()?
    .execute(params![
        id.as_str(),
        name,
        email,
        phone,
        now.millis(),
        search_text(name, email.as_deref(), phone.as_deref())
    ])
    .db()?;
    record_activity(tx, activity_id, &id, ActivityKind::Created, None, 0)?;
    super::timeline::record(tx, What::CustomerCreated, None, Some(&id), "")?;
    require(conn, &id)
}

/// Changes the fields given of customer `id` and records it in their activity (an id drawn
/// from `tx`); an anonymised customer cannot be edited.
pub fn update(tx: &Tx, id: &CustomerId, fields: &CustomerFields) -> Result<Customer, ShopError> {
    let (conn, now, activity_id) = (tx.conn, tx.now, tx.next_id());
    let current = require(conn, id)?;
    if current.anonymised {
        return Err(ShopError::conflict("this customer was anonymised and cannot be edited"));
    }
    let name = fields.name.as_ref().unwrap_or(&current.name);
    let email = fields.email.clone().unwrap_or(current.email);
    let phone = fields.phone.clone().unwrap_or(current.phone);
    conn.prepare_cached(
        "UPDATE customers SET name = ?2, email = ?3, phone = ?4, search_text = ?6, updated_at = ?5 WHERE id = ?1",
    )
    .db()?
    .execute(params![
        id.as_str(),
        name,
        email,
        phone,
        now.millis(),
        search_text(name, email.as_deref(), phone.as_deref())
    ])
    .db()?;
    record_activity(tx, activity_id, id, ActivityKind::Updated, None, 0)?;
    super::timeline::record(tx, What::CustomerChanged, None, Some(id), "")?;
    require(conn, id)
}

/// Forgets who the customer is but keeps the accounting: orders and activity stay, linked
/// to a record with no name, email or phone. The points are forfeited (nobody can spend them
/// any more): the balance goes to 0 and the `anonymised` activity records what it took, so
/// the activity still sums to the balance. The record is closed: nothing later changes its
/// points or adds to its activity (see [`order_points`]). Doing it twice changes nothing.
pub fn anonymise(tx: &Tx, id: &CustomerId) -> Result<Customer, ShopError> {
    let (conn, now, activity_id) = (tx.conn, tx.now, tx.next_id());
    let current = require(conn, id)?;
    if current.anonymised {
        return Ok(current);
    }
    conn.prepare_cached(
        "UPDATE customers SET name = ?2, email = NULL, phone = NULL, search_text = ?4, points = 0, anonymised_at = ?3, updated_at = ?3
         WHERE id = ?1",
    )
    .db()?
    .execute(params![
        id.as_str(),
        ANONYMISED_NAME,
        now.millis(),
        search_text(ANONYMISED_NAME, None, None)
    ])
    .db()?;
    let forfeited = -(current.points as i64);
    record_activity(tx, activity_id, id, ActivityKind::Anonymised, None, forfeited)?;
    super::timeline::record(tx, What::CustomerErased, None, Some(id), "")?;
    require(conn, id)
}
