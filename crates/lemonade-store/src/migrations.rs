//! Versioned schema migrations, tracked in `PRAGMA user_version`. Each entry runs once, in
//! order, inside one transaction with the version bump; a database newer than this binary is
//! refused rather than guessed at.
//!
//! There is one schema per [`Role`]: the monolith holds the whole shop; in the distributed
//! mode each service holds only the tables it owns (see ARCHITECTURE.md), built from the same
//! fragments with the references to another service's tables left out, since no database
//! can check a key that lives in another one. A database remembers its role in
//! `PRAGMA application_id`, so a service is never started on another service's file.

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

// Fragments. `{orders_fk}`, `{customers_fk}`, `{products_fk}` and `{recipes_fk}` stand for a
// reference to a table that is in the same database only in the monolith.

/// Ingredients and the ledger. Text-keyed tables are WITHOUT ROWID: one B-tree per table
/// instead of a rowid table plus a primary-key index (measured: a fifth fewer B-tree writes
/// per order).
const STOCK: &str = r#"
    CREATE TABLE ingredients (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        unit          TEXT NOT NULL CHECK (unit IN ('g', 'ml', 'piece')),
        on_hand       INTEGER NOT NULL CHECK (on_hand >= 0),
        reorder_level INTEGER NOT NULL CHECK (reorder_level >= 0),
        created_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- The ledger. Append-only: the triggers below refuse every UPDATE and DELETE. `seq` is
    -- the order moves were written in (the single writer assigns it), which is what a replay
    -- of the running balance must follow; clients see it as the move's id.
    CREATE TABLE stock_moves (
        seq           INTEGER PRIMARY KEY,
        ingredient_id TEXT NOT NULL REFERENCES ingredients (id),
        delta         INTEGER NOT NULL,
        reason        TEXT NOT NULL CHECK (reason IN ('sale', 'cancel', 'restock', 'waste', 'count')),
        order_id      TEXT{orders_fk},
        note          TEXT,
        created_at    INTEGER NOT NULL,
        CHECK ((reason IN ('sale', 'cancel')) = (order_id IS NOT NULL))
    );
    CREATE INDEX stock_moves_by_ingredient ON stock_moves (ingredient_id, seq);
"#;

/// On-hand is the ledger's running sum, kept by the database itself: a move cannot be
/// written without moving on-hand, and the CHECK on ingredients refuses a move that would
/// take it below zero. Moves are never changed.
const LEDGER_TRIGGERS_SQLITE: &str = r#"
    CREATE TRIGGER stock_moves_apply AFTER INSERT ON stock_moves
        BEGIN UPDATE ingredients SET on_hand = on_hand + NEW.delta WHERE id = NEW.ingredient_id; END;
    CREATE TRIGGER stock_moves_no_update BEFORE UPDATE ON stock_moves
        BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
    CREATE TRIGGER stock_moves_no_delete BEFORE DELETE ON stock_moves
        BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only'); END;
"#;

/// [`LEDGER_TRIGGERS_SQLITE`] in PostgreSQL's words.
const LEDGER_TRIGGERS_POSTGRES: &str = r#"
    CREATE FUNCTION stock_moves_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE ingredients SET on_hand = on_hand + NEW.delta WHERE id = NEW.ingredient_id; RETURN NULL; END $$;
    CREATE TRIGGER stock_moves_apply AFTER INSERT ON stock_moves
        FOR EACH ROW EXECUTE FUNCTION stock_moves_apply();
    CREATE FUNCTION stock_moves_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'stock_moves is append-only'; END $$;
    CREATE TRIGGER stock_moves_no_change BEFORE UPDATE OR DELETE ON stock_moves
        FOR EACH ROW EXECUTE FUNCTION stock_moves_append_only();
"#;

const CATALOG: &str = r#"
    -- Every recipe a product has had, as [[ingredient_id, quantity], ...], so the audit can
    -- prove an order's sale moves match the recipe it was sold with after the recipe changed.
    -- (Written before its product, so `product_id` is checked by the audit, not a key.)
    CREATE TABLE recipe_versions (
        id         INTEGER PRIMARY KEY,
        product_id TEXT NOT NULL,
        recipe     TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE products (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        price      INTEGER NOT NULL CHECK (price >= 0),
        active     INTEGER NOT NULL CHECK (active IN (0, 1)),
        -- The recipe as it is now, frozen: orders keep the version they were sold with.
        recipe_version INTEGER NOT NULL REFERENCES recipe_versions (id),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE recipe_items (
        product_id    TEXT NOT NULL REFERENCES products (id),
        ingredient_id TEXT NOT NULL REFERENCES ingredients (id),
        quantity      INTEGER NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (product_id, ingredient_id)
    ) WITHOUT ROWID;

"#;

const CRM: &str = r#"
    CREATE TABLE customers (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        email         TEXT,
        phone         TEXT,
        points        INTEGER NOT NULL DEFAULT 0 CHECK (points >= 0),
        anonymised_at INTEGER,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE customer_activity (
        id           TEXT PRIMARY KEY,
        customer_id  TEXT NOT NULL REFERENCES customers (id),
        kind         TEXT NOT NULL,
        order_id     TEXT{orders_fk},
        points_delta INTEGER NOT NULL,
        created_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX customer_activity_by_customer ON customer_activity (customer_id, id);
"#;

const ORDERS: &str = r#"
    CREATE TABLE orders (
        id             TEXT PRIMARY KEY,
        status         TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelled')),
        customer_id    TEXT{customers_fk},
        total          INTEGER NOT NULL CHECK (total >= 0),
        points         INTEGER NOT NULL CHECK (points >= 0),
        failure_reason TEXT,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX orders_by_status ON orders (status, id);
    CREATE INDEX orders_by_customer ON orders (customer_id, id) WHERE customer_id IS NOT NULL;
    CREATE INDEX orders_by_created ON orders (created_at);
    CREATE TABLE order_lines (
        order_id   TEXT NOT NULL REFERENCES orders (id),
        line_no    INTEGER NOT NULL,
        product_id TEXT NOT NULL{products_fk},
        name       TEXT NOT NULL,
        quantity   INTEGER NOT NULL CHECK (quantity > 0),
        unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
        recipe_version INTEGER NOT NULL{recipes_fk},
        PRIMARY KEY (order_id, line_no)
    ) WITHOUT ROWID;
"#;

/// The public idempotency keys of the monolith.
const IDEMPOTENCY: &str = r#"
    -- A client's idempotency key with the outcome it produced, written in the transaction
    -- that did the work, so the key can never say "done" for work that did not commit.
    -- A placed order is replayed from the order itself plus what changes after the first
    -- answer (its points); a refusal is kept as the error it was answered with.
    CREATE TABLE idempotency_keys (
        key             TEXT PRIMARY KEY,
        fingerprint     TEXT NOT NULL,
        order_id        TEXT REFERENCES orders (id),
        answered_points INTEGER CHECK (answered_points >= 0),
        rejection       TEXT,
        created_at      INTEGER NOT NULL,
        CHECK ((order_id IS NULL) = (answered_points IS NULL)),
        CHECK ((order_id IS NULL) <> (rejection IS NULL))
    );
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
"#;

/// Every service: the result of each step it carried out, under the key the caller derived
/// from its saga and step, written in the transaction of the step's effect. A retry of the
/// step gets this result back and the effect never happens twice.
const STEPS: &str = r#"
    CREATE TABLE step_results (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        result      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX step_results_by_age ON step_results (created_at);
"#;

/// Stock service: what each order holds. A reservation takes its stock at once (as sale
/// moves, so on-hand and the ledger stay the only truth of stock) and gives it back with
/// cancel moves when released; `held` expires at `expires_at` on the stock service's clock.
const RESERVATIONS: &str = r#"
    CREATE TABLE reservations (
        order_id   TEXT PRIMARY KEY,
        status     TEXT NOT NULL CHECK (status IN ('held', 'committed', 'released')),
        -- What it took, as [[ingredient_id, quantity], ...]; empty for a release that came
        -- before its reservation (which then can never be taken).
        needs      TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK ((status = 'held') = (expires_at IS NOT NULL))
    ) WITHOUT ROWID;
    CREATE INDEX reservations_held ON reservations (expires_at) WHERE status = 'held';
"#;

/// Orders service: events to tell other services, written in the transaction of the change
/// that caused them, delivered at least once by the relay.
const OUTBOX: &str = r#"
    CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        destination  TEXT NOT NULL CHECK (destination IN ('stock', 'crm')),
        event        TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        delivered_at INTEGER
    );
    CREATE INDEX outbox_undelivered ON outbox (destination, seq) WHERE delivered_at IS NULL;
"#;

/// CRM and stock services: every event already applied, so a redelivery changes nothing.
const INBOX: &str = r#"
    CREATE TABLE inbox (
        event_id   TEXT PRIMARY KEY,
        applied_at INTEGER NOT NULL
    ) WITHOUT ROWID;
"#;

/// Coordinator: one row per order placement, its state, and the client's idempotency key.
const SAGAS: &str = r#"
    CREATE TABLE sagas (
        order_id        TEXT PRIMARY KEY,
        state           TEXT NOT NULL CHECK (state IN ('running', 'compensating', 'confirmed', 'failed', 'rejected')),
        -- The order as placed (priced by the stock service), JSON; none for a refused one.
        plan            TEXT,
        -- Why it failed or was refused (a ShopError as JSON), once it has.
        outcome         TEXT,
        idempotency_key TEXT UNIQUE,
        fingerprint     TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        CHECK ((idempotency_key IS NULL) = (fingerprint IS NULL)),
        CHECK ((plan IS NULL) = (state = 'rejected'))
    ) WITHOUT ROWID;
    CREATE INDEX sagas_unfinished ON sagas (updated_at) WHERE state IN ('running', 'compensating');
    CREATE INDEX sagas_by_age ON sagas (created_at);
"#;

// Version 2. Each concern is one step (a function of the role), appended to
// [`version_2`]; a step returns nothing for a role it does not touch. Written in
// SQLite's words and translated for PostgreSQL like the fragments of version 1.

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
/// pages and sorted names come out the same) and no `WITHOUT ROWID`.
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

fn schema(role: Role, engine: Engine) -> String {
    let tables = tables(role);
    match engine {
        Engine::Sqlite if has_ledger(role) => tables + LEDGER_TRIGGERS_SQLITE,
        Engine::Postgres if has_ledger(role) => postgres_tables(&tables) + LEDGER_TRIGGERS_POSTGRES,
        Engine::Sqlite => tables,
        Engine::Postgres => postgres_tables(&tables),
    }
}

fn has_ledger(role: Role) -> bool {
    matches!(role, Role::Monolith | Role::Stock)
}

fn tables(role: Role) -> String {
    let parts: &[&str] = match role {
        Role::Monolith => &[STOCK, CATALOG, CRM, ORDERS, IDEMPOTENCY],
        Role::Stock => &[STOCK, CATALOG, RESERVATIONS, STEPS, INBOX],
        Role::Orders => &[ORDERS, OUTBOX, STEPS],
        Role::Crm => &[CRM, INBOX, STEPS],
        Role::Coordinator => &[SAGAS],
    };
    let together = role == Role::Monolith;
    let fk = |target: &str| {
        if together {
            format!(" REFERENCES {target}")
        } else {
            String::new()
        }
    };
    parts
        .concat()
        .replace("{orders_fk}", &fk("orders (id)"))
        .replace("{customers_fk}", &fk("customers (id)"))
        .replace("{products_fk}", &fk("products (id)"))
        .replace("{recipes_fk}", &fk("recipe_versions (id)"))
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
/// `i + 1`. Version 1 is the schema of the fragments above, as databases in the field have it;
/// never change it, add to a later version.
fn migrations(role: Role, engine: Engine) -> Vec<Vec<Step>> {
    vec![vec![Step::Sql(schema(role, engine))], version_2(role, engine)]
}

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

/// `sql` in `engine`'s words (statements written for SQLite, as the fragments are).
pub(crate) fn for_engine(sql: &str, engine: Engine) -> String {
    match engine {
        Engine::Sqlite => sql.to_owned(),
        Engine::Postgres => postgres_tables(sql),
    }
}

/// The schema version this binary writes (every role is at the same version today).
pub const SCHEMA_VERSION: i64 = 2;

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
    assert!((1..=SCHEMA_VERSION).contains(&target));

    assert!((1..=SCHEMA_VERSION).contains(&target), "no schema version {target}");
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
        assert!(schema(Role::Monolith, Engine::Sqlite).contains("REFERENCES orders (id)"));
        for role in [Role::Stock, Role::Orders, Role::Crm] {
            let sql = schema(role, Engine::Sqlite);
            assert!(!sql.contains('{'), "{role:?} has an unfilled placeholder");
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
