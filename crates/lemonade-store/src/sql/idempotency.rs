//! Idempotency records: a client's key, the fingerprint of its request and the outcome, kept
//! in the same transaction as the work.
//!
//! A record is small: a placed order is stored as its id and the points it was answered with
//! (the rest of the first answer is the order as it was created, which only a cancel changes,
//! and a cancel changes nothing else of it but status, points and `updated_at`); a refusal as
//! the error (storing the whole answered order instead cost throughput: docs/decisions.md).

use lemonade_domain::ShopError;
use lemonade_domain::ids::OrderId;
use lemonade_domain::order::{Order, OrderStatus};
use lemonade_domain::ports::IdempotencyKey;
use lemonade_domain::values::Timestamp;

use super::{SqlResult, optional, unsigned};
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

/// What the first request with a key ended in; replayed to every later one.
#[derive(Clone, Debug)]
pub enum Outcome {
    Placed(Order),
    Rejected(ShopError),
}

pub struct Record {
    pub fingerprint: String,
    pub outcome: Outcome,
}

fn unreadable(key: &str, e: impl std::fmt::Display) -> ShopError {
    tracing::error!(error = %e, key, "an idempotency record cannot be read back");
    ShopError::unavailable("a stored idempotency record is unreadable")
}

/// The order as it was first answered: as created (confirmed, with the points it earned).
pub fn first_answer(mut order: Order, answered_points: u64) -> Order {
    order.status = OrderStatus::Confirmed;
    order.points = answered_points;
    order.failure_reason = None;
    order.updated_at = order.created_at;
    order
}

pub fn lookup(conn: &dyn Db, key: &str) -> Result<Option<Record>, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT fingerprint, order_id, answered_points, rejection FROM idempotency_keys WHERE key = ?1")
        .db()?;
    type Row = (String, Option<String>, Option<i64>, Option<String>);
    let row: Option<Row> =
        optional(stmt.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))))?;
    let Some((fingerprint, order_id, points, rejection)) = row else {
        return Ok(None);
    };
    let outcome = match (order_id, points, rejection) {
        (Some(id), Some(points), None) => {
            let id = OrderId::parse(&id).ok_or_else(|| unreadable(key, "bad order id"))?;
            let order = super::orders::get(conn, &id)?.ok_or_else(|| unreadable(key, "its order is gone"))?;
            Outcome::Placed(first_answer(order, unsigned(points)))
        }
        (None, None, Some(json)) => Outcome::Rejected(serde_json::from_str(&json).map_err(|e| unreadable(key, e))?),
        _ => return Err(unreadable(key, "neither an order nor a rejection")),
    };
    Ok(Some(Record { fingerprint, outcome }))
}

pub fn store(tx: &Tx, key: &IdempotencyKey, outcome: &Outcome) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    let (order_id, points, rejection) = match outcome {
        Outcome::Placed(order) => (Some(order.id.as_str()), Some(order.points as i64), None),
        Outcome::Rejected(e) => (
            None,
            None,
            Some(serde_json::to_string(e).expect("errors always serialise")),
        ),
    };
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (key, fingerprint, order_id, answered_points, rejection, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        key.key,
        key.fingerprint,
        order_id,
        points,
        rejection,
        now.millis()
    ])
    .db()?;
    Ok(())
}

/// The order each key answered with (keys whose answer was a refusal have none), by key: at
/// most `limit` (order, key) pairs (for the checker).
pub fn order_keys(conn: &dyn Db, limit: u32) -> Result<Vec<(OrderId, String)>, ShopError> {
    conn.prepare_cached("SELECT order_id, key FROM idempotency_keys WHERE order_id IS NOT NULL ORDER BY key LIMIT ?1")
        .db()?
        .query_map(params![limit], |r| {
            let (id, key): (String, String) = (r.get(0)?, r.get(1)?);
            Ok((super::stored_id(OrderId::parse, &id, "idempotency_keys", &key)?, key))
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()
}

/// Deletes records older than `before`. Returns how many went.
pub fn expire(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<usize, ShopError> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
    )
    .db()?
    .execute(params![before.millis(), limit])
    .db()
}
