//! The receiving side of the internal API: a router of [`Call`] handlers behind the
//! protections every service has. In order, a request meets: a bound on its body, the
//! cluster token, a rate limit (429 with `Retry-After`), a limit on requests in progress
//! (503 with `Retry-After`), then its handler. A handler gets the parsed call and, for a call
//! that changes something, its step key with a fingerprint of the body.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lemonade_domain::ShopError;
use lemonade_domain::ports::{Health, IdempotencyKey};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use lemonade_domain::hlc::{Hlc, Sent};
use lemonade_domain::ports::Clock;

use crate::rpc::{
    BATCH_CALLS_HEADER, BATCH_CALLS_MAX, BATCH_PATH, BatchAnswer, BatchCall, Call, HLC_HEADER, STEP_KEY_HEADER,
};

/// What protects a service. Units are in the names.
#[derive(Clone, Copy, Debug)]
pub struct Protection {
    /// Sustained requests per second before 429.
    pub rate_per_s: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
    /// Requests in progress at once before 503.
    pub in_flight_max: usize,
    /// Largest request body.
    pub body_bytes_max: usize,
}

impl Default for Protection {
    fn default() -> Self {
        Protection {
            rate_per_s: 100_000,
            burst: 20_000,
            in_flight_max: 1_024,
            body_bytes_max: 1024 * 1024,
        }
    }
}

/// Answers a handler's result: 200 with the reply, or the error with its status. Internal
/// callers read the error back as the same [`ShopError`].
fn answer<T: serde::Serialize>(result: Result<T, ShopError>) -> Response {
    match result {
        Ok(reply) => axum::Json(reply).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).expect("a shop error's status is valid");
            let mut response = (status, axum::Json(&e)).into_response();
            if matches!(e, ShopError::Unavailable { .. }) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}

fn fingerprint(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a call and its step key. Bad input is refused and reaches no handler.
fn parse<C: Call>(headers: &HeaderMap, body: &[u8]) -> Result<(C, Option<IdempotencyKey>), ShopError> {
    let call: C = serde_json::from_slice(body).map_err(|e| ShopError::validation("body", e.to_string()))?;
    let key = match (C::CHANGES, headers.get(STEP_KEY_HEADER)) {
        (false, _) => None,
        (true, None) => return Err(ShopError::validation(STEP_KEY_HEADER, "a change needs a step key")),
        (true, Some(v)) => {
            let v = v
                .to_str()
                .map_err(|_| ShopError::validation(STEP_KEY_HEADER, "must be printable ASCII"))?;
            Some(IdempotencyKey::parse(v, fingerprint(body))?)
        }
    };
    Ok((call, key))
}

/// What a service's `/health` reports: whether this process itself can serve (503 when
/// not, so that a supervisor restarts it). Other services being down is not its health.
pub trait Serving: Clone + Send + Sync + 'static {
    fn health(&self) -> impl Future<Output = Health> + Send;
    /// The process's hybrid logical clock and the wall clock it reads (see [`stamp`]).
    fn clocks(&self) -> Clocks;
}

/// A process's hybrid logical clock and the wall clock it reads.
#[derive(Clone)]
pub struct Clocks {
    pub hlc: Arc<Hlc>,
    pub clock: Arc<dyn Clock>,
}

impl Serving for crate::node::Node {
    fn health(&self) -> impl Future<Output = Health> + Send {
        crate::node::Node::health(self)
    }
    fn clocks(&self) -> Clocks {
        Clocks {
            hlc: Arc::clone(&self.db.hlc),
            clock: Arc::clone(&self.clock),
        }
    }
}

/// Merges the caller's stamp ([`HLC_HEADER`]) before the call runs, and stamps the reply.
/// A stamp more than the bound ahead of this process's wall clock is refused, `503
/// clock_skew`, and the call does not run: the clocks must be put right, not this one
/// dragged forward (docs/decisions.md, 2026-12-01). A header that cannot be read is refused
/// as a bad field (422); a call without one (a batch's calls, which their batch's header stamped) is
/// not merged.
async fn stamp(State(clocks): State<Clocks>, request: Request, next: Next) -> Response {
    if let Some(raw) = request.headers().get(HLC_HEADER) {
        let Some(sent) = raw.to_str().ok().and_then(Sent::parse) else {
            return answer::<()>(Err(ShopError::validation(
                HLC_HEADER,
                "must be a process name and a stamp: `<name> <ms>.<counter>`",
            )));
        };
        if let Err(skew) = clocks.hlc.receive(&sent, clocks.clock.now()) {
            metrics::counter!("lemonade_clock_skew_refused", "from" => sent.from.clone()).increment(1);
            return answer::<()>(Err(ShopError::ClockSkew {
                detail: format!(
                    "{}'s clock stamp is {} ms ahead of {}'s clock, more than the {} ms allowed: the call was refused; \
                     the clocks of the cluster's machines must be synchronised",
                    sent.from,
                    skew.ahead_ms,
                    clocks.hlc.name(),
                    skew.bound_ms
                ),
            }));
        }
    }
    let mut response = next.run(request).await;
    let sent = clocks.hlc.send(clocks.clock.now());
    if let Ok(value) = HeaderValue::from_str(&sent.to_header()) {
        response.headers_mut().insert(HLC_HEADER, value);
    }
    response
}

/// `/health`'s answer: the health as JSON, 200 while the process can serve, else 503.
async fn health<S: Serving>(State(state): State<S>) -> Response {
    let health = state.health().await;
    let status = if health.serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health)).into_response()
}

/// A router of internal calls over the service state `S`.
pub struct Internal<S> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Serving> Internal<S> {
    pub fn new() -> Self {
        Internal {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    /// Serves `C` with `handler`.
    pub fn handle<C, F, Fut>(self, handler: F) -> Self
    where
        C: Call,
        F: Fn(S, C, Option<IdempotencyKey>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Reply, ShopError>> + Send + 'static,
    {
        let endpoint = move |State(state): State<S>, headers: HeaderMap, body: Bytes| {
            let handler = handler.clone();
            async move {
                match parse::<C>(&headers, &body) {
                    Ok((call, key)) => answer(handler(state, call, key).await),
                    Err(e) => answer::<()>(Err(e)),
                }
            }
        };
        let mut paths = self.paths;
        paths.push(C::PATH);
        Internal {
            router: self.router.route(C::PATH, post(endpoint)),
            paths,
        }
    }

    /// The finished router: the calls, `/health` (see [`Serving`]), and the protections
    /// around the calls.
    pub fn finish(self, state: S, cluster_token: &str, protection: Protection) -> Router {
        let health_of = Router::new()
            .route("/health", get(health::<S>))
            .with_state(state.clone());
        let guard = Arc::new(Guard {
            token: cluster_token.to_owned(),
            limiter: crate::rate::Limiter::new(protection.rate_per_s, protection.burst),
            in_flight: Semaphore::new(protection.in_flight_max),
        });
        let clocks = state.clocks();
        let calls = self.router.with_state(state);
        let batch = Batch {
            calls: calls.clone(),
            paths: Arc::new(self.paths),
        };
        calls
            .route(
                BATCH_PATH,
                post(move |headers: HeaderMap, body: Bytes| run_batch(batch.clone(), headers, body)),
            )
            .layer(middleware::from_fn_with_state(clocks, stamp))
            .layer(middleware::from_fn_with_state(guard, protect))
            .merge(health_of)
            .layer(DefaultBodyLimit::max(protection.body_bytes_max))
    }
}

impl<S: Serving> Default for Internal<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a batch needs: the calls' router (without the protections, which the batch passed
/// once for all its calls) and the paths it serves.
#[derive(Clone)]
struct Batch {
    calls: Router,
    paths: Arc<Vec<&'static str>>,
}

/// The number of calls a batch request says it holds, from its header.
fn batch_calls(headers: &HeaderMap) -> Result<usize, ShopError> {
    headers
        .get(BATCH_CALLS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=BATCH_CALLS_MAX).contains(n))
        .ok_or_else(|| ShopError::validation(BATCH_CALLS_HEADER, format!("must be 1 to {BATCH_CALLS_MAX}")))
}

/// A call's answer body as JSON: as it is (every handler answers JSON), or as a JSON string
/// should something else ever answer.
fn json_body(bytes: &[u8]) -> Box<serde_json::value::RawValue> {
    let text = || String::from_utf8_lossy(bytes).into_owned();
    serde_json::value::RawValue::from_string(text())
        .unwrap_or_else(|_| serde_json::value::to_raw_value(&text()).expect("a string serialises"))
}

/// Runs each call of a batch through the calls' router, all at once, and answers them in
/// order. A batch that cannot be read is refused whole and runs nothing.
async fn run_batch(batch: Batch, headers: HeaderMap, body: Bytes) -> Response {
    let calls = match parse_batch(&headers, &body) {
        Ok(calls) => calls,
        Err(e) => return answer::<()>(Err(e)),
    };
    let mut running = tokio::task::JoinSet::new();
    for (i, call) in calls.into_iter().enumerate() {
        let batch = batch.clone();
        running.spawn(async move { (i, run_call(batch, call).await) });
    }
    let mut answers: Vec<Option<BatchAnswer>> = (0..running.len()).map(|_| None).collect();
    while let Some(done) = running.join_next().await {
        // A call whose handler panicked is answered below, as a lone call's connection would
        // have failed: its outcome unknown.
        let Ok((i, answer)) = done else {
            continue;
        };
        answers[i] = Some(answer);
    }
    let answers: Vec<BatchAnswer> = answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| BatchAnswer {
                status: 500,
                retry_after_s: None,
                body: json_body(b"\"the call failed unexpectedly\""),
            })
        })
        .collect();
    axum::Json(answers).into_response()
}

/// The calls of a batch: the body's list, as many as its header says.
fn parse_batch(headers: &HeaderMap, body: &[u8]) -> Result<Vec<BatchCall>, ShopError> {
    let n = batch_calls(headers)?;
    let calls: Vec<BatchCall> =
        serde_json::from_slice(body).map_err(|e| ShopError::validation("body", e.to_string()))?;
    if calls.len() != n {
        return Err(ShopError::validation(
            BATCH_CALLS_HEADER,
            format!("says {n} calls, the body holds {}", calls.len()),
        ));
    }
    Ok(calls)
}

/// Runs one call of a batch through the calls' router, as if it had come alone.
async fn run_call(batch: Batch, call: BatchCall) -> BatchAnswer {
    let refused = |status: u16, e: ShopError| BatchAnswer {
        status,
        retry_after_s: None,
        body: json_body(&serde_json::to_vec(&e).expect("errors serialise")),
    };
    let Some(&path) = batch.paths.iter().find(|p| **p == call.path) else {
        let e = ShopError::not_found("internal call");
        return refused(e.status(), e);
    };
    let mut request = axum::http::Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = &call.step_key {
        request = request.header(STEP_KEY_HEADER, key.as_str());
    }
    let request = match request.body(axum::body::Body::from(call.body.get().to_owned())) {
        Ok(r) => r,
        Err(_) => return refused(400, ShopError::validation(STEP_KEY_HEADER, "must be printable ASCII")),
    };
    let response = tower::ServiceExt::oneshot(batch.calls, request)
        .await
        .expect("a router is infallible");
    let status = response.status().as_u16();
    let retry_after_s = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    BatchAnswer {
        status,
        retry_after_s,
        body: json_body(&body),
    }
}

struct Guard {
    /// The cluster token, as callers send it after `Bearer `.
    token: String,
    /// On tokio time (see [`crate::rate`]).
    limiter: crate::rate::Limiter,
    in_flight: Semaphore,
}

fn refuse(status: StatusCode, retry_after_s: u64, e: ShopError) -> Response {
    let mut response = (status, axum::Json(e)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&retry_after_s.to_string()).expect("digits"),
    );
    response
}

async fn protect(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let authorised = lemonade_auth::bearer_matches(presented, &guard.token);
    if !authorised {
        return (
            StatusCode::UNAUTHORIZED,
            "this is an internal service: it needs the cluster token",
        )
            .into_response();
    }
    // A batch counts as the calls it holds.
    let calls = if request.uri().path() == BATCH_PATH {
        match batch_calls(request.headers()) {
            Ok(n) => n,
            Err(e) => return answer::<()>(Err(e)),
        }
    } else {
        1
    };
    // A batch larger than the whole burst could never pass: it takes the whole burst instead.
    let limited = guard
        .limiter
        .take(NonZeroU32::new(calls as u32).expect("at least one call"));
    if let Err(wait) = limited {
        metrics::counter!("lemonade_rate_limited").increment(1);
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            wait.as_secs().max(1),
            ShopError::unavailable("too many requests"),
        );
    }
    let Ok(_permit) = guard.in_flight.try_acquire_many(calls as u32) else {
        metrics::counter!("lemonade_overloaded").increment(1);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            1,
            ShopError::unavailable("too many requests in progress"),
        );
    };
    next.run(request).await
}
