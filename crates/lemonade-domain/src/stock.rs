//! Ingredients and the append-only stock ledger.
//!
//! On-hand is never edited directly: every change is a [`StockMove`] with a reason, and the
//! on-hand figure equals the sum of an ingredient's moves. The arithmetic of "what does this
//! order take" and "how many can still be made" lives here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::CatalogRefs;
use crate::error::{FieldErrors, ShopError, Shortage};
use crate::ids::{IngredientId, MoveId, OrderId};
use crate::values::{QUANTITY_MAX, Quantity, Unit, parse_name, parse_note};

/// An ingredient as clients see it. `low` is derived: on-hand at or below the reorder level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ingredient {
    pub id: IngredientId,
    pub name: String,
    pub unit: Unit,
    pub on_hand: u64,
    pub reorder_level: u64,
    pub low: bool,
}

impl Ingredient {
    pub fn new(id: IngredientId, name: String, unit: Unit, on_hand: u64, reorder_level: u64) -> Self {
        Self {
            id,
            name,
            unit,
            on_hand,
            reorder_level,
            low: on_hand <= reorder_level,
        }
    }
}

/// Why stock moved. `Sale` and `Cancel` belong to an order; the rest are staff actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MoveReason {
    Sale,
    Cancel,
    Restock,
    Waste,
    Count,
}

impl MoveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveReason::Sale => "sale",
            MoveReason::Cancel => "cancel",
            MoveReason::Restock => "restock",
            MoveReason::Waste => "waste",
            MoveReason::Count => "count",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "sale" => MoveReason::Sale,
            "cancel" => MoveReason::Cancel,
            "restock" => MoveReason::Restock,
            "waste" => MoveReason::Waste,
            "count" => MoveReason::Count,
            _ => return None,
        })
    }
}

/// One line of the ledger. `delta` is signed: sales and waste are negative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockMove {
    pub id: MoveId,
    pub ingredient_id: IngredientId,
    pub delta: i64,
    pub reason: MoveReason,
    pub order_id: Option<OrderId>,
    pub note: Option<String>,
    pub created_at: crate::values::Timestamp,
}

/// A new ingredient, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIngredient {
    pub name: String,
    pub unit: Unit,
    pub on_hand: u64,
    pub reorder_level: u64,
}

impl NewIngredient {
    /// Parses a new ingredient into `errors` (every bad field); `None` is a field the request
    /// lacks or had with the wrong JSON type. Stock levels default to 0. The ingredient comes
    /// back only if `errors` is empty; what it names (its name, which must be free), in any
    /// case.
    pub fn parse(
        errors: &mut FieldErrors,
        name: Option<&str>,
        unit: Option<&str>,
        on_hand: Option<i64>,
        reorder_level: Option<i64>,
    ) -> (Option<Self>, CatalogRefs) {
        let name = errors
            .require("name", name)
            .and_then(|n| errors.check("name", parse_name(n)));
        let refs = CatalogRefs {
            ingredient_name: name.clone(),
            ..CatalogRefs::default()
        };
        let unit = errors.require("unit", unit).and_then(|u| {
            errors.check(
                "unit",
                Unit::parse(u).ok_or_else(|| "must be one of g, ml, piece".to_owned()),
            )
        });
        let on_hand = errors.check("on_hand", parse_level(on_hand.unwrap_or(0)));
        let reorder_level = errors.check("reorder_level", parse_level(reorder_level.unwrap_or(0)));
        let new = match (name, unit, on_hand, reorder_level) {
            (Some(name), Some(unit), Some(on_hand), Some(reorder_level)) if errors.is_empty() => Some(NewIngredient {
                name,
                unit,
                on_hand,
                reorder_level,
            }),
            _ => None,
        };
        (new, refs)
    }
}

/// A stock level that may be zero: on-hand after a count, a reorder level.
pub fn parse_level(raw: i64) -> Result<u64, String> {
    if raw < 0 {
        Err("must not be negative".into())
    } else if raw as u64 > QUANTITY_MAX {
        Err(format!("must be at most {QUANTITY_MAX}"))
    } else {
        Ok(raw as u64)
    }
}

/// A staff action on one ingredient's stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockAdjustment {
    Restock {
        quantity: Quantity,
        note: Option<String>,
    },
    Waste {
        quantity: Quantity,
        note: Option<String>,
    },
    /// A physical count: on-hand becomes `on_hand` and the variance is recorded as a move.
    Count {
        on_hand: u64,
        note: Option<String>,
    },
}

impl StockAdjustment {
    /// A restock (`Waste` when `waste`) of `quantity`, parsed into `errors` with its note.
    pub fn parse_restock_or_waste(
        errors: &mut FieldErrors,
        waste: bool,
        quantity: Option<i64>,
        note: Option<&str>,
    ) -> Option<Self> {
        let quantity = errors
            .require("quantity", quantity)
            .and_then(|q| errors.check("quantity", Quantity::new(q)));
        let note = Self::parse_note(errors, note);
        let (quantity, note) = (quantity?, note?);
        let adjustment = if waste {
            StockAdjustment::Waste { quantity, note }
        } else {
            StockAdjustment::Restock { quantity, note }
        };
        errors.is_empty().then_some(adjustment)
    }

    /// A count that found `on_hand` on the shelf, parsed into `errors` with its note.
    pub fn parse_count(errors: &mut FieldErrors, on_hand: Option<i64>, note: Option<&str>) -> Option<Self> {
        let on_hand = errors
            .require("on_hand", on_hand)
            .and_then(|n| errors.check("on_hand", parse_level(n)));
        let note = Self::parse_note(errors, note);
        let (on_hand, note) = (on_hand?, note?);
        errors.is_empty().then_some(StockAdjustment::Count { on_hand, note })
    }

    /// An optional note: `Some(None)` when there is none, `None` when it is bad.
    fn parse_note(errors: &mut FieldErrors, note: Option<&str>) -> Option<Option<String>> {
        match note {
            None => Some(None),
            Some(n) => errors
                .check("note", parse_note(n))
                .map(|n| Some(n).filter(|n| !n.is_empty())),
        }
    }

    /// The signed change this adjustment makes to `on_hand`, or the shortage when it would
    /// take more than there is. A count may record a zero variance: it still says "counted".
    pub fn delta(&self, ingredient: &Ingredient) -> Result<(i64, MoveReason, Option<String>), ShopError> {
        match self {
            StockAdjustment::Restock { quantity, note } => {
                if ingredient.on_hand + quantity.get() > QUANTITY_MAX * 10 {
                    return Err(ShopError::validation(
                        "quantity",
                        "would take on-hand past the largest stock this shop can hold",
                    ));
                }
                Ok((quantity.get() as i64, MoveReason::Restock, note.clone()))
            }
            StockAdjustment::Waste { quantity, note } => {
                if quantity.get() > ingredient.on_hand {
                    return Err(ShopError::InsufficientStock {
                        shortages: vec![Shortage {
                            ingredient_id: ingredient.id.clone(),
                            name: ingredient.name.clone(),
                            unit: ingredient.unit,
                            needed: quantity.get(),
                            available: ingredient.on_hand,
                        }],
                    });
                }
                Ok((-(quantity.get() as i64), MoveReason::Waste, note.clone()))
            }
            StockAdjustment::Count { on_hand, note } => Ok((
                *on_hand as i64 - ingredient.on_hand as i64,
                MoveReason::Count,
                note.clone(),
            )),
        }
    }
}

/// One ingredient of a recipe: how much of it one unit of the product takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecipeItem {
    pub ingredient_id: IngredientId,
    #[schema(value_type = u64, minimum = 1)]
    pub quantity: Quantity,
}

/// How many units of a product the stock allows now. On the wire a number, or `null` for
/// [`CanMake::Unlimited`]: no sentinel number stands for "no limit".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Option<u64>", into = "Option<u64>")]
pub enum CanMake {
    /// This many, and not one more: what the scarcest ingredient of the recipe allows.
    Units(u64),
    /// Not limited by stock: the recipe takes nothing from it (a product without a recipe,
    /// such as a gift card).
    Unlimited,
}

impl From<Option<u64>> for CanMake {
    fn from(raw: Option<u64>) -> Self {
        raw.map_or(CanMake::Unlimited, CanMake::Units)
    }
}

impl From<CanMake> for Option<u64> {
    fn from(c: CanMake) -> Self {
        match c {
            CanMake::Units(n) => Some(n),
            CanMake::Unlimited => None,
        }
    }
}

/// How many units of a product the stock allows: the minimum over its recipe of
/// `on_hand / per_unit`, or [`CanMake::Unlimited`] for an empty recipe.
pub fn can_make(recipe: &[RecipeItem], on_hand: impl Fn(&IngredientId) -> u64) -> CanMake {
    recipe
        .iter()
        .map(|item| on_hand(&item.ingredient_id) / item.quantity.get())
        .min()
        .into()
}

/// What a set of order lines takes from stock, summed per ingredient.
pub type Needs = BTreeMap<IngredientId, u64>;

/// Adds `units` of `recipe` to `needs`. Saturates rather than overflows: the limits on lines
/// and quantities keep real orders far below `u64::MAX`, and a saturated need is simply short.
pub fn add_needs(needs: &mut Needs, recipe: &[RecipeItem], units: u64) {
    for item in recipe {
        let entry = needs.entry(item.ingredient_id.clone()).or_insert(0);
        *entry = entry.saturating_add(item.quantity.get().saturating_mul(units));
    }
}

/// What the stock holds of one ingredient, as seen when an order is checked.
#[derive(Clone, Debug)]
pub struct StockLevel {
    pub name: String,
    pub unit: Unit,
    pub on_hand: u64,
}

/// Every ingredient that `needs` wants more of than there is. Empty means the order fits.
/// `level` gives what the stock holds of each needed ingredient (every one of them: a
/// recipe names only ingredients that exist).
pub fn shortages(needs: &Needs, level: impl Fn(&IngredientId) -> StockLevel) -> Vec<Shortage> {
    needs
        .iter()
        .filter_map(|(id, &needed)| {
            let level = level(id);
            (needed > level.on_hand).then(|| Shortage {
                ingredient_id: id.clone(),
                name: level.name,
                unit: level.unit,
                needed,
                available: level.on_hand,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> IngredientId {
        IngredientId::parse(s).unwrap()
    }
    fn item(s: &str, q: i64) -> RecipeItem {
        RecipeItem {
            ingredient_id: id(s),
            quantity: Quantity::new(q).unwrap(),
        }
    }

    #[test]
    fn can_make_is_the_scarcest_ingredient() {
        let recipe = [item("lemon", 2), item("sugar", 30)];
        let stock = |i: &IngredientId| if i.as_str() == "lemon" { 9 } else { 100 };
        assert_eq!(can_make(&recipe, stock), CanMake::Units(3));
        assert_eq!(can_make(&[], stock), CanMake::Unlimited);
    }

    #[test]
    fn can_make_is_not_capped_and_no_limit_is_null_on_the_wire() {
        let big = QUANTITY_MAX * 10;
        assert_eq!(can_make(&[item("lemon", 1)], |_| big), CanMake::Units(big));
        assert_eq!(serde_json::to_string(&CanMake::Unlimited).unwrap(), "null");
        assert_eq!(serde_json::to_string(&CanMake::Units(7)).unwrap(), "7");
        assert_eq!(serde_json::from_str::<CanMake>("null").unwrap(), CanMake::Unlimited);
    }

    #[test]
    fn needs_sum_per_ingredient_across_lines() {
        let mut needs = Needs::new();
        add_needs(&mut needs, &[item("lemon", 2), item("sugar", 30)], 3);
        add_needs(&mut needs, &[item("lemon", 1)], 2);
        assert_eq!(needs[&id("lemon")], 8);
        assert_eq!(needs[&id("sugar")], 90);
    }

    #[test]
    fn shortages_name_needed_and_available() {
        let mut needs = Needs::new();
        add_needs(&mut needs, &[item("lemon", 2), item("sugar", 30)], 3);
        let short = shortages(&needs, |i| StockLevel {
            name: i.as_str().into(),
            unit: Unit::G,
            on_hand: if i.as_str() == "lemon" { 5 } else { 1000 },
        });
        assert_eq!(short.len(), 1);
        assert_eq!((short[0].needed, short[0].available), (6, 5));
    }

    #[test]
    fn waste_beyond_on_hand_is_refused_and_count_records_variance() {
        let ing = Ingredient::new(id("lemon"), "Lemons".into(), Unit::Piece, 4, 2);
        let waste = StockAdjustment::Waste {
            quantity: Quantity::new(5).unwrap(),
            note: None,
        };
        assert!(matches!(waste.delta(&ing), Err(ShopError::InsufficientStock { .. })));
        let count = StockAdjustment::Count { on_hand: 1, note: None };
        assert_eq!(count.delta(&ing).unwrap().0, -3);
    }
}
