//! The orders service's outbox relay: the one path by which events reach their receivers
//! (stock and CRM).
//!
//! One lane per receiver delivers that receiver's undelivered events, oldest first, and marks
//! them delivered only after the receiver said it committed them: at least once, in order.
//! A lane sleeps while its part of the outbox is empty, and is woken by every commit that
//! writes an event to it ([`Relay::wake`], called by the step that wrote them once its commit
//! is durable), so an event leaves at once without the relay polling; a safety poll
//! ([`RELAY_SAFETY_POLL_MS`]) finds anything a wake missed (events written before a start,
//! a wake lost to a bug).
//!
//! Each lane also says how far it has delivered ([`Relay::delivered_through`]): every event
//! to its receiver placed at or below that place is committed there. The coordinator asks
//! for it ([`OutboxProgress`](crate::rpc::OutboxProgress)) before a read that must see what
//! a client's change did (the points of the order it was just answered).

use std::sync::Arc;
use std::time::Duration;

use lemonade_domain::saga::Destination;
use lemonade_store::sql::events;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::client::Clients;
use crate::node::Node;
use crate::rpc::{CrmEvents, EVENTS_PER_DELIVERY_MAX, OutboxMarks, PROGRESS_HOLD_MS_MAX, Service, StockEvents};

/// How often a lane with nothing to deliver looks at the outbox anyway. Commits wake it;
/// this only bounds how long an event could wait if a wake were missed.
pub const RELAY_SAFETY_POLL_MS: u64 = 1_000;
/// The services a relay calls, the receivers of [`Destination::ALL`]: what the clients it is
/// given must be made for ([`Clients::calling`]).
pub const CALLS: [Service; 2] = [Service::Stock, Service::Crm];
/// Longest one delivery may take, retries included.
const DELIVERY_DEADLINE_MS: u64 = 5_000;
/// How long a lane rests after it could not read the outbox.
const READ_FAILED_REST_MS: u64 = 500;
/// Longest a lane rests after failed deliveries (the rest doubles from 200 ms).
const DELIVERY_FAILED_REST_MAX_MS: u64 = 5_000;

/// The relay of one orders service: its lanes' wakes and progress. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    lanes: Arc<[Lane; 2]>,
    safety_poll_ms: u64,
}

/// One receiver's lane.
struct Lane {
    /// Woken by a commit that wrote events to this receiver. A wake that finds the lane busy
    /// is kept (one permit), so the lane reads again once it is done.
    wake: Notify,
    /// Every event to this receiver placed at or below this has been committed by it. 0 until
    /// the lane's first read.
    delivered_through: watch::Sender<i64>,
}

impl Default for Relay {
    fn default() -> Self {
        Relay::new(RELAY_SAFETY_POLL_MS)
    }
}

impl Relay {
    /// A relay whose idle lanes look at the outbox every `safety_poll_ms` besides their wakes.
    pub fn new(safety_poll_ms: u64) -> Self {
        let lane = || Lane {
            wake: Notify::new(),
            delivered_through: watch::Sender::new(0),
        };
        Relay {
            lanes: Arc::new([lane(), lane()]),
            safety_poll_ms,
        }
    }

    fn lane(&self, to: Destination) -> &Lane {
        &self.lanes[to.index()]
    }

    /// Wakes the lanes of the receivers a commit wrote events to (`marks`). Call it once the
    /// commit is durable.
    pub fn wake(&self, marks: &OutboxMarks) {
        for to in Destination::ALL {
            if marks.get(to).is_some() {
                self.lane(to).wake.notify_one();
            }
        }
    }

    /// How far the lane to `to` has delivered: every event to `to` placed at or below this
    /// is committed by its receiver.
    pub fn delivered_through(&self, to: Destination) -> i64 {
        *self.lane(to).delivered_through.borrow()
    }

    /// [`Relay::delivered_through`], once it reaches `at_least` or after `hold_ms` (at most
    /// [`PROGRESS_HOLD_MS_MAX`]), whichever comes first.
    pub async fn progress(&self, to: Destination, at_least: i64, hold_ms: u64) -> i64 {
        let mut through = self.lane(to).delivered_through.subscribe();
        let hold = Duration::from_millis(hold_ms.min(PROGRESS_HOLD_MS_MAX));
        let _ = tokio::time::timeout(hold, through.wait_for(|p| *p >= at_least)).await;
        *through.borrow()
    }

    fn delivered(&self, to: Destination, through: i64) {
        self.lane(to).delivered_through.send_if_modified(|p| {
            let moved = through > *p;
            *p = (*p).max(through);
            moved
        });
    }

    /// Starts the lane to `to`: it delivers the outbox's events to `to`, oldest first, until
    /// stopped. An event is marked delivered only after the receiver committed it; one that
    /// fails is tried again (with the client's backoff, then the lane's rest), so nothing is
    /// lost and nothing overtakes it. A vital task of the service.
    pub fn spawn(&self, node: Node, clients: Arc<Clients>, to: Destination) -> tokio::task::JoinHandle<()> {
        let tasks = node.db.tasks.clone();
        let relay = self.clone();
        tasks.spawn(format!("the relay to {}", to.as_str()), async move {
            let lane = relay.lane(to);
            let mut failures: u32 = 0;
            loop {
                let read = node
                    .read(move |db| {
                        let batch = events::undelivered(db, to, EVENTS_PER_DELIVERY_MAX as u32)?;
                        // Everything to `to` below the oldest undelivered event is delivered;
                        // with none, everything in this snapshot is.
                        let through = match batch.first() {
                            Some(first) => first.seq.expect("outbox events have their place") - 1,
                            None => events::last_seq(db)?,
                        };
                        Ok((batch, through))
                    })
                    .await;
                let batch = match read {
                    Ok((batch, through)) => {
                        relay.delivered(to, through);
                        batch
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the relay cannot read the outbox");
                        tokio::time::sleep(Duration::from_millis(READ_FAILED_REST_MS)).await;
                        continue;
                    }
                };
                if batch.is_empty() {
                    let poll = Duration::from_millis(relay.safety_poll_ms);
                    let _ = tokio::time::timeout(poll, lane.wake.notified()).await;
                    continue;
                }
                match deliver(&clients, to, &batch).await {
                    Ok(()) => {
                        failures = 0;
                        let last = batch
                            .last()
                            .and_then(|e| e.seq)
                            .expect("outbox events have their place");
                        // The receiver has committed them: readers may go on now, before the
                        // mark is written (a mark that fails only sends them again, and the
                        // receiver's inbox skips them).
                        relay.delivered(to, last);
                        metrics::counter!("lemonade_events_delivered", "to" => to.as_str())
                            .increment(batch.len() as u64);
                        if let Err(e) = node.write(move |tx| events::mark_delivered(tx, to, &batch)).await {
                            tracing::warn!(error = %e, "could not mark events delivered");
                        }
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let rest_ms = (100u64 << failures.min(6)).min(DELIVERY_FAILED_REST_MAX_MS);
                        tracing::warn!(to = to.as_str(), error = ?e, rest_ms, "could not deliver events; will retry");
                        tokio::time::sleep(Duration::from_millis(rest_ms)).await;
                    }
                }
            }
        })
    }
}

/// One delivery: `batch`, the oldest undelivered events of `to` in order, with the mark that
/// everything of `to` placed below its first is delivered and will never be sent again.
async fn deliver(
    clients: &Clients,
    to: Destination,
    batch: &[lemonade_domain::saga::Envelope],
) -> Result<(), crate::client::CallError> {
    let delivered_below = batch[0].seq;
    let events = batch.to_vec();
    let deadline = Instant::now() + Duration::from_millis(DELIVERY_DEADLINE_MS);
    match to {
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
    }
}
