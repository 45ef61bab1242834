//! The tablet web app: static files from `web/`, embedded in the binary in release builds
//! (read from disk in debug builds, so editing a file needs no rebuild).

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../../web"]
struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Serves a file of the app; any other path gets `index.html` so the app's own routes work
/// on reload.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") {
        // Not an app page: an API path no route took (`/api/v1/`, `/api/v2/...`).
        return crate::error::ApiError::Shop(lemonade_domain::ShopError::not_found("API endpoint")).into_response();
    }
    let (path, file) = match Assets::get(path) {
        Some(f) if !path.is_empty() => (path, f),
        _ => match Assets::get("index.html") {
            Some(f) => ("index.html", f),
            None => return (StatusCode::NOT_FOUND, "the web app is not built into this binary").into_response(),
        },
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type(path))),
            // The files are small and local, and carry no version in their names: always
            // revalidate, so an upgraded shop never runs yesterday's app.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
