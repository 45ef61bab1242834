//! The coordinator's saga log: one row per order placement of the distributed mode.
//!
//! The states and their transitions are the domain's (`lemonade_domain::saga::machine`); a
//! row is read back into its [`Logged`] state here, and a row that holds no possible state is
//! an error naming its saga. A placement the stock or CRM service refused outright (not
//! enough stock, an unknown customer) is recorded as `rejected` with no order. The row also holds the client's idempotency key, so a retry
//! finds its saga. A failed saga frees its key: failing was the cluster's doing, not the
//! request's, and a retry with the same key places the order afresh.

use std::sync::LazyLock;

use lemonade_domain::ShopError;
use lemonade_domain::hlc::What;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_domain::ports::IdempotencyKey;
use lemonade_domain::saga::OrderPlan;
use lemonade_domain::saga::machine::{Logged, Mark, Phase};
use lemonade_domain::values::Timestamp;

use super::{SqlResult, optional, ts};
use crate::conn::{Db, DbError, Row};
use crate::params;
use crate::tx::Tx;

/// A saga's row, its state parsed into the machine's [`Logged`] state at this edge.
#[derive(Clone, Debug)]
pub struct Saga {
    pub order_id: OrderId,
    pub state: Logged,
    pub fingerprint: Option<String>,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "order_id, state, plan, outcome, fingerprint, attempts, created_at, updated_at";

/// A row that cannot be read back, naming its saga and the column.
fn unreadable(order: &str, column: usize, why: impl std::fmt::Display) -> DbError {
    let name = COLUMNS.split(", ").nth(column).unwrap_or("a column");
    DbError::Stored {
        table: "sagas",
        row: order.to_owned(),
        what: format!("{why} in {name}"),
    }
}

fn from_row(r: &Row) -> crate::conn::DbResult<Saga> {
    let raw_id: String = r.get(0)?;
    let order_id = OrderId::parse(&raw_id).ok_or_else(|| unreadable(&raw_id, 0, "not an order id"))?;
    let json = |column: usize| -> crate::conn::DbResult<Option<String>> { r.get(column) };
    let plan: Option<OrderPlan> = json(2)?
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .map_err(|e| unreadable(&raw_id, 2, format!("unreadable JSON: {e}")))?;
    let outcome: Option<ShopError> = json(3)?
        .map(|o| serde_json::from_str(&o))
        .transpose()
        .map_err(|e| unreadable(&raw_id, 3, format!("unreadable JSON: {e}")))?;
    let state = Logged::from_parts(&r.get::<_, String>(1)?, plan, outcome).map_err(|e| unreadable(&raw_id, 1, e))?;
    Ok(Saga {
        order_id,
        state,
        fingerprint: r.get(4)?,
        attempts: r.get(5)?,
        created_at: ts(r.get(6)?),
        updated_at: ts(r.get(7)?),
    })
}

/// The public idempotency key of each saga that holds one (a failed saga lets go of its key),
/// by order id: at most `limit` (order, key) pairs (for the checker).
pub fn order_keys(conn: &dyn Db, limit: u32) -> Result<Vec<(OrderId, String)>, ShopError> {
    conn.prepare_cached(
        "SELECT order_id, idempotency_key FROM sagas WHERE idempotency_key IS NOT NULL ORDER BY order_id LIMIT ?1",
    )
    .db()?
    .query_map(params![limit], |r| {
        let (id, key): (String, String) = (r.get(0)?, r.get(1)?);
        let order = OrderId::parse(&id).ok_or_else(|| unreadable(&id, 0, "not an order id"))?;
        Ok((order, key))
    })
    .db()?
    .collect::<Result<Vec<_>, _>>()
    .db()
}

/// Starts a saga for a priced and reserved order.
pub fn start(tx: &Tx, plan: &OrderPlan, key: Option<&IdempotencyKey>) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    conn.prepare_cached(
        "INSERT INTO sagas (order_id, state, plan, idempotency_key, fingerprint, created_at, updated_at, customer_id)
         VALUES (?1, ?7, ?2, ?3, ?4, ?5, ?5, ?6)",
    )
    .db()?
    .execute(params![
        plan.order_id.as_str(),
        serde_json::to_string(plan).expect("plans serialise"),
        key.map(|k| &k.key),
        key.map(|k| &k.fingerprint),
        now.millis(),
        plan.customer_id.as_ref().map(|c| c.as_str()),
        Phase::Running.as_str()
    ])
    .db()?;
    super::timeline::record(
        tx,
        What::SagaStarted,
        Some(&plan.order_id),
        plan.customer_id.as_ref(),
        "",
    )
}

/// Records a placement refused before it held anything, so its key replays the refusal.
pub fn reject(tx: &Tx, order: &OrderId, key: &IdempotencyKey, refusal: &ShopError) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    conn.prepare_cached(
        "INSERT INTO sagas (order_id, state, outcome, idempotency_key, fingerprint, created_at, updated_at)
         VALUES (?1, ?6, ?2, ?3, ?4, ?5, ?5)",
    )
    .db()?
    .execute(params![
        order.as_str(),
        serde_json::to_string(refusal).expect("errors serialise"),
        key.key,
        key.fingerprint,
        now.millis(),
        Phase::Rejected.as_str()
    ])
    .db()?;
    super::timeline::record(tx, What::SagaRejected, Some(order), None, refusal.code())
}

/// Moves a saga on. A failed saga lets go of its idempotency key.
pub fn set_state(tx: &Tx, order: &OrderId, mark: &Mark) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    let free_key = if mark.phase() == Phase::Failed {
        ", idempotency_key = NULL, fingerprint = NULL"
    } else {
        ""
    };
    conn.prepare_cached(&format!(
        "UPDATE sagas SET state = ?2, outcome = ?3, updated_at = ?4{free_key} WHERE order_id = ?1"
    ))
    .db()?
    .execute(params![
        order.as_str(),
        mark.phase().as_str(),
        mark.outcome()
            .map(|o| serde_json::to_string(&o).expect("errors serialise")),
        now.millis()
    ])
    .db()?;
    let detail = match mark.outcome() {
        Some(outcome) => format!("{}: {outcome}", mark.phase().as_str()),
        None => mark.phase().as_str().to_owned(),
    };
    super::timeline::record(tx, What::SagaStep, Some(order), None, &detail)
}

/// Counts one more attempt to drive a saga on (the sweeper backs off by it).
pub fn attempted(tx: &Tx, order: &OrderId) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    conn.prepare_cached("UPDATE sagas SET attempts = attempts + 1, updated_at = ?2 WHERE order_id = ?1")
        .db()?
        .execute(params![order.as_str(), now.millis()])
        .db()?;
    super::timeline::record(tx, What::SagaRetried, Some(order), None, "")
}

fn one(conn: &dyn Db, sql: &str, arg: &str) -> Result<Option<Saga>, ShopError> {
    optional(conn.prepare_cached(sql).db()?.query_row(params![arg], from_row))
}

pub fn get(conn: &dyn Db, order: &OrderId) -> Result<Option<Saga>, ShopError> {
    one(
        conn,
        &format!("SELECT {COLUMNS} FROM sagas WHERE order_id = ?1"),
        order.as_str(),
    )
}

pub fn by_key(conn: &dyn Db, key: &str) -> Result<Option<Saga>, ShopError> {
    one(
        conn,
        &format!("SELECT {COLUMNS} FROM sagas WHERE idempotency_key = ?1"),
        key,
    )
}

/// `state IN (...)` of the phases of a saga that is not over, the domain's
/// [`Phase::unfinished`]: rendered as the partial indexes on unfinished sagas are written.
static UNFINISHED: LazyLock<String> = LazyLock::new(|| super::status_in("state", Phase::unfinished()));

/// Unfinished sagas last touched before `before`, oldest first, at most `limit`.
pub fn unfinished(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<Vec<Saga>, ShopError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM sagas WHERE {} AND updated_at < ?1
             ORDER BY updated_at LIMIT ?2",
            *UNFINISHED
        )
    });
    conn.prepare_cached(&SQL)
        .db()?
        .query_map(params![before.millis(), limit], from_row)
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()
}

/// How many sagas naming `customer` are unfinished (an erasure waits until none is).
pub fn unfinished_of_customer(conn: &dyn Db, customer: &CustomerId) -> Result<u64, ShopError> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT COUNT(*) FROM sagas WHERE customer_id = ?1 AND {}", *UNFINISHED));
    conn.prepare_cached(&SQL)
        .db()?
        .query_row(params![customer.as_str()], |r| r.get::<_, i64>(0))
        .db()
        .map(|n| n as u64)
}

/// How many sagas are in each unfinished state (for health and the audit).
pub fn unfinished_count(conn: &dyn Db) -> Result<u64, ShopError> {
    conn.query_row(
        &format!("SELECT COUNT(*) FROM sagas WHERE {}", *UNFINISHED),
        params![],
        |r| r.get::<_, i64>(0),
    )
    .db()
    .map(|n| n as u64)
}

/// Forgets finished sagas older than `before` (their keys with them), at most `limit`.
pub fn expire(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<usize, ShopError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "DELETE FROM sagas WHERE order_id IN (SELECT order_id FROM sagas
               WHERE created_at < ?1 AND NOT ({}) LIMIT ?2)",
            *UNFINISHED
        )
    });
    conn.prepare_cached(&SQL)
        .db()?
        .execute(params![before.millis(), limit])
        .db()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::{Role, migrate_role};

    #[test]
    fn a_stored_saga_in_no_possible_state_is_an_error_not_a_panic() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut c, Role::Coordinator).unwrap();
        // The schema's CHECKs allow a rejected saga without its refusal; the machine does not.
        c.execute(
            "INSERT INTO sagas (order_id, state, created_at, updated_at) VALUES ('o1', 'rejected', 1, 1)",
            [],
        )
        .unwrap();
        let read = get(&c, &OrderId::parse("o1").unwrap());
        assert!(matches!(read, Err(ShopError::Unavailable { .. })), "{read:?}");
        let swept = unfinished(&c, Timestamp(10), 10).unwrap();
        assert!(swept.is_empty());
    }
}
