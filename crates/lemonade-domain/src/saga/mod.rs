//! What the services of the distributed mode tell each other about an order: the order as
//! the stock service priced and reserved it, and the events the orders service's outbox
//! carries to the stock and CRM services; and the order saga itself, as a state machine
//! stepped without I/O ([`machine`]). The protocol around it lives in `lemonade-cluster`.

pub mod machine;

use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, OrderId};
use crate::order::{Order, OrderLine, OrderStatus};
use crate::values::{Money, Timestamp};

/// An order priced against the catalogue and held in stock: its lines, total and the recipe
/// version each line was sold with. What it took from stock stays with the stock service,
/// in the reservation, the one place that uses it (plans stored before carried it too, and
/// still read, the field ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedOrder {
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub recipe_versions: Vec<i64>,
}

/// The plan a saga carries out: the order it places, priced, and who it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlan {
    pub order_id: OrderId,
    pub customer_id: Option<CustomerId>,
    pub priced: PricedOrder,
    pub points: u64,
    pub created_at: Timestamp,
}

impl OrderPlan {
    /// The order this plan places, in `status`: with the plan's points while the status
    /// keeps them ([`OrderStatus::keeps_points`]), else none.
    pub fn order(&self, status: OrderStatus, updated_at: Timestamp) -> Order {
        Order {
            id: self.order_id.clone(),
            status,
            customer_id: self.customer_id.clone(),
            lines: self.priced.lines.clone(),
            total: self.priced.total,
            points: if status.keeps_points() { self.points } else { 0 },
            failure_reason: None,
            created_at: self.created_at,
            updated_at,
        }
    }
}

/// Something the orders service tells another service, at least once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// CRM: award the order's points and record the activity.
    OrderPlaced {
        order_id: OrderId,
        customer_id: CustomerId,
        points: u64,
    },
    /// CRM: take the order's points back and record the activity.
    OrderCancelled {
        order_id: OrderId,
        customer_id: CustomerId,
        points: u64,
    },
    /// Stock: give back what the order's reservation took.
    ReturnStock { order_id: OrderId },
}

impl Event {
    pub fn destination(&self) -> Destination {
        match self {
            Event::OrderPlaced { .. } | Event::OrderCancelled { .. } => Destination::Crm,
            Event::ReturnStock { .. } => Destination::Stock,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    Stock,
    Crm,
}

impl Destination {
    /// Every destination, in [`Destination::index`] order.
    pub const ALL: [Destination; 2] = [Destination::Stock, Destination::Crm];

    /// The place of this destination in [`Destination::ALL`]: for what is kept per
    /// destination in an array (`[T; 2]`).
    pub fn index(self) -> usize {
        match self {
            Destination::Stock => 0,
            Destination::Crm => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Stock => "stock",
            Destination::Crm => "crm",
        }
    }
}

/// An event with the id its receiver deduplicates by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// Its place in the sender's outbox: the relay delivers a destination's events in this
    /// order, which is what lets a receiver tell when the event can no longer come again.
    /// None for an event written before version 2 of the schema carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_stored_with_the_needs_it_once_carried_still_reads() {
        let stored = r#"{"order_id":"o1","customer_id":null,"points":0,"created_at":"2026-11-30T12:00:00Z",
            "priced":{"lines":[],"total":0,"recipe_versions":[],"needs":{"lemons":4}}}"#;
        let plan: OrderPlan = serde_json::from_str(stored).unwrap();
        assert_eq!(plan.priced.recipe_versions, Vec::<i64>::new());
        assert!(!serde_json::to_string(&plan).unwrap().contains("needs"));
    }
}
