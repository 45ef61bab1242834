//! The stock service: ingredients, the ledger, products and recipes, and the reservations
//! orders hold. It prices orders (it owns the catalogue) and is the only one that moves
//! stock.

use std::time::Duration;

use axum::Router;
use lemonade_domain::ShopError;
use lemonade_domain::ids::{IngredientId, ProductId};
use lemonade_domain::ports::IdempotencyKey;
use lemonade_domain::saga::Event;
use lemonade_domain::values::Timestamp;
use lemonade_store::Tx;
use lemonade_store::sql::{catalog, events, reservations, stock};

use crate::node::{Node, check_events};
use crate::rpc::*;
use crate::server::{Internal, Protection};

/// Longest lease a coordinator may ask for.
pub const LEASE_MS_MAX: u64 = 10 * 60_000;
/// Most expired reservations released in one transaction.
const EXPIRE_BATCH_MAX: u32 = 256;

pub fn router(node: Node, cluster_token: &str, protection: Protection) -> Router {
    Internal::<Node>::new()
        .handle(|n: Node, c: ListIngredients, _| async move { n.read(move |db| stock::list(db, &c.page)).await })
        .handle(|n: Node, c: GetIngredient, _| async move { n.read(move |db| stock::require(db, &c.id)).await })
        .handle(|n: Node, c: CreateIngredient, key| async move {
            n.once(key, move |tx| stock::create(tx, tx.new_id(IngredientId::parse), &c.new))
                .await
        })
        .handle(|n: Node, c: AdjustStock, key| async move {
            n.once(key, move |tx| stock::adjust(tx, &c.id, &c.adjustment)).await
        })
        .handle(|n: Node, c: ListMoves, _| async move {
            n.read(move |db| {
                if let Some(id) = &c.ingredient {
                    stock::require(db, id)?;
                }
                stock::list_moves(db, c.ingredient.as_ref(), &c.page)
            })
            .await
        })
        .handle(|n: Node, c: ListProducts, _| async move { n.read(move |db| catalog::list(db, &c.page)).await })
        .handle(|n: Node, c: GetProduct, _| async move { n.read(move |db| catalog::require(db, &c.id)).await })
        .handle(|n: Node, c: CreateProduct, key| async move {
            n.once(key, move |tx| catalog::create(tx, tx.new_id(ProductId::parse), &c.new))
                .await
        })
        .handle(|n: Node, c: UpdateProduct, key| async move {
            n.once(key, move |tx| catalog::update(tx, &c.id, &c.patch)).await
        })
        .handle(|n: Node, c: CheckCatalog, _| async move { n.read(move |db| catalog::check_refs(db, &c.refs)).await })
        .handle(|n: Node, c: CheckOrderProducts, _| async move {
            n.read(move |db| lemonade_store::sql::orders::product_errors(db, &c.products))
                .await
        })
        .handle(reserve)
        .handle(|n: Node, c: CommitReservation, key| async move {
            n.once(key, move |tx| reservations::commit(tx, &c.order_id)).await
        })
        .handle(|n: Node, c: ReleaseReservation, key| async move {
            n.once(key, move |tx| reservations::release(tx, &c.order_id)).await
        })
        .handle(|n: Node, c: StockEvents, _| async move {
            check_events(&c.events, |e| matches!(e, Event::ReturnStock { .. }))?;
            n.write(move |tx| return_stock(tx, &c)).await
        })
        .handle(|n: Node, c: StockTimeline, _| async move { n.timeline(c.order_id, c.limit).await })
        .handle(|n: Node, _: StockStatus, _| async move {
            n.read(|db| {
                Ok(ServiceStatus {
                    waiting: reservations::held(db)?,
                })
            })
            .await
        })
        .finish(node, cluster_token, protection)
}

async fn reserve(
    n: Node,
    c: Reserve,
    key: Option<IdempotencyKey>,
) -> Result<lemonade_domain::saga::PricedOrder, ShopError> {
    if c.lease_ms == 0 || c.lease_ms > LEASE_MS_MAX {
        return Err(ShopError::validation(
            "lease_ms",
            format!("must be 1 to {LEASE_MS_MAX}"),
        ));
    }
    n.once(key, move |tx| {
        let expires_at = Timestamp(tx.now.millis() + c.lease_ms as i64);
        reservations::reserve(tx, &c.order_id, &c.draft, expires_at)
    })
    .await
}

/// Applies a delivery of `ReturnStock` events (checked to be all of that kind): each event
/// applied for the first time releases its order's reservation.
fn return_stock(tx: &Tx, c: &StockEvents) -> Result<(), ShopError> {
    if let Some(below) = c.delivered_below {
        events::note_delivered_below(tx, events::ORDERS_OUTBOX, below)?;
    }
    for envelope in &c.events {
        let Event::ReturnStock { order_id } = &envelope.event else {
            unreachable!("checked by the handler")
        };
        if events::first_delivery(tx, events::ORDERS_OUTBOX, envelope)? {
            reservations::release(tx, order_id)?;
        }
    }
    Ok(())
}

/// Releases reservations whose lease ran out, on this service's clock, until stopped (a
/// vital task of the service).
pub fn spawn_lease_expiry(node: Node, period: Duration) -> tokio::task::JoinHandle<()> {
    let tasks = node.db.tasks.clone();
    tasks.spawn("the release of expired leases", async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = node.now();
            match node.read(move |db| reservations::any_expired(db, now)).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for expired reservations");
                    continue;
                }
            }
            match node
                .write(move |tx| reservations::expire(tx, EXPIRE_BATCH_MAX))
                .await
            {
                Ok(expired) if !expired.is_empty() => {
                    metrics::counter!("lemonade_leases_expired").increment(expired.len() as u64);
                    tracing::warn!(count = expired.len(), first = %expired[0], "released reservations whose lease ran out");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not expire reservations"),
            }
        }
    })
}
