//! Many clients at once: stock is never oversold, and the books still add up.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{Reply, i, s, spawn_app, unique};

/// Tallies answers by (status, code).
fn tally(replies: &[Reply]) -> HashMap<(u16, String), usize> {
    let mut out = HashMap::new();
    for r in replies {
        let code = if r.status.is_success() {
            String::new()
        } else {
            r.json()["code"].as_str().unwrap_or("?").to_owned()
        };
        *out.entry((r.status.as_u16(), code)).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_orders_for_twenty_lemonades_sell_exactly_twenty() {
    const STOCK_FOR: u64 = 20;
    const ORDERS: usize = 100;
    let app = spawn_app().await;
    let stand = app.stand(STOCK_FOR).await;
    let c = app.create_customer("Crowd").await;
    let cid = s(&c["id"]).to_owned();

    let mut tasks = JoinSet::new();
    for n in 0..ORDERS {
        let (app, cid, p) = (app.clone(), cid.clone(), stand.product_id.clone());
        // Half with idempotency keys, half without: both paths must hold the line.
        let key = (n % 2 == 0).then(|| format!("crowd-{}-{n}", unique()));
        tasks.spawn(async move { app.place_order(Some(&cid), &[(&p, 1)], key.as_deref()).await });
    }
    let mut replies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        replies.push(r.expect("the task ran"));
    }
    let counts = tally(&replies);
    assert_eq!(
        counts.get(&(201, String::new())),
        Some(&(STOCK_FOR as usize)),
        "{counts:?}"
    );
    assert_eq!(
        counts.get(&(409, "insufficient_stock".into())),
        Some(&(ORDERS - STOCK_FOR as usize)),
        "{counts:?}"
    );
    for r in replies.iter().filter(|r| r.status == 409) {
        let p = r.json();
        assert_eq!(p["shortages"][0]["ingredient_id"], stand.ingredient_id.as_str());
        assert_eq!(p["shortages"][0]["needed"], 2);
        assert!(p["shortages"][0]["available"].as_u64().unwrap() < 2, "{p}");
    }

    let ingredient = app.ingredient(&stand.ingredient_id).await;
    assert_eq!(ingredient["on_hand"], 0);
    assert_eq!(app.product(&stand.product_id).await["can_make"], 0);
    let orders = app.orders_of(&cid).await;
    assert_eq!(orders.len(), STOCK_FOR as usize);
    assert!(orders.iter().all(|o| o["status"] == "confirmed"));
    assert_eq!(app.customer(&cid).await["points"], STOCK_FOR * 3, "350 earns 3 points");
    let moves = app.moves_of(&stand.ingredient_id).await;
    assert_eq!(
        moves.iter().filter(|m| m["reason"] == "sale").count(),
        STOCK_FOR as usize
    );
    assert_eq!(moves.iter().map(|m| i(&m["delta"])).sum::<i64>(), 0);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mixed_orders_over_shared_ingredients_never_oversell() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 60).await;
    let sugar = app.create_ingredient("Sugar", "g", 900).await;
    let (l, sg) = (s(&lemons["id"]).to_owned(), s(&sugar["id"]).to_owned());
    let lemonade = app.create_product("Lemonade", 350, &[(&l, 2), (&sg, 30)]).await;
    let tart = app.create_product("Lemon tart", 500, &[(&l, 3)]).await;
    let tea = app.create_product("Sweet tea", 250, &[(&sg, 40)]).await;
    let products: Vec<String> = [&lemonade, &tart, &tea]
        .iter()
        .map(|p| s(&p["id"]).to_owned())
        .collect();

    let mut tasks = JoinSet::new();
    for n in 0..90usize {
        let app = app.clone();
        let lines: Vec<(String, i64)> = match n % 4 {
            0 => vec![(products[0].clone(), 2)],
            1 => vec![(products[1].clone(), 1), (products[2].clone(), 1)],
            2 => vec![(products[2].clone(), 3)],
            _ => vec![(products[0].clone(), 1), (products[1].clone(), 2)],
        };
        tasks.spawn(async move {
            let lines: Vec<(&str, i64)> = lines.iter().map(|(p, q)| (p.as_str(), *q)).collect();
            app.place_order(None, &lines, None).await
        });
    }
    let mut sold: HashMap<String, i64> = HashMap::new();
    let mut confirmed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("the task ran");
        match r.status.as_u16() {
            201 => {
                let order = r.json();
                for line in order["lines"].as_array().unwrap() {
                    *sold.entry(s(&line["product_id"]).to_owned()).or_insert(0) += i(&line["quantity"]);
                }
                confirmed.push(order);
            }
            409 => assert_eq!(r.json()["code"], "insufficient_stock"),
            _ => panic!("unexpected {}: {}", r.status, r.text),
        }
    }
    let n = |p: &str| sold.get(p).copied().unwrap_or(0);
    let lemons_used = 2 * n(&products[0]) + 3 * n(&products[1]);
    let sugar_used = 30 * n(&products[0]) + 40 * n(&products[2]);
    assert!(
        lemons_used <= 60 && sugar_used <= 900,
        "oversold: {lemons_used} lemons, {sugar_used} g sugar"
    );
    assert_eq!(app.on_hand(&l).await as i64, 60 - lemons_used);
    assert_eq!(app.on_hand(&sg).await as i64, 900 - sugar_used);
    assert!(!confirmed.is_empty());
    for ing in [&l, &sg] {
        let moves = app.moves_of(ing).await;
        assert_eq!(
            moves.iter().map(|m| i(&m["delta"])).sum::<i64>() as u64,
            app.on_hand(ing).await
        );
    }
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cancels_of_one_order_return_its_stock_once() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let c = app.create_customer("Twice").await;
    let order = app.sell(Some(s(&c["id"])), &[(&stand.product_id, 4)]).await;
    let oid = s(&order["id"]).to_owned();

    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let (app, oid) = (app.clone(), oid.clone());
        tasks.spawn(async move { app.post(&format!("/orders/{oid}/cancel"), &json!({})).await });
    }
    let mut replies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        replies.push(r.expect("the task ran"));
    }
    let counts = tally(&replies);
    assert_eq!(counts.get(&(200, String::new())), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&(409, "conflict".into())), Some(&9), "{counts:?}");
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 20);
    assert_eq!(app.customer(s(&c["id"])).await["points"], 0);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_shop_with_sales_retries_cancels_and_staff_changes_passes_the_audit() {
    let app = spawn_app().await;
    let stand = app.stand(150).await;
    let customers: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(s(&app.create_customer("Regular").await["id"]).to_owned());
        }
        v
    };

    let mut tasks: JoinSet<Vec<Value>> = JoinSet::new();
    for worker in 0..8usize {
        let app = app.clone();
        let stand = stand.clone();
        let customer = customers[worker % customers.len()].clone();
        tasks.spawn(async move {
            let mut placed = Vec::new();
            for n in 0..15usize {
                let key = format!("busy-{}-{worker}-{n}", unique());
                let qty = (n % 3 + 1) as i64;
                let who = (n % 2 == 0).then_some(customer.as_str());
                // Every order is sent twice with its key, as a client retrying would.
                let first = app.place_order(who, &[(&stand.product_id, qty)], Some(&key)).await;
                let retry = app.place_order(who, &[(&stand.product_id, qty)], Some(&key)).await;
                if first.status == 201 {
                    let order = first.json();
                    assert_eq!(retry.header("idempotent-replayed"), Some("true"), "{}", retry.text);
                    assert_eq!(retry.expect(201), order, "the retry gets the first answer");
                    if n % 4 == 0 {
                        app.post(&format!("/orders/{}/cancel", s(&order["id"])), &json!({}))
                            .await
                            .expect(200);
                    }
                    placed.push(order);
                } else {
                    let refusal = first.problem(409, "insufficient_stock");
                    assert_eq!(retry.problem(409, "insufficient_stock"), refusal);
                }
                if n % 5 == 0 {
                    app.post(
                        &format!("/ingredients/{}/restock", stand.ingredient_id),
                        &json!({"quantity": 3}),
                    )
                    .await
                    .expect(200);
                }
                if n % 7 == 0 {
                    let w = app
                        .post(
                            &format!("/ingredients/{}/waste", stand.ingredient_id),
                            &json!({"quantity": 1}),
                        )
                        .await;
                    assert!(w.status == 200 || w.status == 409, "{}", w.text);
                }
            }
            placed
        });
    }
    let mut placed = 0;
    while let Some(r) = tasks.join_next().await {
        placed += r.expect("the worker ran").len();
    }
    assert!(placed > 0);
    let moves = app.moves_of(&stand.ingredient_id).await;
    assert_eq!(
        moves.iter().map(|m| i(&m["delta"])).sum::<i64>() as u64,
        app.on_hand(&stand.ingredient_id).await,
        "the ledger sums to on-hand"
    );
    let sales = moves.iter().filter(|m| m["reason"] == "sale").count();
    assert_eq!(sales, placed, "one sale move per order placed, none for the retries");
    for c in &customers {
        let earned: u64 = app
            .orders_of(c)
            .await
            .iter()
            .map(|o| o["points"].as_u64().unwrap())
            .sum();
        assert_eq!(app.customer(c).await["points"], earned);
    }
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_name_make_one_ingredient_and_one_product() {
    let app = spawn_app().await;
    let tag = unique();
    for (path, body) in [
        (
            "/ingredients",
            json!({"name": format!("Twin {tag}"), "unit": "g", "on_hand": 5}),
        ),
        (
            "/products",
            json!({"name": format!("Twin {tag}"), "price": 100, "recipe": []}),
        ),
    ] {
        let mut tasks = JoinSet::new();
        for _ in 0..12 {
            let (app, body) = (app.clone(), body.clone());
            tasks.spawn(async move { app.post(path, &body).await });
        }
        let mut replies = Vec::new();
        while let Some(r) = tasks.join_next().await {
            replies.push(r.expect("the task ran"));
        }
        let counts = tally(&replies);
        assert_eq!(counts.get(&(201, String::new())), Some(&1), "{path}: {counts:?}");
        assert_eq!(
            counts.get(&(422, "validation_failed".into())),
            Some(&11),
            "{path}: {counts:?}"
        );
        let named = app
            .get_all(path, 200)
            .await
            .into_iter()
            .filter(|x| x["name"] == body["name"])
            .count();
        assert_eq!(named, 1, "{path}");
    }
    app.assert_audit_clean().await;
}
