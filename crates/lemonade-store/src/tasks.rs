//! The background tasks a process cannot do without: the outbox relay, the saga sweeper,
//! the release of expired leases, the expiry of old rows. Each loops until the process
//! stops, so one that has ended has died (a panic), and the process can no longer do its
//! whole job: its health says so, and a supervisor restarts it. A clean stop ends them all
//! and waits until each has let go of what it held ([`Tasks::stop`]).

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};

/// One task: its name, the way to stop it, and word of its end (the sender lives in the
/// task's future, so it is dropped when the task ends, by finishing, panicking or being
/// aborted).
struct Running {
    what: String,
    handle: AbortHandle,
    ended: oneshot::Receiver<()>,
}

/// The vital tasks of one process (cheap to clone: clones share the list).
#[derive(Clone, Default)]
pub struct Tasks {
    running: Arc<Mutex<Vec<Running>>>,
}

impl Tasks {
    /// Spawns `task`, which must run until the process stops, under the name `what` (which
    /// health reports, as in "the relay to crm has stopped").
    pub fn spawn<F>(&self, what: impl Into<String>, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (ending, ended) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ending = ending;
            task.await
        });
        self.running.lock().push(Running {
            what: what.into(),
            handle: handle.abort_handle(),
            ended,
        });
        handle
    }

    /// Stops every task (at its next await) and returns once each has ended, so nothing
    /// they held (a database handle, a client) outlives the stop.
    pub async fn stop(&self) {
        let stopping: Vec<Running> = self.running.lock().drain(..).collect();
        for running in &stopping {
            running.handle.abort();
        }
        for running in stopping {
            let _ = running.ended.await;
        }
    }

    /// The names of the tasks registered and not stopped, in the order they were spawned.
    pub fn names(&self) -> Vec<String> {
        self.running.lock().iter().map(|r| r.what.clone()).collect()
    }

    /// The name of a task that has ended, if any has.
    pub fn stopped(&self) -> Option<String> {
        self.running
            .lock()
            .iter()
            .find(|r| r.handle.is_finished())
            .map(|r| r.what.clone())
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

    #[tokio::test]
    async fn a_stop_returns_once_every_task_has_let_go_of_what_it_held() {
        let tasks = Tasks::default();
        let held = Arc::new(());
        for what in ["the sweeper", "the relay"] {
            let held = Arc::clone(&held);
            tasks.spawn(what, async move {
                let _held = held;
                std::future::pending::<()>().await
            });
        }
        assert_eq!(tasks.names(), ["the sweeper", "the relay"]);
        assert_eq!(Arc::strong_count(&held), 3);
        tasks.stop().await;
        assert_eq!(Arc::strong_count(&held), 1, "every task's future was dropped");
        assert!(tasks.names().is_empty());
        assert_eq!(tasks.stopped(), None);
    }
}
