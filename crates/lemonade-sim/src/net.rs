//! The simulated network: every call between nodes, and every client's request to the
//! coordinator, goes through [`Net`], which hands it to the target node's router in this
//! process (as hyper would, in the caller's connection: when the caller stops waiting or
//! the target crashes, the handler's future is dropped at whatever await it is in) and
//! injects, per call and with the run's rates, the article's faults.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{self, header};
use bytes::Bytes;
use lemonade_cluster::rpc::{STEP_KEY_HEADER, Service};
use lemonade_cluster::transport::{REPLY_BYTES_MAX, Reply, Request, Transport, TransportError};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::faults::{FaultKind, FaultRates};
use crate::trace::Trace;

/// A node of the simulated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    Coordinator,
    Stock,
    Orders,
    Crm,
}

impl NodeId {
    pub const ALL: [NodeId; 4] = [NodeId::Coordinator, NodeId::Stock, NodeId::Orders, NodeId::Crm];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeId::Coordinator => "coordinator",
            NodeId::Stock => "stock",
            NodeId::Orders => "orders",
            NodeId::Crm => "crm",
        }
    }

    /// The node that serves `service`.
    pub fn serving(service: Service) -> NodeId {
        match service {
            Service::Stock => NodeId::Stock,
            Service::Orders => NodeId::Orders,
            Service::Crm => NodeId::Crm,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Longest a connection attempt to an unreachable node takes before it is given up as
/// refused (the production transport's connect timeout).
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Most delay the [`FaultKind::Delay`] fault adds to a request or to its reply.
pub const DELAY_MAX_MS: u64 = 400;
/// Most `Retry-After` a [`FaultKind::RateLimit`] answer asks for.
pub const RETRY_AFTER_MAX_S: u64 = 2;
/// The range of every hop's latency, each way, in µs (loopback to a busy LAN): so that a
/// crash or a hang-up can fall between any two steps of a handler, not only where
/// something already waits.
pub const LATENCY_US: (u64, u64) = (100, 5_000);
/// Most a late copy (of a timed-out or duplicated call) arrives after its caller's
/// deadline, in ms: late enough to come after the caller's retry or its compensation.
pub const LATE_COPY_MS_MAX: u64 = 5_000;

/// A node as the network reaches it: its router while it runs, and the token its crash
/// cancels.
#[derive(Clone)]
struct Up {
    router: Router,
    crashed: CancellationToken,
}

struct State {
    rng: SmallRng,
    rates: FaultRates,
    /// Links that drop everything, as (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    nodes: [Option<Up>; 4],
}

/// The simulated network. Cheap to clone (shared).
#[derive(Clone)]
pub struct Net {
    state: Arc<Mutex<State>>,
    trace: Trace,
    authorization: http::HeaderValue,
}

/// What the network does to one call, drawn when it is sent.
#[derive(Clone, Copy, Debug, Default)]
struct Fate {
    refuse: bool,
    rate_limit: Option<u64>,
    garble: bool,
    lose_reply: bool,
    /// Delivered only after the caller's timeout (a late copy), and never answered to it.
    timeout: bool,
    duplicate: bool,
    delay_request_ms: u64,
    delay_reply_ms: u64,
    /// The hop's latency each way.
    latency_request: Duration,
    latency_reply: Duration,
    /// How long after the original a late copy (timeout, duplicate) arrives.
    late_copy_ms: u64,
}

impl Net {
    /// A network with no node up and no fault, drawing from `seed`; calls carry
    /// `cluster_token`.
    pub fn new(seed: u64, trace: Trace, cluster_token: &str) -> Net {
        Net {
            state: Arc::new(Mutex::new(State {
                rng: SmallRng::seed_from_u64(seed),
                rates: FaultRates::calm(),
                cut: BTreeSet::new(),
                nodes: [None, None, None, None],
            })),
            trace,
            authorization: http::HeaderValue::from_str(&format!("Bearer {cluster_token}"))
                .expect("a cluster token is header-safe"),
        }
    }

    /// The per-call fault rates from now on.
    pub fn set_rates(&self, rates: FaultRates) {
        self.state.lock().rates = rates;
    }

    /// `node` answers with `router` from now on; returns the token its crash cancels.
    pub fn up(&self, node: NodeId, router: Router) -> CancellationToken {
        let crashed = CancellationToken::new();
        self.state.lock().nodes[node.index()] = Some(Up {
            router,
            crashed: crashed.clone(),
        });
        crashed
    }

    /// `node` is gone: every request it is handling is cut, new ones are refused.
    pub fn down(&self, node: NodeId) {
        if let Some(up) = self.state.lock().nodes[node.index()].take() {
            up.crashed.cancel();
        }
    }

    /// Cuts the link from `from` to `to` (one way) until [`Net::heal_links`].
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.state.lock().cut.insert((from, to));
    }

    /// Every link works again.
    pub fn heal_links(&self) {
        self.state.lock().cut.clear();
    }

    /// The transport of `from`: its calls to the services.
    pub fn transport(&self, from: NodeId) -> Arc<dyn Transport> {
        Arc::new(SimTransport {
            from,
            net: self.clone(),
        })
    }

    fn fate(&self) -> Fate {
        let mut state = self.state.lock();
        let State { rng, rates, .. } = &mut *state;
        let mut hit = |kind: FaultKind| {
            let rate = rates.rate(kind);
            // Draw for every kind whatever the rates, so the draws of a call do not depend
            // on which kinds are on.
            let roll: f64 = rng.random();
            roll < rate
        };
        let refuse = hit(FaultKind::Refuse);
        let rate_limit = hit(FaultKind::RateLimit);
        let garble = hit(FaultKind::Garble);
        let lose_reply = hit(FaultKind::LoseReply);
        let timeout = hit(FaultKind::Timeout);
        let duplicate = hit(FaultKind::Duplicate);
        let delay_request = hit(FaultKind::Delay);
        let delay_reply = hit(FaultKind::Delay);
        let retry_after_s = rng.random_range(0..=RETRY_AFTER_MAX_S);
        let delays = (rng.random_range(1..=DELAY_MAX_MS), rng.random_range(1..=DELAY_MAX_MS));
        let latency = (
            Duration::from_micros(rng.random_range(LATENCY_US.0..=LATENCY_US.1)),
            Duration::from_micros(rng.random_range(LATENCY_US.0..=LATENCY_US.1)),
        );
        let late_copy_ms = rng.random_range(0..=LATE_COPY_MS_MAX);
        Fate {
            refuse,
            rate_limit: rate_limit.then_some(retry_after_s),
            garble,
            lose_reply,
            timeout,
            duplicate,
            delay_request_ms: if delay_request { delays.0 } else { 0 },
            delay_reply_ms: if delay_reply { delays.1 } else { 0 },
            latency_request: latency.0,
            latency_reply: latency.1,
            late_copy_ms,
        }
    }

    fn node(&self, node: NodeId) -> Option<Up> {
        self.state.lock().nodes[node.index()].clone()
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.state.lock().cut.contains(&(from, to))
    }

    /// Hands `request` to `to`'s router and reads its answer, unless `to` crashes first
    /// (the connection reset: `None`).
    async fn deliver(&self, to: NodeId, request: http::Request<Body>) -> Option<(u16, http::HeaderMap, Bytes)> {
        let up = self.node(to)?;
        let answer = async {
            let response = up.router.oneshot(request).await.unwrap_or_else(|never| match never {});
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), REPLY_BYTES_MAX).await.ok()?;
            Some((status, headers, body))
        };
        tokio::select! {
            biased;
            () = up.crashed.cancelled() => None,
            answer = answer => answer,
        }
    }

    /// A call from `from`, with its faults.
    async fn call(&self, from: NodeId, request: Request) -> Result<Reply, TransportError> {
        let service = request.service;
        let to = NodeId::serving(service);
        let who = from.as_str();
        let path = request.path;
        let timeout_ms = request.timeout.as_millis();
        if self.is_cut(from, to) {
            self.trace.fault(
                who,
                FaultKind::Partition,
                format_args!("{path} to {} dropped", to.as_str()),
            );
            let wait = request.timeout.min(Duration::from_millis(CONNECT_TIMEOUT_MS));
            tokio::time::sleep(wait).await;
            return Err(if wait < request.timeout {
                TransportError::Unsent(service, "connect timed out".into())
            } else {
                TransportError::TimedOut(service, timeout_ms)
            });
        }
        let fate = self.fate();
        if fate.refuse {
            self.trace
                .fault(who, FaultKind::Refuse, format_args!("{path} to {}", to.as_str()));
            return Err(TransportError::Unsent(service, "connection refused (simulated)".into()));
        }
        if let Some(retry_after_s) = fate.rate_limit {
            self.trace.fault(
                who,
                FaultKind::RateLimit,
                format_args!("{path} to {}: 429, retry after {retry_after_s} s", to.as_str()),
            );
            return Ok(Reply {
                status: 429,
                retry_after: Some(Duration::from_secs(retry_after_s)),
                body: Bytes::from_static(
                    br#"{"type":"https://lemonade.example/problems/rate-limited","title":"Too many requests","status":429}"#,
                ),
                hlc: None,
            });
        }
        if fate.timeout {
            // The call reaches the service only after its caller gave up (a queue, a GC
            // pause, a congested link): a late copy, carried out on its own.
            self.trace.fault(
                who,
                FaultKind::Timeout,
                format_args!(
                    "{path} to {} arrives {} ms after the caller's {timeout_ms} ms",
                    to.as_str(),
                    fate.late_copy_ms
                ),
            );
            self.send_late(to, &request, request.timeout + Duration::from_millis(fate.late_copy_ms));
            tokio::time::sleep(request.timeout).await;
            return Err(TransportError::TimedOut(service, timeout_ms));
        }
        if fate.duplicate {
            self.trace.fault(
                who,
                FaultKind::Duplicate,
                format_args!("{path} to {}, again {} ms later", to.as_str(), fate.late_copy_ms),
            );
            self.send_late(to, &request, Duration::from_millis(fate.late_copy_ms));
        }
        let http = self.http_request(&request);
        let exchange = async {
            tokio::time::sleep(fate.latency_request).await;
            if fate.delay_request_ms > 0 {
                self.trace.fault(
                    who,
                    FaultKind::Delay,
                    format_args!("{path} to {} held {} ms", to.as_str(), fate.delay_request_ms),
                );
                tokio::time::sleep(Duration::from_millis(fate.delay_request_ms)).await;
            }
            let Some((status, headers, body)) = self.deliver(to, http).await else {
                return Err(TransportError::Unsent(
                    service,
                    format!("{} is down (simulated)", to.as_str()),
                ));
            };
            self.trace
                .event(who, format_args!("{path} to {} answered {status}", to.as_str()));
            if fate.lose_reply {
                self.trace.fault(
                    who,
                    FaultKind::LoseReply,
                    format_args!("{path} to {}: reply of {status} lost", to.as_str()),
                );
                return Err(TransportError::Broken(service, "connection reset (simulated)".into()));
            }
            tokio::time::sleep(fate.latency_reply + Duration::from_millis(fate.delay_reply_ms)).await;
            let body = if fate.garble {
                self.trace.fault(
                    who,
                    FaultKind::Garble,
                    format_args!("{path} to {}: reply cut", to.as_str()),
                );
                body.slice(..body.len() / 2)
            } else {
                body
            };
            Ok(Reply {
                status,
                retry_after: retry_after(&headers),
                body,
                // The simulated network carries no clock stamps yet (issue 13's simulation part).
                hlc: None,
            })
        };
        match tokio::time::timeout(request.timeout, exchange).await {
            Ok(reply) => reply,
            Err(_) => {
                self.trace.event(
                    who,
                    format_args!("{path} to {}: no answer in {timeout_ms} ms", to.as_str()),
                );
                Err(TransportError::TimedOut(service, timeout_ms))
            }
        }
    }

    /// Delivers a copy of `request` to `to` after `after`, on its own: nobody waits for
    /// its answer (a duplicate, or a call that arrives after its caller gave up).
    fn send_late(&self, to: NodeId, request: &Request, after: Duration) {
        let (net, copy, path) = (self.clone(), self.http_request(request), request.path);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some((status, _, _)) = net.deliver(to, copy).await {
                net.trace.event(
                    to.as_str(),
                    format_args!("a late copy of {path} answered {status}, to nobody"),
                );
            }
        });
    }

    fn http_request(&self, request: &Request) -> http::Request<Body> {
        let mut builder = http::Request::post(request.path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, self.authorization.clone());
        if let Some(key) = &request.step_key {
            builder = builder.header(STEP_KEY_HEADER, key.as_str());
        }
        builder
            .body(Body::from(request.body.clone()))
            .expect("a request of known parts")
    }

    /// A client's request to the coordinator's public API: handed to its router, lost with
    /// the run's [`FaultKind::LoseReply`] rate after it was carried out, or refused while
    /// the coordinator is down. `None` when no answer came.
    pub async fn public(&self, client: u64, request: http::Request<Body>) -> Option<(u16, Bytes)> {
        let who = format!("client {client}");
        let line = format!("{} {}", request.method(), request.uri());
        let fate = self.fate();
        tokio::time::sleep(fate.latency_request).await;
        let Some((status, _, body)) = self.deliver(NodeId::Coordinator, request).await else {
            self.trace.event(&who, format_args!("{line}: no connection"));
            return None;
        };
        if fate.lose_reply {
            self.trace.fault(
                &who,
                FaultKind::LoseReply,
                format_args!("{line}: reply of {status} lost"),
            );
            return None;
        }
        tokio::time::sleep(fate.latency_reply).await;
        self.trace.event(&who, format_args!("{line}: {status}"));
        Some((status, body))
    }
}

/// `Retry-After` in whole seconds, as the services send it.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

/// One node's way to the others, through the [`Net`].
struct SimTransport {
    from: NodeId,
    net: Net,
}

#[async_trait]
impl Transport for SimTransport {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        self.net.call(self.from, request).await
    }
}
