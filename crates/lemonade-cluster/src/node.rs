//! What every service process has: its own database, its clock and id source (seams), and
//! the two ways it touches its database: a read from a snapshot, or a change carried out once
//! per step key.

use std::sync::Arc;

use lemonade_domain::ShopError;
use lemonade_domain::ports::{Clock, DependencyHealth, Health, IdSource, IdempotencyKey};
use lemonade_domain::saga::{Envelope, Event};
use lemonade_domain::values::Timestamp;
use lemonade_store::conn::Db;
use lemonade_store::sql::{events, steps};
use lemonade_store::{Database, Tx};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::rpc::EVENTS_PER_DELIVERY_MAX;

/// How long a service keeps step results: far longer than any saga can take to finish.
pub const STEP_RETENTION_MS: i64 = 48 * 3_600_000;
/// How long a receiver remembers an applied event at least, on top of its sender's word that
/// the relay will not send it again. The relay is the one path of events, so the word alone
/// would do; the age is a margin (twice the step results' life, which bounded the coordinator's
/// own deliveries when it made them). See docs/design.md, "Events".
pub const INBOX_RETENTION_MS: i64 = 2 * STEP_RETENTION_MS;
/// How long the orders service keeps events it delivered (the relay never reads them again).
pub const OUTBOX_RETENTION_MS: i64 = 48 * 3_600_000;

#[derive(Clone)]
pub struct Node {
    pub db: Database,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
}

/// What a service keeps for a while, and forgets by [`Node::spawn_expiry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    StepResults,
    AppliedEvents,
    DeliveredEvents,
}

impl Node {
    pub fn new(db: Database, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        Node { db, clock, ids }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The events this service recorded of `order`, in HLC order: at most `limit`, and never
    /// more than one past [`TIMELINE_EVENTS_MAX`](lemonade_domain::hlc::TIMELINE_EVENTS_MAX)
    /// (so the gatherer can tell a timeline was cut). The one handler of each service's
    /// timeline call.
    pub async fn timeline(
        &self,
        order: lemonade_domain::ids::OrderId,
        limit: u32,
    ) -> Result<Vec<lemonade_domain::hlc::TimelineEvent>, ShopError> {
        let limit = limit.min(lemonade_domain::hlc::TIMELINE_EVENTS_MAX + 1);
        self.read(move |db| lemonade_store::sql::timeline::of_order(db, &order, limit))
            .await
    }

    pub async fn read<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        self.db.readers.read(work).await
    }

    /// A read by key of a row or two (see [`Readers::lookup`](lemonade_store::readers::Readers::lookup)).
    pub async fn lookup<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, ShopError> + Send + 'static,
    {
        self.db.readers.lookup(work).await
    }

    /// Carries out a step once: `work` runs in one transaction with the storing of its result
    /// under `key`; a repeated key gets the stored result. The server only hands a handler
    /// of a changing call a key, so its absence is a bug.
    ///
    /// `work` gets its [`Tx`] as [`Node::write`]'s does: the time read when its turn to write
    /// has come, and the id source to draw from then, so times and ids follow the order the
    /// writes were applied in, never the order they were asked for.
    pub async fn once<T, F>(&self, key: Option<IdempotencyKey>, work: F) -> Result<T, ShopError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ShopError> + Send + 'static,
    {
        let key = key.expect("the internal server requires a step key for every change");
        #[cfg(feature = "plant-step-forgets-result")]
        {
            // A planted bug (issue 12's proof of teeth): the step's key is not stored with
            // its result, so a retried step is carried out again.
            let _ = key;
            return self.write(move |tx| work(tx)).await;
        }
        #[cfg(not(feature = "plant-step-forgets-result"))]
        self.write(move |tx| steps::once(tx, &key, work)).await?
    }

    /// [`once`](Node::once) for a step whose result holds personal data: the step store keeps
    /// only `keep` of it (a reference), and every answer, the first and each replay, is
    /// `answer` of that reference, read in the same transaction. So no copy of the person sits
    /// in the step store for an erasure to miss, and a replay after one answers what is left.
    pub async fn once_by_reference<T, R, F, A>(
        &self,
        key: Option<IdempotencyKey>,
        work: F,
        keep: fn(&T) -> R,
        answer: A,
    ) -> Result<T, ShopError>
    where
        T: Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ShopError> + Send + 'static,
        A: FnOnce(&dyn Db, R) -> Result<T, ShopError> + Send + 'static,
    {
        let key = key.expect("the internal server requires a step key for every change");
        self.write(move |tx| {
            let kept = steps::once(tx, &key, |tx| work(tx).map(|t| keep(&t)))?;
            Ok(kept.and_then(|r| answer(tx.conn, r)))
        })
        .await?
    }

    /// A change without a step key (event deliveries, which the inbox deduplicates, and the
    /// service's own housekeeping), as one writer job with its [`Tx`] ([`Database::write`]).
    pub async fn write<T, F>(&self, work: F) -> Result<T, ShopError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ShopError> + Send + 'static,
    {
        self.db.write(&self.clock, &self.ids, work).await
    }

    /// Forgets, now and then, what this service keeps for a while: step results older than
    /// [`STEP_RETENTION_MS`] (every service), applied events that can no longer arrive
    /// (stock and CRM, [`INBOX_RETENTION_MS`]), delivered events (the orders service,
    /// [`OUTBOX_RETENTION_MS`]).
    pub fn spawn_expiry(&self, kept: Kept) -> tokio::task::JoinHandle<()> {
        let (retention_ms, what, expire): (_, _, lemonade_store::maintenance::Expire) = match kept {
            Kept::StepResults => (STEP_RETENTION_MS, "step results", steps::expire),
            Kept::AppliedEvents => (INBOX_RETENTION_MS, "applied events", events::forget_applied),
            Kept::DeliveredEvents => (OUTBOX_RETENTION_MS, "delivered events", events::expire_delivered),
        };
        lemonade_store::maintenance::spawn_expiry(&self.db, Arc::clone(&self.clock), retention_ms, what, expire)
    }

    /// Whether this process can still serve from its database (see
    /// [`Database::health`]).
    pub async fn probe(&self) -> Result<(), ShopError> {
        self.db.health().await
    }

    /// A service's own health: only its database, its writer and its vital tasks (what
    /// other services do is not its health).
    pub async fn health(&self) -> Health {
        let database = self.probe().await;
        let ok = database.is_ok();
        Health {
            ok,
            serving: ok,
            mode: self.db.role.as_str().into(),
            dependencies: vec![DependencyHealth {
                name: "database".into(),
                ok,
                detail: database.err().map(|e| e.to_string()),
                degrades: if ok { vec![] } else { vec!["everything".into()] },
            }],
            clock: lemonade_domain::ports::ClockHealth::of(&self.db.hlc),
        }
    }
}

/// Refuses a delivery that is too large or carries events meant for another service.
pub(crate) fn check_events(envelopes: &[Envelope], ours: impl Fn(&Event) -> bool) -> Result<(), ShopError> {
    if envelopes.len() > EVENTS_PER_DELIVERY_MAX {
        return Err(ShopError::validation(
            "events",
            format!("at most {EVENTS_PER_DELIVERY_MAX} per delivery"),
        ));
    }
    match envelopes.iter().position(|e| !ours(&e.event)) {
        Some(i) => Err(ShopError::validation(
            format!("events[{i}]"),
            "not an event for this service",
        )),
        None => Ok(()),
    }
}
