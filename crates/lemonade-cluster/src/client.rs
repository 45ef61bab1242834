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
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use lemonade_domain::ShopError;
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
    /// Retries may be at most this share of calls (in thousandths), plus `budget_floor`.
    pub budget_retry_per_mille: i64,
    /// Retries always allowed in a quiet period.
    pub budget_floor: i64,
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
            budget_floor: 20,
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

/// Consecutive-failure circuit breaker on the tokio clock (virtual in a simulation).
#[derive(Debug)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else fails fast until it comes back.
    Probing,
}

struct Breaker {
    circuit: Mutex<Circuit>,
}

impl Breaker {
    fn new() -> Self {
        Breaker {
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go out now.
    fn admit(&self) -> bool {
        let mut circuit = self.circuit.lock().expect("breaker lock");
        match *circuit {
            Circuit::Closed { .. } => true,
            Circuit::Open { until } if Instant::now() >= until => {
                *circuit = Circuit::Probing;
                true
            }
            Circuit::Open { .. } | Circuit::Probing => false,
        }
    }

    fn record(&self, ok: bool, policy: &CallPolicy) {
        let mut circuit = self.circuit.lock().expect("breaker lock");
        *circuit = match (ok, &*circuit) {
            (true, _) => Circuit::Closed { failures: 0 },
            (false, Circuit::Closed { failures }) if failures + 1 < policy.breaker_failures_max => {
                Circuit::Closed { failures: failures + 1 }
            }
            (false, _) => Circuit::Open {
                until: Instant::now() + Duration::from_millis(policy.breaker_open_ms),
            },
        };
    }

    fn is_open(&self) -> bool {
        !matches!(*self.circuit.lock().expect("breaker lock"), Circuit::Closed { .. })
    }
}

/// A token bucket without a clock: every call deposits a fraction of a token, every retry
/// takes a whole one. Retries can then never be more than that fraction of the traffic (plus
/// a small floor), however many callers are retrying at once.
struct RetryBudget {
    milli_tokens: AtomicI64,
    per_call: i64,
    cap: i64,
}

impl RetryBudget {
    fn new(policy: &CallPolicy) -> Self {
        let cap = policy.budget_floor * 1_000;
        RetryBudget {
            milli_tokens: AtomicI64::new(cap),
            per_call: policy.budget_retry_per_mille,
            cap: cap.max(1_000) * 10,
        }
    }
    fn deposit(&self) {
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + self.per_call).min(self.cap))
            });
    }
    fn withdraw(&self) -> bool {
        self.milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t >= 1_000).then_some(t - 1_000)
            })
            .is_ok()
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
            breakers: Service::ALL.into_iter().map(|s| (s, Breaker::new())).collect(),
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
                let jittered = self
                    .jitter
                    .lock()
                    .expect("jitter lock")
                    .random_range(Duration::ZERO..=step);
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
        let breaker = &self.breakers[&service];
        if !breaker.admit() {
            metrics::counter!("lemonade_calls_short_circuited", "service" => service.as_str()).increment(1);
            return Err(CallError::failed(service, "circuit open: it keeps failing", false));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.min(Duration::from_millis(self.policy.attempt_timeout_ms));
        if timeout.is_zero() {
            return Err(CallError::failed(service, "no time left before the deadline", false));
        }
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
        breaker.record(healthy, &self.policy);
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
