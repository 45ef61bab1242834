//! A small pool of connections used only for reading. Reads never wait for the writer: each
//! sees the last committed state when it starts.

use std::sync::{Arc, Mutex};

use lemonade_domain::ShopError;
use tokio::sync::Semaphore;

use crate::conn::{Begin, Db};

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

pub struct Readers {
    idle: Mutex<Vec<ReadConn>>,
    permits: Semaphore,
    source: Source,
}

impl Readers {
    pub fn new(conns: Vec<ReadConn>, source: Source) -> Self {
        assert!(!conns.is_empty());
        Readers {
            permits: Semaphore::new(conns.len()),
            idle: Mutex::new(conns),
            source,
        }
    }

    /// Runs `work` on a read connection in a blocking thread, inside one read transaction so
    /// that everything it reads is from one snapshot.
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        let permit = self.permit().await?;
        let this = Arc::clone(self);
        let handle = tokio::task::spawn_blocking(move || this.run(work));
        let result = handle
            .await
            .unwrap_or_else(|_| Err(ShopError::unavailable("a read failed unexpectedly")));
        drop(permit);
        result
    }

    /// Like [`read`](Readers::read), for a read by key of a row or two: from a local file
    /// it runs on the calling thread, which it holds for microseconds, rather than hopping
    /// to a blocking thread and back (measured with the client's key looked up this way,
    /// once per order: 5,952 against 5,634 orders/s through the cluster at concurrency 64).
    /// From a server it is a [`read`](Readers::read). (A WAL reader waits only in SQLite's
    /// rare recovery of the WAL index, within the connection's busy timeout.)
    pub async fn lookup<T, F>(self: &Arc<Self>, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        match self.source {
            Source::Server => self.read(work).await,
            Source::LocalFile => {
                let _permit = self.permit().await?;
                self.run(work)
            }
        }
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ShopError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| ShopError::unavailable("the database is closed"))
    }

    /// Runs `work` in a read transaction on an idle connection; the caller holds a permit.
    fn run<T>(&self, work: impl FnOnce(&dyn Db) -> Result<T, ShopError>) -> Result<T, ShopError> {
        let conn = self
            .idle
            .lock()
            .expect("reader pool lock")
            .pop()
            .expect("a permit means an idle connection");
        let result = conn
            .begin(Begin::Read)
            .map_err(crate::sql::storage_error)
            .and_then(|_| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&*conn)))
                    .unwrap_or_else(|_| Err(ShopError::unavailable("a read failed unexpectedly")))
            });
        let _ = conn.rollback();
        self.idle.lock().expect("reader pool lock").push(conn);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(source: Source) -> Arc<Readers> {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        Arc::new(Readers::new(vec![Box::new(conn)], source))
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
