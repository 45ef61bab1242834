//! Opening the database: one writer connection and a few reader connections, to SQLite (a
//! file in WAL mode, synced before any commit is acknowledged) or to PostgreSQL (a server,
//! which makes a commit durable before it returns).

use std::path::Path;
use std::sync::Arc;

use lemonade_domain::ShopError;
use rusqlite::{Connection, OpenFlags};

use crate::conn::{Db, DbError, PgConn};
use crate::migrations::Role;
use crate::readers::{ReadConn, Readers, Reads, Source};
use crate::sql::cache::WriterCache;
use crate::tasks::Tasks;
use crate::writer::{Durability, Execution, WriteConn, Writer, WriterConfig};

/// Why the database could not be opened. Like [`DbError`], its text says everything and it
/// has no `source`, so a chain of contexts above it names the engine's message once.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Sqlite(rusqlite::Error),
    #[error("{0}")]
    Db(DbError),
    #[error("{0}")]
    Other(String),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Sqlite(e)
    }
}

impl From<DbError> for OpenError {
    fn from(e: DbError) -> Self {
        OpenError::Db(e)
    }
}

/// Opens the existing SQLite file at `path` to read it, never to write it: nothing is
/// created (a missing file is an error) and the connection is `query_only`. It is opened for
/// writing when the file allows, because SQLite then removes again, once the last connection
/// closes, the `-wal` and `-shm` files it makes to read a database in WAL mode (a read-only
/// connection would leave them behind); read-only otherwise.
pub fn open_to_read(path: &Path) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE)
        .or_else(|_| Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Checks, writing and creating nothing, that the file at `path` can be opened as `role`'s
/// SQLite database: it is missing or empty (a new database), or holds `role`'s tables at a
/// version this binary knows. A start checks every database so before it writes any. The
/// error names the file.
pub fn check_file(path: &Path, role: Role) -> Result<(), OpenError> {
    let named = |e: OpenError| OpenError::Other(format!("{}: {e}", path.display()));
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(named(OpenError::Other(e.to_string()))),
        Ok(m) if !m.is_file() => return Err(named(OpenError::Other("not a file".into()))),
        Ok(m) if m.len() == 0 => return Ok(()),
        Ok(_) => {}
    }
    let conn = open_to_read(path).map_err(named)?;
    crate::migrations::check_sqlite(&conn, "main", role).map_err(named)?;
    Ok(())
}

/// Page cache of a service's writer connection, in KiB.
const SERVICE_WRITER_CACHE_KIB: i64 = 2_048;

/// How long an erasure waits for its scrub (see [`Database::scrub_after_erasure`]).
pub const SCRUB_WAIT_MS: u64 = 2_000;
/// How long a scrub after an erasure goes on trying in the background.
pub const SCRUB_BACKGROUND_MS: u64 = 600_000;
/// How long a clean stop tries to leave the database in its one file.
const CLOSE_WAIT_MS: u64 = 5_000;

/// How many read connections serve GET requests at once, unless
/// [`WriterConfig::readers`] says otherwise.
pub const READERS_MAX: usize = 4;

/// How long a SQLite connection waits for a lock another one holds.
pub(crate) const BUSY_TIMEOUT_MS: u64 = 5_000;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS as i64)?;
    // Transactions keep a statement journal; on disk it costs a write() per page touched.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 64 MiB of page cache per connection (negative means KiB).
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

/// Opens `path` for reading and writing, creating it if missing, in WAL mode.
pub fn open_connection(path: &Path) -> Result<Connection, OpenError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        return Err(OpenError::Other(format!(
            "could not switch {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    configure(&conn)?;
    Ok(conn)
}

/// How a clean stop went ([`Database::close`]): whether each step was done within its wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The WAL was copied back and truncated.
    pub wal_truncated: bool,
    /// The writer stopped.
    pub writer_stopped: bool,
    /// Every read connection came back to the pool and was closed.
    pub readers_returned: bool,
}

/// The opened database: the single writer and the reader pool.
#[derive(Clone)]
pub struct Database {
    pub writer: Writer,
    pub readers: Arc<Readers>,
    /// Which part of the shop it holds.
    pub role: Role,
    /// What the writer last read of products and stock (see [`WriterCache`]); for writer
    /// jobs only.
    pub cache: Arc<WriterCache>,
    /// The background tasks that keep this database's part of the shop going.
    pub tasks: Tasks,
    /// The hybrid logical clock of the process that owns this database, named after its
    /// role: every write's [`Tx::stamp`](crate::Tx) is one of its stamps, drawn in the
    /// write's turn, and the cluster's calls carry and merge its stamps.
    pub hlc: Arc<lemonade_domain::hlc::Hlc>,
}

/// Longest a health check waits for its read (a connection included): under the 2 s a
/// supervisor gives `/health`, so the answer comes with its reason.
pub const HEALTH_READ_MS: u64 = 1_000;

impl Database {
    /// Whether this process can still use its database: its writer thread runs, its vital
    /// tasks run, and a read finishes within [`HEALTH_READ_MS`] (so a pool that cannot read,
    /// or a database server that does not answer, is found). Errors say which.
    pub async fn health(&self) -> Result<(), ShopError> {
        if !self.writer.is_running() {
            return Err(ShopError::unavailable("the database writer has stopped"));
        }
        if let Some(what) = self.tasks.stopped() {
            return Err(ShopError::unavailable(format!("{what} has stopped")));
        }
        self.readers.probe(HEALTH_READ_MS).await
    }

    /// Opens (creating and migrating as needed) the monolith's database at `path`.
    pub fn open(path: &Path, writer_config: WriterConfig) -> Result<Database, OpenError> {
        Database::open_role(path, Role::Monolith, writer_config)
    }

    /// Opens (creating and migrating as needed) a database of `role` at `path`.
    pub fn open_role(path: &Path, role: Role, writer_config: WriterConfig) -> Result<Database, OpenError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| OpenError::Other(format!("cannot create data folder {}: {e}", dir.display())))?;
        }
        let mut conn = open_connection(path)?;
        if role.holds_customers() {
            // Deleted and overwritten values are zeroed, in their page and in freed pages, so
            // an erased customer's old name, email or phone is not left in free space (FAST
            // would leave freed pages as they were). Measured: see docs/decisions.md.
            conn.pragma_update(None, "secure_delete", "ON")?;
        }
        crate::migrations::migrate_role(&mut conn, role)?;
        if role.holds_customers() && !conn.scrub(&[])? {
            // Only this process has the file open, so nothing should be in the way.
            tracing::warn!(database = %path.display(), "could not truncate the WAL at start");
        }
        // Checkpoint every ~16 MiB of WAL rather than every 4 MiB: a hot page (an ingredient's
        // on-hand, an index's tail) is then copied back once per checkpoint instead of four
        // times; the WAL file is cut back to 64 MiB afterwards.
        conn.pragma_update(None, "wal_autocheckpoint", 4_000)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        if role != Role::Monolith {
            // A service's writer touches few pages per commit, and SQLite walks its page
            // cache's hash table at the end of a write transaction: a small cache makes that
            // walk short (figures: docs/decisions.md, "Figures out of code comments").
            conn.pragma_update(None, "cache_size", -SERVICE_WRITER_CACHE_KIB)?;
        }
        let readers = (0..writer_config.readers.max(1))
            .map(|_| open_connection(path))
            .collect::<Result<Vec<_>, _>>()?;
        // Group commit syncs in its own thread (see `writer`); the one-commit-per-order
        // baseline and an inline writer (which has no thread) let SQLite sync inside each
        // COMMIT.
        let durability = if writer_config.batch_max > 1 && !writer_config.execution.is_inline() {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let mut wal_path = path.as_os_str().to_owned();
            wal_path.push("-wal");
            Durability::Syncer {
                wal_path: wal_path.into(),
            }
        } else {
            Durability::InCommit
        };
        let readers = readers.into_iter().map(|c| Box::new(c) as _).collect();
        Ok(Database::assemble(
            Box::new(conn),
            readers,
            Source::LocalFile,
            durability,
            role,
            writer_config,
        ))
    }

    /// Tables holding personal data in a database of this role (vacuumed after an erasure on
    /// PostgreSQL).
    fn personal_tables(&self) -> &'static [&'static str] {
        match self.role {
            Role::Monolith => &["customers"],
            Role::Crm => &["customers", "step_results"],
            Role::Stock | Role::Orders | Role::Coordinator => &[],
        }
    }

    /// Makes an erasure that just committed unrecoverable from the database's files
    /// ([`Db::scrub`]): tries at once, waits for readers still using the old data for up to
    /// [`SCRUB_WAIT_MS`] in all, then goes on trying in the background for up to
    /// [`SCRUB_BACKGROUND_MS`]. Whatever is left then goes at the next clean stop
    /// ([`Database::close`]) or start. Never fails: the erasure itself is committed.
    pub async fn scrub_after_erasure(&self) {
        let tables = self.personal_tables();
        if self.scrub_for(tables, SCRUB_WAIT_MS).await {
            return;
        }
        tracing::info!("readers still use an erased customer's old data; scrubbing in the background");
        let this = self.clone();
        // Cut by the stop, it is as when it gives up: on SQLite `close` runs the same scrub
        // (the WAL truncated), and after a crash the next start does; on PostgreSQL (where
        // only a VACUUM that failed is retried) the erased rows wait for the next VACUUM.
        self.tasks.spawn_short(async move {
            if !this.scrub_for(tables, SCRUB_BACKGROUND_MS).await {
                tracing::warn!("could not scrub after an erasure; it will be at the next stop or start");
            }
        });
    }

    /// At a clean stop: stops the tasks, vital and short ([`Tasks::stop`]), leaves the
    /// database whole in its file (SQLite: the WAL copied back and truncated, so that no
    /// deleted value waits in it), then closes the writer and every reader, so that a stopped
    /// SQLite shop is one file (the last connection to close removes the `-wal` and `-shm`
    /// files). Waits up to
    /// [`CLOSE_WAIT_MS`] for each step; what is still busy then closes with the process.
    /// Every use of the database after this is refused as unavailable. Says which steps
    /// were done (each is also logged when it was not).
    pub async fn close(&self) -> Closed {
        self.tasks.stop().await;
        let wal_truncated = self.scrub_for(&[], CLOSE_WAIT_MS).await;
        if !wal_truncated {
            tracing::warn!("could not truncate the WAL at stop");
        }
        let wait = std::time::Duration::from_millis(CLOSE_WAIT_MS);
        let writer_stopped = tokio::time::timeout(wait, self.writer.stop()).await.is_ok();
        if !writer_stopped {
            tracing::warn!("the writer did not stop within {CLOSE_WAIT_MS} ms");
        }
        let readers_returned = self.readers.close(wait).await;
        if !readers_returned {
            tracing::warn!("reads still under way at stop; their connections close with the process");
        }
        Closed {
            wal_truncated,
            writer_stopped,
            readers_returned,
        }
    }

    /// Stops as a crash of the process would, for simulations and tests of recovery: every
    /// task cut at its next await ([`Tasks::stop`]), the writer crashed
    /// ([`Writer::crash`]: what waits for it dropped, unanswered), and no clean-up (the WAL
    /// stays as it is; the next open recovers it). Reads refused from here on. What was
    /// committed stays in the database, as after a real crash.
    pub async fn crash(&self) {
        self.tasks.stop().await;
        self.writer.crash().await;
        self.readers.close(std::time::Duration::ZERO).await;
    }

    /// Tries [`Db::scrub`] between the writer's batches until it is done or `within_ms` has
    /// passed, backing off from 5 ms to 1 s. Whether it was done.
    async fn scrub_for(&self, tables: &'static [&'static str], within_ms: u64) -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(within_ms);
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            let scrubbed = self
                .writer
                .between_batches(move |c| c.scrub(tables).map_err(crate::sql::storage_error))
                .await;
            match scrubbed {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not scrub the database"),
            }
            if tokio::time::Instant::now() + pause > deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// The writer thread on `conn`, the reader pool, and the writer's cache.
    fn assemble(
        conn: WriteConn,
        readers: Vec<ReadConn>,
        source: Source,
        durability: Durability,
        role: Role,
        writer_config: WriterConfig,
    ) -> Database {
        let cache = Arc::new(WriterCache::default());
        let forget = Arc::clone(&cache);
        let reads = match &writer_config.execution {
            Execution::Threads => Reads::Blocking,
            Execution::Inline { disk } => Reads::Inline { disk: disk.clone() },
        };
        Database {
            writer: Writer::start_with(conn, writer_config, durability, Box::new(move || forget.clear())),
            cache,
            readers: Arc::new(Readers::new(readers, source, reads)),
            role,
            tasks: Tasks::default(),
            hlc: Arc::new(lemonade_domain::hlc::Hlc::new(
                role.as_str(),
                lemonade_domain::hlc::SKEW_BOUND_MS_DEFAULT,
            )),
        }
    }

    /// Opens (creating and migrating as needed) a database of `role` on a PostgreSQL server.
    /// Its writer holds a session lock, so a second process cannot write to it. Blocks (the
    /// PostgreSQL client runs a runtime of its own): call it from a blocking thread, such as
    /// `tokio::task::spawn_blocking`'s.
    pub fn open_postgres(url: &str, role: Role, writer_config: WriterConfig) -> Result<Database, OpenError> {
        Database::open_postgres_as(url, role, writer_config, "a lemonade process")
    }

    /// [`Database::open_postgres`], the writer's session named `holder` (who this process
    /// is, e.g. `lemonade stock (pid 1234, 127.0.0.1:4001)`; at most 63 bytes are kept), so
    /// that a second process refused the database can name it.
    pub fn open_postgres_as(
        url: &str,
        role: Role,
        writer_config: WriterConfig,
        holder: &str,
    ) -> Result<Database, OpenError> {
        crate::postgres::ensure_database(url)?;
        let conn = PgConn::connect(url).map_err(|e| unreachable_server(url, e))?;
        conn.set_application_name(holder)?;
        crate::migrations::migrate_postgres(&conn, role)?;
        if !take_writer_lock(&conn)? {
            let holder = conn
                .writer_lock_holder()
                .ok()
                .flatten()
                .unwrap_or_else(|| "another lemonade process".to_owned());
            return Err(OpenError::Other(format!(
                "the {} database at {} is in use by {holder}; stop it or choose another database",
                role.as_str(),
                redact(url)
            )));
        }
        let readers = (0..writer_config.readers.max(1))
            .map(|_| PgConn::connect(url).map(|c| Box::new(c) as _))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Database::assemble(
            Box::new(conn),
            readers,
            Source::Server,
            Durability::InCommit,
            role,
            writer_config,
        ))
    }
}

pub use crate::conn::redact;

/// How long a new writer waits for the writer lock of a database: the server frees the lock
/// of a process that died once it notices the connection is gone, which can take a moment.
const WRITER_LOCK_WAIT_MS: u64 = 10_000;

fn take_writer_lock(conn: &PgConn) -> Result<bool, OpenError> {
    let started = std::time::Instant::now();
    loop {
        if conn.take_writer_lock()? {
            return Ok(true);
        }
        if started.elapsed() > std::time::Duration::from_millis(WRITER_LOCK_WAIT_MS) {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A connection to the server at `url` failed: what to say.
pub(crate) fn unreachable_server(url: &str, e: DbError) -> OpenError {
    OpenError::Other(format!("cannot connect to PostgreSQL at {}: {e}", redact(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_names_a_stopped_writer_and_a_stopped_vital_task() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("h.db"), WriterConfig::default()).unwrap();
        assert_eq!(db.health().await, Ok(()));

        let mut without_writer = db.clone();
        let (stopped, _writer_dir) = crate::writer::tests::stopped_writer().await;
        without_writer.writer = stopped;
        let e = without_writer.health().await.unwrap_err().to_string();
        assert!(e.contains("writer has stopped"), "{e}");

        let died = db.tasks.spawn("the relay to crm", async { panic!("a bug") });
        assert!(died.await.unwrap_err().is_panic());
        let e = db.health().await.unwrap_err().to_string();
        assert!(e.contains("the relay to crm has stopped"), "{e}");
    }
}
