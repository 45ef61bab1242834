//! The CRM service: customers, their points and activity. It learns of orders only through
//! events from the orders service's outbox, and applies each event once.

use axum::Router;
use lemonade_domain::ShopError;
use lemonade_domain::customer::{ActivityKind, Customer};
use lemonade_domain::ids::CustomerId;
use lemonade_domain::saga::Event;
use lemonade_store::Tx;
use lemonade_store::conn::Db;
use lemonade_store::sql::{crm, events, steps};
use serde::{Deserialize, Serialize};

use crate::node::{Node, check_events};
use crate::rpc::*;
use crate::server::{Internal, Protection};

/// What a customer's step keeps: the customer's id. (A step result stored before schema
/// version 2 held the whole customer; its `id` reads as this too.)
#[derive(Serialize, Deserialize)]
struct CustomerRef {
    id: CustomerId,
}

impl CustomerRef {
    fn of(c: &Customer) -> Self {
        CustomerRef { id: c.id.clone() }
    }

    fn read(db: &dyn Db, r: Self) -> Result<Customer, ShopError> {
        crm::require(db, &r.id)
    }
}

/// The erasure of a customer at CRM, every copy in one transaction: the customer's record
/// (`crm::anonymise`) and the requests their steps answered (hashes of bodies that held
/// their name, email and phone; the steps keep only references). Nothing else here holds
/// them: activity and events carry ids and points only.
fn erase(tx: &Tx, id: &CustomerId) -> Result<Customer, ShopError> {
    let erased = crm::anonymise(tx, id)?;
    steps::forget_requests_mentioning(tx.conn, id)?;
    Ok(erased)
}

/// Applies a delivery of order events (checked to be all `OrderPlaced` or `OrderCancelled`):
/// each event applied for the first time adds or takes back its order's points.
fn order_points(tx: &Tx, c: &CrmEvents) -> Result<(), ShopError> {
    if let Some(below) = c.delivered_below {
        events::note_delivered_below(tx, events::ORDERS_OUTBOX, below)?;
    }
    for envelope in &c.events {
        if !events::first_delivery(tx, events::ORDERS_OUTBOX, envelope)? {
            continue;
        }
        let (order_id, customer_id, points, kind) = match &envelope.event {
            Event::OrderPlaced {
                order_id,
                customer_id,
                points,
            } => (order_id, customer_id, *points, ActivityKind::OrderPlaced),
            Event::OrderCancelled {
                order_id,
                customer_id,
                points,
            } => (order_id, customer_id, *points, ActivityKind::OrderCancelled),
            Event::ReturnStock { .. } => unreachable!("checked by the handler"),
        };
        if crm::get(tx.conn, customer_id)?.is_none() {
            // The coordinator checks the customer before placing: this is a bug.
            // Holding up every later event would not fix it.
            tracing::error!(event = envelope.id, customer = %customer_id, "an event for an unknown customer; skipped");
            continue;
        }
        // For a customer erased meanwhile this changes nothing (the erasure
        // forfeited their points); the inbox still records the event as applied.
        if !crm::order_points(tx, customer_id, order_id, kind, points)? {
            tracing::info!(event = envelope.id, order = %order_id, "an order's points reached an erased customer; nothing changed");
        }
    }
    Ok(())
}

pub fn router(node: Node, cluster_token: &str, protection: Protection) -> Router {
    Internal::<Node>::new()
        .handle(|n: Node, c: ListCustomers, _| async move {
            n.read(move |db| crm::list(db, c.search.as_deref(), &c.page)).await
        })
        // In the path of every order with a customer: a lookup, not a hop to a reader thread.
        .handle(|n: Node, c: GetCustomer, _| async move { n.lookup(move |db| crm::require(db, &c.id)).await })
        // A customer's steps keep a reference, not the customer (see `Node::once_by_reference`).
        .handle(|n: Node, c: CreateCustomer, key| async move {
            let work = move |tx: &Tx| crm::create(tx, tx.new_id(CustomerId::parse), &c.fields);
            n.once_by_reference(key, work, CustomerRef::of, CustomerRef::read).await
        })
        .handle(|n: Node, c: UpdateCustomer, key| async move {
            let work = move |tx: &Tx| crm::update(tx, &c.id, &c.fields);
            n.once_by_reference(key, work, CustomerRef::of, CustomerRef::read).await
        })
        .handle(|n: Node, c: AnonymiseCustomer, key| async move {
            let work = move |tx: &Tx| erase(tx, &c.id);
            let erased = n
                .once_by_reference(key, work, CustomerRef::of, CustomerRef::read)
                .await?;
            n.db.scrub_after_erasure().await;
            Ok(erased)
        })
        .handle(|n: Node, c: CustomerActivity, _| async move {
            n.read(move |db| {
                crm::require(db, &c.id)?;
                crm::activity(db, &c.id)
            })
            .await
        })
        .handle(|n: Node, c: CrmEvents, _| async move {
            check_events(&c.events, |e| {
                matches!(e, Event::OrderPlaced { .. } | Event::OrderCancelled { .. })
            })?;
            n.write(move |tx| order_points(tx, &c)).await
        })
        .handle(|n: Node, _: CrmStatus, _| async move { n.read(|_| Ok(ServiceStatus { waiting: 0 })).await })
        .handle(|n: Node, c: CrmTimeline, _| async move { n.timeline(c.order_id, c.limit).await })
        .finish(node, cluster_token, protection)
}
