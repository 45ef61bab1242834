//! Orders: placing one (all of it in the caller's transaction), cancelling, reading, and the
//! aggregates the sales report needs.

use std::collections::HashMap;
use std::sync::LazyLock;

use lemonade_domain::customer::ActivityKind;
use lemonade_domain::ids::{CustomerId, IngredientId, OrderId, ProductId};
use lemonade_domain::order::{
    self as order, Order, OrderDraft, OrderLine, OrderRefs, OrderStatus, plan_order, points_earned,
};
use lemonade_domain::ports::{OrderFilter, Page, PageRequest};
use lemonade_domain::report::{DayTotals, ProductSales, SalesQuery};
use lemonade_domain::saga::{Envelope, Event, OrderPlan, PricedOrder};
use lemonade_domain::stock::{MoveReason, Needs, shortages};
use lemonade_domain::values::{Money, Timestamp};
use lemonade_domain::{FieldError, ShopError};

use super::cache::WriterCache;
use super::{SqlResult, Stored, crm, events, optional, stock, stored_id, timeline, ts, unsigned};
use crate::conn::{Db, Row};
use crate::params;
use crate::tx::Tx;
use lemonade_domain::hlc::What;

/// Places an order: checks the customer, prices the lines, checks stock, then writes the order,
/// its lines, one sale move per ingredient, the points and the CRM activity. Every refusal
/// comes before the first write (the writer's contract); nothing here commits.
pub fn place(tx: &Tx, draft: &OrderDraft, minor_units_per_point: u64) -> Result<Order, ShopError> {
    let (conn, now) = (tx.conn, tx.now);
    // An unknown customer and unknown products are reported together; stock only matters
    // for a request that names nothing wrong.
    let refused_customer = match &draft.customer_id {
        Some(customer_id) => crm::check_can_order(conn, customer_id).err(),
        None => None,
    };
    let priced = price_and_check(conn, tx.cache, draft);
    if let Some(refusal) = refused_customer {
        return Err(match (refusal, priced) {
            (ShopError::ValidationFailed { mut errors }, Err(ShopError::ValidationFailed { errors: more })) => {
                errors.extend(more);
                ShopError::ValidationFailed { errors }
            }
            (refusal, _) => refusal,
        });
    }
    let (priced, needs) = priced?;
    let order_id = tx.new_id(OrderId::parse);
    let points = points_earned(draft.customer_id.as_ref(), priced.total, minor_units_per_point);
    let order = Order {
        id: order_id,
        status: OrderStatus::Confirmed,
        customer_id: draft.customer_id.clone(),
        lines: priced.lines,
        total: priced.total,
        points,
        failure_reason: None,
        created_at: now,
        updated_at: now,
    };
    insert(conn, &order, &priced.recipe_versions)?;
    timeline::record(tx, What::OrderPlaced, Some(&order.id), draft.customer_id.as_ref(), "")?;
    take_stock(tx, &order.id, &needs)?;
    if let Some(customer_id) = &draft.customer_id {
        crm::order_points(tx, customer_id, &order.id, ActivityKind::OrderPlaced, points)?;
    }
    Ok(order)
}

/// What is wrong with the customer and products an order names ([`OrderRefs`]); reads only.
pub fn check_refs(conn: &dyn Db, refs: &OrderRefs) -> Result<Vec<FieldError>, ShopError> {
    let mut errors = match &refs.customer_id {
        None => Vec::new(),
        Some(customer_id) => match crm::check_can_order(conn, customer_id) {
            Ok(()) => Vec::new(),
            Err(ShopError::ValidationFailed { errors }) => errors,
            Err(e) => return Err(e),
        },
    };
    errors.extend(product_errors(conn, &refs.products)?);
    Ok(errors)
}

/// The lines (by their position in the request) whose product the catalogue does not have
/// or does not sell; reads only.
pub fn product_errors(conn: &dyn Db, products: &[(usize, ProductId)]) -> Result<Vec<FieldError>, ShopError> {
    let mut found = HashMap::with_capacity(products.len());
    for (_, id) in products {
        if let Some((p, _)) = super::catalog::for_sale(conn, id)? {
            found.insert(id.clone(), p);
        }
    }
    Ok(order::product_errors(products, |id| found.get(id).cloned()))
}

/// Prices a draft against the catalogue and checks that stock covers it; writes nothing.
/// Returns the priced order and what it needs from stock (for the caller that takes it).
/// Unknown or inactive products are validation errors, missing stock is
/// `InsufficientStock` naming every short ingredient.
pub fn price_and_check(
    conn: &dyn Db,
    cache: &WriterCache,
    draft: &OrderDraft,
) -> Result<(PricedOrder, Needs), ShopError> {
    let mut products = HashMap::with_capacity(draft.lines.len());
    for line in &draft.lines {
        if let Some(p) = cache.product(conn, &line.product_id)? {
            products.insert(line.product_id.clone(), p);
        }
    }
    let plan = plan_order(draft, |id| products.get(id).map(|(p, _)| p).cloned())?;
    // The common case, everything in stock, reads one number per ingredient; names and units
    // are read only to explain a shortage.
    let mut fits = true;
    for (id, &needed) in &plan.needs {
        fits &= cache.on_hand(conn, id)?.is_some_and(|on_hand| on_hand >= needed);
    }
    if !fits {
        let mut levels = HashMap::with_capacity(plan.needs.len());
        for id in plan.needs.keys() {
            // A recipe's ingredients exist (a foreign key): a missing one is a broken
            // database, not an ingredient with no name and no stock.
            let level = stock::level(conn, id)?.ok_or_else(|| {
                tracing::error!(ingredient = %id, "a recipe names an ingredient that is not in the database");
                ShopError::unavailable("a recipe names an ingredient the database does not hold")
            })?;
            levels.insert(id.clone(), level);
        }
        let short = shortages(&plan.needs, |id| levels[id].clone());
        assert!(!short.is_empty(), "an order that does not fit has a shortage");
        return Err(ShopError::InsufficientStock { shortages: short });
    }
    let recipe_versions = plan.lines.iter().map(|l| products[&l.product_id].1).collect();
    let priced = PricedOrder {
        lines: plan.lines,
        total: plan.total,
        recipe_versions,
    };
    Ok((priced, plan.needs))
}

/// Takes what an order needs off stock: one sale move per ingredient. The caller checked
/// that it fits.
pub fn take_stock(tx: &Tx, order: &OrderId, needs: &Needs) -> Result<(), ShopError> {
    move_for_order(tx, order, needs, MoveReason::Sale)
}

/// Gives back what an order took: one cancel move per ingredient.
pub fn return_stock(tx: &Tx, order: &OrderId, taken: &Needs) -> Result<(), ShopError> {
    move_for_order(tx, order, taken, MoveReason::Cancel)
}

fn move_for_order(tx: &Tx, order: &OrderId, amounts: &Needs, reason: MoveReason) -> Result<(), ShopError> {
    let sign = if reason == MoveReason::Sale { -1 } else { 1 };
    let moves: Vec<_> = amounts
        .iter()
        .map(|(ingredient, &amount)| (ingredient, sign * amount as i64))
        .collect();
    for some in moves.chunks(stock::ORDER_MOVES_PER_STATEMENT_MAX) {
        stock::apply_order_moves(tx, order, reason, some)?;
    }
    Ok(())
}

/// Writes an order and its lines (`recipe_versions[i]` is the recipe line `i` was sold with).
pub fn insert(conn: &dyn Db, order: &Order, recipe_versions: &[i64]) -> Result<(), ShopError> {
    assert_eq!(order.lines.len(), recipe_versions.len(), "one recipe version per line");
    conn.prepare_cached(
        "INSERT INTO orders (id, status, customer_id, total, points, failure_reason, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        order.id.as_str(),
        order.status.as_str(),
        order.customer_id.as_ref().map(|c| c.as_str()),
        order.total.minor(),
        order.points as i64,
        order.failure_reason,
        order.created_at.millis(),
        order.updated_at.millis()
    ])
    .db()?;
    let mut insert_line = conn
        .prepare_cached(
            "INSERT INTO order_lines (order_id, line_no, product_id, name, quantity, unit_price, recipe_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .db()?;
    for (no, (line, version)) in order.lines.iter().zip(recipe_versions).enumerate() {
        insert_line
            .execute(params![
                order.id.as_str(),
                no as i64,
                line.product_id.as_str(),
                line.name,
                line.quantity as i64,
                line.unit_price.minor(),
                version
            ])
            .db()?;
    }
    Ok(())
}

/// Moves an order to `status` (with `failure_reason` for a failed one) and returns it.
pub fn set_status(
    tx: &Tx,
    id: &OrderId,
    status: OrderStatus,
    failure_reason: Option<&str>,
) -> Result<Order, ShopError> {
    set_status_at(tx.conn, id, status, failure_reason, tx.now)
}

/// [`set_status`] stamped `at` rather than now (a pending order confirmed as placed keeps
/// `updated_at = created_at`).
fn set_status_at(
    conn: &dyn Db,
    id: &OrderId,
    status: OrderStatus,
    failure_reason: Option<&str>,
    at: Timestamp,
) -> Result<Order, ShopError> {
    // The points an order keeps are the domain's rule (`OrderStatus::keeps_points`); the
    // statement applies it to the new status in the row's own update.
    static SET_STATUS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE orders SET status = ?2, points = CASE WHEN {} THEN 0 ELSE points END,
             failure_reason = ?3, updated_at = ?4 WHERE id = ?1",
            super::status_in("?2", OrderStatus::without_points())
        )
    });
    conn.prepare_cached(&SET_STATUS)
        .db()?
        .execute(params![id.as_str(), status.as_str(), failure_reason, at.millis()])
        .db()?;
    require(conn, id)
}

/// What an order took from stock, from the recipe snapshots of its lines: exactly its sale
/// moves (the audit proves they agree), read without an index on the ledger by order.
pub fn needs_of(conn: &dyn Db, id: &OrderId) -> Result<Needs, ShopError> {
    let mut needs = Needs::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.quantity, v.recipe FROM order_lines l JOIN recipe_versions v ON v.id = l.recipe_version
             WHERE l.order_id = ?1",
        )
        .db()?;
    let lines = stmt
        .query_map(params![id.as_str()], |r| {
            Ok((unsigned(r.get(0)?), r.get::<_, String>(1)?))
        })
        .db()?;
    for line in lines {
        let (quantity, recipe) = line.db()?;
        let items: Vec<(String, u64)> = serde_json::from_str(&recipe).map_err(|e| {
            tracing::error!(error = %e, order = %id, "unreadable recipe snapshot");
            ShopError::unavailable("a stored order cannot be read back")
        })?;
        for (ingredient, per_unit) in items {
            let ingredient = stored_id(IngredientId::parse, &ingredient, "recipe_versions", id.as_str()).db()?;
            *needs.entry(ingredient).or_insert(0) += per_unit * quantity;
        }
    }
    Ok(needs)
}

/// Cancels a confirmed order: what it took goes back as cancel moves, the points it earned
/// are taken back, and the order keeps its lines and total for the books.
pub fn cancel(tx: &Tx, id: &OrderId) -> Result<Order, ShopError> {
    let order = require(tx.conn, id)?;
    order.status.check_cancel()?;
    timeline::record(tx, What::OrderCancelled, Some(id), order.customer_id.as_ref(), "")?;
    return_stock(tx, id, &needs_of(tx.conn, id)?)?;
    timeline::record(tx, What::StockReturned, Some(id), None, "")?;
    if let Some(customer_id) = &order.customer_id {
        crm::order_points(tx, customer_id, id, ActivityKind::OrderCancelled, order.points)?;
    }
    set_status(tx, id, OrderStatus::Cancelled, None)
}

const COLUMNS: &str = "id, status, customer_id, total, points, failure_reason, created_at, updated_at";

fn from_row(r: &Row) -> crate::conn::DbResult<Order> {
    let id: String = r.get(0)?;
    let status: String = r.get(1)?;
    Ok(Order {
        id: stored_id(OrderId::parse, &id, "orders", &id)?,
        status: OrderStatus::parse(&status).stored("orders", &id, || format!("an unknown status '{status}'"))?,
        customer_id: r
            .get::<_, Option<String>>(2)?
            .map(|c| stored_id(CustomerId::parse, &c, "orders", &id))
            .transpose()?,
        lines: Vec::new(),
        total: Money::from_stored(r.get(3)?),
        points: unsigned(r.get(4)?),
        failure_reason: r.get(5)?,
        created_at: ts(r.get(6)?),
        updated_at: ts(r.get(7)?),
    })
}

fn with_lines(conn: &dyn Db, mut order: Order) -> Result<Order, ShopError> {
    order.lines = conn
        .prepare_cached(
            "SELECT product_id, name, quantity, unit_price FROM order_lines WHERE order_id = ?1 ORDER BY line_no",
        )
        .db()?
        .query_map(params![order.id.as_str()], |r| {
            let product: String = r.get(0)?;
            Ok(OrderLine {
                product_id: stored_id(ProductId::parse, &product, "order_lines", order.id.as_str())?,
                name: r.get(1)?,
                quantity: unsigned(r.get(2)?),
                unit_price: Money::from_stored(r.get(3)?),
            })
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    Ok(order)
}

pub fn get(conn: &dyn Db, id: &OrderId) -> Result<Option<Order>, ShopError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?1"))
        .db()?;
    match optional(stmt.query_row(params![id.as_str()], from_row))? {
        Some(order) => with_lines(conn, order).map(Some),
        None => Ok(None),
    }
}

pub fn require(conn: &dyn Db, id: &OrderId) -> Result<Order, ShopError> {
    get(conn, id)?.ok_or_else(|| ShopError::not_found("order"))
}

/// Orders newest first, optionally of one status and/or one customer.
pub fn list(conn: &dyn Db, filter: &OrderFilter, page: &PageRequest) -> Result<Page<Order>, ShopError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM orders
             WHERE id < ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND (CAST(?3 AS TEXT) IS NULL OR customer_id = ?3)
             ORDER BY id DESC LIMIT ?4"
        ))
        .db()?
        .query_map(params![
                page.cursor.as_deref().unwrap_or("~"),
                filter.status.map(|s| s.as_str()),
                filter.customer_id.as_ref().map(|c| c.as_str()),
                page.limit + 1
            ],
            from_row,
        )
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    let orders = rows
        .into_iter()
        .map(|o| with_lines(conn, o))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(orders, page.limit, |o| o.id.to_string()))
}

/// Every order of one customer, oldest first (for an export).
pub fn all_of_customer(conn: &dyn Db, customer: &CustomerId) -> Result<Vec<Order>, ShopError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM orders WHERE customer_id = ?1 ORDER BY id"
        ))
        .db()?
        .query_map(params![customer.as_str()], from_row)
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    rows.into_iter().map(|o| with_lines(conn, o)).collect()
}

/// Per-day and (when asked) per-product totals of the orders in the query's range that count
/// as sales (the domain's rule, `OrderStatus::counts_as_sale`).
pub fn sales(conn: &dyn Db, query: &SalesQuery) -> Result<(Vec<DayTotals>, Vec<ProductSales>), ShopError> {
    static BY_DAY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT (o.created_at + ?3) / 86400000 AS day, COUNT(DISTINCT o.id), CAST(SUM(l.quantity) AS BIGINT), CAST(SUM(l.quantity * l.unit_price) AS BIGINT)
             FROM orders o JOIN order_lines l ON l.order_id = o.id
             WHERE {} AND o.created_at >= ?1 AND o.created_at < ?2
             GROUP BY day",
            super::status_in("o.status", OrderStatus::counting_as_sales())
        )
    });
    // A product is named as it was in its latest sale of the range (the newest order, ties
    // broken by id, which sorts by creation), never by an aggregate of past names: the same
    // answer in the cluster, where the orders service computes it from the lines it holds.
    static BY_PRODUCT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT product_id, MAX(CASE WHEN recency = 1 THEN name END), COUNT(DISTINCT order_id), CAST(SUM(quantity) AS BIGINT), CAST(SUM(amount) AS BIGINT)
             FROM (SELECT l.product_id, l.name, o.id AS order_id, l.quantity, l.quantity * l.unit_price AS amount,
                          ROW_NUMBER() OVER (PARTITION BY l.product_id ORDER BY o.created_at DESC, o.id DESC, l.line_no DESC) AS recency
                   FROM orders o JOIN order_lines l ON l.order_id = o.id
                   WHERE {} AND o.created_at >= ?1 AND o.created_at < ?2) sold
             GROUP BY product_id",
            super::status_in("o.status", OrderStatus::counting_as_sales())
        )
    });
    let (from_ms, to_ms) = query.range_ms();
    let offset_ms = i64::from(query.utc_offset_minutes) * 60_000;
    let days = conn
        .prepare_cached(&BY_DAY)
        .db()?
        .query_map(params![from_ms, to_ms, offset_ms], |r| {
            Ok(DayTotals {
                day: r.get(0)?,
                orders: unsigned(r.get(1)?),
                items: unsigned(r.get(2)?),
                revenue: r.get(3)?,
            })
        })
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    let products = match query.by {
        lemonade_domain::report::ReportBy::Day => Vec::new(),
        lemonade_domain::report::ReportBy::Product => conn
            .prepare_cached(&BY_PRODUCT)
            .db()?
            .query_map(params![from_ms, to_ms], |r| {
                let product: String = r.get(0)?;
                Ok(ProductSales {
                    product_id: stored_id(ProductId::parse, &product, "order_lines", &product)?,
                    name: r.get(1)?,
                    orders: unsigned(r.get(2)?),
                    quantity: unsigned(r.get(3)?),
                    revenue: r.get(4)?,
                })
            })
            .db()?
            .collect::<Result<Vec<_>, _>>()
            .db()?,
    };
    Ok((days, products))
}

/// The orders service's part of a saga, once the order's stock is committed: the order,
/// confirmed, and in the same transaction the news for CRM in the outbox; returns the order
/// with the events. Placing is the end of the order's placement, so it keeps `updated_at =
/// created_at`, as a placed order of the monolith has. Placing it again returns it (and no
/// new events); a failed order cannot be placed. A pending one (created by a saga of an
/// earlier version, which created orders before confirming them) is confirmed.
pub fn place_confirmed(tx: &Tx, plan: &OrderPlan) -> Result<(Order, Vec<Envelope>), ShopError> {
    let conn = tx.conn;
    let order = match get(conn, &plan.order_id)? {
        Some(order) => match order.status {
            OrderStatus::Confirmed | OrderStatus::Cancelled => return Ok((order, Vec::new())),
            OrderStatus::Failed => return Err(ShopError::conflict("this order failed and cannot be confirmed")),
            OrderStatus::Pending => set_status_at(conn, &order.id, OrderStatus::Confirmed, None, order.created_at)?,
        },
        None => {
            let order = plan.order(OrderStatus::Confirmed, plan.created_at);
            insert(conn, &order, &plan.priced.recipe_versions)?;
            order
        }
    };
    timeline::record(
        tx,
        What::OrderConfirmed,
        Some(&order.id),
        order.customer_id.as_ref(),
        "",
    )?;
    let mut sent = Vec::new();
    if let Some(customer_id) = &order.customer_id {
        let placed = Event::OrderPlaced {
            order_id: order.id.clone(),
            customer_id: customer_id.clone(),
            points: order.points,
        };
        sent.push(events::push(tx, placed)?);
    }
    Ok((order, sent))
}

/// Marks an order of a saga that gave up as failed, with why; creates it failed when the
/// saga gave up before creating it. A confirmed order cannot fail.
pub fn fail(tx: &Tx, plan: &OrderPlan, reason: &str) -> Result<Order, ShopError> {
    let existing = get(tx.conn, &plan.order_id)?;
    match existing.as_ref().map(|o| o.status) {
        Some(OrderStatus::Failed) => return Ok(existing.expect("just read")),
        Some(OrderStatus::Confirmed | OrderStatus::Cancelled) => {
            return Err(ShopError::conflict("this order was confirmed and cannot fail"));
        }
        Some(OrderStatus::Pending) | None => {}
    }
    timeline::record(
        tx,
        What::OrderFailed,
        Some(&plan.order_id),
        plan.customer_id.as_ref(),
        reason,
    )?;
    match existing {
        Some(order) => set_status(tx, &order.id, OrderStatus::Failed, Some(reason)),
        None => {
            let mut order = plan.order(OrderStatus::Failed, tx.now);
            order.failure_reason = Some(reason.to_owned());
            insert(tx.conn, &order, &plan.priced.recipe_versions)?;
            Ok(order)
        }
    }
}

/// Cancels a confirmed order of the distributed mode: the order changes here, and the outbox
/// carries "give the stock back" to the stock service and "take the points back" to CRM,
/// committed in the same transaction. Returns the order with the events.
pub fn cancel_with_events(tx: &Tx, id: &OrderId) -> Result<(Order, Vec<Envelope>), ShopError> {
    let order = require(tx.conn, id)?;
    order.status.check_cancel()?;
    timeline::record(tx, What::OrderCancelled, Some(id), order.customer_id.as_ref(), "")?;
    let mut sent = vec![events::push(tx, Event::ReturnStock { order_id: id.clone() })?];
    if let Some(customer_id) = &order.customer_id {
        let cancelled = Event::OrderCancelled {
            order_id: id.clone(),
            customer_id: customer_id.clone(),
            points: order.points,
        };
        sent.push(events::push(tx, cancelled)?);
    }
    Ok((set_status(tx, id, OrderStatus::Cancelled, None)?, sent))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use lemonade_domain::ids::{CustomerId, OrderId, ProductId};
    use lemonade_domain::ports::IdSource;

    use super::*;
    use crate::migrations::{Role, migrate_role};

    struct Counter(AtomicU64);

    impl IdSource for Counter {
        fn next_id(&self) -> String {
            format!("event-{}", self.0.fetch_add(1, Ordering::Relaxed))
        }
    }

    fn orders_db() -> rusqlite::Connection {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrate_role(&mut c, Role::Orders).unwrap();
        c
    }

    fn plan(id: &str) -> OrderPlan {
        OrderPlan {
            order_id: OrderId::parse(id).unwrap(),
            customer_id: Some(CustomerId::parse("customer-1").unwrap()),
            priced: PricedOrder {
                lines: vec![OrderLine {
                    product_id: ProductId::parse("lemonade").unwrap(),
                    name: "Lemonade".into(),
                    quantity: 2,
                    unit_price: Money::from_stored(350),
                }],
                total: Money::from_stored(700),
                recipe_versions: vec![1],
            },
            points: 7,
            created_at: Timestamp(1_000),
        }
    }

    /// A writer job's context over `c` at `now`.
    fn tx<'a>(c: &'a dyn Db, cache: &'a WriterCache, ids: &'a Counter, now: i64) -> Tx<'a> {
        Tx::new(c, cache, ids, Timestamp(now))
    }

    #[test]
    fn placing_an_order_again_returns_it_and_tells_crm_only_once() {
        let (c, ids, cache) = (orders_db(), Counter(AtomicU64::new(0)), WriterCache::default());
        let (order, events) = place_confirmed(&tx(&c, &cache, &ids, 2_000), &plan("o1")).unwrap();
        assert_eq!(
            (order.status, order.updated_at, order.points),
            (OrderStatus::Confirmed, Timestamp(1_000), 7)
        );
        assert_eq!(events.len(), 1, "the points go to CRM through the outbox");
        let (again, events) = place_confirmed(&tx(&c, &cache, &ids, 3_000), &plan("o1")).unwrap();
        assert_eq!(again, order);
        assert!(events.is_empty());
        assert_eq!(events::backlog(&c).unwrap(), 1);
    }

    #[test]
    fn a_failed_order_cannot_be_placed_and_a_pending_one_is_confirmed() {
        let (c, ids, cache) = (orders_db(), Counter(AtomicU64::new(0)), WriterCache::default());
        fail(&tx(&c, &cache, &ids, 2_000), &plan("o1"), "the lease ran out").unwrap();
        let refused = place_confirmed(&tx(&c, &cache, &ids, 3_000), &plan("o1"));
        assert!(matches!(refused, Err(ShopError::Conflict { .. })), "{refused:?}");
        let pending = plan("o2").order(OrderStatus::Pending, Timestamp(1_000));
        insert(&c, &pending, &[1]).unwrap();
        let (order, events) = place_confirmed(&tx(&c, &cache, &ids, 3_000), &plan("o2")).unwrap();
        assert_eq!(order.status, OrderStatus::Confirmed);
        assert_eq!(events.len(), 1);
    }
}
