//! Reservations, in the stock service: what an order of the distributed mode holds.
//!
//! A reservation takes its stock at once, as sale moves, so the ledger and on-hand stay the
//! only truth of stock and an oversell is as impossible as in the monolith. It is `held`
//! until the coordinator commits it, under a lease that runs out on this service's own clock:
//! a held reservation whose coordinator never comes back is released by [`expire`], its stock
//! given back with cancel moves. A committed reservation is released only when its order is
//! cancelled or its saga fails. Releasing an order that was never reserved leaves a released
//! tombstone, so a reserve that arrives late (the network held it) can never take stock for
//! an order already given up.

use lemonade_domain::ShopError;
use lemonade_domain::hlc::What;
use lemonade_domain::ids::OrderId;
use lemonade_domain::order::OrderDraft;
use lemonade_domain::saga::PricedOrder;
use lemonade_domain::stock::Needs;
use lemonade_domain::values::Timestamp;

use super::{SqlResult, Stored, optional, orders, stored_id};
use crate::conn::Db;
use crate::params;
use crate::tx::Tx;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Held,
    Committed,
    Released,
}

impl Status {
    fn parse(raw: &str) -> Option<Status> {
        match raw {
            "held" => Some(Status::Held),
            "committed" => Some(Status::Committed),
            "released" => Some(Status::Released),
            _ => None,
        }
    }
}

fn find(conn: &dyn Db, order: &OrderId) -> Result<Option<(Status, Needs)>, ShopError> {
    let row: Option<(String, String)> = optional(
        conn.prepare_cached("SELECT status, needs FROM reservations WHERE order_id = ?1")
            .db()?
            .query_row(params![order.as_str()], |r| Ok((r.get(0)?, r.get(1)?))),
    )?;
    row.map(|(status, needs)| {
        let needs: Needs = serde_json::from_str(&needs)
            .stored("reservations", order.as_str(), || {
                "needs that are not JSON of needs".into()
            })
            .db()?;
        let status = Status::parse(&status)
            .stored("reservations", order.as_str(), || {
                format!("an unknown status '{status}'")
            })
            .db()?;
        Ok((status, needs))
    })
    .transpose()
}

/// Prices the draft, checks stock and takes it, held for `order` until `expires_at`. An order
/// that holds a reservation already, or was given up before its stock could be reserved (a
/// released tombstone), is refused and takes nothing. (The order's own row is claimed with
/// one `INSERT ... DO NOTHING` rather than looked up first: a statement, and a round trip to
/// PostgreSQL, fewer. So a draft that cannot be priced is refused for that even then.)
pub fn reserve(tx: &Tx, order: &OrderId, draft: &OrderDraft, expires_at: Timestamp) -> Result<PricedOrder, ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    let (priced, needs) = orders::price_and_check(conn, tx.cache, draft)?;
    let claimed = conn
        .prepare_cached(
            "INSERT INTO reservations (order_id, status, needs, expires_at, created_at, updated_at)
             VALUES (?1, 'held', ?2, ?3, ?4, ?4) ON CONFLICT (order_id) DO NOTHING",
        )
        .db()?
        .execute(params![
            order.as_str(),
            serde_json::to_string(&needs).expect("needs serialise"),
            expires_at.millis(),
            now.millis()
        ])
        .db()?;
    if claimed == 0 {
        // Nothing was written: a refusal, as the writer's contract wants.
        let (status, _) = find(conn, order)?.expect("the row that conflicted is there");
        return Err(ShopError::conflict(match status {
            Status::Released => "this order was given up before its stock could be reserved",
            Status::Held | Status::Committed => "this order already holds a reservation",
        }));
    }
    orders::take_stock(tx, order, &needs)?;
    super::timeline::record(tx, What::StockReserved, Some(order), None, "")?;
    Ok(priced)
}

/// Makes a held reservation permanent. Committing twice is fine; a released one (its lease
/// ran out, or its saga gave up) cannot be committed. The common case is one `UPDATE`.
pub fn commit(tx: &Tx, order: &OrderId) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    let committed = conn
        .prepare_cached(
            "UPDATE reservations SET status = 'committed', expires_at = NULL, updated_at = ?2
             WHERE order_id = ?1 AND status = 'held'",
        )
        .db()?
        .execute(params![order.as_str(), now.millis()])
        .db()?;
    if committed == 1 {
        return super::timeline::record(tx, What::StockCommitted, Some(order), None, "");
    }
    match find(conn, order)? {
        None => Err(ShopError::not_found("reservation")),
        Some((Status::Released, _)) => Err(ShopError::conflict(
            "the reservation was released (its lease ran out) before it was committed",
        )),
        Some((Status::Committed, _)) => Ok(()),
        Some((Status::Held, _)) => unreachable!("a held reservation is committed by the update"),
    }
}

/// Gives back what the order holds. Releasing twice is fine; releasing an order that holds
/// nothing leaves a tombstone so it never will.
pub fn release(tx: &Tx, order: &OrderId) -> Result<(), ShopError> {
    release_because(tx, order, "")
}

/// [`release`], with why for the order's timeline.
fn release_because(tx: &Tx, order: &OrderId, why: &str) -> Result<(), ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    match find(conn, order)? {
        Some((Status::Released, _)) => Ok(()),
        None => {
            conn.prepare_cached(
                "INSERT INTO reservations (order_id, status, needs, expires_at, created_at, updated_at)
                 VALUES (?1, 'released', '{}', NULL, ?2, ?2)",
            )
            .db()?
            .execute(params![order.as_str(), now.millis()])
            .db()?;
            super::timeline::record(tx, What::StockReleased, Some(order), None, "nothing was held")
        }
        Some((status @ (Status::Held | Status::Committed), needs)) => {
            orders::return_stock(tx, order, &needs)?;
            conn.prepare_cached(
                "UPDATE reservations SET status = 'released', expires_at = NULL, updated_at = ?2 WHERE order_id = ?1",
            )
            .db()?
            .execute(params![order.as_str(), now.millis()])
            .db()?;
            let what = match status {
                Status::Held => What::StockReleased,
                _ => What::StockReturned,
            };
            super::timeline::record(tx, what, Some(order), None, why)
        }
    }
}

/// Releases up to `limit` held reservations whose lease ran out by `now`. Returns their orders.
pub fn expire(tx: &Tx, limit: u32) -> Result<Vec<OrderId>, ShopError> {
    let expired = tx
        .conn
        .prepare_cached(
            "SELECT order_id FROM reservations WHERE status = 'held' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        )
        .db()?
        .query_map(params![tx.now.millis(), limit], |r| {
            let id: String = r.get(0)?;
            stored_id(OrderId::parse, &id, "reservations", &id)
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    for order in &expired {
        release_because(tx, order, "its lease ran out")?;
    }
    Ok(expired)
}

/// Whether any held reservation's lease ran out by `now` (a read, so an idle service does
/// not write).
pub fn any_expired(conn: &dyn Db, now: Timestamp) -> Result<bool, ShopError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reservations WHERE status = 'held' AND expires_at <= ?1)",
        params![now.millis()],
        |r| r.get(0),
    )
    .db()
}

/// How many reservations are held right now (for health and the audit).
pub fn held(conn: &dyn Db) -> Result<u64, ShopError> {
    conn.query_row(
        "SELECT COUNT(*) FROM reservations WHERE status = 'held'",
        params![],
        |r| r.get::<_, i64>(0),
    )
    .db()
    .map(|n| n as u64)
}

/// The reservations held right now, by order id, with the end of each one's lease: at most
/// `limit` of what [`held`] counts (for the checker, which names them).
pub fn held_list(conn: &dyn Db, limit: u32) -> Result<Vec<(OrderId, Timestamp)>, ShopError> {
    conn.prepare_cached(
        "SELECT order_id, expires_at FROM reservations WHERE status = 'held' ORDER BY order_id LIMIT ?1",
    )
    .db()?
    .query_map(params![limit], |r| {
        let id: String = r.get(0)?;
        Ok((
            stored_id(OrderId::parse, &id, "reservations", &id)?,
            Timestamp(r.get(1)?),
        ))
    })
    .db()?
    .collect::<Result<Vec<_>, _>>()
    .db()
}

#[cfg(test)]
mod tests {
    use lemonade_domain::catalog::NewProduct;
    use lemonade_domain::ids::{IngredientId, ProductId};
    use lemonade_domain::order::DraftLine;
    use lemonade_domain::stock::{NewIngredient, RecipeItem};
    use lemonade_domain::values::{Money, Quantity};

    use super::*;
    use crate::migrations::{Role, migrate_role};
    use crate::sql::cache::WriterCache;
    use crate::sql::{catalog, stock};
    use crate::system::UuidV7Ids;

    const LEASE_ENDS: Timestamp = Timestamp(60_000);

    struct Stock {
        conn: rusqlite::Connection,
        cache: WriterCache,
        lemons: IngredientId,
        draft: OrderDraft,
    }

    impl Stock {
        /// 10 lemons, and a lemonade that takes 2.
        fn new() -> Stock {
            let mut conn = rusqlite::Connection::open_in_memory().unwrap();
            migrate_role(&mut conn, Role::Stock).unwrap();
            let cache = WriterCache::default();
            let lemons = IngredientId::parse("lemons").unwrap();
            let new = lemonade_domain::error::FieldErrors::collect(|e| {
                NewIngredient::parse(e, Some("Lemons"), Some("piece"), Some(10), Some(0)).0
            })
            .unwrap();
            let tx = Tx::new(&conn, &cache, &UuidV7Ids, Timestamp(1));
            stock::create(&tx, lemons.clone(), &new).unwrap();
            let product = ProductId::parse("lemonade").unwrap();
            let recipe = vec![RecipeItem {
                ingredient_id: lemons.clone(),
                quantity: Quantity::new(2).unwrap(),
            }];
            let new = NewProduct {
                name: "Lemonade".into(),
                price: Money::from_stored(350),
                recipe,
                active: true,
            };
            catalog::create(&tx, product.clone(), &new).unwrap();
            let draft = OrderDraft {
                customer_id: None,
                lines: vec![DraftLine {
                    product_id: product,
                    quantity: Quantity::new(1).unwrap(),
                }],
            };
            Stock {
                conn,
                cache,
                lemons,
                draft,
            }
        }

        /// A writer job's context at `now`.
        fn at(&self, now: i64) -> Tx<'_> {
            Tx::new(&self.conn, &self.cache, &UuidV7Ids, Timestamp(now))
        }

        fn reserve(&self, order: &OrderId) -> Result<PricedOrder, ShopError> {
            reserve(&self.at(2), order, &self.draft, LEASE_ENDS)
        }

        fn lemons(&self) -> u64 {
            stock::on_hand(&self.conn, &self.lemons).unwrap().unwrap()
        }
    }

    fn order(id: &str) -> OrderId {
        OrderId::parse(id).unwrap()
    }

    #[test]
    fn a_reservation_takes_its_stock_and_committing_it_twice_keeps_it() {
        let shop = Stock::new();
        let o = order("order-1");
        shop.reserve(&o).unwrap();
        assert_eq!(shop.lemons(), 8);
        commit(&shop.at(3), &o).unwrap();
        commit(&shop.at(4), &o).unwrap();
        assert_eq!(find(&shop.conn, &o).unwrap().unwrap().0, Status::Committed);
        assert_eq!(shop.lemons(), 8);
    }

    #[test]
    fn reserving_an_order_twice_is_refused_and_takes_its_stock_once() {
        let shop = Stock::new();
        let o = order("order-1");
        shop.reserve(&o).unwrap();
        let again = shop.reserve(&o);
        assert!(matches!(again, Err(ShopError::Conflict { .. })), "{again:?}");
        assert_eq!(shop.lemons(), 8);
    }

    #[test]
    fn a_reserve_arriving_after_its_order_was_given_up_takes_nothing() {
        let shop = Stock::new();
        let o = order("order-1");
        release(&shop.at(2), &o).unwrap();
        let late = shop.reserve(&o);
        assert!(matches!(late, Err(ShopError::Conflict { .. })), "{late:?}");
        assert_eq!(shop.lemons(), 10);
        assert_eq!(find(&shop.conn, &o).unwrap().unwrap().0, Status::Released);
    }

    #[test]
    fn a_released_reservation_gives_its_stock_back_and_cannot_be_committed() {
        let shop = Stock::new();
        let o = order("order-1");
        shop.reserve(&o).unwrap();
        release(&shop.at(3), &o).unwrap();
        assert_eq!(shop.lemons(), 10);
        let commit = commit(&shop.at(4), &o);
        assert!(matches!(commit, Err(ShopError::Conflict { .. })), "{commit:?}");
        assert_eq!(shop.lemons(), 10);
    }

    #[test]
    fn committing_what_was_never_reserved_is_not_found() {
        let shop = Stock::new();
        let commit = commit(&shop.at(3), &order("order-1"));
        assert!(matches!(commit, Err(ShopError::NotFound { .. })), "{commit:?}");
    }

    #[test]
    fn a_reserve_that_does_not_fit_writes_nothing() {
        let shop = Stock::new();
        for n in 0..5 {
            shop.reserve(&order(&format!("order-{n}"))).unwrap();
        }
        let changes = shop.conn.total_changes();
        let short = shop.reserve(&order("order-5"));
        assert!(matches!(short, Err(ShopError::InsufficientStock { .. })), "{short:?}");
        assert_eq!(shop.conn.total_changes(), changes);
        assert!(find(&shop.conn, &order("order-5")).unwrap().is_none());
    }
}
