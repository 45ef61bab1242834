//! The transactional outbox (orders service) and inbox (CRM and stock services).
//!
//! An event is written to the outbox in the transaction of the change that caused it, so the
//! change and the promise to tell the others commit together or not at all. A relay reads
//! undelivered events in order, delivers them, and marks them delivered only once the
//! receiver said it committed them: delivery is at least once. A receiver records each event
//! id in its inbox in the transaction of the event's effect and skips an id it has already:
//! the effect happens exactly once.
//!
//! **Forgetting.** Neither table may grow without end, and an inbox id may be forgotten only
//! once its event can no longer be delivered again (docs/design.md, "Events", says why this
//! holds on every path that delivers events):
//! - a delivered outbox row is never read again, so it goes after a retention
//!   ([`expire_delivered`]), the newest row excepted (SQLite would hand its `seq` out again,
//!   and a receiver must never see a place twice);
//! - each relay delivery tells the receiver the oldest place still undelivered
//!   ([`note_delivered_below`]): everything below it is marked delivered and the relay will
//!   never send it again; a receiver forgets an inbox id only when its place is below that
//!   mark **and** it was applied longer ago than a retention that outlives every other way an
//!   event can come again ([`forget_applied`]).

use lemonade_domain::ShopError;
use lemonade_domain::saga::{Destination, Envelope, Event};
use lemonade_domain::values::Timestamp;

use super::SqlResult;
#[cfg(not(feature = "plant-inbox-forgets"))]
use super::optional;
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

/// What receivers call the orders service's outbox, the one sender of events: the name under
/// which they keep its places and its mark.
pub const ORDERS_OUTBOX: &str = "orders";

/// Adds an event to the outbox, in the caller's transaction. Returns it as it will be
/// delivered, with its place and an id drawn from `tx`.
pub fn push(tx: &Tx, event: Event) -> Result<Envelope, ShopError> {
    let id = tx.next_id();
    let seq: i64 = tx
        .conn
        .prepare_cached("INSERT INTO outbox (id, destination, event, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING seq")
        .db()?
        .query_row(
            params![
                id,
                event.destination().as_str(),
                serde_json::to_string(&event).expect("events serialise"),
                tx.now.millis()
            ],
            |r| r.get(0),
        )
        .db()?;
    Ok(Envelope {
        id,
        seq: Some(seq),
        event,
    })
}

/// Up to `limit` undelivered events for `to`, oldest first (each with its `seq`).
pub fn undelivered(conn: &dyn Db, to: Destination, limit: u32) -> Result<Vec<Envelope>, ShopError> {
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
        Ok(Envelope {
            id,
            seq: Some(seq),
            event,
        })
    })
    .collect()
}

/// The place of the newest event in the outbox, 0 when it never held one: when `to` has no
/// undelivered event in the same snapshot, every event to `to` placed up to it is delivered.
/// (The newest row is never deleted, see [`expire_delivered`], so this never goes back.)
pub fn last_seq(conn: &dyn Db) -> Result<i64, ShopError> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", params![], |r| {
        r.get::<_, i64>(0)
    })
    .db()
}

/// Marks a delivery delivered (the receiver committed it), in one statement: `delivered` is
/// what [`undelivered`] returned for `to`, the oldest undelivered events in order, so the
/// undelivered events of `to` from its first place to its last are exactly these (places are
/// never handed out twice). Returns how many were marked.
pub fn mark_delivered(tx: &Tx, to: Destination, delivered: &[Envelope]) -> Result<usize, ShopError> {
    let seqs = || delivered.iter().map(|e| e.seq.expect("outbox events have their place"));
    let (Some(first), Some(last)) = (seqs().min(), seqs().max()) else {
        return Ok(0);
    };
    tx.conn
        .prepare_cached(
            "UPDATE outbox SET delivered_at = ?1
             WHERE destination = ?2 AND seq >= ?3 AND seq <= ?4 AND delivered_at IS NULL",
        )
        .db()?
        .execute(params![tx.now.millis(), to.as_str(), first, last])
        .db()
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

/// Deletes delivered events written before `before`, at most `limit` of them, never the
/// newest row (whose `seq` SQLite would otherwise give to the next event). Returns how many
/// went.
pub fn expire_delivered(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<usize, ShopError> {
    conn.prepare_cached(
        "DELETE FROM outbox WHERE seq IN (
             SELECT seq FROM outbox
             WHERE created_at < ?1 AND delivered_at IS NOT NULL AND seq < (SELECT MAX(seq) FROM outbox)
             LIMIT ?2)",
    )
    .db()?
    .execute(params![before.millis(), limit])
    .db()
}

/// Records an event as applied, in the transaction of its effect, with its place in
/// `source`'s outbox. Returns false when it was applied before: the caller then must not
/// apply it again.
#[cfg(not(feature = "plant-inbox-forgets"))]
pub fn first_delivery(tx: &Tx, source: &str, event: &Envelope) -> Result<bool, ShopError> {
    let conn = tx.conn;
    let seen = optional(
        conn.prepare_cached("SELECT 1 FROM inbox WHERE event_id = ?1")
            .db()?
            .query_row(params![event.id], |_| Ok(())),
    )?
    .is_some();
    if seen {
        return Ok(false);
    }
    conn.prepare_cached("INSERT INTO inbox (event_id, applied_at, source, seq) VALUES (?1, ?2, ?3, ?4)")
        .db()?
        .execute(params![event.id, tx.now.millis(), source, event.seq])
        .db()?;
    Ok(true)
}

/// A planted bug, for the simulation's proof that it has teeth (issue 12): the inbox
/// forgets to record an event, so one delivered twice is applied twice.
#[cfg(feature = "plant-inbox-forgets")]
pub fn first_delivery(_: &Tx, _: &str, _: &Envelope) -> Result<bool, ShopError> {
    Ok(true)
}

/// Records `source`'s word that every event it sends here with a place below `below` is
/// delivered and will never be sent by its relay again. The mark only moves up.
pub fn note_delivered_below(tx: &Tx, source: &str, below: i64) -> Result<(), ShopError> {
    tx.conn
        .prepare_cached(
            "INSERT INTO inbox_senders (source, delivered_below, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET delivered_below = excluded.delivered_below, updated_at = excluded.updated_at
             WHERE excluded.delivered_below > inbox_senders.delivered_below",
        )
        .db()?
        .execute(params![source, below, tx.now.millis()])
        .db()?;
    Ok(())
}

/// Forgets inbox ids whose events can no longer arrive: applied before `before` and placed
/// below their sender's mark; at most `limit` of them. Ids without a place (applied before
/// version 2) are kept. Returns how many went.
pub fn forget_applied(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<usize, ShopError> {
    conn.prepare_cached(
        "DELETE FROM inbox WHERE event_id IN (
             SELECT i.event_id FROM inbox i JOIN inbox_senders s ON s.source = i.source
             WHERE i.applied_at < ?1 AND i.seq < s.delivered_below
             LIMIT ?2)",
    )
    .db()?
    .execute(params![before.millis(), limit])
    .db()
}

#[cfg(test)]
mod tests {
    use lemonade_domain::ids::{CustomerId, OrderId};

    use std::sync::atomic::{AtomicU64, Ordering};

    use lemonade_domain::ports::IdSource;

    use super::*;
    use crate::migrations::{Role, migrate_role};
    use crate::sql::cache::WriterCache;

    /// A service's database with what its writer jobs get; the ids it draws are `e0`, `e1`, ...
    struct Service {
        c: rusqlite::Connection,
        cache: WriterCache,
        ids: Numbered,
    }

    struct Numbered(AtomicU64);

    impl IdSource for Numbered {
        fn next_id(&self) -> String {
            format!("e{}", self.0.fetch_add(1, Ordering::Relaxed))
        }
    }

    impl Service {
        /// A writer job's context at `now`.
        fn at(&self, now: i64) -> Tx<'_> {
            Tx::new(&self.c, &self.cache, &self.ids, Timestamp(now))
        }
    }

    fn db(role: Role) -> Service {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut c, role).unwrap();
        Service {
            c,
            cache: WriterCache::default(),
            ids: Numbered(AtomicU64::new(0)),
        }
    }

    fn to_stock(order: &str) -> Event {
        Event::ReturnStock {
            order_id: OrderId::parse(order).unwrap(),
        }
    }

    fn to_crm(order: &str) -> Event {
        Event::OrderPlaced {
            order_id: OrderId::parse(order).unwrap(),
            customer_id: CustomerId::parse("c1").unwrap(),
            points: 1,
        }
    }

    fn ids(envelopes: &[Envelope]) -> Vec<&str> {
        envelopes.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn a_delivery_is_marked_in_one_statement_that_touches_exactly_its_events() {
        let s = db(Role::Orders);
        for event in [to_crm("o1"), to_stock("o1"), to_crm("o2"), to_crm("o3"), to_stock("o2")] {
            push(&s.at(10), event).unwrap();
        }
        let batch = undelivered(&s.c, Destination::Crm, 2).unwrap();
        assert_eq!(ids(&batch), ["e0", "e2"]);
        assert_eq!(mark_delivered(&s.at(20), Destination::Crm, &batch).unwrap(), 2);
        assert_eq!(
            ids(&undelivered(&s.c, Destination::Crm, 10).unwrap()),
            ["e3"],
            "the next delivery starts after the marked ones"
        );
        assert_eq!(
            ids(&undelivered(&s.c, Destination::Stock, 10).unwrap()),
            ["e1", "e4"],
            "the other destination's events between them are not marked"
        );
        assert_eq!(mark_delivered(&s.at(30), Destination::Crm, &batch).unwrap(), 0);
        assert_eq!(mark_delivered(&s.at(30), Destination::Crm, &[]).unwrap(), 0);
    }

    #[test]
    fn delivered_events_expire_after_retention_but_not_undelivered_ones_nor_the_newest() {
        let s = db(Role::Orders);
        for i in 0..4 {
            push(&s.at(10 + i), to_crm(&format!("o{i}"))).unwrap();
        }
        let all = undelivered(&s.c, Destination::Crm, 10).unwrap();
        // e0 and e1 delivered; e2 not yet; e3 delivered but the newest row.
        mark_delivered(&s.at(20), Destination::Crm, &all[..2]).unwrap();
        s.c.execute("UPDATE outbox SET delivered_at = 20 WHERE id = 'e3'", [])
            .unwrap();
        assert_eq!(
            expire_delivered(&s.c, Timestamp(11), 100).unwrap(),
            1,
            "only e0 is old enough"
        );
        assert_eq!(expire_delivered(&s.c, Timestamp(1_000), 100).unwrap(), 1, "then e1");
        let left: Vec<String> =
            s.c.prepare("SELECT id FROM outbox ORDER BY seq")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(left, ["e2", "e3"]);
        // A place is never handed out twice, even after the rows below it went.
        let next = push(&s.at(30), to_crm("o4")).unwrap();
        assert!(next.seq > all[3].seq, "{next:?}");
    }

    #[test]
    fn expiry_takes_at_most_its_batch() {
        let s = db(Role::Orders);
        for i in 0..5 {
            push(&s.at(10), to_stock(&format!("o{i}"))).unwrap();
        }
        let all = undelivered(&s.c, Destination::Stock, 10).unwrap();
        mark_delivered(&s.at(20), Destination::Stock, &all).unwrap();
        assert_eq!(expire_delivered(&s.c, Timestamp(100), 2).unwrap(), 2);
        assert_eq!(expire_delivered(&s.c, Timestamp(100), 2).unwrap(), 2);
        assert_eq!(
            expire_delivered(&s.c, Timestamp(100), 2).unwrap(),
            0,
            "the newest stays"
        );
    }

    fn envelope(id: &str, seq: Option<i64>) -> Envelope {
        Envelope {
            id: id.into(),
            seq,
            event: to_crm("o1"),
        }
    }

    #[test]
    fn an_applied_event_is_forgotten_only_below_its_senders_mark_and_past_retention() {
        let s = db(Role::Crm);
        for seq in 1..=5 {
            let e = envelope(&format!("e{seq}"), Some(seq));
            assert!(first_delivery(&s.at(100 * seq), ORDERS_OUTBOX, &e).unwrap());
        }
        // Applied before version 2: no place, kept.
        assert!(first_delivery(&s.at(1), ORDERS_OUTBOX, &envelope("old", None)).unwrap());
        assert_eq!(
            forget_applied(&s.c, Timestamp(10_000), 100).unwrap(),
            0,
            "without the sender's word nothing is forgotten, however old"
        );

        note_delivered_below(&s.at(600), ORDERS_OUTBOX, 4).unwrap();
        note_delivered_below(&s.at(700), ORDERS_OUTBOX, 2).unwrap(); // a late delivery: the mark stays
        // e1..e3 are below the mark, but e3 was applied too recently.
        assert_eq!(forget_applied(&s.c, Timestamp(250), 100).unwrap(), 2);
        assert_eq!(forget_applied(&s.c, Timestamp(10_000), 100).unwrap(), 1, "then e3");

        // What the relay may still send is still a no-op when it comes again.
        for kept in ["e4", "e5", "old"] {
            let seq = kept[1..].parse().ok();
            assert!(
                !first_delivery(&s.at(20_000), ORDERS_OUTBOX, &envelope(kept, seq)).unwrap(),
                "{kept}"
            );
        }
        let left: i64 = s.c.query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 3);
    }

    #[test]
    fn the_relay_never_sends_again_what_lies_below_the_mark_it_gives() {
        // The argument the receiver relies on, at the sender: after a delivery is marked, the
        // next delivery's first place (its mark) is above every event already delivered.
        let s = db(Role::Orders);
        for i in 0..6 {
            push(&s.at(10), to_crm(&format!("o{i}"))).unwrap();
        }
        let first = undelivered(&s.c, Destination::Crm, 3).unwrap();
        mark_delivered(&s.at(20), Destination::Crm, &first).unwrap();
        let second = undelivered(&s.c, Destination::Crm, 3).unwrap();
        let mark = second[0].seq.unwrap();
        assert!(first.iter().all(|e| e.seq.unwrap() < mark));
        assert!(
            undelivered(&s.c, Destination::Crm, 100)
                .unwrap()
                .iter()
                .all(|e| e.seq.unwrap() >= mark)
        );
    }
}
