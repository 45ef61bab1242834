//! Reservations, in the stock service: what an order of the distributed mode holds.
//!
//! A reservation takes its stock at once, as sale moves, so the ledger and on-hand stay the
//! only truth of stock and an oversell is as impossible as in the monolith. It is `held`
//! until the coordinator commits it, under a lease that runs out on this service's own clock:
//! a held reservation whose coordinator never comes back is released by [`expire`], its stock
//! given back with cancel moves. A committed reservation is released only when its order is
//! cancelled or its saga fails. Releasing an order that was never reserved leaves a released
//! tombstone, so a reserve that arrives late (the network held it) can never take stock for
//! an order already given up.

use lemonade_domain::ShopError;
use lemonade_domain::ids::OrderId;
use lemonade_domain::order::OrderDraft;
use lemonade_domain::saga::PricedOrder;
use lemonade_domain::stock::Needs;
use lemonade_domain::values::Timestamp;

use super::cache::WriterCache;
use super::{SqlResult, optional, orders};
use crate::conn::Db;
use crate::params;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Held,
    Committed,
    Released,
}

impl Status {
    fn parse(raw: &str) -> Status {
        match raw {
            "held" => Status::Held,
            "committed" => Status::Committed,
            "released" => Status::Released,
            other => unreachable!("a CHECK constraint limits statuses, got {other}"),
        }
    }
}

fn find(conn: &dyn Db, order: &OrderId) -> Result<Option<(Status, Needs)>, ShopError> {
    let row: Option<(String, String)> = optional(
        conn.prepare_cached("SELECT status, needs FROM reservations WHERE order_id = ?1")
            .db()?
            .query_row(params![order.as_str()], |r| Ok((r.get(0)?, r.get(1)?))),
    )?;
    row.map(|(status, needs)| {
        let needs: Needs = serde_json::from_str(&needs).map_err(|e| {
            tracing::error!(error = %e, order = %order, "unreadable reservation");
            ShopError::unavailable("a stored reservation cannot be read back")
        })?;
        Ok((Status::parse(&status), needs))
    })
    .transpose()
}

/// Prices the draft, checks stock and takes it, held for `order` until `expires_at`.
pub fn reserve(
    conn: &dyn Db,
    cache: &WriterCache,
    order: &OrderId,
    draft: &OrderDraft,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<PricedOrder, ShopError> {
    if let Some((status, _)) = find(conn, order)? {
        return Err(ShopError::conflict(match status {
            Status::Released => "this order was given up before its stock could be reserved",
            Status::Held | Status::Committed => "this order already holds a reservation",
        }));
    }
    let priced = orders::price_and_check(conn, cache, draft)?;
    orders::take_stock(conn, cache, order, &priced.needs, now)?;
    conn.prepare_cached(
        "INSERT INTO reservations (order_id, status, needs, expires_at, created_at, updated_at)
         VALUES (?1, 'held', ?2, ?3, ?4, ?4)",
    )
    .db()?
    .execute(params![
        order.as_str(),
        serde_json::to_string(&priced.needs).expect("needs serialise"),
        expires_at.millis(),
        now.millis()
    ])
    .db()?;
    Ok(priced)
}

/// Makes a held reservation permanent. Committing twice is fine; a released one (its lease
/// ran out, or its saga gave up) cannot be committed.
pub fn commit(conn: &dyn Db, order: &OrderId, now: Timestamp) -> Result<(), ShopError> {
    match find(conn, order)? {
        None => Err(ShopError::not_found("reservation")),
        Some((Status::Released, _)) => Err(ShopError::conflict(
            "the reservation was released (its lease ran out) before it was committed",
        )),
        Some((Status::Committed, _)) => Ok(()),
        Some((Status::Held, _)) => {
            conn.prepare_cached(
                "UPDATE reservations SET status = 'committed', expires_at = NULL, updated_at = ?2 WHERE order_id = ?1",
            )
            .db()?
            .execute(params![order.as_str(), now.millis()])
            .db()?;
            Ok(())
        }
    }
}

/// Gives back what the order holds. Releasing twice is fine; releasing an order that holds
/// nothing leaves a tombstone so it never will.
pub fn release(conn: &dyn Db, cache: &WriterCache, order: &OrderId, now: Timestamp) -> Result<(), ShopError> {
    match find(conn, order)? {
        Some((Status::Released, _)) => Ok(()),
        None => {
            conn.prepare_cached(
                "INSERT INTO reservations (order_id, status, needs, expires_at, created_at, updated_at)
                 VALUES (?1, 'released', '{}', NULL, ?2, ?2)",
            )
            .db()?
            .execute(params![order.as_str(), now.millis()])
            .db()?;
            Ok(())
        }
        Some((Status::Held | Status::Committed, needs)) => {
            orders::return_stock(conn, cache, order, &needs, now)?;
            conn.prepare_cached(
                "UPDATE reservations SET status = 'released', expires_at = NULL, updated_at = ?2 WHERE order_id = ?1",
            )
            .db()?
            .execute(params![order.as_str(), now.millis()])
            .db()?;
            Ok(())
        }
    }
}

/// Releases up to `limit` held reservations whose lease ran out by `now`. Returns their orders.
pub fn expire(conn: &dyn Db, cache: &WriterCache, now: Timestamp, limit: u32) -> Result<Vec<OrderId>, ShopError> {
    let expired = conn
        .prepare_cached(
            "SELECT order_id FROM reservations WHERE status = 'held' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        )
        .db()?
        .query_map(params![now.millis(), limit], |r| r.get::<_, String>(0))
        .db()?
        .map(|id| Ok(OrderId::parse(&id.db()?).expect("stored ids are valid")))
        .collect::<Result<Vec<_>, ShopError>>()?;
    for order in &expired {
        release(conn, cache, order, now)?;
    }
    Ok(expired)
}

/// Whether any held reservation's lease ran out by `now` (a read, so an idle service does
/// not write).
pub fn any_expired(conn: &dyn Db, now: Timestamp) -> Result<bool, ShopError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reservations WHERE status = 'held' AND expires_at <= ?1)",
        params![now.millis()],
        |r| r.get(0),
    )
    .db()
}

/// How many reservations are held right now (for health and the audit).
pub fn held(conn: &dyn Db) -> Result<u64, ShopError> {
    conn.query_row(
        "SELECT COUNT(*) FROM reservations WHERE status = 'held'",
        params![],
        |r| r.get::<_, i64>(0),
    )
    .db()
    .map(|n| n as u64)
}
