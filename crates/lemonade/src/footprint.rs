//! A start that fails leaves the data folder as it found it. Before it writes anything, a
//! start notes what there is of each SQLite database's files ([`Footprint::take`]): the
//! folder, the database, its `-wal`, `-shm` and `-journal` files and its lock file. If the
//! start then fails, [`Footprint::restore`] removes every file it did not find, empties again
//! a database file that was empty (a start migrates an empty file and may fill it with the
//! demo shop), and removes the folder if the start created it. A database that held a shop is
//! never written before every database of the start was checked (`lemonade_store::db::check_file`);
//! a start that fails after that may have brought it to this binary's schema version, which
//! any later start would do too.
//!
//! Restore only once no process of this start has the files open any more. Each database is
//! put back while holding its writer lock, and a lock file the start made is removed while
//! held (safe: see `lock`).

use std::path::{Path, PathBuf};

use crate::lock::WriterLock;

/// What a start found of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Absent,
    /// There, with no byte in it.
    Empty,
    Present,
}

/// What a start found in a data folder, to put back if it fails.
#[derive(Debug)]
pub struct Footprint {
    folder: PathBuf,
    folder_found: bool,
    databases: Vec<Database>,
}

/// What a start found of one database's files.
#[derive(Debug)]
struct Database {
    path: PathBuf,
    /// The database, its `-wal`, `-shm` and `-journal` files.
    files: Vec<(PathBuf, Found)>,
    lock_found: bool,
}

fn found(file: &Path) -> Found {
    match std::fs::metadata(file) {
        Err(_) => Found::Absent,
        Ok(m) if m.is_file() && m.len() == 0 => Found::Empty,
        Ok(_) => Found::Present,
    }
}

impl Footprint {
    /// Notes what there is of the files of `databases` (SQLite files in `folder`).
    pub fn take(folder: &Path, databases: &[PathBuf]) -> Footprint {
        let databases = databases
            .iter()
            .map(|path| Database {
                path: path.clone(),
                files: files_of(path).into_iter().map(|f| (f.clone(), found(&f))).collect(),
                lock_found: crate::lock::lock_path(path).exists(),
            })
            .collect();
        Footprint {
            folder: folder.to_path_buf(),
            folder_found: folder.exists(),
            databases,
        }
    }

    /// Puts the folder back as [`Footprint::take`] found it (see the module docs), each
    /// database while holding its writer lock: a database whose lock another process holds
    /// now is that process's and is left as it is. Best effort: what cannot be removed stays.
    pub fn restore(&self) {
        for database in &self.databases {
            // Held: the files are the holder's (through another path to the same file, a hard
            // link, the try leaves no lock file here).
            let Ok(Ok(lock)) = WriterLock::try_take(&database.path, "a failed start putting its folder back") else {
                continue;
            };
            for (file, found) in &database.files {
                match found {
                    Found::Absent => {
                        let _ = std::fs::remove_file(file);
                    }
                    Found::Empty => {
                        let _ = std::fs::OpenOptions::new()
                            .write(true)
                            .open(file)
                            .and_then(|f| f.set_len(0));
                    }
                    Found::Present => {}
                }
            }
            if database.lock_found {
                drop(lock);
            } else {
                lock.remove_file();
            }
        }
        if !self.folder_found {
            let _ = std::fs::remove_dir(&self.folder);
        }
    }
}

/// The files that make up the SQLite database at `database` besides its lock file: itself
/// and its `-wal`, `-shm` and `-journal` files.
fn files_of(database: &Path) -> [PathBuf; 4] {
    let with_suffix = |suffix: &str| {
        let mut p = database.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [
        database.to_path_buf(),
        with_suffix("-wal"),
        with_suffix("-shm"),
        with_suffix("-journal"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_removes_what_was_not_there_and_empties_what_was_empty() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let (empty, full, new) = (data.join("stock.db"), data.join("crm.db"), data.join("orders.db"));
        std::fs::write(&empty, b"").unwrap();
        std::fs::write(&full, b"a shop").unwrap();
        std::fs::write(data.join("crm.db-wal"), b"its log").unwrap();
        let footprint = Footprint::take(&data, &[empty.clone(), full.clone(), new.clone()]);

        for file in [&empty, &full, &new] {
            std::fs::write(file, b"written by the start").unwrap();
            std::fs::write(crate::lock::lock_path(file), b"pid").unwrap();
        }
        std::fs::write(data.join("stock.db-wal"), b"wal").unwrap();
        footprint.restore();

        let mut left: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["crm.db", "crm.db-wal", "stock.db"]);
        assert_eq!(std::fs::read(&empty).unwrap(), b"");
        assert_eq!(
            std::fs::read(&full).unwrap(),
            b"written by the start",
            "a database that held data is left as the start left it"
        );
    }

    #[test]
    fn a_database_another_process_holds_now_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("stock.db");
        let footprint = Footprint::take(dir.path(), std::slice::from_ref(&db));
        std::fs::write(&db, b"the other's shop").unwrap();
        let other = WriterLock::try_take(&db, "another process").unwrap().unwrap();
        footprint.restore();
        assert_eq!(std::fs::read(&db).unwrap(), b"the other's shop");
        assert!(crate::lock::lock_path(&db).exists());
        drop(other);
    }

    #[test]
    fn a_folder_the_start_made_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let db = data.join("lemonade.db");
        let footprint = Footprint::take(&data, std::slice::from_ref(&db));
        std::fs::create_dir(&data).unwrap();
        std::fs::write(&db, b"x").unwrap();
        std::fs::write(crate::lock::lock_path(&db), b"pid").unwrap();
        footprint.restore();
        assert!(!data.exists());
    }
}
