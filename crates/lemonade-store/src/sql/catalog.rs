//! Products and recipes.

use std::collections::HashMap;

use lemonade_domain::FieldError;
use lemonade_domain::ShopError;
use lemonade_domain::catalog::{CatalogRefs, NewProduct, Product, ProductPatch};
use lemonade_domain::error::FieldErrors;
use lemonade_domain::ids::{IngredientId, ProductId};
use lemonade_domain::order::ProductForSale;
use lemonade_domain::ports::{Page, PageRequest};
use lemonade_domain::stock::{RecipeItem, can_make};
use lemonade_domain::text::name_key;
use lemonade_domain::values::{Money, Quantity};

use super::{SqlResult, Stored, optional, stored_id};
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

struct ProductRow {
    id: ProductId,
    name: String,
    price: Money,
    active: bool,
}

fn recipe(conn: &dyn Db, id: &ProductId) -> Result<Vec<RecipeItem>, ShopError> {
    conn.prepare_cached("SELECT ingredient_id, quantity FROM recipe_items WHERE product_id = ?1 ORDER BY ingredient_id")
        .db()?
        .query_map(params![id.as_str()], |r| {
            let ingredient: String = r.get(0)?;
            let row = format!("{}/{ingredient}", id.as_str());
            Ok(RecipeItem {
                ingredient_id: stored_id(IngredientId::parse, &ingredient, "recipe_items", &row)?,
                quantity: Quantity::new(r.get(1)?).stored("recipe_items", &row, || "a quantity out of range".into())?,
            })
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()
}

fn row(conn: &dyn Db, id: &ProductId) -> Result<Option<ProductRow>, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, price, active FROM products WHERE id = ?1")
        .db()?;
    optional(stmt.query_row(params![id.as_str()], |r| {
        Ok(ProductRow {
            id: id.clone(),
            name: r.get(0)?,
            price: Money::from_stored(r.get(1)?),
            active: r.get(2)?,
        })
    }))
}

fn assemble(conn: &dyn Db, row: ProductRow, on_hand: &HashMap<IngredientId, u64>) -> Result<Product, ShopError> {
    let recipe = recipe(conn, &row.id)?;
    let can_make = can_make(&recipe, |i| on_hand.get(i).copied().unwrap_or(0));
    Ok(Product {
        id: row.id,
        name: row.name,
        price: row.price,
        recipe,
        active: row.active,
        can_make,
    })
}

pub fn get(conn: &dyn Db, id: &ProductId) -> Result<Option<Product>, ShopError> {
    let Some(row) = row(conn, id)? else { return Ok(None) };
    let on_hand = super::stock::on_hand_all(conn)?;
    assemble(conn, row, &on_hand).map(Some)
}

pub fn require(conn: &dyn Db, id: &ProductId) -> Result<Product, ShopError> {
    get(conn, id)?.ok_or_else(|| ShopError::not_found("product"))
}

/// What pricing an order needs to know of a product, and the version of its recipe, in one
/// query.
pub fn for_sale(conn: &dyn Db, id: &ProductId) -> Result<Option<(ProductForSale, i64)>, ShopError> {
    let mut product: Option<(ProductForSale, i64)> = None;
    conn.each(
        "SELECT p.name, p.price, p.active, p.recipe_version, r.ingredient_id, r.quantity
         FROM products p LEFT JOIN recipe_items r ON r.product_id = p.id
         WHERE p.id = ?1",
        params![id.as_str()],
        &mut |r| {
            let (p, _) = match &mut product {
                Some(p) => p,
                None => product.insert((
                    ProductForSale {
                        name: r.get(0)?,
                        price: Money::from_stored(r.get(1)?),
                        active: r.get(2)?,
                        recipe: Vec::new(),
                    },
                    r.get(3)?,
                )),
            };
            if let Some(ingredient) = r.get::<_, Option<String>>(4)? {
                let row = format!("{}/{ingredient}", id.as_str());
                p.recipe.push(RecipeItem {
                    ingredient_id: stored_id(IngredientId::parse, &ingredient, "recipe_items", &row)?,
                    quantity: Quantity::new(r.get(5)?)
                        .stored("recipe_items", &row, || "a quantity out of range".into())?,
                });
            }
            Ok(())
        },
    )
    .db()?;
    Ok(product)
}

pub fn list(conn: &dyn Db, page: &PageRequest) -> Result<Page<Product>, ShopError> {
    let rows = conn
        .prepare_cached("SELECT id, name, price, active FROM products WHERE id > ?1 ORDER BY id LIMIT ?2")
        .db()?
        .query_map(params![page.cursor.as_deref().unwrap_or(""), page.limit + 1], |r| {
            let id: String = r.get(0)?;
            Ok(ProductRow {
                id: stored_id(ProductId::parse, &id, "products", &id)?,
                name: r.get(1)?,
                price: Money::from_stored(r.get(2)?),
                active: r.get(3)?,
            })
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    let on_hand = super::stock::on_hand_all(conn)?;
    let products = rows
        .into_iter()
        .map(|r| assemble(conn, r, &on_hand))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(products, page.limit, |p| p.id.to_string()))
}

/// What is wrong with the names and recipe ingredients a request names ([`CatalogRefs`]): a
/// product or ingredient name taken, ingredients that do not exist. Reads only.
pub fn check_refs(conn: &dyn Db, refs: &CatalogRefs) -> Result<Vec<FieldError>, ShopError> {
    let mut errors = FieldErrors::default();
    if let Some(name) = &refs.product_name
        && !name_free(conn, name, refs.product.as_ref())?
    {
        errors.push("name", "a product with this name exists already");
    }
    if let Some(name) = &refs.ingredient_name
        && super::stock::name_taken(conn, name)?
    {
        errors.push("name", "an ingredient with this name exists already");
    }
    for (i, id) in &refs.recipe {
        if super::stock::get(conn, id)?.is_none() {
            errors.push(format!("recipe[{i}].ingredient_id"), "no such ingredient");
        }
    }
    Ok(errors.into_vec())
}

/// [`check_refs`] as a refusal: every error at once, or nothing.
pub fn refuse_bad_refs(conn: &dyn Db, refs: &CatalogRefs) -> Result<(), ShopError> {
    let errors = check_refs(conn, refs)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ShopError::ValidationFailed { errors })
    }
}

/// What a product's name and recipe name, for [`check_refs`].
fn refs_of(name: Option<&str>, recipe: Option<&[RecipeItem]>, product: Option<&ProductId>) -> CatalogRefs {
    CatalogRefs {
        product_name: name.map(str::to_owned),
        product: product.cloned(),
        ingredient_name: None,
        recipe: recipe
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, item)| (i, item.ingredient_id.clone()))
            .collect(),
    }
}

/// Whether no other product has this name, as a person reads it
/// ([`lemonade_domain::text::name_key`]; the key's column is unique).
fn name_free(conn: &dyn Db, name: &str, except: Option<&ProductId>) -> Result<bool, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM products WHERE name_key = ?1")
        .db()?;
    let owner: Option<String> = optional(stmt.query_row(params![name_key(name)], |r| r.get(0)))?;
    match owner {
        Some(owner) if Some(owner.as_str()) != except.map(|e| e.as_str()) => Ok(false),
        _ => Ok(true),
    }
}

/// A recipe as stored in a version: `[[ingredient_id, quantity], ...]`.
pub fn recipe_json(recipe: &[RecipeItem]) -> String {
    let pairs: Vec<(&str, u64)> = recipe
        .iter()
        .map(|i| (i.ingredient_id.as_str(), i.quantity.get()))
        .collect();
    serde_json::to_string(&pairs).expect("pairs serialise")
}

/// Freezes a recipe as a new version of the product's; returns the version's id.
fn new_recipe_version(tx: &Tx, id: &ProductId, recipe: &[RecipeItem]) -> Result<i64, ShopError> {
    tx.conn
        .query_row(
            "INSERT INTO recipe_versions (product_id, recipe, created_at) VALUES (?1, ?2, ?3) RETURNING id",
            params![id.as_str(), recipe_json(recipe), tx.now.millis()],
            |r| r.get(0),
        )
        .db()
}

/// Replaces the product's recipe items (the current recipe, as the API shows it).
fn write_recipe_items(conn: &dyn Db, id: &ProductId, recipe: &[RecipeItem]) -> Result<(), ShopError> {
    conn.prepare_cached("DELETE FROM recipe_items WHERE product_id = ?1")
        .db()?
        .execute(params![id.as_str()])
        .db()?;
    let mut insert = conn
        .prepare_cached("INSERT INTO recipe_items (product_id, ingredient_id, quantity) VALUES (?1, ?2, ?3)")
        .db()?;
    for item in recipe {
        insert
            .execute(params![
                id.as_str(),
                item.ingredient_id.as_str(),
                item.quantity.get() as i64
            ])
            .db()?;
    }
    Ok(())
}

/// Creates product `id` with its first recipe version.
pub fn create(tx: &Tx, id: ProductId, new: &NewProduct) -> Result<Product, ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    refuse_bad_refs(conn, &refs_of(Some(&new.name), Some(&new.recipe), None))?;
    let version = new_recipe_version(tx, &id, &new.recipe)?;
    conn.prepare_cached(
        "INSERT INTO products (id, name, name_key, price, active, recipe_version, created_at, updated_at)
         VALUES (?1, ?2, ?7, ?3, ?4, ?5, ?6, ?6)",
    )
    .db()?
    .execute(params![
        id.as_str(),
        new.name,
        new.price.minor(),
        new.active,
        version,
        now.millis(),
        name_key(&new.name)
    ])
    .db()?;
    write_recipe_items(conn, &id, &new.recipe)?;
    require(conn, &id)
}

/// Changes a product, and the writer's cache forgets it. Orders already placed keep the
/// price and name they were sold at.
pub fn update(tx: &Tx, id: &ProductId, patch: &ProductPatch) -> Result<Product, ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    tx.cache.forget_product(id);
    let current = require(conn, id)?;
    refuse_bad_refs(conn, &refs_of(patch.name.as_deref(), patch.recipe.as_deref(), Some(id)))?;
    if let Some(recipe) = &patch.recipe {
        let version = new_recipe_version(tx, id, recipe)?;
        write_recipe_items(conn, id, recipe)?;
        conn.prepare_cached("UPDATE products SET recipe_version = ?2 WHERE id = ?1")
            .db()?
            .execute(params![id.as_str(), version])
            .db()?;
    }
    let name = patch.name.as_ref().unwrap_or(&current.name);
    conn.prepare_cached(
        "UPDATE products SET name = ?2, name_key = ?6, price = ?3, active = ?4, updated_at = ?5 WHERE id = ?1",
    )
    .db()?
    .execute(params![
        id.as_str(),
        name,
        patch.price.unwrap_or(current.price).minor(),
        patch.active.unwrap_or(current.active),
        now.millis(),
        name_key(name)
    ])
    .db()?;
    require(conn, id)
}
