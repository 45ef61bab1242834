//! Calling another service, the careful way: every call has a deadline and a timeout per
//! attempt; a failure that may be passing (refused connection, timeout, 429, 503, a reply
//! that cannot be decoded) is retried with exponential backoff and full jitter, never sooner
//! than the service's `Retry-After`; retries draw on a budget, so that when a service is
//! overloaded they stop adding to its load; and a circuit breaker per service fails calls
//! fast while the service keeps failing (a call that finds it open stops at once, without
//! waiting out its deadline). Whether the service is back is found out by the prober, one
//! cheap status call at a time, never by a call someone is waiting for. A call that gives
//! up says what it tried: how many attempts, over how long in all, and the last one's fate.
//!
//! Retrying is safe because every call that changes something carries a step key and the
//! receiver keeps its first result under it: a call whose outcome is unknown (the request
//! went out, the reply never came) is simply asked again.

use lemonade_domain::hlc::Hlc;
use lemonade_domain::ports::Clock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use lemonade_domain::ShopError;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use lemonade_store::tasks::Tasks;

use crate::rpc::{Call, CrmStatus, OrdersStatus, Service, StockStatus};
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
    /// or garbled. `unknown` means the request may have been carried out: some attempt of it
    /// may have reached the service (not only the last one).
    Failed {
        service: Service,
        /// Why the call stopped.
        why: Failure,
        unknown: bool,
        retry_after: Option<Duration>,
        /// What the call tried before it stopped.
        tried: Tried,
    },
}

/// Why a call stopped without a usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Its last attempt went out and failed, in these words (a timeout, a refused
    /// connection, a 5xx, a reply that cannot be read).
    Attempt(String),
    /// The service's circuit is open: its recent calls failed, so no attempt was sent (and
    /// none is retried: the breaker, not a caller, finds out when the service is back).
    CircuitOpen,
    /// No time was left before the caller's deadline for another attempt.
    NoTimeLeft,
}

/// What a call tried before it stopped: the attempts that went out, the time from the call
/// to its end, and what became of the last attempt that went out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tried {
    pub attempts: u32,
    pub spent: Duration,
    pub last: Option<String>,
}

impl CallError {
    fn failed(service: Service, why: Failure, unknown: bool) -> Self {
        CallError::Failed {
            service,
            why,
            unknown,
            retry_after: None,
            tried: Tried::default(),
        }
    }
    /// Whether another attempt may succeed: an attempt that went out and failed. Neither an
    /// open circuit nor a spent deadline is retried.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CallError::Failed {
                why: Failure::Attempt(_),
                ..
            }
        )
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
            CallError::Failed {
                service, why, tried, ..
            } => ShopError::unavailable(unavailable_message(service, &why, &tried)),
        }
    }
}

/// What a person is told when a service gave no answer: which part of the shop, what was
/// tried and for how long in all, and what to do. The one place these words are made.
fn unavailable_message(service: Service, why: &Failure, tried: &Tried) -> String {
    let what = service.what();
    let attempts = match tried.attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let tried_text = format!(
        "{attempts} over {:.1} s failed, the last: {}",
        tried.spent.as_secs_f64(),
        tried.last.as_deref().unwrap_or("no answer")
    );
    match (why, tried.attempts) {
        (Failure::CircuitOpen, 0) => format!(
            "{what} is not answering: its recent calls failed, so none is sent until it answers \
             again (nothing was sent this time); try again in a moment"
        ),
        (Failure::CircuitOpen, _) => format!(
            "{what} is not answering: {tried_text}; its recent calls failed, so none is sent \
             until it answers again; try again in a moment"
        ),
        (Failure::NoTimeLeft, 0) => format!("{what} was not asked: no time was left before the deadline"),
        (Failure::NoTimeLeft | Failure::Attempt(_), _) => {
            format!("{what} is unavailable: {tried_text}; try again in a moment")
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

/// What a circuit breaker's state holds, as a node reports it (to the checker's liveness):
/// `Closed` lets calls through; `Open` fails them fast; `HalfOpen` has one probe out, whose
/// outcome closes the circuit or opens it again. It is the state as held, not as the next
/// call would find it: an `Open` circuit whose wait is over stays `Open` until a probe is
/// admitted (so a circuit nobody probes any more reads `Open`, which is what a liveness check
/// should see), and a `HalfOpen` one whose probe is overdue stays `HalfOpen` until another
/// call or the prober replaces it. Named as `lemonade_checker::state::BreakerPhase` is, and
/// serialised alike (`closed`, `open`, `half_open`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPhase {
    Closed,
    Open,
    HalfOpen,
}

/// A consecutive-failure circuit breaker: `failures_max` failures in a row open the circuit
/// for `open_ms`; then one probe at a time (the prober's, see [`Breaker::admit`]) finds out
/// whether the service is back, and its outcome closes or opens it again.
struct Breaker {
    circuit: Mutex<Circuit>,
    /// The id of the next probe.
    probes: AtomicU64,
    failures_max: u32,
    open_ms: u64,
    /// Longest a probe may hold the circuit: one attempt's timeout.
    probe_ms: u64,
    /// How long past its wait a circuit must have gone unprobed before a call may probe it.
    grace_ms: u64,
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
            grace_ms: policy.breaker_open_ms,
        }
    }

    /// Leave for a call to go out now, or `None` while the circuit fails calls fast. A call
    /// does not take the probe of a circuit whose wait is over: the prober does
    /// ([`Clients::spawn_prober`]), so that no caller waiting for an answer is the one that
    /// finds out whether the service is back. Only a circuit left unprobed for `grace` more
    /// (a process without a prober, or one that has stopped) lets a call probe.
    fn admit(&self) -> Option<Admission<'_>> {
        self.admit_after(Some(Duration::from_millis(self.grace_ms)))
    }

    /// The prober's leave: a probe, once the circuit's wait is over; `None` while it is
    /// closed (nothing to find out) or still waiting.
    fn admit_probe(&self) -> Option<Admission<'_>> {
        self.admit_after(None)
    }

    /// Leave after a circuit's wait plus `grace` (`None`: the prober, which never passes a
    /// closed circuit).
    fn admit_after(&self, grace: Option<Duration>) -> Option<Admission<'_>> {
        let now = Instant::now();
        let mut circuit = self.circuit.lock();
        let probe = match *circuit {
            Circuit::Closed { .. } if grace.is_some() => None,
            Circuit::Closed { .. } => return None,
            Circuit::Open { until } | Circuit::Probing { until, .. } if now >= until + grace.unwrap_or_default() => {
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

    /// What the circuit holds now (see [`BreakerPhase`]): `Probing` is `HalfOpen`, and
    /// neither `Open` nor `Probing` is read against the clock.
    fn phase(&self) -> BreakerPhase {
        match *self.circuit.lock() {
            Circuit::Closed { .. } => BreakerPhase::Closed,
            Circuit::Open { .. } => BreakerPhase::Open,
            Circuit::Probing { .. } => BreakerPhase::HalfOpen,
        }
    }

    /// Whether the circuit's wait is over and no probe holds it: the prober should probe.
    fn probe_due(&self) -> bool {
        match *self.circuit.lock() {
            Circuit::Closed { .. } => false,
            Circuit::Open { until } | Circuit::Probing { until, .. } => Instant::now() >= until,
        }
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

/// The calling side of the services a process calls: one transport, a breaker per service
/// it calls, one retry budget.
pub struct Clients {
    transport: Arc<dyn Transport>,
    policy: CallPolicy,
    /// One for each service these clients call, and none for the others (looked up only).
    breakers: HashMap<Service, Breaker>,
    budget: RetryBudget,
    jitter: Mutex<SmallRng>,
    /// This process's hybrid logical clock and the clock it reads: every attempt carries a
    /// stamp, every reply's stamp is merged. None until [`Clients::stamping`] (tests that
    /// need no clock).
    stamps: Option<(Arc<Hlc>, Arc<dyn Clock>)>,
}

impl Clients {
    /// Clients of every service (the coordinator's). `seed` drives the jitter: a simulation
    /// passes its own, production a random one.
    pub fn new(transport: Arc<dyn Transport>, policy: CallPolicy, seed: u64) -> Self {
        Self::calling(transport, policy, seed, &Service::ALL)
    }

    /// Clients of `services` only (the orders service's relay calls stock and CRM): a breaker
    /// for each of them, none for the others. Calling any other service is a bug, and panics.
    pub fn calling(transport: Arc<dyn Transport>, policy: CallPolicy, seed: u64, services: &[Service]) -> Self {
        Clients {
            transport,
            breakers: services.iter().map(|&s| (s, Breaker::new(&policy))).collect(),
            budget: RetryBudget::new(&policy),
            policy,
            jitter: Mutex::new(SmallRng::seed_from_u64(seed)),
            stamps: None,
        }
    }

    /// These clients, stamping every call with `hlc` read at `clock` and merging every
    /// reply's stamp into it.
    pub fn stamping(mut self, hlc: Arc<Hlc>, clock: Arc<dyn Clock>) -> Self {
        self.stamps = Some((hlc, clock));
        self
    }

    fn breaker(&self, service: Service) -> &Breaker {
        self.breakers
            .get(&service)
            .unwrap_or_else(|| panic!("these clients were made without {service}: they do not call it"))
    }

    /// Whether calls to `service` are failing fast right now (never for a service these
    /// clients do not call).
    pub fn circuit_open(&self, service: Service) -> bool {
        self.breakers.get(&service).is_some_and(Breaker::is_open)
    }

    /// Each breaker's state, one per service these clients call, in [`Service::ALL`] order:
    /// `[(Stock, Closed), (Orders, Open), (Crm, HalfOpen)]` for the coordinator's. What each
    /// circuit holds, not read against the clock ([`BreakerPhase`]).
    pub fn breakers(&self) -> Vec<(Service, BreakerPhase)> {
        Service::ALL
            .into_iter()
            .filter_map(|s| self.breakers.get(&s).map(|b| (s, b.phase())))
            .collect()
    }

    /// Makes `call`, retrying what may pass until `deadline`. A call that changes something
    /// must come with its step key. A call that finds its service's circuit open stops at
    /// once: the breaker already knows the service is down, and waiting out the deadline
    /// would only keep the caller waiting.
    pub async fn call<C: Call>(
        &self,
        call: &C,
        step_key: Option<String>,
        deadline: Instant,
    ) -> Result<C::Reply, CallError> {
        let started = Instant::now();
        let trying = Trying::default();
        self.call_trying(call, step_key, deadline, &trying)
            .await
            .map_err(|e| trying.told(e, started))
    }

    /// A read whose caller waits `within` at most, held to it by a timer of its own as
    /// well, whatever the transport does: for a reply that only adds to an answer, which
    /// must not keep it waiting.
    pub async fn call_within<C: Call>(&self, call: &C, within: Duration) -> Result<C::Reply, CallError> {
        let started = Instant::now();
        let deadline = started + within;
        let trying = Trying::default();
        let outcome = tokio::time::timeout_at(deadline, self.call_trying(call, None, deadline, &trying))
            .await
            .unwrap_or_else(|_| {
                let what = format!("{} did not answer within {} ms", C::SERVICE, within.as_millis());
                Err(CallError::failed(C::SERVICE, Failure::Attempt(what), true))
            });
        outcome.map_err(|e| trying.told(e, started))
    }

    async fn call_trying<C: Call>(
        &self,
        call: &C,
        step_key: Option<String>,
        deadline: Instant,
        trying: &Trying,
    ) -> Result<C::Reply, CallError> {
        assert_eq!(C::CHANGES, step_key.is_some(), "{}: a change needs a step key", C::PATH);
        let body = Bytes::from(serde_json::to_vec(call).expect("calls serialise"));
        self.budget.deposit();
        let attempt = || self.attempt::<C>(body.clone(), step_key.clone(), deadline, Asker::Call, trying);
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(self.policy.backoff_min_ms))
            .with_max_delay(Duration::from_millis(self.policy.backoff_max_ms))
            .with_max_times(self.policy.retries_max);
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e| e.is_retryable() && Instant::now() < deadline && self.budget.withdraw())
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

    /// Runs the prober of this process's circuits until stopped: every
    /// [`PROBE_PERIOD_MS`], each circuit whose wait is over gets a probe, the cheap status
    /// call of its service, in a task of its own. So calls made for a client never probe (see
    /// [`Breaker::admit`]) and fail fast while their service is down, and the circuit closes
    /// as soon as a probe finds it back.
    pub fn spawn_prober(self: &Arc<Self>, tasks: &Tasks) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        let probes = tasks.clone();
        tasks.spawn("the circuit prober", async move {
            let mut tick = tokio::time::interval(Duration::from_millis(PROBE_PERIOD_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for service in Service::ALL {
                    if this.breakers.get(&service).is_some_and(Breaker::probe_due) {
                        // A probe cut by the stop lets the next go at once (see
                        // `a_task_aborted_mid_probe_lets_the_next_probe_go_at_once`).
                        probes.spawn_short(Arc::clone(&this).probe(service));
                    }
                }
            }
        })
    }

    /// One probe of `service`, if its circuit still waits for one: its status call, once,
    /// within one attempt's timeout. Its outcome closes the circuit or opens it again.
    async fn probe(self: Arc<Self>, service: Service) {
        let deadline = Instant::now() + Duration::from_millis(self.policy.attempt_timeout_ms);
        let trying = Trying::default();
        let outcome = match service {
            Service::Stock => self.probe_with(&StockStatus {}, deadline, &trying).await,
            Service::Orders => self.probe_with(&OrdersStatus {}, deadline, &trying).await,
            Service::Crm => self.probe_with(&CrmStatus {}, deadline, &trying).await,
        };
        match outcome {
            Ok(()) => tracing::info!(%service, "the service answers again: its circuit is closed"),
            Err(e) if trying.attempts.load(Ordering::Relaxed) > 0 => {
                tracing::debug!(%service, error = ?e, "a probe failed: the circuit stays open");
            }
            Err(_) => {} // another probe is out
        }
    }

    async fn probe_with<C: Call>(&self, call: &C, deadline: Instant, trying: &Trying) -> Result<(), CallError> {
        let body = Bytes::from(serde_json::to_vec(call).expect("calls serialise"));
        self.attempt::<C>(body, None, deadline, Asker::Prober, trying)
            .await
            .map(|_| ())
    }

    async fn attempt<C: Call>(
        &self,
        body: Bytes,
        step_key: Option<String>,
        deadline: Instant,
        asker: Asker,
        trying: &Trying,
    ) -> Result<C::Reply, CallError> {
        let service = C::SERVICE;
        // An attempt that cannot run is refused before it may take the circuit's probe.
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.min(Duration::from_millis(self.policy.attempt_timeout_ms));
        if timeout.is_zero() {
            return Err(CallError::failed(service, Failure::NoTimeLeft, false));
        }
        let breaker = self.breaker(service);
        let admitted = match asker {
            Asker::Call => breaker.admit(),
            Asker::Prober => breaker.admit_probe(),
        };
        let Some(admission) = admitted else {
            metrics::counter!("lemonade_calls_short_circuited", "service" => service.as_str()).increment(1);
            return Err(CallError::failed(service, Failure::CircuitOpen, false));
        };
        let request = Request {
            service,
            path: C::PATH,
            step_key,
            body,
            timeout,
            hlc: self.stamps.as_ref().map(|(hlc, clock)| hlc.send(clock.now())),
        };
        trying.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = match self.transport.send(request).await {
            Err(e) => {
                let unknown = !matches!(e, TransportError::Unsent(..));
                Err(CallError::failed(service, Failure::Attempt(e.to_string()), unknown))
            }
            Ok(reply) => {
                self.merge_reply(service, &reply);
                decode::<C>(service, reply)
            }
        };
        if let Err(CallError::Failed { unknown: true, .. }) = &outcome {
            trying.reached.store(true, Ordering::Relaxed);
        }
        // A refusal is the service working; 429 is it protecting itself, not failing.
        let healthy = match &outcome {
            Ok(_) | Err(CallError::Refused(_)) => true,
            Err(CallError::Failed { retry_after, .. }) => retry_after.is_some(),
        };
        admission.record(healthy);
        if let Err(CallError::Failed {
            why: Failure::Attempt(what),
            ..
        }) = &outcome
        {
            *trying.last.lock() = Some(what.clone());
        }
        metrics::counter!("lemonade_calls", "service" => service.as_str(), "ok" => if outcome.is_ok() { "true" } else { "false" })
            .increment(1);
        outcome
    }
}

impl Clients {
    /// Merges a reply's stamp. The work is done and its answer is used either way; a stamp
    /// beyond the bound is not merged (it would drag this clock forward), and is counted
    /// against its sender in `/health`.
    fn merge_reply(&self, service: Service, reply: &crate::transport::Reply) {
        let (Some((hlc, clock)), Some(sent)) = (&self.stamps, &reply.hlc) else {
            return;
        };
        if let Err(skew) = hlc.receive(sent, clock.now()) {
            tracing::warn!(
                %service,
                ahead_ms = skew.ahead_ms,
                bound_ms = skew.bound_ms,
                "a reply's clock stamp is beyond the bound: not merged"
            );
        }
    }
}

/// How often the prober looks for circuits whose wait is over.
pub const PROBE_PERIOD_MS: u64 = 50;

/// Who asks the breaker for leave: a call made for someone, or the prober.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asker {
    Call,
    Prober,
}

/// What one call has tried so far, across its attempts.
#[derive(Default)]
struct Trying {
    attempts: AtomicU32,
    last: Mutex<Option<String>>,
    /// Whether some attempt's outcome was unknown (it may have been carried out: a timeout, a
    /// broken connection, a 5xx or a reply that cannot be read; not a refused connection or
    /// a 429): then the call's outcome is unknown, whatever its last attempt met.
    reached: AtomicBool,
}

impl Trying {
    /// The call's error, telling what it tried and for how long in all. An attempt cut off
    /// by [`Clients::call_within`]'s timer counts as the last.
    fn told(&self, e: CallError, started: Instant) -> CallError {
        match e {
            CallError::Failed {
                service,
                why,
                unknown,
                retry_after,
                ..
            } => CallError::Failed {
                tried: Tried {
                    attempts: self.attempts.load(Ordering::Relaxed),
                    spent: started.elapsed(),
                    last: match &why {
                        Failure::Attempt(what) => Some(what.clone()),
                        _ => self.last.lock().clone(),
                    },
                },
                service,
                why,
                unknown: unknown || self.reached.load(Ordering::Relaxed),
                retry_after,
            },
            refused => refused,
        }
    }
}

/// Turns a reply into the call's result. Nothing a peer sends can make this panic: a body
/// that is not what the call expects is a failure like a lost reply.
fn decode<C: Call>(service: Service, reply: crate::transport::Reply) -> Result<C::Reply, CallError> {
    let garbled = |e: serde_json::Error| {
        CallError::failed(
            service,
            Failure::Attempt(format!("its reply could not be read: {e}")),
            true,
        )
    };
    match reply.status {
        200 => serde_json::from_slice(&reply.body).map_err(garbled),
        429 => Err(CallError::Failed {
            service,
            why: Failure::Attempt("it is rate limiting its callers".into()),
            unknown: false,
            retry_after: Some(reply.retry_after.unwrap_or(Duration::from_millis(100))),
            tried: Tried::default(),
        }),
        400..=499 => match serde_json::from_slice::<ShopError>(&reply.body) {
            Ok(e) => Err(CallError::Refused(e)),
            Err(e) => Err(garbled(e)),
        },
        // A stamp refused for clock skew is an answer (the service works; its clock and ours
        // disagree): retrying would meet the same clocks, so it is not retried.
        503 if let Ok(e @ ShopError::ClockSkew { .. }) = serde_json::from_slice::<ShopError>(&reply.body) => {
            Err(CallError::Refused(e))
        }
        status => Err(CallError::failed(
            service,
            Failure::Attempt(format!("it answered {status}")),
            status != 503,
        )),
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

    /// A breaker opened by `failures_max` failures, its wait over: the prober may probe.
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
    async fn an_open_circuit_lets_the_prober_probe_once_its_wait_is_over_one_probe_at_a_time() {
        let breaker = Breaker::new(&policy());
        assert!(breaker.admit_probe().is_none(), "a closed circuit needs no probe");
        for _ in 0..3 {
            fail(&breaker);
        }
        advance_ms(OPEN_MS - 1).await;
        assert!(breaker.admit_probe().is_none(), "still open");
        advance_ms(1).await;
        assert!(breaker.probe_due());
        let probe = breaker.admit_probe().expect("a probe");
        assert!(probe.probe.is_some());
        assert!(!breaker.probe_due());
        assert!(breaker.admit_probe().is_none(), "one probe at a time");
        assert!(breaker.admit().is_none(), "calls fail fast meanwhile");
        probe.record(true);
        assert!(!breaker.is_open());
        assert!(breaker.admit().expect("closed").probe.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_leaves_the_probe_to_the_prober_and_takes_it_only_when_none_came_for_a_while() {
        let breaker = open_and_waited().await;
        assert!(
            breaker.admit().is_none(),
            "a call made for a client does not wait for a probe's answer"
        );
        advance_ms(OPEN_MS - 1).await;
        assert!(breaker.admit().is_none(), "the prober still may come");
        advance_ms(1).await;
        let probe = breaker.admit().expect("no prober came: the call probes");
        assert!(probe.probe.is_some());
        assert!(breaker.admit().is_none(), "one probe at a time");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_the_circuit_for_another_wait() {
        let breaker = open_and_waited().await;
        breaker.admit_probe().expect("a probe").record(false);
        assert!(breaker.admit_probe().is_none());
        advance_ms(OPEN_MS).await;
        assert!(breaker.admit_probe().is_some(), "the next probe");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_without_an_outcome_lets_the_next_probe_go_at_once() {
        let breaker = open_and_waited().await;
        drop(breaker.admit_probe().expect("a probe"));
        let next = breaker.admit_probe().expect("the next probe goes at once");
        assert!(next.probe.is_some());
        next.record(true);
        assert!(!breaker.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaked_probe_holds_the_circuit_no_longer_than_one_attempt() {
        let breaker = open_and_waited().await;
        std::mem::forget(breaker.admit_probe().expect("a probe"));
        advance_ms(ATTEMPT_MS - 1).await;
        assert!(breaker.admit_probe().is_none(), "the probe may still come back");
        advance_ms(1).await;
        assert!(breaker.admit_probe().expect("another probe").probe.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_probe_dropped_late_does_not_end_the_probe_that_replaced_it() {
        let breaker = open_and_waited().await;
        let stale = breaker.admit_probe().expect("a probe");
        advance_ms(ATTEMPT_MS).await;
        let _current = breaker.admit_probe().expect("the probe that replaced it");
        drop(stale);
        assert!(
            breaker.admit_probe().is_none(),
            "the current probe still holds the circuit"
        );
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

    /// A transport whose service answers, refuses connections, answers [`LATE_MS`] late, or
    /// does not answer within the request's timeout.
    #[derive(Default)]
    struct Scripted {
        /// 0 answers, 1 refuses, 2 hangs, 3 answers late.
        mode: AtomicUsize,
        sent: AtomicUsize,
    }

    const ANSWERS: usize = 0;
    const REFUSES: usize = 1;
    const HANGS: usize = 2;
    const ANSWERS_LATE: usize = 3;
    /// How late a service in `ANSWERS_LATE` answers (well within an attempt's timeout).
    const LATE_MS: u64 = 100;

    fn answer() -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            body: Bytes::from_static(br#"{"waiting":0}"#),
            hlc: None,
        }
    }

    #[async_trait]
    impl Transport for Scripted {
        async fn send(&self, request: Request) -> Result<Reply, TransportError> {
            self.sent.fetch_add(1, Ordering::Relaxed);
            match self.mode.load(Ordering::Relaxed) {
                ANSWERS => Ok(answer()),
                REFUSES => Err(TransportError::Unsent(request.service, "refused".into())),
                ANSWERS_LATE => {
                    tokio::time::sleep(Duration::from_millis(LATE_MS)).await;
                    Ok(answer())
                }
                _ => {
                    tokio::time::sleep(request.timeout).await;
                    Err(TransportError::TimedOut(request.service, request.timeout.as_millis()))
                }
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

    /// Opens the circuit to stock with failures; the service then answers again.
    async fn open_circuit_now(clients: &Clients, transport: &Scripted) {
        transport.mode.store(REFUSES, Ordering::Relaxed);
        for _ in 0..3 {
            assert!(clients.call(&StockStatus {}, None, in_ms(1_000)).await.is_err());
        }
        assert!(clients.circuit_open(Service::Stock));
        transport.mode.store(ANSWERS, Ordering::Relaxed);
    }

    /// Opens the circuit to stock with failures, then waits until a call may probe it (no
    /// prober runs in these tests).
    async fn open_circuit(clients: &Clients, transport: &Scripted) {
        open_circuit_now(clients, transport).await;
        advance_ms(OPEN_MS * 2).await;
    }

    fn detail(e: &CallError) -> String {
        match ShopError::from(e.clone()) {
            ShopError::Unavailable { detail } => detail,
            other => panic!("{other:?}"),
        }
    }

    /// Its first attempt times out (it may have been carried out); every later one finds the
    /// connection refused (certainly not sent).
    #[derive(Default)]
    struct TimesOutThenRefuses {
        sent: AtomicUsize,
    }

    #[async_trait]
    impl Transport for TimesOutThenRefuses {
        async fn send(&self, request: Request) -> Result<Reply, TransportError> {
            match self.sent.fetch_add(1, Ordering::Relaxed) {
                0 => Err(TransportError::TimedOut(request.service, 1)),
                _ => Err(TransportError::Unsent(request.service, "refused".into())),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_whose_earlier_attempt_may_have_reached_the_service_stays_unknown_when_its_last_was_refused() {
        let policy = CallPolicy {
            retries_max: 1,
            budget_floor_per_s: 20,
            ..policy()
        };
        let transport = Arc::new(TimesOutThenRefuses::default());
        let calling = Clients::new(transport.clone(), policy, 7);
        let failed = calling.call(&StockStatus {}, None, in_ms(5_000)).await.unwrap_err();
        assert_eq!(transport.sent.load(Ordering::Relaxed), 2, "it was retried once");
        let CallError::Failed { unknown, why, .. } = &failed else {
            panic!("{failed:?}");
        };
        assert!(
            matches!(why, Failure::Attempt(last) if last.contains("refused")),
            "{why:?}"
        );
        assert!(unknown, "the first attempt may have been carried out: {failed:?}");

        let (never_sent, scripted) = clients(policy);
        scripted.mode.store(REFUSES, Ordering::Relaxed);
        let refused = never_sent.call(&StockStatus {}, None, in_ms(5_000)).await.unwrap_err();
        assert!(
            matches!(refused, CallError::Failed { unknown: false, .. }),
            "no attempt was sent: {refused:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_finds_the_circuit_open_fails_at_once_saying_nothing_was_sent() {
        let (clients, transport) = clients(CallPolicy {
            retries_max: 4,
            budget_floor_per_s: 20,
            ..policy()
        });
        open_circuit_now(&clients, &transport).await;
        let sent = transport.sent.load(Ordering::Relaxed);
        let started = Instant::now();
        let refused = clients.call(&StockStatus {}, None, in_ms(5_000)).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::ZERO, "it did not wait out its deadline");
        assert_eq!(transport.sent.load(Ordering::Relaxed), sent, "nothing was sent");
        assert!(
            matches!(&refused, CallError::Failed { why: Failure::CircuitOpen, tried, .. } if tried.attempts == 0),
            "{refused:?}"
        );
        let detail = detail(&refused);
        assert!(
            detail.contains("the stock and product list") && detail.contains("nothing was sent"),
            "{detail}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_gives_up_tells_how_many_attempts_it_made_over_how_long_in_all() {
        let (clients, transport) = clients(CallPolicy {
            retries_max: 4,
            budget_floor_per_s: 20,
            breaker_failures_max: 1_000,
            ..policy()
        });
        transport.mode.store(HANGS, Ordering::Relaxed);
        let started = Instant::now();
        let e = clients.call(&StockStatus {}, None, in_ms(5_000)).await.unwrap_err();
        assert_eq!(started.elapsed().as_secs(), 5, "it used its deadline");
        assert_eq!(transport.sent.load(Ordering::Relaxed), 3);
        let detail = detail(&e);
        assert!(
            detail.contains("3 attempts over 5.0 s failed") && detail.contains("did not answer within"),
            "{detail}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_prober_closes_the_circuit_once_the_service_answers_while_calls_fail_fast() {
        let (clients, transport) = clients(policy());
        open_circuit_now(&clients, &transport).await;
        let tasks = Tasks::default();
        let _prober = clients.spawn_prober(&tasks);
        advance_ms(OPEN_MS).await;
        let sent = transport.sent.load(Ordering::Relaxed);
        assert!(
            clients.call(&StockStatus {}, None, in_ms(1_000)).await.is_err(),
            "a client's call does not probe"
        );
        assert_eq!(transport.sent.load(Ordering::Relaxed), sent);
        advance_ms(PROBE_PERIOD_MS).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(transport.sent.load(Ordering::Relaxed), sent + 1, "the prober probed");
        assert!(!clients.circuit_open(Service::Stock), "and closed the circuit");
        clients
            .call(&StockStatus {}, None, in_ms(1_000))
            .await
            .expect("calls go again");
        assert_eq!(tasks.stopped(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_with_no_time_left_is_refused_without_taking_the_probe() {
        let (clients, transport) = clients(policy());
        open_circuit(&clients, &transport).await;
        let sent = transport.sent.load(Ordering::Relaxed);
        let spent = clients.call(&StockStatus {}, None, Instant::now()).await;
        assert!(
            matches!(
                &spent,
                Err(CallError::Failed {
                    why: Failure::NoTimeLeft,
                    ..
                })
            ),
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
    async fn a_probe_whose_caller_gives_up_lets_the_next_probe_go_at_once() {
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
        let sent = transport.sent.load(Ordering::Relaxed);
        Arc::clone(&clients).probe(Service::Stock).await;
        assert_eq!(
            transport.sent.load(Ordering::Relaxed),
            sent + 1,
            "the next probe went at once"
        );
        assert!(!clients.circuit_open(Service::Stock));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_aborted_mid_probe_lets_the_next_probe_go_at_once() {
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
        Arc::clone(&clients).probe(Service::Stock).await;
        assert!(!clients.circuit_open(Service::Stock), "probed again");
    }

    #[tokio::test(start_paused = true)]
    async fn breakers_report_each_called_service_closed_open_until_probed_half_open_while_probed_then_closed() {
        use BreakerPhase::{Closed, HalfOpen, Open};
        let (clients, transport) = clients(policy());
        let all = |stock| {
            vec![
                (Service::Stock, stock),
                (Service::Orders, Closed),
                (Service::Crm, Closed),
            ]
        };
        assert_eq!(clients.breakers(), all(Closed), "every service, in Service::ALL order");
        open_circuit_now(&clients, &transport).await;
        assert_eq!(clients.breakers(), all(Open));
        advance_ms(OPEN_MS * 10).await;
        assert_eq!(
            clients.breakers(),
            all(Open),
            "a wait over is still open until a probe goes"
        );
        transport.mode.store(ANSWERS_LATE, Ordering::Relaxed);
        let sent = transport.sent.load(Ordering::Relaxed);
        let probing = tokio::spawn(Arc::clone(&clients).probe(Service::Stock));
        while transport.sent.load(Ordering::Relaxed) == sent {
            tokio::task::yield_now().await;
        }
        assert_eq!(clients.breakers(), all(HalfOpen), "a probe is out");
        advance_ms(LATE_MS).await;
        probing.await.unwrap();
        assert_eq!(clients.breakers(), all(Closed), "the probe's answer closed it");
    }

    #[tokio::test(start_paused = true)]
    async fn clients_of_some_services_report_only_their_breakers_in_service_order() {
        let transport = Arc::new(Scripted::default());
        let clients = Arc::new(Clients::calling(
            transport.clone(),
            policy(),
            7,
            &[Service::Crm, Service::Stock],
        ));
        assert_eq!(
            clients.breakers(),
            [
                (Service::Stock, BreakerPhase::Closed),
                (Service::Crm, BreakerPhase::Closed)
            ]
        );
        assert!(!clients.circuit_open(Service::Orders));
        open_circuit_now(&clients, &transport).await;
        assert_eq!(
            clients.breakers(),
            [
                (Service::Stock, BreakerPhase::Open),
                (Service::Crm, BreakerPhase::Closed)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "made without orders")]
    async fn calling_a_service_the_clients_were_not_made_for_is_a_bug() {
        let clients = Clients::calling(Arc::new(Scripted::default()), policy(), 7, &[Service::Stock]);
        let _ = clients.call(&OrdersStatus {}, None, in_ms(1_000)).await;
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
