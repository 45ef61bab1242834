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
/// clock starts, so its stamps never go below what it recorded before. It is the last row's:
/// one writer draws the stamps in its turn and inserts in that order, and a restart resumes
/// above the last, so stamps grow with `seq` (a lookup by the key, not a scan).
pub fn last_stamp(conn: &dyn Db) -> Result<Option<Stamp>, ShopError> {
    let last: Option<i64> = super::optional(conn.query_row(
        "SELECT hlc FROM timeline ORDER BY seq DESC LIMIT 1",
        params![],
        |r| r.get(0),
    ))?;
    Ok(last.map(Stamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::{Role, migrate_role};
    use crate::sql::cache::WriterCache;
    use crate::system::UuidV7Ids;
    use lemonade_domain::values::Timestamp;

    #[test]
    fn an_orders_events_come_back_in_stamp_order_and_the_last_stamp_is_the_last_rows() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut conn, Role::Stock).unwrap();
        let cache = WriterCache::default();
        assert_eq!(last_stamp(&conn).unwrap(), None);
        let (order, other) = (OrderId::parse("o1").unwrap(), OrderId::parse("o2").unwrap());
        // Stamps as one writer draws them: growing, whatever the wall clock says.
        for (n, wall) in [(1, 5_000), (2, 4_000), (3, 4_500)] {
            let tx = Tx {
                stamp: Stamp::new(5_000, n),
                service: "stock",
                ..Tx::new(&conn, &cache, &UuidV7Ids, Timestamp(wall))
            };
            let what = if n == 2 {
                What::StockCommitted
            } else {
                What::StockReserved
            };
            let of = if n == 3 { &other } else { &order };
            record(&tx, what, Some(of), None, &"x".repeat(DETAIL_CHARS_MAX + 1)).unwrap();
        }
        let events = of_order(&conn, &order, 10).unwrap();
        let stamps: Vec<_> = events.iter().map(|e| e.hlc.logical()).collect();
        assert_eq!(stamps, [1, 2]);
        assert_eq!(events[1].what, "stock_committed");
        assert_eq!(events[1].wall_time, Timestamp(4_000));
        assert_eq!(events[0].detail.chars().count(), DETAIL_CHARS_MAX);
        assert_eq!(of_order(&conn, &order, 1).unwrap().len(), 1);
        assert_eq!(last_stamp(&conn).unwrap(), Some(Stamp::new(5_000, 3)));
    }
}
