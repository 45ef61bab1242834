//! The monolith: the whole [`Shop`] over one SQLite database. Every change is one transaction
//! through the group-committing writer; every read is one snapshot from a reader.

use std::sync::Arc;

use async_trait::async_trait;
use lemonade_domain::catalog::{CatalogRefs, NewProduct, Product, ProductPatch};
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields, Erasure};
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{Order, OrderRefs};
use lemonade_domain::ports::{
    Clock, DependencyHealth, Health, IdSource, OrderFilter, Page, PageRequest, PlaceOrder, Placed, Shop,
};
use lemonade_domain::report::{SalesQuery, SalesReport, build_sales_report};
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use lemonade_domain::{FieldError, ShopError};

use crate::db::Database;
use crate::inflight::InFlight;
use crate::sql::idempotency::{self, Outcome};
use crate::sql::{catalog, crm, orders, stock};
use crate::tx::Tx;

/// Loyalty by default: one point per whole currency unit (100 minor units).
pub const MINOR_UNITS_PER_POINT_DEFAULT: u64 = 100;

#[derive(Clone, Copy, Debug)]
pub struct ShopConfig {
    /// Loyalty: one point per this many minor units of an order's total.
    pub minor_units_per_point: u64,
    /// How long idempotency keys are kept; at least 24 hours.
    pub idempotency_retention_ms: i64,
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            minor_units_per_point: MINOR_UNITS_PER_POINT_DEFAULT,
            idempotency_retention_ms: 48 * 3_600_000,
        }
    }
}

#[derive(Clone)]
pub struct SqliteShop {
    db: Database,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    in_flight: InFlight,
    config: ShopConfig,
}

impl SqliteShop {
    pub fn new(db: Database, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>, config: ShopConfig) -> Self {
        assert!(config.minor_units_per_point > 0);
        assert!(
            config.idempotency_retention_ms >= 24 * 3_600_000,
            "Stripe keeps keys 24 hours; so do we"
        );
        SqliteShop {
            db,
            clock,
            ids,
            in_flight: InFlight::default(),
            config,
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Runs `work` as one writer job with its [`Tx`] ([`Database::write`]): the clock is read
    /// and ids are drawn inside the job, when the write's turn has come, so timestamps and ids
    /// follow the order the shop applied its writes (an erasure queued behind orders is
    /// stamped, and its activity listed, after theirs).
    async fn write<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ShopError> + Send + 'static,
    {
        self.db.write(&self.clock, &self.ids, work).await
    }

    /// Deletes expired idempotency records now and then.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        crate::maintenance::spawn_expiry(
            &self.db,
            Arc::clone(&self.clock),
            self.config.idempotency_retention_ms,
            "idempotency keys",
            idempotency::expire,
        )
    }
}

#[async_trait]
impl Shop for SqliteShop {
    async fn list_ingredients(&self, page: PageRequest) -> Result<Page<Ingredient>, ShopError> {
        self.db.readers.read(move |c| stock::list(c, &page)).await
    }

    async fn get_ingredient(&self, id: IngredientId) -> Result<Ingredient, ShopError> {
        self.db.readers.read(move |c| stock::require(c, &id)).await
    }

    async fn create_ingredient(&self, new: NewIngredient) -> Result<Ingredient, ShopError> {
        self.write(move |tx| stock::create(tx, tx.new_id(IngredientId::parse), &new))
            .await
    }

    async fn adjust_stock(
        &self,
        id: IngredientId,
        adjustment: StockAdjustment,
    ) -> Result<(Ingredient, StockMove), ShopError> {
        self.write(move |tx| stock::adjust(tx, &id, &adjustment)).await
    }

    async fn list_moves(
        &self,
        ingredient: Option<IngredientId>,
        page: PageRequest,
    ) -> Result<Page<StockMove>, ShopError> {
        self.db
            .readers
            .read(move |c| {
                if let Some(id) = &ingredient {
                    stock::require(c, id)?;
                }
                stock::list_moves(c, ingredient.as_ref(), &page)
            })
            .await
    }

    async fn list_products(&self, page: PageRequest) -> Result<Page<Product>, ShopError> {
        self.db.readers.read(move |c| catalog::list(c, &page)).await
    }

    async fn get_product(&self, id: ProductId) -> Result<Product, ShopError> {
        self.db.readers.read(move |c| catalog::require(c, &id)).await
    }

    async fn create_product(&self, new: NewProduct) -> Result<Product, ShopError> {
        self.write(move |tx| catalog::create(tx, tx.new_id(ProductId::parse), &new))
            .await
    }

    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product, ShopError> {
        self.write(move |tx| catalog::update(tx, &id, &patch)).await
    }

    async fn list_customers(&self, search: Option<String>, page: PageRequest) -> Result<Page<Customer>, ShopError> {
        self.db
            .readers
            .read(move |c| crm::list(c, search.as_deref(), &page))
            .await
    }

    async fn get_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        self.db.readers.read(move |c| crm::require(c, &id)).await
    }

    async fn create_customer(&self, fields: CustomerFields) -> Result<Customer, ShopError> {
        self.write(move |tx| crm::create(tx, tx.new_id(CustomerId::parse), &fields))
            .await
    }

    async fn update_customer(&self, id: CustomerId, fields: CustomerFields) -> Result<Customer, ShopError> {
        self.write(move |tx| crm::update(tx, &id, &fields)).await
    }

    /// The customer's record is the one copy of them in the monolith (activity, orders and
    /// idempotency records hold ids); once it is anonymised the old values are scrubbed from
    /// the file.
    async fn anonymise_customer(&self, id: CustomerId) -> Result<Erasure, ShopError> {
        let erased = self.write(move |tx| crm::anonymise(tx, &id)).await?;
        self.db.scrub_after_erasure().await;
        Ok(Erasure::Done(erased))
    }

    async fn export_customer(&self, id: CustomerId) -> Result<CustomerExport, ShopError> {
        let now = self.clock.now();
        self.db
            .readers
            .read(move |c| {
                Ok(CustomerExport {
                    customer: crm::require(c, &id)?,
                    orders: orders::all_of_customer(c, &id)?,
                    activity: crm::activity(c, &id)?,
                    exported_at: now,
                })
            })
            .await
    }

    async fn place_order(&self, request: PlaceOrder) -> Result<Placed, ShopError> {
        let _claim = match &request.idempotency {
            Some(k) => Some(self.in_flight.claim(&k.key)?),
            None => None,
        };
        let per_point = self.config.minor_units_per_point;
        self.write(move |tx| {
            let c = tx.conn;
            if let Some(key) = &request.idempotency
                && let Some(record) = idempotency::lookup(c, &key.key)?
            {
                if record.fingerprint != key.fingerprint {
                    return Err(ShopError::IdempotencyKeyReused);
                }
                let outcome = match record.outcome {
                    Outcome::Placed(order) => Ok(order),
                    Outcome::Rejected(e) => Err(e),
                };
                return Ok(Placed {
                    outcome,
                    replayed: true,
                });
            }
            // `place` checks everything before its first write, so a rejection leaves
            // nothing behind and the key can record it in this same transaction.
            let changes_before = c.changes();
            let outcome = match orders::place(tx, &request.draft, per_point) {
                // A refusal is an answer the key keeps (the domain's rule, as the cluster's).
                Err(e) if !(e.is_refusal() && c.changes() == changes_before) => return Err(e),
                outcome => outcome,
            };
            if let Some(key) = &request.idempotency {
                let stored = match &outcome {
                    Ok(order) => Outcome::Placed(order.clone()),
                    Err(e) => Outcome::Rejected(e.clone()),
                };
                idempotency::store(tx, key, &stored)?;
            }
            Ok(Placed {
                outcome,
                replayed: false,
            })
        })
        .await
    }

    async fn list_orders(&self, filter: OrderFilter, page: PageRequest) -> Result<Page<Order>, ShopError> {
        self.db
            .readers
            .read(move |c| {
                if let Some(customer) = &filter.customer_id {
                    crm::require(c, customer)?;
                }
                orders::list(c, &filter, &page)
            })
            .await
    }

    async fn get_order(&self, id: OrderId) -> Result<Order, ShopError> {
        self.db.readers.read(move |c| orders::require(c, &id)).await
    }

    async fn cancel_order(&self, id: OrderId) -> Result<Order, ShopError> {
        self.write(move |tx| orders::cancel(tx, &id)).await
    }

    async fn order_timeline(&self, id: OrderId) -> Result<lemonade_domain::hlc::Timeline, ShopError> {
        self.db
            .readers
            .read(move |c| {
                orders::require(c, &id)?;
                let max = lemonade_domain::hlc::TIMELINE_EVENTS_MAX;
                let events = crate::sql::timeline::of_order(c, &id, max + 1)?;
                Ok(lemonade_domain::hlc::Timeline::of(vec![events], Vec::new()))
            })
            .await
    }

    async fn sales_report(&self, query: SalesQuery) -> Result<SalesReport, ShopError> {
        self.db
            .readers
            .read(move |c| {
                let (days, products) = orders::sales(c, &query)?;
                Ok(build_sales_report(&query, &days, products))
            })
            .await
    }

    async fn check_catalog_refs(&self, refs: CatalogRefs) -> Result<Vec<FieldError>, ShopError> {
        self.db.readers.read(move |c| catalog::check_refs(c, &refs)).await
    }

    async fn check_order_refs(&self, refs: OrderRefs) -> Result<Vec<FieldError>, ShopError> {
        self.db.readers.read(move |c| orders::check_refs(c, &refs)).await
    }

    async fn health(&self) -> Health {
        let database = self.db.health().await;
        let ok = database.is_ok();
        Health {
            ok,
            serving: ok,
            mode: "monolith".into(),
            dependencies: vec![DependencyHealth {
                name: "database".into(),
                ok,
                detail: database.err().map(|e| e.to_string()),
                degrades: if ok { vec![] } else { vec!["everything".into()] },
            }],
            clock: lemonade_domain::ports::ClockHealth::of(&self.db.hlc),
        }
    }

    async fn live(&self) -> Result<(), ShopError> {
        self.db.health().await
    }
}

#[cfg(test)]
mod tests {
    use lemonade_domain::error::FieldErrors;
    use lemonade_domain::order::{OrderDraft, RawOrderLine};
    use lemonade_domain::values::{Money, Timestamp};

    use super::*;
    use crate::system::{SystemClock, UuidV7Ids};

    async fn shop() -> (SqliteShop, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db"), crate::WriterConfig::default()).unwrap();
        let (clock, ids) = (Arc::new(SystemClock), Arc::new(UuidV7Ids));
        crate::seed::seed_demo_if_empty(&db, clock.clone(), ids.clone())
            .await
            .unwrap();
        (SqliteShop::new(db, clock, ids, ShopConfig::default()), dir)
    }

    fn one(product: &ProductId) -> PlaceOrder {
        let line = RawOrderLine::new(&product.to_string(), 1);
        PlaceOrder {
            draft: OrderDraft::from_lines(None, &[line]).unwrap(),
            idempotency: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_order_sees_a_product_change_made_after_an_earlier_order_was_priced() {
        let (shop, _dir) = shop().await;
        let product = shop.list_products(PageRequest::first(1)).await.unwrap().items.remove(0);
        assert_eq!(
            shop.place_order(one(&product.id)).await.unwrap().outcome.unwrap().total,
            product.price
        );

        let off_sale = ProductPatch {
            active: Some(false),
            ..Default::default()
        };
        shop.update_product(product.id.clone(), off_sale).await.unwrap();
        let refused = shop.place_order(one(&product.id)).await.unwrap().outcome.unwrap_err();
        assert!(matches!(refused, ShopError::ValidationFailed { .. }), "{refused:?}");

        let repriced = ProductPatch {
            active: Some(true),
            price: Some(Money::new(999).unwrap()),
            ..Default::default()
        };
        shop.update_product(product.id.clone(), repriced).await.unwrap();
        assert_eq!(
            shop.place_order(one(&product.id))
                .await
                .unwrap()
                .outcome
                .unwrap()
                .total
                .minor(),
            999
        );
    }

    /// Every file of the folder (the database, its WAL and shared memory) that holds `needle`.
    fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let bytes = std::fs::read(p).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            })
            .map(|p| p.display().to_string())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn erasures_leave_no_byte_of_the_people_in_the_files_when_pages_are_split_and_merged() {
        let (shop, dir) = shop().await;
        // Enough people, with long enough details, to fill many pages, then details changed
        // to longer ones (pages split) and everyone erased (cells shrink, pages merge).
        let mut people = Vec::new();
        for i in 0..400 {
            let (name, email, phone) = (
                format!("Person {i:03} {}", "x".repeat(60)),
                format!("person.{i:03}@before.example"),
                format!("+1 555 {i:07}"),
            );
            let fields =
                FieldErrors::collect(|e| CustomerFields::parse(e, Some(&name), Some(&email), Some(&phone), true))
                    .unwrap();
            people.push(shop.create_customer(fields).await.unwrap().id);
        }
        for (i, id) in people.iter().enumerate() {
            let email = format!("person.{i:03}.{}@after.example", "y".repeat(40));
            let longer = FieldErrors::collect(|e| CustomerFields::parse(e, None, Some(&email), None, false)).unwrap();
            shop.update_customer(id.clone(), longer).await.unwrap();
        }
        for id in &people {
            shop.anonymise_customer(id.clone()).await.unwrap();
        }
        for needle in ["Person 0", "@before.example", "@after.example", "+1 555 0"] {
            assert_eq!(files_holding(dir.path(), needle), Vec::<String>::new(), "{needle}");
        }
        shop.database().close().await;
        for needle in ["Person 0", "@before.example", "@after.example", "+1 555 0"] {
            assert_eq!(
                files_holding(dir.path(), needle),
                Vec::<String>::new(),
                "{needle} after a stop"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rolled_back_move_does_not_linger_in_the_writers_view_of_stock() {
        let (shop, _dir) = shop().await;
        let product = shop.list_products(PageRequest::first(1)).await.unwrap().items.remove(0);
        // Sell one so the writer has the recipe's stock cached.
        shop.place_order(one(&product.id)).await.unwrap().outcome.unwrap();
        let lemons = product.recipe[0].ingredient_id.clone();
        let on_hand = shop.get_ingredient(lemons.clone()).await.unwrap().on_hand;

        // A job that takes all the lemons and then fails: its whole batch is rolled back.
        let cache = Arc::clone(&shop.database().cache);
        let taken = lemons.clone();
        let failed = shop
            .database()
            .writer
            .execute(move |c| {
                let all = -(on_hand as i64);
                let tx = Tx::new(c, &cache, &UuidV7Ids, Timestamp(0));
                stock::apply_move(&tx, &taken, all, lemonade_domain::stock::MoveReason::Waste, None, None)?;
                Err::<(), _>(ShopError::conflict("fails after writing"))
            })
            .await;
        assert!(matches!(failed, Err(ShopError::Unavailable { .. })), "{failed:?}");
        assert_eq!(shop.get_ingredient(lemons).await.unwrap().on_hand, on_hand);
        // The lemons are still there for the writer too.
        shop.place_order(one(&product.id)).await.unwrap().outcome.unwrap();
    }

    /// Polls `f` once: a writer job is queued by the first poll of the call that makes it.
    async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) {
        std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut *f).poll(cx).is_pending(), "the writer is held");
            std::task::Poll::Ready(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erasure_queued_behind_an_order_is_stamped_and_listed_after_it() {
        let (shop, _dir) = shop().await;
        let product = shop.list_products(PageRequest::first(1)).await.unwrap().items.remove(0);
        let fields = FieldErrors::collect(|e| CustomerFields::parse(e, Some("Ada"), None, None, true)).unwrap();
        let ada = shop.create_customer(fields).await.unwrap();

        // Hold the writer, then queue an order for Ada and, behind it, her erasure.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = shop.database().writer.execute(move |_| {
            held.recv().unwrap();
            Ok(())
        });
        let mut holder = Box::pin(holder);
        poll_once(&mut holder).await;
        let mut order = one(&product.id);
        let lines = [RawOrderLine {
            product_id: Some(product.id.to_string()),
            quantity: Some(1),
        }];
        order.draft = FieldErrors::collect(|e| OrderDraft::parse(e, Some(ada.id.as_str()), Some(&lines)).0).unwrap();
        let mut placed = Box::pin(shop.place_order(order));
        poll_once(&mut placed).await;
        let mut erased = Box::pin(shop.anonymise_customer(ada.id.clone()));
        poll_once(&mut erased).await;
        release.send(()).unwrap();
        holder.await.unwrap();
        let placed = placed.await.unwrap().outcome.unwrap();
        let Erasure::Done(erased) = erased.await.unwrap() else {
            panic!("the monolith erases at once")
        };

        let export = shop.export_customer(ada.id.clone()).await.unwrap();
        let kinds: Vec<_> = export.activity.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "order_placed", "anonymised"], "in the order applied");
        assert_eq!(export.activity[1].order_id.as_ref(), Some(&placed.id));
        assert!(export.activity[1].created_at <= export.activity[2].created_at);
        assert_eq!(erased.points, 0, "the erasure forfeited the order's points");
    }
}
