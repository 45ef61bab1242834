//! `lemonade check` finds what is wrong: a shop built through the real binary passes the audit,
//! and each corruption of its database file (one per copy) fails it, naming the broken rule and
//! no other. Plus the exit code for a folder that cannot be audited, and the ledger's triggers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

mod binary;
use binary::{BIN, Server};
async fn send(request: reqwest::RequestBuilder, expect: u16) -> Value {
    let r = request.send().await.expect("the server answers");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, expect, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON: {e}: {text}"))
}

/// A shop built through the API and stopped with SIGTERM.
struct Shop {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    /// Confirmed, without a customer.
    plain_order: String,
    /// Confirmed, with the customer (3 points).
    customer_order: String,
}

impl Shop {
    fn db(&self) -> PathBuf {
        self.data.join("lemonade.db")
    }
}

/// Demo shop; orders: confirmed without customer, confirmed with customer, cancelled with
/// customer, confirmed without key, and one refused for stock (its key records the refusal).
fn build_shop() -> Shop {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(build_shop_async())
}

async fn build_shop_async() -> Shop {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let data = tmp.path().join("shop");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");
    let mut server = Server::start(&data, tmp.path(), "check").await;
    let base = server.base.clone();

    let products = send(http.get(format!("{base}/products")), 200).await;
    let lemonade = products["items"]
        .as_array()
        .expect("products")
        .iter()
        .find(|p| p["name"] == "Lemonade")
        .expect("the demo shop sells Lemonade")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let customer = send(
        http.post(format!("{base}/customers"))
            .json(&json!({ "name": "Audit Subject" })),
        201,
    )
    .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let place = |customer: Option<&str>, quantity: i64, key: Option<&str>, expect: u16| {
        let mut request = http.post(format!("{base}/orders")).json(&json!({
            "customer_id": customer,
            "lines": [{ "product_id": lemonade, "quantity": quantity }],
        }));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        send(request, expect)
    };
    let plain_order = place(None, 1, Some("audit-1"), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer_order = place(Some(&customer), 1, Some("audit-2"), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        send(http.get(format!("{base}/orders/{customer_order}")), 200).await["points"],
        3
    );
    let to_cancel = place(Some(&customer), 2, Some("audit-3"), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    place(None, 2, None, 201).await;
    // More lemons than the shop has: refused, and the refusal is what the key remembers.
    place(None, 500, Some("audit-4"), 409).await;
    let cancelled = send(http.post(format!("{base}/orders/{to_cancel}/cancel")), 200).await;
    assert_eq!(cancelled["status"], "cancelled");

    // The audit reads beside a running shop.
    let (code, stdout, _) = check(&data, false);
    assert_eq!(code, Some(0), "check beside the running shop:\n{stdout}");

    let stopped = server.terminate().await;
    assert!(stopped.success(), "the server stopped with {stopped}");
    Shop {
        _tmp: tmp,
        data,
        plain_order,
        customer_order,
    }
}

/// Runs `lemonade check --data <data> [--json]`: (exit code, stdout, stderr).
fn check(data: &Path, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--data"]).arg(data).env_remove("LEMONADE_DATA");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run lemonade check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The rules `check --json` says are broken.
fn broken_rules(data: &Path) -> BTreeSet<String> {
    let (code, stdout, stderr) = check(data, true);
    assert_eq!(code, Some(1), "check --json: stdout:\n{stdout}\nstderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json prints JSON");
    report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| v["rule"].as_str().expect("a rule").to_owned())
        .collect()
}

/// Corrupts the shop's database with `sql`, then asserts that `check` exits 1, names every
/// rule of `rules` in its text report, and that `--json` lists exactly those rules.
fn assert_found(shop: &Shop, sql: &str, rules: &[&str]) {
    let conn = rusqlite::Connection::open(shop.db()).expect("open the database");
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("corrupting with {sql}: {e}"));
    drop(conn);

    let (code, stdout, stderr) = check(&shop.data, false);
    assert_eq!(code, Some(1), "check after {sql}: stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    for rule in rules {
        assert!(
            stdout.contains(rule),
            "check after {sql} does not name {rule}:\n{stdout}"
        );
    }
    let expected: BTreeSet<String> = rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(broken_rules(&shop.data), expected, "check --json after {sql}");
}

/// The names of the files in `folder`, sorted.
fn files_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("read the folder")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_healthy_shop_passes_the_audit() {
    let shop = build_shop();
    let before = files_in(&shop.data);
    // A cleanly stopped shop is its database file (and the empty file its writer locks).
    assert_eq!(
        before,
        ["lemonade.db", "lemonade.db.lock"],
        "a clean stop left its WAL behind"
    );
    let (code, stdout, stderr) = check(&shop.data, false);
    // Reading a stopped shop's WAL database leaves no -wal or -shm file behind.
    assert_eq!(files_in(&shop.data), before, "the audit left files behind");
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(stdout.contains("4 orders, 1 customers, 4 idempotency keys"), "{stdout}");

    let (code, stdout, _) = check(&shop.data, true);
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["violations"], json!([]));
    assert_eq!(report["orders"], 4);
    assert_eq!(report["ingredients"], 6);
}

#[test]
fn on_hand_changed_outside_the_ledger_is_found() {
    let shop = build_shop();
    assert_found(
        &shop,
        "UPDATE ingredients SET on_hand = on_hand + 5",
        &["on-hand-equals-ledger"],
    );
}

#[test]
fn points_no_order_earned_are_found() {
    let shop = build_shop();
    assert_found(
        &shop,
        "UPDATE customers SET points = points + 1",
        &["points-equal-orders", "points-equal-activity"],
    );
}

#[test]
fn a_deleted_sale_move_is_found() {
    let shop = build_shop();
    let sql = format!(
        "DROP TRIGGER stock_moves_no_delete;
         DELETE FROM stock_moves WHERE seq = (
             SELECT seq FROM stock_moves WHERE order_id = '{}' AND reason = 'sale' ORDER BY seq LIMIT 1)",
        shop.customer_order
    );
    // The ingredient's on-hand no longer equals its ledger either.
    assert_found(
        &shop,
        &sql,
        &["confirmed-order-took-its-recipe", "on-hand-equals-ledger"],
    );
}

#[test]
fn an_order_total_that_is_not_its_lines_is_found() {
    let shop = build_shop();
    assert_found(
        &shop,
        "UPDATE orders SET total = total + 1",
        &["order-total-equals-lines"],
    );
}

#[test]
fn an_idempotency_record_without_its_order_is_found() {
    let shop = build_shop();
    assert_found(
        &shop,
        "PRAGMA foreign_keys = OFF; UPDATE idempotency_keys SET order_id = 'nope' WHERE order_id IS NOT NULL",
        &["idempotency-record-is-real", "foreign-keys"],
    );
}

#[test]
fn a_cancelled_order_that_kept_its_stock_is_found() {
    let shop = build_shop();
    let sql = format!(
        "UPDATE orders SET status = 'cancelled' WHERE id = '{}'",
        shop.plain_order
    );
    assert_found(&shop, &sql, &["cancelled-order-returned-its-stock"]);
}

#[test]
fn a_cancelled_order_that_kept_its_points_is_found() {
    let shop = build_shop();
    // Its stock returned by hand (the ledger is append-only, inserts are allowed), but not
    // its points.
    let sql = format!(
        "INSERT INTO stock_moves (ingredient_id, delta, reason, order_id, created_at)
             SELECT ingredient_id, -delta, 'cancel', order_id, created_at
             FROM stock_moves WHERE order_id = '{id}' AND reason = 'sale';
         UPDATE orders SET status = 'cancelled' WHERE id = '{id}'",
        id = shop.customer_order
    );
    assert_found(&shop, &sql, &["cancelled-order-has-no-points"]);
}

#[test]
fn a_folder_that_cannot_be_audited_exits_2() {
    let tmp = tempfile::tempdir().expect("a temporary folder");

    let missing = tmp.path().join("no-such-folder");
    let (code, _, stderr) = check(&missing, false);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot audit"), "{stderr}");
    assert!(!missing.exists(), "check must not create the folder");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = check(&empty, false);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!empty.join("lemonade.db").exists(), "check must not create a database");

    let garbage = tmp.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("lemonade.db"), vec![0x5a; 8192]).unwrap();
    let (code, _, stderr) = check(&garbage, false);
    assert_eq!(code, Some(2), "{stderr}");

    // Two shops in one folder (as an older `serve` could make): neither is audited alone.
    let two = tmp.path().join("two");
    std::fs::create_dir(&two).unwrap();
    for file in ["lemonade.db", "stock.db", "crm.db"] {
        std::fs::write(two.join(file), vec![0x5a; 8192]).unwrap();
    }
    let (code, _, stderr) = check(&two, false);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("two shops") && stderr.contains("lemonade.db") && stderr.contains("stock.db, crm.db"),
        "{stderr}"
    );
}

/// A running shop writes its WAL beside the path it opened its database by: `check` on a hard
/// link (or a symlink) to that file in another folder would read an old state (before, it
/// said "ok" of a shop without the customer just made) and leave a WAL and shared memory
/// there. It is refused instead, exit 2, naming the shop and the path it opened the database
/// by, and the folder holds only the link afterwards; `check` of the shop's own folder
/// meanwhile audits what the shop has written.
#[tokio::test]
async fn check_through_another_path_to_a_running_shop_s_database_is_refused_naming_the_shop() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let data = tmp.path().join("shop");
    let mut server = Server::start(&data, tmp.path(), "linked").await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");
    send(
        http.post(format!("{}/customers", server.base))
            .json(&json!({ "name": "Only Here" })),
        201,
    )
    .await;
    let database = data.join("lemonade.db");
    let hard = tmp.path().join("hard");
    std::fs::create_dir(&hard).unwrap();
    std::fs::hard_link(&database, hard.join("lemonade.db")).unwrap();
    let soft = tmp.path().join("soft");
    std::fs::create_dir(&soft).unwrap();
    std::os::unix::fs::symlink(&database, soft.join("lemonade.db")).unwrap();

    for other in [&hard, &soft] {
        for json in [false, true] {
            let (code, stdout, stderr) = check(other, json);
            assert_eq!(
                code,
                Some(2),
                "{}: stdout:\n{stdout}\nstderr:\n{stderr}",
                other.display()
            );
            for named in [
                "cannot audit",
                "lemonade.db is in use by lemonade serve",
                &format!("pid {}", server.pid()),
                &format!("through {}", database.canonicalize().unwrap().display()),
            ] {
                assert!(stderr.contains(named), "{}: no {named:?} in\n{stderr}", other.display());
            }
            assert_eq!(files_in(other), ["lemonade.db"], "{} left as it was", other.display());
        }
    }

    let (code, stdout, stderr) = check(&data, false);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("0 orders, 1 customers"), "{stdout}");
    assert!(server.terminate().await.success());
}

/// A folder whose database is missing, empty, not SQLite or another service's is refused
/// with exit 2 and a message naming the file and what is wrong with it; the audit creates
/// no file (before, it said only "file is not a database" or "schema version 0", and did
/// not tell a cluster's folder missing a database from an empty one).
#[test]
fn a_missing_empty_or_foreign_database_is_refused_naming_it_and_nothing_is_created() {
    use lemonade_store::migrations::{Role, migrate_role};
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let database_of = |role: Role, path: &Path| {
        let mut conn = rusqlite::Connection::open(path).expect("create a database");
        migrate_role(&mut conn, role).expect("migrate it");
    };
    /// A folder's name, how to fill it, and what the error must say.
    type Case<'a> = (&'a str, Box<dyn Fn(&Path)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "empty-folder",
            Box::new(|_: &Path| {}),
            &["holds no shop", "lemonade.db", "coordinator.db"],
        ),
        (
            "empty-file",
            Box::new(|d: &Path| std::fs::write(d.join("lemonade.db"), b"").unwrap()),
            &["lemonade.db is empty"],
        ),
        (
            "not-sqlite",
            Box::new(|d: &Path| std::fs::write(d.join("lemonade.db"), vec![0x5a; 8192]).unwrap()),
            &["lemonade.db: file is not a database"],
        ),
        (
            "another-service",
            Box::new(move |d: &Path| database_of(Role::Stock, &d.join("lemonade.db"))),
            &["lemonade.db: this database belongs to stock, not to monolith"],
        ),
        (
            "no-schema",
            Box::new(|d: &Path| {
                rusqlite::Connection::open(d.join("lemonade.db"))
                    .unwrap()
                    .execute_batch("CREATE TABLE notes (text TEXT)")
                    .unwrap()
            }),
            &["lemonade.db holds no shop"],
        ),
        (
            "cluster-without-crm",
            Box::new(move |d: &Path| {
                for (role, file) in [
                    (Role::Coordinator, "coordinator.db"),
                    (Role::Stock, "stock.db"),
                    (Role::Orders, "orders.db"),
                ] {
                    database_of(role, &d.join(file));
                }
            }),
            &["no database at", "crm.db"],
        ),
        (
            "cluster-with-a-swapped-file",
            Box::new(move |d: &Path| {
                for (role, file) in [
                    (Role::Coordinator, "coordinator.db"),
                    (Role::Stock, "stock.db"),
                    (Role::Stock, "orders.db"),
                    (Role::Crm, "crm.db"),
                ] {
                    database_of(role, &d.join(file));
                }
            }),
            &["orders.db: this database belongs to stock, not to orders"],
        ),
    ];
    for (name, make, expected) in cases {
        let data = tmp.path().join(name);
        std::fs::create_dir(&data).unwrap();
        make(&data);
        let before = files_in(&data);
        let (code, stdout, stderr) = check(&data, false);
        assert_eq!(code, Some(2), "{name}: stdout:\n{stdout}\nstderr:\n{stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{name}: no {text:?} in\n{stderr}");
        }
        assert!(!stderr.contains("applied schema migration"), "{name}: {stderr}");
        assert_eq!(files_in(&data), before, "{name}: the audit created files");
    }
}

/// `check --postgres` on a database that does not exist says so in the server's words, and
/// creates and migrates nothing (before: "db error", after log lines of migrations); a
/// server that is not there is named as refusing the connection.
#[test]
fn check_on_postgres_names_what_is_missing_and_creates_nothing() {
    let base = lemonade_store::postgres::test_base("k");
    let out = Command::new(BIN)
        .args(["check", "--postgres", &base])
        .env_remove("LEMONADE_POSTGRES")
        .env("LEMONADE_LOG", "info")
        .output()
        .expect("run lemonade check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("migration"), "{stderr}");
    for role in [
        lemonade_store::migrations::Role::Coordinator,
        lemonade_store::migrations::Role::Stock,
        lemonade_store::migrations::Role::Orders,
        lemonade_store::migrations::Role::Crm,
    ] {
        let url = lemonade_store::postgres::role_url(&base, role).unwrap();
        let e = lemonade_store::postgres::schema_of(&url, role).expect_err("the check created a database");
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    let closed = format!("postgres://postgres@127.0.0.1:{}/shop", binary::free_port());
    let out = Command::new(BIN)
        .args(["check", "--postgres", &closed])
        .env_remove("LEMONADE_POSTGRES")
        .output()
        .expect("run lemonade check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

#[test]
fn a_database_of_another_schema_version_is_not_audited() {
    let shop = build_shop();
    let conn = rusqlite::Connection::open(shop.db()).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let (code, _, stderr) = check(&shop.data, false);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("schema version 99"), "{stderr}");
}

#[test]
fn the_ledger_refuses_update_and_delete() {
    let shop = build_shop();
    let conn = rusqlite::Connection::open(shop.db()).unwrap();
    let moves: i64 = conn
        .query_row("SELECT COUNT(*) FROM stock_moves", [], |r| r.get(0))
        .unwrap();
    assert!(moves > 0);
    for sql in [
        "DELETE FROM stock_moves",
        "UPDATE stock_moves SET delta = delta + 1",
        "UPDATE stock_moves SET note = 'edited'",
    ] {
        let e = conn.execute(sql, []).expect_err(sql);
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let after: i64 = conn
        .query_row("SELECT COUNT(*) FROM stock_moves", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, moves);
    drop(conn);
    let (code, stdout, _) = check(&shop.data, false);
    assert_eq!(code, Some(0), "{stdout}");
}
