//! The store on PostgreSQL: migrations per role, one writer per database, connections lost
//! and made again, and the audit of a cluster whose databases live on a server. Needs the
//! server at `LEMONADE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`, which
//! `scripts/test.sh` starts when it is stopped). Every test makes databases of its own
//! (`lt_*`) and drops them.

#[path = "schema/snapshot.rs"]
mod snapshot;

use std::sync::Arc;

use lemonade_domain::ids::IngredientId;
use lemonade_domain::stock::NewIngredient;
use lemonade_domain::values::{Timestamp, Unit};
use lemonade_store::conn::{Db, PgConn};
use lemonade_store::migrations::{Role, migrate_postgres, migrate_postgres_to};
use lemonade_store::postgres::role_url;
use lemonade_store::sql::stock;
use lemonade_store::system::UuidV7Ids;
use lemonade_store::{Database, Tx, WriterConfig};

const SERVICES: [Role; 4] = [Role::Stock, Role::Orders, Role::Crm, Role::Coordinator];

/// A base URL of databases no other test uses, dropped at the end.
struct Fresh(String);

impl Fresh {
    fn new() -> Fresh {
        Fresh(lemonade_store::postgres::test_base("s"))
    }

    fn url(&self, role: Role) -> String {
        role_url(&self.0, role).unwrap()
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        lemonade_store::postgres::drop_cluster_databases(&self.0).unwrap();
    }
}

/// Runs SQL as the server's administrator on `url`'s database, off the async runtime.
fn admin(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap();
}

fn new_ingredient(name: &str, on_hand: u64) -> NewIngredient {
    NewIngredient {
        name: name.into(),
        unit: Unit::G,
        on_hand,
        reorder_level: 0,
    }
}

/// Runs `work` as one writer job of `db`, its time `at`.
async fn write_at<T: Send + 'static>(
    db: &Database,
    at: i64,
    work: impl FnOnce(&Tx) -> Result<T, lemonade_domain::ShopError> + Send + 'static,
) -> Result<T, lemonade_domain::ShopError> {
    let cache = Arc::clone(&db.cache);
    db.writer
        .execute(move |c| work(&Tx::new(c, &cache, &UuidV7Ids, Timestamp(at))))
        .await
}

async fn create_ingredient(db: &Database, name: &str, on_hand: u64) -> Result<(), lemonade_domain::ShopError> {
    let name = name.to_owned();
    let id = IngredientId::parse(&uuid::Uuid::now_v7().to_string()).unwrap();
    write_at(db, 1, move |tx| {
        stock::create(tx, id, &new_ingredient(&name, on_hand)).map(drop)
    })
    .await
}

async fn open(url: &str, role: Role) -> anyhow::Result<Database> {
    let url = url.to_owned();
    Ok(tokio::task::spawn_blocking(move || Database::open_postgres(&url, role, WriterConfig::default())).await??)
}

#[test]
fn every_role_migrates_once_and_a_database_refuses_another_role() {
    let fresh = Fresh::new();
    for role in SERVICES {
        lemonade_store::postgres::ensure_database(&fresh.url(role)).unwrap();
        let conn = PgConn::connect(&fresh.url(role)).unwrap();
        assert_eq!(migrate_postgres(&conn, role).unwrap(), 0);
        assert_eq!(
            migrate_postgres(&conn, role).unwrap(),
            lemonade_store::migrations::SCHEMA_VERSION
        );
        for other in SERVICES.into_iter().filter(|&o| o != role) {
            let e = migrate_postgres(&conn, other).unwrap_err().to_string();
            assert!(e.contains(role.as_str()), "{e}");
        }
    }
}

/// The first column of the first row of `sql`, as text, read as the administrator.
fn scalar(url: &str, sql: &str) -> String {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.query_one(&sql, &[]).unwrap().get::<_, String>(0)
    })
    .join()
    .unwrap()
}

#[test]
fn a_version_1_database_migrates_to_version_2() {
    use lemonade_store::migrations::migrate_postgres_to;

    let fresh = Fresh::new();
    for role in SERVICES {
        lemonade_store::postgres::ensure_database(&fresh.url(role)).unwrap();
        let conn = PgConn::connect(&fresh.url(role)).unwrap();
        assert_eq!(migrate_postgres_to(&conn, role, 1).unwrap(), 0);
    }
    let crm = fresh.url(Role::Crm);
    admin(
        &crm,
        "INSERT INTO customers (id, name, points, anonymised_at, created_at, updated_at)
             VALUES ('kept', 'Ada', 4, NULL, 1, 1), ('erased', 'Anonymised customer', 7, 2, 1, 2);
         INSERT INTO customer_activity (id, customer_id, kind, points_delta, created_at) VALUES
             ('a1', 'kept', 'order_placed', 4, 1), ('a2', 'erased', 'order_placed', 7, 1),
             ('a3', 'erased', 'anonymised', 0, 2);",
    );
    let coordinator = fresh.url(Role::Coordinator);
    admin(
        &coordinator,
        r#"INSERT INTO sagas (order_id, state, plan, created_at, updated_at) VALUES
             ('o1', 'running', '{"customer_id":"c1"}', 1, 1),
             ('o2', 'compensating', '{"customer_id":null}', 1, 1);"#,
    );
    for role in SERVICES {
        let conn = PgConn::connect(&fresh.url(role)).unwrap();
        assert_eq!(migrate_postgres(&conn, role).unwrap(), 1, "{role:?}");
    }
    let balances = "SELECT string_agg(id || '=' || points || '/' ||
         (SELECT SUM(points_delta) FROM customer_activity a WHERE a.customer_id = c.id), ' ' ORDER BY id)
         FROM customers c";
    assert_eq!(
        scalar(&crm, balances),
        "erased=0/0 kept=4/4",
        "the erasure forfeited the points"
    );
    let customers =
        "SELECT string_agg(order_id || '=' || COALESCE(customer_id, '-'), ' ' ORDER BY order_id) FROM sagas";
    assert_eq!(scalar(&coordinator, customers), "o1=c1 o2=-");
    admin(
        &coordinator,
        "INSERT INTO customer_directory VALUES ('c1', 'active', 1)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_write_to_a_services_database_and_is_told_who_does() {
    let fresh = Fresh::new();
    let url = fresh.url(Role::Stock);
    let first = tokio::task::spawn_blocking(move || {
        Database::open_postgres_as(&url, Role::Stock, WriterConfig::default(), "the first (pid 1)")
    })
    .await
    .unwrap()
    .unwrap();
    let second = open(&fresh.url(Role::Stock), Role::Stock).await;
    let e = second.err().expect("a second writer is refused").to_string();
    assert!(
        e.contains("stock database") && e.contains("is in use by the first (pid 1)"),
        "{e}"
    );
    create_ingredient(&first, "Lemons", 10).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_and_readers_connect_again_after_the_server_drops_their_connections() {
    let fresh = Fresh::new();
    let url = fresh.url(Role::Stock);
    let db = open(&url, Role::Stock).await.unwrap();
    create_ingredient(&db, "Lemons", 10).await.unwrap();
    admin(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    // The first use of a dropped connection fails (and says retry); the next connects again.
    let mut failures = 0;
    while create_ingredient(&db, "Sugar", 10).await.is_err() {
        failures += 1;
        assert!(failures <= 1, "the writer did not connect again");
    }
    let mut listed = None;
    for _ in 0..=lemonade_store::db::READERS_MAX {
        if let Ok(n) = db
            .readers
            .read(|c| stock::list(c, &lemonade_domain::ports::PageRequest::first(50)).map(|p| p.items.len()))
            .await
        {
            listed = Some(n);
            break;
        }
    }
    assert_eq!(listed, Some(2), "a reader connected again and sees both ingredients");
    // The writer took its lock and its name again with its new connection.
    let e = open(&url, Role::Stock)
        .await
        .err()
        .expect("still one writer")
        .to_string();
    assert!(e.contains("is in use by a lemonade process"), "{e}");
}

/// Callers that give up on their reads (a client hanging up) at every point of a read, many
/// times: every connection comes back to the pool, and reads go on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_whose_callers_hang_up_leave_the_pool_reading() {
    let fresh = Fresh::new();
    let db = open(&fresh.url(Role::Orders), Role::Orders).await.unwrap();
    let slow = |c: &dyn Db| {
        c.query_row("SELECT 1 FROM pg_sleep(0.002)", lemonade_store::params![], |_| Ok(()))
            .map_err(lemonade_store::sql::storage_error)
    };
    let mut callers = tokio::task::JoinSet::new();
    for i in 0..300u64 {
        let readers = std::sync::Arc::clone(&db.readers);
        callers.spawn(async move {
            let patience = std::time::Duration::from_micros(i % 6 * 500);
            let _ = tokio::time::timeout(patience, readers.read(slow)).await;
        });
    }
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }
    for _ in 0..10 {
        let reads = (0..lemonade_store::db::READERS_MAX * 2).map(|_| db.readers.read(slow));
        for read in reads {
            read.await.unwrap();
        }
        db.readers.lookup(slow).await.unwrap();
    }
    assert_eq!(db.readers.probe(5_000).await, Ok(()));
}

/// A database the server no longer lets anyone into makes the process's health fail, with
/// the reason; once it is let in again, the connections are made again and health is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_while_the_database_is_unreachable_and_comes_back_with_it() {
    let fresh = Fresh::new();
    let url = fresh.url(Role::Crm);
    let db = open(&url, Role::Crm).await.unwrap();
    assert_eq!(db.health().await, Ok(()));
    let name = url.rsplit('/').next().unwrap().to_owned();
    let maintenance = format!("{}/postgres", lemonade_store::postgres::test_server());
    admin(
        &maintenance,
        &format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ),
    );
    let e = db.health().await.expect_err("no read can be made").to_string();
    assert!(e.contains("database"), "{e}");
    admin(&maintenance, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    assert_eq!(db.health().await, Ok(()), "a reader connected again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_reads_a_cluster_on_postgres_and_finds_on_hand_that_is_not_the_ledger() {
    let fresh = Fresh::new();
    let mut dbs = Vec::new();
    for role in SERVICES {
        dbs.push(open(&fresh.url(role), role).await.unwrap());
    }
    create_ingredient(&dbs[0], "Lemons", 10).await.unwrap();
    let base = fresh.0.clone();
    let audit = || lemonade_store::audit::audit_postgres_cluster(&base).unwrap();
    let clean = audit();
    assert!(clean.is_clean(), "{}", clean.to_text());
    assert_eq!(clean.ingredients, 1);
    admin(&fresh.url(Role::Stock), "UPDATE ingredients SET on_hand = on_hand + 5");
    let report = audit();
    assert!(
        report.violations.iter().any(|v| v.rule == "on-hand-equals-ledger"),
        "{}",
        report.to_text()
    );
}

#[test]
fn the_ledger_is_append_only_on_postgres_too() {
    let fresh = Fresh::new();
    let url = fresh.url(Role::Stock);
    lemonade_store::postgres::ensure_database(&url).unwrap();
    let conn = PgConn::connect(&url).unwrap();
    migrate_postgres(&conn, Role::Stock).unwrap();
    let db: &dyn Db = &conn;
    db.execute(
        "INSERT INTO ingredients (id, name, unit, on_hand, reorder_level, created_at) VALUES ('i1', 'Lemons', 'g', 0, 0, 1)",
        lemonade_store::params![],
    )
    .unwrap();
    db.execute(
        "INSERT INTO stock_moves (ingredient_id, delta, reason, created_at) VALUES ('i1', 7, 'restock', 1)",
        lemonade_store::params![],
    )
    .unwrap();
    let on_hand: i64 = db
        .query_row(
            "SELECT on_hand FROM ingredients WHERE id = ?1",
            lemonade_store::params!["i1"],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(on_hand, 7, "the trigger applies a move to on-hand");
    assert!(
        db.execute("UPDATE stock_moves SET delta = 1", lemonade_store::params![])
            .is_err()
    );
    assert!(
        db.execute("DELETE FROM stock_moves", lemonade_store::params![])
            .is_err()
    );
    let below_zero = db.execute(
        "INSERT INTO stock_moves (ingredient_id, delta, reason, created_at) VALUES ('i1', -8, 'waste', 1)",
        lemonade_store::params![],
    );
    assert!(below_zero.is_err(), "on-hand cannot go below zero");
}

/// The reservation steps on PostgreSQL, whose `INSERT ... DO NOTHING` and `UPDATE` count rows
/// as SQLite's do: a second reserve and a late one are refused and take nothing, a commit
/// keeps the stock and a released reservation gives it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_on_postgres_take_stock_once_and_refuse_what_came_too_late() {
    use lemonade_domain::ShopError;
    use lemonade_domain::catalog::NewProduct;
    use lemonade_domain::ids::{OrderId, ProductId};
    use lemonade_domain::order::{DraftLine, OrderDraft};
    use lemonade_domain::stock::RecipeItem;
    use lemonade_domain::values::{Money, Quantity};
    use lemonade_store::sql::{catalog, reservations};

    let fresh = Fresh::new();
    let db = open(&fresh.url(Role::Stock), Role::Stock).await.unwrap();
    let (lemons, product) = (
        IngredientId::parse("lemons").unwrap(),
        ProductId::parse("lemonade").unwrap(),
    );
    let (l, p) = (lemons.clone(), product.clone());
    write_at(&db, 1, move |tx| {
        stock::create(tx, l.clone(), &new_ingredient("Lemons", 10))?;
        let recipe = vec![RecipeItem {
            ingredient_id: l,
            quantity: Quantity::new(2).unwrap(),
        }];
        let new = NewProduct {
            name: "Lemonade".into(),
            price: Money::from_stored(350),
            recipe,
            active: true,
        };
        catalog::create(tx, p, &new).map(drop)
    })
    .await
    .unwrap();
    let draft = OrderDraft {
        customer_id: None,
        lines: vec![DraftLine {
            product_id: product,
            quantity: Quantity::new(1).unwrap(),
        }],
    };
    let reserve = |order: &str| {
        let (draft, order) = (draft.clone(), OrderId::parse(order).unwrap());
        write_at(&db, 2, move |tx| {
            reservations::reserve(tx, &order, &draft, Timestamp(60_000)).map(drop)
        })
    };
    let lemons_left = || {
        let id = lemons.clone();
        db.readers.read(move |c| stock::on_hand(c, &id))
    };
    let conflict = |r: Result<(), ShopError>| matches!(r, Err(ShopError::Conflict { .. }));

    reserve("order-1").await.unwrap();
    assert!(conflict(reserve("order-1").await), "a second reserve is refused");
    assert_eq!(lemons_left().await.unwrap(), Some(8));
    for _ in 0..2 {
        let order = OrderId::parse("order-1").unwrap();
        write_at(&db, 3, move |tx| reservations::commit(tx, &order))
            .await
            .unwrap();
    }
    assert_eq!(lemons_left().await.unwrap(), Some(8));

    let order = OrderId::parse("order-2").unwrap();
    write_at(&db, 3, move |tx| reservations::release(tx, &order))
        .await
        .unwrap();
    assert!(
        conflict(reserve("order-2").await),
        "a reserve after its release is refused"
    );
    assert_eq!(lemons_left().await.unwrap(), Some(8));
}

#[test]
fn a_version_1_database_on_postgres_gets_name_keys_and_its_duplicate_names_are_renamed() {
    let fresh = Fresh::new();
    let url = fresh.url(Role::Stock);
    lemonade_store::postgres::ensure_database(&url).unwrap();
    let conn = PgConn::connect(&url).unwrap();
    migrate_postgres_to(&conn, Role::Stock, 1).unwrap();
    admin(
        &url,
        "INSERT INTO ingredients (id, name, unit, on_hand, reorder_level, created_at) VALUES
             ('i1', 'Caf\u{e9} T', 'g', 0, 0, 1), ('i2', 'Cafe\u{301} T', 'g', 0, 0, 2), ('i3', 'caf\u{e9}\u{a0}t', 'g', 0, 0, 3),
             ('i4', 'Grandma''s zest', 'g', 0, 0, 4), ('i5', 'Grandma\u{2019}s\u{2800}zest', 'g', 0, 0, 5)",
    );
    assert_eq!(migrate_postgres(&conn, Role::Stock).unwrap(), 1);
    let db: &dyn Db = &conn;
    let names: Vec<String> = db
        .prepare_cached("SELECT name FROM ingredients ORDER BY id")
        .unwrap()
        .query_map(lemonade_store::params![], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        names,
        [
            "Caf\u{e9} T",
            "Caf\u{e9} T (2)",
            "caf\u{e9} t (3)",
            "Grandma's zest",
            "Grandma\u{2019}s zest (2)"
        ]
    );
    let same = db.execute(
        "INSERT INTO ingredients (id, name, name_key, unit, on_hand, reorder_level, created_at)
         VALUES ('i9', 'CAF\u{c9} T', 'caf\u{e9} t', 'g', 0, 0, 1)",
        lemonade_store::params![],
    );
    assert!(same.is_err(), "the key is unique in the database");
    crm_migrates(&fresh);
}

/// CRM's version 1 database gets the customers' search text.
fn crm_migrates(fresh: &Fresh) {
    let url = fresh.url(Role::Crm);
    lemonade_store::postgres::ensure_database(&url).unwrap();
    let conn = PgConn::connect(&url).unwrap();
    migrate_postgres_to(&conn, Role::Crm, 1).unwrap();
    admin(
        &url,
        "INSERT INTO customers (id, name, email, phone, points, created_at, updated_at)
         VALUES ('c1', 'Zo\u{eb}\u{a0}M\u{fc}ller', 'Zoe@Example.ORG', '+44 7700 900123', 0, 1, 1),
                ('c2', 'S\u{f8}ren \u{c6}r\u{f8}', '\u{ff33}\u{ff2f}\u{ff32}\u{ff25}\u{ff2e}\u{ff20}example.org', NULL, 0, 2, 2)",
    );
    assert_eq!(migrate_postgres(&conn, Role::Crm).unwrap(), 1);
    let db: &dyn Db = &conn;
    let texts: Vec<String> = db
        .prepare_cached("SELECT email || '|' || search_text FROM customers ORDER BY id")
        .unwrap()
        .query_map(lemonade_store::params![], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        texts,
        [
            "Zoe@example.org|zoe muller\nzoe@example.org\n447700900123",
            "SOREN@example.org|soren aero\nsoren@example.org\n"
        ]
    );
}

/// Runs `work` in one write transaction of a service's writer on PostgreSQL.
async fn write<T: Send + 'static>(
    db: &Database,
    work: impl FnOnce(&dyn Db) -> Result<T, lemonade_domain::ShopError> + Send + 'static,
) -> T {
    db.writer.execute(work).await.unwrap()
}

/// Event retention on PostgreSQL: a delivery is marked in one statement, delivered events
/// expire (never the newest), and a receiver forgets an applied event only below its sender's
/// mark and past retention, while one that may still come again stays a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_retention_on_postgres_forgets_only_what_cannot_come_again() {
    use lemonade_domain::ids::OrderId;
    use lemonade_domain::saga::{Destination, Envelope, Event};
    use lemonade_store::sql::events;

    let fresh = Fresh::new();
    let orders = open(&fresh.url(Role::Orders), Role::Orders).await.unwrap();
    let stock = open(&fresh.url(Role::Stock), Role::Stock).await.unwrap();
    let event = |i: usize| Event::ReturnStock {
        order_id: OrderId::parse(&format!("o{i}")).unwrap(),
    };
    let pushed: Vec<Envelope> = write_at(&orders, 10, move |tx| {
        (0..4).map(|i| events::push(tx, event(i))).collect()
    })
    .await
    .unwrap();
    let batch = write(&orders, |c| events::undelivered(c, Destination::Stock, 2)).await;
    assert_eq!(batch, pushed[..2]);
    let marked = batch.clone();
    let n = write_at(&orders, 20, move |tx| {
        events::mark_delivered(tx, Destination::Stock, &marked)
    })
    .await
    .unwrap();
    assert_eq!(n, 2);
    let rest = write(&orders, |c| events::undelivered(c, Destination::Stock, 10)).await;
    assert_eq!(rest, pushed[2..]);
    assert_eq!(
        write(&orders, |c| events::expire_delivered(c, Timestamp(1_000), 100)).await,
        2
    );

    // The receiver applied all four; the relay's next delivery says the first two are behind it.
    let applied = pushed.clone();
    write_at(&stock, 30, move |tx| {
        for e in &applied {
            assert!(events::first_delivery(tx, events::ORDERS_OUTBOX, e)?);
        }
        let later = Tx {
            now: Timestamp(40),
            ..*tx
        };
        events::note_delivered_below(&later, events::ORDERS_OUTBOX, rest[0].seq.unwrap())
    })
    .await
    .unwrap();
    assert_eq!(
        write(&stock, |c| events::forget_applied(c, Timestamp(30), 100)).await,
        0,
        "too recent"
    );
    assert_eq!(
        write(&stock, |c| events::forget_applied(c, Timestamp(1_000), 100)).await,
        2
    );
    let again = pushed.clone();
    let fresh_deliveries = write_at(&stock, 2_000, move |tx| {
        again
            .iter()
            .map(|e| events::first_delivery(tx, events::ORDERS_OUTBOX, e))
            .collect::<Result<Vec<bool>, _>>()
    })
    .await
    .unwrap();
    assert_eq!(
        fresh_deliveries[2..],
        [false, false],
        "what the relay may still send is still recognised"
    );
}

/// A version-1 database on PostgreSQL migrates to version 2 and keeps its rows.
#[test]
fn a_version_1_database_on_postgres_migrates_and_keeps_its_rows() {
    use lemonade_store::migrations::{SCHEMA_VERSION, migrate_postgres_to};
    let fresh = Fresh::new();
    for role in SERVICES {
        let url = fresh.url(role);
        lemonade_store::postgres::ensure_database(&url).unwrap();
        let conn = PgConn::connect(&url).unwrap();
        assert_eq!(migrate_postgres_to(&conn, role, 1).unwrap(), 0);
        if matches!(role, Role::Stock | Role::Crm) {
            admin(&url, "INSERT INTO inbox (event_id, applied_at) VALUES ('e1', 1)");
        }
        if role == Role::Crm {
            admin(
                &url,
                r#"INSERT INTO step_results VALUES ('req:1', 'f', '{"Ok":{"id":"c1","name":"Ann Example","email":"ann@example.com","phone":null,"points":0,"anonymised":false,"created_at":"2026-01-01T00:00:00Z"}}', 1)"#,
            );
        }
        assert_eq!(migrate_postgres(&conn, role).unwrap(), 1);
        assert_eq!(migrate_postgres(&conn, role).unwrap(), SCHEMA_VERSION);
        if matches!(role, Role::Stock | Role::Crm) {
            let db: &dyn Db = &conn;
            let seq: Option<i64> = db
                .query_row(
                    "SELECT seq FROM inbox WHERE event_id = 'e1'",
                    lemonade_store::params![],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(seq, None);
        }
        if role == Role::Crm {
            let db: &dyn Db = &conn;
            let result: String = db
                .query_row("SELECT result FROM step_results", lemonade_store::params![], |r| {
                    r.get(0)
                })
                .unwrap();
            let result: serde_json::Value = serde_json::from_str(&result).unwrap();
            assert_eq!(
                result,
                serde_json::json!({"Ok": {"id": "c1"}}),
                "a reference, not the person"
            );
        }
    }
}

/// The schema of the PostgreSQL database at `url` as the server describes it: every column
/// (type, nullability, default, collation, identity), constraint, index, trigger and
/// function of the `public` schema, one per line, sorted.
fn postgres_schema(url: &str) -> String {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut out = String::new();
        for (what, sql) in [
            (
                "columns",
                "SELECT table_name || '.' || column_name || ' #' || ordinal_position || ' ' || data_type
                     || ' nullable=' || is_nullable || ' default=' || COALESCE(column_default, '-')
                     || ' collation=' || COALESCE(collation_name, '-') || ' identity=' || is_identity
                     || COALESCE(' ' || identity_generation, '')
                 FROM information_schema.columns WHERE table_schema = 'public'
                 ORDER BY table_name, ordinal_position",
            ),
            (
                "constraints",
                "SELECT conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid)
                 FROM pg_constraint WHERE connamespace = 'public'::regnamespace
                 ORDER BY conrelid::regclass::text, conname",
            ),
            (
                "indexes",
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname",
            ),
            (
                "triggers",
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
                 ORDER BY tgrelid::regclass::text, tgname",
            ),
            (
                "functions",
                "SELECT pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
                 ORDER BY proname",
            ),
        ] {
            out.push_str(&format!("-- {what}\n"));
            for row in client.query(sql, &[]).unwrap() {
                out.push_str(&row.get::<_, String>(0));
                out.push('\n');
            }
        }
        out
    })
    .join()
    .unwrap()
}

/// Shipped schema versions never change on PostgreSQL either: the schema a fresh database
/// gets at each version, for each service (the monolith is SQLite only), is compared with a committed snapshot
/// (`tests/schema/v<N>.postgres.txt`), taken for version 1 from the generator that made it
/// before it was frozen into `migrations/v1/`. A new version gets its snapshot with
/// `UPDATE_SCHEMA_SNAPSHOT=1`; an old one is never rewritten.
#[test]
fn each_shipped_postgres_schema_version_is_what_it_was_when_it_shipped() {
    use lemonade_store::migrations::{SCHEMA_VERSION, migrate_postgres_to};
    for version in 1..=SCHEMA_VERSION {
        let fresh = Fresh::new();
        let mut all = String::new();
        for role in SERVICES {
            let url = fresh.url(role);
            lemonade_store::postgres::ensure_database(&url).unwrap();
            let conn = PgConn::connect(&url).unwrap();
            migrate_postgres_to(&conn, role, version).unwrap();
            drop(conn);
            all.push_str(&format!("== {}\n{}", role.as_str(), postgres_schema(&url)));
        }
        snapshot::compare(&format!("v{version}.postgres.txt"), &all);
    }
}
