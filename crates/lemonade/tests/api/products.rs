//! Products, recipes and `can_make`.

use serde_json::json;

use crate::support::{error_fields, s, spawn_app, u, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_product_is_active_by_default_and_says_how_many_can_be_made() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 10).await;
    let sugar = app.create_ingredient("Sugar", "g", 1000).await;
    let name = format!("Lemonade {}", unique());
    let recipe = json!([
        {"ingredient_id": lemons["id"], "quantity": 3},
        {"ingredient_id": sugar["id"], "quantity": 400},
    ]);
    let product = app
        .post("/products", &json!({"name": name, "price": 350, "recipe": recipe}))
        .await
        .expect(201);
    assert_eq!(product["name"], name);
    assert_eq!(product["price"], 350);
    assert_eq!(product["active"], true);
    assert_eq!(product["can_make"], 2, "sugar is the scarcer: 1000 / 400");
    let items = product["recipe"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let expected = if item["ingredient_id"] == lemons["id"] { 3 } else { 400 };
        assert_eq!(item["quantity"], expected, "{product}");
    }
    let id = s(&product["id"]);
    assert_eq!(app.product(id).await, product);
    let listed = app.get_all("/products", 200).await;
    assert_eq!(listed.iter().filter(|p| p["id"] == id).collect::<Vec<_>>(), [&product]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_can_be_created_inactive_and_then_is_not_on_sale() {
    let app = spawn_app().await;
    let lemons = app.create_ingredient("Lemons", "piece", 10).await;
    let product = app
        .post(
            "/products",
            &json!({"name": format!("Winter punch {}", unique()), "price": 500,
                    "recipe": [{"ingredient_id": lemons["id"], "quantity": 1}], "active": false}),
        )
        .await
        .expect(201);
    assert_eq!(product["active"], false);
    let before = app.state(&[s(&lemons["id"])], &[s(&product["id"])], &[]).await;
    app.place_order(None, &[(s(&product["id"]), 1)], None)
        .await
        .invalid("lines[0].product_id");
    assert_eq!(app.state(&[s(&lemons["id"])], &[s(&product["id"])], &[]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_without_a_recipe_is_not_limited_by_stock() {
    let app = spawn_app().await;
    let product = app.create_product("Gift card", 1000, &[]).await;
    assert!(product["can_make"].is_null(), "no made-up number: {product}");
    let listed = app.get_all("/products", 200).await;
    let listed = listed.iter().find(|p| p["id"] == product["id"]).expect("listed");
    assert!(listed["can_make"].is_null(), "{listed}");
    let order = app.sell(None, &[(s(&product["id"]), 5)]).await;
    assert_eq!(order["total"], 5000);
    assert!(app.product(s(&product["id"])).await["can_make"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_make_says_what_the_stock_allows_even_past_a_billion() {
    let app = spawn_app().await;
    let sugar = app.create_ingredient("Sugar", "g", 1_000_000_000).await;
    for _ in 0..2 {
        app.post(
            &format!("/ingredients/{}/restock", s(&sugar["id"])),
            &json!({"quantity": 1_000_000_000}),
        )
        .await
        .expect(200);
    }
    let cube = app.create_product("Sugar cube", 5, &[(s(&sugar["id"]), 1)]).await;
    assert_eq!(u(&cube["can_make"]), 3_000_000_000, "not capped at a made-up limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_make_drops_after_a_sale_and_rises_after_a_restock() {
    let app = spawn_app().await;
    let stand = app.stand_with(4, 3, 300).await; // 12 lemons, 3 a glass
    assert_eq!(app.product(&stand.product_id).await["can_make"], 4);
    app.sell(None, &[(&stand.product_id, 3)]).await;
    assert_eq!(app.product(&stand.product_id).await["can_make"], 1);
    app.post(
        &format!("/ingredients/{}/restock", stand.ingredient_id),
        &json!({"quantity": 5}),
    )
    .await
    .expect(200);
    assert_eq!(app.product(&stand.product_id).await["can_make"], 2, "8 lemons / 3");
    app.post(
        &format!("/ingredients/{}/waste", stand.ingredient_id),
        &json!({"quantity": 6}),
    )
    .await
    .expect(200);
    assert_eq!(app.product(&stand.product_id).await["can_make"], 0);
    let listed = app.get_all("/products", 200).await;
    let mine = listed.iter().find(|p| p["id"] == stand.product_id.as_str()).unwrap();
    assert_eq!(mine["can_make"], 0, "the list is live too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patching_a_product_changes_only_what_is_sent_and_old_orders_keep_their_price() {
    let app = spawn_app().await;
    let stand = app.stand(10).await;
    let p = stand.product_id.as_str();
    let old = app.sell(None, &[(p, 1)]).await;

    let new_name = format!("Lemonade deluxe {}", unique());
    let patched = app
        .patch(&format!("/products/{p}"), &json!({"price": 420, "name": new_name}))
        .await
        .expect(200);
    assert_eq!(patched["price"], 420);
    assert_eq!(patched["name"], new_name);
    assert_eq!(patched["active"], true);
    assert_eq!(patched["recipe"], app.product(p).await["recipe"]);

    let extra = app.create_ingredient("Mint", "piece", 100).await;
    let patched = app
        .patch(
            &format!("/products/{p}"),
            &json!({"recipe": [{"ingredient_id": extra["id"], "quantity": 5}]}),
        )
        .await
        .expect(200);
    assert_eq!(
        patched["recipe"],
        json!([{"ingredient_id": extra["id"], "quantity": 5}])
    );
    assert_eq!(patched["can_make"], 20);
    assert_eq!(patched["price"], 420);

    let new = app.sell(None, &[(p, 2)]).await;
    assert_eq!(new["lines"][0]["unit_price"], 420);
    assert_eq!(new["lines"][0]["name"], new_name);
    assert_eq!(new["total"], 840);
    assert_eq!(app.on_hand(s(&extra["id"])).await, 90, "the new recipe is used");
    let old_again = app.order(s(&old["id"])).await;
    assert_eq!(old_again["lines"][0]["unit_price"], 350);
    assert_eq!(old_again["lines"][0]["name"], stand.product_name);
    assert_eq!(old_again["total"], 350);

    let off = app
        .patch(&format!("/products/{p}"), &json!({"active": false}))
        .await
        .expect(200);
    assert_eq!(off["active"], false);
    app.place_order(None, &[(p, 1)], None)
        .await
        .invalid("lines[0].product_id");
    app.patch(&format!("/products/{p}"), &json!({"active": true}))
        .await
        .expect(200);
    app.sell(None, &[(p, 1)]).await;
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_product_names_are_refused_on_create_and_patch() {
    let app = spawn_app().await;
    let first = app.create_product("Iced tea", 300, &[]).await;
    let second = app.create_product("Iced coffee", 300, &[]).await;
    let before = app.state(&[], &[s(&first["id"]), s(&second["id"])], &[]).await;

    app.post("/products", &json!({"name": first["name"], "price": 1, "recipe": []}))
        .await
        .invalid("name");
    app.patch(
        &format!("/products/{}", s(&second["id"])),
        &json!({"name": first["name"]}),
    )
    .await
    .invalid("name");
    // Renaming a product to its own name is no conflict.
    app.patch(
        &format!("/products/{}", s(&first["id"])),
        &json!({"name": first["name"]}),
    )
    .await
    .expect(200);

    assert_eq!(app.state(&[], &[s(&first["id"]), s(&second["id"])], &[]).await, before);
    let named = app
        .get_all("/products", 200)
        .await
        .into_iter()
        .filter(|p| p["name"] == first["name"])
        .count();
    assert_eq!(named, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipe_naming_an_unknown_ingredient_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let stand = app.stand(5).await;
    let before = app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await;
    let name = format!("Ghost drink {}", unique());

    app.post(
        "/products",
        &json!({"name": name, "price": 100,
                "recipe": [{"ingredient_id": stand.ingredient_id, "quantity": 1},
                           {"ingredient_id": "no-such-ingredient", "quantity": 1}]}),
    )
    .await
    .invalid("recipe[1].ingredient_id");
    app.patch(
        &format!("/products/{}", stand.product_id),
        &json!({"recipe": [{"ingredient_id": "no-such-ingredient", "quantity": 1}], "price": 1}),
    )
    .await
    .invalid("recipe[0].ingredient_id");

    assert_eq!(
        app.state(&[&stand.ingredient_id], &[&stand.product_id], &[]).await,
        before
    );
    let all = app.get_all("/products", 200).await;
    assert!(!all.iter().any(|p| p["name"] == name.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_products_are_refused_with_every_bad_field_and_nothing_changes() {
    let app = spawn_app().await;
    let stand = app.stand(5).await;
    let ing = stand.ingredient_id.as_str();
    let before = app.state(&[ing], &[&stand.product_id], &[]).await;
    let name = format!("Broken {}", unique());

    let p = app
        .post(
            "/products",
            &json!({"name": "", "price": -1,
                    "recipe": [{"ingredient_id": ing, "quantity": 0}, {"ingredient_id": "bad id!", "quantity": 1}]}),
        )
        .await
        .invalid("name");
    assert_eq!(
        error_fields(&p),
        ["name", "price", "recipe[0].quantity", "recipe[1].ingredient_id"],
        "{p}"
    );
    app.post("/products", &json!({"name": name, "price": 100_000_001, "recipe": []}))
        .await
        .invalid("price");
    app.post(
        "/products",
        &json!({"name": name, "price": 100,
                "recipe": [{"ingredient_id": ing, "quantity": 1}, {"ingredient_id": ing, "quantity": 2}]}),
    )
    .await
    .invalid("recipe[1].ingredient_id");
    let too_long: Vec<_> = (0..21)
        .map(|k| json!({"ingredient_id": format!("i{k}"), "quantity": 1}))
        .collect();
    app.post("/products", &json!({"name": name, "price": 100, "recipe": too_long}))
        .await
        .invalid("recipe");
    for body in [
        json!({"name": name, "price": 100}),
        json!({"name": name, "price": 1.5, "recipe": []}),
        json!({"name": name, "price": 100, "recipe": [], "colour": "pink"}),
        json!({"name": name, "price": 100, "recipe": [{"ingredient_id": ing, "quantity": 1, "unit": "g"}]}),
    ] {
        app.post("/products", &body).await.problem(422, "validation_failed");
    }

    let path = format!("/products/{}", stand.product_id);
    app.patch(&path, &json!({})).await.problem(422, "validation_failed");
    app.patch(&path, &json!({"price": -5})).await.invalid("price");
    app.patch(&path, &json!({"name": " "})).await.invalid("name");
    app.patch(&path, &json!({"active": "yes"}))
        .await
        .problem(422, "validation_failed");
    app.patch(&path, &json!({"can_make": 100}))
        .await
        .problem(422, "validation_failed");

    assert_eq!(app.state(&[ing], &[&stand.product_id], &[]).await, before);
    let all = app.get_all("/products", 200).await;
    assert!(!all.iter().any(|p| p["name"] == name.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_products_are_not_found() {
    let app = spawn_app().await;
    app.get("/products/no-such-product").await.problem(404, "not_found");
    app.patch("/products/no-such-product", &json!({"price": 1}))
        .await
        .problem(404, "not_found");
}

/// Names with nothing a person can see in them: white space of several kinds, zero-width and
/// format characters, Hangul fillers, the blank Braille pattern.
pub const BLANK_NAMES: [&str; 7] = [
    "\u{200b}",
    "\u{2800}",
    "\u{3164}",
    "\u{a0}\u{3000}\u{2003}",
    "\u{feff}\u{2060}\u{200e}",
    "\u{200d}\u{fe0f}",
    "\u{115f}\u{1160}\u{ffa0}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_name_with_nothing_visible_is_refused_like_an_empty_one() {
    let app = spawn_app().await;
    let product = app.create_product("Lemonade", 300, &[]).await;
    let id = s(&product["id"]);
    let before = app.state(&[], &[id], &[]).await;
    for blank in BLANK_NAMES {
        app.post("/products", &json!({"name": blank, "price": 300, "recipe": []}))
            .await
            .invalid("name");
        app.patch(&format!("/products/{id}"), &json!({"name": blank}))
            .await
            .invalid("name");
    }
    assert_eq!(app.state(&[], &[id], &[]).await, before);
}

/// Characters each device draws as it pleases (private use, often as nothing) or as one empty
/// box (unassigned, noncharacters) are refused in any name, with a message that says so
/// (found by a tester: "\u{e000}" was a product, and "A\u{e000}B" another beside "AB").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_a_private_use_or_unassigned_character_is_refused() {
    let app = spawn_app().await;
    let tag = unique();
    for name in [
        "\u{e000}",
        "A\u{e000}B",
        "A\u{378}",
        "Tea\u{ffff}",
        "\u{10ffff}",
        "\u{f0000}",
    ] {
        let name = format!("{tag} {name}");
        let problems = [
            app.post("/products", &json!({"name": name, "price": 300, "recipe": []}))
                .await
                .invalid("name"),
            app.post(
                "/ingredients",
                &json!({"name": name, "unit": "g", "on_hand": 0, "reorder_level": 0}),
            )
            .await
            .invalid("name"),
            app.post("/customers", &json!({"name": name})).await.invalid("name"),
        ];
        for problem in problems {
            assert!(problem.to_string().contains("private-use or unassigned"), "{problem}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_a_person_reads_as_the_same_are_one_product_name() {
    let app = spawn_app().await;
    let tag = unique();
    let name = format!("Café T {tag}");
    let first = app
        .post("/products", &json!({"name": name, "price": 300, "recipe": []}))
        .await
        .expect(201);
    let other = app.create_product("Iced tea", 300, &[]).await;
    let ids = [s(&first["id"]), s(&other["id"])];
    let before = app.state(&[], &ids, &[]).await;
    for same in [
        format!("Cafe\u{301} T {tag}"),
        format!("Café\u{200b} T {tag}"),
        format!("Café\u{a0}T {tag}"),
        format!("café t {tag}"),
        format!("  CAFÉ \u{3000} T {}\t", tag.to_uppercase()),
    ] {
        app.post("/products", &json!({"name": same, "price": 300, "recipe": []}))
            .await
            .invalid("name");
        app.patch(&format!("/products/{}", ids[1]), &json!({"name": same}))
            .await
            .invalid("name");
    }
    assert_eq!(app.state(&[], &ids, &[]).await, before);
    let named = app
        .get_all("/products", 200)
        .await
        .into_iter()
        .filter(|p| s(&p["name"]).ends_with(&tag))
        .count();
    assert_eq!(named, 1);

    // A product may change the case of its own name.
    let renamed = app
        .patch(
            &format!("/products/{}", ids[0]),
            &json!({"name": format!("CAFÉ T {tag}")}),
        )
        .await
        .expect(200);
    assert_eq!(renamed["name"], format!("CAFÉ T {tag}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_name_is_stored_as_a_person_reads_it_and_an_emoji_name_survives() {
    let app = spawn_app().await;
    let tag = unique();
    let decomposed = app
        .post(
            "/products",
            &json!({"name": format!(" Cre\u{300}me\u{a0}\u{a0}bru\u{302}le\u{301}e\u{200b} {tag} "), "price": 300, "recipe": []}),
        )
        .await
        .expect(201);
    assert_eq!(decomposed["name"], format!("Crème brûlée {tag}"));
    let chef = format!("👩\u{200d}🍳 special ☕\u{fe0f} {tag}");
    let created = app
        .post("/products", &json!({"name": chef, "price": 300, "recipe": []}))
        .await
        .expect(201);
    assert_eq!(created["name"], chef);
    assert_eq!(app.product(s(&created["id"])).await["name"], chef);
}

/// Creates a product named `name` and then, for each of `same`, proves that neither a new
/// product nor a rename of `other` may take it (422 on `name`) and that nothing changed.
async fn one_name_with(app: &crate::support::TestApp, name: &str, same: &[String]) {
    let first = app
        .post("/products", &json!({"name": name, "price": 300, "recipe": []}))
        .await
        .expect(201);
    let other = app.create_product(&format!("Other {}", unique()), 300, &[]).await;
    let ids = [s(&first["id"]), s(&other["id"])];
    let before = app.state(&[], &ids, &[]).await;
    for same in same {
        app.post("/products", &json!({"name": same, "price": 300, "recipe": []}))
            .await
            .invalid("name");
        app.patch(&format!("/products/{}", ids[1]), &json!({"name": same}))
            .await
            .invalid("name");
    }
    assert_eq!(app.state(&[], &ids, &[]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_glyph_reads_as_a_space_and_makes_no_new_name() {
    let app = spawn_app().await;
    let tag = unique();
    one_name_with(
        &app,
        &format!("{tag} Lemonade"),
        &[
            format!("\u{2800}{tag} Lemonade"),
            format!("{tag} Lemonade\u{2800}"),
            format!("{tag}\u{2800}Lemonade"),
        ],
    )
    .await;
    one_name_with(
        &app,
        &format!("{tag} Pink lemonade"),
        &[format!("{tag} Pink\u{2800}lemonade")],
    )
    .await;
    one_name_with(&app, &format!("{tag} Iced tea"), &[format!("{tag} Iced tea\u{1d159}")]).await;
    let spritz = app
        .post(
            "/products",
            &json!({"name": format!("\u{2800}{tag}\u{2800}\u{1d159}Spritz\u{2800}"), "price": 300, "recipe": []}),
        )
        .await
        .expect(201);
    assert_eq!(spritz["name"], format!("{tag} Spritz"), "stored as a person reads it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_punctuation_makes_no_new_name_and_is_kept_as_typed() {
    let app = spawn_app().await;
    let tag = unique();
    one_name_with(
        &app,
        &format!("{tag} Grandma's lemonade"),
        &[
            format!("{tag} Grandma’s lemonade"),
            format!("{tag} Grandmaʼs lemonade"),
            format!("{tag} Grandma‘s lemonade"),
            format!("{tag} Grandma′s lemonade"),
            format!("{tag} Grandma＇s lemonade"),
        ],
    )
    .await;
    one_name_with(
        &app,
        &format!("{tag} Iced-tea"),
        &[
            format!("{tag} Iced‐tea"),
            format!("{tag} Iced−tea"),
            format!("{tag} Iced–tea"),
            format!("{tag} Iced—tea"),
        ],
    )
    .await;
    one_name_with(
        &app,
        &format!("{tag} \"Best\" lemonade"),
        &[format!("{tag} “Best” lemonade"), format!("{tag} „Best“ lemonade")],
    )
    .await;
    // The counter tablet's smart punctuation is shown as typed.
    let smart = format!("{tag} Grandpa’s “special” – iced");
    let created = app
        .post("/products", &json!({"name": smart, "price": 300, "recipe": []}))
        .await
        .expect(201);
    assert_eq!(created["name"], smart);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invisible_joiner_or_tag_after_an_emoji_makes_no_new_name() {
    let app = spawn_app().await;
    let tag = unique();
    one_name_with(
        &app,
        &format!("{tag} Lemon trio 🍋🍋"),
        &[
            format!("{tag} Lemon trio 🍋\u{200d}🍋"),
            format!("{tag} Lemon trio 🍋🍋\u{e0020}"),
            format!("{tag} Lemon trio 🍋\u{e0041}🍋"),
        ],
    )
    .await;
    let joined = app
        .post(
            "/products",
            &json!({"name": format!("{tag} Pair 🍋\u{200d}🍋 and 👩\u{200d}🍳"), "price": 300, "recipe": []}),
        )
        .await
        .expect(201);
    assert_eq!(
        joined["name"],
        format!("{tag} Pair 🍋🍋 and 👩\u{200d}🍳"),
        "a joiner that makes no RGI emoji is dropped, one that does is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_letters_of_another_script_make_no_new_name() {
    let app = spawn_app().await;
    let tag = unique();
    // A Cyrillic е (U+0435) and о (U+043E) inside Latin words.
    one_name_with(
        &app,
        &format!("{tag} Cafe"),
        &[format!("{tag} Caf\u{435}"), format!("{tag} CAF\u{415}")],
    )
    .await;
    one_name_with(&app, &format!("{tag} Koffee"), &[format!("{tag} K\u{43e}ffee")]).await;
    // Found by a tester: a capital that looks Latin though its small letter does not (М, К),
    // the other script in the majority (Pах), a tie between the scripts (Ха, Реpe, Beӏӏ, Саfé).
    for (name, look_alike) in [
        ("Mix", "\u{41c}ix"),
        ("Kiwi", "\u{41a}iwi"),
        ("Ice", "\u{406}ce"),
        ("Xa", "\u{425}a"),
        ("Pax", "P\u{430}\u{445}"),
        ("Pepe", "\u{420}\u{435}pe"),
        ("Bell", "Be\u{4cf}\u{4cf}"),
        ("Café T", "\u{421}\u{430}fé T"),
    ] {
        one_name_with(&app, &format!("{tag} {name}"), &[format!("{tag} {look_alike}")]).await;
    }
    // Found by a second tester: letters whose two cases read as two Latin letters are read in
    // the case written (Greek Ν is N, ν is v; η is n, Η is H); the lunate sigma ϲ is a c;
    // a mixed word that only its minority script writes whole is in that script (Cyп, Суп).
    for (name, look_alike) in [
        ("NEO", "\u{39d}\u{395}\u{39f}"),
        ("Nova", "\u{39d}ova"),
        ("cola", "\u{3f2}ola"),
        ("nut", "\u{3b7}ut"),
        ("\u{421}\u{443}\u{43f}", "Cy\u{43f}"),
        // A third tester's: marks capitals do not write (the Turkish İ's dot, the Greek tonos).
        ("i\u{e7}ecek", "\u{130}\u{e7}ecek"),
        ("\u{395}\u{3bb}\u{3b9}\u{3ac}", "\u{395}\u{39b}\u{399}\u{391}"),
        // And words of two other scripts than Latin that look alike letter for letter: the
        // Cyrillic ПІТА and the Greek ΠΙΤΑ, Katakana カレー and カ written as Han 力; and signs
        // that look like a keyboard's (⁄ and /, ⋅ and ·).
        ("\u{41f}\u{406}\u{422}\u{410}", "\u{3a0}\u{399}\u{3a4}\u{391}"),
        (
            "\u{444}\u{430}\u{440}\u{43c}\u{430}",
            "\u{3c6}\u{3b1}\u{3c1}\u{3bc}\u{3b1}",
        ),
        ("\u{30ab}\u{30ec}\u{30fc}", "\u{529b}\u{30ec}\u{30fc}"),
        ("1/2 lemon", "1\u{2044}2 lemon"),
        ("Tea\u{b7}Lemon", "Tea\u{22c5}Lemon"),
        // A sixth tester's: the bar's look-alikes; a fifth's: a swung dash is a tilde.
        ("Mix|Max", "Mix\u{2223}Max"),
        ("X~Y", "X\u{2053}Y"),
    ] {
        one_name_with(&app, &format!("{tag} {name}"), &[format!("{tag} {look_alike}")]).await;
    }
    // A letter with a stroke or a bar is not the bare letter: Бок (bock) and Вок (wok).
    for name in ["Vova", "Hut", "\u{411}\u{43e}\u{43a}", "\u{412}\u{43e}\u{43a}"] {
        app.post(
            "/products",
            &json!({"name": format!("{tag} {name}"), "price": 300, "recipe": []}),
        )
        .await
        .expect(201);
    }
    // A word all of whose letters look Latin reads as Latin: the Cyrillic "Сок" is "Cok".
    one_name_with(&app, &format!("{tag} Cok"), &[format!("{tag} \u{421}\u{43e}\u{43a}")]).await;
    // Ingredients follow the same rule.
    let kiwi = json!({"name": format!("{tag} Kiwi"), "unit": "piece", "on_hand": 0, "reorder_level": 0});
    app.post("/ingredients", &kiwi).await.expect(201);
    let cyrillic = json!({"name": format!("{tag} \u{41a}iwi"), "unit": "piece", "on_hand": 0, "reorder_level": 0});
    app.post("/ingredients", &cyrillic).await.invalid("name");
    // Look-alikes within one script are different letters ("Corn" is not "Com"), and a word of
    // another script that does not look Latin letter for letter is itself (the Cyrillic "Сыр").
    for name in [
        format!("{tag} Corn"),
        format!("{tag} Com"),
        format!("{tag} \u{421}\u{44b}\u{440}"),
    ] {
        app.post("/products", &json!({"name": name, "price": 300, "recipe": []}))
            .await
            .expect(201);
    }
}
