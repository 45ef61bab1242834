//! The monolith: the whole [`Shop`] over one SQLite database. Every change is one transaction
//! through the group-committing writer; every read is one snapshot from a reader.

use std::sync::Arc;

use async_trait::async_trait;
use lemonade_domain::ShopError;
use lemonade_domain::catalog::{NewProduct, Product, ProductPatch};
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields};
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::Order;
use lemonade_domain::ports::{
    Clock, DependencyHealth, Health, IdSource, OrderFilter, Page, PageRequest, PlaceOrder, Placed, Shop,
};
use lemonade_domain::report::{SalesQuery, SalesReport, build_sales_report};
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};

use crate::db::Database;
use crate::inflight::InFlight;
use crate::sql::idempotency::{self, Outcome};
use crate::sql::{catalog, crm, orders, stock};

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

    fn new_id(&self) -> String {
        self.ids.next_id()
    }

    /// Deletes expired idempotency records now and then.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        crate::maintenance::spawn_expiry(
            self.db.writer.clone(),
            Arc::clone(&self.clock),
            self.config.idempotency_retention_ms,
            "idempotency keys",
            idempotency::expire,
        )
    }
}

fn is_rejection(e: &ShopError) -> bool {
    matches!(
        e,
        ShopError::ValidationFailed { .. } | ShopError::InsufficientStock { .. } | ShopError::Conflict { .. }
    )
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
        let id = IngredientId::parse(&self.new_id()).expect("valid id");
        let now = self.clock.now();
        let cache = Arc::clone(&self.db.cache);
        self.db
            .writer
            .execute(move |c| stock::create(c, &cache, id, &new, now))
            .await
    }

    async fn adjust_stock(
        &self,
        id: IngredientId,
        adjustment: StockAdjustment,
    ) -> Result<(Ingredient, StockMove), ShopError> {
        let now = self.clock.now();
        let cache = Arc::clone(&self.db.cache);
        self.db
            .writer
            .execute(move |c| stock::adjust(c, &cache, &id, &adjustment, now))
            .await
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
        let id = ProductId::parse(&self.new_id()).expect("valid id");
        let now = self.clock.now();
        self.db.writer.execute(move |c| catalog::create(c, id, &new, now)).await
    }

    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product, ShopError> {
        let now = self.clock.now();
        let cache = Arc::clone(&self.db.cache);
        self.db
            .writer
            .execute(move |c| {
                cache.forget_product(&id);
                catalog::update(c, &id, &patch, now)
            })
            .await
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
        let id = CustomerId::parse(&self.new_id()).expect("valid id");
        let activity = self.new_id();
        let now = self.clock.now();
        self.db
            .writer
            .execute(move |c| crm::create(c, id, activity, &fields, now))
            .await
    }

    async fn update_customer(&self, id: CustomerId, fields: CustomerFields) -> Result<Customer, ShopError> {
        let activity = self.new_id();
        let now = self.clock.now();
        self.db
            .writer
            .execute(move |c| crm::update(c, &id, activity, &fields, now))
            .await
    }

    /// The customer's record is the one copy of them in the monolith (activity, orders and
    /// idempotency records hold ids); once it is anonymised the old values are scrubbed from
    /// the file.
    async fn anonymise_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        let activity = self.new_id();
        let now = self.clock.now();
        let erased = self
            .db
            .writer
            .execute(move |c| crm::anonymise(c, &id, activity, now))
            .await?;
        self.db.scrub_after_erasure().await;
        Ok(erased)
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
        let now = self.clock.now();
        let ids = Arc::clone(&self.ids);
        let per_point = self.config.minor_units_per_point;
        let cache = Arc::clone(&self.db.cache);
        self.db
            .writer
            .execute(move |c| {
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
                let outcome = match orders::place(c, ids.as_ref(), &cache, &request.draft, now, per_point) {
                    Err(e) if !(is_rejection(&e) && c.changes() == changes_before) => return Err(e),
                    outcome => outcome,
                };
                if let Some(key) = &request.idempotency {
                    let stored = match &outcome {
                        Ok(order) => Outcome::Placed(order.clone()),
                        Err(e) => Outcome::Rejected(e.clone()),
                    };
                    idempotency::store(c, key, &stored, now)?;
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
        let now = self.clock.now();
        let ids = Arc::clone(&self.ids);
        let cache = Arc::clone(&self.db.cache);
        self.db
            .writer
            .execute(move |c| orders::cancel(c, ids.as_ref(), &cache, &id, now))
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

    async fn health(&self) -> Health {
        let probe = self
            .db
            .readers
            .read(|c| {
                c.query_row("SELECT 1", crate::params![], |_| Ok(()))
                    .map_err(crate::sql::storage_error)
            })
            .await;
        let ok = probe.is_ok();
        Health {
            ok,
            mode: "monolith".into(),
            dependencies: vec![DependencyHealth {
                name: "database".into(),
                ok,
                detail: probe.err().map(|e| e.to_string()),
                degrades: if ok { vec![] } else { vec!["everything".into()] },
            }],
        }
    }
}

#[cfg(test)]
mod tests {
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
        let line = RawOrderLine {
            product_id: product.to_string(),
            quantity: 1,
        };
        PlaceOrder {
            draft: OrderDraft::parse(None, &[line]).unwrap(),
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
            let fields = CustomerFields::parse(
                Some(&format!("Person {i:03} {}", "x".repeat(60))),
                Some(&format!("person.{i:03}@before.example")),
                Some(&format!("+1 555 {i:07}")),
                true,
            )
            .unwrap();
            people.push(shop.create_customer(fields).await.unwrap().id);
        }
        for (i, id) in people.iter().enumerate() {
            let longer = CustomerFields::parse(
                None,
                Some(&format!("person.{i:03}.{}@after.example", "y".repeat(40))),
                None,
                false,
            )
            .unwrap();
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
                stock::apply_move(
                    c,
                    &cache,
                    &taken,
                    all,
                    lemonade_domain::stock::MoveReason::Waste,
                    None,
                    None,
                    Timestamp(0),
                )?;
                Err::<(), _>(ShopError::conflict("fails after writing"))
            })
            .await;
        assert!(matches!(failed, Err(ShopError::Unavailable { .. })), "{failed:?}");
        assert_eq!(shop.get_ingredient(lemons).await.unwrap().on_hand, on_hand);
        // The lemons are still there for the writer too.
        shop.place_order(one(&product.id)).await.unwrap().outcome.unwrap();
    }
}
