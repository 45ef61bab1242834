//! Reads-your-writes across the relay: a client who was just answered a sale reads the
//! customer's points with it, although the points reach CRM only through the orders
//! service's relay, moments after the answer.
//!
//! A step at the orders service answers where its events lie in the outbox
//! ([`OutboxMarks`]); the coordinator keeps the highest mark written per receiver, and per
//! customer for CRM ([`Written::wrote`]). Before a forwarded call that can show what those
//! events did (a customer, their activity; stock after a cancellation), it asks the orders
//! service how far its relay has delivered ([`OutboxProgress`], which the service holds up to
//! [`PROGRESS_HOLD_MS`] for delivery to pass the mark), until it has passed it, at most
//! [`READ_YOUR_WRITES_MS`] in all ([`Written::caught_up`]). It does not wait at all when
//! nothing of the customer's is pending, nor while the circuit to the orders service or to
//! the receiver is open: a read degrades to what the receiver has, it never fails for this.
//!
//! What is kept is bounded ([`CUSTOMERS_PENDING_MAX`]) and only in memory: a restarted
//! coordinator has forgotten it, so a read just after a restart may miss a sale answered
//! just before it (as with the eager deliveries this replaced).

use std::collections::HashMap;
use std::time::Duration;

use lemonade_domain::ids::CustomerId;
use lemonade_domain::saga::Destination;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::client::Clients;
use crate::rpc::{OutboxMarks, OutboxProgress, Service};

/// Longest a read waits, in all, for the relay to deliver what it must see.
pub const READ_YOUR_WRITES_MS: u64 = 1_000;
/// How long the orders service may hold one progress answer for delivery to pass the mark.
pub const PROGRESS_HOLD_MS: u64 = 10;
/// Most customers whose CRM marks are kept one by one; past that, every customer's read
/// waits for the highest of the marks that did not fit.
pub const CUSTOMERS_PENDING_MAX: usize = 4_096;

/// What a forwarded call must see of the events written before it.
#[derive(Clone, Copy, Debug)]
pub enum Sees<'a> {
    /// Nothing: the call cannot show what an event did.
    Nothing,
    /// Everything written to its service (a list, stock after any cancellation).
    All,
    /// What was written about one customer (their points and activity).
    Customer(&'a CustomerId),
}

/// The marks of the events this coordinator's steps wrote, and how far the relay is known to
/// have delivered them.
#[derive(Default)]
pub struct Written {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per receiver (stock, CRM): the highest mark written.
    last: [i64; 2],
    /// Per receiver: how far the relay was last said to have delivered.
    delivered: [i64; 2],
    /// CRM: each customer's highest mark, while it may be undelivered.
    customers: HashMap<CustomerId, i64>,
    /// CRM: the highest mark that did not fit in `customers`; every customer's read waits
    /// for it.
    overflow: i64,
}

impl Written {
    /// Notes the events a step wrote for `customer` (the order's, if it names one).
    pub fn wrote(&self, customer: Option<&CustomerId>, marks: OutboxMarks) {
        let mut state = self.state.lock();
        for to in Destination::ALL {
            if let Some(mark) = marks.get(to) {
                state.last[to.index()] = state.last[to.index()].max(mark);
            }
        }
        let Some(mark) = marks.crm else { return };
        let Some(customer) = customer else { return };
        if let Some(kept) = state.customers.get_mut(customer) {
            *kept = (*kept).max(mark);
            return;
        }
        if state.customers.len() >= CUSTOMERS_PENDING_MAX {
            let delivered = state.delivered[Destination::Crm.index()];
            state.customers.retain(|_, m| *m > delivered);
        }
        if state.customers.len() < CUSTOMERS_PENDING_MAX {
            state.customers.insert(customer.clone(), mark);
        } else {
            state.overflow = state.overflow.max(mark);
        }
    }

    /// The mark a call to `service` that `sees` must wait for, if the relay may not have
    /// passed it yet.
    fn pending(&self, service: Service, sees: Sees<'_>) -> Option<(Destination, i64)> {
        let to = match service {
            Service::Stock => Destination::Stock,
            Service::Crm => Destination::Crm,
            Service::Orders => return None,
        };
        let mut state = self.state.lock();
        let delivered = state.delivered[to.index()];
        let mark = match (to, sees) {
            (_, Sees::Nothing) => return None,
            (_, Sees::All) => state.last[to.index()],
            (Destination::Stock, Sees::Customer(_)) => state.last[to.index()],
            (Destination::Crm, Sees::Customer(c)) => {
                let mark = state.customers.get(c).copied().unwrap_or(0);
                if mark != 0 && mark <= delivered {
                    state.customers.remove(c);
                }
                mark.max(state.overflow)
            }
        };
        (mark > delivered).then_some((to, mark))
    }

    /// Notes that the relay has delivered to `to` through `through`; returns how far it is
    /// known to have delivered now.
    fn delivered(&self, to: Destination, through: i64) -> i64 {
        let mut state = self.state.lock();
        let delivered = &mut state.delivered[to.index()];
        *delivered = (*delivered).max(through);
        *delivered
    }

    /// Waits until the relay has delivered what a call to `service` that `sees` must see, at
    /// most [`READ_YOUR_WRITES_MS`], and not at all while the circuit to the orders service
    /// or to `service` is open, or once a progress call fails: the call then goes on
    /// without it.
    pub async fn caught_up(&self, clients: &Clients, service: Service, sees: Sees<'_>) {
        let Some((to, mark)) = self.pending(service, sees) else {
            return;
        };
        let until = Instant::now() + Duration::from_millis(READ_YOUR_WRITES_MS);
        loop {
            if clients.circuit_open(Service::Orders) || clients.circuit_open(service) {
                // Waiting would only keep the caller waiting: degrade to what is there.
                tracing::debug!(%service, "a circuit is open; reading without waiting for the relay");
                return;
            }
            let ask = OutboxProgress {
                to,
                at_least: mark,
                hold_ms: PROGRESS_HOLD_MS,
            };
            match clients.call(&ask, None, until).await {
                Ok(through) if self.delivered(to, through) >= mark => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%service, error = ?e, "cannot ask how far the relay is; reading without it");
                    return;
                }
            }
            if Instant::now() >= until {
                tracing::debug!(%service, mark, "the relay is behind; reading without waiting longer");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str) -> CustomerId {
        CustomerId::parse(id).unwrap()
    }

    fn crm(mark: i64) -> OutboxMarks {
        OutboxMarks {
            stock: None,
            crm: Some(mark),
        }
    }

    #[test]
    fn a_read_about_a_customer_waits_only_for_their_own_events_until_delivered() {
        let written = Written::default();
        let (ann, bob, cid) = (customer("ann"), customer("bob"), customer("cid"));
        written.wrote(Some(&ann), crm(3));
        written.wrote(Some(&bob), crm(7));
        written.wrote(Some(&ann), crm(5));
        assert_eq!(
            written.pending(Service::Crm, Sees::Customer(&ann)),
            Some((Destination::Crm, 5))
        );
        assert_eq!(
            written.pending(Service::Crm, Sees::Customer(&cid)),
            None,
            "nothing of theirs"
        );
        assert_eq!(
            written.pending(Service::Crm, Sees::All),
            Some((Destination::Crm, 7)),
            "a list waits for everyone's"
        );
        assert_eq!(
            written.pending(Service::Stock, Sees::All),
            None,
            "no stock event written"
        );
        assert_eq!(written.pending(Service::Orders, Sees::All), None);
        assert_eq!(written.pending(Service::Crm, Sees::Nothing), None);

        written.delivered(Destination::Crm, 6);
        assert_eq!(written.pending(Service::Crm, Sees::Customer(&ann)), None);
        assert_eq!(
            written.pending(Service::Crm, Sees::Customer(&bob)),
            Some((Destination::Crm, 7))
        );
        assert_eq!(
            written.delivered(Destination::Crm, 2),
            6,
            "what is known delivered never goes back"
        );
    }

    #[test]
    fn past_its_bound_a_customer_s_mark_is_kept_for_everyone_and_nothing_is_missed() {
        let written = Written::default();
        for i in 0..CUSTOMERS_PENDING_MAX {
            written.wrote(Some(&customer(&format!("c{i}"))), crm(i as i64 + 1));
        }
        let late = customer("late");
        let last = CUSTOMERS_PENDING_MAX as i64 + 1;
        written.wrote(Some(&late), crm(last));
        assert_eq!(written.state.lock().customers.len(), CUSTOMERS_PENDING_MAX);
        assert_eq!(
            written.pending(Service::Crm, Sees::Customer(&late)),
            Some((Destination::Crm, last))
        );
        assert_eq!(
            written.pending(Service::Crm, Sees::Customer(&customer("c0"))),
            Some((Destination::Crm, last)),
            "everyone waits for what did not fit"
        );
        // Once the relay is known past some of them, they make room.
        written.delivered(Destination::Crm, 10);
        written.wrote(Some(&customer("later")), crm(last + 1));
        assert!(written.state.lock().customers.contains_key(&customer("later")));
    }
}
