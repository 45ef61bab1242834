//! A request with several bad fields hears of every one of them in one 422: wrong JSON types,
//! unknown fields, bad values, and what only the shop knows (an unknown product or customer,
//! a product not on sale, a name taken) together. And nothing changes.

use serde_json::json;

use crate::support::{TestApp, error_fields, s, spawn_app, unique};

/// The `(field, message)` pairs of a validation problem, sorted.
fn errors_of(problem: &serde_json::Value) -> Vec<(String, String)> {
    let mut errors: Vec<_> = problem["errors"]
        .as_array()
        .expect("a validation problem lists its errors")
        .iter()
        .map(|e| (s(&e["field"]).to_owned(), s(&e["message"]).to_owned()))
        .collect();
    errors.sort();
    errors
}

fn fields(problem: &serde_json::Value) -> Vec<String> {
    let mut fields = error_fields(problem);
    fields.sort();
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_product_and_a_quantity_over_the_limit_are_both_reported() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await;
    let body = TestApp::order_body(None, &[("no-such-product", 1), (&stand.product_id, 1001)]);
    let p = app.post("/orders", &body).await.problem(422, "validation_failed");
    assert_eq!(
        errors_of(&p),
        [
            ("lines[0].product_id".into(), "no such product".into()),
            ("lines[1].quantity".into(), "must be at most 1000".into()),
        ],
        "{p}"
    );
    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_customer_and_unknown_and_unsold_products_are_reported_together() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let old = app.create_product("Old", 100, &[(&stand.ingredient_id, 1)]).await;
    app.patch(&format!("/products/{}", s(&old["id"])), &json!({"active": false}))
        .await
        .expect(200);
    let gone = app.create_customer("Gone").await;
    app.delete(&format!("/customers/{}", s(&gone["id"]))).await.expect(200);
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await;
    // A request that parses: only the shop can find what is wrong with it.
    for (customer, message) in [
        ("no-such-customer".to_owned(), "no such customer"),
        (s(&gone["id"]).to_owned(), "this customer was anonymised"),
    ] {
        let lines = [
            (stand.product_id.as_str(), 1),
            ("no-such-product", 1),
            (s(&old["id"]), 1),
        ];
        let p = app
            .place_order(Some(&customer), &lines, Some(&format!("key-{}", unique())))
            .await
            .problem(422, "validation_failed");
        let old_name = s(&old["name"]);
        assert_eq!(
            errors_of(&p),
            [
                ("customer_id".into(), message.into()),
                ("lines[1].product_id".into(), "no such product".into()),
                ("lines[2].product_id".into(), format!("{old_name} is not on sale")),
            ],
            "{p}"
        );
    }
    // And with a bad field the shop never sees, the shop's errors still come along.
    let p = app
        .post(
            "/orders",
            &json!({"customer_id": "no-such-customer", "lines": [
                {"product_id": "no-such-product", "quantity": 0},
                {"product_id": stand.product_id, "quantity": "two"},
            ]}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        fields(&p),
        [
            "customer_id",
            "lines[0].product_id",
            "lines[0].quantity",
            "lines[1].quantity"
        ],
        "{p}"
    );
    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await,
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_json_types_unknown_and_missing_fields_are_each_reported() {
    let app = spawn_app().await;
    let name = format!("Typed {}", unique());
    let p = app
        .post(
            "/ingredients",
            &json!({"name": 5, "unit": true, "on_hand": "ten", "reorder_level": -1, "colour": "yellow"}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        errors_of(&p),
        [
            ("colour".into(), "is not a field of this request".into()),
            ("name".into(), "must be a string".into()),
            ("on_hand".into(), "must be a whole number".into()),
            ("reorder_level".into(), "must not be negative".into()),
            ("unit".into(), "must be a string".into()),
        ],
        "{p}"
    );
    let p = app
        .post(
            "/products",
            &json!({"name": name, "recipe": [7, {"ingredient_id": "x", "quantity": 1.5, "extra": 1}, {}]}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        fields(&p),
        [
            "price",
            "recipe[0]",
            "recipe[1].extra",
            "recipe[1].ingredient_id",
            "recipe[1].quantity",
            "recipe[2].ingredient_id",
            "recipe[2].quantity",
        ],
        "{p}"
    );
    let p = app
        .post("/orders", &json!([1, 2]))
        .await
        .problem(422, "validation_failed");
    assert_eq!(errors_of(&p), [(String::new(), "must be a JSON object".into())], "{p}");
    assert!(
        !app.get_all("/products", 200)
            .await
            .iter()
            .any(|p| p["name"] == name.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_name_and_unknown_ingredients_are_reported_with_the_other_errors() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let taken = app.get(&format!("/products/{}", stand.product_id)).await.expect(200);
    let p = app
        .post(
            "/products",
            &json!({"name": taken["name"], "price": 100, "recipe": [
                {"ingredient_id": "no-such-a", "quantity": 1},
                {"ingredient_id": stand.ingredient_id, "quantity": 1},
                {"ingredient_id": "no-such-b", "quantity": 1},
            ]}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        fields(&p),
        ["name", "recipe[0].ingredient_id", "recipe[2].ingredient_id"],
        "{p}"
    );
    // With bad fields the shop never sees (a price, a quantity), its own errors still come.
    let p = app
        .post(
            "/products",
            &json!({"name": taken["name"], "price": -1, "recipe": [
                {"ingredient_id": "no-such-a", "quantity": 0},
            ]}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        fields(&p),
        ["name", "price", "recipe[0].ingredient_id", "recipe[0].quantity"],
        "{p}"
    );
    let other = app.create_product("Other", 100, &[]).await;
    let p = app
        .patch(
            &format!("/products/{}", s(&other["id"])),
            &json!({"name": taken["name"], "active": "yes", "recipe": [{"ingredient_id": "no-such-a", "quantity": 1}]}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(fields(&p), ["active", "name", "recipe[0].ingredient_id"], "{p}");
    let ingredient = app
        .get(&format!("/ingredients/{}", stand.ingredient_id))
        .await
        .expect(200);
    let p = app
        .post("/ingredients", &json!({"name": ingredient["name"], "unit": "kg"}))
        .await
        .problem(422, "validation_failed");
    assert_eq!(fields(&p), ["name", "unit"], "{p}");
    assert_eq!(
        app.get(&format!("/products/{}", s(&other["id"]))).await.expect(200),
        other
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_bad_query_parameters_are_each_reported() {
    let app = spawn_app().await;
    let p = app
        .get("/orders?limit=ten&cursor=not%20a%20cursor&status=lost&customer_id=not%20an%20id")
        .await
        .problem(422, "validation_failed");
    assert_eq!(fields(&p), ["cursor", "customer_id", "limit", "status"], "{p}");
    let p = app
        .get("/reports/sales?from=yesterday&by=hour&tz_offset_minutes=east&format=pdf")
        .await
        .problem(422, "validation_failed");
    assert_eq!(fields(&p), ["by", "format", "from", "to", "tz_offset_minutes"], "{p}");
}

/// As in JSON Schema, `2.0` is the whole number 2; an order of 2.0 lemonades is two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_number_written_with_a_fraction_is_that_number() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let order = app
        .post(
            "/orders",
            &json!({"lines": [{"product_id": stand.product_id, "quantity": 2.0}]}),
        )
        .await
        .expect(201);
    assert_eq!(order["lines"][0]["quantity"], 2);
}
