//! `Idempotency-Key` on `POST /orders`: a retry gets the first answer, never a second order.

use serde_json::json;

use crate::support::{TestApp, s, spawn_app, unique};

fn key() -> String {
    format!("test-{}-{}", unique(), unique())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_and_body_replay_the_first_answer_without_a_second_order() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Retrier").await;
    let cid = s(&c["id"]);
    let k = key();

    let first = app.place_order(Some(cid), &[(&stand.product_id, 2)], Some(&k)).await;
    let order = first.expect(201);
    assert!(first.header("idempotent-replayed").is_none());
    for _ in 0..3 {
        let again = app.place_order(Some(cid), &[(&stand.product_id, 2)], Some(&k)).await;
        assert_eq!(again.status, 201);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(again.json(), order, "the same body");
    }
    // The same request written differently is the same request.
    let reordered = format!(
        r#"{{ "lines" : [ {{ "quantity": 2, "product_id": "{}" }} ], "customer_id": "{cid}" }}"#,
        stand.product_id
    );
    let again = app
        .send(
            app.request(reqwest::Method::POST, "/orders")
                .header("content-type", "application/json")
                .header("idempotency-key", &k)
                .body(reordered),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], order["id"]);

    assert_eq!(app.orders_of(cid).await, [order]);
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 16);
    assert_eq!(app.customer(cid).await["points"], 7);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_with_another_body_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Confused").await;
    let cid = s(&c["id"]);
    let k = key();
    let order = app
        .place_order(Some(cid), &[(&stand.product_id, 1)], Some(&k))
        .await
        .expect(201);
    let before = app.state(&[&stand.ingredient_id], &[], &[cid]).await;

    for other in [
        TestApp::order_body(Some(cid), &[(&stand.product_id, 2)]),
        TestApp::order_body(None, &[(&stand.product_id, 1)]),
    ] {
        let reply = app.place_order_body(&other, Some(&k)).await;
        reply.problem(422, "idempotency_key_reused");
        assert!(reply.header("idempotent-replayed").is_none());
    }
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[cid]).await, before);
    // The first request still replays.
    let again = app.place_order(Some(cid), &[(&stand.product_id, 1)], Some(&k)).await;
    assert_eq!(again.expect(201), order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_replayed_even_once_the_stock_would_allow_the_order() {
    let app = spawn_app().await;
    let stand = app.stand(1).await;
    let c = app.create_customer("Unlucky").await;
    let cid = s(&c["id"]);
    let k = key();

    let first = app.place_order(Some(cid), &[(&stand.product_id, 3)], Some(&k)).await;
    let problem = first.problem(409, "insufficient_stock");
    app.post(
        &format!("/ingredients/{}/restock", stand.ingredient_id),
        &json!({"quantity": 100}),
    )
    .await
    .expect(200);
    let before = app.state(&[&stand.ingredient_id], &[], &[cid]).await;

    let again = app.place_order(Some(cid), &[(&stand.product_id, 3)], Some(&k)).await;
    assert_eq!(
        again.problem(409, "insufficient_stock"),
        problem,
        "the first answer, word for word"
    );
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[cid]).await, before);
    assert!(app.orders_of(cid).await.is_empty());

    // A new key is a new attempt.
    app.place_order(Some(cid), &[(&stand.product_id, 3)], Some(&key()))
        .await
        .expect(201);
    app.assert_audit_clean().await;
}

/// The contract: a replay, whatever its status, says so with `idempotent-replayed: true`, so a
/// retrying client can tell "refused when you first asked" from "refused now".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_rejection_says_it_is_a_replay() {
    let app = spawn_app().await;
    let stand = app.stand(1).await;
    let k = key();
    let first = app.place_order(None, &[(&stand.product_id, 3)], Some(&k)).await;
    first.problem(409, "insufficient_stock");
    assert!(
        first.header("idempotent-replayed").is_none(),
        "the first answer is no replay"
    );
    let again = app.place_order(None, &[(&stand.product_id, 3)], Some(&k)).await;
    again.problem(409, "insufficient_stock");
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "a replayed rejection is marked as replayed: {:?}",
        again.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_for_an_unknown_product_is_replayed_too() {
    let app = spawn_app().await;
    let k = key();
    let first = app.place_order(None, &[("no-such-product", 1)], Some(&k)).await;
    let problem = first.invalid("lines[0].product_id");
    let again = app.place_order(None, &[("no-such-product", 1)], Some(&k)).await;
    assert_eq!(again.invalid("lines[0].product_id"), problem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_are_empty_too_long_or_not_printable_ascii_are_refused() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[], &[]).await;
    for bad in [String::new(), "k".repeat(256), "has space".into(), "tab\there".into()] {
        app.place_order(None, &[(&stand.product_id, 1)], Some(&bad))
            .await
            .invalid("Idempotency-Key");
    }
    let non_ascii = app
        .send(
            app.request(reqwest::Method::POST, "/orders")
                .json(&TestApp::order_body(None, &[(&stand.product_id, 1)]))
                .header(
                    "idempotency-key",
                    reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
                ),
        )
        .await;
    non_ascii.invalid("Idempotency-Key");
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[]).await, before);
    // The longest key allowed works.
    let longest = format!("{}{}", unique(), "k".repeat(243));
    assert_eq!(longest.len(), 255);
    app.place_order(None, &[(&stand.product_id, 1)], Some(&longest))
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_make_one_order() {
    let app = spawn_app().await;
    let stand = app.stand(100).await;
    let c = app.create_customer("Impatient").await;
    let cid = s(&c["id"]).to_owned();
    let k = key();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (app, cid, k, p) = (app.clone(), cid.clone(), k.clone(), stand.product_id.clone());
        tasks.spawn(async move { app.place_order(Some(&cid), &[(&p, 1)], Some(&k)).await });
    }
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    let mut in_progress = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("the task ran");
        match (reply.status.as_u16(), reply.header("idempotent-replayed")) {
            (201, None) => created.push(reply.json()),
            (201, Some("true")) => replayed.push(reply.json()),
            (409, _) => {
                reply.problem(409, "request_in_progress");
                assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
                in_progress += 1;
            }
            _ => panic!("unexpected answer {}: {}", reply.status, reply.text),
        }
    }
    assert_eq!(created.len(), 1, "exactly one request did the work");
    assert!(
        replayed.iter().all(|o| *o == created[0]),
        "every replay is the first answer"
    );
    assert_eq!(1 + replayed.len() + in_progress, 24);

    assert_eq!(app.orders_of(&cid).await, created);
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 198);
    // Once the work is done, the key only replays.
    let again = app.place_order(Some(&cid), &[(&stand.product_id, 1)], Some(&k)).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.expect(201), created[0]);
    app.assert_audit_clean().await;
}
