//! The SQLite engine of the [`Db`] seam, through rusqlite.

use super::{Arg, Begin, Db, DbError, Row, Value};

/// Longest a scrub of a SQLite database waits for readers that still use its WAL, holding
/// the writer meanwhile: reads take milliseconds, and the caller tries again.
const SCRUB_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Column `column` of a SQLite row as a [`Value`].
pub(super) fn value(r: &rusqlite::Row<'_>, column: usize) -> Result<Value, DbError> {
    let bad = |why: String| DbError::Column { column, why };
    Ok(match r.get_ref(column)? {
        rusqlite::types::ValueRef::Null => Value::Null,
        rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
        rusqlite::types::ValueRef::Text(t) => {
            Value::Text(std::str::from_utf8(t).map_err(|e| bad(e.to_string()))?.to_owned())
        }
        other => return Err(bad(format!("unexpected {:?}", other.data_type()))),
    })
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(n) => ValueRef::Integer(n),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
            Arg::Null => ValueRef::Null,
        }))
    }
}

impl Db for rusqlite::Connection {
    fn run(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        let n = self.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))?;
        Ok(n as u64)
    }

    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            each(&Row::Sqlite(r))?;
        }
        Ok(())
    }

    fn begin(&self, how: Begin) -> Result<(), DbError> {
        let sql = match how {
            Begin::Write => "BEGIN IMMEDIATE",
            Begin::Read => "BEGIN DEFERRED",
        };
        self.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    fn commit(&self) -> Result<(), DbError> {
        self.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }

    fn rollback(&self) -> Result<(), DbError> {
        if !self.is_autocommit() {
            self.prepare_cached("ROLLBACK")?.execute([])?;
        }
        Ok(())
    }

    fn can_commit(&self) -> bool {
        !self.is_autocommit()
    }

    fn changes(&self) -> u64 {
        self.total_changes()
    }

    fn scrub(&self, _tables: &[&str]) -> Result<bool, DbError> {
        self.busy_timeout(SCRUB_BUSY_WAIT)?;
        let checkpoint = self.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        self.busy_timeout(std::time::Duration::from_millis(crate::db::BUSY_TIMEOUT_MS))?;
        match checkpoint {
            Ok(blocked) => Ok(blocked == 0),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_scrub_truncates_the_wal_once_no_reader_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let writer = crate::db::open_connection(&path).unwrap();
        let reader = crate::db::open_connection(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('secret')")
            .unwrap();
        let wal = dir.path().join("s.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);

        // A reader in the middle of a read keeps the WAL it reads from.
        reader.begin(Begin::Read).unwrap();
        let _: String = reader.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        writer.execute("UPDATE t SET v = 'gone'", []).unwrap();
        assert!(!writer.scrub(&[]).unwrap(), "try again later");
        Db::rollback(&reader).unwrap();

        assert!(writer.scrub(&[]).unwrap());
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    }
}
