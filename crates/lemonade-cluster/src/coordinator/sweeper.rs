//! The sweeper: drives every unfinished saga on from the saga log (also after a restart),
//! and finishes the erasures that were recorded but not done.

use std::time::Duration;

use lemonade_domain::saga::machine::Stop;
use lemonade_domain::values::Timestamp;
use lemonade_store::sql::directory;
use lemonade_store::sql::sagas;

use super::Coordinator;

/// Most unfinished sagas (and erasures) the sweeper takes on per round.
const SWEEP_BATCH_MAX: u32 = 64;

impl Coordinator {
    /// Drives every unfinished saga left alone for a sweep period, until stopped. Started
    /// with the coordinator, so a crash mid-saga is picked up on restart.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.inner.node.db.tasks.spawn("the saga sweeper", async move {
            let period = Duration::from_millis(this.inner.config.sweep_period_ms);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut first = true;
            loop {
                tick.tick().await;
                // On start, everything unfinished is somebody's crash: take it all at once.
                let idle_ms = if first {
                    0
                } else {
                    this.inner.config.sweep_period_ms as i64 * 2
                };
                first = false;
                // `unfinished` takes sagas last touched strictly before this instant.
                let idle_before = Timestamp(this.inner.node.now().millis() - idle_ms + 1);
                this.sweep_sagas(idle_before).await;
                this.sweep_erasures(idle_before).await;
            }
        })
    }

    /// One round: drives each unfinished saga last touched before `idle_before` that no
    /// request is driving, from its state in the log.
    async fn sweep_sagas(&self, idle_before: Timestamp) {
        if cfg!(feature = "plant-sweeper-forgets-sagas") {
            // A planted bug (issue 12's proof of teeth): the sweeper's round does nothing, so
            // a saga its request left (a 202, a crash) is never finished.
            return;
        }
        let swept = self
            .inner
            .node
            .read(move |db| sagas::unfinished(db, idle_before, SWEEP_BATCH_MAX))
            .await;
        let unfinished = match swept {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "the sweeper cannot read the saga log");
                return;
            }
        };
        for saga in unfinished {
            let Ok(_driving) = self.inner.driving.claim(saga.order_id.as_str()) else {
                continue; // a request is driving it
            };
            let id = saga.order_id.clone();
            let _ = self.inner.node.write(move |tx| sagas::attempted(tx, &id)).await;
            let deadline = self.deadline(self.inner.config.call_deadline_ms);
            match self.resume(&saga.order_id, deadline).await.map(|(_, stop)| stop) {
                Some(Stop::Confirmed(_)) => tracing::info!(order = %saga.order_id, "sweeper confirmed an order"),
                Some(Stop::Failed(reason)) => {
                    tracing::info!(order = %saga.order_id, reason, "sweeper failed an order")
                }
                Some(Stop::Pending) | None => {}
            }
        }
    }

    /// Finishes erasures that were asked for but not done (their orders in flight took too
    /// long, or CRM was down), once their customer has no order in flight.
    async fn sweep_erasures(&self, idle_before: Timestamp) {
        let erasing = self
            .inner
            .node
            .read(move |db| directory::erasing(db, idle_before, SWEEP_BATCH_MAX))
            .await;
        let erasing = match erasing {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "the sweeper cannot read the customer directory");
                return;
            }
        };
        for customer in erasing {
            let id = customer.clone();
            let _ = self.inner.node.write(move |tx| directory::touch(tx, &id)).await;
            if !matches!(self.orders_in_flight_finish(&customer, 0).await, Ok(true)) {
                continue;
            }
            let deadline = self.deadline(self.inner.config.call_deadline_ms);
            match self.finish_erasure(&customer, deadline).await {
                Ok(_) => tracing::info!(customer = %customer, "sweeper finished an erasure"),
                Err(e) => tracing::warn!(customer = %customer, error = ?e, "could not finish an erasure yet"),
            }
        }
    }
}
