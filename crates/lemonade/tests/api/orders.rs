//! Placing, reading, listing and cancelling orders; points; everything an order may not be.

use serde_json::{Value, json};

use crate::support::{TestApp, i, s, spawn_app, u};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_an_order_takes_its_recipe_from_stock_and_earns_points() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 100).await;
    let sugar = app.create_ingredient("Sugar", "g", 10_000).await;
    let (l, sg) = (s(&lemons["id"]), s(&sugar["id"]));
    let lemonade = app.create_product("Lemonade", 350, &[(l, 2), (sg, 30)]).await;
    let tea = app.create_product("Sweet tea", 275, &[(sg, 20)]).await;
    let customer = app.create_customer("Loyal").await;
    let c = s(&customer["id"]);

    let reply = app
        .place_order(Some(c), &[(s(&lemonade["id"]), 3), (s(&tea["id"]), 2)], None)
        .await;
    let order = reply.expect(201);
    let id = s(&order["id"]);
    assert_eq!(reply.header("location"), Some(format!("/api/v1/orders/{id}").as_str()));
    assert!(reply.header("idempotent-replayed").is_none());
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["customer_id"], c);
    assert_eq!(order["total"], 3 * 350 + 2 * 275);
    assert_eq!(order["points"], 16, "1600 minor units, 1 point per 100");
    assert!(order["failure_reason"].is_null());
    assert_eq!(order["created_at"], order["updated_at"]);
    assert_eq!(
        order["lines"],
        json!([
            {"product_id": lemonade["id"], "name": lemonade["name"], "quantity": 3, "unit_price": 350},
            {"product_id": tea["id"], "name": tea["name"], "quantity": 2, "unit_price": 275},
        ])
    );
    assert_eq!(app.order(id).await, order);

    assert_eq!(app.on_hand(l).await, 94);
    assert_eq!(app.on_hand(sg).await, 10_000 - 90 - 40);
    let sale = &app.moves_of(sg).await[0];
    assert_eq!(sale["reason"], "sale");
    assert_eq!(sale["delta"], -130, "one move per ingredient for the whole order");
    assert_eq!(sale["order_id"], id);
    assert_eq!(app.customer(c).await["points"], 16);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_without_a_customer_earns_no_points() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let order = app.sell(None, &[(&stand.product_id, 5)]).await;
    assert!(order["customer_id"].is_null());
    assert_eq!(order["points"], 0);
    assert_eq!(order["total"], 1750);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_whole_hundreds_of_the_total() {
    let app = spawn_app().await;
    let cheap = app.create_product("Cup", 99, &[]).await;
    let c = app.create_customer("Saver").await;
    let order = app.sell(Some(s(&c["id"])), &[(s(&cheap["id"]), 1)]).await;
    assert_eq!(order["points"], 0, "99 is less than a point");
    let order = app.sell(Some(s(&c["id"])), &[(s(&cheap["id"]), 3)]).await;
    assert_eq!(order["points"], 2, "297 is two points");
    assert_eq!(app.customer(s(&c["id"])).await["points"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_order_allowed_is_accepted() {
    let app = spawn_app().await;
    let mut lines = Vec::new();
    for _ in 0..50 {
        let p = app.create_product("Gold bar", 100_000_000, &[]).await;
        lines.push(s(&p["id"]).to_owned());
    }
    let c = app.create_customer("Big spender").await;
    let lines: Vec<(&str, i64)> = lines.iter().map(|p| (p.as_str(), 1000)).collect();
    let order = app.sell(Some(s(&c["id"])), &lines).await;
    assert_eq!(order["lines"].as_array().unwrap().len(), 50);
    assert_eq!(
        order["total"], 5_000_000_000_000_i64,
        "50 lines of 1000 at the highest price"
    );
    assert_eq!(order["points"], 50_000_000_000_u64);
    assert_eq!(app.customer(s(&c["id"])).await["points"], 50_000_000_000_u64);
    let day = &s(&order["created_at"])[..10];
    let report = app
        .get(&format!("/reports/sales?from={day}&to={day}&by=product"))
        .await
        .expect(200);
    let row = report["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == lines[0].0)
        .expect("sold")
        .clone();
    assert_eq!(row["revenue"], 100_000_000_000_i64);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_stock_refuses_the_whole_order_with_every_shortage_and_changes_nothing() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 5).await;
    let sugar = app.create_ingredient("Sugar", "g", 100).await;
    let ice = app.create_ingredient("Ice", "g", 1000).await;
    let (l, sg, ic) = (s(&lemons["id"]), s(&sugar["id"]), s(&ice["id"]));
    let lemonade = app
        .create_product("Lemonade", 350, &[(l, 2), (sg, 30), (ic, 100)])
        .await;
    let c = app.create_customer("Thirsty").await;
    let before = app.state(&[l, sg, ic], &[s(&lemonade["id"])], &[s(&c["id"])]).await;

    let reply = app
        .place_order(Some(s(&c["id"])), &[(s(&lemonade["id"]), 4)], None)
        .await;
    let p = reply.problem(409, "insufficient_stock");
    let mut shortages = p["shortages"].as_array().unwrap().clone();
    shortages.sort_by_key(|x| s(&x["name"]).to_owned());
    assert_eq!(
        shortages,
        [
            json!({"ingredient_id": l, "name": lemons["name"], "unit": "piece", "needed": 8, "available": 5}),
            json!({"ingredient_id": sg, "name": sugar["name"], "unit": "g", "needed": 120, "available": 100}),
        ],
        "ice suffices and is not listed"
    );
    assert!(s(&p["detail"]).contains(s(&lemons["name"])), "{p}");
    assert_eq!(
        app.state(&[l, sg, ic], &[s(&lemonade["id"])], &[s(&c["id"])]).await,
        before
    );
    // Exactly what the stock allows still goes through.
    let order = app
        .place_order(Some(s(&c["id"])), &[(s(&lemonade["id"]), 2)], None)
        .await
        .expect(201);
    assert_eq!(order["status"], "confirmed");
    assert_eq!(app.on_hand(l).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_of_two_lines_sharing_an_ingredient_are_summed() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 10).await;
    let l = s(&lemons["id"]);
    let a = app.create_product("Lemonade", 300, &[(l, 3)]).await;
    let b = app.create_product("Lemon tart", 500, &[(l, 2)]).await;
    let before = app.state(&[l], &[], &[]).await;
    // 2×3 + 3×2 = 12 > 10, though each line alone would fit.
    let p = app
        .place_order(None, &[(s(&a["id"]), 2), (s(&b["id"]), 3)], None)
        .await
        .problem(409, "insufficient_stock");
    assert_eq!(p["shortages"][0]["needed"], 12);
    assert_eq!(p["shortages"][0]["available"], 10);
    assert_eq!(app.state(&[l], &[], &[]).await, before);
    app.sell(None, &[(s(&a["id"]), 2), (s(&b["id"]), 2)]).await;
    assert_eq!(app.on_hand(l).await, 0);
}

/// Each body is refused with 422 naming `field` (or just 422 when `field` is empty).
async fn refused(app: &TestApp, body: Value, field: &str) {
    let reply = app.place_order_body(&body, None).await;
    if field.is_empty() {
        reply.problem(422, "validation_failed");
    } else {
        reply.invalid(field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_orders_are_refused_by_field_and_change_nothing() {
    let app = spawn_app().await;
    let stand = app.stand(100).await;
    let p = stand.product_id.as_str();
    let c = app.create_customer("Careful").await;
    let cid = s(&c["id"]);
    let other = app.create_product("Other", 100, &[]).await;
    let before = app.state(&[&stand.ingredient_id], &[p], &[cid]).await;

    refused(&app, json!({"customer_id": cid, "lines": []}), "lines").await;
    let too_many: Vec<Value> = (0..51)
        .map(|k| json!({"product_id": format!("p{k}"), "quantity": 1}))
        .collect();
    refused(&app, json!({"customer_id": cid, "lines": too_many}), "lines").await;
    refused(&app, TestApp::order_body(Some(cid), &[(p, 0)]), "lines[0].quantity").await;
    refused(&app, TestApp::order_body(Some(cid), &[(p, -1)]), "lines[0].quantity").await;
    refused(&app, TestApp::order_body(Some(cid), &[(p, 1001)]), "lines[0].quantity").await;
    refused(
        &app,
        TestApp::order_body(Some(cid), &[(p, 1), (s(&other["id"]), 1), (p, 2)]),
        "lines[2].product_id",
    )
    .await;
    refused(
        &app,
        TestApp::order_body(Some(cid), &[("no-such-product", 1)]),
        "lines[0].product_id",
    )
    .await;
    refused(
        &app,
        TestApp::order_body(Some(cid), &[(p, 1), ("no-such-product", 1)]),
        "lines[1].product_id",
    )
    .await;
    refused(
        &app,
        TestApp::order_body(Some(cid), &[("not an id!", 1)]),
        "lines[0].product_id",
    )
    .await;
    refused(
        &app,
        TestApp::order_body(Some("no-such-customer"), &[(p, 1)]),
        "customer_id",
    )
    .await;
    refused(&app, TestApp::order_body(Some("bad id/"), &[(p, 1)]), "customer_id").await;
    refused(
        &app,
        TestApp::order_body(Some(&"c".repeat(65)), &[(p, 1)]),
        "customer_id",
    )
    .await;
    // The shape is wrong: unknown fields, wrong types, missing members; each names its field.
    refused(
        &app,
        json!({"customer_id": cid, "lines": [{"product_id": p, "quantity": 1}], "discount": 50}),
        "discount",
    )
    .await;
    refused(
        &app,
        json!({"lines": [{"product_id": p, "quantity": 1, "price": 0}]}),
        "lines[0].price",
    )
    .await;
    refused(
        &app,
        json!({"lines": [{"product_id": p, "quantity": 1.5}]}),
        "lines[0].quantity",
    )
    .await;
    refused(
        &app,
        json!({"lines": [{"product_id": p, "quantity": "1"}]}),
        "lines[0].quantity",
    )
    .await;
    refused(&app, json!({"lines": [{"product_id": p}]}), "lines[0].quantity").await;
    refused(&app, json!({"customer_id": cid}), "lines").await;
    refused(&app, json!({"lines": {"product_id": p, "quantity": 1}}), "lines").await;
    refused(&app, json!([{"product_id": p, "quantity": 1}]), "").await;
    refused(
        &app,
        json!({"customer_id": 7, "lines": [{"product_id": p, "quantity": 1}]}),
        "customer_id",
    )
    .await;

    // Every bad line is reported at once (the third names the first's product again).
    let p2 = app
        .place_order(Some(cid), &[(p, 0), ("no such", 1), (p, 1001)], None)
        .await
        .problem(422, "validation_failed");
    let mut fields = crate::support::error_fields(&p2);
    fields.sort();
    assert_eq!(
        fields,
        [
            "lines[0].quantity",
            "lines[1].product_id",
            "lines[2].product_id",
            "lines[2].quantity"
        ],
        "{p2}"
    );

    assert_eq!(app.state(&[&stand.ingredient_id], &[p], &[cid]).await, before);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_read_by_id_and_listed_newest_first_with_filters() {
    let app = spawn_app().await;
    let stand = app.stand(50).await;
    let c = app.create_customer("Lister").await;
    let cid = s(&c["id"]);
    let a = app.sell(Some(cid), &[(&stand.product_id, 1)]).await;
    let b = app.sell(Some(cid), &[(&stand.product_id, 2)]).await;
    let x = app.sell(Some(cid), &[(&stand.product_id, 3)]).await;
    app.post(&format!("/orders/{}/cancel", s(&b["id"])), &json!({}))
        .await
        .expect(200);
    let b = app.order(s(&b["id"])).await;

    let mine = app.get_all(&format!("/orders?customer_id={cid}"), 2).await;
    assert_eq!(mine, [x.clone(), b.clone(), a.clone()]);
    let confirmed = app
        .get_all(&format!("/orders?customer_id={cid}&status=confirmed"), 200)
        .await;
    assert_eq!(confirmed, [x.clone(), a.clone()]);
    let cancelled = app
        .get_all(&format!("/orders?customer_id={cid}&status=cancelled"), 200)
        .await;
    assert_eq!(cancelled, std::slice::from_ref(&b));
    for status in ["pending", "failed"] {
        let none = app
            .get_all(&format!("/orders?customer_id={cid}&status={status}"), 200)
            .await;
        assert!(none.is_empty());
    }
    // Unfiltered, the newest orders lead, and every status filter agrees with the order's status.
    let page = app.get("/orders?limit=200").await.expect(200);
    let all = page["items"].as_array().unwrap();
    let ids: Vec<&str> = all.iter().map(|o| s(&o["id"])).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let all_cancelled = app.get("/orders?status=cancelled&limit=200").await.expect(200);
    assert!(
        all_cancelled["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "cancelled")
    );

    app.get("/orders?status=shipped").await.invalid("status");
    app.get("/orders/no-such-order").await.problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_returns_the_stock_and_takes_the_points_back_exactly_once() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 20).await;
    let sugar = app.create_ingredient("Sugar", "g", 1000).await;
    let (l, sg) = (s(&lemons["id"]), s(&sugar["id"]));
    let product = app.create_product("Lemonade", 350, &[(l, 2), (sg, 30)]).await;
    let pid = s(&product["id"]);
    let c = app.create_customer("Changed mind").await;
    let cid = s(&c["id"]);
    let keep = app.sell(Some(cid), &[(pid, 1)]).await;
    let order = app.sell(Some(cid), &[(pid, 4)]).await; // 1400 → 14 points
    assert_eq!(app.customer(cid).await["points"], 17);
    assert_eq!(app.product(pid).await["can_make"], 5);
    let oid = s(&order["id"]);

    let cancelled = app.post(&format!("/orders/{oid}/cancel"), &json!({})).await.expect(200);
    assert_eq!(cancelled["id"], oid);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["points"], 0);
    assert_eq!(cancelled["total"], order["total"], "the books keep the total");
    assert_eq!(cancelled["lines"], order["lines"]);
    assert_eq!(cancelled["created_at"], order["created_at"]);
    assert!(s(&cancelled["updated_at"]) >= s(&order["updated_at"]));
    assert_eq!(app.order(oid).await, cancelled);

    assert_eq!(app.on_hand(l).await, 18);
    assert_eq!(app.on_hand(sg).await, 970);
    assert_eq!(app.customer(cid).await["points"], 3);
    assert_eq!(app.product(pid).await["can_make"], 9);
    for (ing, sold) in [(l, 8), (sg, 120)] {
        let moves = app.moves_of(ing).await;
        let back: Vec<&Value> = moves.iter().filter(|m| m["order_id"] == oid).collect();
        assert_eq!(back.len(), 2, "{back:?}");
        assert_eq!(
            (back[0]["reason"].clone(), i(&back[0]["delta"])),
            (json!("cancel"), sold)
        );
        assert_eq!(
            (back[1]["reason"].clone(), i(&back[1]["delta"])),
            (json!("sale"), -sold)
        );
    }

    let before = app.state(&[l, sg], &[pid], &[cid]).await;
    let again = app.post(&format!("/orders/{oid}/cancel"), &json!({})).await;
    again.problem(409, "conflict");
    assert_eq!(app.state(&[l, sg], &[pid], &[cid]).await, before);
    assert_eq!(app.order(s(&keep["id"])).await["status"], "confirmed");

    app.post("/orders/no-such-order/cancel", &json!({}))
        .await
        .problem(404, "not_found");
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_needs_no_body() {
    let app = spawn_app().await;
    let stand = app.stand(2).await;
    let order = app.sell(None, &[(&stand.product_id, 1)]).await;
    let reply = app
        .send(app.request(reqwest::Method::POST, &format!("/orders/{}/cancel", s(&order["id"]))))
        .await;
    assert_eq!(reply.expect(200)["status"], "cancelled");
    assert_eq!(u(&app.ingredient(&stand.ingredient_id).await["on_hand"]), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_after_the_recipe_changed_returns_what_the_order_took() {
    let app = spawn_app().await;
    let stand = app.stand(10).await; // 20 lemons, 2 a glass
    let limes = app.create_ingredient("Limes", "piece", 50).await;
    let l = s(&limes["id"]);
    let order = app.sell(None, &[(&stand.product_id, 3)]).await;
    app.patch(
        &format!("/products/{}", stand.product_id),
        &json!({"recipe": [{"ingredient_id": l, "quantity": 5}], "price": 999}),
    )
    .await
    .expect(200);
    let cancelled = app
        .post(&format!("/orders/{}/cancel", s(&order["id"])), &json!({}))
        .await
        .expect(200);
    assert_eq!(cancelled["total"], 1050, "the books keep the price it was sold at");
    assert_eq!(
        app.on_hand(&stand.ingredient_id).await,
        20,
        "the lemons it took come back"
    );
    assert_eq!(app.on_hand(l).await, 50, "no limes were taken, none are given");
    assert!(app.moves_of(l).await.iter().all(|m| m["reason"] == "restock"));
    app.assert_audit_clean().await;
}

/// The words of an order's timeline, in its order.
fn whats(timeline: &Value) -> Vec<&str> {
    timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["what"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_timeline_lists_what_each_process_did_in_clock_order() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Timeline").await;
    let cid = s(&c["id"]);
    let order = app.sell(Some(cid), &[(&stand.product_id, 2)]).await;
    let oid = s(&order["id"]);
    app.post(&format!("/orders/{oid}/cancel"), &json!({})).await.expect(200);
    // Reading the customer and the stock waits, in the distributed mode, for CRM to have
    // taken the points back and stock to have had its stock back, so their parts of the
    // timeline are there too.
    assert_eq!(app.customer(cid).await["points"], 0);
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 10 * stand.per_unit);

    let timeline = app.get(&format!("/orders/{oid}/timeline")).await.expect(200);
    assert_eq!(timeline["unreachable"], json!([]));
    assert_eq!(timeline["truncated"], false);
    let events = timeline["events"].as_array().unwrap();
    let stamps: Vec<(i64, i64)> = events
        .iter()
        .map(|e| {
            let (ms, counter) = s(&e["hlc"]).split_once('.').unwrap();
            (ms.parse().unwrap(), counter.parse().unwrap())
        })
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "in stamp order: {timeline}");
    for e in events {
        assert!(e["wall_time"].is_string() && e["detail"].is_string(), "{e}");
    }
    let whats = whats(&timeline);
    let at = |what: &str| {
        whats
            .iter()
            .position(|w| *w == what)
            .unwrap_or_else(|| panic!("{what} is missing: {whats:?}"))
    };
    if crate::support::is_cluster() {
        // Each cause before its effect, across the four processes.
        let services: Vec<&str> = events.iter().map(|e| s(&e["service"])).collect();
        assert!(
            services.contains(&"coordinator") && services.contains(&"stock"),
            "{services:?}"
        );
        assert!(at("saga_started") < at("stock_committed"), "{whats:?}");
        assert!(at("stock_reserved") < at("stock_committed"), "{whats:?}");
        assert!(at("stock_committed") < at("order_confirmed"), "{whats:?}");
        assert!(at("order_confirmed") < at("points_awarded"), "{whats:?}");
        assert!(at("order_cancelled") < at("stock_returned"), "{whats:?}");
        // CRM awards the points when the relay brings it the order, which may be after the
        // client cancelled it: the two are not cause and effect, and either may come first.
    } else {
        assert!(events.iter().all(|e| e["service"] == "monolith"), "{timeline}");
        assert!(at("order_placed") < at("points_awarded"), "{whats:?}");
        assert!(at("points_awarded") < at("order_cancelled"), "{whats:?}");
        assert!(at("order_cancelled") < at("stock_returned"), "{whats:?}");
    }
    assert!(at("points_awarded") < at("points_taken_back"), "{whats:?}");
    assert!(at("order_cancelled") < at("points_taken_back"), "{whats:?}");

    app.get("/orders/no-such-order/timeline")
        .await
        .problem(404, "not_found");
    app.get("/orders/bad%20id/timeline").await.problem(404, "not_found");
    app.assert_audit_clean().await;
}
