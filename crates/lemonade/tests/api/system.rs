//! Health, metrics and the OpenAPI document.

use crate::support::{is_cluster, s, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_ok_with_its_mode_and_dependencies() {
    let app = spawn_app().await;
    let reply = app.get("/health").await;
    let health = reply.expect(200);
    assert!(reply.content_type().starts_with("application/json"));
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["serving"], true, "{health}");
    assert!(!s(&health["mode"]).is_empty());
    if app.is_local() {
        let mode = if is_cluster() { "coordinator" } else { "monolith" };
        assert_eq!(health["mode"], mode);
    }
    let deps = health["dependencies"].as_array().expect("dependencies is a list");
    assert!(!deps.is_empty(), "{health}");
    for d in deps {
        assert!(!s(&d["name"]).is_empty(), "{d}");
        assert_eq!(d["ok"], true, "{d}");
        assert!(d["degrades"].is_array(), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_counting_requests_by_route() {
    let app = spawn_app().await;
    app.get("/ingredients").await.expect(200);
    let reply = app.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{}",
        reply.content_type()
    );
    assert!(reply.text.contains("# TYPE"), "exposition format:\n{}", reply.text);
    let counted = reply
        .text
        .lines()
        .any(|l| l.starts_with("lemonade_http_requests_total{") && l.contains("route=\"/api/v1/ingredients\""));
    assert!(counted, "a request counter labelled with the route:\n{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let reply = app.get("/openapi.json").await;
    let doc = reply.expect(200);
    assert!(reply.content_type().starts_with("application/json"));
    assert!(s(&doc["openapi"]).starts_with('3'), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/ingredients",
        "/ingredients/{id}",
        "/ingredients/{id}/restock",
        "/ingredients/{id}/waste",
        "/ingredients/{id}/count",
        "/stock/moves",
        "/products",
        "/products/{id}",
        "/customers",
        "/customers/{id}",
        "/customers/{id}/orders",
        "/customers/{id}/export",
        "/orders",
        "/orders/{id}",
        "/orders/{id}/cancel",
        "/reports/sales",
        "/health",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} is missing from the document");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// `GET /health` outside `/api/v1` is the process's own liveness (what a supervisor restarts
/// it on): 200 `ok` while it can serve, asked without the access token the API wants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_at_the_root_answers_ok_without_the_access_token() {
    let app = crate::support::spawn_local(|args| args.token = Some("a-liveness-test-token".into()))
        .await
        .expect("start a test server");
    let live = app.client.get(format!("{}/health", app.root_url)).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.text().await.unwrap(), "ok");
    let api = app.client.get(format!("{}/health", app.base_url)).send().await.unwrap();
    assert_eq!(api.status(), 401, "the API's health still wants the token");
}
