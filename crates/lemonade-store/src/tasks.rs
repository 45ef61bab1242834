//! The background tasks a process cannot do without: the outbox relay, the saga sweeper,
//! the release of expired leases, the expiry of old rows. Each loops until the process
//! stops, so one that has ended has died (a panic), and the process can no longer do its
//! whole job: its health says so, and a supervisor restarts it.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::{AbortHandle, JoinHandle};

/// The vital tasks of one process (cheap to clone: clones share the list).
#[derive(Clone, Default)]
pub struct Tasks {
    running: Arc<Mutex<Vec<(String, AbortHandle)>>>,
}

impl Tasks {
    /// Spawns `task`, which must run until the process stops, under the name `what` (which
    /// health reports, as in "the relay to crm has stopped").
    pub fn spawn<F>(&self, what: impl Into<String>, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task);
        self.running.lock().push((what.into(), handle.abort_handle()));
        handle
    }

    /// Stops every task (at its next await), for a clean stop of the process.
    pub fn stop_all(&self) {
        for (_, handle) in self.running.lock().drain(..) {
            handle.abort();
        }
    }

    /// The name of a task that has ended, if any has.
    pub fn stopped(&self) -> Option<String> {
        self.running
            .lock()
            .iter()
            .find(|(_, handle)| handle.is_finished())
            .map(|(what, _)| what.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_died_is_named_and_one_that_runs_is_not() {
        let tasks = Tasks::default();
        tasks.spawn("the forever task", std::future::pending());
        assert_eq!(tasks.stopped(), None);
        let dying = tasks.spawn("the relay", async { panic!("a bug") });
        assert!(dying.await.unwrap_err().is_panic());
        assert_eq!(tasks.stopped().as_deref(), Some("the relay"));
    }
}
