//! The seam between the shop's SQL and a database engine.
//!
//! Every `sql/*` function takes a `&dyn Db`: a connection inside a transaction someone else
//! opened. Two engines implement it, SQLite (through rusqlite, the default and the monolith's)
//! and PostgreSQL (through the synchronous `postgres` client, for services that run on a
//! server). The SQL is written once, in the subset both engines read the same way: numbered
//! parameters (`?1`, rewritten to `$1` for PostgreSQL), integers and text only, no engine
//! functions. Schemas differ and live in `migrations`.
//!
//! This module is the seam and what both engines share (arguments, rows, values, errors);
//! `sqlite` and `postgres` are the two engines, each with what only it needs.
//!
//! The methods on `dyn Db` (`prepare_cached`, `query_row`, `query_map`, `execute`) read like
//! rusqlite's on purpose: the SQL modules were written against it, and the differences that
//! matter (how a parameter is bound, how a column is read) are decided here once.

mod postgres;
mod sqlite;

pub use postgres::{PgConn, pg_config, postgres_error_text, postgres_sql, redact};

/// A value bound to a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

/// A Rust value that can be bound to a parameter (borrowed, as rusqlite's `params!` does).
pub trait ToArg {
    fn to_arg(&self) -> Arg<'_>;
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Arg<'_> {
                Arg::Int(i64::from(*self))
            }
        }
    )*};
}
int_args!(i64, i32, u32, u16, u8, bool);

impl ToArg for str {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}
impl ToArg for String {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Arg<'_> {
        (**self).to_arg()
    }
}
impl<T: ToArg> ToArg for Option<T> {
    fn to_arg(&self) -> Arg<'_> {
        self.as_ref().map_or(Arg::Null, ToArg::to_arg)
    }
}

/// Binds values to numbered parameters: `params![id.as_str(), n]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::conn::ToArg::to_arg(&$value)),*] as &[$crate::conn::Arg<'_>]
    };
}

/// What went wrong talking to the database. Its text is the whole story (the engine's own
/// message included) and it has no `source`: printed as a chain (`{:#}`), it says each thing
/// once.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the query returned no row")]
    NoRows,
    #[error("{0}")]
    Sqlite(rusqlite::Error),
    #[error("{}", postgres_error_text(.0))]
    Postgres(::postgres::Error),
    #[error("cannot read column {column}: {why}")]
    Column { column: usize, why: String },
    /// A stored row holds what this binary cannot read (an id, a state, JSON): a bug or a
    /// database changed by hand, named so that it can be found.
    #[error("stored row {row} of {table} has {what}")]
    Stored {
        table: &'static str,
        /// The row's key, as stored.
        row: String,
        /// What is wrong with it: `an unknown status 'x'`.
        what: String,
    },
    /// The transaction or session cannot go on (a statement of it failed, the writer lock
    /// was lost).
    #[error("{0}")]
    Session(&'static str),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<::postgres::Error> for DbError {
    fn from(e: ::postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A `query_row` whose "no row" means `None`.
pub fn optional<T>(r: DbResult<T>) -> DbResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(DbError::NoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How a transaction is begun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// The writer's: takes the write lock at once.
    Write,
    /// A reader's: one snapshot for everything it reads.
    Read,
}

/// A connection to one database. Only one thread uses a connection at a time.
pub trait Db {
    /// Runs a statement that returns no rows; the number of rows it changed.
    fn run(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError>;
    /// Runs a query, handing each row to `each` in order.
    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError>;
    fn begin(&self, how: Begin) -> Result<(), DbError>;
    fn commit(&self) -> Result<(), DbError>;
    fn rollback(&self) -> Result<(), DbError>;
    /// Whether a transaction is open and can still commit (an engine may abort one by itself:
    /// SQLite on a full disk, PostgreSQL after any failed statement).
    fn can_commit(&self) -> bool;
    /// Rows changed through this connection so far (to tell whether a job wrote anything).
    fn changes(&self) -> u64;
    /// Makes what committed transactions deleted or overwrote unreadable in the database's
    /// files, as far as the engine can; outside any transaction. SQLite copies its WAL back
    /// into the database file and truncates it (with `secure_delete` on, the copied pages hold
    /// zeros where deleted values were); PostgreSQL vacuums `tables` (see docs/design.md, "Erasure", for
    /// what that leaves). `Ok(false)`: a reader still uses what would go; try again later.
    fn scrub(&self, tables: &[&str]) -> Result<bool, DbError>;
}

/// One row of a query's result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a ::postgres::Row),
}

/// A column's value, as the shop stores them: integers, text, or nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// A Rust type a column can be read as.
pub trait FromColumn: Sized {
    fn from_value(v: Value) -> Result<Self, String>;
}

impl FromColumn for Value {
    fn from_value(v: Value) -> Result<Self, String> {
        Ok(v)
    }
}
impl FromColumn for i64 {
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::Int(n) => Ok(n),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
impl FromColumn for u32 {
    fn from_value(v: Value) -> Result<Self, String> {
        let n = i64::from_value(v)?;
        u32::try_from(n).map_err(|_| format!("{n} is out of range"))
    }
}
impl FromColumn for bool {
    fn from_value(v: Value) -> Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromColumn for String {
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl<T: FromColumn> FromColumn for Option<T> {
    fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl Row<'_> {
    fn value(&self, column: usize) -> Result<Value, DbError> {
        match self {
            Row::Sqlite(r) => sqlite::value(r, column),
            Row::Postgres(r) => postgres::value(r, column),
        }
    }

    /// The value of a column (counted from 0) as `T`. The index type parameter keeps the
    /// `get::<_, T>` spelling of rusqlite.
    pub fn get<I: ColumnIndex, T: FromColumn>(&self, column: I) -> Result<T, DbError> {
        let column = column.index();
        T::from_value(self.value(column)?).map_err(|why| DbError::Column { column, why })
    }
}

/// A column's position (only `usize`; a trait so that `get::<_, T>(0)` reads as in rusqlite).
pub trait ColumnIndex {
    fn index(self) -> usize;
}
impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A statement about to run: the SQL, with the connection it runs on. Preparing is the
/// engine's business (each implementation caches prepared statements by their SQL).
pub struct Stmt<'c> {
    db: &'c dyn Db,
    sql: String,
}

impl Stmt<'_> {
    /// The number of rows changed.
    pub fn execute(&mut self, args: &[Arg<'_>]) -> Result<usize, DbError> {
        Ok(self.db.run(&self.sql, args)? as usize)
    }

    /// The first row, or [`DbError::NoRows`].
    pub fn query_row<T>(
        &mut self,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut f = Some(f);
        let mut found = None;
        self.db.each(&self.sql, args, &mut |r| {
            if let Some(f) = f.take() {
                found = Some(f(r)?);
            }
            Ok(())
        })?;
        found.ok_or(DbError::NoRows)
    }

    /// Every row, read by `f`.
    pub fn query_map<T>(
        &mut self,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<std::vec::IntoIter<Result<T, DbError>>, DbError> {
        let mut rows = Vec::new();
        self.db.each(&self.sql, args, &mut |r| {
            rows.push(Ok(f(r)?));
            Ok(())
        })?;
        Ok(rows.into_iter())
    }
}

impl<'c> dyn Db + 'c {
    pub fn prepare_cached(&'c self, sql: &str) -> Result<Stmt<'c>, DbError> {
        Ok(Stmt {
            db: self,
            sql: sql.to_owned(),
        })
    }

    pub fn execute(&'c self, sql: &str, args: &[Arg<'_>]) -> Result<usize, DbError> {
        Ok(self.run(sql, args)? as usize)
    }

    pub fn query_row<T>(
        &'c self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.prepare_cached(sql)?.query_row(args, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_rows_read_as_the_shops_types() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let db: &dyn Db = &c;
        db.execute("CREATE TABLE t (n INTEGER, s TEXT)", params![]).unwrap();
        db.execute(
            "INSERT INTO t VALUES (?1, ?2), (?3, ?4)",
            params![7i64, "seven", Option::<i64>::None, Option::<&str>::None],
        )
        .unwrap();
        let rows: Vec<(Option<i64>, Option<String>)> = db
            .prepare_cached("SELECT n, s FROM t ORDER BY n IS NULL")
            .unwrap()
            .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![(Some(7), Some("seven".into())), (None, None)]);
        let wrong = db.query_row("SELECT s FROM t WHERE n = 7", params![], |r| r.get::<_, i64>(0));
        assert!(matches!(wrong, Err(DbError::Column { column: 0, .. })), "{wrong:?}");
        assert!(matches!(
            db.query_row("SELECT 1 FROM t WHERE n = 8", params![], |_| Ok(())),
            Err(DbError::NoRows)
        ));
    }
}
