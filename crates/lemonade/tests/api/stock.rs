//! Ingredients and the stock ledger.

use serde_json::json;

use crate::support::{i, s, spawn_app, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_ingredient_records_its_opening_stock_as_a_restock_move() {
    let app = spawn_app().await;
    let name = format!("Sugar {}", unique());
    let created = app
        .post(
            "/ingredients",
            &json!({"name": format!("  {name} "), "unit": "g", "on_hand": 5000, "reorder_level": 1000}),
        )
        .await
        .expect(201);
    assert_eq!(created["name"], name, "names are trimmed");
    assert_eq!(created["unit"], "g");
    assert_eq!(created["on_hand"], 5000);
    assert_eq!(created["reorder_level"], 1000);
    assert_eq!(created["low"], false);
    let id = s(&created["id"]);

    assert_eq!(app.ingredient(id).await, created);
    let listed = app.get_all("/ingredients", 200).await;
    assert_eq!(listed.iter().filter(|x| x["id"] == id).count(), 1);

    let moves = app.moves_of(id).await;
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0]["reason"], "restock");
    assert_eq!(moves[0]["delta"], 5000);
    assert_eq!(moves[0]["ingredient_id"], id);
    assert!(moves[0]["order_id"].is_null());
    assert!(moves[0]["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingredient_without_opening_stock_starts_at_zero_with_an_empty_ledger() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/ingredients",
            &json!({"name": format!("Mint {}", unique()), "unit": "piece"}),
        )
        .await
        .expect(201);
    assert_eq!(created["on_hand"], 0);
    assert_eq!(created["reorder_level"], 0);
    assert_eq!(created["low"], true, "0 on hand is at the reorder level");
    assert!(app.moves_of(s(&created["id"])).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restock_waste_and_count_each_return_the_ingredient_and_their_move() {
    let app = spawn_app().await;
    let ing = app.create_ingredient("Water", "ml", 1000).await;
    let id = s(&ing["id"]);

    let restocked = app
        .post(
            &format!("/ingredients/{id}/restock"),
            &json!({"quantity": 500, "note": "delivery"}),
        )
        .await
        .expect(200);
    assert_eq!(restocked["ingredient"]["on_hand"], 1500);
    assert_eq!(restocked["move"]["delta"], 500);
    assert_eq!(restocked["move"]["reason"], "restock");
    assert_eq!(restocked["move"]["note"], "delivery");
    assert_eq!(restocked["move"]["ingredient_id"], id);

    let wasted = app
        .post(&format!("/ingredients/{id}/waste"), &json!({"quantity": 200}))
        .await
        .expect(200);
    assert_eq!(wasted["ingredient"]["on_hand"], 1300);
    assert_eq!(wasted["move"]["delta"], -200);
    assert_eq!(wasted["move"]["reason"], "waste");
    assert!(wasted["move"]["note"].is_null());

    let counted = app
        .post(
            &format!("/ingredients/{id}/count"),
            &json!({"on_hand": 1250, "note": "spilt"}),
        )
        .await
        .expect(200);
    assert_eq!(counted["ingredient"]["on_hand"], 1250);
    assert_eq!(counted["move"]["reason"], "count");
    assert_eq!(counted["move"]["delta"], -50, "the variance is the move");
    assert_eq!(counted["move"]["note"], "spilt");

    let found_more = app
        .post(&format!("/ingredients/{id}/count"), &json!({"on_hand": 1300}))
        .await
        .expect(200);
    assert_eq!(found_more["move"]["delta"], 50);

    let moves = app.moves_of(id).await;
    let newest_first: Vec<_> = moves
        .iter()
        .map(|m| (s(&m["reason"]).to_owned(), i(&m["delta"])))
        .collect();
    assert_eq!(
        newest_first,
        [
            ("count".into(), 50),
            ("count".into(), -50),
            ("waste".into(), -200),
            ("restock".into(), 500),
            ("restock".into(), 1000)
        ]
    );
    assert_eq!(app.on_hand(id).await, 1300);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_that_matches_the_shelf_still_records_a_zero_move() {
    let app = spawn_app().await;
    let ing = app.create_ingredient("Ice", "g", 300).await;
    let id = s(&ing["id"]);
    let counted = app
        .post(&format!("/ingredients/{id}/count"), &json!({"on_hand": 300}))
        .await
        .expect(200);
    assert_eq!(counted["move"]["delta"], 0);
    assert_eq!(counted["ingredient"]["on_hand"], 300);
    assert_eq!(app.moves_of(id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_to_zero_empties_the_shelf_and_the_product_can_no_longer_be_made() {
    let app = spawn_app().await;
    let stand = app.stand(5).await;
    app.post(
        &format!("/ingredients/{}/count", stand.ingredient_id),
        &json!({"on_hand": 0}),
    )
    .await
    .expect(200);
    assert_eq!(app.product(&stand.product_id).await["can_make"], 0);
    let refused = app.place_order(None, &[(&stand.product_id, 1)], None).await;
    refused.problem(409, "insufficient_stock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_follows_the_reorder_level() {
    let app = spawn_app().await;
    let ing = app
        .post(
            "/ingredients",
            &json!({"name": format!("Syrup {}", unique()), "unit": "ml", "on_hand": 500, "reorder_level": 400}),
        )
        .await
        .expect(201);
    let id = s(&ing["id"]);
    assert_eq!(ing["low"], false);
    let after = app
        .post(&format!("/ingredients/{id}/waste"), &json!({"quantity": 100}))
        .await
        .expect(200);
    assert_eq!(after["ingredient"]["on_hand"], 400);
    assert_eq!(after["ingredient"]["low"], true, "at the reorder level is low");
    let after = app
        .post(&format!("/ingredients/{id}/restock"), &json!({"quantity": 1}))
        .await
        .expect(200);
    assert_eq!(after["ingredient"]["low"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waste_beyond_on_hand_is_refused_with_the_shortage_and_changes_nothing() {
    let app = spawn_app().await;
    let ing = app.create_ingredient("Lemons", "piece", 3).await;
    let id = s(&ing["id"]);
    let before = app.state(&[id], &[], &[]).await;

    let reply = app
        .post(&format!("/ingredients/{id}/waste"), &json!({"quantity": 4}))
        .await;
    let p = reply.problem(409, "insufficient_stock");
    let shortages = p["shortages"].as_array().expect("shortages");
    assert_eq!(shortages.len(), 1, "{p}");
    assert_eq!(shortages[0]["ingredient_id"], id);
    assert_eq!(shortages[0]["name"], ing["name"]);
    assert_eq!(shortages[0]["unit"], "piece");
    assert_eq!(shortages[0]["needed"], 4);
    assert_eq!(shortages[0]["available"], 3);

    assert_eq!(app.state(&[id], &[], &[]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stock_changes_are_refused_field_by_field_and_change_nothing() {
    let app = spawn_app().await;
    let ing = app.create_ingredient("Tea", "g", 100).await;
    let id = s(&ing["id"]);
    let before = app.state(&[id], &[], &[]).await;

    for action in ["restock", "waste"] {
        let path = format!("/ingredients/{id}/{action}");
        for quantity in [json!(0), json!(-5), json!(1_000_000_001_i64)] {
            app.post(&path, &json!({"quantity": quantity}))
                .await
                .invalid("quantity");
        }
        // Not a whole number, not a number, missing: the body's shape is wrong.
        for body in [
            json!({"quantity": 1.5}),
            json!({"quantity": "3"}),
            json!({}),
            json!({"quantity": 1, "extra": true}),
        ] {
            app.post(&path, &body).await.problem(422, "validation_failed");
        }
        app.post(&path, &json!({"quantity": 1, "note": "x".repeat(201)}))
            .await
            .invalid("note");
        app.post(&path, &json!({"quantity": 1, "note": "bell\u{7}"}))
            .await
            .invalid("note");
    }
    let count = format!("/ingredients/{id}/count");
    app.post(&count, &json!({"on_hand": -1})).await.invalid("on_hand");
    app.post(&count, &json!({"on_hand": 1_000_000_001_i64}))
        .await
        .invalid("on_hand");
    app.post(&count, &json!({"quantity": 5}))
        .await
        .problem(422, "validation_failed");

    assert_eq!(app.state(&[id], &[], &[]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restock_past_the_largest_holdable_stock_is_refused() {
    let app = spawn_app().await;
    let ing = app.create_ingredient("Flour", "g", 1_000_000_000).await;
    let id = s(&ing["id"]);
    let path = format!("/ingredients/{id}/restock");
    for _ in 0..9 {
        app.post(&path, &json!({"quantity": 1_000_000_000})).await.expect(200);
    }
    let before = app.state(&[id], &[], &[]).await;
    app.post(&path, &json!({"quantity": 1})).await.invalid("quantity");
    assert_eq!(app.state(&[id], &[], &[]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_new_ingredients_are_refused_with_every_bad_field_and_nothing_is_created() {
    let app = spawn_app().await;
    let taken = app.create_ingredient("Honey", "g", 0).await;
    let before = app.state(&[], &[], &[]).await;
    let name = format!("Ghost {}", unique());

    let p = app
        .post(
            "/ingredients",
            &json!({"name": "  ", "unit": "kg", "on_hand": -1, "reorder_level": -2}),
        )
        .await
        .invalid("name");
    let mut fields = crate::support::error_fields(&p);
    fields.sort();
    assert_eq!(fields, ["name", "on_hand", "reorder_level", "unit"], "{p}");

    app.post("/ingredients", &json!({"name": taken["name"], "unit": "g"}))
        .await
        .invalid("name");
    app.post("/ingredients", &json!({"name": "x".repeat(201), "unit": "g"}))
        .await
        .invalid("name");
    app.post(
        "/ingredients",
        &json!({"name": name, "unit": "g", "on_hand": 1_000_000_001_i64}),
    )
    .await
    .invalid("on_hand");
    app.post("/ingredients", &json!({"name": name, "unit": "g", "colour": "gold"}))
        .await
        .problem(422, "validation_failed");
    app.post("/ingredients", &json!({"name": name}))
        .await
        .problem(422, "validation_failed");
    app.post("/ingredients", &json!({"name": name, "unit": "g", "on_hand": 2.5}))
        .await
        .problem(422, "validation_failed");

    assert_eq!(app.state(&[], &[], &[]).await, before);
    let all = app.get_all("/ingredients", 200).await;
    assert!(
        !all.iter().any(|x| s(&x["name"]).starts_with("Ghost ")),
        "nothing created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ingredients_are_not_found_for_reads_and_changes() {
    let app = spawn_app().await;
    let missing = "0000000000-no-such-ingredient";
    app.get(&format!("/ingredients/{missing}"))
        .await
        .problem(404, "not_found");
    for action in ["restock", "waste"] {
        app.post(&format!("/ingredients/{missing}/{action}"), &json!({"quantity": 1}))
            .await
            .problem(404, "not_found");
    }
    app.post(&format!("/ingredients/{missing}/count"), &json!({"on_hand": 1}))
        .await
        .problem(404, "not_found");
    app.get(&format!("/stock/moves?ingredient_id={missing}"))
        .await
        .problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_sums_to_on_hand_through_sales_cancels_and_staff_changes() {
    let app = spawn_app().await;
    let stand = app.stand(50).await;
    let id = stand.ingredient_id.as_str();
    let p = stand.product_id.as_str();
    let sold = app.sell(None, &[(p, 3)]).await;
    app.sell(None, &[(p, 4)]).await;
    app.post(&format!("/orders/{}/cancel", s(&sold["id"])), &json!({}))
        .await
        .expect(200);
    app.post(&format!("/ingredients/{id}/restock"), &json!({"quantity": 17}))
        .await
        .expect(200);
    app.post(&format!("/ingredients/{id}/waste"), &json!({"quantity": 9}))
        .await
        .expect(200);
    app.post(&format!("/ingredients/{id}/count"), &json!({"on_hand": 77}))
        .await
        .expect(200);
    app.sell(None, &[(p, 5)]).await;

    let moves = app.moves_of(id).await;
    let sum: i64 = moves.iter().map(|m| i(&m["delta"])).sum();
    let on_hand = app.on_hand(id).await;
    assert_eq!(sum, on_hand as i64, "ledger {moves:?}");
    assert_eq!(on_hand, 77 - 10);
    let reasons: Vec<&str> = moves.iter().map(|m| s(&m["reason"])).collect();
    assert_eq!(
        reasons,
        ["sale", "count", "waste", "restock", "cancel", "sale", "sale", "restock"],
        "newest first"
    );
    // Moves of an order name it; staff moves do not.
    for m in &moves {
        let of_order = matches!(s(&m["reason"]), "sale" | "cancel");
        assert_eq!(!m["order_id"].is_null(), of_order, "{m}");
    }
    let ids: Vec<&str> = moves.iter().map(|m| s(&m["id"])).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "moves are newest first");
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unfiltered_ledger_holds_every_ingredients_moves_newest_first() {
    let app = spawn_app().await;
    let a = app.create_ingredient("Basil", "g", 10).await;
    let b = app.create_ingredient("Lime", "piece", 20).await;
    // Walk from the newest until both are seen: on a busy deployment the ledger is long.
    let mut all = Vec::new();
    let mut path = "/stock/moves?limit=50".to_owned();
    loop {
        let page = app.get(&path).await.expect(200);
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        let seen = |x: &serde_json::Value| all.iter().any(|m| m["ingredient_id"] == x["id"]);
        if seen(&a) && seen(&b) {
            break;
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/stock/moves?limit=50&cursor={c}"),
            None => panic!("the ledger ended before the moves of both ingredients"),
        }
    }
    let ours: Vec<&str> = all
        .iter()
        .filter(|m| m["ingredient_id"] == a["id"] || m["ingredient_id"] == b["id"])
        .map(|m| s(&m["ingredient_id"]))
        .collect();
    assert_eq!(ours, [s(&b["id"]), s(&a["id"])], "newest first");
    let ids: Vec<&str> = all.iter().map(|m| s(&m["id"])).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "descending ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingredient_names_follow_the_same_rule_as_product_names() {
    let app = spawn_app().await;
    let tag = unique();
    let first = app
        .post(
            "/ingredients",
            &json!({"name": format!("Açaí\u{a0}pulp {tag}"), "unit": "g"}),
        )
        .await
        .expect(201);
    assert_eq!(first["name"], format!("Açaí pulp {tag}"));
    app.post(
        "/ingredients",
        &json!({"name": format!("Lime-zest {tag}"), "unit": "g"}),
    )
    .await
    .expect(201);
    let before = app.state(&[], &[], &[]).await;
    for same in [
        format!("Ac\u{327}ai\u{301} pulp {tag}"),
        format!("AÇAÍ\u{200b} PULP {tag}"),
        format!("\u{2800}Açaí\u{2800}pulp {tag}\u{1d159}"),
        format!("Aç\u{430}í pulp {tag}"),
        format!("Lime–zest {tag}"),
        format!("Lime\u{2011}zest {tag}"),
    ] {
        app.post("/ingredients", &json!({"name": same, "unit": "g"}))
            .await
            .invalid("name");
    }
    for blank in crate::products::BLANK_NAMES {
        app.post("/ingredients", &json!({"name": blank, "unit": "g"}))
            .await
            .invalid("name");
    }
    assert_eq!(app.state(&[], &[], &[]).await, before);
    let named = app.get_all("/ingredients", 200).await;
    assert_eq!(named.iter().filter(|x| s(&x["name"]).ends_with(&tag)).count(), 2);
    let note = app
        .post(
            &format!("/ingredients/{}/restock", s(&first["id"])),
            &json!({"quantity": 1, "note": "\u{2800}"}),
        )
        .await
        .expect(200);
    assert!(
        note["move"]["note"].is_null(),
        "a note with nothing visible is no note: {note}"
    );
}
