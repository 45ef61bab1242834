//! The public REST API under `/api/v1`, and the web app at `/`.
//!
//! Everything here is HTTP: parsing requests into domain types, mapping [`error::ApiError`]
//! to problem+json, auth, metrics, OpenAPI. What the shop does is behind
//! [`lemonade_domain::ports::Shop`], so the same router serves the monolith and the
//! coordinator of the distributed mode.

/// Bearer tokens ([`lemonade_auth`], shared with the cluster's internal API).
pub use lemonade_auth as auth;
pub mod body;
pub mod declared;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod schema;
pub mod web;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lemonade_domain::ports::Shop;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::routes::{customers, orders, products, reports, stock, system};

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Longest a request may take before the client is told to retry (with its idempotency key).
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

#[derive(Clone)]
pub struct AppState {
    pub shop: Arc<dyn Shop>,
    /// When set, every API request must carry `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
    /// What `/metrics` renders: the process's Prometheus recorder, which the binary installs
    /// ([`metrics_handle`]); without one (a test, a simulation) it renders nothing and the
    /// counters go nowhere.
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// The state of the public API over `shop`, wanting `token` of every request if given.
    /// Installs nothing global: `metrics` is a recorder's handle the caller installed.
    pub fn new(shop: Arc<dyn Shop>, token: Option<String>, metrics: Option<PrometheusHandle>) -> Self {
        AppState {
            shop,
            token: token.map(Arc::from),
            metrics,
        }
    }
}

/// The process-wide Prometheus recorder, installed on first use (by the binary: a library
/// never installs globals).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours stays empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !auth::bearer_matches(presented, token) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".into());
    let method = request.method().as_str().to_owned();
    let response = match tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), next.run(request)).await {
        Ok(response) => response,
        // The work may still complete (the writer does not watch the client): the outcome is
        // unknown, which is what an idempotency key is for.
        Err(_) => ApiError::Shop(lemonade_domain::ShopError::unavailable(
            "the request took too long; retry it (with the same Idempotency-Key)",
        ))
        .into_response(),
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!("lemonade_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("lemonade_http_request_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}

async fn api_not_found() -> ApiError {
    lemonade_domain::ShopError::not_found("API endpoint").into()
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A handler that panicked is a bug; the client still gets a problem document, and the
/// connection and the server live on.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Shop(lemonade_domain::ShopError::unavailable(
        "the server hit an unexpected error; try again",
    ))
    .into_response()
}

/// The whole application: `/api/v1/...` and the web app. Built by a function so tests can
/// serve it on their own port or call it without a socket.
pub fn router(state: AppState) -> Router {
    // Only a head start: the table is a process-wide `OnceLock` that the first request fills
    // if this has not yet, and it is the same whoever fills it (pure computation of the
    // OpenAPI document). So a run on paused time (the simulation) answers the same whether
    // this thread won or not; while it runs tokio holds the paused clock still, which costs
    // wall time only, never the order of virtual events.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(declared::warm);
    }
    let api = Router::new()
        .route("/ingredients", get(stock::list).post(stock::create))
        .route("/ingredients/{id}", get(stock::get))
        .route("/ingredients/{id}/restock", post(stock::restock))
        .route("/ingredients/{id}/waste", post(stock::waste))
        .route("/ingredients/{id}/count", post(stock::count))
        .route("/stock/moves", get(stock::moves))
        .route("/products", get(products::list).post(products::create))
        .route("/products/{id}", get(products::get).patch(products::update))
        .route("/customers", get(customers::list).post(customers::create))
        .route(
            "/customers/{id}",
            get(customers::get)
                .patch(customers::update)
                .delete(customers::anonymise),
        )
        .route("/customers/{id}/orders", get(customers::orders))
        .route("/customers/{id}/export", get(customers::export))
        .route("/orders", get(orders::list).post(orders::place))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/timeline", get(orders::timeline))
        .route("/reports/sales", get(reports::sales))
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route_layer(middleware::from_fn(declared::refuse_undeclared))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest(declared::API_PREFIX, api)
        .route("/health", get(system::live))
        .fallback(web::serve)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}
