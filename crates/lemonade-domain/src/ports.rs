//! The seams through which the outside world reaches the domain: time, identity, and the
//! [`Shop`] itself. Production fills them with the system clock, UUIDv7 and SQLite; a
//! simulation fills them with a virtual clock, a seeded generator and simulated stores.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogRefs, NewProduct, Product, ProductPatch};
use crate::customer::{Customer, CustomerExport, CustomerFields, Erasure};
use crate::error::FieldError;
use crate::error::{FieldErrors, ShopError};
use crate::ids::{CustomerId, IngredientId, OrderId, ProductId};
use crate::order::{Order, OrderDraft, OrderRefs, OrderStatus};
use crate::report::{SalesQuery, SalesReport};
use crate::stock::{Ingredient, NewIngredient, StockAdjustment, StockMove};
use crate::values::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Makes ids that sort by creation.
pub trait IdSource: Send + Sync + 'static {
    fn next_id(&self) -> String;
}

/// A fresh id of a kind from `ids` (`new_id(ids, OrderId::parse)`). An id source makes valid
/// ids, so a refusal is a bug of the source, not something a caller can handle.
pub fn new_id<T>(ids: &dyn IdSource, parse: fn(&str) -> Option<T>) -> T {
    parse(&ids.next_id()).expect("the id source makes valid ids")
}

/// Largest page a list returns.
pub const PAGE_LIMIT_MAX: u32 = 200;
pub const PAGE_LIMIT_DEFAULT: u32 = 50;

/// A page request: at most `limit` items after the opaque `cursor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub limit: u32,
    /// A cursor of the list's [`CursorKind`], checked by [`PageRequest::parse`].
    pub cursor: Option<String>,
}

/// Most digits of a [`CursorKind::Sequence`] cursor: every number that long fits an `i64`.
pub const SEQUENCE_CURSOR_DIGITS_MAX: usize = 18;

/// What a list's `next_cursor` holds, and so what its `cursor` accepts: each list hands out
/// one kind, and [`PageRequest::parse`] takes that kind and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorKind {
    /// The id of the last item of a page (ids sort by creation): anything of an id's shape
    /// ([`crate::ids::is_valid_id`]) is a place in such a list.
    Id,
    /// The sequence number of the last item (the ledger's move ids): 1 to
    /// [`SEQUENCE_CURSOR_DIGITS_MAX`] decimal digits.
    Sequence,
}

impl CursorKind {
    /// Whether `raw` is a cursor of this kind (the empty "first page" aside).
    pub fn accepts(self, raw: &str) -> bool {
        match self {
            CursorKind::Id => crate::ids::is_valid_id(raw),
            CursorKind::Sequence => sequence_cursor(raw).is_some(),
        }
    }
}

/// The sequence number a [`CursorKind::Sequence`] cursor stands for; `None` when `raw` is
/// not one.
pub fn sequence_cursor(raw: &str) -> Option<i64> {
    let digits = (1..=SEQUENCE_CURSOR_DIGITS_MAX).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| raw.parse().expect("at most 18 digits fit an i64"))
}

impl PageRequest {
    /// Parses `limit` (1 to [`PAGE_LIMIT_MAX`], default [`PAGE_LIMIT_DEFAULT`]) and `cursor`
    /// (a cursor of the list's `kind`; empty means the first page) into `errors`.
    pub fn parse(errors: &mut FieldErrors, limit: Option<i64>, cursor: Option<&str>, kind: CursorKind) -> Option<Self> {
        let limit = match limit {
            None => Some(PAGE_LIMIT_DEFAULT),
            Some(l) if (1..=i64::from(PAGE_LIMIT_MAX)).contains(&l) => Some(l as u32),
            Some(_) => {
                errors.push("limit", format!("must be between 1 and {PAGE_LIMIT_MAX}"));
                None
            }
        };
        let cursor = match cursor {
            None | Some("") => Some(None),
            Some(c) if kind.accepts(c) => Some(Some(c.to_owned())),
            Some(_) => {
                errors.push("cursor", CURSOR_REFUSED);
                None
            }
        };
        Some(PageRequest {
            limit: limit?,
            cursor: cursor?,
        })
    }
    pub fn first(limit: u32) -> Self {
        PageRequest { limit, cursor: None }
    }
}

/// The error of a `cursor` that is not of its list's kind.
pub const CURSOR_REFUSED: &str = "not a position in this list: an id (for the stock ledger, a sequence number)";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(cursor_of) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// A request to place an order, with its idempotency key when the client sent one.
#[derive(Clone, Debug)]
pub struct PlaceOrder {
    pub draft: OrderDraft,
    pub idempotency: Option<IdempotencyKey>,
}

/// A client's idempotency key and a fingerprint of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// Longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

impl IdempotencyKey {
    /// Whether `key` can be an idempotency key: 1 to [`IDEMPOTENCY_KEY_LEN_MAX`] printable
    /// ASCII characters.
    pub fn check(key: &str) -> Result<(), String> {
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters"
            ));
        }
        Ok(())
    }

    pub fn parse(key: &str, fingerprint: String) -> Result<Self, ShopError> {
        Self::check(key).map_err(|m| ShopError::validation("Idempotency-Key", m))?;
        Ok(IdempotencyKey {
            key: key.to_owned(),
            fingerprint,
        })
    }
}

/// The answer to placing an order: the order, or why it was refused (a refusal found while
/// doing the work is kept with the idempotency key like a success). `replayed` is true when
/// the key had already been answered and this is that first answer again.
#[derive(Clone, Debug)]
pub struct Placed {
    pub outcome: Result<Order, ShopError>,
    pub replayed: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<CustomerId>,
}

/// How one dependency of the shop is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DependencyHealth {
    pub name: String,
    pub ok: bool,
    pub detail: Option<String>,
    /// What does not work while this dependency is down.
    pub degrades: Vec<String>,
}

/// How the shop is doing, as one process sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// Everything works: this process and every dependency.
    pub ok: bool,
    /// This process itself can serve: its own database reads, its writer runs, and its
    /// background tasks run. When false, `/health` answers 503 and the process should be
    /// restarted; when only `ok` is false, the shop is degraded (another service is down),
    /// `/health` answers 200 and `dependencies` say what does not work.
    pub serving: bool,
    /// `monolith`, or the role of this process in the distributed mode.
    pub mode: String,
    pub dependencies: Vec<DependencyHealth>,
    /// This process's hybrid logical clock: its last stamp, its bound, and what it measured
    /// of each peer from the stamps it received (empty in the monolith, which has none).
    pub clock: ClockHealth,
}

/// What `/health` says of a process's hybrid logical clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClockHealth {
    /// Its last stamp, `<ms>.<counter>`.
    #[schema(value_type = String)]
    pub last: crate::hlc::Stamp,
    /// How far ahead a peer's stamp may be before it is refused.
    pub bound_ms: i64,
    /// Per peer (by name), the offset of its last stamp to this process's wall clock and the
    /// stamps seen and refused. At most 16 peers (`hlc::PEERS_MAX`).
    pub peers: std::collections::BTreeMap<String, crate::hlc::PeerOffset>,
}

impl ClockHealth {
    /// What `hlc` says now.
    pub fn of(hlc: &crate::hlc::Hlc) -> Self {
        ClockHealth {
            last: hlc.last(),
            bound_ms: hlc.bound_ms(),
            peers: hlc.peers(),
        }
    }
}

/// Everything the public API can ask of the shop. One implementation per deployment: the
/// monolith over one SQLite database, the coordinator over the services.
#[async_trait]
pub trait Shop: Send + Sync + 'static {
    async fn list_ingredients(&self, page: PageRequest) -> Result<Page<Ingredient>, ShopError>;
    async fn get_ingredient(&self, id: IngredientId) -> Result<Ingredient, ShopError>;
    async fn create_ingredient(&self, new: NewIngredient) -> Result<Ingredient, ShopError>;
    async fn adjust_stock(
        &self,
        id: IngredientId,
        adjustment: StockAdjustment,
    ) -> Result<(Ingredient, StockMove), ShopError>;
    async fn list_moves(
        &self,
        ingredient: Option<IngredientId>,
        page: PageRequest,
    ) -> Result<Page<StockMove>, ShopError>;

    async fn list_products(&self, page: PageRequest) -> Result<Page<Product>, ShopError>;
    async fn get_product(&self, id: ProductId) -> Result<Product, ShopError>;
    async fn create_product(&self, new: NewProduct) -> Result<Product, ShopError>;
    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product, ShopError>;
    /// What is wrong with the names and recipe ingredients a product or ingredient request
    /// names, as far as the shop knows (a name taken, an ingredient it does not have), without
    /// changing anything: for a request that had other errors too.
    async fn check_catalog_refs(&self, refs: CatalogRefs) -> Result<Vec<FieldError>, ShopError>;

    async fn list_customers(&self, search: Option<String>, page: PageRequest) -> Result<Page<Customer>, ShopError>;
    async fn get_customer(&self, id: CustomerId) -> Result<Customer, ShopError>;
    async fn create_customer(&self, fields: CustomerFields) -> Result<Customer, ShopError>;
    async fn update_customer(&self, id: CustomerId, fields: CustomerFields) -> Result<Customer, ShopError>;
    /// Erases a customer's personal data (see `Erasure`): done, or, in the distributed mode,
    /// recorded and finishing by itself.
    async fn anonymise_customer(&self, id: CustomerId) -> Result<Erasure, ShopError>;
    async fn export_customer(&self, id: CustomerId) -> Result<CustomerExport, ShopError>;

    async fn place_order(&self, request: PlaceOrder) -> Result<Placed, ShopError>;
    /// What is wrong with the customer and products an order names, as far as the shop knows
    /// (no such customer, an anonymised one, a product it does not have or sell), without
    /// placing anything: for a request that had other errors too, so that it hears of all of
    /// them in one answer. Changes nothing.
    async fn check_order_refs(&self, refs: OrderRefs) -> Result<Vec<FieldError>, ShopError>;
    async fn list_orders(&self, filter: OrderFilter, page: PageRequest) -> Result<Page<Order>, ShopError>;
    async fn get_order(&self, id: OrderId) -> Result<Order, ShopError>;
    async fn cancel_order(&self, id: OrderId) -> Result<Order, ShopError>;
    /// What happened to order `id`, from every process that recorded something of it, in
    /// hybrid-logical-clock order (at most [`crate::hlc::TIMELINE_EVENTS_MAX`] events), with
    /// the services that could not be asked. 404 for an order the shop does not know.
    async fn order_timeline(&self, id: OrderId) -> Result<crate::hlc::Timeline, ShopError>;

    async fn sales_report(&self, query: SalesQuery) -> Result<SalesReport, ShopError>;
    /// What the shop can do now, and which dependency is down if not: `GET /api/v1/health`.
    async fn health(&self) -> Health;
    /// Whether this process itself can still serve (its own database answers), whatever
    /// other processes do: `GET /health`, the liveness a supervisor restarts a process on.
    /// `Err` says why not. A dependency that is down is never a reason.
    async fn live(&self) -> Result<(), ShopError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor_of(raw: &str, kind: CursorKind) -> Result<Option<String>, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        match PageRequest::parse(&mut errors, None, Some(raw), kind) {
            Some(page) => Ok(page.cursor),
            None => Err(errors.into_vec()),
        }
    }

    #[test]
    fn each_cursor_kind_takes_its_own_shape_and_nothing_else() {
        let refused = || Err(vec![FieldError::new("cursor", CURSOR_REFUSED)]);
        assert_eq!(cursor_of("", CursorKind::Id), Ok(None));
        assert_eq!(cursor_of("", CursorKind::Sequence), Ok(None));
        assert_eq!(
            cursor_of("0000000000000042", CursorKind::Sequence),
            Ok(Some("0000000000000042".into()))
        );
        assert_eq!(cursor_of("zz", CursorKind::Id), Ok(Some("zz".into())));
        for bad in ["zz", "-5", "+5", "1.5", " 1", "1234567890123456789"] {
            assert_eq!(cursor_of(bad, CursorKind::Sequence), refused(), "{bad:?}");
        }
        for bad in ["not a cursor", "é", &"a".repeat(65)] {
            assert_eq!(cursor_of(bad, CursorKind::Id), refused(), "{bad:?}");
        }
        assert_eq!(sequence_cursor("999999999999999999"), Some(999_999_999_999_999_999));
        assert_eq!(sequence_cursor("0000000000000042"), Some(42));
    }
}
