//! A transport that breaks on purpose, for tests and the simulation: it wraps another
//! transport and, for the calls a test names, fails in one of the ways the article lists
//! instead of (or after) passing the call on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::rpc::Service;
use crate::transport::{Reply, Request, Transport, TransportError};

/// One way a call can go wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection is refused: nothing was sent.
    Refuse,
    /// The service answers 429 with `Retry-After`; nothing was done.
    RateLimit,
    /// Nothing comes back until the caller's timeout; nothing was sent.
    Hang,
    /// The call is carried out, but its reply cannot be decoded.
    Garble,
    /// The call is carried out, and its reply is lost: the worst case, an unknown outcome.
    LoseReply,
}

/// Faults to inject, per call path, each used once in the order given.
#[derive(Clone, Default)]
pub struct FaultPlan {
    queued: Arc<Mutex<HashMap<&'static str, Vec<Fault>>>>,
    /// How many faults were injected, per path.
    injected: Arc<Mutex<HashMap<&'static str, usize>>>,
    /// How many calls came through, faulted or not, per path.
    sent: Arc<Mutex<HashMap<&'static str, usize>>>,
    /// Services every call to which is refused, until healed.
    down: Arc<Mutex<HashSet<Service>>>,
    /// Services every call to which is held, unanswered, until healed.
    frozen: Arc<Mutex<HashSet<Service>>>,
    /// How many calls are held now, per service.
    held: Arc<Mutex<HashMap<Service, usize>>>,
    thawed: Arc<Notify>,
}

impl FaultPlan {
    /// The next `times` calls of `path` fail with `fault`.
    pub fn inject(&self, path: &'static str, fault: Fault, times: usize) {
        let mut queued = self.queued.lock();
        queued
            .entry(path)
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Every call to `service` is refused (the connection, as if its process were gone)
    /// until [`FaultPlan::heal`].
    pub fn take_down(&self, service: Service) {
        self.down.lock().insert(service);
    }

    /// Every call to `service` is sent and not answered until [`FaultPlan::heal`], however
    /// long its timeout: a stopped process (SIGSTOP) seen by a caller whose timeouts are
    /// all longer than the wait a test looks at, so that whatever stops waiting for it stops
    /// by its own bound. Once healed, the held calls go on to the service, late.
    pub fn freeze(&self, service: Service) {
        self.frozen.lock().insert(service);
    }

    /// How many calls to `service` are held by [`FaultPlan::freeze`] now.
    pub fn held(&self, service: Service) -> usize {
        self.held.lock().get(&service).copied().unwrap_or(0)
    }

    /// Forgets the faults not used yet, and brings every service back.
    pub fn heal(&self) {
        self.queued.lock().clear();
        self.down.lock().clear();
        self.frozen.lock().clear();
        self.thawed.notify_waiters();
    }

    /// Holds a call to `service` while it is frozen.
    async fn hold(&self, service: Service) {
        if !self.frozen.lock().contains(&service) {
            return;
        }
        let _held = Held::new(self, service);
        loop {
            let thawed = self.thawed.notified();
            if !self.frozen.lock().contains(&service) {
                return;
            }
            thawed.await;
        }
    }

    fn is_down(&self, service: Service) -> bool {
        self.down.lock().contains(&service)
    }

    pub fn injected(&self, path: &str) -> usize {
        self.injected.lock().get(path).copied().unwrap_or(0)
    }

    /// How many calls of `path` came through a transport of this plan, faulted or not (held
    /// calls once they go on).
    pub fn sent(&self, path: &str) -> usize {
        self.sent.lock().get(path).copied().unwrap_or(0)
    }

    fn take(&self, path: &'static str) -> Option<Fault> {
        let mut queued = self.queued.lock();
        let faults = queued.get_mut(path)?;
        if faults.is_empty() {
            return None;
        }
        let fault = faults.remove(0);
        *self.injected.lock().entry(path).or_insert(0) += 1;
        Some(fault)
    }
}

/// A call held by a frozen service, counted while it is.
struct Held<'a> {
    plan: &'a FaultPlan,
    service: Service,
}

impl<'a> Held<'a> {
    fn new(plan: &'a FaultPlan, service: Service) -> Self {
        *plan.held.lock().entry(service).or_insert(0) += 1;
        Held { plan, service }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self.plan.held.lock().entry(self.service).or_insert(1) -= 1;
    }
}

pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    plan: FaultPlan,
}

impl FaultyTransport {
    pub fn new(inner: Arc<dyn Transport>, plan: FaultPlan) -> Self {
        FaultyTransport { inner, plan }
    }
}

#[async_trait]
impl Transport for FaultyTransport {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        let service = request.service;
        let timeout = request.timeout;
        self.plan.hold(service).await;
        *self.plan.sent.lock().entry(request.path).or_insert(0) += 1;
        if self.plan.is_down(service) {
            return Err(TransportError::Unsent(
                service,
                "connection refused (taken down)".into(),
            ));
        }
        match self.plan.take(request.path) {
            None => self.inner.send(request).await,
            Some(Fault::Refuse) => Err(TransportError::Unsent(service, "connection refused (injected)".into())),
            Some(Fault::RateLimit) => Ok(Reply {
                status: 429,
                retry_after: Some(Duration::from_millis(50)),
                body: Bytes::from_static(br#"{"code":"unavailable","detail":"too many requests"}"#),
                hlc: None,
            }),
            Some(Fault::Hang) => {
                tokio::time::sleep(timeout).await;
                Err(TransportError::TimedOut(service, timeout.as_millis()))
            }
            Some(Fault::Garble) => {
                let reply = self.inner.send(request).await?;
                Ok(Reply {
                    body: Bytes::from_static(b"\x00{not json"),
                    ..reply
                })
            }
            Some(Fault::LoseReply) => {
                self.inner.send(request).await?;
                Err(TransportError::TimedOut(service, timeout.as_millis()))
            }
        }
    }
}
