//! Calls made at once to one service travel in batches, and each is carried out exactly as if
//! it had come alone: its own answer, its step key honoured, the service's limits counting it.
//! Against a real stock service on loopback, with its own SQLite database.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lemonade_cluster::client::CallError;
use lemonade_cluster::rpc::{BATCH_CALLS_HEADER, BATCH_PATH, CreateIngredient, GetIngredient};
use lemonade_cluster::transport::HttpTransport;
use lemonade_cluster::{CallPolicy, Clients, Node, Protection, Service};
use lemonade_domain::ShopError;
use lemonade_domain::ids::IngredientId;
use lemonade_domain::stock::NewIngredient;
use lemonade_domain::values::Unit;
use lemonade_store::migrations::Role;
use lemonade_store::system::{SystemClock, UuidV7Ids};
use lemonade_store::{Database, WriterConfig};
use tokio::time::Instant;

const TOKEN: &str = "a-cluster-token-for-tests";

struct Stock {
    addr: SocketAddr,
    /// HTTP requests the service received (a batch is one).
    requests: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

async fn stock(protection: Protection) -> Stock {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_role(&dir.path().join("stock.db"), Role::Stock, WriterConfig::default()).unwrap();
    let node = Node::new(db, Arc::new(SystemClock), Arc::new(UuidV7Ids));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let app = lemonade_cluster::stock::router(node, TOKEN, protection).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counted.fetch_add(1, Ordering::Relaxed);
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stock {
        addr,
        requests,
        _dir: dir,
    }
}

fn clients(addr: SocketAddr) -> Arc<Clients> {
    let transport = Arc::new(HttpTransport::new(HashMap::from([(Service::Stock, addr)]), TOKEN));
    Arc::new(Clients::new(transport, CallPolicy::default(), 7))
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn lemons(name: &str) -> CreateIngredient {
    CreateIngredient {
        new: NewIngredient {
            name: name.into(),
            unit: Unit::G,
            on_hand: 10,
            reorder_level: 0,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_at_once_share_requests_and_each_gets_its_own_answer() {
    let stock = stock(Protection::default()).await;
    let clients = clients(stock.addr);
    let mut made = tokio::task::JoinSet::new();
    for i in 0..200 {
        let clients = Arc::clone(&clients);
        made.spawn(async move {
            let key = format!("create-{i}");
            let created = clients
                .call(&lemons(&format!("Lemons {i}")), Some(key), deadline())
                .await;
            (i, created)
        });
    }
    let mut ids = HashSet::new();
    while let Some(done) = made.join_next().await {
        let (i, created) = done.unwrap();
        let ingredient = created.unwrap_or_else(|e| panic!("call {i}: {e:?}"));
        assert_eq!(ingredient.name, format!("Lemons {i}"), "call {i} got its own answer");
        ids.insert(ingredient.id);
    }
    assert_eq!(ids.len(), 200);
    let sent = stock.requests.load(Ordering::Relaxed);
    assert!(sent < 200, "200 calls at once went out in {sent} requests");

    // A read in a batch answers a missing ingredient with the refusal it would get alone.
    let mut reads = tokio::task::JoinSet::new();
    for (n, id) in ids.iter().take(20).cloned().enumerate() {
        let clients = Arc::clone(&clients);
        reads.spawn(async move {
            let id = if n % 2 == 0 {
                id
            } else {
                IngredientId::parse("no-such-ingredient").unwrap()
            };
            (n, clients.call(&GetIngredient { id }, None, deadline()).await)
        });
    }
    while let Some(done) = reads.join_next().await {
        match done.unwrap() {
            (n, Ok(_)) => assert!(n % 2 == 0),
            (n, Err(CallError::Refused(ShopError::NotFound { .. }))) => assert!(n % 2 == 1),
            (n, other) => panic!("read {n}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_step_key_sent_many_times_at_once_acts_once() {
    let stock = stock(Protection::default()).await;
    let clients = clients(stock.addr);
    let mut made = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let clients = Arc::clone(&clients);
        made.spawn(async move {
            clients
                .call(&lemons("Lemons"), Some("the-same-step".into()), deadline())
                .await
                .unwrap()
                .id
        });
    }
    let mut ids = HashSet::new();
    while let Some(id) = made.join_next().await {
        ids.insert(id.unwrap());
    }
    assert_eq!(ids.len(), 1, "every retry of the step got the first result");
}

async fn raw_batch(addr: SocketAddr, calls_header: &str, body: &str) -> (u16, String) {
    let reply = reqwest::Client::new()
        .post(format!("http://{addr}{BATCH_PATH}"))
        .bearer_auth(TOKEN)
        .header(BATCH_CALLS_HEADER, calls_header)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

fn create_call(name: &str, key: &str) -> String {
    format!(
        r#"{{"path":"/internal/v1/ingredients/create","step_key":"{key}","body":{{"new":{{"name":"{name}","unit":"g","on_hand":1,"reorder_level":0}}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_cannot_be_read_runs_none_of_its_calls() {
    let stock = stock(Protection::default()).await;
    let two = format!("[{},{}]", create_call("Sugar", "k1"), create_call("Salt", "k2"));
    // The header says three calls, the body holds two.
    let (status, _) = raw_batch(stock.addr, "3", &two).await;
    assert_eq!(status, 422);
    let (status, _) = raw_batch(stock.addr, "2", "[not json").await;
    assert_eq!(status, 422);
    let clients = clients(stock.addr);
    let page = clients
        .call(
            &lemonade_cluster::rpc::ListIngredients {
                page: lemonade_domain::ports::PageRequest::first(50),
            },
            None,
            deadline(),
        )
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing was created: {:?}", page.items);

    // An unknown path fails only its own call.
    let mixed = format!(
        r#"[{},{{"path":"/internal/v1/nowhere","body":{{}}}}]"#,
        create_call("Sugar", "k1")
    );
    let (status, text) = raw_batch(stock.addr, "2", &mixed).await;
    assert_eq!(status, 200, "{text}");
    let answers: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answers[0]["status"], 200, "{text}");
    assert_eq!(answers[0]["body"]["name"], "Sugar");
    assert_eq!(answers[1]["status"], 404, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_counts_each_call_of_a_batch() {
    let stock = stock(Protection {
        rate_per_s: 1,
        burst: 3,
        ..Protection::default()
    })
    .await;
    let calls = |n: usize| {
        let all: Vec<String> = (0..n)
            .map(|i| create_call(&format!("Spice {i}"), &format!("s{n}-{i}")))
            .collect();
        format!("[{}]", all.join(","))
    };
    // Two fit the burst of three; the next two find one call's room left.
    let (status, text) = raw_batch(stock.addr, "2", &calls(2)).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = raw_batch(stock.addr, "2", &calls(2)).await;
    assert_eq!(status, 429);
    // A batch larger than the whole burst takes the whole burst, once it is there again.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let (status, text) = raw_batch(stock.addr, "5", &calls(5)).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = raw_batch(stock.addr, "1", &calls(1)).await;
    assert_eq!(status, 429);
}
