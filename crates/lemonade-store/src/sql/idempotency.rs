//! Idempotency records: a client's key, the fingerprint of its request and the outcome, kept
//! in the same transaction as the work.

use lemonade_domain::ShopError;
use lemonade_domain::ids::OrderId;
use lemonade_domain::order::Order;
use lemonade_domain::ports::IdempotencyKey;
use lemonade_domain::values::Timestamp;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::{SqlResult, optional};

/// What the first request with a key ended in; replayed to every later one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Placed(Order),
    Rejected(ShopError),
}

pub struct Record {
    pub fingerprint: String,
    pub outcome: Outcome,
}

pub fn lookup(conn: &Connection, key: &str) -> Result<Option<Record>, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT fingerprint, outcome FROM idempotency_keys WHERE key = ?1")
        .db()?;
    let row: Option<(String, String)> = optional(stmt.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))))?;
    row.map(|(fingerprint, outcome)| {
        let outcome = serde_json::from_str(&outcome).map_err(|e| {
            tracing::error!(error = %e, key, "an idempotency record cannot be read back");
            ShopError::unavailable("a stored idempotency record is unreadable")
        })?;
        Ok(Record { fingerprint, outcome })
    })
    .transpose()
}

pub fn store(conn: &Connection, key: &IdempotencyKey, outcome: &Outcome, now: Timestamp) -> Result<(), ShopError> {
    let order_id: Option<&OrderId> = match outcome {
        Outcome::Placed(order) => Some(&order.id),
        Outcome::Rejected(_) => None,
    };
    let json = serde_json::to_string(outcome).expect("outcomes always serialise");
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (key, fingerprint, order_id, outcome, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(params![
        key.key,
        key.fingerprint,
        order_id.map(|o| o.as_str()),
        json,
        now.millis()
    ])
    .db()?;
    Ok(())
}

/// Deletes records older than `before`. Returns how many went.
pub fn expire(conn: &Connection, before: Timestamp, limit: u32) -> Result<usize, ShopError> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
    )
    .db()?
    .execute(params![before.millis(), limit])
    .db()
}
