//! The database itself: SQLite's own check of the file, and the foreign keys.

use crate::rule::{Audit, Finding, Group, QueryRule, Rule, names};

pub(crate) const GROUP: Group = Group { run, rules };

/// A database's own check: what `PRAGMA quick_check` said of it (its first line).
pub(crate) struct Integrity {
    /// What the report calls the database: "file" for the monolith's, a schema's name in a
    /// cluster.
    pub database: String,
    pub result: String,
}

pub(crate) const INTEGRITY_RULES: &[Rule<Integrity>] = &[Rule {
    name: "database-integrity",
    check: integrity_ok,
}];

fn integrity_ok(i: &Integrity) -> Option<Finding> {
    (i.result != "ok").then(|| Finding::new(&i.database, &i.result))
}

const FOREIGN_KEYS: QueryRule = QueryRule {
    name: "foreign-keys",
    sql: "PRAGMA foreign_key_check",
    finding: |r| {
        let (table, rowid, parent) = (
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, String>(2)?,
        );
        Ok(Finding::new(
            format!("{table} row {rowid:?}"),
            format!("points at a missing {parent}"),
        ))
    },
};

/// SQLite's check of the database `schema` (`main`, or an attached one), named `database`.
pub(crate) fn integrity(audit: &Audit<'_>, schema: &str, database: &str) -> rusqlite::Result<Integrity> {
    let sql = match schema {
        "main" => "PRAGMA quick_check".to_owned(),
        schema => format!("PRAGMA {schema}.quick_check"),
    };
    Ok(Integrity {
        database: database.to_owned(),
        result: audit.conn.query_row(&sql, [], |r| r.get(0))?,
    })
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    let file = integrity(audit, "main", "file")?;
    audit.report.check_rows(&[file], INTEGRITY_RULES);
    audit.check_query(&FOREIGN_KEYS)
}

fn rules() -> Vec<&'static str> {
    names(INTEGRITY_RULES).chain([FOREIGN_KEYS.name]).collect()
}
