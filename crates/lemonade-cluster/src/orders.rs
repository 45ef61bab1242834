//! The orders service: orders and their lines, and the outbox that tells the stock and CRM
//! services what happened to them. Its relay ([`crate::relay`]) delivers the outbox at least
//! once, woken by each commit that writes to it; a step's reply says where its events lie in
//! the outbox ([`OutboxMarks`]), not what they are.

use axum::Router;
use lemonade_domain::ShopError;
use lemonade_domain::ports::{Health, IdempotencyKey};
use lemonade_domain::report::build_sales_report;
use lemonade_store::Tx;
use lemonade_store::sql::{events, orders};

use crate::node::Node;
use crate::relay::Relay;
use crate::rpc::*;
use crate::server::{Internal, Protection, Serving};

/// What the orders service's calls work with: its node, and its relay to wake and ask.
#[derive(Clone)]
pub struct OrdersService {
    pub node: Node,
    pub relay: Relay,
}

impl Serving for OrdersService {
    fn health(&self) -> impl Future<Output = Health> + Send {
        self.node.health()
    }
    fn clocks(&self) -> crate::server::Clocks {
        self.node.clocks()
    }
}

impl OrdersService {
    /// A step that writes events: once its commit is durable, the relay lanes it wrote to are
    /// woken. A replayed step wakes them too, which costs a read.
    async fn settle<F>(&self, key: Option<IdempotencyKey>, work: F) -> Result<Settled, ShopError>
    where
        F: FnOnce(&Tx<'_>) -> Result<Settled, ShopError> + Send + 'static,
    {
        let settled = self.node.once(key, work).await?;
        self.relay.wake(&settled.marks);
        Ok(settled)
    }
}

pub fn router(service: OrdersService, cluster_token: &str, protection: Protection) -> Router {
    Internal::<OrdersService>::new()
        .handle(|s: OrdersService, c: CreateOrder, key| async move {
            s.settle(key, move |tx| {
                let (order, events) = orders::place_confirmed(tx, &c.plan)?;
                Ok(Settled {
                    order,
                    marks: OutboxMarks::of(&events),
                })
            })
            .await
        })
        .handle(|s: OrdersService, c: FailOrder, key| async move {
            s.node.once(key, move |tx| orders::fail(tx, &c.plan, &c.reason)).await
        })
        .handle(|s: OrdersService, c: CancelOrder, key| async move {
            s.settle(key, move |tx| {
                let (order, events) = orders::cancel_with_events(tx, &c.order_id)?;
                Ok(Settled {
                    order,
                    marks: OutboxMarks::of(&events),
                })
            })
            .await
        })
        .handle(
            |s: OrdersService, c: GetOrder, _| async move { s.node.read(move |db| orders::require(db, &c.id)).await },
        )
        .handle(|s: OrdersService, c: ListOrders, _| async move {
            s.node.read(move |db| orders::list(db, &c.filter, &c.page)).await
        })
        .handle(|s: OrdersService, c: CustomerOrders, _| async move {
            s.node.read(move |db| orders::all_of_customer(db, &c.customer_id)).await
        })
        .handle(|s: OrdersService, c: Sales, _| async move {
            s.node
                .read(move |db| {
                    let (days, products) = orders::sales(db, &c.query)?;
                    Ok(build_sales_report(&c.query, &days, products))
                })
                .await
        })
        .handle(|s: OrdersService, c: OrdersTimeline, _| async move { s.node.timeline(c.order_id, c.limit).await })
        .handle(|s: OrdersService, _: OrdersStatus, _| async move {
            s.node
                .read(|db| {
                    Ok(ServiceStatus {
                        waiting: events::backlog(db)?,
                    })
                })
                .await
        })
        .handle(|s: OrdersService, c: OutboxProgress, _| async move {
            Ok(s.relay.progress(c.to, c.at_least, c.hold_ms).await)
        })
        .finish(service, cluster_token, protection)
}
