//! One writer per SQLite file: the process that writes a database holds an exclusive OS lock
//! (`flock`, through std's `File::try_lock`) on a lock file beside it, `<database>.lock`, for
//! its whole life, and writes into that file who it is. A second process on the same file
//! refuses to start and names the holder. The kernel releases the lock when its holder dies,
//! however it dies, so a process restarted after a crash takes the lock at once.
//!
//! Readers (`lemonade check`) take no lock: SQLite's own locking keeps their reads consistent.
//! A lock file is removed only by a start that failed and created it, while holding its lock
//! ([`WriterLock::remove_file`]); a process that then gets the lock of the removed file sees
//! that it is no longer at its path and opens the path again, so two processes never lock two
//! different files of the same name.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a new writer waits for a holder that is stopping (a graceful stop finishes the
/// requests in progress first) before it refuses to start.
pub const WAIT_FOR_HOLDER: Duration = Duration::from_secs(5);

/// How often a waiting writer tries the lock again.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Longest holder description read back from a lock file.
const HOLDER_LEN_MAX: u64 = 512;

/// The lock file of the database at `database`: `<database>.lock`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// The held lock of one database; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process writes to the database: `holder` is what it wrote of itself.
    #[error("{database} is in use by {holder}; stop it or choose another --data")]
    Held { database: String, holder: String },
    #[error("cannot lock {database}: {source}")]
    Io {
        database: String,
        #[source]
        source: std::io::Error,
    },
}

impl WriterLock {
    /// Takes the lock of `database` (whose folder must exist), waiting up to `wait` for a
    /// holder to let go, and writes `holder` (who this process is, e.g. `lemonade serve (pid
    /// 1234, http://127.0.0.1:8080)`) into the lock file for the message a second process
    /// gives.
    pub async fn acquire(database: &Path, holder: &str, wait: Duration) -> Result<WriterLock, LockError> {
        let started = Instant::now();
        loop {
            match WriterLock::try_take(database, holder)? {
                Ok(lock) => return Ok(lock),
                Err(_) if started.elapsed() < wait => tokio::time::sleep(RETRY_EVERY).await,
                Err(holder) => {
                    return Err(LockError::Held {
                        database: database.display().to_string(),
                        holder,
                    });
                }
            }
        }
    }

    /// One try at [`WriterLock::acquire`]: the lock, or (as `Err`) what its holder wrote of
    /// itself. The lock is of the file that is at the lock file's path once it is locked: a
    /// lock file removed meanwhile ([`WriterLock::remove_file`]) is opened again, so two
    /// processes never hold locks of two files of one name.
    pub fn try_take(database: &Path, holder: &str) -> Result<Result<WriterLock, String>, LockError> {
        let io = |source| LockError::Io {
            database: database.display().to_string(),
            source,
        };
        let path = lock_path(database);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(Err(read_holder(&mut file))),
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if !is_at(&file, &path).map_err(io)? {
                continue;
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(holder.as_bytes()).map_err(io)?;
            return Ok(Ok(WriterLock {
                _file: file,
                path: path.clone(),
            }));
        }
    }

    /// Removes the lock file, then lets the lock go: for a start that fails and puts its data
    /// folder back as it found it (a holder's lock file is never removed otherwise). Safe while
    /// others wait for the lock: whoever gets the removed file's lock finds it removed and
    /// opens the path again ([`WriterLock::try_take`]).
    pub fn remove_file(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Who holds the lock of `database` right now, if anyone; creates nothing (a database
    /// without a lock file has no writer).
    pub fn holder(database: &Path) -> Result<Option<String>, LockError> {
        let mut file = match File::open(lock_path(database)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Io {
                    database: database.display().to_string(),
                    source,
                });
            }
        };
        match file.try_lock() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
            Err(TryLockError::Error(source)) => Err(LockError::Io {
                database: database.display().to_string(),
                source,
            }),
        }
    }
}

/// Whether `file` is the file at `path` (not one removed or replaced since it was opened).
fn is_at(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(there) => Ok(there.dev() == held.dev() && there.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the holder wrote of itself, or a plain description if it wrote nothing yet.
fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.take(HOLDER_LEN_MAX).read_to_string(&mut text);
    match text.trim() {
        "" => "another process".to_owned(),
        holder => holder.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_writer_is_refused_with_the_holder_named_and_takes_the_lock_once_it_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lemonade.db");
        assert_eq!(WriterLock::holder(&db).unwrap(), None);
        assert!(!lock_path(&db).exists(), "asking created a lock file");

        let first = WriterLock::acquire(&db, "the first (pid 1)", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(WriterLock::holder(&db).unwrap().as_deref(), Some("the first (pid 1)"));
        let refused = WriterLock::acquire(&db, "the second", Duration::from_millis(120))
            .await
            .unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("lemonade.db is in use by the first (pid 1)") && message.contains("--data"),
            "{message}"
        );

        drop(first);
        assert_eq!(WriterLock::holder(&db).unwrap(), None);
        let _second = WriterLock::acquire(&db, "the second", Duration::ZERO).await.unwrap();
        assert_eq!(WriterLock::holder(&db).unwrap().as_deref(), Some("the second"));
    }

    #[tokio::test]
    async fn a_lock_file_removed_by_its_holder_is_not_locked_by_two_processes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("stock.db");
        let first = WriterLock::acquire(&db, "the first", Duration::ZERO).await.unwrap();
        // A second process has the lock file open and waits for its lock.
        let stale = OpenOptions::new().read(true).write(true).open(lock_path(&db)).unwrap();
        first.remove_file();
        assert!(!lock_path(&db).exists());
        stale.try_lock().expect("the removed file's lock is free");
        // What the second process does next: it finds the file gone and opens the path again.
        assert!(!is_at(&stale, &lock_path(&db)).unwrap());
        let second = WriterLock::acquire(&db, "the second", Duration::ZERO).await.unwrap();
        let third = WriterLock::acquire(&db, "the third", Duration::ZERO).await;
        assert!(matches!(third, Err(LockError::Held { .. })), "{third:?}");
        drop((second, stale));
    }

    #[tokio::test]
    async fn a_writer_waiting_for_a_holder_that_stops_gets_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("stock.db");
        let first = WriterLock::acquire(&db, "the first", Duration::ZERO).await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(first);
        });
        let second = WriterLock::acquire(&db, "the second", Duration::from_secs(10)).await;
        release.await.unwrap();
        assert!(second.is_ok(), "{second:?}");
    }
}
