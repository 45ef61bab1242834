//! Shipped schema versions never change: the schema a fresh SQLite database gets at each
//! version, for each role, is compared with a committed snapshot of it
//! (`tests/schema/v<N>.sqlite.txt`: `sqlite_master` as SQLite stores it). The snapshot of
//! version 1 was taken from the generator that made version 1 before it was frozen into
//! `migrations/v1/`, so this test proves the frozen files make the same databases. A new
//! version gets its snapshot with `UPDATE_SCHEMA_SNAPSHOT=1`; an old one is never rewritten.
//! (PostgreSQL's side is in `tests/postgres.rs`.)

#[path = "schema/snapshot.rs"]
mod snapshot;

use lemonade_store::migrations::{Role, SCHEMA_VERSION, migrate_role_to};

/// The schema of `role` at `version` as SQLite stores it: the role it is marked with, then
/// every table, index and trigger with its SQL text.
fn sqlite_schema(role: Role, version: i64) -> String {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    migrate_role_to(&mut conn, role, version).unwrap();
    let mut out = format!("== {} (application_id {})\n", role.as_str(), {
        conn.query_row("PRAGMA application_id", [], |r| r.get::<_, i64>(0))
            .unwrap()
    });
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "-- {} {} ON {}\n{}\n",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?.unwrap_or_default()
            ))
        })
        .unwrap();
    for row in rows {
        out.push_str(&row.unwrap());
    }
    out
}

#[test]
fn each_shipped_sqlite_schema_version_is_what_it_was_when_it_shipped() {
    for version in 1..=SCHEMA_VERSION {
        let all: String = Role::ALL.into_iter().map(|role| sqlite_schema(role, version)).collect();
        snapshot::compare(&format!("v{version}.sqlite.txt"), &all);
    }
}
