//! A small pool of connections used only for reading. Reads never wait for the writer: each
//! sees the last committed state when it starts.
//!
//! A connection is lent out together with the permit that allowed it, as one value
//! ([`Lent`]) that goes wherever the read runs (a blocking thread, or the calling one) and
//! gives both back when it is dropped: after the read, after a panic in it, and also when the
//! request that waited for it was dropped (a client that hung up) while the read went on. So
//! a free permit always has an idle connection behind it, whatever happens to the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lemonade_domain::ShopError;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::conn::{Begin, Db};
use crate::writer::{DiskDelay, DiskOp};

/// A reader's connection.
pub type ReadConn = Box<dyn Db + Send>;

/// Where a pool's connections read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file on this machine (SQLite): a point read takes microseconds.
    LocalFile,
    /// A server over the network (PostgreSQL): any read may wait on it.
    Server,
}

/// Where a read runs.
#[derive(Clone)]
pub enum Reads {
    /// On one of tokio's blocking threads, so a long read never holds the runtime.
    Blocking,
    /// In a task of the caller's runtime ([`Execution::Inline`](crate::writer::Execution::Inline)):
    /// no thread but the runtime's, for a deterministic simulation. As on a blocking thread,
    /// the read goes on when its caller hangs up; with `disk`, it holds its connection for the
    /// time the disk gives ([`DiskOp::Read`]) before it runs.
    Inline { disk: Option<DiskDelay> },
}

pub struct Readers {
    /// Idle connections. Never held across a read or anything that can panic, and not
    /// poisoned by a panic elsewhere (parking_lot's lock has no poisoning).
    idle: Mutex<Vec<ReadConn>>,
    /// One per connection; a permit is held for as long as its connection is out.
    permits: Arc<Semaphore>,
    /// How many connections the pool has.
    size: u32,
    source: Source,
    reads: Reads,
    /// How many times a permit came without an idle connection (see [`Readers::strays`]).
    strays: AtomicU64,
}

/// A connection out of the pool with the permit that let it out; both go back on drop.
struct Lent {
    conn: Option<ReadConn>,
    pool: Arc<Readers>,
    /// Released after the connection is back (fields drop after [`Drop::drop`] ran); `None`
    /// only in the planted bug's build ([`callers_share`]).
    _permit: Option<OwnedSemaphorePermit>,
}

impl Lent {
    /// Runs `work` in a read transaction on this connection.
    fn run<T>(self, work: impl FnOnce(&dyn Db) -> Result<T, ShopError>) -> Result<T, ShopError> {
        let conn = self.conn.as_deref().expect("a lent connection is there until dropped");
        let result = conn
            .begin(Begin::Read)
            .map_err(crate::sql::storage_error)
            .and_then(|_| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
                    .unwrap_or_else(|_| Err(ShopError::unavailable("a read failed unexpectedly")))
            });
        let _ = conn.rollback();
        result
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().push(conn);
        }
    }
}

impl Readers {
    pub fn new(conns: Vec<ReadConn>, source: Source, reads: Reads) -> Self {
        assert!(!conns.is_empty());
        Readers {
            permits: Arc::new(Semaphore::new(conns.len())),
            size: u32::try_from(conns.len()).expect("a pool of fewer than 2^32 connections"),
            idle: Mutex::new(conns),
            source,
            reads,
            strays: AtomicU64::new(0),
        }
    }

    /// How many times a read was refused because its permit came without an idle
    /// connection: always 0 unless the pool's bookkeeping is broken (a connection lent twice,
    /// or a permit freed while its connection is still out). Counted for a simulation's
    /// checker, which holds the pool to it (issue 12).
    pub fn strays(&self) -> u64 {
        self.strays.load(Ordering::Relaxed)
    }

    /// Runs `work` on a read connection in a blocking thread (or, with [`Reads::Inline`],
    /// on the caller's), inside one read transaction so that everything it reads is from one
    /// snapshot. Dropping the returned future does not stop a read that has begun: it runs
    /// to its end and gives its connection back.
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        let mut lent = self.lend().await?;
        let _callers = callers_share(&mut lent);
        let read = match &self.reads {
            Reads::Blocking => tokio::task::spawn_blocking(move || lent.run(work)),
            Reads::Inline { disk } => {
                let slow = disk.as_ref().map_or(Duration::ZERO, |d| d(DiskOp::Read));
                tokio::spawn(async move {
                    if !slow.is_zero() {
                        tokio::time::sleep(slow).await;
                    }
                    lent.run(work)
                })
            }
        };
        read.await
            .unwrap_or_else(|_| Err(ShopError::unavailable("a read failed unexpectedly")))
    }

    /// Like [`read`](Readers::read), for a read by key of a row or two: from a local file
    /// it runs on the calling thread, which it holds for microseconds, rather than hopping
    /// to a blocking thread and back (faster through the cluster: docs/decisions.md,
    /// "Figures out of code comments").
    /// From a server it is a [`read`](Readers::read). (A WAL reader waits only in SQLite's
    /// rare recovery of the WAL index, within the connection's busy timeout.)
    pub async fn lookup<T, F>(self: &Arc<Self>, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        match self.source {
            Source::Server => self.read(work).await,
            Source::LocalFile => self.lend().await?.run(work),
        }
    }

    /// Whether the pool can read: a trivial read within `timeout_ms`, waiting for a
    /// connection included (for health checks).
    pub async fn probe(self: &Arc<Self>, timeout_ms: u64) -> Result<(), ShopError> {
        let read = self.read(|c| {
            c.query_row("SELECT 1", crate::params![], |_| Ok(()))
                .map_err(crate::sql::storage_error)
        });
        match tokio::time::timeout(Duration::from_millis(timeout_ms), read).await {
            Ok(result) => result,
            Err(_) => Err(ShopError::unavailable(format!(
                "no read of the database finished within {timeout_ms} ms"
            ))),
        }
    }

    /// Closes the pool: later reads are refused ("the database is closed"); waits up to
    /// `within` for the reads under way to give their connections back, then closes every
    /// idle connection. Whether all were closed (one still out when time ran out closes
    /// when the process ends).
    pub async fn close(&self, within: Duration) -> bool {
        let waited = tokio::time::timeout(within, self.permits.acquire_many(self.size)).await;
        self.permits.close();
        let closed = std::mem::take(&mut *self.idle.lock());
        let complete = matches!(waited, Ok(Ok(_))) && closed.len() == self.size as usize;
        drop(closed);
        complete
    }

    /// Waits for a permit, then takes an idle connection with it.
    async fn lend(self: &Arc<Self>) -> Result<Lent, ShopError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ShopError::unavailable("the database is closed"))?;
        // A permit is only ever free with its connection back in `idle`; should that ever
        // fail, this read is refused and nothing else is affected.
        let conn = self.idle.lock().pop();
        match conn {
            Some(conn) => Ok(Lent {
                conn: Some(conn),
                pool: Arc::clone(self),
                _permit: Some(permit),
            }),
            None => {
                self.strays.fetch_add(1, Ordering::Relaxed);
                tracing::error!("a read permit came without an idle connection");
                Err(ShopError::unavailable("no read connection is free"))
            }
        }
    }
}

/// What of a lent connection the caller of [`Readers::read`] keeps while the read runs:
/// nothing. Everything travels with the read, so a caller that hangs up frees nothing the
/// read still uses.
#[cfg(not(feature = "plant-read-permit-with-caller"))]
fn callers_share(_lent: &mut Lent) -> Option<OwnedSemaphorePermit> {
    None
}

/// A planted bug, for the simulation's proof that it has teeth (issue 12): the hardening
/// issue's read pool, whose permit stayed with the caller, so a caller that hung up freed it
/// while its connection was still out, and the next read found a permit without a connection.
#[cfg(feature = "plant-read-permit-with-caller")]
fn callers_share(lent: &mut Lent) -> Option<OwnedSemaphorePermit> {
    lent._permit.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(source: Source) -> Arc<Readers> {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        Arc::new(Readers::new(vec![Box::new(conn)], source, Reads::Blocking))
    }

    fn this_thread() -> Result<std::thread::ThreadId, ShopError> {
        Ok(std::thread::current().id())
    }

    #[tokio::test]
    async fn a_lookup_in_a_local_file_runs_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let ran_on = pool(Source::LocalFile).lookup(|_| this_thread()).await.unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test]
    async fn a_lookup_on_a_server_and_every_read_run_on_a_blocking_thread() {
        let caller = std::thread::current().id();
        let ran_on = pool(Source::Server).lookup(|_| this_thread()).await.unwrap();
        assert_ne!(ran_on, caller);
        let ran_on = pool(Source::LocalFile).read(|_| this_thread()).await.unwrap();
        assert_ne!(ran_on, caller);
    }

    fn answer(c: &dyn Db) -> Result<i64, ShopError> {
        c.query_row("SELECT 41 + 1", crate::params![], |r| r.get::<_, i64>(0))
            .map_err(crate::sql::storage_error)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_pool_waits_for_the_read_under_way_then_refuses_every_read() {
        let readers = pool(Source::LocalFile);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let under_way = tokio::spawn({
            let readers = Arc::clone(&readers);
            async move {
                readers
                    .read(move |c| {
                        started_tx.send(()).unwrap();
                        released.recv().unwrap();
                        answer(c)
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        let closing = tokio::spawn({
            let readers = Arc::clone(&readers);
            async move { readers.close(Duration::from_secs(20)).await }
        });
        release.send(()).unwrap();
        assert_eq!(under_way.await.unwrap().unwrap(), 42);
        assert!(closing.await.unwrap(), "every connection was closed");
        let refused = readers.read(answer).await.unwrap_err();
        assert!(refused.to_string().contains("closed"), "{refused}");
        assert!(readers.idle.lock().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_whose_caller_hung_up_keeps_its_connection_and_the_next_read_waits_for_it() {
        let readers = pool(Source::LocalFile);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let hung_up = tokio::spawn({
            let readers = Arc::clone(&readers);
            async move {
                readers
                    .read(move |c| {
                        started_tx.send(()).unwrap();
                        released.recv().unwrap();
                        answer(c)
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        hung_up.abort(); // the client hangs up while its read runs on the blocking thread
        assert!(hung_up.await.unwrap_err().is_cancelled());
        let next = tokio::spawn({
            let readers = Arc::clone(&readers);
            async move { readers.read(answer).await }
        });
        release.send(()).unwrap();
        assert_eq!(
            next.await.unwrap().unwrap(),
            42,
            "the next read waited for the connection"
        );
        for _ in 0..10 {
            assert_eq!(readers.read(answer).await.unwrap(), 42);
            assert_eq!(readers.lookup(answer).await.unwrap(), 42);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_dropped_at_any_point_leave_every_connection_in_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let conns = (0..2)
            .map(|_| Box::new(crate::db::open_connection(&dir.path().join("r.db")).unwrap()) as ReadConn)
            .collect();
        let readers = Arc::new(Readers::new(conns, Source::LocalFile, Reads::Blocking));
        let slow = |c: &dyn Db| {
            std::thread::sleep(Duration::from_micros(300));
            answer(c)
        };
        let mut callers = tokio::task::JoinSet::new();
        for i in 0..400u64 {
            let readers = Arc::clone(&readers);
            callers.spawn(async move {
                // Given up after 0 to 400 µs: before a permit, before the blocking thread
                // starts, mid-read, or never.
                let patience = Duration::from_micros(i % 5 * 100);
                let _ = tokio::time::timeout(patience, readers.read(slow)).await;
            });
        }
        while let Some(done) = callers.join_next().await {
            done.unwrap();
        }
        for _ in 0..10 {
            let (a, b, c) = tokio::join!(readers.read(answer), readers.read(answer), readers.lookup(answer));
            assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (42, 42, 42));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_inline_read_on_a_slow_disk_goes_on_when_its_caller_hangs_up_and_keeps_its_connection_until_done() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let disk: DiskDelay = Arc::new(|op| {
            assert_eq!(op, DiskOp::Read);
            Duration::from_millis(100)
        });
        let readers = Arc::new(Readers::new(
            vec![Box::new(conn)],
            Source::LocalFile,
            Reads::Inline { disk: Some(disk) },
        ));
        let (ran_tx, ran) = std::sync::mpsc::channel();
        let started = tokio::time::Instant::now();
        let hung_up = tokio::time::timeout(
            Duration::from_millis(10),
            readers.read(move |c| {
                ran_tx.send(tokio::time::Instant::now()).unwrap();
                answer(c)
            }),
        )
        .await;
        assert!(hung_up.is_err(), "the caller gave up before the disk answered");
        // The next read waits for the connection the first one still holds, then runs.
        assert_eq!(readers.read(answer).await.unwrap(), 42);
        let first_ran = ran.try_recv().expect("the first read ran though its caller hung up");
        assert_eq!(first_ran - started, Duration::from_millis(100));
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "one slow read after the other"
        );
        assert_eq!(readers.strays(), 0);
        assert!(readers.close(Duration::ZERO).await, "every connection is back");
    }

    #[tokio::test]
    async fn a_probe_that_cannot_read_in_time_says_so() {
        let readers = pool(Source::LocalFile);
        assert_eq!(readers.probe(1_000).await, Ok(()));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let readers = Arc::clone(&readers);
            async move {
                readers
                    .read(move |c| {
                        started_tx.send(()).unwrap();
                        released.recv().unwrap();
                        answer(c)
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        let probe = readers.probe(20).await;
        assert!(
            matches!(&probe, Err(ShopError::Unavailable { detail }) if detail.contains("20 ms")),
            "{probe:?}"
        );
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(readers.probe(1_000).await, Ok(()));
    }

    #[tokio::test]
    async fn a_lookup_that_panics_is_an_error_and_its_connection_goes_back() {
        let readers = pool(Source::LocalFile);
        let failed = readers.lookup(|_| -> Result<(), ShopError> { panic!("a bug") }).await;
        assert!(matches!(failed, Err(ShopError::Unavailable { .. })), "{failed:?}");
        let answer = readers
            .lookup(|c| {
                c.query_row("SELECT 41 + 1", crate::params![], |r| r.get::<_, i64>(0))
                    .map_err(crate::sql::storage_error)
            })
            .await;
        assert_eq!(answer.unwrap(), 42);
    }
}
