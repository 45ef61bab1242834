//! Products and their recipes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
#[cfg(test)]
use crate::error::ShopError;
use crate::ids::{IngredientId, ProductId};
use crate::stock::RecipeItem;
use crate::values::{Money, Quantity, parse_name};

/// Most ingredients one recipe may list.
pub const RECIPE_ITEMS_MAX: usize = 20;

/// A product as clients see it. `can_make` is live: how many more the stock allows now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    #[schema(value_type = i64)]
    pub price: Money,
    pub recipe: Vec<RecipeItem>,
    pub active: bool,
    pub can_make: u64,
}

/// A recipe item as the HTTP layer read it, before parsing. `None`: missing, or of the wrong
/// JSON type (already reported).
#[derive(Clone, Debug, Default)]
pub struct RawRecipeItem {
    pub ingredient_id: Option<String>,
    pub quantity: Option<i64>,
}

impl RawRecipeItem {
    pub fn new(ingredient_id: &str, quantity: i64) -> Self {
        RawRecipeItem {
            ingredient_id: Some(ingredient_id.to_owned()),
            quantity: Some(quantity),
        }
    }
}

/// A new product, parsed. Whether each ingredient exists is checked by the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProduct {
    pub name: String,
    pub price: Money,
    pub recipe: Vec<RecipeItem>,
    pub active: bool,
}

/// A partial update of a product; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub price: Option<Money>,
    pub recipe: Option<Vec<RecipeItem>>,
    pub active: Option<bool>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.price.is_none() && self.recipe.is_none() && self.active.is_none()
    }
}

fn parse_recipe(errors: &mut FieldErrors, raw: &[RawRecipeItem]) -> Option<Vec<RecipeItem>> {
    if raw.len() > RECIPE_ITEMS_MAX {
        errors.push("recipe", format!("must have at most {RECIPE_ITEMS_MAX} ingredients"));
        return None;
    }
    let mut seen = BTreeSet::new();
    let mut items = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let id = errors.require(&format!("recipe[{i}].ingredient_id"), item.ingredient_id.as_deref());
        let quantity = errors.require(&format!("recipe[{i}].quantity"), item.quantity);
        let id = id.and_then(|id| {
            errors.check(
                &format!("recipe[{i}].ingredient_id"),
                IngredientId::parse(id).ok_or_else(|| "not a valid id".to_owned()),
            )
        });
        let quantity = quantity.and_then(|q| errors.check(&format!("recipe[{i}].quantity"), Quantity::new(q)));
        if let (Some(id), Some(quantity)) = (id, quantity) {
            if !seen.insert(id.clone()) {
                errors.push(format!("recipe[{i}].ingredient_id"), "appears more than once");
            }
            items.push(RecipeItem {
                ingredient_id: id,
                quantity,
            });
        }
    }
    (items.len() == raw.len()).then_some(items)
}

impl NewProduct {
    /// Parses a new product into `errors` (every bad field); `None` is a field the request
    /// lacks or had with the wrong JSON type. The product comes back only if `errors` is empty.
    pub fn parse(
        errors: &mut FieldErrors,
        name: Option<&str>,
        price: Option<i64>,
        recipe: Option<&[RawRecipeItem]>,
        active: Option<bool>,
    ) -> Option<Self> {
        let name = errors
            .require("name", name)
            .and_then(|n| errors.check("name", parse_name(n)));
        let price = errors
            .require("price", price)
            .and_then(|p| errors.check("price", Money::new(p)));
        let recipe = errors.require("recipe", recipe).and_then(|r| parse_recipe(errors, r));
        let (name, price, recipe) = (name?, price?, recipe?);
        errors.is_empty().then(|| NewProduct {
            name,
            price,
            recipe,
            active: active.unwrap_or(true),
        })
    }
}

impl ProductPatch {
    /// Parses a partial update into `errors`; `None` leaves a field as it is (or it had the
    /// wrong JSON type, already reported). At least one field must change.
    pub fn parse(
        errors: &mut FieldErrors,
        name: Option<&str>,
        price: Option<i64>,
        recipe: Option<&[RawRecipeItem]>,
        active: Option<bool>,
    ) -> Option<Self> {
        let patch = ProductPatch {
            name: name.and_then(|n| errors.check("name", parse_name(n))),
            price: price.and_then(|p| errors.check("price", Money::new(p))),
            recipe: recipe.and_then(|r| parse_recipe(errors, r)),
            active,
        };
        if !errors.is_empty() {
            return None;
        }
        if patch.is_empty() {
            errors.push("", "name at least one field to change");
            return None;
        }
        Some(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, q: i64) -> RawRecipeItem {
        RawRecipeItem::new(id, q)
    }

    fn new_product(name: &str, price: i64, recipe: &[RawRecipeItem]) -> Result<NewProduct, ShopError> {
        FieldErrors::collect(|e| NewProduct::parse(e, Some(name), Some(price), Some(recipe), None))
    }

    fn patch(active: Option<bool>) -> Result<ProductPatch, ShopError> {
        FieldErrors::collect(|e| ProductPatch::parse(e, None, None, None, active))
    }

    #[test]
    fn new_product_reports_every_bad_field() {
        let err = new_product("", -1, &[raw("lemon", 0), raw("bad id", 1)]).unwrap_err();
        let ShopError::ValidationFailed { errors } = err else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["name", "price", "recipe[0].quantity", "recipe[1].ingredient_id"]
        );
    }

    #[test]
    fn a_missing_field_is_required_once_and_a_missing_item_field_too() {
        let mut errors = FieldErrors::default();
        let recipe = [RawRecipeItem::default()];
        assert!(NewProduct::parse(&mut errors, None, Some(1), Some(&recipe), None).is_none());
        let ShopError::ValidationFailed { errors } = ShopError::from(errors) else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("name", "is required"),
                ("recipe[0].ingredient_id", "is required"),
                ("recipe[0].quantity", "is required")
            ]
        );
    }

    #[test]
    fn recipe_rejects_a_repeated_ingredient() {
        assert!(new_product("Lemonade", 300, &[raw("lemon", 1), raw("lemon", 2)]).is_err());
    }

    #[test]
    fn empty_patch_is_refused() {
        assert!(patch(None).is_err());
        assert!(patch(Some(false)).is_ok());
    }
}
