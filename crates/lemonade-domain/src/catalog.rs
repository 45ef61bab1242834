//! Products and their recipes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
#[cfg(test)]
use crate::error::ShopError;
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

/// What a request about a product or an ingredient names that only the shop can check (see
/// [`crate::ports::Shop::check_catalog_refs`]): a name that must be free, and the ingredients
/// of a recipe by their position in the request. Gathered by the parsers from what did parse,
/// so that a request with other errors too hears of these in the same answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRefs {
    /// The name a new or renamed product would take.
    pub product_name: Option<String>,
    /// The product being changed (its own name is free for it).
    pub product: Option<ProductId>,
    /// The name a new ingredient would take.
    pub ingredient_name: Option<String>,
    /// The recipe's ingredients, with their positions.
    pub recipe: Vec<(usize, IngredientId)>,
}

impl CatalogRefs {
    pub fn is_empty(&self) -> bool {
        self.product_name.is_none() && self.ingredient_name.is_none() && self.recipe.is_empty()
    }
}

fn parse_recipe(errors: &mut FieldErrors, refs: &mut CatalogRefs, raw: &[RawRecipeItem]) -> Option<Vec<RecipeItem>> {
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
        if let Some(id) = &id {
            if seen.insert(id.clone()) {
                refs.recipe.push((i, id.clone()));
            } else {
                errors.push(format!("recipe[{i}].ingredient_id"), "appears more than once");
            }
        }
        if let (Some(id), Some(quantity)) = (id, quantity) {
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
    /// lacks or had with the wrong JSON type. The product comes back only if `errors` is empty;
    /// what it names, in any case.
    pub fn parse(
        errors: &mut FieldErrors,
        name: Option<&str>,
        price: Option<i64>,
        recipe: Option<&[RawRecipeItem]>,
        active: Option<bool>,
    ) -> (Option<Self>, CatalogRefs) {
        let mut refs = CatalogRefs::default();
        let name = errors
            .require("name", name)
            .and_then(|n| errors.check("name", parse_name(n)));
        refs.product_name = name.clone();
        let price = errors
            .require("price", price)
            .and_then(|p| errors.check("price", Money::new(p)));
        let recipe = errors
            .require("recipe", recipe)
            .and_then(|r| parse_recipe(errors, &mut refs, r));
        let new = match (name, price, recipe) {
            (Some(name), Some(price), Some(recipe)) if errors.is_empty() => Some(NewProduct {
                name,
                price,
                recipe,
                active: active.unwrap_or(true),
            }),
            _ => None,
        };
        (new, refs)
    }
}

impl ProductPatch {
    /// Parses a partial update of `product` into `errors`; `None` leaves a field as it is
    /// (or it had the wrong JSON type, already reported). At least one field must change.
    /// The patch comes back only if `errors` is empty; what it names, in any case.
    pub fn parse(
        errors: &mut FieldErrors,
        product: &ProductId,
        name: Option<&str>,
        price: Option<i64>,
        recipe: Option<&[RawRecipeItem]>,
        active: Option<bool>,
    ) -> (Option<Self>, CatalogRefs) {
        let mut refs = CatalogRefs {
            product: Some(product.clone()),
            ..CatalogRefs::default()
        };
        let patch = ProductPatch {
            name: name.and_then(|n| errors.check("name", parse_name(n))),
            price: price.and_then(|p| errors.check("price", Money::new(p))),
            recipe: recipe.and_then(|r| parse_recipe(errors, &mut refs, r)),
            active,
        };
        refs.product_name = patch.name.clone();
        if !errors.is_empty() {
            return (None, refs);
        }
        if patch.is_empty() {
            errors.push("", "name at least one field to change");
            return (None, refs);
        }
        (Some(patch), refs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, q: i64) -> RawRecipeItem {
        RawRecipeItem::new(id, q)
    }

    fn new_product(name: &str, price: i64, recipe: &[RawRecipeItem]) -> Result<NewProduct, ShopError> {
        FieldErrors::collect(|e| NewProduct::parse(e, Some(name), Some(price), Some(recipe), None).0)
    }

    fn patch(active: Option<bool>) -> Result<ProductPatch, ShopError> {
        let id = ProductId::parse("p").unwrap();
        FieldErrors::collect(|e| ProductPatch::parse(e, &id, None, None, None, active).0)
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
        assert!(
            NewProduct::parse(&mut errors, None, Some(1), Some(&recipe), None)
                .0
                .is_none()
        );
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
    fn a_bad_product_still_names_what_the_shop_must_check() {
        let mut errors = FieldErrors::default();
        let recipe = [raw("lemon", 0), raw("bad id", 1), raw("sugar", 1)];
        let (new, refs) = NewProduct::parse(&mut errors, Some(" Lemonade "), Some(-1), Some(&recipe), None);
        assert!(new.is_none());
        assert_eq!(refs.product_name.as_deref(), Some("Lemonade"));
        let named: Vec<_> = refs.recipe.iter().map(|(i, id)| (*i, id.as_str())).collect();
        assert_eq!(named, [(0, "lemon"), (2, "sugar")]);
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
