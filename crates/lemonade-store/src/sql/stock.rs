//! Ingredients and the ledger.

use std::collections::HashMap;

use lemonade_domain::ShopError;
use lemonade_domain::ids::{IngredientId, MoveId, OrderId};

/// A move's id as clients see it: its sequence number, zero-padded so ids sort as numbers.
fn move_id(seq: i64) -> MoveId {
    MoveId::parse(&format!("{seq:016}")).expect("digits are a valid id")
}

/// The sequence number a move id (the ledger's cursor) stands for. The API refuses any other
/// cursor; one that reaches the store anyway (an internal caller) is refused the same way,
/// never read as some other place in the ledger.
fn move_seq(cursor: &str) -> Result<i64, ShopError> {
    sequence_cursor(cursor).ok_or_else(|| ShopError::validation("cursor", CURSOR_REFUSED))
}
use lemonade_domain::ports::{CURSOR_REFUSED, Page, PageRequest, sequence_cursor};
use lemonade_domain::stock::{Ingredient, MoveReason, NewIngredient, StockAdjustment, StockLevel, StockMove};
use lemonade_domain::text::name_key;
use lemonade_domain::values::Unit;

use super::{SqlResult, Stored, optional, stored_id, ts, unsigned};
use crate::conn::{Arg, Db, Row};
use crate::params;
use crate::tx::Tx;

const INGREDIENT_COLUMNS: &str = "id, name, unit, on_hand, reorder_level";

fn ingredient_from_row(r: &Row) -> crate::conn::DbResult<Ingredient> {
    let id: String = r.get(0)?;
    let unit: String = r.get(2)?;
    Ok(Ingredient::new(
        stored_id(IngredientId::parse, &id, "ingredients", &id)?,
        r.get(1)?,
        Unit::parse(&unit).stored("ingredients", &id, || format!("an unknown unit '{unit}'"))?,
        unsigned(r.get(3)?),
        unsigned(r.get(4)?),
    ))
}

pub fn get(conn: &dyn Db, id: &IngredientId) -> Result<Option<Ingredient>, ShopError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {INGREDIENT_COLUMNS} FROM ingredients WHERE id = ?1"))
        .db()?;
    optional(stmt.query_row(params![id.as_str()], ingredient_from_row))
}

pub fn require(conn: &dyn Db, id: &IngredientId) -> Result<Ingredient, ShopError> {
    get(conn, id)?.ok_or_else(|| ShopError::not_found("ingredient"))
}

pub fn list(conn: &dyn Db, page: &PageRequest) -> Result<Page<Ingredient>, ShopError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INGREDIENT_COLUMNS} FROM ingredients WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .db()?;
    let rows = stmt
        .query_map(
            params![page.cursor.as_deref().unwrap_or(""), page.limit + 1],
            ingredient_from_row,
        )
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    Ok(Page::from_rows(rows, page.limit, |i| i.id.to_string()))
}

/// Every ingredient's on-hand, for computing `can_make` of many products at once.
pub fn on_hand_all(conn: &dyn Db) -> Result<HashMap<IngredientId, u64>, ShopError> {
    let mut stmt = conn.prepare_cached("SELECT id, on_hand FROM ingredients").db()?;
    let rows = stmt
        .query_map(params![], |r| {
            let id: String = r.get(0)?;
            Ok((
                stored_id(IngredientId::parse, &id, "ingredients", &id)?,
                unsigned(r.get(1)?),
            ))
        })
        .db()?;
    rows.collect::<Result<HashMap<_, _>, _>>().db()
}

/// An ingredient's on-hand alone, or `None` when there is no such ingredient.
pub fn on_hand(conn: &dyn Db, id: &IngredientId) -> Result<Option<u64>, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT on_hand FROM ingredients WHERE id = ?1")
        .db()?;
    optional(stmt.query_row(params![id.as_str()], |r| r.get::<_, i64>(0).map(unsigned)))
}

pub fn level(conn: &dyn Db, id: &IngredientId) -> Result<Option<StockLevel>, ShopError> {
    get(conn, id).map(|i| {
        i.map(|i| StockLevel {
            name: i.name,
            unit: i.unit,
            on_hand: i.on_hand,
        })
    })
}

/// Whether an ingredient has the same name as `name`, as a person reads it
/// ([`lemonade_domain::text::name_key`]; the key's column is unique).
pub fn name_taken(conn: &dyn Db, name: &str) -> Result<bool, ShopError> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM ingredients WHERE name_key = ?1")
        .db()?;
    Ok(optional(stmt.query_row(params![name_key(name)], |_| Ok(())))?.is_some())
}

/// Creates an ingredient. Its opening stock, if any, enters through the ledger as a restock,
/// so that on-hand equals the sum of moves from the first moment.
pub fn create(tx: &Tx, id: IngredientId, new: &NewIngredient) -> Result<Ingredient, ShopError> {
    let conn = tx.conn;
    let refs = lemonade_domain::catalog::CatalogRefs {
        ingredient_name: Some(new.name.clone()),
        ..Default::default()
    };
    super::catalog::refuse_bad_refs(conn, &refs)?;
    conn.prepare_cached(
        "INSERT INTO ingredients (id, name, name_key, unit, on_hand, reorder_level, created_at) VALUES (?1, ?2, ?6, ?3, 0, ?4, ?5)",
    )
    .db()?
    .execute(params![
        id.as_str(),
        new.name,
        new.unit.as_str(),
        new.reorder_level as i64,
        tx.now.millis(),
        name_key(&new.name)
    ])
    .db()?;
    if new.on_hand > 0 {
        apply_move(
            tx,
            &id,
            new.on_hand as i64,
            MoveReason::Restock,
            None,
            Some("opening stock"),
        )?;
    }
    require(conn, &id)
}

/// A staff adjustment (restock, waste, count) of one ingredient: checked, then one move.
pub fn adjust(tx: &Tx, id: &IngredientId, adjustment: &StockAdjustment) -> Result<(Ingredient, StockMove), ShopError> {
    let ingredient = require(tx.conn, id)?;
    let (delta, reason, note) = adjustment.delta(&ingredient)?;
    let mv = apply_move(tx, id, delta, reason, None, note.as_deref())?;
    Ok((require(tx.conn, id)?, mv))
}

/// Appends one move to the ledger, in the caller's transaction; the schema's trigger applies
/// it to on-hand. A move that would take on-hand below zero is a programmer error here:
/// callers check stock first, and the schema's CHECK refuses it as a last line of defence.
pub fn apply_move(
    tx: &Tx,
    ingredient: &IngredientId,
    delta: i64,
    reason: MoveReason,
    order: Option<&OrderId>,
    note: Option<&str>,
) -> Result<StockMove, ShopError> {
    let now = tx.now;
    let seq: i64 = tx
        .conn
        .query_row(
            "INSERT INTO stock_moves (ingredient_id, delta, reason, order_id, note, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            params![
                ingredient.as_str(),
                delta,
                reason.as_str(),
                order.map(|o| o.as_str()),
                note,
                now.millis()
            ],
            |r| r.get(0),
        )
        .db()?;
    tx.cache.moved(ingredient, delta);
    Ok(StockMove {
        id: move_id(seq),
        ingredient_id: ingredient.clone(),
        delta,
        reason,
        order_id: order.cloned(),
        note: note.map(str::to_owned),
        created_at: now,
    })
}

/// Most moves one [`apply_order_moves`] writes.
pub const ORDER_MOVES_PER_STATEMENT_MAX: usize = 8;

/// Appends an order's moves, at most one per ingredient, in one statement: as
/// [`apply_move`] for each (the trigger keeps on-hand, the CHECK refuses a negative one), in
/// one round trip to PostgreSQL instead of one per ingredient. The moves are not returned.
pub fn apply_order_moves(
    tx: &Tx,
    order: &OrderId,
    reason: MoveReason,
    moves: &[(&IngredientId, i64)],
) -> Result<(), ShopError> {
    assert!(
        !moves.is_empty() && moves.len() <= ORDER_MOVES_PER_STATEMENT_MAX,
        "1 to {ORDER_MOVES_PER_STATEMENT_MAX} moves per statement, got {}",
        moves.len()
    );
    let rows = (0..moves.len())
        .map(|i| format!("(?{}, ?{}, ?1, ?2, NULL, ?3)", 4 + 2 * i, 5 + 2 * i))
        .collect::<Vec<_>>()
        .join(", ");
    let mut args = vec![
        Arg::Text(reason.as_str()),
        Arg::Text(order.as_str()),
        Arg::Int(tx.now.millis()),
    ];
    for (ingredient, delta) in moves {
        args.extend([Arg::Text(ingredient.as_str()), Arg::Int(*delta)]);
    }
    tx.conn
        .prepare_cached(&format!(
            "INSERT INTO stock_moves (ingredient_id, delta, reason, order_id, note, created_at) VALUES {rows}"
        ))
        .db()?
        .execute(&args)
        .db()?;
    for (ingredient, delta) in moves {
        tx.cache.moved(ingredient, *delta);
    }
    Ok(())
}

fn move_from_row(r: &Row) -> crate::conn::DbResult<StockMove> {
    let seq: i64 = r.get(0)?;
    let row = seq.to_string();
    let reason: String = r.get(3)?;
    let ingredient: String = r.get(1)?;
    Ok(StockMove {
        id: move_id(seq),
        ingredient_id: stored_id(IngredientId::parse, &ingredient, "stock_moves", &row)?,
        delta: r.get(2)?,
        reason: MoveReason::parse(&reason).stored("stock_moves", &row, || format!("an unknown reason '{reason}'"))?,
        order_id: r
            .get::<_, Option<String>>(4)?
            .map(|o| stored_id(OrderId::parse, &o, "stock_moves", &row))
            .transpose()?,
        note: r.get(5)?,
        created_at: ts(r.get(6)?),
    })
}

const MOVE_COLUMNS: &str = "seq, ingredient_id, delta, reason, order_id, note, created_at";

/// The ledger, newest first, optionally for one ingredient.
pub fn list_moves(
    conn: &dyn Db,
    ingredient: Option<&IngredientId>,
    page: &PageRequest,
) -> Result<Page<StockMove>, ShopError> {
    let cursor = page.cursor.as_deref().map_or(Ok(i64::MAX), move_seq)?;
    let rows = match ingredient {
        Some(ing) => conn
            .prepare_cached(&format!(
                "SELECT {MOVE_COLUMNS} FROM stock_moves WHERE ingredient_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
            ))
            .db()?
            .query_map(params![ing.as_str(), cursor, page.limit + 1], move_from_row)
            .db()?
            .collect::<Result<Vec<_>, _>>(),
        None => conn
            .prepare_cached(&format!(
                "SELECT {MOVE_COLUMNS} FROM stock_moves WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2"
            ))
            .db()?
            .query_map(params![cursor, page.limit + 1], move_from_row)
            .db()?
            .collect::<Result<Vec<_>, _>>(),
    }
    .db()?;
    Ok(Page::from_rows(rows, page.limit, |m| m.id.to_string()))
}

#[cfg(test)]
mod tests {
    use lemonade_domain::stock::Needs;
    use lemonade_domain::values::Timestamp;

    use super::*;
    use crate::migrations::{Role, migrate_role};
    use crate::sql::cache::WriterCache;
    use crate::system::UuidV7Ids;

    fn ingredient(conn: &dyn Db, cache: &WriterCache, n: usize) -> IngredientId {
        let id = IngredientId::parse(&format!("ingredient-{n:02}")).unwrap();
        let new = lemonade_domain::error::FieldErrors::collect(|e| {
            NewIngredient::parse(e, Some(&format!("Ingredient {n}")), Some("g"), Some(100), Some(0)).0
        })
        .unwrap();
        create(&Tx::new(conn, cache, &UuidV7Ids, Timestamp(1)), id.clone(), &new).unwrap();
        id
    }

    #[test]
    fn an_order_taking_more_ingredients_than_one_statement_holds_takes_each_once() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut conn, Role::Stock).unwrap();
        let cache = WriterCache::default();
        let count = ORDER_MOVES_PER_STATEMENT_MAX * 2 + 3;
        let needs: Needs = (0..count)
            .map(|n| (ingredient(&conn, &cache, n), n as u64 + 1))
            .collect();
        let order = OrderId::parse("order-1").unwrap();
        let tx = Tx::new(&conn, &cache, &UuidV7Ids, Timestamp(2));
        super::super::orders::take_stock(&tx, &order, &needs).unwrap();
        for (id, taken) in &needs {
            assert_eq!(on_hand(&conn, id).unwrap(), Some(100 - taken), "{id}");
        }
        let db: &dyn Db = &conn;
        let sales: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM stock_moves WHERE order_id = ?1 AND reason = 'sale'",
                params![order.as_str()],
                |r| r.get(0),
            )
            .db()
            .unwrap();
        assert_eq!(sales, count as i64);
    }

    #[test]
    fn an_order_that_would_take_an_ingredient_below_zero_writes_none_of_its_moves_in_that_statement() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut conn, Role::Stock).unwrap();
        let cache = WriterCache::default();
        let plenty = ingredient(&conn, &cache, 1);
        let scarce = ingredient(&conn, &cache, 2);
        let moves = [(&plenty, -10), (&scarce, -101)];
        let order = OrderId::parse("order-1").unwrap();
        let tx = Tx::new(&conn, &cache, &UuidV7Ids, Timestamp(2));
        let refused = apply_order_moves(&tx, &order, MoveReason::Sale, &moves);
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(
            on_hand(&conn, &plenty).unwrap(),
            Some(100),
            "the statement is all or nothing"
        );
        assert_eq!(on_hand(&conn, &scarce).unwrap(), Some(100));
    }
}
