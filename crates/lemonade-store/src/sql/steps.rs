//! Idempotent steps of the distributed mode. A caller names each step it asks a service to
//! take with a key derived from its saga and the step, plus a fingerprint of the request; the
//! service stores the key with the step's result in the transaction of the step's effect. A
//! retry of the step (the caller never heard back, or heard back and crashed) gets the first
//! result again and the effect never happens twice. A refusal that wrote nothing is a result
//! like any other and is replayed too.

use lemonade_domain::ShopError;
use lemonade_domain::ports::IdempotencyKey;
use lemonade_domain::values::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SqlResult, optional};
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

/// Runs `work` once per key: the first time for real, storing what it returned; after that
/// returning the stored result. The same key with another fingerprint is refused.
///
/// The outer `Result` is the writer's: `Err` means nothing may commit (the step failed after
/// writing, or storage failed). The inner one is the step's answer, stored and replayed,
/// refusals included: a refusal must not fail the writer's job, since storing it wrote.
pub fn once<T: Serialize + DeserializeOwned>(
    tx: &Tx,
    key: &IdempotencyKey,
    work: impl FnOnce(&Tx) -> Result<T, ShopError>,
) -> Result<Result<T, ShopError>, ShopError> {
    let conn = tx.conn;
    let stored: Option<(String, String)> = optional(
        conn.prepare_cached("SELECT fingerprint, result FROM step_results WHERE key = ?1")
            .db()?
            .query_row(params![&key.key], |r| Ok((r.get(0)?, r.get(1)?))),
    )?;
    if let Some((fingerprint, result)) = stored {
        if fingerprint != key.fingerprint && fingerprint != FORGOTTEN_REQUEST {
            return Ok(Err(ShopError::IdempotencyKeyReused));
        }
        return serde_json::from_str::<Result<T, ShopError>>(&result).map_err(|e| {
            tracing::error!(error = %e, key = key.key, "a stored step result cannot be read back");
            ShopError::unavailable("a stored step result is unreadable")
        });
    }
    let changes_before = conn.changes();
    let result = work(tx);
    if let Err(e) = &result
        && !(e.is_refusal() && conn.changes() == changes_before)
    {
        // Transient, or it wrote before failing: nothing is stored and the writer rolls the
        // batch back, so a retry runs the step afresh.
        return result.map(Ok);
    }
    let json = serde_json::to_string(&result).expect("step results always serialise");
    conn.prepare_cached("INSERT INTO step_results (key, fingerprint, result, created_at) VALUES (?1, ?2, ?3, ?4)")
        .db()?
        .execute(params![key.key, key.fingerprint, json, tx.now.millis()])
        .db()?;
    Ok(result)
}

/// The fingerprint of a stored result whose request was forgotten ([`forget_requests_mentioning`]):
/// any request with its key gets the result. (A fingerprint is otherwise a hash, never empty.)
pub const FORGOTTEN_REQUEST: &str = "";

/// Forgets which requests the stored results mentioning `id` answered: their fingerprints
/// are hashes of request bodies, which for a customer's steps held the person's name, email
/// and phone. Their results stay, so a step repeated with its key still acts once (keys are
/// never used for another request). Returns how many were forgotten.
pub fn forget_requests_mentioning(conn: &dyn Db, id: &lemonade_domain::ids::CustomerId) -> Result<usize, ShopError> {
    // Ids are `[0-9A-Za-z_-]`: only `_` means something to LIKE.
    let pattern = format!("%\"{}\"%", id.as_str().replace('_', "\\_"));
    conn.prepare_cached(
        "UPDATE step_results SET fingerprint = ?2 WHERE result LIKE ?1 ESCAPE '\\' AND fingerprint <> ?2",
    )
    .db()?
    .execute(params![pattern, FORGOTTEN_REQUEST])
    .db()
}

/// Deletes step results older than `before`, at most `limit` of them. Returns how many went.
pub fn expire(conn: &dyn Db, before: Timestamp, limit: u32) -> Result<usize, ShopError> {
    conn.prepare_cached(
        "DELETE FROM step_results WHERE key IN (SELECT key FROM step_results WHERE created_at < ?1 LIMIT ?2)",
    )
    .db()?
    .execute(params![before.millis(), limit])
    .db()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::cache::WriterCache;
    use crate::system::UuidV7Ids;

    /// A writer job's context over `c` at `now`.
    fn at(c: &rusqlite::Connection, now: i64) -> Tx<'_> {
        static CACHE: std::sync::LazyLock<WriterCache> = std::sync::LazyLock::new(WriterCache::default);
        Tx::new(c, &CACHE, &UuidV7Ids, Timestamp(now))
    }

    fn conn() -> rusqlite::Connection {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrations::migrate_role(&mut c, crate::migrations::Role::Crm).unwrap();
        c.execute_batch("CREATE TABLE effects (n INTEGER)").unwrap();
        c
    }

    fn key(k: &str, f: &str) -> IdempotencyKey {
        IdempotencyKey::parse(k, f.into()).unwrap()
    }

    fn effect(tx: &Tx) -> Result<i64, ShopError> {
        let c = tx.conn;
        c.execute("INSERT INTO effects VALUES (1)", params![]).unwrap();
        Ok(c.query_row("SELECT COUNT(*) FROM effects", params![], |r| r.get(0))
            .unwrap())
    }

    #[test]
    fn a_repeated_step_returns_the_first_result_and_acts_once() {
        let c = conn();
        assert_eq!(once(&at(&c, 1), &key("s1:reserve", "f"), effect), Ok(Ok(1)));
        assert_eq!(once(&at(&c, 2), &key("s1:reserve", "f"), effect), Ok(Ok(1)));
        assert_eq!(once(&at(&c, 2), &key("s2:reserve", "f"), effect), Ok(Ok(2)));
        assert_eq!(
            once(&at(&c, 3), &key("s1:reserve", "other"), effect),
            Ok(Err(ShopError::IdempotencyKeyReused))
        );
    }

    #[test]
    fn forgetting_the_requests_of_a_customer_keeps_their_results_and_others_requests() {
        let c = conn();
        fn stored(id: &'static str) -> impl Fn(&Tx) -> Result<serde_json::Value, ShopError> {
            move |_| Ok(serde_json::json!({ "id": id }))
        }
        once(&at(&c, 1), &key("req:1", "hash-of-ann"), stored("c_1"))
            .unwrap()
            .unwrap();
        once(&at(&c, 1), &key("req:2", "hash-of-bob"), stored("c_2"))
            .unwrap()
            .unwrap();
        once(&at(&c, 1), &key("req:3", "hash-of-c1"), stored("c1"))
            .unwrap()
            .unwrap();
        let ann = lemonade_domain::ids::CustomerId::parse("c_1").unwrap();
        assert_eq!(
            forget_requests_mentioning(&c, &ann).unwrap(),
            1,
            "not c1: `_` is no wildcard"
        );
        let hashes: Vec<String> = c
            .prepare("SELECT fingerprint FROM step_results ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hashes, ["", "hash-of-bob", "hash-of-c1"]);
        // The step still acts once: its key answers what it answered, whatever the body.
        let replay = once(&at(&c, 2), &key("req:1", "another"), stored("new"));
        assert_eq!(replay, Ok(Ok(serde_json::json!({"id": "c_1"}))));
        let other = once(&at(&c, 2), &key("req:2", "another"), stored("new"));
        assert_eq!(other, Ok(Err(ShopError::IdempotencyKeyReused)));
    }

    #[test]
    fn a_refusal_is_replayed_but_a_transient_error_is_not_stored() {
        let c = conn();
        let refuse = |_: &Tx| -> Result<i64, ShopError> { Err(ShopError::conflict("no")) };
        assert_eq!(
            once(&at(&c, 1), &key("a", "f"), refuse),
            Ok(Err(ShopError::conflict("no")))
        );
        assert_eq!(
            once(&at(&c, 1), &key("a", "f"), effect),
            Ok(Err(ShopError::conflict("no")))
        );
        let busy = |_: &Tx| -> Result<i64, ShopError> { Err(ShopError::unavailable("busy")) };
        assert!(once(&at(&c, 1), &key("b", "f"), busy).is_err());
        assert_eq!(once(&at(&c, 1), &key("b", "f"), effect), Ok(Ok(1)));
    }
}
