//! The audit's rules on real databases, written by the same SQL functions the writers run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use lemonade_domain::ShopError;
use lemonade_domain::catalog::NewProduct;
use lemonade_domain::customer::CustomerFields;
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{OrderDraft, RawOrderLine};
use lemonade_domain::ports::{IdSource, IdempotencyKey};
use lemonade_domain::stock::{MoveReason, NewIngredient, RecipeItem};
use lemonade_domain::values::{Money, Quantity, Timestamp, Unit};

use super::*;
use crate::sql::idempotency::{self, Outcome};
use crate::sql::{catalog, crm, orders, stock};
use crate::tx::Tx;

const NOW: Timestamp = Timestamp(1_700_000_000_000);

/// Ids from a counter: deterministic, and sorting by creation like UUIDv7.
#[derive(Default)]
struct Counter(AtomicU64);

impl IdSource for Counter {
    fn next_id(&self) -> String {
        format!("id-{:08}", self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// A small shop written by the same SQL functions the writer runs: lemons and sugar, a
/// lemonade (350, one lemon and 30 g of sugar), one customer.
struct Shop {
    _dir: tempfile::TempDir,
    path: PathBuf,
    conn: Connection,
    ids: Counter,
    lemons: IngredientId,
    lemonade: ProductId,
    customer: CustomerId,
}

impl Shop {
    fn new() -> Shop {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lemonade.db");
        let mut conn = crate::db::open_connection(&path).unwrap();
        crate::migrations::migrate(&mut conn).unwrap();
        let ids = Counter::default();
        let ingredient = |name: &str, unit, on_hand| {
            let id = IngredientId::parse(&ids.next_id()).unwrap();
            let new = NewIngredient {
                name: name.into(),
                unit,
                on_hand,
                reorder_level: 0,
            };
            stock::create(&Tx::new(&conn, &Default::default(), &ids, NOW), id, &new)
                .unwrap()
                .id
        };
        let lemons = ingredient("Lemons", Unit::Piece, 10);
        let sugar = ingredient("Sugar", Unit::G, 1_000);
        let lemonade = ProductId::parse(&ids.next_id()).unwrap();
        let product = NewProduct {
            name: "Lemonade".into(),
            price: Money::new(350).unwrap(),
            recipe: vec![
                RecipeItem {
                    ingredient_id: lemons.clone(),
                    quantity: Quantity::new(1).unwrap(),
                },
                RecipeItem {
                    ingredient_id: sugar,
                    quantity: Quantity::new(30).unwrap(),
                },
            ],
            active: true,
        };
        catalog::create(
            &Tx::new(&conn, &Default::default(), &ids, NOW),
            lemonade.clone(),
            &product,
        )
        .unwrap();
        let customer = CustomerId::parse(&ids.next_id()).unwrap();
        let fields =
            lemonade_domain::error::FieldErrors::collect(|e| CustomerFields::parse(e, Some("Ada"), None, None, true))
                .unwrap();
        crm::create(
            &Tx::new(&conn, &Default::default(), &ids, NOW),
            customer.clone(),
            &fields,
        )
        .unwrap();
        Shop {
            _dir: dir,
            path,
            conn,
            ids,
            lemons,
            lemonade,
            customer,
        }
    }

    fn place(&self, with_customer: bool, quantity: i64) -> OrderId {
        let lines = [RawOrderLine::new(&self.lemonade.to_string(), quantity)];
        let draft = OrderDraft::from_lines(with_customer.then(|| self.customer.as_str()), &lines).unwrap();
        orders::place(&self.tx(&Default::default()), &draft, 100).unwrap().id
    }

    fn cancel(&self, order: &OrderId) {
        orders::cancel(&self.tx(&Default::default()), order).unwrap();
    }

    fn apply(&self, delta: i64, reason: MoveReason, order: Option<&OrderId>) {
        stock::apply_move(&self.tx(&Default::default()), &self.lemons, delta, reason, order, None).unwrap();
    }

    /// A writer job's context at `NOW`, with `cache` (each call had a cache of its own).
    fn tx<'a>(&'a self, cache: &'a crate::sql::cache::WriterCache) -> Tx<'a> {
        Tx::new(&self.conn, cache, &self.ids, NOW)
    }

    fn sql(&self, sql: &str) {
        self.conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn report(&self) -> AuditReport {
        self.conn.execute_batch("BEGIN").unwrap();
        let report = audit(&self.conn).unwrap();
        self.conn.execute_batch("COMMIT").unwrap();
        report
    }

    /// The rules the audit finds broken.
    fn broken(&self) -> BTreeSet<&'static str> {
        self.report().violations.iter().map(|v| v.rule).collect()
    }
}

fn rules(names: &[&'static str]) -> BTreeSet<&'static str> {
    names.iter().copied().collect()
}

#[test]
fn a_shop_run_by_the_writers_functions_is_clean() {
    let shop = Shop::new();
    shop.place(false, 1);
    let kept = shop.place(true, 2);
    let cancelled = shop.place(true, 1);
    shop.cancel(&cancelled);
    shop.apply(5, MoveReason::Restock, None);
    shop.apply(-3, MoveReason::Waste, None);
    let key = IdempotencyKey::parse("k1", "f".into()).unwrap();
    let order = orders::require(&shop.conn, &kept).unwrap();
    idempotency::store(&shop.tx(&Default::default()), &key, &Outcome::Placed(order)).unwrap();
    let refused = IdempotencyKey::parse("k2", "f".into()).unwrap();
    let rejection = Outcome::Rejected(ShopError::conflict("no"));
    idempotency::store(&shop.tx(&Default::default()), &refused, &rejection).unwrap();

    let report = shop.report();
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(
        (
            report.ingredients,
            report.orders,
            report.customers,
            report.idempotency_keys
        ),
        (2, 3, 1, 2)
    );
    assert!(report.to_text().contains("ok: every invariant holds"));
}

/// The running balance follows the order moves were written in: the ledger's `seq`,
/// assigned by the single writer, which is also the move id clients see, so no clock or
/// id source can reorder it.
#[test]
fn the_ledger_is_replayed_in_the_order_it_was_written() {
    let shop = Shop::new();
    // All 10 lemons go, then a restock, then a waste of what the restock brought.
    shop.place(false, 10);
    let restock = stock::apply_move(
        &shop.tx(&Default::default()),
        &shop.lemons,
        5,
        MoveReason::Restock,
        None,
        None,
    )
    .unwrap();
    let waste = stock::apply_move(
        &shop.tx(&Default::default()),
        &shop.lemons,
        -5,
        MoveReason::Waste,
        None,
        None,
    )
    .unwrap();
    assert!(
        restock.id < waste.id,
        "move ids sort in the order the moves were written"
    );
    let report = shop.report();
    assert!(report.is_clean(), "{}", report.to_text());
}

#[test]
fn a_ledger_that_went_below_zero_is_found() {
    let shop = Shop::new();
    // Written straight into the ledger, bypassing on-hand: 10 lemons, -15, +15. The sum
    // still equals on-hand; only the running balance shows the hole.
    let lemons = shop.lemons.as_str();
    // (The trigger that keeps on-hand would refuse the first move: drop it, as a database
    // corrupted by hand or by an older binary might have been.)
    shop.sql(&format!(
        "DROP TRIGGER stock_moves_apply;
         INSERT INTO stock_moves (ingredient_id, delta, reason, created_at)
             VALUES ('{lemons}', -15, 'waste', 0);
         INSERT INTO stock_moves (ingredient_id, delta, reason, created_at)
             VALUES ('{lemons}', 15, 'restock', 0);"
    ));
    assert_eq!(shop.broken(), rules(&["ledger-never-negative"]));
}

#[test]
fn negative_on_hand_is_found() {
    let shop = Shop::new();
    shop.sql("PRAGMA ignore_check_constraints = ON; UPDATE ingredients SET on_hand = -1");
    assert_eq!(
        shop.broken(),
        rules(&["on-hand-never-negative", "on-hand-equals-ledger"])
    );
}

#[test]
fn an_order_without_lines_is_found() {
    let shop = Shop::new();
    let order = shop.place(false, 1);
    shop.sql(&format!("DELETE FROM order_lines WHERE order_id = '{order}'"));
    assert_eq!(
        shop.broken(),
        rules(&[
            "order-has-lines",
            "order-total-equals-lines",
            "confirmed-order-took-its-recipe"
        ])
    );
}

#[test]
fn an_unreadable_recipe_snapshot_is_found() {
    let shop = Shop::new();
    shop.place(false, 1);
    shop.sql("UPDATE recipe_versions SET recipe = 'not json'");
    assert_eq!(
        shop.broken(),
        rules(&["order-line-recipe-readable", "confirmed-order-took-its-recipe"])
    );
}

#[test]
fn a_sale_move_of_the_wrong_size_is_found() {
    let shop = Shop::new();
    let order = shop.place(false, 2);
    // One more lemon taken for the order than its recipe says, on-hand kept in step.
    shop.apply(-1, MoveReason::Sale, Some(&order));
    assert_eq!(shop.broken(), rules(&["confirmed-order-took-its-recipe"]));
}

#[test]
fn stock_returned_for_a_confirmed_order_is_found() {
    let shop = Shop::new();
    let order = shop.place(false, 1);
    shop.apply(1, MoveReason::Cancel, Some(&order));
    assert_eq!(shop.broken(), rules(&["confirmed-order-not-returned"]));
}

#[test]
fn a_cancelled_order_returning_the_wrong_amount_is_found() {
    let shop = Shop::new();
    let order = shop.place(false, 2);
    shop.cancel(&order);
    shop.apply(1, MoveReason::Cancel, Some(&order));
    assert_eq!(shop.broken(), rules(&["cancelled-order-returned-its-stock"]));
}

#[test]
fn a_recipe_version_of_no_product_is_found() {
    let shop = Shop::new();
    shop.place(false, 1);
    shop.sql("UPDATE recipe_versions SET product_id = 'ghost'");
    let report = shop.report();
    let subjects: Vec<_> = report
        .violations
        .iter()
        .map(|v| (v.rule, v.subject.split(' ').next().unwrap()))
        .collect();
    assert_eq!(
        subjects,
        [
            ("recipe-version-is-the-products", "recipe"),
            ("recipe-version-is-the-products", "order")
        ],
        "{}",
        report.to_text()
    );
}

#[test]
fn a_cancelled_order_that_never_took_stock_is_found() {
    let shop = Shop::new();
    let order = shop.place(false, 1);
    shop.cancel(&order);
    // The recipe it was sold with now says two lemons; the sale and its return say one.
    shop.sql(&format!(
        "INSERT INTO recipe_versions (product_id, recipe, created_at)
             SELECT product_id, json_array(json_array('{}', 2)), 0 FROM order_lines WHERE order_id = '{order}';
         UPDATE order_lines SET recipe_version = last_insert_rowid() WHERE order_id = '{order}'",
        shop.lemons
    ));
    assert_eq!(shop.broken(), rules(&["cancelled-order-took-its-recipe"]));
}

#[test]
fn unfinished_orders_hold_no_stock() {
    let shop = Shop::new();
    let holding = shop.place(false, 1);
    let given_back = shop.place(false, 1);
    shop.cancel(&given_back);
    shop.sql(&format!(
        "UPDATE orders SET status = 'failed' WHERE id = '{given_back}';
         UPDATE orders SET status = 'pending' WHERE id = '{holding}';"
    ));
    let report = shop.report();
    assert_eq!(
        report
            .violations
            .iter()
            .map(|v| (v.rule, v.subject.clone()))
            .collect::<Vec<_>>(),
        vec![("unfinished-order-holds-no-stock", format!("pending order {holding}"))],
    );
}

#[test]
fn points_are_checked_against_orders_and_the_activity_log() {
    let shop = Shop::new();
    let with = shop.place(true, 1);
    let without = shop.place(false, 1);
    let cancelled = shop.place(true, 1);
    shop.cancel(&cancelled);
    assert!(shop.report().is_clean());

    shop.sql(&format!("UPDATE orders SET points = 3 WHERE id = '{without}'"));
    assert_eq!(shop.broken(), rules(&["points-need-a-customer"]));
    shop.sql(&format!("UPDATE orders SET points = 0 WHERE id = '{without}'"));

    shop.sql(&format!("UPDATE orders SET points = 3 WHERE id = '{cancelled}'"));
    // The customer's 3 points no longer equal the 6 their orders say they earned.
    assert_eq!(
        shop.broken(),
        rules(&["cancelled-order-has-no-points", "points-equal-orders"])
    );
    shop.sql(&format!("UPDATE orders SET points = 0 WHERE id = '{cancelled}'"));

    shop.sql(&format!(
        "DELETE FROM customer_activity WHERE order_id = '{with}' AND kind = 'order_placed'"
    ));
    assert_eq!(shop.broken(), rules(&["points-equal-activity"]));
}

#[test]
fn an_erased_customer_holds_no_points_and_what_reaches_them_later_changes_nothing() {
    let shop = Shop::new();
    let kept = shop.place(true, 2);
    crm::anonymise(&shop.tx(&Default::default()), &shop.customer).unwrap();
    assert!(shop.report().is_clean(), "{}", shop.report().to_text());
    // A cancellation after the erasure takes back nothing and adds no activity.
    shop.cancel(&kept);
    let activity = crm::activity(&shop.conn, &shop.customer).unwrap();
    let kinds: Vec<_> = activity.iter().map(|a| (a.kind.as_str(), a.points_delta)).collect();
    assert_eq!(kinds, [("created", 0), ("order_placed", 7), ("anonymised", -7)]);
    assert!(shop.report().is_clean(), "{}", shop.report().to_text());

    shop.sql(&format!(
        "UPDATE customers SET points = 7 WHERE id = '{}'; UPDATE customer_activity SET points_delta = 0 WHERE kind = 'anonymised'",
        shop.customer
    ));
    assert_eq!(shop.broken(), rules(&["erasure-forfeits-points"]));
}

#[test]
fn a_name_or_a_customer_without_its_key_is_found() {
    let shop = Shop::new();
    shop.place(true, 1);
    assert!(shop.report().is_clean());
    shop.sql("UPDATE products SET name = 'Something else'");
    shop.sql("UPDATE customers SET email = 'new@example.org'");
    assert_eq!(
        shop.broken(),
        rules(&["name-keys-match-names", "search-text-matches-customer"])
    );
}

#[test]
fn idempotency_records_must_match_their_orders() {
    let shop = Shop::new();
    let first = shop.place(false, 1);
    let order = orders::require(&shop.conn, &first).unwrap();
    let key = |k: &str| IdempotencyKey::parse(k, "f".into()).unwrap();
    idempotency::store(&shop.tx(&Default::default()), &key("placed"), &Outcome::Placed(order)).unwrap();
    let rejection = Outcome::Rejected(ShopError::conflict("no"));
    idempotency::store(&shop.tx(&Default::default()), &key("refused"), &rejection).unwrap();
    assert!(shop.report().is_clean());

    let details = |shop: &Shop| -> Vec<(&'static str, String, String)> {
        shop.report()
            .violations
            .iter()
            .map(|v| (v.rule, v.subject.clone(), v.detail.clone()))
            .collect()
    };
    // Answered with points the order never earned.
    shop.sql("UPDATE idempotency_keys SET answered_points = answered_points + 1 WHERE key = 'placed'");
    let found = details(&shop);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0, found[0].1.as_str()),
        ("idempotency-record-is-real", "key placed")
    );
    shop.sql("UPDATE idempotency_keys SET answered_points = answered_points - 1 WHERE key = 'placed'");

    shop.sql("UPDATE idempotency_keys SET rejection = '{\"code\": 1}' WHERE key = 'refused'");
    let found = details(&shop);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].2.starts_with("unreadable refusal"), "{found:?}");
}

#[test]
fn the_ledger_is_append_only() {
    let shop = Shop::new();
    shop.place(false, 1);
    for sql in ["DELETE FROM stock_moves", "UPDATE stock_moves SET delta = 0"] {
        let e = shop.conn.execute_batch(sql).expect_err(sql);
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert!(shop.report().is_clean());
}

#[test]
fn audit_file_reads_without_writing_and_refuses_what_it_cannot_audit() {
    let shop = Shop::new();
    shop.place(true, 1);
    let report = audit_file(&shop.path).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(report.orders, 1);

    let missing = shop.path.with_file_name("missing.db");
    assert!(audit_file(&missing).is_err());
    assert!(!missing.exists(), "the audit must not create a database");

    shop.conn
        .pragma_update(None, "user_version", SCHEMA_VERSION_NEXT)
        .unwrap();
    let e = audit_file(&shop.path).unwrap_err().to_string();
    assert!(e.contains(&format!("schema version {SCHEMA_VERSION_NEXT}")), "{e}");
}

const SCHEMA_VERSION_NEXT: i64 = crate::migrations::SCHEMA_VERSION + 1;

#[test]
fn a_clusters_databases_are_attached_under_the_schema_names_the_rules_read() {
    let schemas: Vec<_> = CLUSTER_DATABASES.iter().map(|(schema, _)| *schema).collect();
    assert_eq!(schemas, lemonade_audit::CLUSTER_SCHEMAS);
}
