//! Stock: on-hand equals the ledger and is never negative, the ledger replayed in write
//! order never went below zero, and recipe versions belong to their products.

use std::collections::HashMap;

use crate::rule::{Audit, Finding, Group, QueryRule, Rule, names, rows};

pub(crate) const GROUP: Group = Group { run, rules };

/// An ingredient with the sum of its ledger.
struct Ingredient {
    id: String,
    name: String,
    on_hand: i64,
    ledger: i64,
}

const INGREDIENT_RULES: &[Rule<Ingredient>] = &[
    Rule {
        name: "on-hand-equals-ledger",
        check: on_hand_equals_ledger,
    },
    Rule {
        name: "on-hand-never-negative",
        check: on_hand_never_negative,
    },
];

fn on_hand_equals_ledger(i: &Ingredient) -> Option<Finding> {
    (i.on_hand != i.ledger).then(|| {
        Finding::new(
            format!("ingredient {} ({})", i.name, i.id),
            format!("on_hand {}, ledger sum {}", i.on_hand, i.ledger),
        )
    })
}

fn on_hand_never_negative(i: &Ingredient) -> Option<Finding> {
    (i.on_hand < 0).then(|| {
        Finding::new(
            format!("ingredient {} ({})", i.name, i.id),
            format!("on_hand {}", i.on_hand),
        )
    })
}

/// A move of the ledger, with its ingredient's balance after it (replayed in `seq` order,
/// the order the single writer wrote them in).
struct Move {
    seq: i64,
    ingredient: String,
    balance: i64,
}

const MOVE_RULES: &[Rule<Move>] = &[Rule {
    name: "ledger-never-negative",
    check: ledger_never_negative,
}];

fn ledger_never_negative(m: &Move) -> Option<Finding> {
    (m.balance < 0).then(|| {
        Finding::new(
            format!("move {}", m.seq),
            format!("ingredient {} balance {} after it", m.ingredient, m.balance),
        )
    })
}

/// Recipe versions belong to their products, and a line was sold with its product's recipe.
const RECIPE_VERSIONS: QueryRule = QueryRule {
    name: "recipe-version-is-the-products",
    sql: "SELECT 'recipe version', v.id, v.product_id FROM recipe_versions v
              WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = v.product_id)
          UNION ALL
          SELECT 'order line of ' || l.order_id, l.recipe_version, l.product_id FROM order_lines l
              JOIN recipe_versions v ON v.id = l.recipe_version WHERE v.product_id <> l.product_id",
    finding: |r| {
        let (what, id, product) = (r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?);
        Ok(Finding::new(format!("{what} ({id})"), format!("product {product}")))
    },
};

fn read_ingredients(audit: &Audit<'_>) -> rusqlite::Result<Vec<Ingredient>> {
    rows(
        audit.conn,
        "SELECT i.id, i.name, i.on_hand, COALESCE((SELECT SUM(delta) FROM stock_moves m WHERE m.ingredient_id = i.id), 0)
         FROM ingredients i",
        |r| {
            Ok(Ingredient {
                id: r.get(0)?,
                name: r.get(1)?,
                on_hand: r.get(2)?,
                ledger: r.get(3)?,
            })
        },
    )
}

/// The ledger replayed in the order it was written.
fn replay_ledger(audit: &Audit<'_>) -> rusqlite::Result<Vec<Move>> {
    let mut balance: HashMap<String, i64> = HashMap::new();
    rows(
        audit.conn,
        "SELECT ingredient_id, delta, seq FROM stock_moves ORDER BY seq",
        |r| {
            let (ingredient, delta, seq) = (r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?);
            let b = balance.entry(ingredient.clone()).or_insert(0);
            *b += delta;
            Ok(Move {
                seq,
                ingredient,
                balance: *b,
            })
        },
    )
}

fn run(audit: &mut Audit<'_>) -> rusqlite::Result<()> {
    let ingredients = read_ingredients(audit)?;
    audit.report.ingredients = ingredients.len() as u64;
    audit.report.check_rows(&ingredients, INGREDIENT_RULES);
    let moves = replay_ledger(audit)?;
    audit.report.check_rows(&moves, MOVE_RULES);
    audit.check_query(&RECIPE_VERSIONS)
}

fn rules() -> Vec<&'static str> {
    names(INGREDIENT_RULES)
        .chain(names(MOVE_RULES))
        .chain([RECIPE_VERSIONS.name])
        .collect()
}
