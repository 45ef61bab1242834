//! Every input is read as strictly as a body field: a query parameter an endpoint does not
//! take, one given twice, a JSON key given twice, a header sent twice or where it means
//! nothing, a cursor of another list's kind, a number written otherwise than as a number, a
//! body declared as something else than JSON: each is a clear problem naming what is wrong,
//! and changes nothing. What is lenient on purpose (percent-encoded ids, a `charset=utf-8`)
//! is pinned here too.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, error_fields, s, spawn_app, unique};

/// The `(field, message)` pairs of a validation problem, sorted.
fn errors_of(problem: &Value) -> Vec<(String, String)> {
    let mut errors: Vec<_> = problem["errors"]
        .as_array()
        .expect("a validation problem lists its errors")
        .iter()
        .map(|e| (s(&e["field"]).to_owned(), s(&e["message"]).to_owned()))
        .collect();
    errors.sort();
    errors
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    pairs.sort();
    pairs
}

const UNKNOWN: &str = "is not a parameter of this request";
const REPEATED: &str = "given more than once";

/// Every endpoint that takes query parameters, with a valid query to add to.
fn lists(ingredient: &str, customer: &str) -> Vec<String> {
    vec![
        "/ingredients?limit=5".to_owned(),
        "/products?limit=5".to_owned(),
        "/customers?q=x".to_owned(),
        "/orders?status=confirmed".to_owned(),
        format!("/stock/moves?ingredient_id={ingredient}"),
        format!("/customers/{customer}/orders?limit=5"),
        "/reports/sales?from=2026-01-01&to=2026-01-02".to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_query_parameters_are_refused_each_by_name_on_every_endpoint() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Query").await;
    let cid = s(&c["id"]);
    for list in lists(&stand.ingredient_id, cid) {
        let p = app
            .get(&format!("{list}&zzz=1&Limit=2"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(
            errors_of(&p),
            pairs(&[("Limit", UNKNOWN), ("zzz", UNKNOWN)]),
            "{list}: {p}"
        );
    }
    // Together with what is wrong with the known ones.
    let p = app
        .get("/orders?zzz=1&limit=ten&status=lost")
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        errors_of(&p),
        pairs(&[
            ("zzz", UNKNOWN),
            ("limit", "must be a whole number"),
            ("status", "must be pending, confirmed, failed or cancelled")
        ]),
        "{p}"
    );
    // Endpoints that take no query parameter refuse every one.
    let order = app.sell(None, &[(&stand.product_id, 1)]).await;
    let oid = s(&order["id"]);
    for path in [
        format!("/ingredients/{}", stand.ingredient_id),
        format!("/products/{}", stand.product_id),
        format!("/customers/{cid}"),
        format!("/customers/{cid}/export"),
        format!("/orders/{oid}"),
        "/health".to_owned(),
        "/openapi.json".to_owned(),
    ] {
        let p = app
            .get(&format!("{path}?zzz=1&x"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(errors_of(&p), pairs(&[("x", UNKNOWN), ("zzz", UNKNOWN)]), "{path}: {p}");
    }
    // A write with one changes nothing.
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[cid]).await;
    let name = format!("Queried {}", unique());
    app.post("/products?dry_run=1", &json!({"name": name, "price": 1, "recipe": []}))
        .await
        .invalid("dry_run");
    app.post(
        &format!("/ingredients/{}/restock?quantity=5", stand.ingredient_id),
        &json!({"quantity": 1}),
    )
    .await
    .invalid("quantity");
    app.send(
        app.request(Method::POST, "/orders?customer_id=x")
            .json(&TestApp::order_body(None, &[(&stand.product_id, 1)])),
    )
    .await
    .invalid("customer_id");
    app.send(app.request(Method::POST, &format!("/orders/{oid}/cancel?force=true")))
        .await
        .invalid("force");
    app.send(app.request(Method::DELETE, &format!("/customers/{cid}?hard=1")))
        .await
        .invalid("hard");
    app.patch(&format!("/products/{}?price=1", stand.product_id), &json!({"price": 2}))
        .await
        .invalid("price");
    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[cid]).await,
        before
    );
    // An empty query is no parameter at all.
    app.get(&format!("/products/{}?", stand.product_id)).await.expect(200);
    app.get("/products?&&").await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_parameter_given_twice_is_refused_by_name_whichever_it_is() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Twice").await;
    let cid = s(&c["id"]);
    let every = [
        ("/ingredients", vec![("limit", "1"), ("cursor", "")]),
        ("/products", vec![("limit", "1"), ("cursor", "")]),
        ("/customers", vec![("q", "x"), ("limit", "1"), ("cursor", "")]),
        (
            "/orders",
            vec![
                ("status", "confirmed"),
                ("customer_id", cid),
                ("limit", "1"),
                ("cursor", ""),
            ],
        ),
        (
            "/stock/moves",
            vec![
                ("ingredient_id", stand.ingredient_id.as_str()),
                ("limit", "1"),
                ("cursor", ""),
            ],
        ),
        (
            "/reports/sales",
            vec![
                ("from", "2026-01-01"),
                ("to", "2026-01-02"),
                ("by", "day"),
                ("tz_offset_minutes", "60"),
                ("format", "json"),
            ],
        ),
    ];
    let customer_orders = format!("/customers/{cid}/orders");
    let every = every
        .into_iter()
        .map(|(path, params)| (path.to_owned(), params))
        .chain([(customer_orders, vec![("limit", "1"), ("cursor", "")])]);
    for (path, params) in every {
        let query: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
        app.get(&format!("{path}?{}", query.join("&"))).await.expect(200);
        for (name, value) in &params {
            // The same value twice is still twice: which one was meant is not the point.
            for second in [*value, "2"] {
                let p = app
                    .get(&format!("{path}?{}&{name}={second}", query.join("&")))
                    .await
                    .problem(422, "validation_failed");
                assert_eq!(errors_of(&p), pairs(&[(name, REPEATED)]), "{path} {name}: {p}");
            }
        }
    }
    let p = app
        .get("/products?limit=1&limit=2&limit=3")
        .await
        .problem(422, "validation_failed");
    assert_eq!(errors_of(&p), pairs(&[("limit", REPEATED)]), "once however many: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_list_takes_the_cursors_it_hands_out_and_refuses_other_shapes() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Cursor").await;
    let cid = s(&c["id"]);
    app.sell(Some(cid), &[(&stand.product_id, 1)]).await;
    app.sell(Some(cid), &[(&stand.product_id, 1)]).await;
    let moves = format!("/stock/moves?ingredient_id={}", stand.ingredient_id);
    let first = app.get(&format!("{moves}&limit=1")).await.expect(200);
    let next = s(&first["next_cursor"]).to_owned();
    assert!(
        next.bytes().all(|b| b.is_ascii_digit()),
        "a move cursor is its sequence number: {next}"
    );
    let second = app.get(&format!("{moves}&limit=1&cursor={next}")).await.expect(200);
    assert_ne!(second["items"][0]["id"], first["items"][0]["id"]);
    for list in ["/stock/moves", moves.as_str()] {
        let sep = if list.contains('?') { '&' } else { '?' };
        for bad in ["zz", "-5", "1.5", "%2B5", "1234567890123456789", "0x10", "%205"] {
            app.get(&format!("{list}{sep}cursor={bad}")).await.invalid("cursor");
        }
    }
    // Id-shaped cursors are places in the id-ordered lists, handed out or not.
    for list in ["/ingredients", "/products", "/customers", "/orders"] {
        app.get(&format!("{list}?cursor=zz")).await.expect(200);
        app.get(&format!("{list}?cursor=not%20a%20cursor"))
            .await
            .invalid("cursor");
    }
    app.get(&format!("/customers/{cid}/orders?cursor=zz")).await.expect(200);
    app.get(&format!("/customers/{cid}/orders?cursor=a.b"))
        .await
        .invalid("cursor");
}

/// A list's cursor is a position in the list's order (an id of the list's kind), not a row:
/// one that no row has starts the page where such an id would sort, in either direction
/// (customers oldest first, orders newest first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_no_row_is_a_position_in_the_list() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| s(&i["id"]).to_owned())
            .collect()
    };
    let older = s(&app.create_customer("Positioned Older").await["id"]).to_owned();
    let newer = s(&app.create_customer("Positioned Newer").await["id"]).to_owned();
    // Just after `older` in id order, and no customer's id.
    let between = format!("{older}0");
    let page = app
        .get(&format!("/customers?q=positioned&cursor={between}"))
        .await
        .expect(200);
    assert_eq!(ids(&page), [newer], "{page}");

    let first = s(&app.sell(None, &[(&stand.product_id, 1)]).await["id"]).to_owned();
    let second = s(&app.sell(None, &[(&stand.product_id, 1)]).await["id"]).to_owned();
    // Between the two in id order: newest first, the page starts at the older one.
    let between = format!("{first}0");
    let page = app.get(&format!("/orders?cursor={between}")).await.expect(200);
    assert_eq!(ids(&page), [first], "{page}");
    assert!(second > between, "the newer one sorts after the cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_numbers_are_plain_digits_and_out_of_range_ones_name_their_bounds() {
    let app = spawn_app().await;
    for bad in ["%2B5", "2.5", "2.0", "1e1", "%205", "5%20", "five", ""] {
        let p = app
            .get(&format!("/products?limit={bad}"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(
            errors_of(&p),
            pairs(&[("limit", "must be a whole number")]),
            "{bad:?}: {p}"
        );
    }
    for huge in ["99999999999999999999", "-99999999999999999999", "201", "0"] {
        let p = app
            .get(&format!("/products?limit={huge}"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(
            errors_of(&p),
            pairs(&[("limit", "must be between 1 and 200")]),
            "{huge}: {p}"
        );
    }
    let report = "/reports/sales?from=2026-01-01&to=2026-01-02";
    for huge in ["99999999999", "-99999999999", "841"] {
        let p = app
            .get(&format!("{report}&tz_offset_minutes={huge}"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(
            errors_of(&p),
            pairs(&[("tz_offset_minutes", "must be between -840 and 840")]),
            "{huge}: {p}"
        );
    }
    app.get(&format!("{report}&tz_offset_minutes=-840")).await.expect(200);
    app.get("/products?limit=007").await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_key_given_twice_is_refused_by_its_path_with_the_other_bad_fields() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await;
    let name = format!("Twice {}", unique());
    let body = format!(r#"{{"name": "{name}", "name": "{name} b"}}"#);
    let p = app
        .post_raw("/customers", Some("application/json"), body)
        .await
        .problem(422, "validation_failed");
    assert_eq!(errors_of(&p), pairs(&[("name", REPEATED)]), "{p}");
    // At any depth, each once, with the other bad fields of the request.
    let product = &stand.product_id;
    let body = format!(
        r#"{{"lines": [
            {{"product_id": "{product}", "quantity": 1, "quantity": 2}},
            {{"product_id": "no-such-product", "quantity": 0}}
        ], "customer_id": null, "customer_id": "x", "customer_id": "y"}}"#
    );
    let p = app
        .post_raw("/orders", Some("application/json"), body)
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        errors_of(&p),
        pairs(&[
            ("customer_id", REPEATED),
            ("lines[0].quantity", REPEATED),
            ("lines[1].product_id", "no such product"),
            ("lines[1].quantity", "must be a whole number greater than zero"),
        ]),
        "{p}"
    );
    let body = format!(r#"{{"price": 1, "recipe": [], "active": true, "price": 2, "name": "{name}"}}"#);
    let p = app
        .post_raw("/products", Some("application/json"), body)
        .await
        .problem(422, "validation_failed");
    assert_eq!(errors_of(&p), pairs(&[("price", REPEATED)]), "{p}");
    let p = app
        .send(
            app.request(Method::PATCH, &format!("/products/{product}"))
                .header("content-type", "application/json")
                .body(r#"{"active": false, "active": true}"#),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(error_fields(&p), ["active"], "{p}");
    let p = app
        .post_raw(
            &format!("/ingredients/{}/waste", stand.ingredient_id),
            Some("application/json"),
            r#"{"quantity": 1, "note": "a", "note": "b"}"#,
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(errors_of(&p), pairs(&[("note", REPEATED)]), "{p}");
    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await,
        before
    );
    assert!(
        !app.get_all("/customers", 200)
            .await
            .iter()
            .any(|c| s(&c["name"]).starts_with(&name))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_sent_twice_or_where_it_means_nothing_is_refused() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await;
    let body = TestApp::order_body(None, &[(&stand.product_id, 1)]);
    let key = unique();
    for (a, b) in [(format!("a-{key}"), format!("b-{key}")), (key.clone(), key.clone())] {
        let p = app
            .send(
                app.request(Method::POST, "/orders")
                    .json(&body)
                    .header("idempotency-key", a)
                    .header("Idempotency-Key", b),
            )
            .await
            .problem(422, "validation_failed");
        assert_eq!(errors_of(&p), pairs(&[("Idempotency-Key", REPEATED)]), "{p}");
    }
    // Only placing an order takes a key: elsewhere a retry would not be made safe by it.
    let name = format!("Keyed {}", unique());
    let p = app
        .send(
            app.request(Method::POST, "/products")
                .json(&json!({"name": name, "price": 1, "recipe": []}))
                .header("idempotency-key", unique()),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        errors_of(&p),
        pairs(&[("Idempotency-Key", "this endpoint does not take this header")]),
        "{p}"
    );
    app.send(
        app.request(Method::POST, &format!("/ingredients/{}/restock", stand.ingredient_id))
            .json(&json!({"quantity": 1}))
            .header("idempotency-key", unique()),
    )
    .await
    .invalid("Idempotency-Key");
    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await,
        before
    );
    assert!(
        !app.get_all("/products", 200)
            .await
            .iter()
            .any(|p| p["name"] == name.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_json_only_when_declared_once_as_application_json_in_utf_8() {
    let app = spawn_app().await;
    let stand = app.stand(20).await;
    let before = app.state(&[&stand.ingredient_id], &[], &[]).await;
    let body = TestApp::order_body(None, &[(&stand.product_id, 1)]).to_string();
    for content_type in [
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/json; version=2",
        "application/problem+json",
        "application/vnd.lemonade+json",
        "text/json",
        "application/jsonx",
    ] {
        app.post_raw("/orders", Some(content_type), body.clone())
            .await
            .problem(415, "unsupported_media_type");
    }
    let twice = app
        .send(
            app.request(Method::POST, "/orders")
                .header("content-type", "application/json")
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
    twice.problem(415, "unsupported_media_type");
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[]).await, before);
    // Media types are case-insensitive, and so is the charset's name; it may be quoted.
    for content_type in [
        "Application/JSON",
        "application/json;charset=UTF-8",
        "application/json; charset=\"utf-8\"",
    ] {
        let reply = app.post_raw("/orders", Some(content_type), body.clone()).await;
        app.settle(&reply).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_in_the_path_is_decoded_once_and_a_trailing_slash_names_nothing() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let id = &stand.product_id;
    // `%XX` of an unreserved character is that character (RFC 3986 §6.2.2.2).
    let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(
        app.get(&format!("/products/{encoded}")).await.expect(200)["id"],
        id.as_str()
    );
    for path in [
        format!("/products/{id}/"),
        format!("/ingredients/{}/", stand.ingredient_id),
        "/products/".to_owned(),
        format!("/products/{id}%2F"),
        format!("/products//{id}"),
    ] {
        app.get(&path).await.problem(404, "not_found");
    }
    app.post(
        &format!("/ingredients/{}/restock/", stand.ingredient_id),
        &json!({"quantity": 1}),
    )
    .await
    .problem(404, "not_found");
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_csv_only_when_accept_prefers_csv_to_json() {
    let app = spawn_app().await;
    let report = "/reports/sales?from=2026-01-01&to=2026-01-02";
    for (accept, csv) in [
        (vec!["text/csv"], true),
        (vec!["application/json;q=0.9", "text/csv"], true),
        (vec!["text/csv;q=0"], false),
        (vec!["text/csv;q=0.5, application/json"], false),
        (vec!["text/csvx"], false),
        (vec!["*/*"], false),
    ] {
        let mut request = app.request(Method::GET, report);
        for a in &accept {
            request = request.header("accept", *a);
        }
        let reply = app.send(request).await;
        assert_eq!(reply.status, 200, "{accept:?}: {}", reply.text);
        let expected = if csv { "text/csv" } else { "application/json" };
        assert!(
            reply.content_type().starts_with(expected),
            "{accept:?}: {}",
            reply.content_type()
        );
    }
}

/// A cancellation has no fields: a body sent with it is read like any other, so a field in
/// it is refused rather than ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_takes_no_fields_and_refuses_any_sent() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let order = app.sell(None, &[(&stand.product_id, 1)]).await;
    let cancel = format!("/orders/{}/cancel", s(&order["id"]));
    let p = app
        .post(&cancel, &json!({"restock": false, "reason": "x"}))
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        errors_of(&p),
        pairs(&[
            ("reason", "is not a field of this request"),
            ("restock", "is not a field of this request")
        ]),
        "{p}"
    );
    app.post(&cancel, &json!(null)).await.invalid("");
    app.post_raw(&cancel, Some("text/plain"), "restock=false")
        .await
        .problem(415, "unsupported_media_type");
    app.post_raw(&cancel, Some("application/json"), "{")
        .await
        .problem(400, "validation_failed");
    assert_eq!(app.order(s(&order["id"])).await["status"], "confirmed");
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 18);
    // Nothing at all, or an empty object.
    let cancelled = app.send(app.request(Method::POST, &cancel)).await.expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    let other = app.sell(None, &[(&stand.product_id, 1)]).await;
    app.post(&format!("/orders/{}/cancel", s(&other["id"])), &json!({}))
        .await
        .expect(200);
}
