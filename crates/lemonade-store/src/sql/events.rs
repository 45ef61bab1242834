//! The transactional outbox (orders service) and inbox (CRM and stock services).
//!
//! An event is written to the outbox in the transaction of the change that caused it, so the
//! change and the promise to tell the others commit together or not at all. A relay reads
//! undelivered events in order, delivers them, and marks them delivered only once the
//! receiver said it committed them: delivery is at least once. A receiver records each event
//! id in its inbox in the transaction of the event's effect and skips an id it has already:
//! the effect happens exactly once.

use lemonade_domain::ShopError;
use lemonade_domain::saga::{Destination, Envelope, Event};
use lemonade_domain::values::Timestamp;

use super::{SqlResult, optional};
use crate::conn::Db;
use crate::params;

/// Adds an event to the outbox, in the caller's transaction. Returns it as it will be
/// delivered.
pub fn push(conn: &dyn Db, id: String, event: Event, now: Timestamp) -> Result<Envelope, ShopError> {
    conn.prepare_cached("INSERT INTO outbox (id, destination, event, created_at) VALUES (?1, ?2, ?3, ?4)")
        .db()?
        .execute(params![
            id,
            event.destination().as_str(),
            serde_json::to_string(&event).expect("events serialise"),
            now.millis()
        ])
        .db()?;
    Ok(Envelope { id, event })
}

/// Up to `limit` undelivered events for `to`, oldest first, with their sequence numbers.
pub fn undelivered(conn: &dyn Db, to: Destination, limit: u32) -> Result<Vec<(i64, Envelope)>, ShopError> {
    conn.prepare_cached(
        "SELECT seq, id, event FROM outbox WHERE destination = ?1 AND delivered_at IS NULL ORDER BY seq LIMIT ?2",
    )
    .db()?
    .query_map(params![to.as_str(), limit], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
    })
    .db()?
    .map(|row| {
        let (seq, id, event) = row.db()?;
        let event = serde_json::from_str(&event).map_err(|e| {
            tracing::error!(error = %e, id, "unreadable outbox event");
            ShopError::unavailable("a stored event cannot be read back")
        })?;
        Ok((seq, Envelope { id, event }))
    })
    .collect()
}

/// Marks events delivered (the receiver committed them).
pub fn mark_delivered(conn: &dyn Db, seqs: &[i64], now: Timestamp) -> Result<(), ShopError> {
    let mut stmt = conn
        .prepare_cached("UPDATE outbox SET delivered_at = ?2 WHERE seq = ?1 AND delivered_at IS NULL")
        .db()?;
    for seq in seqs {
        stmt.execute(params![seq, now.millis()]).db()?;
    }
    Ok(())
}

/// How many events wait for delivery (for health and the audit).
pub fn backlog(conn: &dyn Db) -> Result<u64, ShopError> {
    conn.query_row(
        "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL",
        params![],
        |r| r.get::<_, i64>(0),
    )
    .db()
    .map(|n| n as u64)
}

/// Records an event id as applied, in the transaction of its effect. Returns false when it
/// was applied before: the caller then must not apply it again.
pub fn first_delivery(conn: &dyn Db, event_id: &str, now: Timestamp) -> Result<bool, ShopError> {
    let seen = optional(
        conn.prepare_cached("SELECT 1 FROM inbox WHERE event_id = ?1")
            .db()?
            .query_row(params![event_id], |_| Ok(())),
    )?
    .is_some();
    if seen {
        return Ok(false);
    }
    conn.prepare_cached("INSERT INTO inbox (event_id, applied_at) VALUES (?1, ?2)")
        .db()?
        .execute(params![event_id, now.millis()])
        .db()?;
    Ok(true)
}
