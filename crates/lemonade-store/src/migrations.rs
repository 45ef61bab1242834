//! Versioned schema migrations, tracked in `PRAGMA user_version` (on PostgreSQL, in
//! `lemonade_schema`). Each version runs once, in order, inside one transaction with the
//! version bump; a database newer than this binary is refused rather than guessed at.
//!
//! **A shipped version is never edited, only a new one added.** Databases in the field were
//! made by it; a change to it would make a fresh database differ from an upgraded one without
//! anyone noticing. Version 1 is frozen as SQL files, one per role and engine, in
//! `migrations/v1/` (embedded with `include_str!`); version 2 is [`version_2`], steps in SQL
//! and Rust; versions 3 and 4 compute the text keys again (`text_keys::rekey_steps`), as
//! every change of the rules of `lemonade_domain::text` must. `tests/schema.rs` and `tests/postgres.rs` compare the schema a fresh database
//! gets at each version with a committed snapshot, so an edit of a shipped version fails.
//!
//! There is one schema per [`Role`]: the monolith holds the whole shop; in the distributed
//! mode each service holds only the tables it owns (see ARCHITECTURE.md), with the references
//! to another service's tables left out, since no database can check a key that lives in
//! another one. A database remembers its role in `PRAGMA application_id`, so a service is
//! never started on another service's file. The monolith is SQLite only.
//!
//! What version 1 holds, and why: text-keyed tables are `WITHOUT ROWID` (one B-tree per table
//! instead of a rowid table plus a primary-key index); on-hand is the ledger's running sum,
//! kept by a trigger on `stock_moves`, whose rows triggers refuse to change; PostgreSQL gets
//! the same tables with 64-bit integers, identity keys where SQLite has rowids and byte-order
//! text (`COLLATE "C"`, what SQLite compares by, so keyset pages and sorted names come out
//! the same).

use rusqlite::Connection;

/// Which part of the shop a database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The whole shop in one database (`lemonade serve`).
    Monolith,
    /// Ingredients, the ledger, products and recipes, and reservations.
    Stock,
    /// Orders, their lines, and the outbox of events for the other services.
    Orders,
    /// Customers, their points and activity, and the inbox of events already applied.
    Crm,
    /// The saga log and the public idempotency keys of the distributed mode.
    Coordinator,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Monolith, Role::Stock, Role::Orders, Role::Crm, Role::Coordinator];

    /// Whether a database of this role holds customers.
    pub fn holds_customers(self) -> bool {
        matches!(self, Role::Monolith | Role::Crm)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Monolith => "monolith",
            Role::Stock => "stock",
            Role::Orders => "orders",
            Role::Crm => "crm",
            Role::Coordinator => "coordinator",
        }
    }

    /// The `application_id` marking a database of this role. The monolith keeps 0, which is
    /// what every database written before roles existed has.
    fn application_id(self) -> i32 {
        match self {
            Role::Monolith => 0,
            Role::Stock => 0x4c4d_0001,
            Role::Orders => 0x4c4d_0002,
            Role::Crm => 0x4c4d_0003,
            Role::Coordinator => 0x4c4d_0004,
        }
    }

    fn of_application_id(id: i32) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.application_id() == id)
    }
}

// Version 2. Each concern is one step (a function of the role), appended to
// [`version_2`]; a step returns nothing for a role it does not touch. Written in
// SQLite's words and translated for PostgreSQL by `for_engine`.

/// Version 2, event retention (receivers): each applied event's place in its sender's outbox,
/// and the sender's word that everything below a place is delivered and will never be sent
/// again, so that an inbox id can be forgotten once its event can no longer arrive (see
/// `sql::events`). Rows applied before version 2 have no place and are kept.
const INBOX_RETENTION_V2: &str = r#"
    ALTER TABLE inbox ADD COLUMN source TEXT;
    ALTER TABLE inbox ADD COLUMN seq INTEGER;
    CREATE INDEX inbox_by_age ON inbox (applied_at);
    CREATE TABLE inbox_senders (
        source          TEXT PRIMARY KEY,
        -- Every event of this sender with a smaller seq was delivered and marked so: its
        -- relay will never send it again.
        delivered_below INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    ) WITHOUT ROWID;
"#;

/// Version 2, event retention (the orders service): delivered events are forgotten by age.
const OUTBOX_RETENTION_V2: &str = r#"
    CREATE INDEX outbox_by_age ON outbox (created_at);
"#;

fn event_retention_v2(role: Role, engine: Engine) -> String {
    let sql = match role {
        Role::Stock | Role::Crm => INBOX_RETENTION_V2,
        Role::Orders => OUTBOX_RETENTION_V2,
        Role::Monolith | Role::Coordinator => "",
    };
    for_engine(sql, engine)
}

/// Version 2, customers' steps keep references (CRM): a stored result of a customer's step
/// (every successful step CRM has) becomes `{"Ok":{"id":...}}`, the form it has from now on,
/// instead of a copy of the customer with their name, email and phone.
fn customer_step_references_v2(role: Role, engine: Engine) -> String {
    if role != Role::Crm {
        return String::new();
    }
    match engine {
        Engine::Sqlite => r#"
            UPDATE step_results SET result = json_object('Ok', json_object('id', json_extract(result, '$.Ok.id')))
            WHERE result LIKE '{"Ok":{%';
        "#
        .to_owned(),
        Engine::Postgres => r#"
            UPDATE step_results SET result = json_build_object('Ok', json_build_object('id', result::json -> 'Ok' ->> 'id'))::text
            WHERE result LIKE '{"Ok":{%';
        "#
        .to_owned(),
    }
}

/// The database engine a schema is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The tables are written in SQLite's words; PostgreSQL gets them with 64-bit integers,
/// identity keys where SQLite has rowids, byte-order text (what SQLite compares by, so keyset
/// pages and sorted names come out the same) and no `WITHOUT ROWID`. Version 2's steps are
/// translated by it (version 1 is frozen already translated), so what it does is part of a
/// shipped version: never change it, write a later version's statements without it instead.
fn postgres_tables(sqlite: &str) -> String {
    sqlite
        .replace(" WITHOUT ROWID", "")
        .replace(
            "INTEGER PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace("INTEGER", "BIGINT")
        .replace(" TEXT", " TEXT COLLATE \"C\"")
}

/// Version 1 of `role` in `engine`'s words, as it shipped (`migrations/v1/`). The monolith
/// has no PostgreSQL schema: [`migrate_postgres`] refuses it before asking for one.
fn version_1(role: Role, engine: Engine) -> &'static str {
    match (engine, role) {
        (Engine::Sqlite, Role::Monolith) => include_str!("../migrations/v1/monolith.sqlite.sql"),
        (Engine::Sqlite, Role::Stock) => include_str!("../migrations/v1/stock.sqlite.sql"),
        (Engine::Sqlite, Role::Orders) => include_str!("../migrations/v1/orders.sqlite.sql"),
        (Engine::Sqlite, Role::Crm) => include_str!("../migrations/v1/crm.sqlite.sql"),
        (Engine::Sqlite, Role::Coordinator) => include_str!("../migrations/v1/coordinator.sqlite.sql"),
        (Engine::Postgres, Role::Stock) => include_str!("../migrations/v1/stock.postgres.sql"),
        (Engine::Postgres, Role::Orders) => include_str!("../migrations/v1/orders.postgres.sql"),
        (Engine::Postgres, Role::Crm) => include_str!("../migrations/v1/crm.postgres.sql"),
        (Engine::Postgres, Role::Coordinator) => include_str!("../migrations/v1/coordinator.postgres.sql"),
        (Engine::Postgres, Role::Monolith) => panic!("the monolith has no PostgreSQL schema"),
    }
}

/// One step of a migration, run inside the migration's transaction.
pub(crate) enum Step {
    /// Statements, in the engine's words.
    Sql(String),
    /// Rust code over the open transaction, for what SQL cannot do alike on both engines (such
    /// as Unicode normalisation, which SQLite does not have).
    Code(fn(&dyn crate::conn::Db, Role) -> Result<(), crate::conn::DbError>),
}

/// The migrations of a role, oldest first: entry `i` brings a database from version `i` to
/// `i + 1`. A shipped version is never changed: a change is a new version.
fn migrations(role: Role, engine: Engine) -> Vec<Vec<Step>> {
    vec![
        vec![Step::Sql(version_1(role, engine).to_owned())],
        version_2(role, engine),
        // Version 3: the text rules of 2026-12-01 (look-alike letters of other scripts, UTS #39
        // confusables, a word at a time), so every stored key is computed again.
        crate::text_keys::rekey_steps(role, engine),
        // Version 4: the text rules of 2026-12-01, second part (a word of two other scripts
        // than Latin written in one, Greek and Cyrillic, kana and Han; keyboard signs such as
        // `/`, `*` and `·` and their look-alikes), so every stored key is computed again.
        crate::text_keys::rekey_steps(role, engine),
        // Version 5: every process records its events with their hybrid logical clock stamps
        // (issue 13), for an order's timeline across the services.
        vec![Step::Sql(for_engine(TIMELINE_V5, engine))],
    ]
}

/// Version 5, every role: what happened here, each with the stamp of this process's hybrid
/// logical clock drawn in the write's turn (`hlc`, see `lemonade_domain::hlc::Stamp`), the
/// process's name and its wall-clock reading, and the order or customer it concerns.
/// Written in the transaction of the change it records; append-only.
const TIMELINE_V5: &str = r#"
    CREATE TABLE timeline (
        seq         INTEGER PRIMARY KEY,
        order_id    TEXT,
        customer_id TEXT,
        hlc         INTEGER NOT NULL,
        service     TEXT NOT NULL,
        wall_ms     INTEGER NOT NULL,
        what        TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE INDEX timeline_by_order ON timeline (order_id, hlc) WHERE order_id IS NOT NULL;
    CREATE INDEX timeline_by_customer ON timeline (customer_id, hlc) WHERE customer_id IS NOT NULL;
"#;

/// Version 2: one piece per concern, appended in order.
fn version_2(role: Role, engine: Engine) -> Vec<Step> {
    let mut steps = Vec::new();
    // Names as a person reads them: keys for "the same name" and for customer search.
    steps.extend(crate::text_keys::steps(role, engine));
    // The coordinator's directory of customers, and each saga's customer.
    steps.push(Step::Sql(v2_customer_directory(role, engine)));
    // An erasure forfeits the customer's points.
    steps.push(Step::Sql(v2_erasure_forfeits_points(role)));
    // Event retention: where each applied event stands in its sender's outbox.
    steps.push(Step::Sql(event_retention_v2(role, engine)));
    // CRM's stored step results keep a customer's id, not a copy of their details.
    steps.push(Step::Sql(customer_step_references_v2(role, engine)));
    // A role a piece does not concern gets no statement from it.
    steps.retain(|step| !matches!(step, Step::Sql(sql) if sql.trim().is_empty()));
    steps
}

/// Coordinator: the directory of customers (who may be named on an order: `active`, or
/// `erasing`/`erased` once their erasure was asked for; only ids and states, never personal
/// data), and each saga's customer, so an erasure can wait for that customer's sagas.
/// Sagas already unfinished get their customer from their plan.
fn v2_customer_directory(role: Role, engine: Engine) -> String {
    if role != Role::Coordinator {
        return String::new();
    }
    let tables = r#"
    CREATE TABLE customer_directory (
        customer_id TEXT PRIMARY KEY,
        state       TEXT NOT NULL CHECK (state IN ('active', 'erasing', 'erased')),
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX customer_directory_erasing ON customer_directory (updated_at) WHERE state = 'erasing';
    ALTER TABLE sagas ADD COLUMN customer_id TEXT;
    CREATE INDEX sagas_unfinished_by_customer ON sagas (customer_id) WHERE state IN ('running', 'compensating');
"#;
    let (tables, plan_customer) = match engine {
        Engine::Sqlite => (tables.to_owned(), "json_extract(plan, '$.customer_id')"),
        Engine::Postgres => (for_engine(tables, engine), "CAST(plan AS json) ->> 'customer_id'"),
    };
    format!("{tables}    UPDATE sagas SET customer_id = {plan_customer} WHERE state IN ('running', 'compensating');\n")
}

/// Monolith and CRM: an erasure forfeits the customer's points (nobody can spend them any
/// more). Customers erased before this rule existed lose their balance now, and their
/// `anonymised` activity records it, so points still equal the activity's sum.
fn v2_erasure_forfeits_points(role: Role) -> String {
    if !role.holds_customers() {
        return String::new();
    }
    r#"
    UPDATE customer_activity SET points_delta = points_delta -
        (SELECT c.points FROM customers c WHERE c.id = customer_activity.customer_id)
        WHERE kind = 'anonymised';
    UPDATE customers SET points = 0 WHERE anonymised_at IS NOT NULL;
"#
    .to_owned()
}

/// `sql` in `engine`'s words (statements written for SQLite, as version 2's are).
pub(crate) fn for_engine(sql: &str, engine: Engine) -> String {
    match engine {
        Engine::Sqlite => sql.to_owned(),
        Engine::Postgres => postgres_tables(sql),
    }
}

/// The schema version this binary writes (every role is at the same version today).
pub const SCHEMA_VERSION: i64 = 5;

/// Brings a monolith database up to [`SCHEMA_VERSION`]. Returns the version it started from.
pub fn migrate(conn: &mut Connection) -> Result<i64, crate::db::OpenError> {
    migrate_role(conn, Role::Monolith)
}

/// Brings a database of `role` up to [`SCHEMA_VERSION`], refusing one of another role.
/// Returns the version it started from.
pub fn migrate_role(conn: &mut Connection, role: Role) -> Result<i64, crate::db::OpenError> {
    migrate_role_to(conn, role, SCHEMA_VERSION)
}

/// [`migrate_role`], stopping at `version` (tests of upgrades make older databases with it).
pub fn migrate_role_to(conn: &mut Connection, role: Role, version: i64) -> Result<i64, crate::db::OpenError> {
    assert!((1..=SCHEMA_VERSION).contains(&version), "no schema version {version}");
    let current = check_sqlite(conn, "main", role)?;
    migrate_sqlite_to(conn, role, current, version, Report::Logged)?;
    Ok(current)
}

/// Gives a new, empty SQLite database the whole schema of `role` without a word in the log:
/// for a scratch copy (the audit's of a PostgreSQL database), which no one migrates.
pub(crate) fn create_scratch_schema(conn: &mut Connection, role: Role) -> Result<(), crate::db::OpenError> {
    let current = check_sqlite(conn, "main", role)?;
    assert_eq!(current, 0, "a scratch database is new");
    migrate_sqlite_to(conn, role, current, SCHEMA_VERSION, Report::Quiet)
}

/// The schema version of the SQLite database attached as `schema` (`main` for the file a
/// connection opened), after checking that it holds `role`'s tables (or none yet) at a
/// version this binary knows: what `PRAGMA application_id` and `user_version` say.
pub fn check_sqlite(conn: &Connection, schema: &str, role: Role) -> Result<i64, crate::db::OpenError> {
    let current: i64 = conn.query_row(&format!("PRAGMA {schema}.user_version"), [], |r| r.get(0))?;
    let found: i32 = conn.query_row(&format!("PRAGMA {schema}.application_id"), [], |r| r.get(0))?;
    let found = (current > 0).then(|| Role::of_application_id(found).map_or("something else", Role::as_str));
    check_found(found, current, role)?;
    Ok(current)
}

/// Whether applying a migration is logged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    Logged,
    Quiet,
}

/// Runs the migrations of `role` that take a SQLite database from version `current` to
/// `target`, one transaction each.
fn migrate_sqlite_to(
    conn: &mut Connection,
    role: Role,
    current: i64,
    target: i64,
    report: Report,
) -> Result<(), crate::db::OpenError> {
    let all = migrations(role, Engine::Sqlite);
    assert_eq!(all.len() as i64, SCHEMA_VERSION, "every role is at the same version");
    for (i, steps) in all.iter().enumerate().take(target as usize).skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for step in steps {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql)?,
                Step::Code(code) => code(&*tx, role)?,
            }
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.pragma_update(None, "application_id", role.application_id())?;
        tx.commit()?;
        if report == Report::Logged {
            tracing::info!(version = i + 1, role = role.as_str(), "applied schema migration");
        }
    }
    Ok(())
}

/// Refuses a database that holds another role's tables (`found` names the role it holds, if
/// it holds any) or a schema newer than this binary's.
pub(crate) fn check_found(found: Option<&str>, current: i64, role: Role) -> Result<(), crate::db::OpenError> {
    if let Some(other) = found.filter(|&other| other != role.as_str()) {
        return Err(crate::db::OpenError::Other(format!(
            "this database belongs to {other}, not to {}",
            role.as_str()
        )));
    }
    if current > SCHEMA_VERSION {
        return Err(crate::db::OpenError::Other(format!(
            "the database has schema version {current}, newer than this binary's {SCHEMA_VERSION}: upgrade lemonade"
        )));
    }
    Ok(())
}

/// Brings a PostgreSQL database up to [`SCHEMA_VERSION`] for `role`, refusing one of
/// another role. The role and version live in `lemonade_schema`; an advisory lock keeps two
/// processes from migrating at once. Returns the version it started from.
pub fn migrate_postgres(conn: &crate::conn::PgConn, role: Role) -> Result<i64, crate::db::OpenError> {
    migrate_postgres_to(conn, role, SCHEMA_VERSION)
}

/// Like [`migrate_postgres`], but stops at version `target` (tests of a later migration start
/// from a database as an older binary left it).
pub fn migrate_postgres_to(conn: &crate::conn::PgConn, role: Role, target: i64) -> Result<i64, crate::db::OpenError> {
    use crate::conn::{Begin, Db};
    assert!((1..=SCHEMA_VERSION).contains(&target), "no schema version {target}");
    if role == Role::Monolith {
        return Err(crate::db::OpenError::Other(
            "the monolith keeps its database in SQLite, not PostgreSQL".to_owned(),
        ));
    }
    conn.begin(Begin::Write)?;
    let result = (|| {
        conn.batch(
            "SELECT pg_advisory_xact_lock(1279087955);
             CREATE TABLE IF NOT EXISTS lemonade_schema (role TEXT NOT NULL, version BIGINT NOT NULL)",
        )?;
        let db: &dyn Db = conn;
        let found: Option<(String, i64)> = crate::conn::optional(db.query_row(
            "SELECT role, version FROM lemonade_schema",
            crate::params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        let current = found.as_ref().map_or(0, |(_, version)| *version);
        check_found(found.as_ref().map(|(other, _)| other.as_str()), current, role)?;
        for (i, steps) in migrations(role, Engine::Postgres)
            .iter()
            .enumerate()
            .take(target as usize)
            .skip(current as usize)
        {
            for step in steps {
                match step {
                    Step::Sql(sql) => conn.batch(sql)?,
                    Step::Code(code) => code(db, role)?,
                }
            }
            db.execute("DELETE FROM lemonade_schema", crate::params![])?;
            db.execute(
                "INSERT INTO lemonade_schema (role, version) VALUES (?1, ?2)",
                crate::params![role.as_str(), i as i64 + 1],
            )?;
            tracing::info!(version = i + 1, role = role.as_str(), "applied schema migration");
        }
        Ok(current)
    })();
    match result {
        Ok(current) => {
            conn.commit()?;
            Ok(current)
        }
        Err(e) => {
            let _ = conn.rollback();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_migrates_and_a_database_refuses_another_role() {
        for role in Role::ALL {
            let mut conn = Connection::open_in_memory().unwrap();
            conn.pragma_update(None, "foreign_keys", "ON").unwrap();
            assert_eq!(migrate_role(&mut conn, role).unwrap(), 0);
            assert_eq!(migrate_role(&mut conn, role).unwrap(), SCHEMA_VERSION);
            for other in Role::ALL.into_iter().filter(|&o| o != role) {
                let e = migrate_role(&mut conn, other).unwrap_err().to_string();
                assert!(e.contains(role.as_str()), "{e}");
            }
        }
    }

    #[test]
    fn a_version_1_database_migrates_to_version_2() {
        for role in [Role::Monolith, Role::Crm] {
            let mut conn = Connection::open_in_memory().unwrap();
            migrate_role_to(&mut conn, role, 1).unwrap();
            conn.execute_batch(
                "INSERT INTO customers (id, name, points, anonymised_at, created_at, updated_at)
                     VALUES ('kept', 'Ada', 4, NULL, 1, 1), ('erased', 'Anonymised customer', 7, 2, 1, 2);
                 INSERT INTO customer_activity (id, customer_id, kind, points_delta, created_at) VALUES
                     ('a1', 'kept', 'order_placed', 4, 1), ('a2', 'erased', 'order_placed', 7, 1),
                     ('a3', 'erased', 'anonymised', 0, 2);",
            )
            .unwrap();
            assert_eq!(migrate_role(&mut conn, role).unwrap(), 1);
            let balances: Vec<(String, i64, i64)> = conn
                .prepare(
                    "SELECT id, points, (SELECT SUM(points_delta) FROM customer_activity a WHERE a.customer_id = c.id)
                     FROM customers c ORDER BY id",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                balances,
                [("erased".to_owned(), 0, 0), ("kept".to_owned(), 4, 4)],
                "{role:?}: the erasure forfeited the points"
            );
        }

        let mut conn = Connection::open_in_memory().unwrap();
        migrate_role_to(&mut conn, Role::Coordinator, 1).unwrap();
        conn.execute_batch(
            r#"INSERT INTO sagas (order_id, state, plan, created_at, updated_at) VALUES
                 ('o1', 'running', '{"customer_id":"c1"}', 1, 1),
                 ('o2', 'compensating', '{"customer_id":null}', 1, 1),
                 ('o3', 'confirmed', '{"customer_id":"c1"}', 1, 1);"#,
        )
        .unwrap();
        assert_eq!(migrate_role(&mut conn, Role::Coordinator).unwrap(), 1);
        let customers: Vec<(String, Option<String>)> = conn
            .prepare("SELECT order_id, customer_id FROM sagas ORDER BY order_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            customers,
            [
                ("o1".to_owned(), Some("c1".to_owned())),
                ("o2".to_owned(), None),
                ("o3".to_owned(), None)
            ],
            "unfinished sagas know their customer"
        );
        conn.execute_batch("INSERT INTO customer_directory VALUES ('c1', 'active', 1)")
            .unwrap();
    }

    #[test]
    fn only_the_monolith_references_tables_of_other_services() {
        assert!(version_1(Role::Monolith, Engine::Sqlite).contains("REFERENCES orders (id)"));
        for role in [Role::Stock, Role::Orders, Role::Crm] {
            let sql = version_1(role, Engine::Sqlite);
            for foreign in ["customers (id)", "products (id)", "recipe_versions (id)", "orders (id)"] {
                let owns = sql.contains(&format!("CREATE TABLE {}", foreign.split(' ').next().unwrap()));
                assert!(
                    owns || !sql.contains(&format!("REFERENCES {foreign}")),
                    "{role:?} → {foreign}"
                );
            }
        }
    }
}
