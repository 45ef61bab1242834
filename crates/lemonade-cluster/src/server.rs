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
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lemonade_api::error::shop_status;
use lemonade_domain::ShopError;
use lemonade_domain::ports::IdempotencyKey;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::rpc::{Call, STEP_KEY_HEADER};

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
            let mut response = (shop_status(&e), axum::Json(&e)).into_response();
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

/// A router of internal calls over the service state `S`.
pub struct Internal<S> {
    router: Router<S>,
}

impl<S: Clone + Send + Sync + 'static> Internal<S> {
    pub fn new() -> Self {
        Internal { router: Router::new() }
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
        Internal {
            router: self.router.route(C::PATH, post(endpoint)),
        }
    }

    /// The finished router: the calls, `/health`, and the protections around them.
    pub fn finish(self, state: S, cluster_token: &str, protection: Protection) -> Router {
        let guard = Arc::new(Guard {
            token: format!("Bearer {cluster_token}"),
            limiter: RateLimiter::direct(
                Quota::per_second(NonZeroU32::new(protection.rate_per_s.max(1)).expect("positive"))
                    .allow_burst(NonZeroU32::new(protection.burst.max(1)).expect("positive")),
            ),
            in_flight: Semaphore::new(protection.in_flight_max),
        });
        self.router
            .with_state(state)
            .layer(middleware::from_fn_with_state(guard, protect))
            .route("/health", get(|| async { "ok" }))
            .layer(DefaultBodyLimit::max(protection.body_bytes_max))
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Internal<S> {
    fn default() -> Self {
        Self::new()
    }
}

struct Guard {
    token: String,
    limiter: DefaultDirectRateLimiter,
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
    let authorised = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == guard.token.as_bytes());
    if !authorised {
        return (
            StatusCode::UNAUTHORIZED,
            "this is an internal service: it needs the cluster token",
        )
            .into_response();
    }
    if let Err(not_until) = guard.limiter.check() {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        metrics::counter!("lemonade_rate_limited").increment(1);
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            wait.as_secs().max(1),
            ShopError::unavailable("too many requests"),
        );
    }
    let Ok(_permit) = guard.in_flight.try_acquire() else {
        metrics::counter!("lemonade_overloaded").increment(1);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            1,
            ShopError::unavailable("too many requests in progress"),
        );
    };
    next.run(request).await
}
