//! Calling another service, the careful way: every call has a deadline and a timeout per
//! attempt; a failure that may be passing (refused connection, timeout, 429, 503, a reply
//! that cannot be decoded) is retried with exponential backoff and full jitter, never sooner
//! than the service's `Retry-After`; retries draw on a budget, so that when a service is
//! overloaded they stop adding to its load; and a circuit breaker per service fails calls
//! fast while the service keeps failing, letting one probe through now and then.
//!
//! Retrying is safe because every call that changes something carries a step key and the
//! receiver keeps its first result under it: a call whose outcome is unknown (the request
//! went out, the reply never came) is simply asked again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use lemonade_domain::ShopError;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::rpc::{Call, Service};
use crate::transport::{Request, Transport, TransportError};

/// How calls are made. Units are in the names.
#[derive(Clone, Copy, Debug)]
pub struct CallPolicy {
    /// Longest one attempt may take.
    pub attempt_timeout_ms: u64,
    /// Most retries of one call (after the first attempt).
    pub retries_max: usize,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Consecutive failures that open a service's circuit.
    pub breaker_failures_max: u32,
    /// How long an open circuit stays open before letting a probe through.
    pub breaker_open_ms: u64,
    /// Retries may be at most this share of calls (in thousandths), plus the floor.
    pub budget_retry_per_mille: i64,
    /// Retries allowed a second whatever the traffic (the floor of the retry budget).
    pub budget_floor_per_s: i64,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            attempt_timeout_ms: 2_000,
            retries_max: 4,
            backoff_min_ms: 5,
            backoff_max_ms: 1_000,
            breaker_failures_max: 8,
            breaker_open_ms: 500,
            budget_retry_per_mille: 200,
            budget_floor_per_s: 20,
        }
    }
}

/// Why a call did not give a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The service answered, and the answer is no. Retrying would give the same answer.
    Refused(ShopError),
    /// No usable answer: the service may be down, overloaded or slow, or its reply was lost
    /// or garbled. `unknown` means the request may have been carried out.
    Failed {
        service: Service,
        detail: String,
        unknown: bool,
        retry_after: Option<Duration>,
    },
}

impl CallError {
    fn failed(service: Service, detail: impl Into<String>, unknown: bool) -> Self {
        CallError::Failed {
            service,
            detail: detail.into(),
            unknown,
            retry_after: None,
        }
    }
    pub fn is_transient(&self) -> bool {
        matches!(self, CallError::Failed { .. })
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Failed { retry_after, .. } => *retry_after,
            CallError::Refused(_) => None,
        }
    }
}

impl From<CallError> for ShopError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Refused(e) => e,
            CallError::Failed { service, detail, .. } => {
                ShopError::unavailable(format!("the {service} service is unavailable ({detail}); try again"))
            }
        }
    }
}

/// The state of a service's circuit, on the tokio clock (virtual in a simulation). Every
/// state has a way out: `Open` ends at its time, and `Probing` when its probe's outcome is
/// recorded, when the probe is dropped unrecorded, or at the latest at its own time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// Probe `probe` is out; every other call fails fast until it comes back, or until
    /// `until`, after which it counts as lost and another call may probe.
    Probing {
        probe: u64,
        until: Instant,
    },
}

/// A consecutive-failure circuit breaker: `failures_max` failures in a row open the circuit
/// for `open_ms`; then one call at a time probes, and its outcome closes or opens it again.
struct Breaker {
    circuit: Mutex<Circuit>,
    /// The id of the next probe.
    probes: AtomicU64,
    failures_max: u32,
    open_ms: u64,
    /// Longest a probe may hold the circuit: one attempt's timeout.
    probe_ms: u64,
}

/// Leave for one attempt. The attempt's outcome is [`record`](Admission::record)ed; a probe
/// dropped without it (its caller gave up, or a client hung up) ends on drop.
#[must_use = "an admitted attempt records its outcome"]
struct Admission<'a> {
    breaker: &'a Breaker,
    /// The probe this attempt is, if it is one.
    probe: Option<u64>,
}

impl Admission<'_> {
    fn record(mut self, healthy: bool) {
        self.probe = None;
        self.breaker.record(healthy);
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(probe) = self.probe {
            self.breaker.abandon(probe);
        }
    }
}

impl Breaker {
    fn new(policy: &CallPolicy) -> Self {
        Breaker {
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
            probes: AtomicU64::new(0),
            failures_max: policy.breaker_failures_max.max(1),
            open_ms: policy.breaker_open_ms,
            probe_ms: policy.attempt_timeout_ms,
        }
    }

    /// Leave for a call to go out now, or `None` while the circuit fails calls fast.
    fn admit(&self) -> Option<Admission<'_>> {
        let now = Instant::now();
        let mut circuit = self.circuit.lock();
        let probe = match *circuit {
            Circuit::Closed { .. } => None,
            Circuit::Open { until } | Circuit::Probing { until, .. } if now >= until => {
                let probe = self.probes.fetch_add(1, Ordering::Relaxed);
                *circuit = Circuit::Probing {
                    probe,
                    until: now + Duration::from_millis(self.probe_ms),
                };
                Some(probe)
            }
            Circuit::Open { .. } | Circuit::Probing { .. } => return None,
        };
        Some(Admission { breaker: self, probe })
    }

    /// An attempt's outcome: a success closes the circuit, a failure counts towards opening
    /// it (or opens it again, after a probe).
    fn record(&self, healthy: bool) {
        let mut circuit = self.circuit.lock();
        *circuit = match (healthy, *circuit) {
            (true, _) => Circuit::Closed { failures: 0 },
            (false, Circuit::Closed { failures }) if failures + 1 < self.failures_max => {
                Circuit::Closed { failures: failures + 1 }
            }
            (false, _) => Circuit::Open {
                until: Instant::now() + Duration::from_millis(self.open_ms),
            },
        };
    }

    /// A probe that ended without an outcome: it says nothing of the service, so the next
    /// call probes instead.
    fn abandon(&self, probe: u64) {
        let mut circuit = self.circuit.lock();
        if let Circuit::Probing { probe: out, .. } = *circuit
            && out == probe
        {
            *circuit = Circuit::Open { until: Instant::now() };
        }
    }

    fn is_open(&self) -> bool {
        !matches!(*self.circuit.lock(), Circuit::Closed { .. })
    }
}

/// Limits retries to a share of the calls plus a floor: every call deposits
/// `budget_retry_per_mille` thousandths of a retry, time adds `budget_floor_per_s` retries a
/// second (so a quiet service can still retry, and an exhausted budget refills even without
/// traffic), every retry takes one, and the balance never passes ten seconds' floor. So
/// retries can never be more than that share of the traffic plus the floor, however many
/// callers are retrying at once. On the tokio clock.
struct RetryBudget {
    balance: Mutex<Balance>,
    per_call: i64,
    floor_per_s: i64,
    cap: i64,
}

struct Balance {
    /// In thousandths of a retry.
    milli: i64,
    refilled_at: Instant,
}

impl RetryBudget {
    fn new(policy: &CallPolicy) -> Self {
        let floor_per_s = policy.budget_floor_per_s.max(0);
        RetryBudget {
            // A service starts with a second's floor.
            balance: Mutex::new(Balance {
                milli: floor_per_s * 1_000,
                refilled_at: Instant::now(),
            }),
            per_call: policy.budget_retry_per_mille.max(0),
            floor_per_s,
            cap: floor_per_s.max(1) * 10 * 1_000,
        }
    }

    /// Adds the floor for the time since the last refill; the caller holds the lock.
    fn refill(&self, balance: &mut Balance) {
        let now = Instant::now();
        let elapsed_ms = now.saturating_duration_since(balance.refilled_at).as_millis();
        // `floor_per_s` retries a second is `floor_per_s` thousandths a millisecond.
        let earned = i64::try_from(elapsed_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(self.floor_per_s);
        balance.milli = balance.milli.saturating_add(earned).min(self.cap);
        balance.refilled_at = now;
    }

    /// A call was made.
    fn deposit(&self) {
        let mut balance = self.balance.lock();
        self.refill(&mut balance);
        balance.milli = (balance.milli + self.per_call).min(self.cap);
    }

    /// Takes one retry, if the budget has one.
    fn withdraw(&self) -> bool {
        let mut balance = self.balance.lock();
        self.refill(&mut balance);
        let ok = balance.milli >= 1_000;
        if ok {
            balance.milli -= 1_000;
        }
        ok
    }
}

/// The calling side of every service: one transport, a breaker per service, one retry budget.
pub struct Clients {
    transport: Arc<dyn Transport>,
    policy: CallPolicy,
    breakers: HashMap<Service, Breaker>,
    budget: RetryBudget,
    jitter: Mutex<SmallRng>,
}

impl Clients {
    /// `seed` drives the jitter: a simulation passes its own, production a random one.
    pub fn new(transport: Arc<dyn Transport>, policy: CallPolicy, seed: u64) -> Self {
        Clients {
            transport,
            breakers: Service::ALL.into_iter().map(|s| (s, Breaker::new(&policy))).collect(),
            budget: RetryBudget::new(&policy),
            policy,
            jitter: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }

    /// Whether calls to `service` are failing fast right now.
    pub fn circuit_open(&self, service: Service) -> bool {
        self.breakers[&service].is_open()
    }

    /// Makes `call`, retrying what may pass until `deadline`. A call that changes something
    /// must come with its step key.
    pub async fn call<C: Call>(
        &self,
        call: &C,
        step_key: Option<String>,
        deadline: Instant,
    ) -> Result<C::Reply, CallError> {
        assert_eq!(C::CHANGES, step_key.is_some(), "{}: a change needs a step key", C::PATH);
        let body = Bytes::from(serde_json::to_vec(call).expect("calls serialise"));
        self.budget.deposit();
        let attempt = || self.attempt::<C>(body.clone(), step_key.clone(), deadline);
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(self.policy.backoff_min_ms))
            .with_max_delay(Duration::from_millis(self.policy.backoff_max_ms))
            .with_max_times(self.policy.retries_max);
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e| e.is_transient() && Instant::now() < deadline && self.budget.withdraw())
            .adjust(|e, backoff| {
                // Full jitter: anywhere between nothing and the exponential step, but never
                // before the service said it can take us again, and never past the deadline.
                let step = backoff?;
                let jittered = self.jitter.lock().random_range(Duration::ZERO..=step);
                let wait = jittered.max(e.retry_after().unwrap_or_default());
                (Instant::now() + wait < deadline).then_some(wait)
            })
            .notify(|e, wait| tracing::debug!(path = C::PATH, error = ?e, ?wait, "retrying"))
            .await
    }

    async fn attempt<C: Call>(
        &self,
        body: Bytes,
        step_key: Option<String>,
        deadline: Instant,
    ) -> Result<C::Reply, CallError> {
        let service = C::SERVICE;
        // An attempt that cannot run is refused before it may take the circuit's probe.
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.min(Duration::from_millis(self.policy.attempt_timeout_ms));
        if timeout.is_zero() {
            return Err(CallError::failed(service, "no time left before the deadline", false));
        }
        let Some(admission) = self.breakers[&service].admit() else {
            metrics::counter!("lemonade_calls_short_circuited", "service" => service.as_str()).increment(1);
            return Err(CallError::failed(service, "circuit open: it keeps failing", false));
        };
        let request = Request {
            service,
            path: C::PATH,
            step_key,
            body,
            timeout,
        };
        let outcome = match self.transport.send(request).await {
            Err(e) => Err(match e {
                TransportError::Unsent(..) => CallError::failed(service, e.to_string(), false),
                TransportError::TimedOut(..) | TransportError::Broken(..) => {
                    CallError::failed(service, e.to_string(), true)
                }
            }),
            Ok(reply) => decode::<C>(service, reply),
        };
        // A refusal is the service working; 429 is it protecting itself, not failing.
        let healthy = match &outcome {
            Ok(_) | Err(CallError::Refused(_)) => true,
            Err(CallError::Failed { retry_after, .. }) => retry_after.is_some(),
        };
        admission.record(healthy);
        metrics::counter!("lemonade_calls", "service" => service.as_str(), "ok" => if outcome.is_ok() { "true" } else { "false" })
            .increment(1);
        outcome
    }
}

/// Turns a reply into the call's result. Nothing a peer sends can make this panic: a body
/// that is not what the call expects is a failure like a lost reply.
fn decode<C: Call>(service: Service, reply: crate::transport::Reply) -> Result<C::Reply, CallError> {
    let garbled = |e: serde_json::Error| CallError::failed(service, format!("its reply could not be read: {e}"), true);
    match reply.status {
        200 => serde_json::from_slice(&reply.body).map_err(garbled),
        429 => Err(CallError::Failed {
            service,
            detail: "rate limited".into(),
            unknown: false,
            retry_after: Some(reply.retry_after.unwrap_or(Duration::from_millis(100))),
        }),
        400..=499 => match serde_json::from_slice::<ShopError>(&reply.body) {
            Ok(e) => Err(CallError::Refused(e)),
            Err(e) => Err(garbled(e)),
        },
        status => Err(CallError::Failed {
            service,
            detail: format!("it answered {status}"),
            unknown: status != 503,
            retry_after: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    //! In paused tokio time: the clock moves only when a test advances it (or when every
    //! task waits on a timer), so every transition is exact.

    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;

    use super::*;
    use crate::rpc::StockStatus;
    use crate::transport::Reply;

    const OPEN_MS: u64 = 500;
    const ATTEMPT_MS: u64 = 2_000;

    fn policy() -> CallPolicy {
        CallPolicy {
            attempt_timeout_ms: ATTEMPT_MS,
            retries_max: 0,
            breaker_failures_max: 3,
            breaker_open_ms: OPEN_MS,
            budget_retry_per_mille: 200,
            budget_floor_per_s: 2,
            ..CallPolicy::default()
        }
    }

    async fn advance_ms(ms: u64) {
        tokio::time::advance(Duration::from_millis(ms)).await;
    }

    fn fail(breaker: &Breaker) {
        breaker.admit().expect("admitted").record(false);
    }

    /// A breaker opened by `failures_max` failures, its wait over: the next call probes.
    async fn open_and_waited() -> Breaker {
        let breaker = Breaker::new(&policy());
        for _ in 0..3 {
            fail(&breaker);
        }
        advance_ms(OPEN_MS).await;
        breaker
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_the_circuit_and_a_success_between_them_resets_the_count() {
        let breaker = Breaker::new(&policy());
        fail(&breaker);
        fail(&breaker);
        breaker.admit().expect("closed").record(true);
        fail(&breaker);
        fail(&breaker);
        assert!(!breaker.is_open(), "two failures since the success");
        fail(&breaker);
        assert!(breaker.is_open());
        assert!(breaker.admit().is_none(), "an open circuit fails calls fast");
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_circuit_lets_one_probe_through_once_its_wait_is_over() {
        let breaker = Breaker::new(&policy());
        for _ in 0..3 {
            fail(&breaker);
        }
        advance_ms(OPEN_MS - 1).await;
        assert!(breaker.admit().is_none(), "still open");
        advance_ms(1).await;
        let probe = breaker.admit().expect("a probe");
        assert!(probe.probe.is_some());
        assert!(breaker.admit().is_none(), "one probe at a time");
        probe.record(true);
        assert!(!breaker.is_open());
        assert!(breaker.admit().expect("closed").probe.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_the_circuit_for_another_wait() {
        let breaker = open_and_waited().await;
        breaker.admit().expect("a probe").record(false);
        assert!(breaker.admit().is_none());
        advance_ms(OPEN_MS).await;
        assert!(breaker.admit().is_some(), "the next probe");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_without_an_outcome_lets_the_next_call_probe() {
        let breaker = open_and_waited().await;
        drop(breaker.admit().expect("a probe"));
        let next = breaker.admit().expect("the next call probes at once");
        assert!(next.probe.is_some());
        next.record(true);
        assert!(!breaker.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaked_probe_holds_the_circuit_no_longer_than_one_attempt() {
        let breaker = open_and_waited().await;
        std::mem::forget(breaker.admit().expect("a probe"));
        advance_ms(ATTEMPT_MS - 1).await;
        assert!(breaker.admit().is_none(), "the probe may still come back");
        advance_ms(1).await;
        assert!(breaker.admit().expect("another probe").probe.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_probe_dropped_late_does_not_end_the_probe_that_replaced_it() {
        let breaker = open_and_waited().await;
        let stale = breaker.admit().expect("a probe");
        advance_ms(ATTEMPT_MS).await;
        let _current = breaker.admit().expect("the probe that replaced it");
        drop(stale);
        assert!(breaker.admit().is_none(), "the current probe still holds the circuit");
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_starts_with_the_floor_and_is_exhausted_without_calls_or_time() {
        let budget = RetryBudget::new(&policy());
        assert!(budget.withdraw() && budget.withdraw(), "a second's floor: 2");
        assert!(!budget.withdraw(), "exhausted");
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_deposits_a_share_of_a_retry() {
        let budget = RetryBudget::new(&policy());
        while budget.withdraw() {}
        for _ in 0..4 {
            budget.deposit();
        }
        assert!(!budget.withdraw(), "4 calls at 200 per mille are not a retry");
        budget.deposit();
        assert!(budget.withdraw(), "5 are");
        assert!(!budget.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_budget_refills_with_time_at_the_floor_up_to_ten_seconds_of_it() {
        let budget = RetryBudget::new(&policy());
        while budget.withdraw() {}
        advance_ms(499).await;
        assert!(!budget.withdraw(), "half a second of a floor of 2 is not yet a retry");
        advance_ms(1).await;
        assert!(budget.withdraw(), "it is at 500 ms");
        advance_ms(3_600_000).await;
        for _ in 0..1_000 {
            budget.deposit();
        }
        let mut retries = 0;
        while budget.withdraw() {
            retries += 1;
        }
        assert_eq!(retries, 20, "capped at ten seconds of the floor");
    }

    /// A transport whose service answers, refuses connections, or never answers.
    #[derive(Default)]
    struct Scripted {
        /// 0 answers, 1 refuses, 2 hangs.
        mode: AtomicUsize,
        sent: AtomicUsize,
    }

    const ANSWERS: usize = 0;
    const REFUSES: usize = 1;
    const HANGS: usize = 2;

    #[async_trait]
    impl Transport for Scripted {
        async fn send(&self, request: Request) -> Result<Reply, TransportError> {
            self.sent.fetch_add(1, Ordering::Relaxed);
            match self.mode.load(Ordering::Relaxed) {
                ANSWERS => Ok(Reply {
                    status: 200,
                    retry_after: None,
                    body: Bytes::from_static(br#"{"waiting":0}"#),
                }),
                REFUSES => Err(TransportError::Unsent(request.service, "refused".into())),
                _ => std::future::pending().await,
            }
        }
    }

    fn clients(policy: CallPolicy) -> (Arc<Clients>, Arc<Scripted>) {
        let transport = Arc::new(Scripted::default());
        (Arc::new(Clients::new(transport.clone(), policy, 7)), transport)
    }

    fn in_ms(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// Opens the circuit to stock with failures, then waits until a probe may go.
    async fn open_circuit(clients: &Clients, transport: &Scripted) {
        transport.mode.store(REFUSES, Ordering::Relaxed);
        for _ in 0..3 {
            assert!(clients.call(&StockStatus {}, None, in_ms(1_000)).await.is_err());
        }
        assert!(clients.circuit_open(Service::Stock));
        advance_ms(OPEN_MS).await;
        transport.mode.store(ANSWERS, Ordering::Relaxed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_with_no_time_left_is_refused_without_taking_the_probe() {
        let (clients, transport) = clients(policy());
        open_circuit(&clients, &transport).await;
        let sent = transport.sent.load(Ordering::Relaxed);
        let spent = clients.call(&StockStatus {}, None, Instant::now()).await;
        assert!(
            matches!(&spent, Err(CallError::Failed { detail, .. }) if detail.contains("no time left")),
            "{spent:?}"
        );
        assert_eq!(transport.sent.load(Ordering::Relaxed), sent, "nothing was sent");
        clients
            .call(&StockStatus {}, None, in_ms(1_000))
            .await
            .expect("the next call probes and the service answers");
        assert!(!clients.circuit_open(Service::Stock));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_whose_caller_gives_up_lets_the_next_call_probe() {
        let (clients, transport) = clients(policy());
        open_circuit(&clients, &transport).await;
        transport.mode.store(HANGS, Ordering::Relaxed);
        let gave_up = tokio::time::timeout(
            Duration::from_millis(10),
            clients.call(&StockStatus {}, None, in_ms(1_000)),
        )
        .await;
        assert!(gave_up.is_err(), "the caller gave up while its probe was out");
        transport.mode.store(ANSWERS, Ordering::Relaxed);
        clients
            .call(&StockStatus {}, None, in_ms(1_000))
            .await
            .expect("the next call probes and the service answers");
        assert!(!clients.circuit_open(Service::Stock));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_aborted_mid_probe_lets_the_next_call_probe() {
        let (clients, transport) = clients(policy());
        open_circuit(&clients, &transport).await;
        transport.mode.store(HANGS, Ordering::Relaxed);
        let probing = tokio::spawn({
            let clients = Arc::clone(&clients);
            async move { clients.call(&StockStatus {}, None, in_ms(1_000)).await }
        });
        while transport.sent.load(Ordering::Relaxed) < 4 {
            tokio::task::yield_now().await;
        }
        probing.abort();
        assert!(probing.await.unwrap_err().is_cancelled());
        transport.mode.store(ANSWERS, Ordering::Relaxed);
        clients
            .call(&StockStatus {}, None, in_ms(1_000))
            .await
            .expect("probes again");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_when_the_budget_is_spent_and_resume_as_it_refills() {
        let (clients, transport) = clients(CallPolicy {
            retries_max: 4,
            breaker_failures_max: 1_000,
            backoff_min_ms: 1,
            backoff_max_ms: 1,
            ..policy()
        });
        transport.mode.store(REFUSES, Ordering::Relaxed);
        let sent = || transport.sent.load(Ordering::Relaxed);
        // The floor's 2 retries (plus 0.2 of this call's deposit): 3 attempts.
        assert!(clients.call(&StockStatus {}, None, in_ms(1_000)).await.is_err());
        assert_eq!(sent(), 3);
        // A second later the floor has put 2 retries back (a few ms of backoff included).
        advance_ms(1_000).await;
        let before = sent();
        assert!(clients.call(&StockStatus {}, None, in_ms(1_000)).await.is_err());
        assert_eq!(sent() - before, 3);
    }
}
