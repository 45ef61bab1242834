//! The coordinator: the public API of the distributed mode. It implements the same
//! [`Shop`] port as the monolith, so the same router serves it; reads and simple changes go
//! to the service that owns the data ([`forward`]), and placing an order is a saga with a
//! durable log in the coordinator's own database ([`saga`], driven on by the [`sweeper`]).
//!
//! Placing an order:
//! 1. check the customer in the coordinator's directory (CRM only for one it does not know),
//!    then reserve its stock at the stock service, which prices it (it owns the catalogue),
//!    under a lease on the stock service's clock;
//! 2. log the saga (`running`), with the priced plan and the client's idempotency key, in
//!    the transaction that checks the customer in the directory once more;
//! 3. commit the reservation;
//! 4. create the order, confirmed, at the orders service, which puts "award the points" in
//!    its outbox in the same transaction; its relay tells CRM (the one path of events), and
//!    a client's next read of the customer waits for it ([`read_your_writes`]);
//! 5. mark the saga `confirmed`.
//!
//! Until step 4 the orders service does not know the order: a client who got 202 reads it
//! as `pending` from the saga log.
//!
//! Steps 3 to 5, and the compensation, are the domain's state machine
//! (`lemonade_domain::saga::machine`); [`saga`] is its driver: it asks the machine for the
//! next action, runs it (a call, or a write to the saga log), and feeds the result back.
//! Every step carries the key `<order id>:<step>`, and its receiver keeps the step's result
//! under it, so the saga can repeat any step it is unsure of. A refusal after step 2 (the
//! lease ran out, say) compensates: the order is marked failed (first, so that a confirm and
//! a fail can never both win), then the reservation released. A step that cannot be done
//! now (a service down) leaves the saga where it is: the client gets 202 with the pending
//! order, and the sweeper drives the saga on until it ends, also after a restart.
//!
//! Every change of a customer passes through here, so the coordinator keeps a directory of
//! customers (ids and standing, no personal data; `sql::directory`; [`customers`]): a sale to
//! a customer it knows needs no CRM, and an erasure is marked in it before anything else, so
//! that no order can name the customer from then on (see [`Coordinator::anonymise_customer`]).

mod customers;
mod forward;
pub mod read_your_writes;
mod saga;
mod sweeper;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lemonade_domain::ShopError;
use lemonade_domain::ids::{CustomerId, OrderId};
use lemonade_store::inflight::InFlight;
use lemonade_store::sql::sagas;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::client::{CallError, Clients};
use crate::group::Group;
use crate::node::Node;
use crate::rpc::Call;
use read_your_writes::{Sees, Written};

/// How the coordinator runs sagas. Units are in the names.
#[derive(Clone, Copy, Debug)]
pub struct CoordinatorConfig {
    /// How long the stock service holds a reservation that was not committed.
    pub lease_ms: u64,
    /// How long placing an order may take before the client gets 202 and a pending order.
    pub order_deadline_ms: u64,
    /// How long other requests may take, retries included.
    pub call_deadline_ms: u64,
    /// A saga still running after this long is given up and compensated.
    pub give_up_ms: u64,
    /// How often the sweeper looks for unfinished sagas, and how long a saga must have been
    /// left alone before it picks it up.
    pub sweep_period_ms: u64,
    pub minor_units_per_point: u64,
    /// How long finished sagas (and with them the clients' idempotency keys) are kept.
    pub retention_ms: i64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            lease_ms: 30_000,
            order_deadline_ms: 3_000,
            call_deadline_ms: 5_000,
            give_up_ms: 120_000,
            sweep_period_ms: 500,
            minor_units_per_point: lemonade_store::shop::MINOR_UNITS_PER_POINT_DEFAULT,
            retention_ms: 48 * 3_600_000,
        }
    }
}

/// Longest a client's answer waits for what is only extra to it: what stock finds wrong in
/// the products of an order refused for its customer, in the same answer. A service that
/// does not answer within this is left out of the answer rather than keep it waiting.
const BEST_EFFORT_MS: u64 = 250;
/// Longest a client's answer waits for a service when the coordinator has a truthful answer
/// of its own to give instead (the saga log's `pending` order, an erasure recorded as
/// `erasing`; see [`Coordinator::unless_known`]). A service that answers at all answers a
/// read or a keyed write in a few milliseconds, tens under load; one that is frozen would
/// otherwise hold the person for the call's whole deadline (`call_deadline_ms`, 5 s) until
/// its circuit opens, for an answer the coordinator had all along.
const KNOWN_ANSWER_MS: u64 = 300;
/// Most confirmed sagas waiting to be recorded; past that one is left to the sweeper.
const CONFIRMS_WAITING_MAX: usize = 4_096;
/// Most sagas held as "their order is not at the orders service yet"; past that a new one
/// is not held, and a read of its order asks the orders service (the safe side).
const UNWRITTEN_MAX: usize = 65_536;

#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    node: Node,
    clients: Arc<Clients>,
    config: CoordinatorConfig,
    /// Client idempotency keys being worked on in this process.
    keys: InFlight,
    /// Sagas being driven in this process (by a request or by the sweeper).
    driving: InFlight,
    /// Confirmed sagas whose end is not recorded yet (see [`Coordinator::confirmed`]).
    confirms: Arc<Group<OrderId>>,
    /// The same sagas until their end is durable in the log: the log still says `running`
    /// of them, so it has no answer of its own for their orders (see
    /// [`Coordinator::log_lags`]). Bounded by the sagas unfinished in the log: each is
    /// removed by the write that records its end.
    unrecorded: Arc<Mutex<HashSet<OrderId>>>,
    /// Sagas this coordinator logged whose order certainly is not at the orders service: no
    /// call of theirs that writes it (create, or fail) may have reached that service yet. For
    /// them, and only for them, the log's `pending` is certain (see
    /// [`Coordinator::order_unwritten`]). Lost with the process, which is the safe side: an
    /// order not held here is asked of the orders service. At most [`UNWRITTEN_MAX`].
    unwritten: Arc<Mutex<HashSet<OrderId>>>,
    /// Where the events of this coordinator's steps lie in the outbox, for the reads that
    /// must see them.
    written: Written,
}

fn step_key(order: &OrderId, step: &str) -> Option<String> {
    Some(format!("{order}:{step}"))
}

impl Coordinator {
    pub fn new(node: Node, clients: Arc<Clients>, config: CoordinatorConfig) -> Self {
        assert!(config.minor_units_per_point > 0);
        assert!(
            config.lease_ms > config.order_deadline_ms,
            "a lease outlives the request"
        );
        Coordinator {
            inner: Arc::new(Inner {
                node,
                config,
                keys: InFlight::default(),
                driving: InFlight::default(),
                confirms: Arc::new(Group::new(CONFIRMS_WAITING_MAX)),
                unrecorded: Arc::default(),
                unwritten: Arc::default(),
                written: Written::default(),
                clients,
            }),
        }
    }

    pub fn clients(&self) -> &Arc<Clients> {
        &self.inner.clients
    }

    fn deadline(&self, ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// A read forwarded for a client. It sees what the events written before it did to its
    /// service, all of them (a list; stock after a cancellation), after a bounded wait for the
    /// relay ([`read_your_writes`]).
    async fn ask<C: Call>(&self, call: C) -> Result<C::Reply, ShopError> {
        Ok(self.asking(Sees::All, call).await?)
    }

    /// [`Coordinator::ask`] about one customer: it waits only for the events of theirs (the
    /// points of the order they were just sold).
    async fn ask_about<C: Call>(&self, customer: &CustomerId, call: C) -> Result<C::Reply, ShopError> {
        Ok(self.asking(Sees::Customer(customer), call).await?)
    }

    /// A read forwarded after what it must see (`sees`), failing as the call does.
    async fn asking<C: Call>(&self, sees: Sees<'_>, call: C) -> Result<C::Reply, CallError> {
        let clients = &self.inner.clients;
        self.inner.written.caught_up(clients, C::SERVICE, sees).await;
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        clients.call(&call, None, deadline).await
    }

    /// A service's answer, when the coordinator has a truthful answer of its own to give in
    /// its stead: the client waits for `call` (with whatever it waits for first) at most
    /// [`KNOWN_ANSWER_MS`], then is answered with what the coordinator knows. `None`: no
    /// answer came in that time, or none can come now (the service is unavailable, its
    /// circuit open); the caller answers from what it knows. A refusal is an answer.
    ///
    /// The one place this rule lives: where the coordinator has no answer of its own, a call
    /// keeps its full deadline ([`Coordinator::ask`], [`Coordinator::change`]). `call` runs
    /// with its own deadline, and is dropped when the wait is over: a read is only given up,
    /// and a change carries a step key, so the one who finishes it (the sweeper) does it once.
    /// Being dropped does not count against the service's circuit: the wait is short by the
    /// coordinator's choice, not because the service failed.
    async fn unless_known<T>(&self, call: impl Future<Output = Result<T, CallError>>) -> Option<Result<T, ShopError>> {
        match tokio::time::timeout(Duration::from_millis(KNOWN_ANSWER_MS), call).await {
            Ok(Ok(reply)) => Some(Ok(reply)),
            Ok(Err(CallError::Refused(refusal))) => Some(Err(refusal)),
            Ok(Err(e)) => {
                tracing::debug!(error = ?e, "answered from what the coordinator knows");
                None
            }
            Err(_) => {
                tracing::debug!(
                    within_ms = KNOWN_ANSWER_MS,
                    "no answer in time; answered from what the coordinator knows"
                );
                None
            }
        }
    }

    /// A change forwarded for a client: one fresh step key for this request, kept over its
    /// retries, so a retried call whose reply was lost is not carried out twice. Like a read,
    /// it comes after what it must see of the events written before it (`sees`): its answer
    /// shows their effect too.
    async fn change<C: Call>(&self, sees: Sees<'_>, call: C) -> Result<C::Reply, ShopError> {
        let clients = &self.inner.clients;
        self.inner.written.caught_up(clients, C::SERVICE, sees).await;
        let key = format!("req:{}", self.inner.node.ids.next_id());
        let deadline = self.deadline(self.inner.config.call_deadline_ms);
        Ok(clients.call(&call, Some(key), deadline).await?)
    }

    /// A call whose reply only adds to a client's answer: it waits at most
    /// [`BEST_EFFORT_MS`], whatever the service does.
    async fn extra_call<C: Call>(&self, call: C) -> Result<C::Reply, CallError> {
        let within = Duration::from_millis(BEST_EFFORT_MS);
        let reply = self.inner.clients.call_within(&call, within).await;
        if let Err(e) = &reply {
            tracing::debug!(path = C::PATH, error = ?e, "left out of an answer");
        }
        reply
    }

    /// [`Coordinator::extra_call`]'s reply, `None` if there is none.
    async fn extra<C: Call>(&self, call: C) -> Option<C::Reply> {
        self.extra_call(call).await.ok()
    }

    /// Probes the circuits of the services that are down, so that no client's request has
    /// to (see [`Clients::spawn_prober`]). A vital task of the coordinator.
    pub fn spawn_prober(&self) -> tokio::task::JoinHandle<()> {
        self.inner.clients.spawn_prober(&self.inner.node.db.tasks)
    }

    /// Forgets finished sagas past retention, now and then.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let node = &self.inner.node;
        lemonade_store::maintenance::spawn_expiry(
            &node.db,
            Arc::clone(&node.clock),
            self.inner.config.retention_ms,
            "finished sagas",
            sagas::expire,
        )
    }
}

#[cfg(test)]
mod tests;
