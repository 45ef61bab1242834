//! The internal API: every call one service makes on another, as a request type that knows
//! its path, its target and its reply type. Both sides use these types, so a request and its
//! handler cannot disagree on shape.
//!
//! On the wire a call is `POST <PATH>` with the request as JSON and, when it changes
//! something, an `Idempotency-Key` header derived from the saga (or public request) and the
//! step. The reply is the JSON of `Reply` with 200, or of a [`ShopError`] with the status the
//! public API would give it.

use lemonade_domain::FieldError;
use lemonade_domain::catalog::{CatalogRefs, NewProduct, Product, ProductPatch};
use lemonade_domain::customer::{Activity, Customer, CustomerFields};
use lemonade_domain::hlc::TimelineEvent;
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{Order, OrderDraft};
use lemonade_domain::ports::{OrderFilter, Page, PageRequest};
use lemonade_domain::report::{SalesQuery, SalesReport};
use lemonade_domain::saga::{Destination, Envelope, OrderPlan, PricedOrder};
use lemonade_domain::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The services of the distributed mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Stock,
    Orders,
    Crm,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Stock, Service::Orders, Service::Crm];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Stock => "stock",
            Service::Orders => "orders",
            Service::Crm => "crm",
        }
    }

    /// The service as a person at the counter knows it, for messages they read.
    pub fn what(self) -> &'static str {
        match self {
            Service::Stock => "the stock and product list (stock service)",
            Service::Orders => "the order book (orders service)",
            Service::Crm => "the customer list (crm service)",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call of the internal API.
pub trait Call: Serialize + DeserializeOwned + Send + Sync + 'static {
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    const SERVICE: Service;
    const PATH: &'static str;
    /// Whether the call changes something: it then must carry a step key, and the receiver
    /// stores its result under that key.
    const CHANGES: bool;
}

macro_rules! calls {
    ($($service:ident $path:literal $changes:literal $name:ident { $($field:ident : $ty:ty),* $(,)? } -> $reply:ty;)*) => {
        $(
            #[derive(Clone, Debug, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $name { $(pub $field: $ty),* }

            impl Call for $name {
                type Reply = $reply;
                const SERVICE: Service = Service::$service;
                const PATH: &'static str = concat!("/internal/v1/", $path);
                const CHANGES: bool = $changes;
            }
        )*

        /// Every call of the internal API: its service, its path, and whether it changes
        /// something (for the fault switchboard, which names calls by path).
        pub const PATHS: &[(Service, &str, bool)] = &[$((Service::$service, concat!("/internal/v1/", $path), $changes)),*];
    };
}

calls! {
    Stock "ingredients/list" false ListIngredients { page: PageRequest } -> Page<Ingredient>;
    Stock "ingredients/get" false GetIngredient { id: IngredientId } -> Ingredient;
    Stock "ingredients/create" true CreateIngredient { new: NewIngredient } -> Ingredient;
    Stock "ingredients/adjust" true AdjustStock { id: IngredientId, adjustment: StockAdjustment } -> (Ingredient, StockMove);
    Stock "moves/list" false ListMoves { ingredient: Option<IngredientId>, page: PageRequest } -> Page<StockMove>;
    Stock "products/list" false ListProducts { page: PageRequest } -> Page<Product>;
    Stock "products/get" false GetProduct { id: ProductId } -> Product;
    Stock "products/create" true CreateProduct { new: NewProduct } -> Product;
    Stock "products/update" true UpdateProduct { id: ProductId, patch: ProductPatch } -> Product;
    Stock "products/check-order" false CheckOrderProducts { products: Vec<(usize, ProductId)> } -> Vec<FieldError>;
    Stock "catalog/check" false CheckCatalog { refs: CatalogRefs } -> Vec<FieldError>;
    Stock "reservations/reserve" true Reserve { order_id: OrderId, draft: OrderDraft, lease_ms: u64 } -> PricedOrder;
    Stock "reservations/commit" true CommitReservation { order_id: OrderId } -> ();
    Stock "reservations/release" true ReleaseReservation { order_id: OrderId } -> ();
    Stock "stock/events" false StockEvents { events: Vec<Envelope>, delivered_below: Option<i64> } -> ();
    Stock "stock/status" false StockStatus {} -> ServiceStatus;
    Stock "stock/timeline" false StockTimeline { order_id: OrderId, limit: u32 } -> Vec<TimelineEvent>;

    Orders "orders/create-confirmed" true CreateOrder { plan: OrderPlan } -> Settled;
    Orders "orders/fail" true FailOrder { plan: OrderPlan, reason: String } -> Order;
    Orders "orders/cancel" true CancelOrder { order_id: OrderId } -> Settled;
    Orders "orders/get" false GetOrder { id: OrderId } -> Order;
    Orders "orders/list" false ListOrders { filter: OrderFilter, page: PageRequest } -> Page<Order>;
    Orders "orders/of-customer" false CustomerOrders { customer_id: CustomerId } -> Vec<Order>;
    Orders "reports/sales" false Sales { query: SalesQuery } -> SalesReport;
    Orders "orders/status" false OrdersStatus {} -> ServiceStatus;
    Orders "orders/timeline" false OrdersTimeline { order_id: OrderId, limit: u32 } -> Vec<TimelineEvent>;
    Orders "outbox/progress" false OutboxProgress { to: Destination, at_least: i64, hold_ms: u64 } -> i64;

    Crm "customers/list" false ListCustomers { search: Option<String>, page: PageRequest } -> Page<Customer>;
    Crm "customers/get" false GetCustomer { id: CustomerId } -> Customer;
    Crm "customers/create" true CreateCustomer { fields: CustomerFields } -> Customer;
    Crm "customers/update" true UpdateCustomer { id: CustomerId, fields: CustomerFields } -> Customer;
    Crm "customers/anonymise" true AnonymiseCustomer { id: CustomerId } -> Customer;
    Crm "customers/activity" false CustomerActivity { id: CustomerId } -> Vec<Activity>;
    Crm "crm/events" false CrmEvents { events: Vec<Envelope>, delivered_below: Option<i64> } -> ();
    Crm "crm/status" false CrmStatus {} -> ServiceStatus;
    Crm "crm/timeline" false CrmTimeline { order_id: OrderId, limit: u32 } -> Vec<TimelineEvent>;
}

/// `StockEvents` and `CrmEvents`: `delivered_below` is the relay's word, with each delivery,
/// that every event to this receiver placed below it is delivered and will never be sent
/// again (see `lemonade_store::sql::events`). The relay is the one sender of events.
///
/// `OutboxProgress`: how far the orders service's relay has delivered to `to`, as a place in
/// the outbox: every event to `to` placed at or below the answer has been committed by its
/// receiver. The service holds the answer up to `hold_ms` (at most
/// [`PROGRESS_HOLD_MS_MAX`]) for delivery to reach `at_least`, and answers where it is then.
///
/// An order after a change, with where the change's events lie in the outbox (not the events:
/// only the relay delivers them). A reader that must see their effect waits for the relay to
/// pass these marks (the coordinator's `read_your_writes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub order: Order,
    /// None in a step result stored before the marks were (it held the events themselves,
    /// which a replay now ignores): such a replay waits for nothing.
    #[serde(default)]
    pub marks: OutboxMarks,
}

/// Where the events of one change lie in the orders service's outbox: for each receiver, the
/// place of the change's last event to it, if it wrote one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMarks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm: Option<i64>,
}

impl OutboxMarks {
    /// The marks of `events`, as the outbox returned them (each with its place).
    pub fn of(events: &[Envelope]) -> Self {
        let mut marks = OutboxMarks::default();
        for e in events {
            let slot = match e.event.destination() {
                Destination::Stock => &mut marks.stock,
                Destination::Crm => &mut marks.crm,
            };
            *slot = (*slot).max(e.seq);
        }
        marks
    }

    /// The mark for `to`, if the change wrote an event to it.
    pub fn get(&self, to: Destination) -> Option<i64> {
        match to {
            Destination::Stock => self.stock,
            Destination::Crm => self.crm,
        }
    }
}

/// Longest the orders service holds an `OutboxProgress` answer.
pub const PROGRESS_HOLD_MS_MAX: u64 = 100;

/// How a service is doing, as it sees itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Work waiting on others: held reservations (stock), undelivered events (orders).
    pub waiting: u64,
}

/// The header carrying a call's step key.
pub const STEP_KEY_HEADER: &str = "idempotency-key";
/// Most events one delivery carries.
pub const EVENTS_PER_DELIVERY_MAX: usize = 256;

/// Several calls to one service in one request. Calls that concurrent callers make while
/// earlier requests to the service are still out travel together (see `transport`); the
/// service runs each exactly as if it had come alone (same handler, same step key, same
/// fingerprint of the same body) and answers each with its own status and body.
pub const BATCH_PATH: &str = "/batch";
/// The header saying how many calls a batch holds: a service's limits count calls.
pub const BATCH_CALLS_HEADER: &str = "x-lemonade-batch-calls";

/// The header of every call between services and every reply: the sender's name and its
/// hybrid logical clock stamp (`lemonade_domain::hlc::Sent`, `<name> <ms>.<counter>`). A
/// batch carries the latest stamp of its calls; its reply, one stamp for all of them.
pub const HLC_HEADER: &str = "x-lemonade-hlc";
/// Most calls in one batch.
pub const BATCH_CALLS_MAX: usize = 64;

/// One call of a batch: what would have been its path, step key header and body.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchCall {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_key: Option<String>,
    pub body: Box<serde_json::value::RawValue>,
}

/// The answer to one call of a batch: what would have been its status, `Retry-After` and body.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchAnswer {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    pub body: Box<serde_json::value::RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_a_path_of_its_own() {
        let paths = [
            ListIngredients::PATH,
            GetIngredient::PATH,
            CreateIngredient::PATH,
            AdjustStock::PATH,
            ListMoves::PATH,
            ListProducts::PATH,
            GetProduct::PATH,
            CreateProduct::PATH,
            UpdateProduct::PATH,
            Reserve::PATH,
            CommitReservation::PATH,
            ReleaseReservation::PATH,
            StockEvents::PATH,
            StockStatus::PATH,
            CreateOrder::PATH,
            FailOrder::PATH,
            CancelOrder::PATH,
            GetOrder::PATH,
            ListOrders::PATH,
            CustomerOrders::PATH,
            Sales::PATH,
            OrdersStatus::PATH,
            OutboxProgress::PATH,
            ListCustomers::PATH,
            GetCustomer::PATH,
            CreateCustomer::PATH,
            UpdateCustomer::PATH,
            AnonymiseCustomer::PATH,
            CustomerActivity::PATH,
            CrmEvents::PATH,
            CrmStatus::PATH,
        ];
        let unique: std::collections::HashSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), paths.len());
    }
}
