//! The coordinator's directory of customers: which customers an order may name, known
//! without asking CRM. It holds ids and states only, never personal data.
//!
//! A customer's state only moves forward: `active` → `erasing` (their erasure was asked for:
//! no order may name them from then on) → `erased` (CRM has anonymised them). What the
//! coordinator learns from CRM's answers is written through; a late answer can never move a
//! customer back.

use std::sync::LazyLock;

use lemonade_domain::ShopError;
use lemonade_domain::ids::CustomerId;
use lemonade_domain::values::Timestamp;

use super::{SqlResult, Stored, optional, stored_id};
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

/// Where a customer stands (the domain's type: which standing may order, and that it only
/// moves forward), re-exported for the directory's callers.
pub use lemonade_domain::customer::Standing;

/// What the directory knows of a customer, if anything.
pub fn standing(conn: &dyn Db, customer: &CustomerId) -> Result<Option<Standing>, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT state FROM customer_directory WHERE customer_id = ?1")
        .db()?;
    let raw: Option<String> = optional(stmt.query_row(params![customer.as_str()], |r| r.get(0)))?;
    raw.map(|raw| {
        Standing::parse(&raw).stored("customer_directory", customer.as_str(), || {
            format!("an unknown state '{raw}'")
        })
    })
    .transpose()
    .db()
}

/// Records that `customer` stands at least at `standing`: a customer not known yet is
/// added, a known one is moved forward, never back. Writes nothing when it knew as much.
pub fn learn(tx: &Tx, customer: &CustomerId, standing: Standing) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    // A state's rank is its place in `Standing::ALL`, the order the domain says they are
    // reached in: the update only ever moves forward.
    static LEARN: LazyLock<String> = LazyLock::new(|| {
        let rank = |of: &str| {
            let whens: String = Standing::ALL
                .iter()
                .enumerate()
                .map(|(rank, s)| format!(" WHEN '{}' THEN {rank}", s.as_str()))
                .collect();
            format!("CASE {of}{whens} END")
        };
        format!(
            "INSERT INTO customer_directory (customer_id, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (customer_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
             WHERE {} > {}",
            rank("excluded.state"),
            rank("customer_directory.state")
        )
    });
    conn.prepare_cached(&LEARN)
        .db()?
        .execute(params![customer.as_str(), standing.as_str(), now.millis()])
        .db()?;
    Ok(())
}

/// `state = 'erasing'`: a customer whose erasure was asked for and is not done (the domain's
/// [`Standing::Erasing`]), as the partial index on them is written.
static ERASING: LazyLock<String> = LazyLock::new(|| super::status_in("state", [Standing::Erasing]));

/// Customers whose erasure was asked for but is not done, last touched before `before`,
/// oldest first, at most `limit` (for the sweeper, which finishes them).
pub fn erasing(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<Vec<CustomerId>, ShopError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT customer_id FROM customer_directory WHERE {} AND updated_at < ?1
             ORDER BY updated_at LIMIT ?2",
            *ERASING
        )
    });
    conn.prepare_cached(&SQL)
        .db()?
        .query_map(params![before.millis(), limit], |r| {
            let id: String = r.get(0)?;
            stored_id(CustomerId::parse, &id, "customer_directory", &id)
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()
}

/// Marks an erasure that is not done yet as touched now, so the sweeper leaves it alone
/// for a while.
pub fn touch(tx: &Tx, customer: &CustomerId) -> Result<(), ShopError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE customer_directory SET updated_at = ?2 WHERE customer_id = ?1 AND {}",
            *ERASING
        )
    });
    tx.conn
        .prepare_cached(&SQL)
        .db()?
        .execute(params![customer.as_str(), tx.now.millis()])
        .db()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::{Role, migrate_role};
    use crate::sql::cache::WriterCache;
    use crate::system::UuidV7Ids;

    /// A writer job's context over `c` at `now`.
    fn at(c: &rusqlite::Connection, now: i64) -> Tx<'_> {
        static CACHE: LazyLock<WriterCache> = LazyLock::new(WriterCache::default);
        Tx::new(c, &CACHE, &UuidV7Ids, Timestamp(now))
    }

    fn conn() -> rusqlite::Connection {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut c, Role::Coordinator).unwrap();
        c
    }

    #[test]
    fn a_customers_standing_only_moves_forward() {
        let c = conn();
        let ada = CustomerId::parse("c-ada").unwrap();
        assert_eq!(standing(&c, &ada).unwrap(), None);
        learn(&at(&c, 1), &ada, Standing::Active).unwrap();
        assert_eq!(standing(&c, &ada).unwrap(), Some(Standing::Active));
        learn(&at(&c, 2), &ada, Standing::Erasing).unwrap();
        // A read CRM answered before the erasure was asked for arrives late.
        learn(&at(&c, 3), &ada, Standing::Active).unwrap();
        assert_eq!(standing(&c, &ada).unwrap(), Some(Standing::Erasing));
        assert_eq!(erasing(&c, Timestamp(10), 10).unwrap(), std::slice::from_ref(&ada));
        assert_eq!(erasing(&c, Timestamp(2), 10).unwrap(), [], "touched at 2");
        learn(&at(&c, 4), &ada, Standing::Erased).unwrap();
        learn(&at(&c, 5), &ada, Standing::Erasing).unwrap();
        assert_eq!(standing(&c, &ada).unwrap(), Some(Standing::Erased));
        assert_eq!(erasing(&c, Timestamp(10), 10).unwrap(), []);
    }
}
