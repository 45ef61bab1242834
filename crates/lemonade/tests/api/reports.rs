//! Sales reports by day and by product, as JSON and CSV, in the shop's time zone.

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime};

use crate::support::{TestApp, i, s, spawn_app, u, unique};

/// The local date of an order's `created_at` at `offset_minutes` east of UTC.
fn local_date(order: &Value, offset_minutes: i64) -> Date {
    let at = OffsetDateTime::parse(s(&order["created_at"]), &Rfc3339).expect("created_at is RFC 3339");
    (at + Duration::minutes(offset_minutes)).date()
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Two products sold in three orders, one more order cancelled, and a product sold only in a
/// cancelled order. Returns (the products, the orders kept) .
struct Sales {
    p1: Value,
    p2: Value,
    p3: Value,
    kept: Vec<Value>,
    from: Date,
    to: Date,
}

async fn some_sales(app: &TestApp) -> Sales {
    let p1 = app.create_product("Lemonade", 300, &[]).await;
    let p2 = app.create_product("Iced tea", 500, &[]).await;
    let p3 = app.create_product("Slushie", 700, &[]).await;
    let (a, b, c) = (s(&p1["id"]), s(&p2["id"]), s(&p3["id"]));
    let kept = vec![app.sell(None, &[(a, 2)]).await, app.sell(None, &[(a, 1), (b, 1)]).await];
    for lines in [[(b, 2)], [(c, 1)]] {
        let cancelled = app.sell(None, &lines).await;
        app.post(&format!("/orders/{}/cancel", s(&cancelled["id"])), &json!({}))
            .await
            .expect(200);
    }
    let dates: Vec<Date> = kept.iter().map(|o| local_date(o, 0)).collect();
    Sales {
        from: *dates.iter().min().unwrap(),
        to: *dates.iter().max().unwrap(),
        p1,
        p2,
        p3,
        kept,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_by_product_counts_confirmed_orders_only_best_sellers_first() {
    let app = spawn_app().await;
    let sales = some_sales(&app).await;
    let (from, to) = (ymd(sales.from), ymd(sales.to));
    let report = app
        .get(&format!("/reports/sales?from={from}&to={to}&by=product"))
        .await
        .expect(200);
    assert_eq!(report["from"], from);
    assert_eq!(report["to"], to);
    assert_eq!(report["by"], "product");
    assert!(report.get("days").is_none() || report["days"].is_null(), "{report}");
    let rows = report["products"].as_array().expect("products");
    let row = |p: &Value| rows.iter().position(|r| r["product_id"] == p["id"]);
    let (r1, r2) = (row(&sales.p1).expect("p1 sold"), row(&sales.p2).expect("p2 sold"));
    assert_eq!(
        rows[r1],
        json!({"product_id": sales.p1["id"], "name": sales.p1["name"], "orders": 2, "quantity": 3, "revenue": 900})
    );
    assert_eq!(
        rows[r2],
        json!({"product_id": sales.p2["id"], "name": sales.p2["name"], "orders": 1, "quantity": 1, "revenue": 500}),
        "the cancelled order of two does not count"
    );
    assert!(r1 < r2, "ranked by revenue");
    assert!(
        row(&sales.p3).is_none(),
        "a product sold only in a cancelled order is not in the report"
    );
    let revenues: Vec<i64> = rows.iter().map(|r| i(&r["revenue"])).collect();
    assert!(revenues.windows(2).all(|w| w[0] >= w[1]), "{revenues:?}");
    if app.is_local() {
        assert_eq!((u(&report["orders"]), i(&report["revenue"])), (2, 1400));
    } else {
        assert!(u(&report["orders"]) >= 2 && i(&report["revenue"]) >= 1400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_by_day_lists_every_day_of_the_range_and_adds_up() {
    let app = spawn_app().await;
    let sales = some_sales(&app).await;
    let from = sales.from - Duration::days(1);
    let to = sales.to + Duration::days(1);
    let report = app
        .get(&format!("/reports/sales?from={}&to={}", ymd(from), ymd(to)))
        .await
        .expect(200);
    assert_eq!(report["by"], "day", "by day is the default");
    assert!(
        report.get("products").is_none() || report["products"].is_null(),
        "{report}"
    );
    let days = report["days"].as_array().expect("days");
    let expected: Vec<String> = (0..=(to - from).whole_days())
        .map(|d| ymd(from + Duration::days(d)))
        .collect();
    let dates: Vec<&str> = days.iter().map(|d| s(&d["date"])).collect();
    assert_eq!(dates, expected, "every day, oldest first");
    assert_eq!(days.iter().map(|d| u(&d["orders"])).sum::<u64>(), u(&report["orders"]));
    assert_eq!(
        days.iter().map(|d| i(&d["revenue"])).sum::<i64>(),
        i(&report["revenue"])
    );
    let ours: u64 = days
        .iter()
        .filter(|d| d["date"] == ymd(sales.from) || d["date"] == ymd(sales.to))
        .map(|d| u(&d["orders"]))
        .sum();
    assert!(ours >= 2);
    if app.is_local() {
        assert_eq!(days.first().unwrap()["orders"], 0, "the day before sold nothing");
        assert_eq!((u(&report["orders"]), i(&report["revenue"])), (2, 1400));
        let items: u64 = days.iter().map(|d| u(&d["items"])).sum();
        assert_eq!(items, 4);
    }
    let _ = &sales.kept;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_follow_the_shops_utc_offset() {
    let app = spawn_app().await;
    let product = app.create_product("Midnight snack", 250, &[]).await;
    let order = app.sell(None, &[(s(&product["id"]), 1)]).await;
    let sold_in = |report: &Value| {
        report["products"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["product_id"] == product["id"])
    };
    for offset in [-840i64, -330, 0, 60, 840] {
        let day = ymd(local_date(&order, offset));
        let report = app
            .get(&format!(
                "/reports/sales?from={day}&to={day}&by=product&tz_offset_minutes={offset}"
            ))
            .await
            .expect(200);
        assert!(sold_in(&report), "offset {offset}: sold on {day}: {report}");
    }
    // 28 hours apart: UTC+14's date of the sale is never UTC-14's.
    let east = ymd(local_date(&order, 840));
    let report = app
        .get(&format!(
            "/reports/sales?from={east}&to={east}&by=product&tz_offset_minutes=-840"
        ))
        .await
        .expect(200);
    assert!(!sold_in(&report), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_download_as_csv_by_accept_header_or_format() {
    let app = spawn_app().await;
    let sales = some_sales(&app).await;
    let (from, to) = (ymd(sales.from), ymd(sales.to));

    let reply = app
        .get(&format!("/reports/sales?from={from}&to={to}&by=product&format=csv"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.content_type().starts_with("text/csv"), "{}", reply.content_type());
    let disposition = reply.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.contains("attachment") && disposition.contains(".csv"),
        "{disposition}"
    );
    let lines: Vec<&str> = reply.text.lines().collect();
    assert_eq!(lines[0], "product_id,product,orders,quantity,revenue_minor_units");
    let row1 = format!("{},{},2,3,900", s(&sales.p1["id"]), s(&sales.p1["name"]));
    let row2 = format!("{},{},1,1,500", s(&sales.p2["id"]), s(&sales.p2["name"]));
    let (at1, at2) = (
        lines.iter().position(|l| *l == row1).expect(&row1),
        lines.iter().position(|l| *l == row2).expect(&row2),
    );
    assert!(at1 < at2);
    assert!(!reply.text.contains(s(&sales.p3["id"])));

    let reply = app
        .send(
            app.request(
                reqwest::Method::GET,
                &format!("/reports/sales?from={from}&to={to}&by=day"),
            )
            .header("accept", "text/csv"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.content_type().starts_with("text/csv"));
    let lines: Vec<&str> = reply.text.lines().collect();
    assert_eq!(lines[0], "date,orders,items,revenue_minor_units");
    let json = app
        .get(&format!("/reports/sales?from={from}&to={to}&by=day"))
        .await
        .expect(200);
    let expected: Vec<String> = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{},{},{},{}", s(&d["date"]), d["orders"], d["items"], d["revenue"]))
        .collect();
    assert_eq!(lines[1..], expected, "the CSV says what the JSON says");

    // `format=json` wins over the Accept header.
    let reply = app
        .send(
            app.request(
                reqwest::Method::GET,
                &format!("/reports/sales?from={from}&to={to}&format=json"),
            )
            .header("accept", "text/csv"),
        )
        .await;
    assert!(reply.content_type().starts_with("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_product_is_reported_under_the_name_of_its_latest_sale_in_json_and_csv() {
    let app = spawn_app().await;
    let tag = unique();
    let (old, new) = (format!("Zest T {tag}"), format!("Apple T {tag}"));
    let product = app
        .post("/products", &json!({"name": old, "price": 100, "recipe": []}))
        .await
        .expect(201);
    let id = s(&product["id"]).to_owned();
    let first = app.sell(None, &[(&id, 1)]).await;
    app.patch(&format!("/products/{id}"), &json!({"name": new}))
        .await
        .expect(200);
    let second = app.sell(None, &[(&id, 1)]).await;
    let (from, to) = (ymd(local_date(&first, 0)), ymd(local_date(&second, 0)));

    let report = app
        .get(&format!("/reports/sales?from={from}&to={to}&by=product"))
        .await
        .expect(200);
    let row = report["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    assert_eq!(
        row,
        json!({"product_id": id, "name": new, "orders": 2, "quantity": 2, "revenue": 200}),
        "not the alphabetically largest of its past names"
    );
    let csv = app
        .get(&format!("/reports/sales?from={from}&to={to}&by=product&format=csv"))
        .await
        .text;
    assert!(csv.lines().any(|l| l == format!("{id},{new},2,2,200")), "{csv}");
    assert!(!csv.contains(&old), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_are_quoted_and_never_read_as_formulas() {
    let app = spawn_app().await;
    let tag = unique();
    let formula = app
        .post(
            "/products",
            &json!({"name": format!("=HYPERLINK(1) {tag}"), "price": 100, "recipe": []}),
        )
        .await
        .expect(201);
    let comma = app
        .post(
            "/products",
            &json!({"name": format!("Tea, \"iced\" {tag}"), "price": 90, "recipe": []}),
        )
        .await
        .expect(201);
    let o = app.sell(None, &[(s(&formula["id"]), 1), (s(&comma["id"]), 1)]).await;
    let day = ymd(local_date(&o, 0));
    let csv = app
        .get(&format!("/reports/sales?from={day}&to={day}&by=product&format=csv"))
        .await
        .text;
    assert!(
        csv.lines()
            .any(|l| l == format!("{},'=HYPERLINK(1) {tag},1,1,100", s(&formula["id"]))),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l == format!("{},\"Tea, \"\"iced\"\" {tag}\",1,1,90", s(&comma["id"]))),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_report_requests_are_refused_by_field() {
    let app = spawn_app().await;
    let cases = [
        ("from=yesterday&to=2026-01-01", "from"),
        ("from=2026-01-01&to=2026-13-01", "to"),
        ("from=2026-01-02&to=2026-01-01", "to"),
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("from=2026-01-01&to=2026-01-01&by=hour", "by"),
        (
            "from=2026-01-01&to=2026-01-01&tz_offset_minutes=841",
            "tz_offset_minutes",
        ),
        (
            "from=2026-01-01&to=2026-01-01&tz_offset_minutes=-841",
            "tz_offset_minutes",
        ),
        ("from=2026-01-01&to=2026-01-01&format=xml", "format"),
        ("from=2026-02-29&to=2026-03-01", "from"),
    ];
    for (query, field) in cases {
        app.get(&format!("/reports/sales?{query}")).await.invalid(field);
    }
    for query in [
        "to=2026-01-01",
        "from=2026-01-01",
        "from=2026-01-01&to=2026-01-01&tz_offset_minutes=1.5",
        "from=2026-01-01&to=2026-01-01&tz_offset_minutes=east",
    ] {
        app.get(&format!("/reports/sales?{query}"))
            .await
            .problem(422, "validation_failed");
    }
    // 366 days is the longest range.
    let year = app
        .get("/reports/sales?from=2025-01-01&to=2026-01-01")
        .await
        .expect(200);
    assert_eq!(year["days"].as_array().unwrap().len(), 366);
    let leap = app
        .get("/reports/sales?from=2028-01-01&to=2028-12-31")
        .await
        .expect(200);
    assert_eq!(leap["days"].as_array().unwrap().len(), 366);
}

/// Dates are `YYYY-MM-DD`: a signed year is not one, and was answered with dates like
/// `-001-01-01` that are not either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_with_a_signed_year_are_refused() {
    let app = spawn_app().await;
    app.get("/reports/sales?from=-0001-01-01&to=-0001-01-02")
        .await
        .invalid("from");
    app.get("/reports/sales?from=2026-01-01&to=%2B2026-01-02")
        .await
        .invalid("to");
}
