//! The network seam. Everything one service sends another goes through a [`Transport`]: over
//! real sockets in production ([`HttpTransport`]), or through a test's or a simulation's
//! transport that loses, delays, refuses and garbles on purpose. Nothing above this seam knows
//! which one it has.
//!
//! [`HttpTransport`] batches opportunistically: a call goes out at once, from its caller's
//! task, while fewer than [`BATCHES_IN_FLIGHT_MAX`] requests to its service are out; calls
//! made while they all are wait and leave together, as one request to [`BATCH_PATH`], when
//! one comes back. A lone caller never waits for company, and under load the cost of a
//! request (a round trip, a task and a parse on each side) is shared by up to
//! [`BATCH_CALLS_MAX`] calls. A batch that fails fails each of its calls the way a lone
//! request would have (not sent, or outcome unknown), and each caller retries on its own,
//! with its step key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use lemonade_domain::hlc::Sent;

use crate::rpc::{BATCH_CALLS_HEADER, BATCH_CALLS_MAX, BATCH_PATH, BatchAnswer, HLC_HEADER, STEP_KEY_HEADER, Service};

/// Requests out to one service at once; calls made while this many are out wait to be
/// batched. Two did best of 1, 2, 4 and 8 (figures: docs/decisions.md, "Figures out of code
/// comments").
pub const BATCHES_IN_FLIGHT_MAX: usize = 2;
/// Calls waiting to go out to one service before callers are refused at once.
pub const CALLS_WAITING_MAX: usize = 8_192;

/// Largest reply body read from another service.
pub const REPLY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// One request to a service.
#[derive(Clone, Debug)]
pub struct Request {
    pub service: Service,
    pub path: &'static str,
    pub step_key: Option<String>,
    pub body: Bytes,
    pub timeout: Duration,
    /// The sender's hybrid logical clock stamp, sent as [`HLC_HEADER`].
    pub hlc: Option<Sent>,
}

/// What came back, undecoded.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
    /// The replying service's stamp, from [`HLC_HEADER`] (none when it sent none).
    pub hlc: Option<Sent>,
}

/// Why no reply came back. `Unsent` means the request certainly did not reach the service;
/// the others leave its outcome unknown: it may have been carried out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {0}: {1}")]
    Unsent(Service, String),
    #[error("{0} did not answer within {1} ms")]
    TimedOut(Service, u128),
    #[error("the connection to {0} failed mid-request: {1}")]
    Broken(Service, String),
}

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn send(&self, request: Request) -> Result<Reply, TransportError>;
}

/// HTTP/1.1 with keep-alive to each service, carrying the cluster token, with calls batched
/// under load (see the module docs). Must be made inside a tokio runtime (it starts a task
/// per service).
pub struct HttpTransport {
    http: Arc<Http>,
    lanes: HashMap<Service, Lane>,
}

/// The way to one service: the calls waiting, and the requests allowed out at once.
struct Lane {
    waiting: mpsc::Sender<Waiting>,
    out: Arc<Semaphore>,
}

/// A call waiting to go out, and where its reply goes.
struct Waiting {
    request: Request,
    reply: oneshot::Sender<Result<Reply, TransportError>>,
}

/// What sends requests: the HTTP client, the services' addresses, the token.
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    addrs: HashMap<Service, SocketAddr>,
    authorization: HeaderValue,
}

impl HttpTransport {
    pub fn new(addrs: HashMap<Service, SocketAddr>, cluster_token: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(1_000)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        let http = Arc::new(Http {
            client,
            addrs,
            authorization: HeaderValue::from_str(&format!("Bearer {cluster_token}")).expect("tokens are header-safe"),
        });
        let lanes = Service::ALL
            .into_iter()
            .filter(|s| http.addrs.contains_key(s))
            .map(|service| {
                let (tx, rx) = mpsc::channel(CALLS_WAITING_MAX);
                let out = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
                tokio::spawn(drive(Arc::clone(&http), service, rx, Arc::clone(&out)));
                (service, Lane { waiting: tx, out })
            })
            .collect();
        HttpTransport { http, lanes }
    }
}

/// Sends the calls that had to wait for one service, together, as requests may go out.
async fn drive(http: Arc<Http>, service: Service, mut waiting: mpsc::Receiver<Waiting>, out: Arc<Semaphore>) {
    loop {
        let Some(first) = waiting.recv().await else { return };
        let permit = Arc::clone(&out).acquire_owned().await.expect("never closed");
        let mut batch = vec![first];
        while batch.len() < BATCH_CALLS_MAX {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let http = Arc::clone(&http);
        tokio::spawn(async move {
            http.send_batch(service, batch).await;
            drop(permit);
        });
    }
}

/// The stamp a reply carries in [`HLC_HEADER`]; one that cannot be read is ignored.
pub fn stamp_of(headers: &hyper::HeaderMap) -> Option<Sent> {
    Sent::parse(headers.get(HLC_HEADER)?.to_str().ok()?)
}

/// `Retry-After` in seconds (the only form our services send; an HTTP date is ignored).
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(60.0)))
}

impl Http {
    /// One request: `POST path` with the body and headers given.
    async fn post(
        &self,
        service: Service,
        path: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let Some(addr) = self.addrs.get(&service) else {
            return Err(TransportError::Unsent(
                service,
                "this process has no address for it".into(),
            ));
        };
        let mut builder = hyper::Request::post(format!("http://{addr}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.authorization.clone());
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let Ok(http) = builder.body(Full::new(body)) else {
            return Err(TransportError::Unsent(service, "a header is not valid".into()));
        };
        let exchange = async {
            let response = self.client.request(http).await.map_err(|e| {
                if e.is_connect() {
                    TransportError::Unsent(service, e.to_string())
                } else {
                    TransportError::Broken(service, e.to_string())
                }
            })?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let hlc = stamp_of(response.headers());
            let body = Limited::new(response.into_body(), REPLY_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| TransportError::Broken(service, e.to_string()))?
                .to_bytes();
            Ok(Reply {
                status,
                retry_after,
                body,
                hlc,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::TimedOut(service, timeout.as_millis())),
        }
    }

    /// One call as a request of its own.
    async fn send_one(&self, request: Request) -> Result<Reply, TransportError> {
        let headers: Vec<_> = (request.step_key.into_iter().map(|key| (STEP_KEY_HEADER, key)))
            .chain(request.hlc.map(|sent| (HLC_HEADER, sent.to_header())))
            .collect();
        self.post(request.service, request.path, &headers, request.body, request.timeout)
            .await
    }

    /// Sends the calls whose callers still wait: one alone as itself, several as a batch.
    async fn send_batch(&self, service: Service, mut batch: Vec<Waiting>) {
        batch.retain(|w| !w.reply.is_closed());
        if batch.len() <= 1 {
            let Some(Waiting { request, reply }) = batch.pop() else {
                return;
            };
            let _ = reply.send(self.send_one(request).await);
            return;
        }
        let timeout = batch.iter().map(|w| w.request.timeout).max().expect("not empty");
        let mut headers = vec![(BATCH_CALLS_HEADER, batch.len().to_string())];
        // One stamp stands for all: the latest, which every other one of them precedes.
        let latest = batch
            .iter()
            .filter_map(|w| w.request.hlc.as_ref())
            .max_by_key(|s| s.stamp);
        headers.extend(latest.map(|sent| (HLC_HEADER, sent.to_header())));
        let answers = match self
            .post(service, BATCH_PATH, &headers, batch_body(&batch), timeout)
            .await
        {
            Ok(reply) if reply.status == 200 => match serde_json::from_slice::<Vec<BatchAnswer>>(&reply.body) {
                Ok(answers) if answers.len() == batch.len() => answers
                    .into_iter()
                    .map(|a| {
                        Ok(Reply {
                            status: a.status,
                            retry_after: a.retry_after_s.map(Duration::from_secs),
                            body: Bytes::from(a.body.get().to_owned()),
                            hlc: reply.hlc.clone(),
                        })
                    })
                    .collect(),
                // The calls went out; what became of them cannot be read.
                _ => vec![
                    Err(TransportError::Broken(
                        service,
                        "its batch reply could not be read".into()
                    ));
                    batch.len()
                ],
            },
            // Refused whole (rate limit, overload): each call hears it as if it came alone.
            Ok(reply) => vec![Ok(reply); batch.len()],
            Err(e) => vec![Err(e); batch.len()],
        };
        for (waiting, answer) in batch.into_iter().zip(answers) {
            let _ = waiting.reply.send(answer);
        }
    }
}

/// The JSON of a batch: each call's path, step key and body, the body exactly as it would
/// have been sent alone (so the receiver's fingerprint of it is the same).
fn batch_body(batch: &[Waiting]) -> Bytes {
    let size = batch.iter().map(|w| w.request.body.len() + 96).sum();
    let mut out = Vec::with_capacity(size);
    out.push(b'[');
    for (i, w) in batch.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"path\":");
        serde_json::to_writer(&mut out, w.request.path).expect("a string serialises");
        if let Some(key) = &w.request.step_key {
            out.extend_from_slice(b",\"step_key\":");
            serde_json::to_writer(&mut out, key).expect("a string serialises");
        }
        out.extend_from_slice(b",\"body\":");
        out.extend_from_slice(&w.request.body);
        out.push(b'}');
    }
    out.push(b']');
    Bytes::from(out)
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        let service = request.service;
        let Some(lane) = self.lanes.get(&service) else {
            return Err(TransportError::Unsent(
                service,
                "this process has no address for it".into(),
            ));
        };
        // Nothing waiting and a request may go out: this call goes now, from the caller's
        // task, with no hop through the lane's sender.
        if lane.waiting.capacity() == lane.waiting.max_capacity()
            && let Ok(_permit) = Arc::clone(&lane.out).try_acquire_owned()
        {
            return self.http.send_one(request).await;
        }
        let timeout = request.timeout;
        let (reply, replied) = oneshot::channel();
        lane.waiting.try_send(Waiting { request, reply }).map_err(|e| {
            TransportError::Unsent(
                service,
                match e {
                    mpsc::error::TrySendError::Full(_) => "too many calls waiting to go out",
                    mpsc::error::TrySendError::Closed(_) => "its sender has stopped",
                }
                .into(),
            )
        })?;
        match tokio::time::timeout(timeout, replied).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(TransportError::Broken(service, "the request was dropped".into())),
            Err(_) => Err(TransportError::TimedOut(service, timeout.as_millis())),
        }
    }
}

/// `GET path` on `addr` over a fresh connection: the status, or `None` when nothing answered
/// within `timeout`. For health checks by a supervisor (each process's own `/health`, which
/// needs no token), not for calls between services.
pub async fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        Some(response.status().as_u16())
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}
