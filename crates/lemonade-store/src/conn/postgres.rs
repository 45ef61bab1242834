//! The PostgreSQL engine of the [`Db`] seam, through the synchronous `postgres` client:
//! its connection (statement cache, reconnect, the writer's advisory lock), its client
//! settings, and a URL as it may be shown.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use postgres_types::{IsNull, ToSql, Type};

use super::{Arg, Begin, Db, DbError, Row, Value};

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

/// Column `column` of a PostgreSQL row as a [`Value`].
pub(super) fn value(r: &postgres::Row, column: usize) -> Result<Value, DbError> {
    Ok(r.try_get::<_, PgValue>(column)?.0)
}

/// Any column PostgreSQL returns for the shop's SQL, as a [`Value`]: integers of every width
/// and booleans as integers, anything else as text. (A `SUM` over `BIGINT` is `NUMERIC` in
/// PostgreSQL, which would be read as text: the shop's SQL casts its sums to `BIGINT`.)
struct PgValue(Value);

impl<'a> postgres_types::FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
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

/// `url` as it may be shown (in a log, an error, `lemonade check`'s report): read by the
/// client's own parser and written again from its fields, scheme, user, hosts, ports and
/// database, with `***` for a password wherever the URL gave one (user info or `?password=`)
/// and none of the other options. A URL the client cannot read is not shown at all.
pub fn redact(url: &str) -> String {
    let Ok(config) = url.parse::<postgres::Config>() else {
        return "(a PostgreSQL URL that cannot be read)".to_owned();
    };
    let user = match (config.get_user(), config.get_password().is_some()) {
        (Some(user), true) => format!("{user}:***@"),
        (Some(user), false) => format!("{user}@"),
        (None, true) => ":***@".to_owned(),
        (None, false) => String::new(),
    };
    let ports = config.get_ports();
    let hosts = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                postgres::config::Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = if ports.len() == 1 { ports.first() } else { ports.get(i) };
            match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let dbname = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{hosts}/{dbname}")
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
    fn a_shown_url_hides_every_password_and_keeps_where_it_points() {
        assert_eq!(
            redact("postgres://shop:s3cret@db.example:6543/shop_stock?sslmode=disable"),
            "postgres://shop:***@db.example:6543/shop_stock"
        );
        assert_eq!(
            redact("postgresql://shop@db/shop?password=s3cret"),
            "postgres://shop:***@db:5432/shop"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432"),
            "postgres://postgres@127.0.0.1:5432/"
        );
        assert_eq!(redact("postgres://a,b:5433/x"), "postgres://a:5432,b:5433/x");
        assert!(!redact("postgres://u:s3cret@[::1/x").contains("s3cret"));
    }
}
