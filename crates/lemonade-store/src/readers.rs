//! A small pool of connections used only for reading. Reads never wait for the writer: each
//! sees the last committed state when it starts.

use std::sync::{Arc, Mutex};

use lemonade_domain::ShopError;
use tokio::sync::Semaphore;

use crate::conn::{Begin, Db};

/// A reader's connection.
pub type ReadConn = Box<dyn Db + Send>;

pub struct Readers {
    idle: Mutex<Vec<ReadConn>>,
    permits: Semaphore,
}

impl Readers {
    pub fn new(conns: Vec<ReadConn>) -> Self {
        assert!(!conns.is_empty());
        Readers {
            permits: Semaphore::new(conns.len()),
            idle: Mutex::new(conns),
        }
    }

    /// Runs `work` on a read connection in a blocking thread, inside one read transaction so
    /// that everything it reads is from one snapshot.
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ShopError::unavailable("the database is closed"))?;
        let this = Arc::clone(self);
        let handle = tokio::task::spawn_blocking(move || {
            let conn = this
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
            this.idle.lock().expect("reader pool lock").push(conn);
            result
        });
        let result = handle
            .await
            .unwrap_or_else(|_| Err(ShopError::unavailable("a read failed unexpectedly")));
        drop(permit);
        result
    }
}
