use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use lemonade_domain::ports::Health;

use crate::AppState;

/// Whether the shop works (`ok`), and which dependency is down and what that stops if not.
/// 200 while this process can serve, degraded included (`ok` false, `serving` true); 503
/// when this process itself cannot (`serving` false: its database, its writer or one of its
/// background tasks failed), so that a supervisor restarts it.
#[utoipa::path(get, path = "/health", tag = "system", operation_id = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(app): State<AppState>) -> impl IntoResponse {
    let health = app.shop.health().await;
    let status = if health.serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

/// This process's liveness, outside `/api/v1` and without a token: 200 `ok` while it can
/// serve, 503 with the reason when it cannot (then it should be restarted). Unlike
/// [`health`], a dependency that is down does not change it. Not part of the public API.
pub async fn live(State(app): State<AppState>) -> impl IntoResponse {
    match app.shop.live().await {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "system", operation_id = "metrics", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        app.metrics.as_ref().map(|m| m.render()).unwrap_or_default(),
    )
}

/// This API's OpenAPI document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "system", operation_id = "openapi", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        crate::openapi::json(),
    )
}
