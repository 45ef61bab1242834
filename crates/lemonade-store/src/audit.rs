//! The audit behind `lemonade check`, as the store runs it: finds a shop's databases (the
//! monolith's file, a cluster's four, or a cluster's on PostgreSQL, copied), checks that each
//! is its role's at this binary's schema version, opens them read-only in one snapshot, and
//! runs the rules. The rules themselves are `lemonade-audit`'s, a crate that depends on
//! nothing of the writers, so that the audit shares no code with what it audits.

use std::path::Path;

pub use lemonade_audit::{AuditReport, VIOLATIONS_SHOWN_MAX, Violation, audit};
use rusqlite::Connection;

use crate::db::OpenError;
use crate::migrations::Role;

/// What the caller asks of each database file before the audit opens it: `Err` refuses the
/// file, in words the error gives on; nothing is opened then. The store's seam for what only
/// the caller knows, such as a process writing the file through another path, whose recent
/// changes lie in a WAL beside that path, not this one (`lemonade check`).
pub type Vet<'a> = &'a dyn Fn(&Path) -> Result<(), String>;

/// A [`Vet`] that refuses nothing.
fn vet_nothing(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Audits the monolith's database file at `path`; reads only and creates nothing (see
/// [`open_for_audit`]). Safe while the shop runs.
pub fn audit_file(path: &Path) -> Result<AuditReport, OpenError> {
    audit_file_vetted(path, &vet_nothing)
}

/// [`audit_file`], once `vet` took the file.
fn audit_file_vetted(path: &Path, vet: Vet) -> Result<AuditReport, OpenError> {
    audit_opened(&OpenShop {
        conn: open_file_vetted(path, vet)?,
        layout: Layout::Monolith,
    })
}

/// The monolith's database file at `path`, opened read-only as [`audit_file`] opens it,
/// once `vet` took it and its schema was found to be the monolith's at this binary's version.
fn open_file_vetted(path: &Path, vet: Vet) -> Result<Connection, OpenError> {
    let conn = open_for_audit(path, vet)?;
    check_audited(&conn, "main", Role::Monolith, path)?;
    Ok(conn)
}

/// Which shop a data folder holds (`monolith` or `cluster` in JSON: the checker's final
/// state records it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The monolith's one database (`lemonade serve`).
    Monolith,
    /// A cluster's four databases (`lemonade cluster`), attached under
    /// `lemonade_audit::CLUSTER_SCHEMAS` with the monolith's tables as views over them
    /// (`lemonade_audit::create_cluster_views`).
    Cluster,
}

/// A shop's databases, opened read-only on one connection as the audit opens them: the
/// monolith's file, or a cluster's four attached with the monolith's tables as views, so
/// that a query of the monolith's tables reads either. No transaction is open: a caller
/// that reads more than once begins one, for one snapshot.
pub struct OpenShop {
    pub conn: Connection,
    pub layout: Layout,
}

/// Runs the audit of `layout` on `shop`, in one read transaction.
pub fn audit_opened(shop: &OpenShop) -> Result<AuditReport, OpenError> {
    shop.conn.execute_batch("BEGIN")?;
    let report = audit_in_snapshot(shop)?;
    shop.conn.execute_batch("COMMIT")?;
    Ok(report)
}

/// Runs the audit of `shop`'s layout inside the caller's read transaction.
pub fn audit_in_snapshot(shop: &OpenShop) -> Result<AuditReport, OpenError> {
    Ok(match shop.layout {
        Layout::Monolith => audit(&shop.conn)?,
        Layout::Cluster => lemonade_audit::audit_cluster(&shop.conn)?,
    })
}

/// Audits what `data` holds: the monolith's database, or a cluster's four (see
/// [`audit_cluster`]). A folder that holds neither is refused, naming what it should hold; so is
/// one whose databases `vet` refuses, before any of them is opened.
pub fn audit_folder(data: &Path, vet: Vet) -> Result<AuditReport, OpenError> {
    audit_opened(&open_folder(data, vet)?)
}

/// Opens what `data` holds for reading, as [`audit_folder`] does (the same refusals): the
/// monolith's database, or a cluster's four.
pub fn open_folder(data: &Path, vet: Vet) -> Result<OpenShop, OpenError> {
    if !data.is_dir() {
        return Err(OpenError::Other(if data.exists() {
            format!("{} is not a folder", data.display())
        } else {
            format!("there is no folder {}", data.display())
        }));
    }
    let monolith = data.join(MONOLITH_DATABASE);
    let shops = shops_in(data);
    if let Some(refusal) = shops.two_shops(data) {
        return Err(OpenError::Other(format!("{refusal}, and check each")));
    }
    match (shops.monolith, shops.cluster.is_empty()) {
        (true, _) => Ok(OpenShop {
            conn: open_file_vetted(&monolith, vet)?,
            layout: Layout::Monolith,
        }),
        (false, false) => Ok(OpenShop {
            conn: open_cluster_vetted(data, vet)?,
            layout: Layout::Cluster,
        }),
        (false, true) => Err(OpenError::Other(format!(
            "{} holds no shop: neither {MONOLITH_DATABASE} (lemonade serve) nor {} (lemonade cluster)",
            data.display(),
            cluster_files()
        ))),
    }
}

/// What a data folder holds of each kind of shop (a folder is to hold one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopsIn {
    /// The monolith's database, `lemonade.db`, is there.
    pub monolith: bool,
    /// The files of a cluster's databases that are there, of [`CLUSTER_DATABASES`], in its order.
    pub cluster: Vec<&'static str>,
}

impl ShopsIn {
    /// The refusal of a folder that holds both kinds of shop, naming them (`data` is the
    /// folder), or `None`: what `check`, `serve` and `cluster` all say of such a folder.
    pub fn two_shops(&self, data: &Path) -> Option<String> {
        (self.monolith && !self.cluster.is_empty()).then(|| {
            format!(
                "{} holds two shops, a monolith's {MONOLITH_DATABASE} and a cluster's {}: a folder holds one shop; \
                 move one of them to a folder of its own",
                data.display(),
                self.cluster.join(", ")
            )
        })
    }
}

/// What `data` holds (see [`ShopsIn`]); nothing for a folder that does not exist.
pub fn shops_in(data: &Path) -> ShopsIn {
    ShopsIn {
        monolith: data.join(MONOLITH_DATABASE).exists(),
        cluster: CLUSTER_DATABASES
            .iter()
            .map(|(_, file)| *file)
            .filter(|file| data.join(file).exists())
            .collect(),
    }
}

/// The monolith's database file in its data folder.
const MONOLITH_DATABASE: &str = "lemonade.db";

/// "stock.db, orders.db, crm.db and coordinator.db".
fn cluster_files() -> String {
    let files: Vec<_> = CLUSTER_DATABASES.iter().map(|(_, file)| *file).collect();
    format!("{} and {}", files[..files.len() - 1].join(", "), files[files.len() - 1])
}

/// Opens a database file for the audit, once `vet` took it: see [`crate::db::open_to_read`].
fn open_for_audit(path: &Path, vet: Vet) -> Result<Connection, OpenError> {
    ensure_audited_file(path)?;
    vet(path).map_err(OpenError::Other)?;
    crate::db::open_to_read(path).map_err(|e| in_file(path, e))
}

/// Refuses a database file that is missing or empty, before SQLite would create or use it.
fn ensure_audited_file(path: &Path) -> Result<(), OpenError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(OpenError::Other(format!("no database at {}", path.display())))
        }
        Err(e) => Err(OpenError::Other(format!("cannot read {}: {e}", path.display()))),
        Ok(m) if !m.is_file() => Err(OpenError::Other(format!("{} is not a file", path.display()))),
        Ok(m) if m.len() == 0 => Err(OpenError::Other(format!(
            "{} is empty: no shop was ever stored in it",
            path.display()
        ))),
        Ok(_) => Ok(()),
    }
}

/// An error about the file at `path`, naming it.
fn in_file(path: &Path, e: impl std::fmt::Display) -> OpenError {
    OpenError::Other(format!("{}: {e}", path.display()))
}

/// Refuses a database attached as `schema` (from `path`) that is not `role`'s at this
/// binary's schema version: another program's file, another service's database, or a
/// version this binary does not audit.
fn check_audited(conn: &Connection, schema: &str, role: Role, path: &Path) -> Result<(), OpenError> {
    let version = crate::migrations::check_sqlite(conn, schema, role).map_err(|e| in_file(path, e))?;
    check_audited_version(version, &path.display().to_string())
}

/// Refuses a schema version other than this binary's, saying what to do.
fn check_audited_version(version: i64, what: &str) -> Result<(), OpenError> {
    let expected = crate::migrations::SCHEMA_VERSION;
    match version {
        0 => Err(OpenError::Other(format!("{what} holds no shop (it has no schema)"))),
        v if v < expected => Err(OpenError::Other(format!(
            "{what} has schema version {v}, this binary audits version {expected}: start the shop on it with this binary once to migrate it"
        ))),
        v if v > expected => Err(OpenError::Other(format!(
            "{what} has schema version {v}, this binary audits version {expected}: audit it with a newer lemonade"
        ))),
        _ => Ok(()),
    }
}

/// Where `role` keeps its database in a data folder: the monolith's [`MONOLITH_DATABASE`],
/// a cluster role's file of [`CLUSTER_DATABASES`]. The one map of a folder's files, for
/// `serve`, `cluster`, the audit and the simulation.
pub fn database_path(data: &Path, role: Role) -> std::path::PathBuf {
    let file = match role {
        Role::Monolith => MONOLITH_DATABASE,
        cluster => CLUSTER_DATABASES
            .iter()
            .find(|(name, _)| *name == cluster.as_str())
            .map(|(_, file)| *file)
            .expect("every cluster role has its file"),
    };
    data.join(file)
}

/// The files of a cluster's databases, by the schema name the audit attaches them under
/// (`lemonade_audit::CLUSTER_SCHEMAS`, in its order).
pub const CLUSTER_DATABASES: [(&str, &str); 4] = [
    ("coordinator", "coordinator.db"),
    ("stock", "stock.db"),
    ("orders", "orders.db"),
    ("crm", "crm.db"),
];

/// Audits a cluster's four databases together, read-only and each from one snapshot (safe
/// while the cluster runs, though work in flight between services then shows up: audit a
/// quiet cluster). Every rule of the monolith holds across them, and so do the saga rules:
/// no saga unfinished, no reservation held, every event delivered, each order's
/// reservation, status and saga agreeing, no stock taken for an order that does not exist.
pub fn audit_cluster(data: &Path) -> Result<AuditReport, OpenError> {
    audit_cluster_vetted(data, &vet_nothing)
}

/// [`audit_cluster`], once `vet` took each of the four files (all of them before any is opened).
fn audit_cluster_vetted(data: &Path, vet: Vet) -> Result<AuditReport, OpenError> {
    audit_opened(&OpenShop {
        conn: open_cluster_vetted(data, vet)?,
        layout: Layout::Cluster,
    })
}

/// A cluster's four databases attached read-only to one connection, with the monolith's
/// tables as views over them, once `vet` took each file (all of them before any is opened).
fn open_cluster_vetted(data: &Path, vet: Vet) -> Result<Connection, OpenError> {
    for (_, file) in CLUSTER_DATABASES {
        let path = data.join(file);
        ensure_audited_file(&path)?;
        vet(&path).map_err(OpenError::Other)?;
    }
    let conn = Connection::open_in_memory()?;
    for (schema, file) in CLUSTER_DATABASES {
        let path = data.join(file);
        let attach = |mode: &str| {
            conn.execute(
                "ATTACH DATABASE ?1 AS ?2",
                rusqlite::params![format!("{}?mode={mode}", file_uri(&path)), schema],
            )
        };
        // Read-write (no create) when allowed, for the reason `open_for_audit` gives.
        attach("rw").or_else(|_| attach("ro")).map_err(|e| in_file(&path, e))?;
        check_audited(&conn, schema, role_of(schema), &path)?;
    }
    lemonade_audit::create_cluster_views(&conn)?;
    // After the views: they are written to the connection's temporary schema.
    conn.pragma_update(None, "query_only", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The role whose database a cluster's schema name is.
fn role_of(schema: &str) -> Role {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == schema)
        .expect("every cluster database is a role's")
}

/// A `file:` URI for `path`, with the characters a URI gives a meaning escaped
/// (<https://sqlite.org/uri.html>).
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri
}

/// [`audit_cluster`] for a cluster on PostgreSQL, each service in the database
/// [`crate::postgres::role_url`] names after `base`. Every database is first checked to
/// exist and to hold its service's schema at this binary's version (creating and migrating
/// nothing); each is then copied, from one snapshot, into a SQLite file of a temporary
/// folder, and the copies are audited.
pub fn audit_postgres_cluster(base: &str) -> Result<AuditReport, OpenError> {
    let urls = CLUSTER_DATABASES
        .iter()
        .map(|(schema, file)| {
            let role = role_of(schema);
            Ok((role, crate::postgres::role_url(base, role)?, *file))
        })
        .collect::<Result<Vec<_>, OpenError>>()?;
    for (role, url, _) in &urls {
        let what = format!("the {} database ({})", role.as_str(), crate::db::redact(url));
        let version = crate::postgres::schema_of(url, *role).map_err(|e| OpenError::Other(format!("{what}: {e}")))?;
        check_audited_version(version, &what)?;
    }
    let dir = tempfile::tempdir().map_err(|e| OpenError::Other(format!("cannot make a folder for the copies: {e}")))?;
    for (role, url, file) in &urls {
        crate::postgres::copy_to_sqlite(url, *role, &dir.path().join(file)).map_err(|e| {
            OpenError::Other(format!(
                "copying the {} database ({}): {e}",
                role.as_str(),
                crate::db::redact(url)
            ))
        })?;
    }
    audit_cluster(dir.path())
}

#[cfg(test)]
mod tests;
