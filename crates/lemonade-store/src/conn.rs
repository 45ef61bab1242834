//! The seam between the shop's SQL and a database engine.
//!
//! Every `sql/*` function takes a `&dyn Db`: a connection inside a transaction someone else
//! opened. Two engines implement it, SQLite (through rusqlite, the default and the monolith's)
//! and PostgreSQL (through the synchronous `postgres` client, for services that run on a
//! server). The SQL is written once, in the subset both engines read the same way: numbered
//! parameters (`?1`, rewritten to `$1` for PostgreSQL), integers and text only, no engine
//! functions. Schemas differ and live in `migrations`.
//!
//! The methods on `dyn Db` (`prepare_cached`, `query_row`, `query_map`, `execute`) read like
//! rusqlite's on purpose: the SQL modules were written against it, and the differences that
//! matter (how a parameter is bound, how a column is read) are decided here once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use postgres_types::{IsNull, ToSql, Type};

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
    Postgres(postgres::Error),
    #[error("cannot read column {column}: {why}")]
    Column { column: usize, why: String },
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

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

/// A PostgreSQL error in words. The client's `Display` says only "db error" for whatever the
/// server answered, and "error connecting to server" for any failed connection; what went
/// wrong is in the server's message or the error's cause, which this adds: `database
/// "shop_crm" does not exist`, `error connecting to server: Connection refused (os error 111)`.
pub fn postgres_error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = db.message().to_owned();
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; {hint}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
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
    /// zeros where deleted values were); PostgreSQL vacuums `tables` (see ARCHITECTURE.md for
    /// what that leaves). `Ok(false)`: a reader still uses what would go; try again later.
    fn scrub(&self, tables: &[&str]) -> Result<bool, DbError>;
}

/// Longest a scrub of a SQLite database waits for readers that still use its WAL, holding
/// the writer meanwhile: reads take milliseconds, and the caller tries again.
const SCRUB_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// One row of a query's result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
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
        let bad = |why: String| DbError::Column { column, why };
        match self {
            Row::Sqlite(r) => Ok(match r.get_ref(column)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                rusqlite::types::ValueRef::Text(t) => {
                    Value::Text(std::str::from_utf8(t).map_err(|e| bad(e.to_string()))?.to_owned())
                }
                other => return Err(bad(format!("unexpected {:?}", other.data_type()))),
            }),
            Row::Postgres(r) => Ok(r.try_get::<_, PgValue>(column)?.0),
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

// SQLite.

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

// PostgreSQL.

/// Rewrites SQLite's `?N` parameters to PostgreSQL's `$N`. The shop's SQL has no `?` in its
/// string literals.
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        out.push('$');
        if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                out.push(d);
                chars.next();
            }
        } else {
            out.push_str(&next.to_string());
            next += 1;
        }
    }
    out
}

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Text(s) => s.to_sql(ty, out),
            Arg::Int(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                Type::BOOL => (n != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer to a parameter of type {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

/// Any column PostgreSQL returns for the shop's SQL, as a [`Value`].
struct PgValue(Value);

impl<'a> postgres_types::FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            // SUM over BIGINT is NUMERIC in PostgreSQL.
            Type::NUMERIC => Value::Int(numeric_integer(raw)?),
            _ => Value::Text(<String as postgres_types::FromSql>::from_sql(ty, raw)?),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Decodes a NUMERIC in PostgreSQL's binary format that holds a whole number fitting `i64`:
/// a header (digit count, weight, sign, display scale) and base-10000 digits, the first one
/// worth 10000^weight.
fn numeric_integer(raw: &[u8]) -> Result<i64, String> {
    let word = |i: usize| -> Result<i16, String> {
        raw.get(2 * i..2 * i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a truncated NUMERIC".to_owned())
    };
    let (digits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    let mut value: i128 = 0;
    for i in 0..digits.max(0) as i32 {
        let digit = word(4 + i as usize)? as i128;
        let power = weight as i32 - i;
        if power < 0 {
            if digit != 0 {
                return Err("a NUMERIC with a fraction".to_owned());
            }
            continue;
        }
        value += digit * 10_000i128.checked_pow(power as u32).ok_or("a NUMERIC too large")?;
    }
    let value = match sign {
        0x0000 => value,
        0x4000 => -value,
        _ => return Err("a NUMERIC that is not a number".to_owned()),
    };
    i64::try_from(value).map_err(|_| "a NUMERIC too large".to_owned())
}

/// Longest connecting to a PostgreSQL server may take (unless the URL says otherwise).
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle time before a connection's first TCP keepalive, then between keepalives; after
/// [`PG_KEEPALIVES_MAX`] unanswered ones the connection is dead.
const PG_KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const PG_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const PG_KEEPALIVES_MAX: u32 = 3;
/// Longest data sent to the server may stay unacknowledged before the connection is dead
/// (unless the URL says otherwise).
const PG_UNACKNOWLEDGED_MAX: Duration = Duration::from_secs(30);

/// The client settings of `url`, with a way out of every wait on the network: connecting
/// times out, and a connection whose server or network went away without closing it is
/// found dead within about half a minute (rather than the system's two hours of keepalive,
/// or never while a reply is awaited), so a writer or reader blocked on it fails and
/// connects again instead of waiting for good.
pub fn pg_config(url: &str) -> Result<postgres::Config, DbError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(PG_CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(PG_UNACKNOWLEDGED_MAX);
    }
    config
        .keepalives(true)
        .keepalives_idle(PG_KEEPALIVE_IDLE)
        .keepalives_interval(PG_KEEPALIVE_INTERVAL)
        .keepalives_retries(PG_KEEPALIVES_MAX);
    Ok(config)
}

/// A PostgreSQL connection for the shop's SQL: prepared statements cached by their SQL, and
/// a reconnect at the next transaction when the server closed the connection.
pub struct PgConn {
    url: String,
    /// Always `Some` but while being dropped (see the `Drop` impl).
    client: RefCell<Option<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// A statement failed in the open transaction, which PostgreSQL then refuses to commit.
    failed: Cell<bool>,
    open: Cell<bool>,
    changes: Cell<u64>,
    /// Whether this connection holds the database's writer lock (taken again on reconnect).
    writer_lock: Cell<bool>,
    /// The session's name, if given (given again on reconnect).
    application_name: RefCell<Option<String>>,
}

/// The advisory lock the writer of a database holds for as long as its session lasts.
const WRITER_LOCK_KEY: i64 = 0x4c4d_5752;

/// Most prepared statements a connection keeps; past that it starts over.
const STATEMENTS_MAX: usize = 256;

impl PgConn {
    pub fn connect(url: &str) -> Result<PgConn, DbError> {
        Ok(PgConn {
            url: url.to_owned(),
            client: RefCell::new(Some(pg_config(url)?.connect(postgres::NoTls)?)),
            statements: RefCell::new(HashMap::new()),
            failed: Cell::new(false),
            open: Cell::new(false),
            changes: Cell::new(0),
            writer_lock: Cell::new(false),
            application_name: RefCell::new(None),
        })
    }

    /// Connects again (after the server closed the connection), taking the writer lock again
    /// when this connection held it.
    fn reconnect(&self) -> Result<(), DbError> {
        *self.client() = pg_config(&self.url)?.connect(postgres::NoTls)?;
        self.statements.borrow_mut().clear();
        let name = self.application_name.borrow().clone();
        if let Some(name) = name {
            self.set_application_name(&name)?;
        }
        if self.writer_lock.get() && !self.take_writer_lock()? {
            return Err(DbError::Session("another process took this database's writer lock"));
        }
        Ok(())
    }

    fn client(&self) -> std::cell::RefMut<'_, postgres::Client> {
        std::cell::RefMut::map(self.client.borrow_mut(), |c| c.as_mut().expect("open until dropped"))
    }

    /// Takes the database's writer lock for this session; false when another session has it.
    pub fn take_writer_lock(&self) -> Result<bool, DbError> {
        let mut client = self.client();
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])?
            .get(0);
        self.writer_lock.set(taken);
        Ok(taken)
    }

    /// Names this session `name` on the server (`application_name`, at most 63 bytes kept),
    /// so that [`PgConn::writer_lock_holder`] can say who holds the lock.
    pub fn set_application_name(&self, name: &str) -> Result<(), DbError> {
        self.client()
            .query_one("SELECT set_config('application_name', $1, false)", &[&name])?;
        *self.application_name.borrow_mut() = Some(name.to_owned());
        Ok(())
    }

    /// Who holds this database's writer lock, if another session does: the name that session
    /// gave itself, or its server process id.
    pub fn writer_lock_holder(&self) -> Result<Option<String>, DbError> {
        let row = self.client().query_opt(
            "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid <> pg_backend_pid() \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND (l.classid::bigint << 32 | l.objid::bigint) = $1 \
             LIMIT 1",
            &[&WRITER_LOCK_KEY],
        )?;
        Ok(row.map(|row| {
            let name: Option<String> = row.get(0);
            let pid: i32 = row.get(1);
            match name.filter(|n| !n.is_empty()) {
                Some(name) => name,
                None => format!("the session of server process {pid}"),
            }
        }))
    }

    /// Runs SQL text as it is (DDL, several statements), outside the statement cache.
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        self.noting_failure(self.client().batch_execute(sql))
    }

    fn noting_failure<T>(&self, r: Result<T, postgres::Error>) -> Result<T, DbError> {
        if r.is_err() && self.open.get() {
            self.failed.set(true);
        }
        Ok(r?)
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement, DbError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let prepared = self.noting_failure(self.client().prepare(&postgres_sql(sql)))?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENTS_MAX {
            cache.clear();
        }
        cache.insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    fn bind<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
    }
}

/// Whether a server error means the session is over (class 57: operator intervention, such as
/// `pg_terminate_backend` or a shutdown; 08: connection exception).
fn is_connection_gone(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"))
}

/// The client says goodbye to the server when dropped, blocking on a runtime of its own,
/// which a thread of an async runtime must not do: it is dropped on a thread of its own.
impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            let _ = std::thread::Builder::new()
                .name("lemonade-pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

impl Db for PgConn {
    fn run(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        let stmt = self.statement(sql)?;
        let n = self.noting_failure(self.client().execute(&stmt, &Self::bind(args)))?;
        self.changes.set(self.changes.get() + n);
        Ok(n)
    }

    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let stmt = self.statement(sql)?;
        let rows = self.noting_failure(self.client().query(&stmt, &Self::bind(args)))?;
        rows.iter().try_for_each(|r| each(&Row::Postgres(r)))
    }

    fn begin(&self, how: Begin) -> Result<(), DbError> {
        if self.client().is_closed() {
            self.reconnect()?;
        }
        let sql = match how {
            Begin::Write => "BEGIN",
            Begin::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        };
        let begun = self.client().batch_execute(sql);
        match begun {
            Ok(()) => {}
            // The server dropped the connection since its last use (a restart, an
            // administrator): nothing was begun, so connect again and begin there.
            Err(e) if e.is_closed() || self.client().is_closed() || is_connection_gone(&e) => {
                tracing::warn!(error = %e, "the PostgreSQL connection was lost; connecting again");
                self.reconnect()?;
                self.client().batch_execute(sql)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.open.set(true);
        self.failed.set(false);
        Ok(())
    }

    fn commit(&self) -> Result<(), DbError> {
        self.open.set(false);
        if self.failed.get() {
            let _ = self.client().batch_execute("ROLLBACK");
            return Err(DbError::Session("a statement of the transaction failed"));
        }
        self.client().batch_execute("COMMIT")?;
        Ok(())
    }

    fn rollback(&self) -> Result<(), DbError> {
        self.open.set(false);
        self.client().batch_execute("ROLLBACK")?;
        Ok(())
    }

    fn can_commit(&self) -> bool {
        self.open.get() && !self.failed.get()
    }

    fn changes(&self) -> u64 {
        self.changes.get()
    }

    fn scrub(&self, tables: &[&str]) -> Result<bool, DbError> {
        if !tables.is_empty() {
            // Not in a transaction block: VACUUM refuses to run in one.
            self.client().batch_execute(&format!("VACUUM {}", tables.join(", ")))?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_connections_have_a_way_out_of_every_network_wait_unless_the_url_sets_one() {
        let config = pg_config("postgres://u@127.0.0.1:5432/db").unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&PG_CONNECT_TIMEOUT));
        assert_eq!(config.get_tcp_user_timeout(), Some(&PG_UNACKNOWLEDGED_MAX));
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), PG_KEEPALIVE_IDLE);
        assert_eq!(config.get_keepalives_interval(), Some(PG_KEEPALIVE_INTERVAL));
        assert_eq!(config.get_keepalives_retries(), Some(PG_KEEPALIVES_MAX));
        let chosen = pg_config("postgres://u@127.0.0.1:5432/db?connect_timeout=2").unwrap();
        assert_eq!(chosen.get_connect_timeout(), Some(&Duration::from_secs(2)));
    }

    #[test]
    fn postgres_sql_numbers_parameters_like_sqlite_does() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE b = ?1 AND c > ?12"),
            "SELECT a FROM t WHERE b = $1 AND c > $12"
        );
        assert_eq!(postgres_sql("VALUES (?, ?)"), "VALUES ($1, $2)");
    }

    #[test]
    fn numeric_integers_decode_from_postgres_binary_format() {
        // 123456789 = 1·10000² + 2345·10000 + 6789: 3 digits, weight 2, positive, scale 0.
        let mut raw = Vec::new();
        for w in [3i16, 2, 0, 0, 1, 2345, 6789] {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(numeric_integer(&raw), Ok(123_456_789));
        raw[4..6].copy_from_slice(&0x4000u16.to_be_bytes());
        assert_eq!(numeric_integer(&raw), Ok(-123_456_789));
        // Zero has no digits.
        assert_eq!(numeric_integer(&[0, 0, 0, 0, 0, 0, 0, 0]), Ok(0));
        // 1.5: digits [1, 5000] with weight 0.
        let mut frac = Vec::new();
        for w in [2i16, 0, 0, 1, 1, 5000] {
            frac.extend_from_slice(&w.to_be_bytes());
        }
        assert!(numeric_integer(&frac).is_err());
    }

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
