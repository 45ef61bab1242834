//! What a writer job works with, in one value: [`Tx`].
//!
//! A job of the single writer runs inside the writer's open transaction and needs, besides
//! the connection, the writer's cache of products and stock, an id source and the time of
//! the write. They travel together as a `Tx`, built once per job by [`Database::write`] and
//! passed down by reference: every SQL function that writes takes a `&Tx`, every function
//! that only reads takes a connection (`tx.conn` inside a job). The housekeeping deletes
//! (`expire`, `forget_applied`) take the connection too: their cutoff comes from their task,
//! not from the time of a write.

use std::sync::Arc;

use lemonade_domain::ShopError;
use lemonade_domain::hlc::Stamp;
use lemonade_domain::ports::{Clock, IdSource};
use lemonade_domain::values::Timestamp;

use crate::conn::Db;
use crate::db::Database;
use crate::sql::cache::WriterCache;

/// The context of one writer job: the open transaction's connection, the writer's cache, the
/// id source and the time read when the job's turn to write came. Nothing here begins or
/// commits: the writer decides the transaction.
#[derive(Clone, Copy)]
pub struct Tx<'a> {
    /// The connection, inside the writer's transaction.
    pub conn: &'a dyn Db,
    /// What the writer last read of products and stock; every stock move keeps it in step
    /// (see [`WriterCache`]).
    pub cache: &'a WriterCache,
    /// Where the ids of what the job makes come from, drawn inside the job so that ids sort
    /// in the order writes were applied.
    pub ids: &'a dyn IdSource,
    /// The time of the write, read when the job's turn came (never while it queued).
    pub now: Timestamp,
    /// The write's hybrid-logical-clock stamp, drawn from the database's clock in the job's
    /// turn, after every stamp this process made or merged before: what the events the job
    /// records are ordered by across processes.
    pub stamp: Stamp,
    /// The name of the process (its role) that stamped it.
    pub service: &'static str,
}

impl<'a> Tx<'a> {
    /// A job's context whose stamp is the first of `now` (tests, and jobs outside the
    /// writer); [`Database::write`] stamps from the process's clock.
    pub fn new(conn: &'a dyn Db, cache: &'a WriterCache, ids: &'a dyn IdSource, now: Timestamp) -> Self {
        Tx {
            conn,
            cache,
            ids,
            now,
            stamp: Stamp::at(now),
            service: "test",
        }
    }

    /// A fresh id from the id source, as text.
    pub fn next_id(&self) -> String {
        self.ids.next_id()
    }

    /// A fresh id of a kind (`OrderId::parse`, ...). The id source makes valid ids, so a
    /// refusal is a bug of the source.
    pub fn new_id<T>(&self, parse: fn(&str) -> Option<T>) -> T {
        lemonade_domain::ports::new_id(self.ids, parse)
    }
}

impl Database {
    /// Runs `work` as one writer job with its [`Tx`]: the time is read and ids are drawn
    /// inside the job, when the write's turn has come, never before it waits in the queue, so
    /// timestamps and ids follow the order the writes were applied in. Answers, as
    /// [`Writer::execute`](crate::writer::Writer::execute) does, once the commit is durable.
    pub async fn write<T, F>(&self, clock: &Arc<dyn Clock>, ids: &Arc<dyn IdSource>, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ShopError> + Send + 'static,
    {
        let (clock, ids, cache, hlc) = (
            Arc::clone(clock),
            Arc::clone(ids),
            Arc::clone(&self.cache),
            Arc::clone(&self.hlc),
        );
        self.writer
            .execute(move |conn| {
                let now = clock.now();
                let tx = Tx {
                    stamp: hlc.tick(now),
                    service: hlc.name(),
                    ..Tx::new(conn, &cache, ids.as_ref(), now)
                };
                work(&tx)
            })
            .await
    }
}
