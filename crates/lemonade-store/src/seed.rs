//! The demo shop created on an empty database: a lemonade stand's ingredients and products.

use std::sync::Arc;

use lemonade_domain::ShopError;
use lemonade_domain::catalog::NewProduct;
use lemonade_domain::ids::{IngredientId, ProductId};
use lemonade_domain::ports::{Clock, IdSource};
use lemonade_domain::stock::{NewIngredient, RecipeItem};
use lemonade_domain::values::{Money, Quantity, Unit};

use crate::db::Database;
use crate::sql::{SqlResult, catalog, stock};

use crate::conn::Db;

const INGREDIENTS: &[(&str, Unit, u64, u64)] = &[
    ("Lemons", Unit::Piece, 120, 24),
    ("Sugar", Unit::G, 10_000, 2_000),
    ("Water", Unit::Ml, 50_000, 10_000),
    ("Ice", Unit::G, 20_000, 4_000),
    ("Tea leaves", Unit::G, 1_000, 200),
    ("Raspberry syrup", Unit::Ml, 2_000, 400),
];

/// A product: name, price in minor units, recipe as (ingredient name, quantity) pairs.
type DemoProduct = (&'static str, i64, &'static [(&'static str, i64)]);

const PRODUCTS: &[DemoProduct] = &[
    (
        "Lemonade",
        350,
        &[("Lemons", 1), ("Sugar", 30), ("Water", 250), ("Ice", 100)],
    ),
    (
        "Pink lemonade",
        400,
        &[
            ("Lemons", 1),
            ("Sugar", 25),
            ("Water", 230),
            ("Ice", 100),
            ("Raspberry syrup", 20),
        ],
    ),
    (
        "Iced tea",
        300,
        &[("Tea leaves", 5), ("Sugar", 20), ("Water", 300), ("Ice", 100)],
    ),
];

/// Whether the shop holds nothing yet. The stock service's database has no customers table:
/// there, no ingredients and no products is empty.
fn is_empty(conn: &dyn Db, has_customers: bool) -> Result<bool, ShopError> {
    let customers = if has_customers {
        " AND NOT EXISTS (SELECT 1 FROM customers)"
    } else {
        ""
    };
    conn.query_row(
        &format!("SELECT NOT EXISTS (SELECT 1 FROM ingredients) AND NOT EXISTS (SELECT 1 FROM products){customers}"),
        crate::params![],
        |r| r.get(0),
    )
    .db()
}

/// Creates the demo shop in one transaction if the database holds nothing yet.
/// Returns whether it did.
pub async fn seed_demo_if_empty(
    db: &Database,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
) -> Result<bool, ShopError> {
    let has_customers = db.role.holds_customers();
    db.write(&clock, &ids, move |tx| {
        if !is_empty(tx.conn, has_customers)? {
            return Ok(false);
        }
        let mut by_name = std::collections::HashMap::new();
        for &(name, unit, on_hand, reorder_level) in INGREDIENTS {
            let id = tx.new_id(IngredientId::parse);
            let new = NewIngredient {
                name: name.into(),
                unit,
                on_hand,
                reorder_level,
            };
            by_name.insert(name, stock::create(tx, id, &new)?.id);
        }
        for &(name, price, recipe) in PRODUCTS {
            let new = NewProduct {
                name: name.into(),
                price: Money::new(price).expect("demo prices are valid"),
                recipe: recipe
                    .iter()
                    .map(|&(ing, q)| RecipeItem {
                        ingredient_id: by_name[ing].clone(),
                        quantity: Quantity::new(q).expect("demo quantities are valid"),
                    })
                    .collect(),
                active: true,
            };
            catalog::create(tx, tx.new_id(ProductId::parse), &new)?;
        }
        Ok(true)
    })
    .await
}
