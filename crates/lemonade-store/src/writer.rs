//! The single writer, with group commit.
//!
//! Every change to the database is a job sent to one thread that owns the only writing
//! connection. The thread takes whatever jobs are waiting (up to `batch_max`), runs them one
//! after another inside one `BEGIN IMMEDIATE` transaction, commits once (one fsync for the
//! whole group), and only then answers each job.
//!
//! The contract of a job: **check, then write**. A job that refuses (bad input, not enough
//! stock) must do so before its first write, so its refusal leaves nothing behind and the
//! batch goes on. A job that fails after writing cannot be undone alone (there are no
//! savepoints: they cost more than the rest of an order, copying every page they touch; see
//! docs/decisions.md), so the whole batch is rolled back and every caller in it gets `Unavailable`, which
//! with idempotency keys is always safe to retry.
//!
//! Durability is pipelined ([`Durability::Syncer`]): SQLite commits without syncing
//! (`synchronous=NORMAL`, which still syncs the WAL before a checkpoint and the database after
//! it), and a syncer thread fdatasyncs the WAL file and only then answers the batch, while
//! the writer already works on the next one. So a caller's `Ok` always means "durably
//! committed", one fsync serves every batch committed while the previous one was on disk, and
//! the writer never waits for the disk. With [`Durability::InCommit`] SQLite syncs inside
//! COMMIT (`synchronous=FULL`) and the writer waits: with `batch_max = 1` that is the
//! one-commit-one-fsync-per-order baseline the benchmark compares to.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use lemonade_domain::ShopError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::conn::{Begin, Db};

type Deliver = Box<dyn FnOnce(Option<ShopError>) + Send>;
type Job = Box<dyn FnOnce(&dyn Db) -> (bool, Deliver) + Send>;
/// Work on the writer's connection outside any transaction (see [`Writer::between_batches`]).
type Chore = Box<dyn FnOnce(&dyn Db) + Send>;

/// What the writer thread is sent.
enum Work {
    /// A job for the next group commit.
    Job(Job),
    /// A chore for between two group commits.
    Chore(Chore),
    /// Stop after the batch in hand: close the connection, wait for the syncer, then answer.
    Stop(oneshot::Sender<()>),
    /// Nothing: wakes a writer waiting for work so that it sees a crash.
    Wake,
}
/// The writer's connection.
pub type WriteConn = Box<dyn Db + Send>;

/// Most jobs in one group commit by default: below the 64 clients of the benchmark, so one
/// batch syncs while the next is written (figures: docs/decisions.md, "Figures out of code
/// comments").
pub const BATCH_MAX_DEFAULT: usize = 32;

#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Most jobs committed together. 1 disables group commit.
    pub batch_max: usize,
    /// Most jobs waiting for the writer; past that callers get `Unavailable` at once.
    pub queue_max: usize,
    /// What a failure nothing can repair (a failed fsync of the WAL) does: by default, abort
    /// the process.
    pub on_fatal: Fatal,
    /// Where the writer and the readers run: their own threads (production), or inline on
    /// the runtime that opened the database (a deterministic simulation).
    pub execution: Execution,
    /// How many read connections the database's pool opens (at least 1); by default
    /// [`READERS_MAX`](crate::db::READERS_MAX). A simulation draws fewer, so that its
    /// readers queue for them.
    pub readers: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_max: BATCH_MAX_DEFAULT,
            queue_max: 8_192,
            on_fatal: Fatal::default(),
            execution: Execution::Threads,
            readers: crate::db::READERS_MAX,
        }
    }
}

/// What a [`DiskDelay`] is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// One group commit, until it is on disk.
    Commit,
    /// One read, until its pages are in memory.
    Read,
}

/// How long one group commit or one read takes on the disk, asked once for each (a slow
/// disk, in a simulation); zero for a fast one.
pub type DiskDelay = Arc<dyn Fn(DiskOp) -> std::time::Duration + Send + Sync>;

/// Where a database's writer and readers run.
#[derive(Clone, Default)]
pub enum Execution {
    /// The writer on a thread of its own (and, with group commit, a syncer thread), reads on
    /// tokio's blocking threads: a slow query or fsync never holds the runtime.
    #[default]
    Threads,
    /// Everything on the tokio runtime that opened the database: the writer is a task of it,
    /// every commit is synced inside COMMIT, and reads run in tasks of it (as on blocking
    /// threads: a read goes on when its caller hangs up). Nothing runs on another thread, so
    /// a current-thread runtime with paused time runs it all in an order its seed decides
    /// (the simulation, issue 12). With `disk`, each commit's answers wait the time it gives,
    /// on the runtime's clock, in a task of their own while the writer goes on (as the syncer
    /// thread does): the window between a commit and its answer where a crash loses only the
    /// answer; and each read holds its connection for the time it gives before it runs.
    Inline { disk: Option<DiskDelay> },
}

impl Execution {
    /// Whether this is [`Execution::Inline`].
    pub fn is_inline(&self) -> bool {
        matches!(self, Execution::Inline { .. })
    }
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Execution::Threads => f.write_str("Threads"),
            Execution::Inline { disk } => {
                write!(f, "Inline {{ disk: {} }}", if disk.is_some() { "slow" } else { "none" })
            }
        }
    }
}

/// What the syncer does when an fsync of the WAL fails: the page cache can no longer be
/// trusted (the kernel may drop the dirty pages and report success next time), so nothing
/// may be acknowledged any more. The default aborts the process; a test (or a simulation)
/// gives a hook that records the failure instead. Should the hook return, the syncer stops:
/// what it held and everything after is never acknowledged (callers are told to retry, and
/// the writer stops too).
#[derive(Clone)]
pub struct Fatal(Arc<dyn Fn(&str) + Send + Sync>);

impl Fatal {
    /// A hook that runs `hook` with a sentence saying what failed.
    pub fn new(hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Fatal(Arc::new(hook))
    }

    fn fail(&self, why: &str) {
        (self.0)(why)
    }
}

impl Default for Fatal {
    /// Aborts the process (after saying why on standard error).
    fn default() -> Self {
        Fatal::new(|why| {
            eprintln!("fatal: {why}");
            std::process::abort();
        })
    }
}

impl std::fmt::Debug for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fatal(..)")
    }
}

/// How a commit becomes durable before its callers are answered.
#[derive(Clone, Debug)]
pub enum Durability {
    /// SQLite syncs the WAL inside COMMIT (`synchronous=FULL`); the writer waits for it.
    InCommit,
    /// SQLite commits without syncing (`synchronous=NORMAL`); a syncer thread fdatasyncs this
    /// WAL file, then answers everything committed before the sync began.
    Syncer { wal_path: PathBuf },
}

/// Most committed batches waiting for the syncer before the writer waits for it.
const SYNC_QUEUE_MAX: usize = 64;

/// A handle to the writer thread (or task). Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Work>,
    /// Set by [`Writer::crash`]: the writer drops what it holds and stops.
    crashed: Arc<AtomicBool>,
    /// Becomes `true` once the writer has stopped and closed its connection.
    ended: watch::Receiver<bool>,
}

fn storage_down(detail: impl std::fmt::Display) -> ShopError {
    ShopError::unavailable(format!("the database could not commit: {detail}"))
}

impl Writer {
    pub fn start(conn: WriteConn, config: WriterConfig) -> Writer {
        Writer::start_with(conn, config, Durability::InCommit, Box::new(|| {}))
    }

    /// Like [`Writer::start`], with a choice of [`Durability`] (the connection's `synchronous`
    /// setting must match it); `on_rollback` runs on the writer thread whenever a batch is
    /// rolled back, so in-memory state derived from its writes can be dropped.
    /// With [`Execution::Inline`], `durability` must be [`Durability::InCommit`] and this
    /// must be called inside a tokio runtime.
    pub fn start_with(
        conn: WriteConn,
        config: WriterConfig,
        durability: Durability,
        on_rollback: Box<dyn Fn() + Send>,
    ) -> Writer {
        assert!(config.batch_max >= 1 && config.queue_max >= 1);
        let (jobs, rx) = mpsc::channel(config.queue_max);
        let crashed = Arc::new(AtomicBool::new(false));
        let (ended_tx, ended) = watch::channel(false);
        let loop_ = Loop {
            rx,
            batch_max: config.batch_max,
            on_rollback,
            crashed: Arc::clone(&crashed),
        };
        match config.execution {
            Execution::Threads => {
                let synced = match durability {
                    Durability::InCommit => None,
                    Durability::Syncer { wal_path } => {
                        let (tx, rx) = std::sync::mpsc::sync_channel(SYNC_QUEUE_MAX);
                        let on_fatal = config.on_fatal.clone();
                        let syncer = std::thread::Builder::new()
                            .name("lemonade-syncer".into())
                            .spawn(move || sync_loop(wal_path, rx, on_fatal))
                            .expect("spawn the syncer thread");
                        Some(Syncer {
                            batches: tx,
                            thread: syncer,
                        })
                    }
                };
                std::thread::Builder::new()
                    .name("lemonade-writer".into())
                    .spawn(move || {
                        run(conn, loop_, synced);
                        let _ = ended_tx.send(true);
                    })
                    .expect("spawn the writer thread");
            }
            Execution::Inline { disk } => {
                assert!(
                    matches!(durability, Durability::InCommit),
                    "an inline writer syncs inside COMMIT"
                );
                tokio::spawn(async move {
                    run_inline(conn, loop_, disk).await;
                    let _ = ended_tx.send(true);
                });
            }
        }
        Writer { jobs, crashed, ended }
    }

    /// Stops the writer as a crash of its process would: the batch in hand, if any, is
    /// committed or not as it happens, and then every job waiting and every commit not yet
    /// answered is dropped (their callers are told the write may not have happened, which
    /// an idempotency key makes safe to retry); the connection closes without any clean-up.
    /// Returns once the writer has closed its connection. For simulations and tests of
    /// recovery: what is committed stays in the file, as after a crash.
    pub async fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
        // Wakes a writer waiting for work; one busy sees the flag at its next batch.
        let _ = self.jobs.try_send(Work::Wake);
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// Whether the writer thread still takes jobs. It stops only on a fault nothing in
    /// this process can repair (a failed fsync stops the whole process instead); after
    /// that every write is refused, and health says so.
    pub fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Runs `work` in the next group commit. `Ok` is returned only after the commit is durable.
    /// `work` must return its `Err`s before its first write (see the module docs).
    pub async fn execute<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = work(conn);
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    Some(e) => Err(e),
                    None => result,
                });
            });
            (ok, deliver)
        });
        self.send(Work::Job(job))?;
        // A dropped sender means the job never committed (the transaction failed or the job
        // panicked): the caller may retry.
        rx.await
            .unwrap_or_else(|_| Err(storage_down("the transaction was rolled back")))
    }

    /// Runs `work` on the writer's connection between two group commits, outside any
    /// transaction (for what SQLite or PostgreSQL will not do inside one: a checkpoint, a
    /// vacuum). It holds the writer for as long as it runs, so it must be short.
    pub async fn between_batches<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let chore: Chore = Box::new(move |conn| {
            let _ = tx.send(work(conn));
        });
        self.send(Work::Chore(chore))?;
        rx.await.unwrap_or_else(|_| {
            Err(ShopError::unavailable(
                "the database writer stopped before the work was done",
            ))
        })
    }

    /// Stops the writer thread after the batch in hand: every job sent before this one is
    /// committed and answered, the connection is closed (so SQLite, once the readers close
    /// too, folds its WAL back and removes it), and the syncer has answered what it held.
    /// Jobs sent after it are refused ("the database writer has stopped"). Waits for a place
    /// in a full queue rather than refusing. Returns once the thread is done.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Work::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    fn send(&self, work: Work) -> Result<(), ShopError> {
        self.jobs.try_send(work).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ShopError::unavailable("the shop is busy: too many writes waiting"),
            mpsc::error::TrySendError::Closed(_) => ShopError::unavailable("the database writer has stopped"),
        })
    }
}

/// Runs a chore, answering its caller; one that panics is dropped (its caller hears that the
/// writer stopped before doing it) and the writer goes on.
fn run_chore(conn: &dyn Db, chore: Chore) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| chore(conn))).is_err() {
        tracing::error!("a chore of the writer panicked");
        let _ = conn.rollback();
    }
}

/// The syncer: fdatasync the WAL, then answer every batch committed before the sync began.
/// A failed fsync leaves the page cache in a state nobody can trust (the kernel may drop the
/// dirty pages and report success next time), so it goes to `on_fatal` (by default the
/// process stops) rather than carry on; should that return, the syncer stops.
fn sync_loop(wal_path: PathBuf, batches: std::sync::mpsc::Receiver<Vec<Deliver>>, on_fatal: Fatal) {
    let mut wal: Option<std::fs::File> = None;
    while let Ok(first) = batches.recv() {
        let mut waiting = vec![first];
        waiting.extend(batches.try_iter());
        let started = Instant::now();
        let synced = match &wal {
            Some(f) => f.sync_data(),
            None => std::fs::File::open(&wal_path).and_then(|f| f.sync_data().map(|()| wal = Some(f))),
        };
        if let Err(e) = synced {
            tracing::error!(error = %e, wal = %wal_path.display(), "fsync of the WAL failed; stopping");
            on_fatal.fail(&format!(
                "fsync of {} failed: {e}; stopping so that nothing unsynced is acknowledged",
                wal_path.display()
            ));
            // The hook returned (a test's): nothing held or sent later is acknowledged.
            return;
        }
        metrics::histogram!("lemonade_sync_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("lemonade_sync_batches").record(waiting.len() as f64);
        waiting.into_iter().flatten().for_each(|d| d(None));
    }
}

/// The syncer thread and the way to hand it committed batches.
struct Syncer {
    batches: std::sync::mpsc::SyncSender<Vec<Deliver>>,
    thread: std::thread::JoinHandle<()>,
}

/// What the writer's loop works from: its queue, its batch size, what a rollback does, and
/// the crash flag.
struct Loop {
    rx: mpsc::Receiver<Work>,
    batch_max: usize,
    on_rollback: Box<dyn Fn() + Send>,
    crashed: Arc<AtomicBool>,
}

/// What one turn of the writer's loop did.
struct Turn {
    /// How to answer the jobs of the batch it committed, if it committed one.
    committed: Option<Vec<Deliver>>,
    /// `Some` when the writer stops after this turn: with the stopper to answer, or `None`
    /// when it cannot go on (a crash).
    stop: Option<Option<oneshot::Sender<()>>>,
}

impl Turn {
    fn next(committed: Option<Vec<Deliver>>) -> Turn {
        Turn { committed, stop: None }
    }

    fn stop(stopper: Option<oneshot::Sender<()>>, committed: Option<Vec<Deliver>>) -> Turn {
        Turn {
            committed,
            stop: Some(stopper),
        }
    }
}

impl Loop {
    /// One turn from the work `first`: a chore, a stop, or a group commit of `first` and the
    /// jobs already waiting, then what came after them.
    fn turn(&mut self, conn: &dyn Db, first: Work) -> Turn {
        if self.crashed.load(Ordering::SeqCst) {
            return Turn::stop(None, None);
        }
        let mut batch: Vec<Job> = Vec::with_capacity(self.batch_max);
        match first {
            Work::Job(job) => batch.push(job),
            Work::Chore(chore) => {
                run_chore(conn, chore);
                return Turn::next(None);
            }
            Work::Stop(stopper) => return Turn::stop(Some(stopper), None),
            Work::Wake => return Turn::next(None),
        }
        // A chore or stop that arrived while the batch was being gathered: it comes after it.
        let after = gather(&mut self.rx, &mut batch, self.batch_max);
        let started = Instant::now();
        let size = batch.len();
        let committer = Committer {
            conn,
            on_rollback: &*self.on_rollback,
        };
        let committed = match conn.begin(Begin::Write) {
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a write transaction");
                batch.clear(); // dropping the jobs answers their callers with Unavailable
                None
            }
            Ok(()) => {
                let mut delivers = Vec::with_capacity(size);
                let aborted = committer.run_jobs(&mut batch, &mut delivers);
                let committed = committer.end(aborted, size, delivers);
                metrics::histogram!("lemonade_commit_jobs").record(size as f64);
                metrics::histogram!("lemonade_commit_seconds").record(started.elapsed().as_secs_f64());
                committed
            }
        };
        match after {
            Some(Work::Stop(stopper)) => Turn::stop(Some(stopper), committed),
            Some(Work::Chore(chore)) => {
                run_chore(conn, chore);
                Turn::next(committed)
            }
            _ => Turn::next(committed),
        }
    }
}

/// The writer thread: group commits until every handle is dropped, [`Work::Stop`] comes or
/// it crashes, then closes its connection and, after the syncer has answered all it held,
/// the stopper.
fn run(conn: WriteConn, mut loop_: Loop, synced: Option<Syncer>) {
    let mut stopper = None;
    while let Some(first) = loop_.rx.blocking_recv() {
        let Turn { committed, stop } = loop_.turn(&*conn, first);
        if let Some(delivers) = committed {
            match &synced {
                None => delivers.into_iter().for_each(|d| d(None)),
                Some(syncer) => {
                    if syncer.batches.send(delivers).is_err() {
                        // Dropped delivers answer their callers "rolled back, retry".
                        tracing::error!("the syncer has stopped; stopping the writer");
                        break;
                    }
                }
            }
        }
        if let Some(stop) = stop {
            stopper = stop;
            break;
        }
    }
    // The queue closes first: from here on `is_running` is false and new work refused.
    drop(loop_);
    drop(conn);
    if let Some(Syncer { batches, thread }) = synced {
        drop(batches);
        let _ = thread.join();
    }
    if let Some(stopper) = stopper {
        let _ = stopper.send(());
    }
}

/// The writer as a task ([`Execution::Inline`]): the same turns as the thread's, on the
/// runtime; with `disk`, each commit is answered by a task of its own after the disk's
/// delay (unless the writer crashed meanwhile), and a stop waits for those answers.
async fn run_inline(conn: WriteConn, mut loop_: Loop, disk: Option<DiskDelay>) {
    let answering = tokio_util::task::TaskTracker::new();
    let mut stopper = None;
    while let Some(first) = loop_.rx.recv().await {
        let Turn { committed, stop } = loop_.turn(&*conn, first);
        if let Some(delivers) = committed {
            match &disk {
                None => delivers.into_iter().for_each(|d| d(None)),
                Some(delay) => {
                    let (delay, crashed) = (delay(DiskOp::Commit), Arc::clone(&loop_.crashed));
                    answering.spawn(async move {
                        tokio::time::sleep(delay).await;
                        if !crashed.load(Ordering::SeqCst) {
                            delivers.into_iter().for_each(|d| d(None));
                        }
                    });
                }
            }
        }
        if let Some(stop) = stop {
            stopper = stop;
            break;
        }
    }
    drop(loop_);
    drop(conn);
    answering.close();
    answering.wait().await;
    if let Some(stopper) = stopper {
        let _ = stopper.send(());
    }
}

/// Adds to `batch` the jobs already waiting, without waiting for more, until it holds
/// `batch_max`. Returns the chore or stop that ended the gathering, if one did: it comes after
/// the batch.
fn gather(rx: &mut mpsc::Receiver<Work>, batch: &mut Vec<Job>, batch_max: usize) -> Option<Work> {
    while batch.len() < batch_max {
        match rx.try_recv() {
            Ok(Work::Job(job)) => batch.push(job),
            Ok(other) => return Some(other),
            Err(_) => break,
        }
    }
    None
}

/// What the writer runs and commits batches with.
struct Committer<'a> {
    conn: &'a dyn Db,
    on_rollback: &'a dyn Fn(),
}

impl Committer<'_> {
    /// Runs the batch's jobs in the open transaction, keeping how to answer each one that
    /// succeeded in `delivers`. Returns whether the batch must be rolled back.
    fn run_jobs(&self, batch: &mut Vec<Job>, delivers: &mut Vec<Deliver>) -> bool {
        let conn = self.conn;
        let mut aborted = false;
        for job in batch.drain(..) {
            if aborted {
                continue; // dropped: its caller is answered "rolled back, retry"
            }
            let changes_before = conn.changes();
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))) {
                Ok((true, deliver)) => delivers.push(deliver),
                // Jobs check before they write, so a refusal has written nothing and the rest of
                // the batch goes on. One that wrote and then failed is a bug or a storage fault:
                // the whole batch is rolled back and every caller told to retry.
                Ok((false, deliver)) if conn.changes() == changes_before => deliver(None),
                Ok((false, _)) => {
                    tracing::error!("a write job failed after writing; rolling back its whole batch");
                    aborted = true;
                }
                Err(_) => {
                    tracing::error!("a write job panicked; rolling back its whole batch");
                    aborted = true;
                }
            }
            // SQLite may roll the whole transaction back by itself (disk full, I/O error).
            aborted |= !conn.can_commit();
        }
        aborted
    }

    /// Ends the batch's transaction: commits it unless `aborted`, and returns how to answer
    /// its jobs once the commit is durable; a batch that does not commit is rolled back and
    /// every job in it answered "unavailable" at once (`None`).
    fn end(&self, aborted: bool, size: usize, mut delivers: Vec<Deliver>) -> Option<Vec<Deliver>> {
        let conn = self.conn;
        let committed = if aborted {
            Err("the transaction was aborted".to_owned())
        } else {
            conn.commit().map_err(|e| e.to_string())
        };
        match committed {
            Ok(()) => Some(delivers),
            Err(e) => {
                tracing::error!(error = %e, jobs = size, "group commit failed; every job in it is rolled back");
                let _ = conn.rollback();
                (self.on_rollback)();
                delivers.drain(..).for_each(|d| d(Some(storage_down(&e))));
                None
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn writer(batch_max: usize) -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_connection(&dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)").unwrap();
        (
            Writer::start(
                Box::new(conn),
                WriterConfig {
                    batch_max,
                    queue_max: 1024,
                    ..WriterConfig::default()
                },
            ),
            dir,
        )
    }

    fn count(dir: &tempfile::TempDir) -> i64 {
        let conn = crate::db::open_connection(&dir.path().join("w.db")).unwrap();
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    fn insert(conn: &dyn Db) -> Result<(), ShopError> {
        conn.execute("INSERT INTO t (v) VALUES (1)", crate::params![])
            .map(drop)
            .map_err(crate::sql::storage_error)
    }

    /// An inline writer on a current-thread runtime with paused time: `disk` says how long
    /// each commit takes to be answered.
    fn inline_writer(disk: Option<DiskDelay>) -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_connection(&dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)").unwrap();
        let config = WriterConfig {
            batch_max: 8,
            queue_max: 64,
            execution: Execution::Inline { disk },
            ..WriterConfig::default()
        };
        (
            Writer::start_with(Box::new(conn), config, Durability::InCommit, Box::new(|| {})),
            dir,
        )
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_inline_writer_group_commits_on_the_runtime_and_answers_after_the_disk_delay() {
        let (w, dir) = inline_writer(Some(Arc::new(|_| std::time::Duration::from_millis(40))));
        let started = tokio::time::Instant::now();
        let jobs: Vec<_> = (0..5)
            .map(|_| {
                let w = w.clone();
                tokio::spawn(async move { w.execute(insert).await })
            })
            .collect();
        for job in futures_join(jobs.into_iter()).await {
            assert_eq!(job, Ok(()));
        }
        // Five jobs in one group commit, answered after one disk delay on the virtual clock.
        assert_eq!(started.elapsed(), std::time::Duration::from_millis(40));
        assert_eq!(count(&dir), 5);
        w.stop().await;
        assert!(!w.is_running());
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_crash_between_commit_and_answer_keeps_the_commit_and_loses_only_the_answer() {
        let (w, dir) = inline_writer(Some(Arc::new(|_| std::time::Duration::from_millis(500))));
        let committed = tokio::spawn({
            let w = w.clone();
            async move { w.execute(insert).await }
        });
        // The commit is done at once; its answer waits for the slow disk.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(count(&dir), 1);
        w.crash().await;
        let answer = committed.await.unwrap();
        assert!(answer.is_err(), "a crashed writer answers nothing as done: {answer:?}");
        assert_eq!(count(&dir), 1, "what was committed stays");
        assert!(w.execute(insert).await.is_err(), "a crashed writer takes no more work");
        assert_eq!(count(&dir), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crashed_writer_thread_drops_what_waits_and_closes_its_connection() {
        let (w, dir) = writer(4);
        assert_eq!(w.execute(insert).await, Ok(()));
        w.crash().await;
        assert!(!w.is_running());
        assert!(w.execute(insert).await.is_err());
        assert_eq!(count(&dir), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_goes_to_the_fatal_hook_and_the_write_is_never_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_connection(&dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL); PRAGMA synchronous = NORMAL")
            .unwrap();
        let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = Arc::clone(&failures);
        let config = WriterConfig {
            batch_max: 8,
            on_fatal: Fatal::new(move |why| seen.lock().unwrap().push(why.to_owned())),
            ..WriterConfig::default()
        };
        // A WAL that cannot be opened: the sync fails.
        let wal_path = dir.path().join("missing").join("w.db-wal");
        let w = Writer::start_with(Box::new(conn), config, Durability::Syncer { wal_path }, Box::new(|| {}));
        assert!(
            w.execute(insert).await.is_err(),
            "an unsynced write is not acknowledged"
        );
        let failures = failures.lock().unwrap().clone();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("fsync of"), "{failures:?}");
        // The syncer stopped: so does the writer, at its next commit.
        let _ = w.execute(insert).await;
        assert!(w.execute(insert).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_syncer_every_job_is_answered_once_its_batch_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = crate::db::open_connection(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL); PRAGMA synchronous = NORMAL")
            .unwrap();
        let wal_path = dir.path().join("w.db-wal");
        let config = WriterConfig {
            batch_max: 64,
            queue_max: 1024,
            ..WriterConfig::default()
        };
        let w = Writer::start_with(Box::new(conn), config, Durability::Syncer { wal_path }, Box::new(|| {}));
        let jobs: Vec<_> = (0..500)
            .map(|_| {
                let w = w.clone();
                tokio::spawn(async move { w.execute(insert).await })
            })
            .collect();
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        assert_eq!(count(&dir), 500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_commits_what_came_before_it_closes_the_file_and_refuses_what_comes_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = crate::db::open_connection(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL); PRAGMA synchronous = NORMAL")
            .unwrap();
        let wal_path = dir.path().join("w.db-wal");
        let config = WriterConfig {
            batch_max: 8,
            queue_max: 1024,
            ..WriterConfig::default()
        };
        let w = Writer::start_with(
            Box::new(conn),
            config,
            Durability::Syncer {
                wal_path: wal_path.clone(),
            },
            Box::new(|| {}),
        );
        let before: Vec<_> = (0..100)
            .map(|_| {
                let w = w.clone();
                tokio::spawn(async move { w.execute(insert).await })
            })
            .collect();
        tokio::task::yield_now().await;
        w.stop().await;
        let answered = futures_join(before.into_iter()).await;
        let committed = answered.iter().filter(|r| r.is_ok()).count();
        // Every job is answered; those the stop came after were committed, the rest refused.
        assert_eq!(count(&dir) as usize, committed);
        assert!(!w.is_running());
        let refused = w.execute(insert).await.unwrap_err();
        assert!(refused.to_string().contains("stopped"), "{refused}");
        // The writer's connection was the only one: closing it folded the WAL back and removed it.
        assert!(!wal_path.exists(), "the WAL file is left behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ok_answer_means_the_write_is_committed() {
        let (w, dir) = writer(64);
        w.execute(insert).await.unwrap();
        assert_eq!(count(&dir), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusal_before_writing_leaves_the_rest_of_the_batch_committed() {
        let (w, dir) = writer(256);
        let jobs = (0..200).map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                w.execute(move |c| {
                    if i % 3 == 0 {
                        Err(ShopError::conflict("no"))
                    } else {
                        insert(c)
                    }
                })
                .await
            })
        });
        let results: Vec<_> = futures_join(jobs).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 200 - (0..200).filter(|i| i % 3 == 0).count());
        assert_eq!(count(&dir), ok as i64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_failing_after_it_wrote_rolls_back_its_whole_batch_and_says_retry() {
        let (w, dir) = writer(256);
        let bad = w.execute(|c| {
            insert(c)?;
            Err::<(), _>(ShopError::conflict("late"))
        });
        let good = w.execute(insert);
        let (bad, good) = tokio::join!(bad, good);
        assert!(matches!(bad, Err(ShopError::Unavailable { .. })), "{bad:?}");
        // The good job either shared the batch (rolled back, told to retry) or committed alone.
        match good {
            Ok(()) => assert_eq!(count(&dir), 1),
            Err(e) => {
                assert!(matches!(e, ShopError::Unavailable { .. }));
                assert_eq!(count(&dir), 0);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chore_runs_between_batches_outside_any_transaction_and_the_jobs_go_on() {
        let (w, dir) = writer(8);
        let jobs: Vec<_> = (0..100)
            .map(|_| {
                let w = w.clone();
                tokio::spawn(async move { w.execute(insert).await })
            })
            .collect();
        let in_transaction = w.between_batches(|c| Ok(c.can_commit())).await.unwrap();
        assert!(!in_transaction);
        let panicked = w
            .between_batches(|_| -> Result<(), ShopError> { panic!("a bug") })
            .await;
        assert!(matches!(panicked, Err(ShopError::Unavailable { .. })), "{panicked:?}");
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        w.execute(insert).await.unwrap();
        assert_eq!(count(&dir), 101);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_is_answered_and_the_writer_keeps_going() {
        let (w, dir) = writer(8);
        let r = w.execute(|_| -> Result<(), ShopError> { panic!("bug") }).await;
        assert!(matches!(r, Err(ShopError::Unavailable { .. })));
        w.execute(insert).await.unwrap();
        assert_eq!(count(&dir), 1);
    }

    /// A writer whose thread dies at its first rollback (its `on_rollback` panics), and a
    /// job that makes it roll back.
    pub(crate) async fn stopped_writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open_connection(&dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)").unwrap();
        let config = WriterConfig {
            batch_max: 8,
            queue_max: 16,
            ..WriterConfig::default()
        };
        let on_rollback = Box::new(|| panic!("a bug outside any job"));
        let w = Writer::start_with(Box::new(conn), config, Durability::InCommit, on_rollback);
        let failed = w
            .execute(|c| {
                insert(c)?;
                Err::<(), _>(ShopError::conflict("late"))
            })
            .await;
        assert!(failed.is_err());
        let since = Instant::now();
        while w.is_running() {
            assert!(since.elapsed().as_secs() < 10, "the writer thread did not stop");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        (w, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_whose_thread_died_says_so_and_refuses_every_write() {
        let (w, _dir) = writer(8);
        assert!(w.is_running());
        let (w, _dir) = stopped_writer().await;
        assert!(!w.is_running());
        let refused = w.execute(insert).await;
        assert!(
            matches!(&refused, Err(ShopError::Unavailable { detail }) if detail.contains("stopped")),
            "{refused:?}"
        );
    }

    async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
