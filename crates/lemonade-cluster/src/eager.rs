//! Eager delivery: the coordinator delivers the events a step just put in the orders
//! service's outbox (an order's "award the points", a cancellation's "return the stock" and
//! "take the points back") itself, at once, so that a client's next read sees their effect.
//! The relay delivers them anyway, and a receiver applies each event once, so this is only
//! a shortcut.
//!
//! A shortcut no answer waits for: each delivery runs in a task of its own, so a receiver
//! that is down or frozen costs a sale nothing (it used to cost the delivery's whole second
//! per sale). Reads-your-writes comes from the reading side instead: a call the coordinator
//! forwards to a receiver first waits for the deliveries to it that were under way when the
//! call was made, at most [`EAGER_DELIVERY_MS`] ([`Eager::caught_up`]). While the receiver
//! answers, those end in a few milliseconds, and the client reads what they did; while it
//! does not, its circuit opens, deliveries fail at once, and nothing is waited for.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lemonade_domain::saga::{Destination, Envelope};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::client::Clients;
use crate::rpc::{CrmEvents, Service, StockEvents};

/// Longest one eager delivery may take, retries included; also the longest a read waits
/// for the deliveries before it.
pub const EAGER_DELIVERY_MS: u64 = 1_000;
/// Most eager deliveries under way at once; past that, the relay delivers.
pub const EAGER_DELIVERIES_MAX: usize = 1_024;

/// The coordinator's eager deliveries (cheap to share: one per coordinator).
pub struct Eager {
    clients: Arc<Clients>,
    slots: Arc<Semaphore>,
    stock: Arc<UnderWay>,
    crm: Arc<UnderWay>,
}

impl Eager {
    pub fn new(clients: Arc<Clients>) -> Self {
        Eager {
            clients,
            slots: Arc::new(Semaphore::new(EAGER_DELIVERIES_MAX)),
            stock: Arc::new(UnderWay::default()),
            crm: Arc::new(UnderWay::default()),
        }
    }

    fn under_way(&self, service: Service) -> Option<&Arc<UnderWay>> {
        match service {
            Service::Stock => Some(&self.stock),
            Service::Crm => Some(&self.crm),
            Service::Orders => None,
        }
    }

    /// Starts delivering `events` to their receivers, one task per receiver, and returns at
    /// once. Best effort: a delivery that fails, or that finds [`EAGER_DELIVERIES_MAX`]
    /// under way, is left to the relay.
    pub fn deliver(&self, events: Vec<Envelope>) {
        let (to_stock, to_crm): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| e.event.destination() == Destination::Stock);
        for (service, events) in [(Service::Stock, to_stock), (Service::Crm, to_crm)] {
            if events.is_empty() {
                continue;
            }
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                tracing::debug!(%service, "too many eager deliveries under way; the relay will deliver");
                continue;
            };
            let ticket = UnderWay::begin(self.under_way(service).expect("events go to stock or crm"));
            let clients = Arc::clone(&self.clients);
            tokio::spawn(async move {
                let (_slot, _ticket) = (slot, ticket);
                let deadline = Instant::now() + Duration::from_millis(EAGER_DELIVERY_MS);
                let delivered = match service {
                    Service::Stock => {
                        let call = StockEvents {
                            events,
                            delivered_below: None,
                        };
                        clients.call(&call, None, deadline).await
                    }
                    _ => {
                        let call = CrmEvents {
                            events,
                            delivered_below: None,
                        };
                        clients.call(&call, None, deadline).await
                    }
                };
                if let Err(e) = delivered {
                    tracing::debug!(%service, error = ?e, "eager delivery failed; the relay will deliver");
                }
            });
        }
    }

    /// Waits until the eager deliveries to `service` under way now have ended, at most
    /// [`EAGER_DELIVERY_MS`], and not at all while its circuit is open: called before a call
    /// to `service`, so that it sees what they did.
    pub async fn caught_up(&self, service: Service) {
        let Some(under_way) = self.under_way(service) else {
            return;
        };
        if self.clients.circuit_open(service) {
            // The service is down: what is under way to it fails, and the caller's own call
            // fails at once; waiting would only keep the caller waiting.
            return;
        }
        let mark = under_way.mark();
        let mut ended = under_way.low.subscribe();
        if *ended.borrow() >= mark {
            return;
        }
        let waited = tokio::time::timeout(
            Duration::from_millis(EAGER_DELIVERY_MS),
            ended.wait_for(|low| *low >= mark),
        )
        .await;
        if waited.is_err() {
            tracing::debug!(%service, "eager deliveries still under way; reading without them");
        }
    }
}

/// The deliveries under way to one receiver, numbered in the order they began, so that a
/// reader can wait for those that began before it (and not for those that begin while it
/// waits, which under load would never all be over).
#[derive(Default)]
struct UnderWay {
    numbers: Mutex<Numbers>,
    /// The lowest number still under way, or the next number when none is: every delivery
    /// numbered below it has ended.
    low: watch::Sender<u64>,
}

#[derive(Default)]
struct Numbers {
    next: u64,
    open: BTreeSet<u64>,
}

impl UnderWay {
    fn begin(this: &Arc<UnderWay>) -> Ticket {
        let mut numbers = this.numbers.lock();
        let number = numbers.next;
        numbers.next += 1;
        numbers.open.insert(number);
        // `low` stays: it was this number if nothing was under way, else a lower one.
        Ticket {
            under_way: Arc::clone(this),
            number,
        }
    }

    /// The number the next delivery will get: a reader waits until `low` reaches it.
    fn mark(&self) -> u64 {
        self.numbers.lock().next
    }
}

/// A delivery under way; it ends when dropped, however its task ends.
struct Ticket {
    under_way: Arc<UnderWay>,
    number: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut numbers = self.under_way.numbers.lock();
        numbers.open.remove(&self.number);
        let low = numbers.open.first().copied().unwrap_or(numbers.next);
        self.under_way.low.send_if_modified(|old| {
            let changed = *old != low;
            *old = low;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reader_waits_for_the_deliveries_begun_before_it_and_not_for_later_ones() {
        let under_way = Arc::new(UnderWay::default());
        let first = UnderWay::begin(&under_way);
        let second = UnderWay::begin(&under_way);
        let mark = under_way.mark();
        let later = UnderWay::begin(&under_way);
        let mut low = under_way.low.subscribe();
        drop(second);
        assert!(*low.borrow_and_update() < mark, "the first is still under way");
        drop(first);
        assert!(
            *low.borrow_and_update() >= mark,
            "both begun before the mark have ended"
        );
        drop(later);
        assert_eq!(*low.borrow(), under_way.mark(), "nothing under way");
    }
}
