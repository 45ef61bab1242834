//! Orders: parsing what a client asks for, pricing it and working out what it takes from stock.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, FieldErrors, ShopError};
use crate::ids::{CustomerId, OrderId, ProductId};
use crate::stock::{Needs, RecipeItem, add_needs};
use crate::values::{Money, Quantity, Timestamp};

/// Most lines one order may have.
pub const ORDER_LINES_MAX: usize = 50;
/// Most units of one product on one line.
pub const LINE_QUANTITY_MAX: i64 = 1_000;

/// `pending` and `failed` occur only in the distributed mode, where placing an order is a saga
/// that can outlive a request or fail after it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Failed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Failed => "failed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => OrderStatus::Pending,
            "confirmed" => OrderStatus::Confirmed,
            "failed" => OrderStatus::Failed,
            "cancelled" => OrderStatus::Cancelled,
            _ => return None,
        })
    }
    /// Every status.
    pub const ALL: [OrderStatus; 4] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Failed,
        OrderStatus::Cancelled,
    ];
    /// Whether an order in this status keeps the points it earned ([`points_earned`]): a
    /// cancelled order gave them back and a failed one never got them, so both hold none. A
    /// pending order shows what it will earn.
    pub fn keeps_points(self) -> bool {
        !matches!(self, OrderStatus::Cancelled | OrderStatus::Failed)
    }
    /// The statuses in which an order holds no points (see [`OrderStatus::keeps_points`]), for
    /// storage that must apply the rule in a query.
    pub fn without_points() -> impl Iterator<Item = OrderStatus> {
        OrderStatus::ALL.into_iter().filter(|s| !s.keeps_points())
    }
    /// Whether an order in this status counts as a sale in the sales report: a confirmed
    /// order. A pending one is not sold yet, a failed one never was, and a cancelled one was
    /// given back.
    pub fn counts_as_sale(self) -> bool {
        matches!(self, OrderStatus::Confirmed)
    }
    /// The statuses whose orders count as sales (see [`OrderStatus::counts_as_sale`]), for
    /// storage that must apply the rule in a query.
    pub fn counting_as_sales() -> impl Iterator<Item = OrderStatus> {
        OrderStatus::ALL.into_iter().filter(|s| s.counts_as_sale())
    }
    /// Only a confirmed order can be cancelled: stock and points come back exactly once.
    pub fn check_cancel(self) -> Result<(), ShopError> {
        match self {
            OrderStatus::Confirmed => Ok(()),
            other => Err(ShopError::conflict(format!(
                "only a confirmed order can be cancelled; this one is {}",
                other.as_str()
            ))),
        }
    }
}

/// One line of an order, with the price and name as they were when it was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: u64,
    #[schema(value_type = i64)]
    pub unit_price: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub customer_id: Option<CustomerId>,
    pub lines: Vec<OrderLine>,
    #[schema(value_type = i64)]
    pub total: Money,
    /// Loyalty points this order earned (zero without a customer, or once cancelled).
    pub points: u64,
    /// Why a `failed` order failed.
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A line as the HTTP layer read it, before parsing. `None`: the field was missing or not of
/// the right JSON type, which the reader already reported.
#[derive(Clone, Debug, Default)]
pub struct RawOrderLine {
    pub product_id: Option<String>,
    pub quantity: Option<i64>,
}

impl RawOrderLine {
    pub fn new(product_id: &str, quantity: i64) -> Self {
        RawOrderLine {
            product_id: Some(product_id.to_owned()),
            quantity: Some(quantity),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// An order request, parsed: 1 to [`ORDER_LINES_MAX`] lines, each product once, each quantity
/// 1 to [`LINE_QUANTITY_MAX`]. Serialises canonically, which is what an idempotency key's
/// request fingerprint is taken over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDraft {
    pub customer_id: Option<CustomerId>,
    pub lines: Vec<DraftLine>,
}

/// What an order names that only the shop can check: its customer, and the product of each
/// line with the line's position in the request (so that an error names the line the client
/// sent, also when other lines were malformed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefs {
    pub customer_id: Option<CustomerId>,
    pub products: Vec<(usize, ProductId)>,
}

impl OrderDraft {
    /// Parses an order request. A `None` is a field the request lacks, or had with the wrong
    /// JSON type (which the caller already reported). Every bad field goes to `errors`; the draft comes back only when `errors`
    /// holds none at all. The references that did parse come back in any case, so that the shop can say
    /// in the same answer which of them it does not know.
    pub fn parse(
        errors: &mut FieldErrors,
        customer_id: Option<&str>,
        lines: Option<&[RawOrderLine]>,
    ) -> (Option<Self>, OrderRefs) {
        let mut refs = OrderRefs::default();
        let customer_id = customer_id.and_then(|c| {
            errors.check(
                "customer_id",
                CustomerId::parse(c).ok_or_else(|| "not a valid id".to_owned()),
            )
        });
        refs.customer_id = customer_id.clone();
        let lines = errors.require("lines", lines).unwrap_or_default();
        if lines.is_empty() && !errors.has("lines") {
            errors.push("lines", "an order needs at least one line");
        }
        if lines.len() > ORDER_LINES_MAX {
            errors.push("lines", format!("an order has at most {ORDER_LINES_MAX} lines"));
            return (None, refs);
        }
        let mut seen = BTreeSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let product_id = errors.require(&format!("lines[{i}].product_id"), line.product_id.as_deref());
            let quantity = errors.require(&format!("lines[{i}].quantity"), line.quantity);
            let product_id = product_id.and_then(|p| {
                errors.check(
                    &format!("lines[{i}].product_id"),
                    ProductId::parse(p).ok_or_else(|| "not a valid id".to_owned()),
                )
            });
            let quantity = quantity.and_then(|q| {
                if q > LINE_QUANTITY_MAX {
                    errors.push(
                        format!("lines[{i}].quantity"),
                        format!("must be at most {LINE_QUANTITY_MAX}"),
                    );
                    None
                } else {
                    errors.check(&format!("lines[{i}].quantity"), Quantity::new(q))
                }
            });
            if let Some(product_id) = &product_id {
                if seen.insert(product_id.clone()) {
                    refs.products.push((i, product_id.clone()));
                } else {
                    errors.push(
                        format!("lines[{i}].product_id"),
                        "this product is already on another line: put its whole quantity on one line",
                    );
                }
            }
            if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
                parsed.push(DraftLine { product_id, quantity });
            }
        }
        // No draft while anything in the request is wrong, here or in what the caller read.
        let complete = errors.is_empty() && parsed.len() == lines.len();
        let draft = complete.then_some(OrderDraft {
            customer_id,
            lines: parsed,
        });
        (draft, refs)
    }

    /// [`OrderDraft::parse`] of lines that are all there, for callers that are not an HTTP
    /// body (tests, benchmarks).
    pub fn from_lines(customer_id: Option<&str>, lines: &[RawOrderLine]) -> Result<Self, ShopError> {
        FieldErrors::collect(|errors| Self::parse(errors, customer_id, Some(lines)).0)
    }
}

/// What the store knows of a product when pricing an order.
#[derive(Clone, Debug)]
pub struct ProductForSale {
    pub name: String,
    pub price: Money,
    pub active: bool,
    pub recipe: Vec<RecipeItem>,
}

/// A priced order and what it takes from stock; nothing is written yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderPlan {
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub needs: Needs,
}

/// Prices the draft against the catalogue. Unknown or inactive products are field errors on
/// the line that names them; stock is not looked at here (see [`crate::stock::shortages`]).
pub fn plan_order(
    draft: &OrderDraft,
    product: impl Fn(&ProductId) -> Option<ProductForSale>,
) -> Result<OrderPlan, ShopError> {
    let mut errors = FieldErrors::default();
    let mut lines = Vec::with_capacity(draft.lines.len());
    let mut total = Money::ZERO;
    let mut needs = Needs::new();
    for (i, line) in draft.lines.iter().enumerate() {
        let p = match product(&line.product_id) {
            Some(p) if p.active => p,
            found => {
                errors.push(format!("lines[{i}].product_id"), not_for_sale(found.as_ref()));
                continue;
            }
        };
        let units = line.quantity.get();
        // Both factors are bounded (price ≤ 10^8, units ≤ 10^3, lines ≤ 50): no overflow.
        let amount = p.price.times(units).expect("bounded line amount");
        total = total.checked_add(amount).expect("bounded order total");
        add_needs(&mut needs, &p.recipe, units);
        lines.push(OrderLine {
            product_id: line.product_id.clone(),
            name: p.name,
            quantity: units,
            unit_price: p.price,
        });
    }
    errors.finish(|| OrderPlan { lines, total, needs })
}

/// Why a line's product cannot be sold: `found` is what the catalogue holds under its id.
fn not_for_sale(found: Option<&ProductForSale>) -> String {
    match found {
        None => "no such product".to_owned(),
        Some(p) => format!("{} is not on sale", p.name),
    }
}

/// The errors only the catalogue can find in an order's lines: products it does not have,
/// or does not sell. The same rule as [`plan_order`], for a request that also had other
/// errors and is therefore not priced.
pub fn product_errors(
    products: &[(usize, ProductId)],
    product: impl Fn(&ProductId) -> Option<ProductForSale>,
) -> Vec<FieldError> {
    products
        .iter()
        .filter_map(|(i, id)| {
            let found = product(id);
            let sellable = found.as_ref().is_some_and(|p| p.active);
            (!sellable).then(|| FieldError::new(format!("lines[{i}].product_id"), not_for_sale(found.as_ref())))
        })
        .collect()
}

/// Loyalty points an order for `customer` earns when it is placed: one per whole
/// `minor_units_per_point` (> 0, checked at start-up) of its `total`, and none for an order
/// without a customer, since nobody could spend them. The one rule both modes apply: the
/// monolith when it places an order, the coordinator when it plans one. An order keeps them
/// only while its status does ([`OrderStatus::keeps_points`]).
pub fn points_earned(customer: Option<&CustomerId>, total: Money, minor_units_per_point: u64) -> u64 {
    assert!(minor_units_per_point > 0, "the points rule is validated at start-up");
    match customer {
        Some(_) => total.minor() as u64 / minor_units_per_point,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IngredientId;

    fn line(p: &str, q: i64) -> RawOrderLine {
        RawOrderLine::new(p, q)
    }

    #[test]
    fn draft_rejects_empty_too_many_zero_absurd_and_repeated() {
        assert!(OrderDraft::from_lines(None, &[]).is_err());
        assert!(OrderDraft::from_lines(None, &vec![line("p", 1); ORDER_LINES_MAX + 1]).is_err());
        assert!(OrderDraft::from_lines(None, &[line("p", 0)]).is_err());
        assert!(OrderDraft::from_lines(None, &[line("p", LINE_QUANTITY_MAX + 1)]).is_err());
        assert!(OrderDraft::from_lines(None, &[line("p", 1), line("p", 2)]).is_err());
        assert!(OrderDraft::from_lines(Some("c1"), &[line("p", 1), line("q", 2)]).is_ok());
    }

    #[test]
    fn a_draft_reports_every_bad_line_and_still_names_what_parsed() {
        let mut errors = FieldErrors::default();
        let lines = [
            line("ok", 1),
            line("bad id", 1),
            line("big", LINE_QUANTITY_MAX + 1),
            RawOrderLine::default(),
        ];
        let (draft, refs) = OrderDraft::parse(&mut errors, Some("c/1"), Some(&lines));
        assert!(draft.is_none());
        let ShopError::ValidationFailed { errors } = ShopError::from(errors) else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "customer_id",
                "lines[1].product_id",
                "lines[2].quantity",
                "lines[3].product_id",
                "lines[3].quantity"
            ]
        );
        let named: Vec<_> = refs.products.iter().map(|(i, p)| (*i, p.as_str())).collect();
        assert_eq!(named, [(0, "ok"), (2, "big")]);
    }

    #[test]
    fn product_errors_name_the_lines_as_sent() {
        let refs = [
            (0, ProductId::parse("old").unwrap()),
            (3, ProductId::parse("gone").unwrap()),
        ];
        let errors = product_errors(&refs, |id| {
            (id.as_str() == "old").then(|| ProductForSale {
                name: "Old".into(),
                price: Money::ZERO,
                active: false,
                recipe: vec![],
            })
        });
        assert_eq!(
            errors,
            [
                FieldError::new("lines[0].product_id", "Old is not on sale"),
                FieldError::new("lines[3].product_id", "no such product"),
            ]
        );
    }

    #[test]
    fn plan_prices_lines_and_sums_needs() {
        let draft = OrderDraft::from_lines(None, &[line("lemonade", 2)]).unwrap();
        let plan = plan_order(&draft, |_| {
            Some(ProductForSale {
                name: "Lemonade".into(),
                price: Money::new(350).unwrap(),
                active: true,
                recipe: vec![RecipeItem {
                    ingredient_id: IngredientId::parse("lemon").unwrap(),
                    quantity: Quantity::new(2).unwrap(),
                }],
            })
        })
        .unwrap();
        assert_eq!(plan.total.minor(), 700);
        assert_eq!(plan.needs.values().copied().collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn plan_refuses_unknown_and_inactive_products() {
        let draft = OrderDraft::from_lines(None, &[line("gone", 1)]).unwrap();
        assert!(plan_order(&draft, |_| None).is_err());
        let inactive = plan_order(&draft, |_| {
            Some(ProductForSale {
                name: "Old".into(),
                price: Money::ZERO,
                active: false,
                recipe: vec![],
            })
        });
        assert!(inactive.is_err());
    }

    #[test]
    fn only_confirmed_orders_can_be_cancelled() {
        assert!(OrderStatus::Confirmed.check_cancel().is_ok());
        for s in [OrderStatus::Pending, OrderStatus::Failed, OrderStatus::Cancelled] {
            assert!(s.check_cancel().is_err());
        }
    }

    #[test]
    fn points_are_whole_currency_units() {
        let ada = CustomerId::parse("c-ada").unwrap();
        assert_eq!(points_earned(Some(&ada), Money::new(1099).unwrap(), 100), 10);
        assert_eq!(points_earned(Some(&ada), Money::new(99).unwrap(), 100), 0);
        assert_eq!(points_earned(Some(&ada), Money::new(1099).unwrap(), 1), 1099);
    }

    #[test]
    fn an_order_without_a_customer_earns_no_points() {
        assert_eq!(points_earned(None, Money::new(1099).unwrap(), 100), 0);
    }

    #[test]
    fn cancelled_and_failed_orders_hold_no_points() {
        assert!(OrderStatus::Pending.keeps_points());
        assert!(OrderStatus::Confirmed.keeps_points());
        assert!(!OrderStatus::Cancelled.keeps_points());
        assert!(!OrderStatus::Failed.keeps_points());
        let without: Vec<_> = OrderStatus::without_points().collect();
        assert_eq!(without, [OrderStatus::Failed, OrderStatus::Cancelled]);
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
    }
}
