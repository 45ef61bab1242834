//! The orders service: orders and their lines, and the outbox that tells the stock and CRM
//! services what happened to them. Its relay delivers the outbox at least once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use lemonade_domain::report::build_sales_report;
use lemonade_domain::saga::Destination;
use lemonade_store::sql::{events, orders};
use tokio::time::Instant;

use crate::client::Clients;
use crate::node::Node;
use crate::rpc::*;
use crate::server::{Internal, Protection};

pub fn router(node: Node, cluster_token: &str, protection: Protection) -> Router {
    Internal::<Node>::new()
        .handle(|n: Node, c: CreateOrder, key| async move {
            n.once(key, move |tx| {
                let (order, events) = orders::place_confirmed(tx, &c.plan)?;
                Ok(Settled { order, events })
            })
            .await
        })
        .handle(|n: Node, c: FailOrder, key| async move {
            n.once(key, move |tx| orders::fail(tx, &c.plan, &c.reason)).await
        })
        .handle(|n: Node, c: CancelOrder, key| async move {
            n.once(key, move |tx| {
                let (order, events) = orders::cancel_with_events(tx, &c.order_id)?;
                Ok(Settled { order, events })
            })
            .await
        })
        .handle(|n: Node, c: GetOrder, _| async move { n.read(move |db| orders::require(db, &c.id)).await })
        .handle(|n: Node, c: ListOrders, _| async move { n.read(move |db| orders::list(db, &c.filter, &c.page)).await })
        .handle(|n: Node, c: CustomerOrders, _| async move {
            n.read(move |db| orders::all_of_customer(db, &c.customer_id)).await
        })
        .handle(|n: Node, c: Sales, _| async move {
            n.read(move |db| {
                let (days, products) = orders::sales(db, &c.query)?;
                Ok(build_sales_report(&c.query, &days, products))
            })
            .await
        })
        .handle(|n: Node, _: OrdersStatus, _| async move {
            n.read(|db| {
                Ok(ServiceStatus {
                    waiting: events::backlog(db)?,
                })
            })
            .await
        })
        .finish(node, cluster_token, protection)
}

/// Longest one delivery may take, retries included.
const DELIVERY_DEADLINE_MS: u64 = 5_000;
/// How long the relay rests when there is nothing to deliver.
const RELAY_IDLE_MS: u64 = 20;

/// Delivers the outbox to `to`, oldest event first, until stopped. An event is marked
/// delivered only after the receiver committed it; one that fails is tried again (with the
/// client's backoff, then the relay's), so nothing is lost and nothing overtakes it. A vital
/// task of the service.
pub fn spawn_relay(node: Node, clients: Arc<Clients>, to: Destination) -> tokio::task::JoinHandle<()> {
    let tasks = node.db.tasks.clone();
    tasks.spawn(format!("the relay to {}", to.as_str()), async move {
        let mut failures: u32 = 0;
        loop {
            let batch = node
                .read(move |db| events::undelivered(db, to, EVENTS_PER_DELIVERY_MAX as u32))
                .await;
            let batch = match batch {
                Ok(batch) if batch.is_empty() => {
                    tokio::time::sleep(Duration::from_millis(RELAY_IDLE_MS)).await;
                    continue;
                }
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "the relay cannot read the outbox");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            // The batch is the oldest undelivered events of `to`, in order: everything placed
            // below its first is delivered and marked, and this relay never sends it again.
            let delivered_below = batch[0].seq;
            let events = batch.clone();
            let deadline = Instant::now() + Duration::from_millis(DELIVERY_DEADLINE_MS);
            let delivered = match to {
                Destination::Stock => {
                    let call = StockEvents {
                        events,
                        delivered_below,
                    };
                    clients.call(&call, None, deadline).await
                }
                Destination::Crm => {
                    let call = CrmEvents {
                        events,
                        delivered_below,
                    };
                    clients.call(&call, None, deadline).await
                }
            };
            match delivered {
                Ok(()) => {
                    failures = 0;
                    metrics::counter!("lemonade_events_delivered", "to" => to.as_str()).increment(batch.len() as u64);
                    if let Err(e) = node.write(move |tx| events::mark_delivered(tx, to, &batch)).await {
                        // Delivered but not marked: it goes again, and the receiver's inbox
                        // skips it.
                        tracing::warn!(error = %e, "could not mark events delivered");
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let rest_ms = (100u64 << failures.min(6)).min(5_000);
                    tracing::warn!(to = to.as_str(), error = ?e, rest_ms, "could not deliver events; will retry");
                    tokio::time::sleep(Duration::from_millis(rest_ms)).await;
                }
            }
        }
    })
}
