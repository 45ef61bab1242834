//! The network seam. Everything one service sends another goes through a [`Transport`]: over
//! real sockets in production ([`HttpTransport`]), or through a test's or a simulation's
//! transport that loses, delays, refuses and garbles on purpose. Nothing above this seam knows
//! which one it has.

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

use crate::rpc::{STEP_KEY_HEADER, Service};

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
}

/// What came back, undecoded.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
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

/// HTTP/1.1 with keep-alive to each service, carrying the cluster token.
pub struct HttpTransport {
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
        HttpTransport {
            client,
            addrs,
            authorization: HeaderValue::from_str(&format!("Bearer {cluster_token}")).expect("tokens are header-safe"),
        }
    }
}

/// `Retry-After` in seconds (the only form our services send; an HTTP date is ignored).
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(60.0)))
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        let service = request.service;
        let Some(addr) = self.addrs.get(&service) else {
            return Err(TransportError::Unsent(
                service,
                "this process has no address for it".into(),
            ));
        };
        let mut builder = hyper::Request::post(format!("http://{addr}{}", request.path))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.authorization.clone());
        if let Some(key) = &request.step_key {
            builder = builder.header(STEP_KEY_HEADER, key);
        }
        let http = builder.body(Full::new(request.body)).expect("a valid request");
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
            let body = Limited::new(response.into_body(), REPLY_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| TransportError::Broken(service, e.to_string()))?
                .to_bytes();
            Ok(Reply {
                status,
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(request.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::TimedOut(service, request.timeout.as_millis())),
        }
    }
}

/// `GET path` on `addr` over a fresh connection: the status, or `None` when nothing answered
/// within `timeout`. For health checks by a supervisor, not for calls between services.
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
