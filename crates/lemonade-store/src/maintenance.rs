//! Forgetting what is kept only for a while (idempotency keys, step results, finished
//! sagas, delivered and applied events): now and then, a bounded number of rows at a time so
//! the writer is never held long.

use std::sync::Arc;
use std::time::Duration;

use lemonade_domain::ShopError;
use lemonade_domain::ports::Clock;
use lemonade_domain::values::Timestamp;

use crate::Database;

use crate::conn::Db;

/// How often expired rows are looked for.
const EXPIRY_PERIOD: Duration = Duration::from_secs(600);
/// Most rows deleted in one transaction.
const EXPIRY_BATCH_MAX: u32 = 10_000;

/// A function that forgets, in one bounded batch (at most the `u32`), what was kept until
/// before the `Timestamp`: how many rows it forgot.
pub type Expire = fn(&dyn Db, Timestamp, u32) -> Result<usize, ShopError>;

/// Every [`EXPIRY_PERIOD`], deletes rows of `db` older than `retention_ms` with
/// `expire(conn, before, limit)`, which returns how many went. `what` names them in the log.
/// A vital task of `db` (see [`Tasks`](crate::tasks::Tasks)).
pub fn spawn_expiry(
    db: &Database,
    clock: Arc<dyn Clock>,
    retention_ms: i64,
    what: &'static str,
    expire: Expire,
) -> tokio::task::JoinHandle<()> {
    let writer = db.writer.clone();
    db.tasks.spawn(format!("the expiry of {what}"), async move {
        // Nothing has expired at start: the first round is one period in.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EXPIRY_PERIOD, EXPIRY_PERIOD);
        loop {
            tick.tick().await;
            let before = Timestamp(clock.now().millis() - retention_ms);
            match writer.execute(move |conn| expire(conn, before, EXPIRY_BATCH_MAX)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, what, "expired"),
                Err(e) => tracing::warn!(error = %e, what, "could not expire"),
            }
        }
    })
}
