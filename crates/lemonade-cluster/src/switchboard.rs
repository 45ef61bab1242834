//! The fault switchboard of a running process: every call it makes to another service can
//! be made to fail on purpose, per service and per call, with a chance — refused, reset
//! mid-reply, garbled, truncated, 429 with `Retry-After`, delayed with jitter, hung past the
//! caller's timeout, carried out with its reply lost, or delivered twice — and the process
//! itself can be made to exit at named points ([`ExitPoint`]) or read its clock off by an
//! offset. What to inject is a [`FaultSpec`], parsed from text ([`spec`]), set at start and
//! changed at runtime.
//!
//! It works through the seams, never through an `if` in the shop's code: a [`Transport`]
//! wrapper ([`SwitchboardTransport`]), a [`Clock`] wrapper ([`OffsetClock`]), and a layer
//! on the process's router ([`exit_points`]) that runs the handler, then exits before the
//! reply is written.
//!
//! With nothing set, each costs one atomic load on its path. Every draw comes from one RNG
//! seeded from the node's seed, so a run with a given seed draws the same faults for the same
//! sequence of calls. Each injected fault is counted in `lemonade_faults_injected_total{kind,
//! target}` and logged.

pub mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use lemonade_domain::ports::Clock;
use lemonade_domain::values::Timestamp;
use lemonade_store::migrations::Role;
use parking_lot::{Mutex, RwLock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub use spec::{CallFault, CallRule, ExitPoint, FaultSpec, ParseError, Percent, ProcessRule, Target, parse};

use crate::rpc::{BATCH_PATH, PATHS, Service};
use crate::transport::{Reply, Request as CallRequest, Transport, TransportError};

/// The metric counting injected faults, by `kind` and `target`.
pub const INJECTED_METRIC: &str = "lemonade_faults_injected_total";

/// Why a spec cannot be set on this process.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("this process is {this}; the faults of @{given} belong to that process")]
    OtherProcess { this: &'static str, given: &'static str },
    #[error("the monolith makes no calls between services and has no switchboard")]
    Monolith,
}

/// How many faults of one kind were injected on one target.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Injected {
    pub kind: &'static str,
    pub target: String,
    pub count: u64,
}

/// The switchboard of one process (see the module docs). Shared by its transport, clock and
/// router layer, and by the admin endpoint that changes it.
pub struct Switchboard {
    role: Role,
    /// Whether any rule of calls is set: the one load on a call's path.
    calls_armed: AtomicBool,
    /// Whether any exit point is set: the one load on a request's path.
    exits_armed: AtomicBool,
    clock_offset_ms: AtomicI64,
    spec: RwLock<Arc<FaultSpec>>,
    rng: Mutex<SmallRng>,
    injected: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Switchboard {
    /// The switchboard of a process of `role`, nothing set, its draws seeded by `seed`.
    ///
    /// # Errors
    /// [`SetError::Monolith`]: the monolith has none.
    pub fn new(role: Role, seed: u64) -> Result<Self, SetError> {
        if role == Role::Monolith {
            return Err(SetError::Monolith);
        }
        Ok(Switchboard {
            role,
            calls_armed: AtomicBool::new(false),
            exits_armed: AtomicBool::new(false),
            clock_offset_ms: AtomicI64::new(0),
            spec: RwLock::new(Arc::new(FaultSpec::default())),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            injected: Mutex::new(BTreeMap::new()),
        })
    }

    /// The role of the process.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Replaces what is injected with `spec`.
    ///
    /// # Errors
    /// [`SetError::OtherProcess`] if the spec has faults of another process (`@role`); nothing
    /// changes then.
    pub fn set(&self, spec: FaultSpec) -> Result<(), SetError> {
        if let Some((other, _)) = spec.processes().iter().find(|(r, _)| *r != self.role) {
            return Err(SetError::OtherProcess {
                this: self.role.as_str(),
                given: other.as_str(),
            });
        }
        let rules = spec.process(self.role);
        let exits = rules.iter().any(|r| matches!(r, ProcessRule::Exit { .. }));
        let offset_ms = rules
            .iter()
            .filter_map(|r| match r {
                ProcessRule::Clock { offset_ms } => Some(*offset_ms),
                ProcessRule::Exit { .. } => None,
            })
            .next_back()
            .unwrap_or(0);
        let calls = !spec.calls().is_empty();
        let text = spec.to_string();
        *self.spec.write() = Arc::new(spec);
        self.calls_armed.store(calls, Ordering::Release);
        self.exits_armed.store(exits, Ordering::Release);
        self.clock_offset_ms.store(offset_ms, Ordering::Release);
        if text.is_empty() {
            tracing::warn!("faults cleared");
        } else {
            tracing::warn!(faults = %text, "faults set");
        }
        Ok(())
    }

    /// Injects nothing from now on.
    pub fn clear(&self) {
        self.set(FaultSpec::default()).expect("an empty spec names no process");
    }

    /// What is injected now.
    pub fn spec(&self) -> Arc<FaultSpec> {
        Arc::clone(&self.spec.read())
    }

    /// How many faults were injected since the process started, per kind and target.
    pub fn injected(&self) -> Vec<Injected> {
        self.injected
            .lock()
            .iter()
            .map(|((kind, target), count)| Injected {
                kind,
                target: target.clone(),
                count: *count,
            })
            .collect()
    }

    /// The clock's offset now, in ms.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms.load(Ordering::Relaxed)
    }

    fn draw(&self, chance: Percent) -> bool {
        match chance.hundredths() {
            0 => false,
            10_000 => true,
            h => self.rng.lock().random_range(0..10_000u16) < h,
        }
    }

    fn count(&self, kind: &'static str, target: &str) {
        metrics::counter!(INJECTED_METRIC, "kind" => kind, "target" => target.to_owned()).increment(1);
        *self.injected.lock().entry((kind, target.to_owned())).or_insert(0) += 1;
    }

    /// Whether the process exits at `point` now (drawn; counted and logged if so).
    fn exits_at(&self, point: ExitPoint) -> bool {
        if !self.exits_armed.load(Ordering::Acquire) {
            return false;
        }
        let spec = self.spec();
        let fires = spec.process(self.role).iter().any(|rule| match *rule {
            ProcessRule::Exit { point: p, chance } => p == point && self.draw(chance),
            ProcessRule::Clock { .. } => false,
        });
        if fires {
            self.count("exit", self.role.as_str());
            tracing::warn!(point = point.name(), "exiting on purpose (fault switchboard)");
        }
        fires
    }

    /// What the rules set draw for one call: a total delay, and the fault that ends it, if any.
    fn plan(&self, service: Service, path: &str) -> (Duration, Option<CallFault>) {
        let spec = self.spec();
        let mut delay_ms = 0u64;
        for rule in spec.rules_for(service, path) {
            if !self.draw(rule.chance) {
                continue;
            }
            match rule.fault {
                CallFault::Delay {
                    delay_ms: d,
                    jitter_ms: j,
                } => {
                    let jittered = if j == 0 {
                        d
                    } else {
                        let lowest = d.saturating_sub(j);
                        self.rng.lock().random_range(lowest..=d + j)
                    };
                    delay_ms += jittered;
                }
                fault => return (Duration::from_millis(delay_ms), Some(fault)),
            }
        }
        (Duration::from_millis(delay_ms), None)
    }

    /// Sends `request` through `inner` as the rules say.
    async fn send_through(&self, inner: &dyn Transport, request: CallRequest) -> Result<Reply, TransportError> {
        let service = request.service;
        let target = service.as_str();
        let (delay, fault) = self.plan(service, request.path);
        if !delay.is_zero() {
            self.count("delay", target);
            tracing::info!(
                target,
                path = request.path,
                delay_ms = delay.as_millis() as u64,
                "fault injected: delay"
            );
            tokio::time::sleep(delay).await;
        }
        let Some(fault) = fault else {
            return inner.send(request).await;
        };
        self.count(fault.name(), target);
        tracing::info!(target, path = request.path, kind = fault.name(), "fault injected");
        let timeout = request.timeout;
        match fault {
            CallFault::Refuse => Err(TransportError::Unsent(service, "connection refused (injected)".into())),
            CallFault::RateLimit { retry_after_ms } => Ok(Reply {
                status: 429,
                retry_after: Some(Duration::from_millis(retry_after_ms)),
                body: Bytes::from_static(br#"{"code":"unavailable","detail":"too many requests (injected)"}"#),
                // An answer made up on the caller's side carries no service's clock.
                hlc: None,
            }),
            CallFault::Hang => {
                tokio::time::sleep(timeout).await;
                Err(TransportError::TimedOut(service, timeout.as_millis()))
            }
            CallFault::Reset => {
                inner.send(request).await?;
                Err(TransportError::Broken(
                    service,
                    "connection reset by peer mid-reply (injected)".into(),
                ))
            }
            CallFault::Garble => {
                let reply = inner.send(request).await?;
                Ok(Reply {
                    body: Bytes::from_static(b"\x00{garbled"),
                    ..reply
                })
            }
            CallFault::Truncate => {
                let reply = inner.send(request).await?;
                let half = reply.body.len() / 2;
                Ok(Reply {
                    body: reply.body.slice(..half),
                    ..reply
                })
            }
            CallFault::LoseReply => {
                inner.send(request).await?;
                Err(TransportError::TimedOut(service, timeout.as_millis()))
            }
            CallFault::Duplicate => {
                let first = inner.send(request.clone()).await;
                let _second = inner.send(request).await;
                first
            }
            CallFault::Delay { .. } => unreachable!("a delay never ends a plan"),
        }
    }
}

/// A transport whose calls go through a [`Switchboard`] (see the module docs).
pub struct SwitchboardTransport {
    inner: Arc<dyn Transport>,
    board: Arc<Switchboard>,
}

impl SwitchboardTransport {
    /// `inner`, with the faults `board` sets.
    pub fn new(inner: Arc<dyn Transport>, board: Arc<Switchboard>) -> Self {
        SwitchboardTransport { inner, board }
    }
}

/// Written out rather than through `#[async_trait]`: with nothing set, the call is the inner
/// transport's own future, handed on after one atomic load, with no box of its own around it
/// (that box cost more than the load: docs/decisions.md, 2026-12-01).
impl Transport for SwitchboardTransport {
    fn send<'life0, 'async_trait>(
        &'life0 self,
        request: CallRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Reply, TransportError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        if !self.board.calls_armed.load(Ordering::Acquire) {
            return self.inner.send(request);
        }
        Box::pin(self.board.send_through(&*self.inner, request))
    }
}

/// A clock that reads the switchboard's offset ahead of (or behind) another.
pub struct OffsetClock {
    inner: Arc<dyn Clock>,
    board: Arc<Switchboard>,
}

impl OffsetClock {
    /// `inner`, off by `board`'s clock offset.
    pub fn new(inner: Arc<dyn Clock>, board: Arc<Switchboard>) -> Self {
        OffsetClock { inner, board }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.inner.now().0.saturating_add(self.board.clock_offset_ms()))
    }
}

/// What [`exit_points`] needs: the switchboard, and how to exit (the binary's
/// `std::process::exit`; a test's recorder).
#[derive(Clone)]
pub struct ExitSeam {
    pub board: Arc<Switchboard>,
    pub exit: Arc<dyn Fn(ExitPoint) + Send + Sync>,
}

/// Whether a request changes something: an internal call that does (or a batch of calls),
/// or a public request other than a read. The switchboard's own endpoint never does.
pub fn changes(method: &Method, path: &str) -> bool {
    if path.starts_with("/admin/") {
        return false;
    }
    if path == BATCH_PATH {
        return true;
    }
    if path.starts_with("/internal/") {
        return PATHS.iter().any(|(_, p, changes)| *p == path && *changes);
    }
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A layer of a process's router (`axum::middleware::from_fn_with_state`): for a request
/// that changes something, exits on receipt or after its handler succeeded and before the
/// reply is written, as the switchboard says. With no exit set, one atomic load.
pub async fn exit_points(State(seam): State<ExitSeam>, request: Request, next: Next) -> Response {
    if !seam.board.exits_armed.load(Ordering::Acquire) || !changes(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    if seam.board.exits_at(ExitPoint::OnReceive) {
        (seam.exit)(ExitPoint::OnReceive);
    }
    let response = next.run(request).await;
    if response.status().is_success() && seam.board.exits_at(ExitPoint::AfterCommit) {
        (seam.exit)(ExitPoint::AfterCommit);
    }
    response
}
