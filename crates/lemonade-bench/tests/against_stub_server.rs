//! `run` against a tiny in-process hyper server that plays the Lemonade API: a product list
//! of two pages, restock, and orders that it answers (or refuses, delays, drops) as told.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lemonade_bench::{BenchArgs, run};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the server does with one order attempt.
#[derive(Clone, Debug)]
enum Action {
    Created,
    /// Close the connection without answering.
    Drop,
    /// Answer 201, but only after this long.
    Slow(Duration),
    Answer(u16, &'static str),
}

type Script = dyn Fn(usize) -> Action + Send + Sync;

#[derive(Default)]
struct Seen {
    /// Idempotency key of every order attempt, in arrival order.
    order_keys: Vec<String>,
    /// Keys of orders answered 201.
    created: HashSet<String>,
    order_bodies: Vec<Value>,
    /// (ingredient, body, idempotency key) of every restock.
    restocks: Vec<(String, Value, Option<String>)>,
    /// `Authorization` of every request.
    authorizations: Vec<Option<String>>,
    product_pages: usize,
}

struct Stub {
    seen: Mutex<Seen>,
    script: Box<Script>,
    products: Vec<Value>,
}

fn product(id: &str, name: &str, active: bool, recipe: &[(&str, u64)]) -> Value {
    let recipe: Vec<Value> = recipe
        .iter()
        .map(|(i, q)| json!({"ingredient_id": i, "quantity": q}))
        .collect();
    json!({"id": id, "name": name, "price": 250, "recipe": recipe, "active": active, "can_make": 0})
}

fn default_products() -> Vec<Value> {
    vec![
        product("p-old", "Old Lemonade", false, &[("lemon", 1)]),
        product("p-lemonade", "Lemonade", true, &[("lemon", 2), ("sugar", 3)]),
        product("p-big", "Big Batch", true, &[("lemon", 300_000_000), ("water", 7)]),
    ]
}

fn json_response(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn handle(stub: Arc<Stub>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let key = header("idempotency-key");
    stub.seen.lock().unwrap().authorizations.push(header("authorization"));
    let body = req.into_body().collect().await.unwrap().to_bytes();

    match (method.as_str(), path.as_str()) {
        ("GET", "/api/v1/products") => {
            // Two pages: the first holds only the inactive product, so picking needs the cursor.
            stub.seen.lock().unwrap().product_pages += 1;
            if query.is_empty() {
                Ok(json_response(
                    200,
                    json!({"items": [stub.products[0]], "next_cursor": "page/2"}),
                ))
            } else {
                assert_eq!(query, "cursor=page%2F2", "the cursor is sent back percent-encoded");
                Ok(json_response(
                    200,
                    json!({"items": stub.products[1..], "next_cursor": null}),
                ))
            }
        }
        ("POST", p) if p.starts_with("/api/v1/ingredients/") && p.ends_with("/restock") => {
            let ingredient = p["/api/v1/ingredients/".len()..p.len() - "/restock".len()].to_owned();
            let body: Value = serde_json::from_slice(&body).unwrap();
            stub.seen.lock().unwrap().restocks.push((ingredient, body, key));
            Ok(json_response(201, json!({"ok": true})))
        }
        ("POST", "/api/v1/orders") => {
            let key = key.expect("every order carries an Idempotency-Key");
            let attempt = {
                let mut seen = stub.seen.lock().unwrap();
                seen.order_keys.push(key.clone());
                seen.order_bodies.push(serde_json::from_slice(&body).unwrap());
                seen.order_keys.len() - 1
            };
            let created = |stub: &Stub| {
                stub.seen.lock().unwrap().created.insert(key.clone());
                Ok(json_response(
                    201,
                    json!({"id": format!("o-{attempt}"), "status": "placed"}),
                ))
            };
            match (stub.script)(attempt) {
                Action::Created => created(&stub),
                // An error from the service makes hyper close the connection unanswered.
                Action::Drop => Err(std::io::Error::other("dropped on purpose")),
                Action::Slow(delay) => {
                    tokio::time::sleep(delay).await;
                    created(&stub)
                }
                Action::Answer(status, body) => Ok(Response::builder()
                    .status(status)
                    .header("content-type", "application/problem+json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap()),
            }
        }
        _ => Ok(json_response(404, json!({"code": "not_found"}))),
    }
}

async fn start(script: impl Fn(usize) -> Action + Send + Sync + 'static) -> (SocketAddr, Arc<Stub>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stub = Arc::new(Stub {
        seen: Mutex::new(Seen::default()),
        script: Box::new(script),
        products: default_products(),
    });
    let server_stub = Arc::clone(&stub);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let stub = Arc::clone(&server_stub);
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(Arc::clone(&stub), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, stub)
}

fn args(addr: SocketAddr, orders: u64, concurrency: u32) -> BenchArgs {
    BenchArgs {
        url: format!("http://{addr}"),
        orders,
        concurrency,
        json: true,
        timeout_ms: 2_000,
        ..BenchArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_places_exactly_n_orders_with_distinct_keys_and_retries_a_dropped_connection_with_the_same_key() {
    let (addr, stub) = start(|attempt| if attempt == 5 { Action::Drop } else { Action::Created }).await;

    let report = run(args(addr, 200, 8)).await.unwrap();

    let seen = stub.seen.lock().unwrap();
    assert_eq!(seen.order_keys.len(), 201, "200 orders plus one retry");
    let distinct: HashSet<&String> = seen.order_keys.iter().collect();
    assert_eq!(distinct.len(), 200, "one key per order");
    assert_eq!(seen.created.len(), 200, "every order answered 201 exactly once");
    let dropped_key = &seen.order_keys[5];
    let uses = seen.order_keys.iter().filter(|k| *k == dropped_key).count();
    assert_eq!(uses, 2, "the dropped attempt is retried with the same key");
    assert!(seen.created.contains(dropped_key));
    for key in &seen.order_keys {
        assert!(uuid::Uuid::parse_str(key).is_ok(), "{key} is a UUID");
    }

    // The first active product (found on the second page) is the one ordered.
    assert_eq!(seen.product_pages, 2);
    for body in &seen.order_bodies {
        assert_eq!(body, &json!({"lines": [{"product_id": "p-lemonade", "quantity": 1}]}));
    }

    assert_eq!(report.orders_requested, 200);
    assert_eq!(report.ok, 200);
    assert_eq!(report.errors, 0);
    assert!(report.errors_by_code.is_empty(), "{:?}", report.errors_by_code);
    assert_eq!(report.retries, 1);
    assert_eq!(report.concurrency, 8);
    assert_eq!(report.product_id, "p-lemonade");
    assert_eq!(report.url, format!("http://{addr}"));
    assert!(report.orders_per_s > 0.0);
    assert!(report.latency_us.p50 > 0 && report.latency_us.p50 <= report.latency_us.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restock_covers_the_whole_run_in_chunks_of_at_most_a_billion() {
    let (addr, stub) = start(|_| Action::Created).await;

    let report = run(BenchArgs {
        product: Some("Big Batch".into()),
        ..args(addr, 8, 3)
    })
    .await
    .unwrap();
    assert_eq!(report.ok, 8);
    assert_eq!(report.product_name, "Big Batch");

    let seen = stub.seen.lock().unwrap();
    let mut totals: HashMap<&str, u64> = HashMap::new();
    for (ingredient, body, key) in &seen.restocks {
        let quantity = body["quantity"].as_u64().unwrap();
        assert!((1..=1_000_000_000).contains(&quantity), "{body}");
        assert_eq!(body["note"], "bench");
        assert_eq!(
            key, &None,
            "only placing an order takes an idempotency key: the shop refuses one elsewhere"
        );
        *totals.entry(ingredient).or_default() += quantity;
    }
    assert_eq!(totals, HashMap::from([("lemon", 2_400_000_000), ("water", 56)]));
    assert_eq!(seen.restocks.len(), 4, "2.4e9 of lemon takes three restocks, water one");
    assert!(seen.order_bodies.iter().all(|b| b["lines"][0]["product_id"] == "p-big"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_sent_as_bearer_authorization_on_every_request() {
    let (addr, stub) = start(|_| Action::Created).await;
    run(BenchArgs {
        token: Some("s3cret".into()),
        ..args(addr, 20, 4)
    })
    .await
    .unwrap();
    let seen = stub.seen.lock().unwrap();
    // 2 product pages + 2 restocks + 20 orders.
    assert_eq!(seen.authorizations.len(), 24);
    assert!(
        seen.authorizations
            .iter()
            .all(|a| a.as_deref() == Some("Bearer s3cret"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_times_out_is_retried_with_the_same_key() {
    let (addr, stub) = start(|attempt| {
        if attempt == 0 {
            Action::Slow(Duration::from_secs(3))
        } else {
            Action::Created
        }
    })
    .await;
    let report = run(BenchArgs {
        timeout_ms: 500,
        ..args(addr, 3, 1)
    })
    .await
    .unwrap();
    assert_eq!(report.ok, 3);
    assert_eq!(report.retries, 1);
    let seen = stub.seen.lock().unwrap();
    assert_eq!(seen.order_keys.len(), 4);
    assert_eq!(seen.order_keys[0], seen.order_keys[1]);
    assert!(report.latency_us.max >= 500_000, "latency runs from the first attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_never_answered_is_counted_as_timeout_after_three_retries() {
    let (addr, stub) = start(|attempt| {
        if attempt < 4 {
            Action::Slow(Duration::from_secs(5))
        } else {
            Action::Created
        }
    })
    .await;
    let report = run(BenchArgs {
        timeout_ms: 250,
        ..args(addr, 2, 1)
    })
    .await
    .unwrap();
    assert_eq!(report.ok, 1);
    assert_eq!(report.errors_by_code.get("timeout"), Some(&1));
    assert_eq!(report.retries, 3);
    let seen = stub.seen.lock().unwrap();
    assert_eq!(
        seen.order_keys.len(),
        5,
        "1 + 3 attempts of the first order, then the second"
    );
    assert!(seen.order_keys[..4].iter().all(|k| *k == seen.order_keys[0]));
    assert_ne!(seen.order_keys[4], seen.order_keys[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_orders_are_counted_by_problem_code_and_not_retried() {
    let (addr, stub) = start(|attempt| match attempt % 4 {
        0 => Action::Created,
        1 => Action::Answer(
            409,
            r#"{"type":"about:blank","title":"Not enough stock","status":409,"code":"insufficient_stock"}"#,
        ),
        2 => Action::Answer(503, ""),
        _ => Action::Answer(200, "not json at all"),
    })
    .await;
    let report = run(args(addr, 40, 1)).await.unwrap();
    assert_eq!(report.ok, 10);
    assert_eq!(report.errors, 30);
    assert_eq!(report.retries, 0);
    assert_eq!(
        report.errors_by_code.clone().into_iter().collect::<Vec<_>>(),
        vec![
            ("http_200".to_owned(), 10),
            ("http_503".to_owned(), 10),
            ("insufficient_stock".to_owned(), 10)
        ]
    );
    assert_eq!(stub.seen.lock().unwrap().order_keys.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_product_stops_the_run_before_any_order() {
    let (addr, stub) = start(|_| Action::Created).await;
    let err = run(BenchArgs {
        product: Some("Espresso".into()),
        ..args(addr, 5, 1)
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("Espresso"), "{err:#}");
    let seen = stub.seen.lock().unwrap();
    assert!(seen.order_keys.is_empty() && seen.restocks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_an_error_not_a_report() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = run(args(addr, 5, 1)).await.unwrap_err();
    assert!(format!("{err:#}").contains("no server reachable"), "{err:#}");
}
