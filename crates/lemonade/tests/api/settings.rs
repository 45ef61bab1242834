//! What a shop's start-up settings change, seen over HTTP. In-process only: a deployment's
//! settings are its own.

use serde_json::json;
use tokio::task::JoinSet;

use crate::support::{is_remote, s, spawn_local};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_follow_the_minor_units_per_point_setting() {
    if is_remote() {
        return;
    }
    let app = spawn_local(|a| a.minor_units_per_point = 50).await.expect("start");
    let stand = app.stand(10).await;
    let c = app.create_customer("Generous").await;
    let order = app.sell(Some(s(&c["id"])), &[(&stand.product_id, 3)]).await;
    assert_eq!(order["points"], 21, "1050 / 50");
    assert_eq!(app.customer(s(&c["id"])).await["points"], 21);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_commit_per_order_also_never_oversells() {
    if is_remote() {
        return;
    }
    let app = spawn_local(|a| a.batch_max = 1).await.expect("start");
    let stand = app.stand(10).await;
    let mut tasks = JoinSet::new();
    for _ in 0..40 {
        let (app, p) = (app.clone(), stand.product_id.clone());
        tasks.spawn(async move { app.place_order(None, &[(&p, 1)], None).await });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("the task ran");
        match r.status.as_u16() {
            201 => created += 1,
            _ => {
                r.problem(409, "insufficient_stock");
            }
        }
    }
    assert_eq!(created, 10);
    assert_eq!(app.on_hand(&stand.ingredient_id).await, 0);
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_shop_opens_with_the_demo_stand_unless_asked_to_start_empty() {
    if is_remote() {
        return;
    }
    let demo = spawn_local(|_| {}).await.expect("start");
    let products = demo.get_all("/products", 200).await;
    assert!(products.iter().any(|p| p["name"] == "Lemonade"), "{products:?}");
    assert!(products.iter().all(|p| p["can_make"].as_u64().unwrap() > 0));
    assert!(!demo.get_all("/ingredients", 200).await.is_empty());
    // The demo shop sells.
    let lemonade = products.iter().find(|p| p["name"] == "Lemonade").unwrap();
    demo.sell(None, &[(s(&lemonade["id"]), 1)]).await;
    demo.assert_audit_clean().await;

    let empty = spawn_local(|a| a.empty = true).await.expect("start");
    for list in ["/products", "/ingredients", "/customers", "/orders", "/stock/moves"] {
        let page = empty.get(list).await.expect(200);
        assert_eq!(page, json!({"items": [], "next_cursor": null}), "{list}");
    }
}
