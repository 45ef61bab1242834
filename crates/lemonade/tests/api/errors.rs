//! What every endpoint answers to requests that are not even well formed: problem documents
//! with the right status and code, and nothing changed.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, s, spawn_app, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_problem_and_changes_nothing() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await;
    let json = Some("application/json");
    for body in ["{", "not json", "", "{]", "{,}", "\u{0}"] {
        app.post_raw("/orders", json, body)
            .await
            .problem(400, "validation_failed");
        app.post_raw("/ingredients", json, body)
            .await
            .problem(400, "validation_failed");
        app.post_raw(&format!("/ingredients/{}/restock", stand.ingredient_id), json, body)
            .await
            .problem(400, "validation_failed");
    }
    let line = format!("{{\"product_id\": \"{}\", \"quantity\": 1}}", stand.product_id);
    for body in [
        format!("{{\"lines\": [{line}"),
        format!("{{\"lines\": [{line}]}} and more"),
        format!("{{\"lines\": [{line},]}}"),
        format!("{{\"lines\": [{line}]}}{{\"lines\": [{line}]}}"),
    ] {
        app.post_raw("/orders", json, body)
            .await
            .problem(400, "validation_failed");
    }
    let patch = app
        .send(
            app.request(Method::PATCH, &format!("/products/{}", stand.product_id))
                .header("content-type", "application/json")
                .body("{\"price\": "),
        )
        .await;
    patch.problem(400, "validation_failed");
    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_declared_json_is_a_415_problem_and_changes_nothing() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[], &[]).await;
    let body = TestApp::order_body(None, &[(&stand.product_id, 1)]).to_string();
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        app.post_raw("/orders", content_type, body.clone())
            .await
            .problem(415, "unsupported_media_type");
    }
    app.post_raw(
        &format!("/ingredients/{}/waste", stand.ingredient_id),
        Some("text/plain"),
        "{\"quantity\": 1}",
    )
    .await
    .problem(415, "unsupported_media_type");
    // A charset parameter is still JSON.
    app.post_raw("/orders", Some("application/json; charset=utf-8"), body)
        .await
        .expect(201);
    let after = app.state(&[&stand.ingredient_id], &[], &[]).await;
    assert_eq!(
        after[format!("ingredient {}", stand.ingredient_id)]["ingredient"]["on_hand"],
        18
    );
    assert_ne!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_64_kib_are_a_413_problem_and_change_nothing() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[], &[]).await;
    // Valid JSON made big with whitespace, so only its size is wrong.
    let order = TestApp::order_body(None, &[(&stand.product_id, 1)]).to_string();
    let big = format!("{}{}", " ".repeat(64 * 1024), order);
    app.post_raw("/orders", Some("application/json"), big)
        .await
        .problem(413, "payload_too_large");
    let name = format!("Huge {}", unique());
    let big = format!("{}{}", " ".repeat(70 * 1024), json!({"name": name, "unit": "g"}));
    app.post_raw("/ingredients", Some("application/json"), big)
        .await
        .problem(413, "payload_too_large");
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[]).await, before);
    assert!(
        !app.get_all("/ingredients", 200)
            .await
            .iter()
            .any(|i| i["name"] == name.as_str())
    );
    // A body sent in chunks, with no Content-Length to refuse it by, is cut off at the limit.
    let chunk = " ".repeat(8 * 1024);
    let mut body = String::new();
    for _ in 0..9 {
        body.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    body.push_str(&format!("{:x}\r\n{order}\r\n0\r\n\r\n", order.len()));
    let answer = app
        .raw_http(&format!(
            "POST /api/v1/orders HTTP/1.1\r\nHost: lemonade\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n{}\r\n{body}",
            app.token
                .as_ref()
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default()
        ))
        .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[]).await, before);
    // Just under the limit is fine.
    let fits = format!("{}{}", " ".repeat(60 * 1024), order);
    app.post_raw("/orders", Some("application/json"), fits)
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_paths_are_404_problems() {
    let app = spawn_app().await;
    for path in ["/nope", "/orders/x/refund", "/ingredients/x/y/z", "/v2/orders"] {
        app.get(path).await.problem(404, "not_found");
    }
    app.post("/nope", &json!({})).await.problem(404, "not_found");
}

/// `/api/v1/` is an unknown API path like any other, not the web app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_root_with_a_trailing_slash_is_a_404_problem() {
    let app = spawn_app().await;
    app.get("").await.problem(404, "not_found");
    app.get("/").await.problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_cannot_be_ids_are_404_problems() {
    let app = spawn_app().await;
    let long = "a".repeat(65);
    for bad in ["has%20space", "dot.dot", long.as_str(), "%C3%A9", "semi%3Bcolon"] {
        for path in [
            format!("/ingredients/{bad}"),
            format!("/products/{bad}"),
            format!("/customers/{bad}"),
            format!("/customers/{bad}/orders"),
            format!("/customers/{bad}/export"),
            format!("/orders/{bad}"),
            format!("/orders/{bad}/timeline"),
        ] {
            app.get(&path).await.problem(404, "not_found");
        }
        app.post(&format!("/orders/{bad}/cancel"), &json!({}))
            .await
            .problem(404, "not_found");
        app.post(&format!("/ingredients/{bad}/restock"), &json!({"quantity": 1}))
            .await
            .problem(404, "not_found");
        app.patch(&format!("/products/{bad}"), &json!({"price": 1}))
            .await
            .problem(404, "not_found");
        app.delete(&format!("/customers/{bad}")).await.problem(404, "not_found");
    }
}

/// A path segment that percent-decodes to something that is not UTF-8 cannot be an id either;
/// it must get the same 404 problem, not a plain-text 400 from the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_decode_to_invalid_utf8_are_404_problems_too() {
    let app = spawn_app().await;
    for bad in ["%FF", "%C3%28", "%80abc"] {
        for path in [
            format!("/orders/{bad}"),
            format!("/products/{bad}"),
            format!("/customers/{bad}"),
            format!("/ingredients/{bad}"),
        ] {
            app.get(&path).await.problem(404, "not_found");
        }
        app.post(&format!("/orders/{bad}/cancel"), &json!({}))
            .await
            .problem(404, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_an_endpoint_does_not_take_is_a_405_problem() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::DELETE, "/orders"),
        (Method::PUT, "/ingredients"),
        (Method::GET, "/orders/x/cancel"),
        (Method::DELETE, "/products/x"),
    ] {
        let reply = app.send(app.request(method.clone(), path)).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
        assert!(reply.content_type().starts_with("application/problem+json"));
        assert_eq!(reply.json()["status"], 405);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_limits_and_cursors_are_checked_on_every_list() {
    let app = spawn_app().await;
    let ing = app.create_ingredient("Salt", "g", 1).await;
    let c = app.create_customer("Pager").await;
    let lists = [
        "/ingredients".to_owned(),
        "/products".to_owned(),
        "/customers".to_owned(),
        "/orders".to_owned(),
        "/stock/moves".to_owned(),
        format!("/stock/moves?ingredient_id={}", s(&ing["id"])),
        format!("/customers/{}/orders", s(&c["id"])),
        "/customers?q=x".to_owned(),
    ];
    for list in &lists {
        let sep = if list.contains('?') { '&' } else { '?' };
        for bad in ["0", "201", "-1"] {
            app.get(&format!("{list}{sep}limit={bad}")).await.invalid("limit");
        }
        app.get(&format!("{list}{sep}limit=ten"))
            .await
            .problem(422, "validation_failed");
        app.get(&format!("{list}{sep}cursor=not%20a%20cursor"))
            .await
            .invalid("cursor");
        for ok in ["1", "200"] {
            let page = app.get(&format!("{list}{sep}limit={ok}")).await.expect(200);
            assert!(page["items"].is_array(), "{page}");
            assert!(page.as_object().unwrap().contains_key("next_cursor"), "{page}");
        }
        let page = app.get(list).await.expect(200);
        assert!(page["items"].as_array().unwrap().len() <= 50, "50 by default");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_carry_a_type_title_and_detail() {
    let app = spawn_app().await;
    let p = app.get("/orders/no-such-order").await.problem(404, "not_found");
    assert!(s(&p["type"]).contains("not_found"), "{p}");
    assert_eq!(p["title"], "Not Found");
    assert!(p.get("errors").is_none(), "only validation problems have errors: {p}");
    assert!(p.get("shortages").is_none(), "{p}");
    let p = app.post("/customers", &json!({"name": ""})).await.invalid("name");
    assert!(s(&p["detail"]).contains("name"), "{p}");
    assert!(p["errors"][0]["message"].is_string(), "{p}");
}
