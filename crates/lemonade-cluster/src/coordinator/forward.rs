//! The coordinator's public face: the [`Shop`] port of the distributed mode. Reads and
//! simple changes go to the service that owns the data; placing an order is the saga's
//! ([`super::saga`]), a customer's erasure the directory's ([`super::customers`]).

use std::time::Duration;

use async_trait::async_trait;
use lemonade_domain::catalog::{CatalogRefs, NewProduct, Product, ProductPatch};
use lemonade_domain::customer::check_order_customer;
use lemonade_domain::customer::{Customer, CustomerExport, CustomerFields, Erasure};
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{Order, OrderRefs, OrderStatus};
use lemonade_domain::ports::{DependencyHealth, Health, OrderFilter, Page, PageRequest, PlaceOrder, Placed, Shop};
use lemonade_domain::report::{SalesQuery, SalesReport};
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use lemonade_domain::{FieldError, ShopError};

use lemonade_domain::hlc::{TIMELINE_EVENTS_MAX, Timeline};
use lemonade_domain::saga::machine::Logged;
use lemonade_store::sql::{sagas, timeline};

use super::Coordinator;
use super::read_your_writes::Sees;
use crate::client::CallError;
use crate::rpc::*;

/// Longest `/health` waits for each service's status.
const HEALTH_CHECK_MS: u64 = 500;

/// Longest an order's timeline waits for each service's part of it.
pub const TIMELINE_CALL_MS: u64 = 1_000;

#[async_trait]
impl Shop for Coordinator {
    async fn list_ingredients(&self, page: PageRequest) -> Result<Page<Ingredient>, ShopError> {
        self.ask(ListIngredients { page }).await
    }
    async fn get_ingredient(&self, id: IngredientId) -> Result<Ingredient, ShopError> {
        self.ask(GetIngredient { id }).await
    }
    async fn create_ingredient(&self, new: NewIngredient) -> Result<Ingredient, ShopError> {
        self.change(Sees::All, CreateIngredient { new }).await
    }
    async fn adjust_stock(
        &self,
        id: IngredientId,
        adjustment: StockAdjustment,
    ) -> Result<(Ingredient, StockMove), ShopError> {
        self.change(Sees::All, AdjustStock { id, adjustment }).await
    }
    async fn list_moves(
        &self,
        ingredient: Option<IngredientId>,
        page: PageRequest,
    ) -> Result<Page<StockMove>, ShopError> {
        self.ask(ListMoves { ingredient, page }).await
    }

    async fn list_products(&self, page: PageRequest) -> Result<Page<Product>, ShopError> {
        self.ask(ListProducts { page }).await
    }
    async fn get_product(&self, id: ProductId) -> Result<Product, ShopError> {
        self.ask(GetProduct { id }).await
    }
    async fn create_product(&self, new: NewProduct) -> Result<Product, ShopError> {
        self.change(Sees::All, CreateProduct { new }).await
    }
    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product, ShopError> {
        self.change(Sees::All, UpdateProduct { id, patch }).await
    }

    async fn list_customers(&self, search: Option<String>, page: PageRequest) -> Result<Page<Customer>, ShopError> {
        self.ask(ListCustomers { search, page }).await
    }
    /// CRM's answer; for a customer being erased, what the coordinator knows rather than
    /// wait for a CRM that does not answer ([`Coordinator::read_customer`]).
    async fn get_customer(&self, id: CustomerId) -> Result<Customer, ShopError> {
        self.read_customer(id).await
    }
    async fn create_customer(&self, fields: CustomerFields) -> Result<Customer, ShopError> {
        let customer = self.change(Sees::Nothing, CreateCustomer { fields }).await?;
        self.learn(&customer).await;
        Ok(customer)
    }
    async fn update_customer(&self, id: CustomerId, fields: CustomerFields) -> Result<Customer, ShopError> {
        let customer = self
            .change(Sees::Customer(&id), UpdateCustomer { id: id.clone(), fields })
            .await?;
        self.learn(&customer).await;
        Ok(customer)
    }

    /// Erases a customer without a race with their orders:
    /// 1. the directory marks them `erasing`, durably: from then on no order can name them
    ///    (an order checks the directory, and checks it again in the transaction that logs
    ///    its saga);
    /// 2. it waits, at most as long as an order may take (`order_deadline_ms`), until no
    ///    saga naming them is unfinished;
    /// 3. CRM anonymises them (forfeiting their points; an award that reaches CRM later
    ///    changes nothing), and the directory marks them `erased`.
    ///
    /// Once step 1 is done the erasure is recorded for good: if step 2 or 3 cannot be done
    /// now (orders still in flight, CRM not answering), the answer is
    /// [`Erasure::UnderWay`] (202) saying so, never an error, and the sweeper finishes it.
    async fn anonymise_customer(&self, id: CustomerId) -> Result<Erasure, ShopError> {
        self.erase(id).await
    }
    async fn export_customer(&self, id: CustomerId) -> Result<CustomerExport, ShopError> {
        let (customer, orders, activity) = tokio::join!(
            self.ask_about(&id, GetCustomer { id: id.clone() }),
            self.ask(CustomerOrders {
                customer_id: id.clone()
            }),
            self.ask_about(&id, CustomerActivity { id: id.clone() })
        );
        let customer = customer?;
        self.learn(&customer).await;
        Ok(CustomerExport {
            customer,
            orders: orders?,
            activity: activity?,
            exported_at: self.inner.node.now(),
        })
    }

    /// Best effort, for a request that has other errors already: what stock cannot tell
    /// within [`BEST_EFFORT_MS`] is left out.
    async fn check_catalog_refs(&self, refs: CatalogRefs) -> Result<Vec<FieldError>, ShopError> {
        Ok(self.extra(CheckCatalog { refs }).await.unwrap_or_default())
    }

    /// Best effort, for a request that has other errors already, each part on its own: the
    /// customer from the directory when it knows them, else from CRM; the products from
    /// stock. What cannot be told within [`BEST_EFFORT_MS`] is left out.
    async fn check_order_refs(&self, refs: OrderRefs) -> Result<Vec<FieldError>, ShopError> {
        let customer = async {
            let id = refs.customer_id.clone()?;
            if let Ok(Some(standing)) = self.standing(&id).await {
                return check_order_customer(Some(standing)).err();
            }
            match self.extra_call(GetCustomer { id }).await {
                Ok(c) => check_order_customer(Some(c.standing())).err(),
                Err(CallError::Refused(ShopError::NotFound { .. })) => check_order_customer(None).err(),
                Err(_) => None,
            }
        };
        let products = async {
            match refs.products.is_empty() {
                true => Vec::new(),
                false => self
                    .extra(CheckOrderProducts {
                        products: refs.products.clone(),
                    })
                    .await
                    .unwrap_or_default(),
            }
        };
        let (customer, products) = tokio::join!(customer, products);
        Ok(customer.into_iter().chain(products).collect())
    }

    async fn place_order(&self, request: PlaceOrder) -> Result<Placed, ShopError> {
        self.place_keyed(request).await
    }

    async fn list_orders(&self, filter: OrderFilter, page: PageRequest) -> Result<Page<Order>, ShopError> {
        if let Some(customer) = &filter.customer_id {
            self.require_customer(customer).await?;
        }
        self.ask(ListOrders { filter, page }).await
    }

    /// The orders service's answer. The saga log answers in its stead only what it knows for
    /// good: a failed saga's order is `failed`, a rejected one has none; that answer is given
    /// rather than wait for a service that does not answer ([`Coordinator::unless_known`]).
    /// An unfinished saga's order is `pending` only while the orders service does not have
    /// it: once a call that writes it may have reached that service (its reply lost, or a
    /// late copy), a client may have read it confirmed there and cancelled it since (the
    /// simulation's seed 770088). So the log answers `pending` in the service's stead only
    /// for a saga this coordinator holds as unwritten ([`Coordinator::order_unwritten`]:
    /// every such call certainly unsent, as when the orders service is down); for any
    /// other, as for a confirmed order, the orders service answers, with the full deadline,
    /// and its "no such order" means not created yet: pending.
    async fn get_order(&self, id: OrderId) -> Result<Order, ShopError> {
        let logged = match self.order_from_saga_log(&id).await {
            Ok(logged) => logged,
            Err(e @ ShopError::NotFound { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(order = %id, error = %e, "cannot read the saga log; asking the orders service alone");
                None
            }
        };
        match logged {
            // What the log knows for certain: failed for good, or pending and certainly not
            // at the orders service yet. If the orders service never had it, it is still this.
            Some(known) if known.status == OrderStatus::Failed || self.order_unwritten(&id) => {
                match self.unless_known(self.asking(Sees::All, GetOrder { id })).await {
                    Some(Err(ShopError::NotFound { .. })) | None => Ok(known),
                    Some(answer) => answer,
                }
            }
            // Unfinished, and a call that writes it may have reached the orders service: that
            // service answers (its "no such order" means not created yet), bounded by a timer
            // of its own too, whatever the transport does.
            Some(pending) if !self.log_lags(&id) => {
                let within_ms = self.inner.config.call_deadline_ms;
                let asked =
                    tokio::time::timeout(Duration::from_millis(within_ms), self.ask(GetOrder { id: id.clone() }));
                match asked.await {
                    Ok(Err(ShopError::NotFound { .. })) => Ok(pending),
                    Ok(answer) => answer,
                    Err(_) => Err(ShopError::unavailable(format!(
                        "order {id} is being placed, and the orders service did not answer within {within_ms} ms, \
                         so whether it is confirmed yet is not known here; try again in a moment"
                    ))),
                }
            }
            // Confirmed (in the log, or here a moment ago and not yet in the log), or not in
            // the log: the orders service alone knows (it may have been cancelled since).
            _ => self.ask(GetOrder { id }).await,
        }
    }

    async fn cancel_order(&self, id: OrderId) -> Result<Order, ShopError> {
        let settled = self.change(Sees::Nothing, CancelOrder { order_id: id }).await?;
        // A client's next read of the customer, or of stock, waits for the relay to pass these.
        self.inner
            .written
            .wrote(settled.order.customer_id.as_ref(), settled.marks);
        Ok(settled.order)
    }

    /// The coordinator's own events (the saga log's) and each service's, asked at once, each
    /// within [`TIMELINE_CALL_MS`]; a service that does not answer is named in `unreachable`
    /// and the rest is answered. An order neither the saga log nor any service knows is 404
    /// (503 when a service that might know did not answer).
    async fn order_timeline(&self, id: OrderId) -> Result<Timeline, ShopError> {
        let within = Duration::from_millis(TIMELINE_CALL_MS);
        let limit = TIMELINE_EVENTS_MAX + 1;
        let clients = &self.inner.clients;
        let own_id = id.clone();
        let own = self.inner.node.read(move |db| {
            let saga = sagas::get(db, &own_id)?;
            Ok((saga, timeline::of_order(db, &own_id, limit)?))
        });
        let (of_stock, of_orders, of_crm) = (
            StockTimeline {
                order_id: id.clone(),
                limit,
            },
            OrdersTimeline {
                order_id: id.clone(),
                limit,
            },
            CrmTimeline {
                order_id: id.clone(),
                limit,
            },
        );
        let (own, stock, orders, crm) = tokio::join!(
            own,
            clients.call_within(&of_stock, within),
            clients.call_within(&of_orders, within),
            clients.call_within(&of_crm, within),
        );
        let (saga, mine) = own?;
        if let Some(saga) = &saga
            && matches!(saga.state, Logged::Rejected { .. })
        {
            return Err(ShopError::not_found("order"));
        }
        let mut parts = vec![mine];
        let mut unreachable = Vec::new();
        for (service, answer) in [(Service::Stock, stock), (Service::Orders, orders), (Service::Crm, crm)] {
            match answer {
                Ok(events) => parts.push(events),
                Err(e) => {
                    tracing::debug!(%service, order = %id, error = ?e, "a service's part of a timeline is missing");
                    unreachable.push(service.as_str().to_owned());
                }
            }
        }
        if saga.is_none() && parts.iter().all(Vec::is_empty) {
            return Err(if unreachable.is_empty() {
                ShopError::not_found("order")
            } else {
                ShopError::unavailable(format!(
                    "this order is not in the saga log, and {} could not be asked",
                    unreachable.join(" and ")
                ))
            });
        }
        Ok(Timeline::of(parts, unreachable))
    }

    async fn sales_report(&self, query: SalesQuery) -> Result<SalesReport, ShopError> {
        self.ask(Sales { query }).await
    }

    async fn live(&self) -> Result<(), ShopError> {
        self.inner.node.probe().await
    }

    async fn health(&self) -> Health {
        let within = Duration::from_millis(HEALTH_CHECK_MS);
        let clients = &self.inner.clients;
        let (db, stock, orders, crm) = tokio::join!(
            self.inner.node.probe(),
            clients.call_within(&StockStatus {}, within),
            clients.call_within(&OrdersStatus {}, within),
            clients.call_within(&CrmStatus {}, within),
        );
        // Only its own database stops the coordinator; services that are down degrade it.
        let serving = db.is_ok();
        let dependencies = dependencies(db, stock, orders, crm);
        Health {
            ok: dependencies.iter().all(|d| d.ok),
            serving,
            mode: "coordinator".into(),
            dependencies,
            clock: lemonade_domain::ports::ClockHealth::of(&self.inner.node.db.hlc),
        }
    }
}

/// The coordinator's dependencies as `/health` lists them: the saga log and each service,
/// with what the shop does without each one, as it really behaves (the fault-injection
/// tests take each service away and check these against what happens).
fn dependencies(
    db: Result<(), ShopError>,
    stock: Result<ServiceStatus, CallError>,
    orders: Result<ServiceStatus, CallError>,
    crm: Result<ServiceStatus, CallError>,
) -> Vec<DependencyHealth> {
    let dependency = |name: &str, outcome: Result<Option<String>, String>, degrades: &[&str]| {
        let ok = outcome.is_ok();
        DependencyHealth {
            name: name.into(),
            ok,
            detail: match outcome {
                Ok(detail) => detail,
                Err(e) => Some(e),
            },
            degrades: if ok {
                vec![]
            } else {
                degrades.iter().map(|d| d.to_string()).collect()
            },
        }
    };
    let status = |r: Result<ServiceStatus, CallError>, what: &str| {
        r.map(|s| (s.waiting > 0).then(|| format!("{} {what}", s.waiting)))
            .map_err(|e| ShopError::from(e).to_string())
    };
    vec![
        dependency(
            "saga log",
            db.map(|_| None).map_err(|e| e.to_string()),
            &["placing orders", "erasing customers"],
        ),
        dependency(
            "stock",
            status(stock, "reservations held"),
            &[
                "placing orders",
                "ingredients, stock and products",
                "stock of cancelled orders comes back once it is back",
            ],
        ),
        dependency(
            "orders",
            status(orders, "events waiting for delivery"),
            &[
                "new orders are accepted as pending (202) and confirmed once it is back",
                "order lists, cancellations, and details of orders already settled",
                "sales reports",
                "customer exports",
            ],
        ),
        dependency(
            "crm",
            status(crm, "waiting"),
            &[
                "customers: lists, details, changes, erasure and exports",
                "orders naming a customer not seen here before (sell without the customer, or try again)",
                "points of orders are awarded once it is back",
            ],
        ),
    ]
}
