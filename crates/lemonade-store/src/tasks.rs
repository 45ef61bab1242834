//! The tasks of a process. The vital ones it cannot do without: the outbox relay, the saga
//! sweeper, the release of expired leases, the expiry of old rows. Each loops until the
//! process stops, so one that has ended has died (a panic), and the process can no longer do
//! its whole job: its health says so, and a supervisor restarts it. And short ones, which end
//! on their own ([`Tasks::spawn_short`]): a placement's saga, a probe, a scrub. A clean stop
//! ends them all and waits until each has let go of what it held ([`Tasks::stop`]).

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One task: its name, the way to stop it, and word of its end (the sender lives in the
/// task's future, so it is dropped when the task ends, by finishing, panicking or being
/// aborted).
struct Running {
    what: String,
    handle: AbortHandle,
    ended: oneshot::Receiver<()>,
}

/// The tasks of one process, vital and short (cheap to clone: clones share them).
#[derive(Clone, Default)]
pub struct Tasks {
    running: Arc<Mutex<Vec<Running>>>,
    /// The short tasks: a count of those whose future is not yet dropped (nothing is kept
    /// of one that has ended, so they cannot pile up).
    short: TaskTracker,
    /// Cancelled at the stop: ends every short task at its next await.
    stopping: CancellationToken,
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

    /// Spawns `task`, a short one that ends on its own (a placement's saga, a probe, a
    /// scrub): not vital, so health does not report it, and nothing is kept of it once it
    /// has ended. The stop ends it at its next await, as it would a vital task; so must a
    /// crash, so whatever it does must be safe to cut there (each caller says why it is).
    ///
    /// Its handle gives `Some` of its output, or `None` when the stop ended it first. Once
    /// the process has stopped, a short task ends at once, without running.
    pub fn spawn_short<F>(&self, task: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let stopping = self.stopping.clone();
        self.short.spawn(async move {
            // Biased: a task the stop has reached is not polled again, as if aborted.
            tokio::select! {
                biased;
                () = stopping.cancelled() => None,
                done = task => Some(done),
            }
        })
    }

    /// How many short tasks are running (spawned, and their future not yet dropped).
    pub fn short_running(&self) -> usize {
        self.short.len()
    }

    /// Stops every task, vital and short (each at its next await), and returns once each
    /// has ended, so nothing they held (a database handle, a client) outlives the stop.
    /// Short tasks spawned after it end at once.
    pub async fn stop(&self) {
        let stopping: Vec<Running> = self.running.lock().drain(..).collect();
        for running in &stopping {
            running.handle.abort();
        }
        self.stopping.cancel();
        self.short.close();
        for running in stopping {
            let _ = running.ended.await;
        }
        self.short.wait().await;
    }

    /// The names of the vital tasks registered and not stopped, in the order they were spawned.
    pub fn names(&self) -> Vec<String> {
        self.running.lock().iter().map(|r| r.what.clone()).collect()
    }

    /// The name of a vital task that has ended, if any has.
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

    fn ms(n: u64) -> std::time::Duration {
        std::time::Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn short_tasks_that_ended_leave_nothing_behind_and_are_not_named() {
        let tasks = Tasks::default();
        let held = Arc::new(());
        let ends: Vec<_> = (0..1_000)
            .map(|i| {
                let held = Arc::clone(&held);
                tasks.spawn_short(async move {
                    let _held = held;
                    tokio::time::sleep(ms(10)).await;
                    i
                })
            })
            .collect();
        let dying = tasks.spawn_short(async { panic!("a bug") });
        assert_eq!(tasks.short_running(), 1_001);
        assert_eq!(Arc::strong_count(&held), 1_001);
        assert!(dying.await.unwrap_err().is_panic());
        for (i, end) in ends.into_iter().enumerate() {
            assert_eq!(end.await.unwrap(), Some(i));
        }
        assert_eq!(tasks.short_running(), 0, "nothing is kept of a short task that ended");
        assert_eq!(Arc::strong_count(&held), 1);
        assert!(tasks.names().is_empty(), "health does not name short tasks");
        assert_eq!(tasks.stopped(), None, "nor one that died");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_a_short_task_still_running_and_returns_once_it_let_go() {
        let tasks = Tasks::default();
        tasks.spawn("the relay", std::future::pending());
        let held = Arc::new(());
        let long = tasks.spawn_short({
            let held = Arc::clone(&held);
            async move {
                let _held = held;
                tokio::time::sleep(ms(3_600_000)).await;
                "done"
            }
        });
        tokio::time::sleep(ms(1)).await;
        assert_eq!((tasks.short_running(), Arc::strong_count(&held)), (1, 2));
        let started = tokio::time::Instant::now();
        tasks.stop().await;
        assert!(started.elapsed() < ms(1), "the stop did not wait the hour out");
        assert_eq!(Arc::strong_count(&held), 1, "the short task's future was dropped");
        assert_eq!(tasks.short_running(), 0);
        assert_eq!(long.await.unwrap(), None, "cut by the stop");
        let late = tasks.spawn_short(async { "ran" });
        assert_eq!(late.await.unwrap(), None, "after the stop a short task does not run");
    }
}
