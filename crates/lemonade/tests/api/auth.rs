//! The access token: without it, nothing under `/api/v1` answers but 401.

use reqwest::Method;
use serde_json::json;

use crate::support::{Reply, TestApp, is_remote, spawn_app, spawn_local, unique};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A shop that wants a token: an in-process one, or the deployment when it was given one.
async fn guarded_app() -> Option<TestApp> {
    if is_remote() {
        let app = spawn_app().await;
        if app.token.is_none() {
            eprintln!("skipped: LEMONADE_TEST_URL is set without LEMONADE_TEST_TOKEN");
            return None;
        }
        return Some(app);
    }
    Some(
        spawn_local(|args| args.token = Some(TOKEN.into()))
            .await
            .expect("start a guarded test server"),
    )
}

#[track_caller]
fn unauthorized(reply: &Reply) {
    reply.problem(401, "unauthorized");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_right_token_every_api_path_is_401_and_changes_nothing() {
    let Some(app) = guarded_app().await else { return };
    let token = app.token.clone().expect("a guarded app has a token");
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[], &[]).await;
    let anonymous = |method: Method, path: &str| app.client.request(method, app.url(path));
    let order = TestApp::order_body(None, &[(&stand.product_id, 1)]);
    let name = format!("Intruder {}", unique());

    let attempts = vec![
        anonymous(Method::GET, "/ingredients"),
        anonymous(Method::GET, "/health"),
        anonymous(Method::GET, "/metrics"),
        anonymous(Method::GET, "/openapi.json"),
        anonymous(Method::GET, "/reports/sales?from=2026-01-01&to=2026-01-01"),
        anonymous(Method::GET, "/no-such-endpoint"),
        anonymous(Method::GET, &format!("/ingredients/{}", stand.ingredient_id)),
        anonymous(Method::POST, "/orders").json(&order),
        anonymous(Method::POST, "/customers").json(&json!({"name": name})),
        anonymous(Method::POST, &format!("/ingredients/{}/waste", stand.ingredient_id)).json(&json!({"quantity": 1})),
        anonymous(Method::POST, "/orders")
            .bearer_auth("wrong-token-0123456789abcdef")
            .json(&order),
        anonymous(Method::POST, "/orders")
            .bearer_auth(&token[..token.len() - 1])
            .json(&order),
        anonymous(Method::POST, "/orders")
            .bearer_auth(format!("{token}x"))
            .json(&order),
        anonymous(Method::POST, "/orders")
            .header("authorization", token.clone())
            .json(&order),
        anonymous(Method::POST, "/orders")
            .basic_auth("admin", Some(&token))
            .json(&order),
    ];
    for attempt in attempts {
        unauthorized(&app.send(attempt).await);
    }
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[]).await, before);
    let found = app
        .get(&format!("/customers?q={}", crate::support::enc(&name)))
        .await
        .expect(200);
    assert_eq!(found["items"], json!([]));

    // With the token, the same requests work.
    app.send(app.request(Method::POST, "/orders").json(&order))
        .await
        .expect(201);
    app.get("/health").await.expect(200);
}

/// RFC 7235 §2.1: the scheme is case-insensitive; `bearer` and `BEARER` are `Bearer`.
/// Before, only `Bearer` passed and a client that wrote it otherwise got 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_taken_in_any_case() {
    let Some(app) = guarded_app().await else { return };
    let token = app.token.clone().expect("a guarded app has a token");
    for scheme in ["bearer", "BEARER", "bEARER"] {
        let reply = app
            .send(
                app.client
                    .get(app.url("/ingredients"))
                    .header("authorization", format!("{scheme} {token}")),
            )
            .await;
        reply.expect(200);
    }
}

/// A token that an `Authorization: Bearer` header cannot carry as given (a trailing space,
/// which HTTP strips; a space inside; a character outside RFC 6750's b64token) is refused
/// at start, naming the flag: before, the shop started and then refused every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_a_bearer_header_cannot_carry_is_refused_at_start() {
    if is_remote() {
        return;
    }
    for bad in ["abcdefabcdefabcdef  ", "abcdefab cdefabcdef", "abcdefabcdefabcdéf"] {
        let refused = spawn_local(|args| args.token = Some(bad.into())).await;
        let err = refused.err().expect("the token is refused").to_string();
        assert!(
            err.contains("--token") && err.contains("bearer token"),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_guards_only_the_api_not_the_web_app() {
    if is_remote() {
        return;
    }
    let app = guarded_app().await.expect("in-process");
    let page = app.send(app.client.get(format!("{}/", app.root_url))).await;
    assert_ne!(page.status, 401, "the web app itself loads and then asks for the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_shorter_than_16_characters_is_refused_at_start() {
    if is_remote() {
        return;
    }
    let refused = spawn_local(|args| args.token = Some("short-token".into())).await;
    let err = refused.err().expect("a short token is refused");
    assert!(err.to_string().contains("16"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_without_a_token_on_loopback_needs_no_authorization() {
    if is_remote() {
        return;
    }
    let app = spawn_app().await;
    assert!(app.token.is_none());
    app.send(app.client.get(app.url("/ingredients"))).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_accepted_even_on_a_shop_that_does_not_ask_for_one() {
    if is_remote() {
        return;
    }
    let app = spawn_app().await;
    let reply = app
        .send(app.client.get(app.url("/ingredients")).bearer_auth(TOKEN))
        .await;
    reply.expect(200);
}
