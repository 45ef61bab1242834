//! What happened in this process, with its hybrid logical clock stamps (schema version 5):
//! written in the transaction of the change it records, with the [`Tx`]'s stamp, and read
//! back per order for its timeline (`GET /orders/{id}/timeline`).

use lemonade_domain::ShopError;
use lemonade_domain::hlc::{Stamp, TimelineEvent, What};
use lemonade_domain::ids::{CustomerId, OrderId};

use super::{SqlResult, ts};
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

/// Longest detail kept; a longer one is cut (it is a few words: a reason, a state).
pub const DETAIL_CHARS_MAX: usize = 200;

/// Records that `what` happened to `order` and/or `customer`, with the write's stamp, the
/// process's name and its wall-clock time.
pub fn record(
    tx: &Tx,
    what: What,
    order: Option<&OrderId>,
    customer: Option<&CustomerId>,
    detail: &str,
) -> Result<(), ShopError> {
    let detail: String = detail.chars().take(DETAIL_CHARS_MAX).collect();
    tx.conn
        .prepare_cached(
            "INSERT INTO timeline (order_id, customer_id, hlc, service, wall_ms, what, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .db()?
        .execute(params![
            order.map(|o| o.as_str()),
            customer.map(|c| c.as_str()),
            tx.stamp.0,
            tx.service,
            tx.now.millis(),
            what.as_str(),
            detail
        ])
        .db()?;
    Ok(())
}

/// The first `limit` events of `order` recorded here, in stamp order.
pub fn of_order(conn: &dyn Db, order: &OrderId, limit: u32) -> Result<Vec<TimelineEvent>, ShopError> {
    conn.prepare_cached(
        "SELECT service, hlc, wall_ms, what, detail FROM timeline WHERE order_id = ?1
         ORDER BY hlc, seq LIMIT ?2",
    )
    .db()?
    .query_map(params![order.as_str(), i64::from(limit)], |r| {
        Ok(TimelineEvent {
            service: r.get(0)?,
            hlc: Stamp(r.get(1)?),
            wall_time: ts(r.get(2)?),
            what: r.get(3)?,
            detail: r.get(4)?,
        })
    })
    .db()?
    .collect::<Result<Vec<_>, _>>()
    .db()
}

/// The largest stamp recorded here (none when nothing was): where a restarted process's
/// clock starts, so its stamps never go below what it recorded before.
pub fn last_stamp(conn: &dyn Db) -> Result<Option<Stamp>, ShopError> {
    let max: Option<i64> = conn
        .query_row("SELECT MAX(hlc) FROM timeline", params![], |r| r.get(0))
        .db()?;
    Ok(max.map(Stamp))
}
