//! Walking a list page by page sees every item exactly once, in the list's order.

use serde_json::{Value, json};

use crate::support::{s, spawn_app, unique};

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|x| s(&x["id"]).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_walked_oldest_first_each_once_whatever_the_page_size() {
    let app = spawn_app().await;
    let tag = unique();
    let mut created = Vec::new();
    for n in 0..7 {
        let c = app
            .post("/customers", &json!({"name": format!("Pager {tag} {n}")}))
            .await
            .expect(201);
        created.push(s(&c["id"]).to_owned());
    }
    for limit in [1, 2, 3, 7, 200] {
        let walked = app.get_all(&format!("/customers?q={tag}"), limit).await;
        assert_eq!(ids(&walked), created, "limit {limit}");
    }
    // Page sizes: full pages, then the rest, and no cursor on the last.
    let first = app.get(&format!("/customers?q={tag}&limit=3")).await.expect(200);
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = s(&first["next_cursor"]).to_owned();
    let second = app
        .get(&format!("/customers?q={tag}&limit=3&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(second["items"].as_array().unwrap().len(), 3);
    let third = app
        .get(&format!(
            "/customers?q={tag}&limit=3&cursor={}",
            s(&second["next_cursor"])
        ))
        .await
        .expect(200);
    assert_eq!(third["items"].as_array().unwrap().len(), 1);
    assert!(third["next_cursor"].is_null(), "{third}");
    // Exactly a page's worth: the last full page says there is no more.
    let exact = app.get(&format!("/customers?q={tag}&limit=7")).await.expect(200);
    assert!(exact["next_cursor"].is_null(), "{exact}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingredients_and_products_are_walked_oldest_first_each_once() {
    let app = spawn_app().await;
    let mut ingredients = Vec::new();
    let mut products = Vec::new();
    for _ in 0..5 {
        let ing = app.create_ingredient("Pepper", "g", 10).await;
        products.push(s(&app.create_product("Spicy", 100, &[(s(&ing["id"]), 1)]).await["id"]).to_owned());
        ingredients.push(s(&ing["id"]).to_owned());
    }
    for (list, ours) in [("/ingredients", &ingredients), ("/products", &products)] {
        // Against a deployment, whose lists may be long, only with pages of some size.
        let limits: &[u32] = if app.is_local() { &[1, 2, 200] } else { &[50, 200] };
        for &limit in limits {
            let all = ids(&app.get_all(list, limit).await);
            let mut sorted = all.clone();
            sorted.sort();
            assert_eq!(all, sorted, "{list} oldest (smallest id) first");
            let found: Vec<&String> = all.iter().filter(|id| ours.contains(id)).collect();
            assert_eq!(found, ours.iter().collect::<Vec<_>>(), "{list} limit {limit}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_moves_are_walked_newest_first_each_once() {
    let app = spawn_app().await;
    let stand = app.stand(100).await;
    let c = app.create_customer("Many orders").await;
    let cid = s(&c["id"]);
    let mut placed = Vec::new();
    for q in 1..=9 {
        placed.push(s(&app.sell(Some(cid), &[(&stand.product_id, q)]).await["id"]).to_owned());
    }
    placed.reverse();
    for limit in [1, 4, 9, 200] {
        assert_eq!(
            ids(&app.get_all(&format!("/orders?customer_id={cid}"), limit).await),
            placed
        );
        assert_eq!(
            ids(&app.get_all(&format!("/customers/{cid}/orders"), limit).await),
            placed
        );
        let moves = app
            .get_all(&format!("/stock/moves?ingredient_id={}", stand.ingredient_id), limit)
            .await;
        let of_orders: Vec<String> = moves
            .iter()
            .filter(|m| !m["order_id"].is_null())
            .map(|m| s(&m["order_id"]).to_owned())
            .collect();
        assert_eq!(of_orders, placed, "limit {limit}");
        assert_eq!(moves.len(), 10, "nine sales and the opening stock");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_created_while_walking_do_not_repeat_or_reorder_the_walk() {
    let app = spawn_app().await;
    let tag = unique();
    let mut created = Vec::new();
    for n in 0..4 {
        let c = app
            .post("/customers", &json!({"name": format!("Growing {tag} {n}")}))
            .await
            .expect(201);
        created.push(s(&c["id"]).to_owned());
    }
    let first = app.get(&format!("/customers?q={tag}&limit=2")).await.expect(200);
    let late = app
        .post("/customers", &json!({"name": format!("Growing {tag} late")}))
        .await
        .expect(201);
    created.push(s(&late["id"]).to_owned());
    let mut walked = ids(first["items"].as_array().unwrap());
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = app
            .get(&format!("/customers?q={tag}&limit=2&cursor={c}"))
            .await
            .expect(200);
        walked.extend(ids(page["items"].as_array().unwrap()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(walked, created, "oldest first, the newcomer at the end");
}
