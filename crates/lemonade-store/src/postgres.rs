//! PostgreSQL around the shop's databases: naming one database per service after a base URL,
//! creating a database that is missing, dropping a test's, and copying one into a SQLite
//! file so the audit (written for SQLite) can read it.
//!
//! Only URLs are accepted (`postgres://user@host:port/name?options`), read by the client's
//! own parser (`postgres::Config`): the database name, the URL's path, is the part this
//! module changes; the rest is kept as it was written.

use std::path::Path;

use crate::conn::{Begin, Db, DbError, PgConn};
use crate::db::OpenError;
use crate::migrations::Role;

/// The PostgreSQL server the test suites make their databases on: `LEMONADE_TEST_POSTGRES`,
/// or the local one `scripts/test.sh` starts.
pub fn test_server() -> String {
    std::env::var("LEMONADE_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A base URL on the test server no other test uses (`lt_<tag><random>`; `scripts/postgres.sh`
/// drops what a killed run left behind).
pub fn test_base(tag: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{}/lt_{tag}{}", test_server(), &id[id.len() - 12..])
}

/// Longest database name PostgreSQL keeps (NAMEDATALEN - 1).
const NAME_MAX: usize = 63;

/// A PostgreSQL URL taken apart around its database name.
struct Url<'a> {
    /// Everything up to and including the `/` before the name.
    head: &'a str,
    name: String,
    /// `?options`, or empty.
    tail: &'a str,
}

/// Reads `url` with the client's own parser (a URL it would refuse to connect with is
/// refused here) and finds the span of its path, the database name, which is the one part
/// [`role_url`] writes anew.
fn parse(url: &str) -> Result<Url<'_>, OpenError> {
    let bad = |why: &str| OpenError::Other(format!("{}: {why}", crate::db::redact(url)));
    let Some((_, rest)) = url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
    else {
        return Err(bad("a PostgreSQL URL starts with postgres://"));
    };
    let config: postgres::Config = url.parse().map_err(|e| bad(&format!("not a PostgreSQL URL ({e})")))?;
    let name = config.get_dbname().unwrap_or_default().to_owned();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("the database name may hold only letters, digits and _"));
    }
    if name.len() > NAME_MAX {
        return Err(bad("the database name is too long"));
    }
    let authority_end = url.len() - rest.len() + rest.find(['/', '?']).unwrap_or(rest.len());
    let tail_start = url[authority_end..].find('?').map_or(url.len(), |q| authority_end + q);
    let path = url[authority_end..tail_start].trim_start_matches('/');
    if path != name {
        return Err(bad("give the database name in the URL's path, not as an option"));
    }
    let head_end = if url[authority_end..].starts_with('/') {
        authority_end + 1
    } else {
        authority_end
    };
    Ok(Url {
        head: &url[..head_end],
        name,
        tail: &url[tail_start..],
    })
}

fn with_name(url: &Url<'_>, name: &str) -> String {
    let slash = if url.head.ends_with('/') { "" } else { "/" };
    format!("{}{slash}{name}{}", url.head, url.tail)
}

/// The URL of `role`'s database in a cluster whose base URL is `base`: the base's database
/// name (`lemonade` when it names none) followed by `_` and the role, on the same server.
pub fn role_url(base: &str, role: Role) -> Result<String, OpenError> {
    let url = parse(base)?;
    let prefix = if url.name.is_empty() {
        "lemonade"
    } else {
        url.name.as_str()
    };
    let name = format!("{prefix}_{}", role.as_str());
    if name.len() > NAME_MAX {
        return Err(OpenError::Other(format!(
            "the database name {name} is longer than PostgreSQL allows"
        )));
    }
    Ok(with_name(&url, &name))
}

/// Runs `work` on a thread of its own and waits for it: the PostgreSQL client blocks on a
/// runtime of its own, which a thread of an async runtime (a test's `Drop`, `lemonade check`)
/// must not do.
fn on_own_thread<T: Send>(work: impl FnOnce() -> Result<T, OpenError> + Send) -> Result<T, OpenError> {
    std::thread::scope(|s| s.spawn(work).join().expect("a PostgreSQL thread does not panic"))
}

/// Runs `work` on a connection to the server's maintenance database (`postgres`).
fn on_server<T: Send>(
    url: &str,
    work: impl FnOnce(&mut postgres::Client, &str) -> Result<T, OpenError> + Send,
) -> Result<T, OpenError> {
    let parsed = parse(url)?;
    let name = parsed.name.to_owned();
    if name.is_empty() {
        return Err(OpenError::Other(format!(
            "{} names no database",
            crate::db::redact(url)
        )));
    }
    let admin = with_name(&parsed, "postgres");
    on_own_thread(move || {
        let connected = crate::conn::pg_config(&admin)
            .and_then(|c| c.connect(postgres::NoTls).map_err(DbError::from))
            .map_err(|e| e.to_string());
        let mut client = connected.map_err(|e| {
            OpenError::Other(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                crate::db::redact(&admin)
            ))
        })?;
        work(&mut client, &name)
    })
}

/// Creates the database `url` names if the server has none of that name.
pub fn ensure_database(url: &str) -> Result<(), OpenError> {
    on_server(url, |client, name| {
        let exists = !client
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .map_err(DbError::from)?
            .is_empty();
        if !exists {
            // The name is letters, digits and _ (checked by `parse`), so quoting it is safe.
            match client.batch_execute(&format!(
                "CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"
            )) {
                Ok(()) => tracing::info!(database = name, "created the PostgreSQL database"),
                // Another process created it in between.
                Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE) => {}
                Err(e) => return Err(DbError::from(e).into()),
            }
        }
        Ok(())
    })
}

/// Drops the database `url` names, closing its connections (for tests that made their own).
pub fn drop_database(url: &str) -> Result<(), OpenError> {
    on_server(url, |client, name| {
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(|e| DbError::from(e).into())
    })
}

/// Drops the database of every service of the cluster whose base URL is `base` (a test's).
pub fn drop_cluster_databases(base: &str) -> Result<(), OpenError> {
    for role in Role::ALL.into_iter().filter(|&r| r != Role::Monolith) {
        drop_database(&role_url(base, role)?)?;
    }
    Ok(())
}

/// The schema version of `role`'s PostgreSQL database at `url`, 0 when it holds no schema;
/// refuses a database of another role. Reads only: a database that does not exist is an
/// error (the server's message), never created.
pub fn schema_of(url: &str, role: Role) -> Result<i64, OpenError> {
    on_own_thread(|| {
        let pg = PgConn::connect(url)?;
        read_schema(&pg, role)
    })
}

/// What a start checks of `role`'s PostgreSQL database at `url` before it writes to any
/// database, writing and creating nothing: `None` when there is no such database yet (it will
/// be created), else its schema version, refusing a database of another role or of a newer
/// schema. Any other failure (the server refuses the connection, say) is an error.
pub fn check_database(url: &str, role: Role) -> Result<Option<i64>, OpenError> {
    on_own_thread(|| {
        let pg = match PgConn::connect(url) {
            Ok(pg) => pg,
            Err(DbError::Postgres(e)) if e.code() == Some(&postgres::error::SqlState::INVALID_CATALOG_NAME) => {
                return Ok(None);
            }
            Err(e) => return Err(crate::db::unreachable_server(url, e)),
        };
        read_schema(&pg, role).map(Some)
    })
}

/// The role and version `lemonade_schema` records (version 0 without one), checked against
/// `role` and this binary's version.
fn read_schema(pg: &PgConn, role: Role) -> Result<i64, OpenError> {
    let db: &dyn Db = pg;
    pg.begin(Begin::Read)?;
    let has_schema: bool = db.query_row(
        "SELECT to_regclass('lemonade_schema') IS NOT NULL",
        crate::params![],
        |r| r.get(0),
    )?;
    let found: Option<(String, i64)> = if has_schema {
        crate::conn::optional(
            db.query_row("SELECT role, version FROM lemonade_schema", crate::params![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            }),
        )?
    } else {
        None
    };
    pg.rollback()?;
    let version = found.as_ref().map_or(0, |(_, version)| *version);
    crate::migrations::check_found(found.as_ref().map(|(r, _)| r.as_str()), version, role)?;
    Ok(version)
}

/// Copies every row of `role`'s PostgreSQL database into a new SQLite database at `path`
/// with the same schema, from one snapshot. Copies rows as they are: triggers, keys and
/// CHECKs are off in the copy, so the audit sees exactly what PostgreSQL holds.
pub fn copy_to_sqlite(url: &str, role: Role, path: &Path) -> Result<(), OpenError> {
    on_own_thread(|| {
        let mut copy = rusqlite::Connection::open(path)?;
        crate::migrations::create_scratch_schema(&mut copy, role)?;
        copy.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON;")?;
        let names =
            |sql: &str| -> rusqlite::Result<Vec<String>> { copy.prepare(sql)?.query_map([], |r| r.get(0))?.collect() };
        for trigger in names("SELECT name FROM sqlite_master WHERE type = 'trigger'")? {
            copy.execute_batch(&format!("DROP TRIGGER {trigger}"))?;
        }
        let pg = PgConn::connect(url)?;
        pg.begin(Begin::Read)?;
        let source: &dyn Db = &pg;
        let tx = copy.unchecked_transaction()?;
        for table in names("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")? {
            let columns = names(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))?;
            let marks = (1..=columns.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let columns = columns.join(", ");
            let mut insert = tx.prepare(&format!("INSERT INTO {table} ({columns}) VALUES ({marks})"))?;
            source.each(&format!("SELECT {columns} FROM {table}"), &[], &mut |r| {
                let row = (0..insert.parameter_count())
                    .map(|i| {
                        Ok(match r.get::<_, crate::conn::Value>(i)? {
                            crate::conn::Value::Null => rusqlite::types::Value::Null,
                            crate::conn::Value::Int(n) => rusqlite::types::Value::Integer(n),
                            crate::conn::Value::Text(t) => rusqlite::types::Value::Text(t),
                        })
                    })
                    .collect::<Result<Vec<_>, DbError>>()?;
                insert.execute(rusqlite::params_from_iter(row))?;
                Ok(())
            })?;
        }
        pg.rollback()?;
        tx.commit()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_a_database_named_after_the_base() {
        assert_eq!(
            role_url("postgres://postgres@127.0.0.1:5432/shop", Role::Stock).unwrap(),
            "postgres://postgres@127.0.0.1:5432/shop_stock"
        );
        assert_eq!(
            role_url("postgresql://u:pw@db/shop?sslmode=disable", Role::Crm).unwrap(),
            "postgresql://u:pw@db/shop_crm?sslmode=disable"
        );
        assert_eq!(
            role_url("postgres://db", Role::Orders).unwrap(),
            "postgres://db/lemonade_orders"
        );
        assert_eq!(
            role_url("postgres://db/", Role::Coordinator).unwrap(),
            "postgres://db/lemonade_coordinator"
        );
    }

    #[test]
    fn a_url_that_is_not_postgres_or_names_an_odd_database_is_refused() {
        assert!(role_url("mysql://db/shop", Role::Stock).is_err());
        assert!(role_url("host=db dbname=shop", Role::Stock).is_err());
        assert!(role_url("postgres://db/shop\";DROP", Role::Stock).is_err());
        assert!(role_url(&format!("postgres://db/{}", "x".repeat(60)), Role::Coordinator).is_err());
    }
}
