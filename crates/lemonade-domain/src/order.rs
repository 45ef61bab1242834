//! Orders: parsing what a client asks for, pricing it and working out what it takes from stock.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{FieldErrors, ShopError};
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

/// A line as a client sends it, before parsing.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOrderLine {
    pub product_id: String,
    pub quantity: i64,
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

impl OrderDraft {
    pub fn parse(customer_id: Option<&str>, lines: &[RawOrderLine]) -> Result<Self, ShopError> {
        let mut errors = FieldErrors::default();
        let customer_id = customer_id.and_then(|c| {
            errors.check(
                "customer_id",
                CustomerId::parse(c).ok_or_else(|| "not a valid id".to_owned()),
            )
        });
        if lines.is_empty() {
            errors.push("lines", "an order needs at least one line");
        }
        if lines.len() > ORDER_LINES_MAX {
            errors.push("lines", format!("an order has at most {ORDER_LINES_MAX} lines"));
            return Err(errors.finish(|| ()).unwrap_err());
        }
        let mut seen = BTreeSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let product_id = errors.check(
                &format!("lines[{i}].product_id"),
                ProductId::parse(&line.product_id).ok_or_else(|| "not a valid id".to_owned()),
            );
            let quantity = if line.quantity > LINE_QUANTITY_MAX {
                errors.push(
                    format!("lines[{i}].quantity"),
                    format!("must be at most {LINE_QUANTITY_MAX}"),
                );
                None
            } else {
                errors.check(&format!("lines[{i}].quantity"), Quantity::new(line.quantity))
            };
            if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
                if !seen.insert(product_id.clone()) {
                    errors.push(
                        format!("lines[{i}].product_id"),
                        "this product is already on another line: put its whole quantity on one line",
                    );
                }
                parsed.push(DraftLine { product_id, quantity });
            }
        }
        errors.finish(|| OrderDraft {
            customer_id,
            lines: parsed,
        })
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
        let Some(p) = product(&line.product_id) else {
            errors.push(format!("lines[{i}].product_id"), "no such product");
            continue;
        };
        if !p.active {
            errors.push(format!("lines[{i}].product_id"), format!("{} is not on sale", p.name));
            continue;
        }
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

/// Loyalty points an order earns: one per whole `minor_units_per_point` of its total.
pub fn points_earned(total: Money, minor_units_per_point: u64) -> u64 {
    assert!(minor_units_per_point > 0, "the points rule is validated at start-up");
    total.minor() as u64 / minor_units_per_point
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IngredientId;

    fn line(p: &str, q: i64) -> RawOrderLine {
        RawOrderLine {
            product_id: p.into(),
            quantity: q,
        }
    }

    #[test]
    fn draft_rejects_empty_too_many_zero_absurd_and_repeated() {
        assert!(OrderDraft::parse(None, &[]).is_err());
        assert!(OrderDraft::parse(None, &vec![line("p", 1); ORDER_LINES_MAX + 1]).is_err());
        assert!(OrderDraft::parse(None, &[line("p", 0)]).is_err());
        assert!(OrderDraft::parse(None, &[line("p", LINE_QUANTITY_MAX + 1)]).is_err());
        assert!(OrderDraft::parse(None, &[line("p", 1), line("p", 2)]).is_err());
        assert!(OrderDraft::parse(Some("c1"), &[line("p", 1), line("q", 2)]).is_ok());
    }

    #[test]
    fn plan_prices_lines_and_sums_needs() {
        let draft = OrderDraft::parse(None, &[line("lemonade", 2)]).unwrap();
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
        let draft = OrderDraft::parse(None, &[line("gone", 1)]).unwrap();
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
        assert_eq!(points_earned(Money::new(1099).unwrap(), 100), 10);
        assert_eq!(points_earned(Money::new(99).unwrap(), 100), 0);
    }
}
