//! The single writer, with group commit.
//!
//! Every change to the database is a job sent to one thread that owns the only writing
//! connection. The thread takes whatever jobs are waiting (up to `batch_max`), runs each in
//! its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction, commits once (one fsync for the
//! whole group), and only then answers each job. A job that fails rolls back to its savepoint
//! and leaves the others untouched. So a caller's `Ok` always means "durably committed", and
//! the fsync cost is shared by everyone who arrived while the previous commit was on disk.
//! With `batch_max = 1` this is the one-commit-per-order baseline the benchmark compares to.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use lemonade_domain::ShopError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

type Deliver = Box<dyn FnOnce(Option<ShopError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Deliver) + Send>;

#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Most jobs committed together. 1 disables group commit.
    pub batch_max: usize,
    /// Most jobs waiting for the writer; past that callers get `Unavailable` at once.
    pub queue_max: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_max: 256,
            queue_max: 8_192,
        }
    }
}

/// A handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

fn storage_down(detail: impl std::fmt::Display) -> ShopError {
    ShopError::unavailable(format!("the database could not commit: {detail}"))
}

impl Writer {
    pub fn start(conn: Connection, config: WriterConfig) -> Writer {
        assert!(config.batch_max >= 1 && config.queue_max >= 1);
        let (jobs, rx) = mpsc::channel(config.queue_max);
        std::thread::Builder::new()
            .name("lemonade-writer".into())
            .spawn(move || run(conn, rx, config.batch_max))
            .expect("spawn the writer thread");
        Writer { jobs }
    }

    /// Runs `work` in the next group commit. `Ok` is returned only after the commit is durable;
    /// an `Err` from `work` rolls back everything `work` did and nothing else.
    pub async fn execute<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ShopError> + Send + 'static,
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
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ShopError::unavailable("the shop is busy: too many writes waiting"),
            mpsc::error::TrySendError::Closed(_) => ShopError::unavailable("the database writer has stopped"),
        })?;
        // A dropped sender means the job never committed (the transaction failed or the job
        // panicked): the caller may retry.
        rx.await
            .unwrap_or_else(|_| Err(storage_down("the transaction was rolled back")))
    }
}

fn step(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Job>, batch_max: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(batch_max);
    let mut delivers: Vec<Deliver> = Vec::with_capacity(batch_max);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let size = batch.len();
        if let Err(e) = step(&conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a write transaction");
            batch.clear(); // dropping the jobs answers their callers with Unavailable
            continue;
        }
        let mut aborted = false;
        for job in batch.drain(..) {
            if aborted {
                continue; // dropped: answered as rolled back
            }
            if let Err(e) = step(&conn, "SAVEPOINT job") {
                tracing::error!(error = %e, "cannot open a savepoint");
                aborted = true;
                continue;
            }
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(&conn))) {
                Ok((true, deliver)) => {
                    delivers.push(deliver);
                    aborted = step(&conn, "RELEASE job").is_err();
                }
                Ok((false, deliver)) => {
                    // The job's own error: undo its writes, keep the rest of the batch.
                    if step(&conn, "ROLLBACK TO job")
                        .and_then(|_| step(&conn, "RELEASE job"))
                        .is_err()
                    {
                        aborted = true;
                    }
                    deliver(None);
                }
                Err(_) => {
                    tracing::error!("a write job panicked; its changes are rolled back");
                    aborted = step(&conn, "ROLLBACK TO job")
                        .and_then(|_| step(&conn, "RELEASE job"))
                        .is_err();
                }
            }
            // SQLite may roll the whole transaction back by itself (disk full, I/O error).
            aborted |= conn.is_autocommit();
        }
        let committed = if aborted {
            Err("the transaction was aborted".to_owned())
        } else {
            step(&conn, "COMMIT").map_err(|e| e.to_string())
        };
        match committed {
            Ok(()) => delivers.drain(..).for_each(|d| d(None)),
            Err(e) => {
                tracing::error!(error = %e, jobs = size, "group commit failed; every job in it is rolled back");
                if !conn.is_autocommit() {
                    let _ = step(&conn, "ROLLBACK");
                }
                delivers.drain(..).for_each(|d| d(Some(storage_down(&e))));
            }
        }
        metrics::histogram!("lemonade_commit_jobs").record(size as f64);
        metrics::histogram!("lemonade_commit_seconds").record(started.elapsed().as_secs_f64());
    }
}
