//! Customers: contact details, search, their orders, export and anonymisation.

use serde_json::json;

use crate::support::{enc, s, spawn_app, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_created_read_and_patched() {
    let app = spawn_app().await;
    let tag = unique();
    let created = app
        .post(
            "/customers",
            &json!({"name": format!(" Ada {tag} "), "email": format!("ada.{tag}@example.org"), "phone": "+44 20 7946 0958"}),
        )
        .await
        .expect(201);
    assert_eq!(created["name"], format!("Ada {tag}"));
    assert_eq!(created["email"], format!("ada.{tag}@example.org"));
    assert_eq!(created["phone"], "+44 20 7946 0958");
    assert_eq!(created["points"], 0);
    assert_eq!(created["anonymised"], false);
    assert!(s(&created["created_at"]).ends_with('Z'));
    let id = s(&created["id"]);
    assert_eq!(app.customer(id).await, created);

    let patched = app
        .patch(&format!("/customers/{id}"), &json!({"name": format!("Ada L. {tag}")}))
        .await
        .expect(200);
    assert_eq!(patched["name"], format!("Ada L. {tag}"));
    assert_eq!(patched["email"], created["email"], "unsent fields stay");
    assert_eq!(patched["phone"], created["phone"]);

    let cleared = app
        .patch(&format!("/customers/{id}"), &json!({"email": "", "phone": "0123"}))
        .await
        .expect(200);
    assert!(cleared["email"].is_null(), "an empty email clears it: {cleared}");
    assert_eq!(cleared["phone"], "0123");
    assert_eq!(cleared["created_at"], created["created_at"]);
    assert_eq!(app.customer(id).await, cleared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_needs_only_a_name() {
    let app = spawn_app().await;
    let c = app.create_customer("Walk-in").await;
    assert!(c["email"].is_null());
    assert!(c["phone"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_name_email_or_phone_case_insensitively() {
    let app = spawn_app().await;
    let tag = unique();
    let by_name = app
        .post("/customers", &json!({"name": format!("Grace Hopper {tag}")}))
        .await
        .expect(201);
    let by_email = app
        .post(
            "/customers",
            &json!({"name": "Someone", "email": format!("x{tag}y@example.com")}),
        )
        .await
        .expect(201);
    let digits: String = tag
        .chars()
        .filter(char::is_ascii_digit)
        .chain("975".chars())
        .take(8)
        .collect();
    let phone = format!("+1 {digits}");
    let by_phone = app
        .post("/customers", &json!({"name": "Someone else", "phone": phone}))
        .await
        .expect(201);

    let found = app
        .get(&format!("/customers?q={}", enc(&tag.to_uppercase())))
        .await
        .expect(200);
    let ids: Vec<&str> = found["items"].as_array().unwrap().iter().map(|c| s(&c["id"])).collect();
    assert_eq!(ids, [s(&by_name["id"]), s(&by_email["id"])], "oldest first");

    let found = app
        .get(&format!("/customers?q={}", enc(&format!("grace hopper {tag}"))))
        .await
        .expect(200);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);

    let found = app.get(&format!("/customers?q={}", enc(&phone))).await.expect(200);
    let ids: Vec<&str> = found["items"].as_array().unwrap().iter().map(|c| s(&c["id"])).collect();
    assert!(ids.contains(&s(&by_phone["id"])), "{found}");

    // LIKE wildcards are literal characters in a search.
    let none = app
        .get(&format!("/customers?q={}", enc(&format!("%{tag}_%"))))
        .await
        .expect(200);
    assert_eq!(none["items"], json!([]));
    app.get(&format!("/customers?q={}", "x".repeat(101))).await.invalid("q");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_customers_are_refused_and_nothing_is_created() {
    let app = spawn_app().await;
    let existing = app.create_customer("Existing").await;
    let id = s(&existing["id"]);
    let before = app.state(&[], &[], &[id]).await;
    let tag = unique();

    app.post("/customers", &json!({"email": format!("{tag}@example.org")}))
        .await
        .invalid("name");
    app.post("/customers", &json!({"name": "  "})).await.invalid("name");
    for email in ["no-at-sign", "a@b", "a b@example.org", "@example.org", "a@.org"] {
        app.post("/customers", &json!({"name": format!("Bad {tag}"), "email": email}))
            .await
            .invalid("email");
    }
    for phone in ["call me", "12", "+1 (555) 0100 ext. 4 and so on and on"] {
        app.post("/customers", &json!({"name": format!("Bad {tag}"), "phone": phone}))
            .await
            .invalid("phone");
    }
    app.post("/customers", &json!({"name": format!("Bad {tag}"), "points": 100}))
        .await
        .problem(422, "validation_failed");

    let path = format!("/customers/{id}");
    app.patch(&path, &json!({})).await.problem(422, "validation_failed");
    app.patch(&path, &json!({"email": "nope"})).await.invalid("email");
    app.patch(&path, &json!({"points": 1000}))
        .await
        .problem(422, "validation_failed");

    assert_eq!(app.state(&[], &[], &[id]).await, before);
    let found = app.get(&format!("/customers?q={tag}")).await.expect(200);
    assert_eq!(found["items"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_customers_are_not_found_everywhere() {
    let app = spawn_app().await;
    let missing = "no-such-customer";
    app.get(&format!("/customers/{missing}"))
        .await
        .problem(404, "not_found");
    app.patch(&format!("/customers/{missing}"), &json!({"name": "X"}))
        .await
        .problem(404, "not_found");
    app.delete(&format!("/customers/{missing}"))
        .await
        .problem(404, "not_found");
    app.get(&format!("/customers/{missing}/orders"))
        .await
        .problem(404, "not_found");
    app.get(&format!("/customers/{missing}/export"))
        .await
        .problem(404, "not_found");
    app.get(&format!("/orders?customer_id={missing}"))
        .await
        .problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_orders_are_theirs_only_newest_first() {
    let app = spawn_app().await;
    let stand = app.stand(20).await;
    let p = stand.product_id.as_str();
    let ann = app.create_customer("Ann").await;
    let bob = app.create_customer("Bob").await;
    let first = app.sell(Some(s(&ann["id"])), &[(p, 1)]).await;
    app.sell(Some(s(&bob["id"])), &[(p, 1)]).await;
    app.sell(None, &[(p, 1)]).await;
    let second = app.sell(Some(s(&ann["id"])), &[(p, 2)]).await;

    let orders = app.orders_of(s(&ann["id"])).await;
    assert_eq!(orders, [second.clone(), first.clone()]);
    let filtered = app
        .get_all(&format!("/orders?customer_id={}", s(&ann["id"])), 200)
        .await;
    assert_eq!(filtered, [second, first]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_the_customer_their_orders_and_their_activity() {
    let app = spawn_app().await;
    let stand = app.stand(20).await;
    let c = app.create_customer("Export me").await;
    let id = s(&c["id"]);
    app.patch(&format!("/customers/{id}"), &json!({"phone": "555 0100"}))
        .await
        .expect(200);
    let kept = app.sell(Some(id), &[(&stand.product_id, 3)]).await; // 1050 → 10 points
    let cancelled = app.sell(Some(id), &[(&stand.product_id, 1)]).await; // 350 → 3 points
    app.post(&format!("/orders/{}/cancel", s(&cancelled["id"])), &json!({}))
        .await
        .expect(200);

    let reply = app.get(&format!("/customers/{id}/export")).await;
    let export = reply.expect(200);
    assert!(
        reply
            .header("content-disposition")
            .is_some_and(|d| d.contains("attachment")),
        "{:?}",
        reply.headers
    );
    assert_eq!(export["customer"], app.customer(id).await);
    assert_eq!(export["customer"]["points"], 10);
    let order_ids: Vec<&str> = export["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| s(&o["id"]))
        .collect();
    assert_eq!(order_ids, [s(&kept["id"]), s(&cancelled["id"])], "oldest first");
    assert_eq!(export["orders"][1]["status"], "cancelled");
    let activity: Vec<(&str, i64)> = export["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (s(&a["kind"]), a["points_delta"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        activity,
        [
            ("created", 0),
            ("updated", 0),
            ("order_placed", 10),
            ("order_placed", 3),
            ("order_cancelled", -3)
        ]
    );
    assert_eq!(export["activity"][2]["order_id"], kept["id"]);
    assert!(s(&export["exported_at"]).ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_customer_anonymises_them_keeps_their_orders_and_forfeits_their_points() {
    let app = spawn_app().await;
    let stand = app.stand(20).await;
    let tag = unique();
    let c = app
        .post(
            "/customers",
            &json!({"name": format!("Forget {tag}"), "email": format!("forget.{tag}@example.org"), "phone": "555 1234"}),
        )
        .await
        .expect(201);
    let id = s(&c["id"]);
    let order = app.sell(Some(id), &[(&stand.product_id, 2)]).await; // 700 → 7 points

    let gone = app.delete(&format!("/customers/{id}")).await.expect(200);
    assert_eq!(gone["id"], id);
    assert_eq!(gone["name"], "Anonymised customer");
    assert!(gone["email"].is_null());
    assert!(gone["phone"].is_null());
    assert_eq!(gone["anonymised"], true);
    assert_eq!(gone["points"], 0, "nobody can spend them any more");
    assert_eq!(gone["created_at"], c["created_at"]);
    assert_eq!(app.customer(id).await, gone);
    assert_eq!(app.orders_of(id).await, std::slice::from_ref(&order));
    assert_eq!(app.order(s(&order["id"])).await["customer_id"], id);

    for q in [format!("Forget {tag}"), format!("forget.{tag}")] {
        let found = app.get(&format!("/customers?q={}", enc(&q))).await.expect(200);
        assert_eq!(found["items"], json!([]), "the old details no longer find them");
    }
    let export = app.get(&format!("/customers/{id}/export")).await.expect(200);
    assert_eq!(export["customer"], gone);
    let last = export["activity"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "anonymised");
    assert_eq!(last["points_delta"], -7, "the erasure records the points it forfeited");
    assert!(
        !export.to_string().contains(&tag),
        "no trace of the person in the export"
    );

    // Deleting again changes nothing; the record can no longer be edited or ordered for.
    assert_eq!(app.delete(&format!("/customers/{id}")).await.expect(200), gone);
    app.patch(&format!("/customers/{id}"), &json!({"name": "Back"}))
        .await
        .problem(409, "conflict");
    let before = app.state(&[&stand.ingredient_id], &[], &[id]).await;
    app.place_order(Some(id), &[(&stand.product_id, 1)], None)
        .await
        .invalid("customer_id");
    assert_eq!(app.state(&[&stand.ingredient_id], &[], &[id]).await, before);

    // Their order can still be cancelled; the closed record does not change.
    app.post(&format!("/orders/{}/cancel", s(&order["id"])), &json!({}))
        .await
        .expect(200);
    app.assert_audit_clean().await;
    assert_eq!(app.customer(id).await, gone);
    let after = app.get(&format!("/customers/{id}/export")).await.expect(200);
    assert_eq!(
        after["activity"], export["activity"],
        "nothing is added after the erasure"
    );
}

/// Orders for a customer placed while the customer is erased: each order either comes before
/// the erasure (its activity listed before `anonymised`, its points forfeited with the rest)
/// or is refused; nothing is added after `anonymised`; activity is listed in the order the
/// shop applied it; and no order asked for after the erasure's answer names the customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_racing_an_erasure_come_before_it_or_are_refused_and_activity_keeps_applied_order() {
    const ORDERS: usize = 48;
    let app = spawn_app().await;
    let stand = app.stand(ORDERS as u64 + 10).await;
    let c = app.create_customer("Racing").await;
    let id = s(&c["id"]).to_owned();
    app.sell(Some(&id), &[(&stand.product_id, 1)]).await;

    // Orders in a stream; the erasure starts once the first of them is answered, so some
    // are in flight when it is asked for and some come after.
    let (answered, mut first_answer) = tokio::sync::mpsc::channel::<()>(ORDERS);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..ORDERS {
        let (app, id, p, answered) = (app.clone(), id.clone(), stand.product_id.clone(), answered.clone());
        tasks.spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(n as u64)).await;
            let asked = std::time::Instant::now();
            let reply = app.place_order(Some(&id), &[(&p, 1)], None).await;
            let _ = answered.try_send(());
            (asked, reply)
        });
    }
    first_answer.recv().await;
    let gone = loop {
        let reply = app.delete(&format!("/customers/{id}")).await;
        if reply.status == 503 {
            // Orders of theirs still in flight: the erasure finishes, ask again.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        break reply.expect(200);
    };
    let erased = std::time::Instant::now();
    assert_eq!(gone["points"], 0);

    let mut placed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (asked, reply) = done.expect("the task ran");
        if reply.status.as_u16() == 422 {
            reply.invalid("customer_id");
            continue;
        }
        assert!(
            asked < erased,
            "an order asked for after the erasure was answered was placed: {}",
            reply.text
        );
        let order = app.settle(&reply).await;
        assert_eq!(order["customer_id"], id.as_str());
        placed.push(s(&order["id"]).to_owned());
    }
    app.place_order(Some(&id), &[(&stand.product_id, 1)], None)
        .await
        .invalid("customer_id");

    app.assert_audit_clean().await;
    let export = app.get(&format!("/customers/{id}/export")).await.expect(200);
    let activity = export["activity"].as_array().unwrap();
    let kinds: Vec<&str> = activity.iter().map(|a| s(&a["kind"])).collect();
    assert_eq!(kinds.first(), Some(&"created"), "{kinds:?}");
    assert_eq!(
        kinds.last(),
        Some(&"anonymised"),
        "nothing after the erasure: {kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|&&k| k == "anonymised").count(), 1, "{kinds:?}");
    let times: Vec<&str> = activity.iter().map(|a| s(&a["created_at"])).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "activity is listed in the order it was applied: {activity:?}"
    );
    let awarded: i64 = activity.iter().map(|a| a["points_delta"].as_i64().unwrap()).sum();
    assert_eq!(awarded, 0, "the erasure forfeited every point awarded before it");
    for a in activity.iter().filter(|a| a["kind"] == "order_placed").skip(1) {
        assert!(placed.iter().any(|p| a["order_id"] == p.as_str()), "{a}");
    }
    assert_eq!(app.customer(&id).await["points"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_name_with_nothing_visible_is_refused_like_an_empty_one() {
    let app = spawn_app().await;
    let existing = app.create_customer("Existing").await;
    let id = s(&existing["id"]);
    let before = app.state(&[], &[], &[id]).await;
    for blank in crate::products::BLANK_NAMES {
        app.post("/customers", &json!({"name": blank})).await.invalid("name");
        app.patch(&format!("/customers/{id}"), &json!({"name": blank}))
            .await
            .invalid("name");
    }
    assert_eq!(app.state(&[], &[], &[id]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_and_emails_are_read_by_what_a_person_sees() {
    let app = spawn_app().await;
    let tag = unique();
    // Full-width digits and signs are the ASCII ones; invisible characters (bidi marks, a
    // variation selector after a digit) are dropped.
    for (sent, stored) in [
        ("＋４４\u{3000}２０ ７９４６", "+44 20 7946"),
        ("\u{200e}1\u{fe0f}23\u{200f}", "123"),
    ] {
        let c = app
            .post("/customers", &json!({"name": format!("Phone {tag}"), "phone": sent}))
            .await
            .expect(201);
        assert_eq!(c["phone"], stored, "{sent:?}");
    }
    // A character that stands for several ('⑩' is "10") is not a phone number's; nor is a
    // diaeresis, which is no blank. An invisible character does not hide a dot from the
    // domain's start.
    for phone in ["⑩⑪⑫", "¨"] {
        app.post("/customers", &json!({"name": format!("Bad {tag}"), "phone": phone}))
            .await
            .invalid("phone");
    }
    app.post(
        "/customers",
        &json!({"name": format!("Bad {tag}"), "email": "a@\u{fe00}.example.org"}),
    )
    .await
    .invalid("email");
}

/// A phone number of ten digits made from `tag` (hex), so that no other test's customer has it.
fn phone_digits(tag: &str) -> String {
    tag.chars()
        .map(|c| char::from_digit(c.to_digit(16).unwrap() % 10, 10).unwrap())
        .take(10)
        .collect()
}

fn ids(page: &serde_json::Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|c| s(&c["id"])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_names_as_a_person_reads_them_and_phones_by_their_digits() {
    let app = spawn_app().await;
    let tag = unique();
    let digits = phone_digits(&tag);
    let zoe = app
        .post(
            "/customers",
            &json!({"name": format!("Zoë 🍋 Müller {tag}"), "email": format!("Zoe.{tag}@Example.ORG"),
                    "phone": format!("+44 {} {}", &digits[..4], &digits[4..])}),
        )
        .await
        .expect(201);
    assert_eq!(
        zoe["email"],
        format!("Zoe.{tag}@example.org"),
        "the domain is lower-cased"
    );
    let compact = app
        .post(
            "/customers",
            &json!({"name": format!("Ann {tag}"), "phone": format!("+44{digits}")}),
        )
        .await
        .expect(201);
    let (zoe, compact) = (s(&zoe["id"]), s(&compact["id"]));

    for query in [
        "MÜLLER".to_owned(),
        "ZOË".to_owned(),
        "zoe".to_owned(),
        "Mu\u{308}ller".to_owned(),
        format!("zoe\u{a0}🍋 MULLER {tag}"),
        format!("ZOE.{}@EXAMPLE", tag.to_uppercase()),
    ] {
        let found = app
            .get_all(&format!("/customers?q={}", enc(&query)), 200)
            .await
            .into_iter()
            .map(|c| s(&c["id"]).to_owned())
            .collect::<Vec<_>>();
        assert!(found.iter().any(|id| id == zoe), "{query:?} finds Zoë");
    }
    let by_compact = app
        .get(&format!("/customers?q={}", enc(&format!("+44{digits}"))))
        .await
        .expect(200);
    assert_eq!(ids(&by_compact), [zoe, compact], "+44{digits} finds +44 {digits} too");
    let by_spaced = app
        .get(&format!(
            "/customers?q={}",
            enc(&format!("+44 {} {}", &digits[..4], &digits[4..]))
        ))
        .await
        .expect(200);
    assert_eq!(ids(&by_spaced), [zoe, compact], "and the reverse");
    let by_part = app
        .get(&format!(
            "/customers?q={}",
            enc(&format!("({}) {}", &digits[..4], &digits[4..7]))
        ))
        .await
        .expect(200);
    assert_eq!(ids(&by_part), [zoe, compact]);

    // Wildcards stay literal, accents or not.
    let none = app
        .get(&format!("/customers?q={}", enc(&format!("Zo%_ {tag}"))))
        .await
        .expect(200);
    assert_eq!(none["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymised_customer_is_no_longer_found_by_what_they_were() {
    let app = spawn_app().await;
    let tag = unique();
    let digits = phone_digits(&tag);
    let c = app
        .post(
            "/customers",
            &json!({"name": format!("Zoë {tag}"), "email": format!("z{tag}@example.org"), "phone": digits}),
        )
        .await
        .expect(201);
    app.delete(&format!("/customers/{}", s(&c["id"]))).await.expect(200);
    for query in [format!("zoe {tag}"), format!("z{tag}@"), digits] {
        let found = app.get(&format!("/customers?q={}", enc(&query))).await.expect(200);
        assert_eq!(found["items"], json!([]), "{query:?}");
    }
}

/// Every file under `dir` (databases, their `-wal` and `-shm`, anything else) that holds one
/// of `needles` as bytes, as written or in lower case.
fn files_holding(dir: &std::path::Path, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read the data folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read a file of the data folder");
            for needle in needles.iter().flat_map(|n| [n.clone(), n.to_lowercase()]) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(format!("{} holds {needle:?}", path.display()));
                }
            }
        }
    }
    found
}

/// Whether VACUUM ran on `table` of the CRM database of a cluster on PostgreSQL.
async fn vacuumed(base: &str, table: &'static str) -> bool {
    let url = lemonade_store::postgres::role_url(base, lemonade_store::migrations::Role::Crm).unwrap();
    tokio::task::spawn_blocking(move || {
        use lemonade_store::conn::Db;
        let conn = lemonade_store::conn::PgConn::connect(&url).unwrap();
        let db: &dyn Db = &conn;
        db.query_row(
            "SELECT COUNT(*) FROM pg_stat_user_tables WHERE relname = ?1 AND last_vacuum IS NOT NULL",
            lemonade_store::params![table],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_leaves_nothing_readable_in_the_shops_files_also_after_a_clean_stop() {
    let app = spawn_app().await;
    let Some(dir) = app.data_dir() else {
        return; // a deployment elsewhere: its files are not ours to read
    };
    let stand = app.stand(10).await;
    let tag = unique();
    let digits = u64::from_str_radix(&tag, 16).unwrap() % 1_000_000_000;
    let (name, old_email, new_email, phone) = (
        format!("Zelda Quartermain {tag}"),
        format!("zelda.{tag}@old.example"),
        format!("zq.{tag}@new.example"),
        format!("+1 555 {digits:09}"),
    );
    let c = app
        .post("/customers", &json!({"name": name, "email": old_email, "phone": phone}))
        .await
        .expect(201);
    let id = s(&c["id"]);
    app.patch(&format!("/customers/{id}"), &json!({"email": new_email}))
        .await
        .expect(200);
    // An order for them, so that every service's files have seen them (by id).
    app.sell(Some(id), &[(&stand.product_id, 1)]).await;
    app.assert_audit_clean().await;
    let needles = [name, old_email, new_email, phone];
    if app.postgres_base().is_none() {
        assert!(
            !files_holding(&dir, &needles).is_empty(),
            "the test looks where the data is before the erasure"
        );
    }

    app.delete(&format!("/customers/{id}")).await.expect(200);
    match app.postgres_base() {
        // PostgreSQL keeps dead row versions until a vacuum, which the erasure runs; what a
        // vacuum leaves in the server's own files is for its operator (see the README).
        Some(base) => {
            for table in ["customers", "step_results"] {
                assert!(vacuumed(&base, table).await, "{table} vacuumed after the erasure");
            }
        }
        None => assert_eq!(files_holding(&dir, &needles), Vec::<String>::new()),
    }
    app.stop().await;
    if app.postgres_base().is_none() {
        assert_eq!(
            files_holding(&dir, &needles),
            Vec::<String>::new(),
            "after a clean stop"
        );
    }
}

/// Creates a customer for each of `names` (the test's tag after each), then asserts that each
/// query finds, of these, exactly the one at its index. Other tests' customers may match too:
/// only which of these are found counts.
async fn each_query_finds_one(names: &[&str], queries: &[(&str, usize)]) {
    let app = spawn_app().await;
    let tag = unique();
    let mut people = Vec::new();
    for name in names {
        let c = app
            .post("/customers", &json!({"name": format!("{name} {tag}")}))
            .await
            .expect(201);
        people.push(s(&c["id"]).to_owned());
    }
    for &(query, who) in queries {
        let found: Vec<String> = app
            .get_all(&format!("/customers?q={}", enc(query)), 200)
            .await
            .into_iter()
            .map(|c| s(&c["id"]).to_owned())
            .filter(|id| people.contains(id))
            .collect();
        assert_eq!(found, [people[who].clone()], "{query:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_letters_whose_marks_do_not_decompose_by_their_base_letters() {
    each_query_finds_one(
        &["Søren Ærø", "Łukasz", "Đorđe", "Grandma’s friend"],
        &[
            ("soren", 0),
            ("aero", 0),
            ("SOREN AERO", 0),
            ("lukasz", 1),
            ("dorde", 2),
            ("grandma's friend", 3),
        ],
    )
    .await;
}

/// A query typed in one script finds a name written in look-alike letters of another, and the
/// first letters of a name in another script find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_look_alike_letters_of_another_script() {
    // "Мax" with a Cyrillic М; "Саша" (Sasha) in Cyrillic; "Kiwi" in Latin; the Greek "Νεο";
    // the Greek "Πίτα", found by the first letters of the Cyrillic "Піта" that looks like it.
    each_query_finds_one(
        &[
            "\u{41c}ax",
            "\u{421}\u{430}\u{448}\u{430}",
            "Kiwi",
            "\u{39d}\u{3b5}\u{3bf}",
            "\u{3a0}\u{3af}\u{3c4}\u{3b1}",
            "\u{39d}\u{3af}\u{3ba}\u{3bf}\u{3c2} \u{392}\u{3ad}\u{3c1}\u{3bf}\u{3c2}",
        ],
        &[
            ("max", 0),
            ("\u{421}\u{430}\u{448}", 1),
            ("\u{41a}iwi", 2),
            ("\u{43a}\u{456}w\u{456}", 2),
            ("neo", 3),
            ("\u{41f}\u{456}\u{442}", 4),
            // "Νίκος" found typed in small letters, whose ν reads v (a fifth tester's case).
            ("\u{3bd}\u{3af}\u{3ba}\u{3bf}\u{3c2}", 5),
            ("\u{39d}\u{399}\u{39a}\u{39f}\u{3a3}", 5),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_is_read_in_its_compatibility_form() {
    let app = spawn_app().await;
    let tag = unique();
    let ada = app
        .post("/customers", &json!({"name": format!("Ada {tag}")}))
        .await
        .expect(201);
    let id = s(&ada["id"]);
    let local = tag.to_uppercase();
    let wide: String = local
        .chars()
        .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
        .collect();
    for (sent, stored) in [
        (format!("{wide}@ＥＸＡＭＰＬＥ.ORG"), format!("{local}@example.org")),
        (format!("{tag}＠example.org"), format!("{tag}@example.org")),
        (format!("{tag}@example．org"), format!("{tag}@example.org")),
    ] {
        let patched = app
            .patch(&format!("/customers/{id}"), &json!({"email": sent}))
            .await
            .expect(200);
        assert_eq!(patched["email"], stored, "{sent:?}");
        assert_eq!(app.get(&format!("/customers/{id}")).await.expect(200)["email"], stored);
    }
    let before = app.state(&[], &[], &[id]).await;
    for bad in [format!("{tag}@example‥org"), format!("{tag}\u{2800}x@example.org")] {
        app.patch(&format!("/customers/{id}"), &json!({"email": bad}))
            .await
            .invalid("email");
    }
    assert_eq!(app.state(&[], &[], &[id]).await, before);
}
