//! Products and their recipes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{FieldErrors, ShopError};
use crate::ids::{IngredientId, ProductId};
use crate::stock::{CanMake, RecipeItem};
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
    /// How many more the stock allows now; `null` when the product is not limited by stock
    /// (it has no recipe).
    #[schema(value_type = Option<u64>, required = true)]
    pub can_make: CanMake,
}

/// A recipe item as a client sends it, before parsing.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRecipeItem {
    pub ingredient_id: String,
    pub quantity: i64,
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
        let id = errors.check(
            &format!("recipe[{i}].ingredient_id"),
            IngredientId::parse(&item.ingredient_id).ok_or_else(|| "not a valid id".to_owned()),
        );
        let quantity = errors.check(&format!("recipe[{i}].quantity"), Quantity::new(item.quantity));
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
    Some(items)
}

impl NewProduct {
    pub fn parse(name: &str, price: i64, recipe: &[RawRecipeItem], active: Option<bool>) -> Result<Self, ShopError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", parse_name(name));
        let price = errors.check("price", Money::new(price));
        let recipe = parse_recipe(&mut errors, recipe);
        errors.finish(|| NewProduct {
            name: name.unwrap(),
            price: price.unwrap(),
            recipe: recipe.unwrap(),
            active: active.unwrap_or(true),
        })
    }
}

impl ProductPatch {
    pub fn parse(
        name: Option<&str>,
        price: Option<i64>,
        recipe: Option<&[RawRecipeItem]>,
        active: Option<bool>,
    ) -> Result<Self, ShopError> {
        let mut errors = FieldErrors::default();
        let name = name.and_then(|n| errors.check("name", parse_name(n)));
        let price = price.and_then(|p| errors.check("price", Money::new(p)));
        let recipe = recipe.and_then(|r| parse_recipe(&mut errors, r));
        let patch = errors.finish(|| ProductPatch {
            name,
            price,
            recipe,
            active,
        })?;
        if patch.is_empty() {
            return Err(ShopError::validation("", "name at least one field to change"));
        }
        Ok(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, q: i64) -> RawRecipeItem {
        RawRecipeItem {
            ingredient_id: id.into(),
            quantity: q,
        }
    }

    #[test]
    fn new_product_reports_every_bad_field() {
        let err = NewProduct::parse("", -1, &[raw("lemon", 0), raw("bad id", 1)], None).unwrap_err();
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
    fn recipe_rejects_a_repeated_ingredient() {
        assert!(NewProduct::parse("Lemonade", 300, &[raw("lemon", 1), raw("lemon", 2)], None).is_err());
    }

    #[test]
    fn empty_patch_is_refused() {
        assert!(ProductPatch::parse(None, None, None, None).is_err());
        assert!(ProductPatch::parse(None, None, None, Some(false)).is_ok());
    }
}
