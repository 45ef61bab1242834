//! One writer per SQLite file: the process that writes a database holds two exclusive OS
//! locks (`flock`, through std's `File::try_lock`) for its whole life: one on a lock file
//! beside the path it opened the database by, `<database>.lock`, into which it writes who it
//! is; and one on the database file itself, which is what makes the lock the file's rather
//! than its path's: a second process on any path to the same file (a hard link or a symlink
//! in another folder, a bind mount, a `..` path) refuses to start and names the holder, found
//! through the kernel's table of locks (`/proc/locks`) and the holder's own lock file. The
//! kernel releases both when their holder dies, however it dies, so a process restarted after
//! a crash takes them at once.
//!
//! SQLite locks the database file too, with POSIX (`fcntl`) locks: on Linux those and `flock`
//! are independent, so the writer's `flock` neither blocks SQLite nor is released by it. A
//! POSIX lock is released when its process closes any descriptor of the file, so the
//! descriptor held here is opened once and closed only when the lock is let go, after the
//! database was closed; and nothing here opens a database file that this process has open
//! in SQLite. (On NFS, Linux emulates `flock` with POSIX locks; a shop's database does not
//! belong on NFS anyway, as SQLite says.)
//!
//! Readers (`lemonade check`) take no lock: SQLite's own locking keeps their reads consistent,
//! through the path the writer opened the database by. Through another path it does not (the
//! WAL lies beside the writer's path), so a reader refuses a database held through another
//! path, naming the holder ([`WriterLock::holder_elsewhere`]).
//! A lock file is removed only by a start that failed and created it, while holding its lock
//! ([`WriterLock::remove_file`]); a process that then gets the lock of the removed file sees
//! that it is no longer at its path and opens the path again, so two processes never lock two
//! different files of the same name; the same goes for a database file that a failed start
//! created and removes.

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
    /// The lock file, locked, with who this process is in it.
    _lock_file: File,
    path: PathBuf,
    /// The database file itself, locked: its lock is the file's, whatever path it has.
    _database: File,
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
    /// gives. Creates the database file, empty, if there is none (SQLite takes an empty file
    /// for a new database).
    pub async fn acquire(database: &Path, holder: &str, wait: Duration) -> Result<WriterLock, LockError> {
        let started = Instant::now();
        let mut told = false;
        loop {
            match WriterLock::try_take(database, holder)? {
                Ok(lock) => return Ok(lock),
                Err(holder) if started.elapsed() < wait => {
                    if !std::mem::replace(&mut told, true) {
                        crate::output::tell(&format!(
                            "{} is in use by {holder}; waiting up to {} s for it to stop",
                            database.display(),
                            wait.as_secs_f64().ceil()
                        ));
                    }
                    tokio::time::sleep(RETRY_EVERY).await
                }
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
    /// itself. First the lock file's, then the database file's; each is of the file that is
    /// at its path once it is locked: a file removed meanwhile ([`WriterLock::remove_file`],
    /// a failed start putting its folder back) is opened again, so two processes never hold
    /// locks of two files of one name.
    pub fn try_take(database: &Path, holder: &str) -> Result<Result<WriterLock, String>, LockError> {
        let io = |source| LockError::Io {
            database: database.display().to_string(),
            source,
        };
        let path = lock_path(database);
        let (mut lock_file, created) = match lock_at(&path).map_err(io)? {
            Ok(file) => file,
            Err(mut held) => return Ok(Err(read_holder(&mut held))),
        };
        let database_file = match lock_at(database).map_err(io)? {
            Ok((file, _)) => file,
            // Held through another path to the same file (a hard link, say): a lock file made
            // here is removed while held, so that a writer that waits, or is killed while it
            // waits, leaves none behind.
            Err(_) => {
                if created {
                    let _ = std::fs::remove_file(&path);
                }
                return Ok(Err(holder_of(database)));
            }
        };
        lock_file.set_len(0).map_err(io)?;
        lock_file.rewind().map_err(io)?;
        lock_file.write_all(holder.as_bytes()).map_err(io)?;
        Ok(Ok(WriterLock {
            _lock_file: lock_file,
            path,
            _database: database_file,
        }))
    }

    /// Removes the lock file, then lets the lock go: for a start that fails and puts its data
    /// folder back as it found it (a holder's lock file is never removed otherwise). Safe while
    /// others wait for the lock: whoever gets the removed file's lock finds it removed and
    /// opens the path again ([`WriterLock::try_take`]).
    pub fn remove_file(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Who holds the lock of `database` right now, if anyone, through this path or another
    /// to the same file; creates nothing (a database without a lock file or database file
    /// has no writer). Not for a process that has this database open in SQLite (see the
    /// module docs).
    pub fn holder(database: &Path) -> Result<Option<String>, LockError> {
        Ok(WriterLock::holding(database)?.map(|(holder, _)| holder))
    }

    /// Who holds the lock of `database` right now through another path to the same file (a
    /// hard link or a symlink in another folder, a bind mount), if anyone: as the refusal of
    /// a second writer names it, with the path it opened the database by when this process
    /// may see it. A holder through this path is not named. For a reader (`lemonade check`):
    /// SQLite keeps a database's WAL and shared memory beside the path it was opened by, so
    /// a reader through another path finds neither, reads what the writer has not yet
    /// checkpointed as it was before, and leaves its own files beside its path. Creates
    /// nothing; not for a process that has this database open in SQLite (see the module docs).
    pub fn holder_elsewhere(database: &Path) -> Result<Option<String>, LockError> {
        Ok(WriterLock::holding(database)?
            .filter(|(_, through_here)| !through_here)
            .map(|(holder, _)| holder))
    }

    /// [`WriterLock::holder`], and whether it holds the lock through this path.
    fn holding(database: &Path) -> Result<Option<(String, bool)>, LockError> {
        let io = |source| LockError::Io {
            database: database.display().to_string(),
            source,
        };
        for (path, through_here) in [(lock_path(database), true), (database.to_path_buf(), false)] {
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io(source)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if through_here => return Ok(Some((read_holder(&mut &file), true))),
                Err(TryLockError::WouldBlock) => return Ok(Some((holder_of(database), false))),
                Err(TryLockError::Error(source)) => return Err(io(source)),
            }
        }
        Ok(None)
    }
}

/// Opens the file at `path` (creating it, empty, if there is none) and takes its lock: the
/// locked file and whether this call created it, or (as `Err`) the file another process holds
/// the lock of. The lock is of the file that is at `path` once it is locked (see
/// [`WriterLock::try_take`]).
fn lock_at(path: &Path) -> std::io::Result<Result<(File, bool), File>> {
    use std::io::ErrorKind;
    let open = |create_new: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create_new)
            .open(path)
    };
    loop {
        let (file, created) = match open(true) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match open(false) {
                Ok(file) => (file, false),
                // Removed between the two opens: try again.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(Err(file)),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        if is_at(&file, path)? {
            return Ok(Ok((file, created)));
        }
    }
}

/// Who holds the `flock` of the database file at `database`, which it opened by another
/// path: the process the kernel's table of locks names, in the words of its lock file beside
/// the path it opened the database by, if this process may see its open files; else its pid.
fn holder_of(database: &Path) -> String {
    let through = |pid: u32| -> Option<String> {
        use std::os::unix::fs::MetadataExt as _;
        let ours = std::fs::metadata(database).ok()?;
        std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.find_map(|fd| {
            let target = std::fs::read_link(fd.ok()?.path()).ok()?;
            let opened_as = target.to_str()?.strip_suffix(".lock")?;
            let theirs = std::fs::metadata(opened_as).ok()?;
            if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
                return None;
            }
            let mut lock_file = File::open(&target).ok()?;
            Some(format!("{} (through {opened_as})", read_holder(&mut lock_file)))
        })
    };
    match flock_holder_pid(database) {
        Some(pid) => through(pid).unwrap_or_else(|| format!("process {pid}")),
        None => "another process".to_owned(),
    }
}

/// The pid of the process holding a `flock` of the file at `path`, from `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`: pid, then the file's device, major
/// and minor in hex, and inode; a waiter's line has `->` before `FLOCK`).
fn flock_holder_pid(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let file = std::fs::metadata(path).ok()?;
    let (major, minor) = (u64::from(libc::major(file.dev())), u64::from(libc::minor(file.dev())));
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let pid = fields.get(4)?.parse().ok()?;
        let mut id = fields.get(5)?.split(':');
        let held = (
            u64::from_str_radix(id.next()?, 16).ok()?,
            u64::from_str_radix(id.next()?, 16).ok()?,
            id.next()?.parse::<u64>().ok()?,
        );
        (held == (major, minor, file.ino())).then_some(pid)
    })
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
fn read_holder(mut file: impl Read + Seek) -> String {
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
    async fn a_hard_link_to_a_held_database_in_another_folder_is_refused_naming_the_holder_and_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let (here, there) = (dir.path().join("here"), dir.path().join("there"));
        std::fs::create_dir(&here).unwrap();
        std::fs::create_dir(&there).unwrap();
        let db = here.join("lemonade.db");
        let first = WriterLock::acquire(&db, "the first (pid 1)", Duration::ZERO)
            .await
            .unwrap();
        let linked = there.join("lemonade.db");
        std::fs::hard_link(&db, &linked).unwrap();

        // A second writer that waits for the holder leaves no lock file beside the link
        // between its tries (so none stays if it is killed while it waits).
        let waiting = tokio::spawn({
            let linked = linked.clone();
            async move { WriterLock::acquire(&linked, "the second", Duration::from_millis(400)).await }
        });
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(
                !lock_path(&linked).exists(),
                "a lock file beside the link while waiting"
            );
        }
        let refused = waiting.await.unwrap().unwrap_err();
        assert!(!lock_path(&linked).exists(), "a lock file left beside the link");
        let message = refused.to_string();
        let through = format!("through {}", db.canonicalize().unwrap().display());
        assert!(
            message.contains("there/lemonade.db is in use by the first (pid 1)") && message.contains(&through),
            "{message}"
        );
        let holder = WriterLock::holder(&linked).unwrap().unwrap_or_default();
        assert!(holder.starts_with("the first (pid 1)"), "{holder}");
        // A reader through the link is told of it; one through the holder's path is not.
        let elsewhere = WriterLock::holder_elsewhere(&linked).unwrap().unwrap_or_default();
        assert!(elsewhere.contains(&through), "{elsewhere}");
        assert_eq!(WriterLock::holder_elsewhere(&db).unwrap(), None);

        drop(first);
        assert_eq!(WriterLock::holder(&linked).unwrap(), None);
        let _second = WriterLock::acquire(&linked, "the second", Duration::ZERO)
            .await
            .unwrap();
        let refused = WriterLock::acquire(&db, "the third", Duration::ZERO).await.unwrap_err();
        assert!(refused.to_string().contains("in use by the second"), "{refused}");
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
