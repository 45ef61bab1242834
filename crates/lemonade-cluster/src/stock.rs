//! The stock service: ingredients, the ledger, products and recipes, and the reservations
//! orders hold. It prices orders (it owns the catalogue) and is the only one that moves
//! stock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use lemonade_domain::ShopError;
use lemonade_domain::ids::{IngredientId, ProductId};
use lemonade_domain::ports::IdempotencyKey;
use lemonade_domain::saga::Event;
use lemonade_domain::values::Timestamp;
use lemonade_store::sql::{catalog, events, reservations, stock};

use crate::node::{Node, check_events, new_id};
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
            let (cache, ids) = (n.cache(), Arc::clone(&n.ids));
            n.once(key, move |db, now| {
                stock::create(db, &cache, new_id(ids.as_ref(), IngredientId::parse), &c.new, now)
            })
            .await
        })
        .handle(|n: Node, c: AdjustStock, key| async move {
            let cache = n.cache();
            n.once(key, move |db, now| stock::adjust(db, &cache, &c.id, &c.adjustment, now))
                .await
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
            let ids = Arc::clone(&n.ids);
            n.once(key, move |db, now| {
                catalog::create(db, new_id(ids.as_ref(), ProductId::parse), &c.new, now)
            })
            .await
        })
        .handle(|n: Node, c: UpdateProduct, key| async move {
            let cache = n.cache();
            n.once(key, move |db, now| {
                cache.forget_product(&c.id);
                catalog::update(db, &c.id, &c.patch, now)
            })
            .await
        })
        .handle(|n: Node, c: CheckCatalog, _| async move { n.read(move |db| catalog::check_refs(db, &c.refs)).await })
        .handle(|n: Node, c: CheckOrderProducts, _| async move {
            n.read(move |db| lemonade_store::sql::orders::product_errors(db, &c.products))
                .await
        })
        .handle(reserve)
        .handle(|n: Node, c: CommitReservation, key| async move {
            n.once(key, move |db, now| reservations::commit(db, &c.order_id, now))
                .await
        })
        .handle(|n: Node, c: ReleaseReservation, key| async move {
            let cache = n.cache();
            n.once(key, move |db, now| reservations::release(db, &cache, &c.order_id, now))
                .await
        })
        .handle(|n: Node, c: StockEvents, _| async move {
            check_events(&c.events, |e| matches!(e, Event::ReturnStock { .. }))?;
            let cache = n.cache();
            n.write(move |db, now| {
                if let Some(below) = c.delivered_below {
                    events::note_delivered_below(db, events::ORDERS_OUTBOX, below, now)?;
                }
                for envelope in &c.events {
                    let Event::ReturnStock { order_id } = &envelope.event else {
                        unreachable!("checked above")
                    };
                    if events::first_delivery(db, events::ORDERS_OUTBOX, envelope, now)? {
                        reservations::release(db, &cache, order_id, now)?;
                    }
                }
                Ok(())
            })
            .await
        })
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
    let cache = n.cache();
    n.once(key, move |db, now| {
        let expires_at = Timestamp(now.millis() + c.lease_ms as i64);
        reservations::reserve(db, &cache, &c.order_id, &c.draft, expires_at, now)
    })
    .await
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
            let cache = node.cache();
            match node
                .write(move |db, now| reservations::expire(db, &cache, now, EXPIRE_BATCH_MAX))
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
