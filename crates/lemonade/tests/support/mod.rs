//! The black-box harness of the API suites: a [`TestApp`] that talks to a shop over HTTP only.
//!
//! [`spawn_app`] starts a real server in-process (loopback, an OS-chosen port, its own temporary
//! data folder): the monolith, or with `LEMONADE_TEST_MODE=cluster` the distributed mode (the
//! coordinator and the three services, each on its own port and database, talking over
//! loopback), and with `LEMONADE_TEST_MODE=cluster-postgres` the same with the databases on
//! the PostgreSQL server at `LEMONADE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432`), four fresh databases per test. With `LEMONADE_TEST_URL` set (the root of a running deployment, e.g.
//! `http://127.0.0.1:8080`) it points at that deployment instead, sending
//! `LEMONADE_TEST_TOKEN` as the bearer token when set. The tests are written for both: they
//! never assume an empty shop, name everything they create uniquely, and assert only about what
//! they created.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lemonade::serve::{ServeArgs, start};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A shop under test, reached over HTTP. Cheap to clone: clones share the server.
#[derive(Clone)]
pub struct TestApp {
    /// `http://host:port/api/v1`
    pub base_url: String,
    /// `http://host:port`
    pub root_url: String,
    pub client: reqwest::Client,
    /// Sent as `Authorization: Bearer <token>` on every request made through the helpers.
    pub token: Option<String>,
    local: Option<Arc<Local>>,
}

/// What an in-process server owns: its data folder and the way to stop it.
/// Fields drop in order: the servers stop before their folder is deleted.
struct Local {
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    /// The monolith's server task, which ends once it has stopped cleanly.
    server: Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
    /// The distributed mode's servers, stopped when dropped.
    cluster: Mutex<Option<lemonade::cluster::InProcess>>,
    /// The base URL of the cluster's PostgreSQL databases, dropped with it.
    postgres: Option<String>,
    dir: tempfile::TempDir,
}

/// Longest a cluster may take to settle (deliver its events, finish its sagas) after the
/// answers a test got.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether in-process servers are the distributed mode (`LEMONADE_TEST_MODE=cluster`).
pub fn is_cluster() -> bool {
    std::env::var("LEMONADE_TEST_MODE").is_ok_and(|m| m == "cluster" || m == "cluster-postgres")
}

/// Whether the cluster's databases go on PostgreSQL (`LEMONADE_TEST_MODE=cluster-postgres`).
pub fn on_postgres() -> bool {
    std::env::var("LEMONADE_TEST_MODE").is_ok_and(|m| m == "cluster-postgres")
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.lock().expect("shutdown lock").take() {
            let _ = tx.send(());
        }
        drop(self.cluster.lock().expect("cluster lock").take());
        if let Some(base) = self.postgres.take()
            && let Err(e) = lemonade_store::postgres::drop_cluster_databases(&base)
        {
            eprintln!("could not drop a test's PostgreSQL databases: {e}");
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("build the HTTP client")
}

/// The deployment the suite runs against, if not an in-process server.
pub fn remote_url() -> Option<String> {
    std::env::var("LEMONADE_TEST_URL")
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
}

pub fn is_remote() -> bool {
    remote_url().is_some()
}

/// A shop to test: the deployment at `LEMONADE_TEST_URL`, or a fresh in-process server.
pub async fn spawn_app() -> TestApp {
    match remote_url() {
        Some(root) => TestApp {
            base_url: format!("{root}/api/v1"),
            root_url: root,
            client: client(),
            token: std::env::var("LEMONADE_TEST_TOKEN").ok().filter(|t| !t.is_empty()),
            local: None,
        },
        None => spawn_local(|_| {}).await.expect("start a test server"),
    }
}

/// A fresh in-process server with settings of its own (a token, say), whatever
/// `LEMONADE_TEST_URL` says. For the few tests that need a particular configuration.
pub async fn spawn_local(configure: impl FnOnce(&mut ServeArgs)) -> anyhow::Result<TestApp> {
    let dir = tempfile::tempdir()?;
    if is_cluster() {
        let postgres = on_postgres().then(|| lemonade_store::postgres::test_base("a"));
        let base = postgres.clone();
        let configure = move |args: &mut ServeArgs| {
            args.database_url = base;
            configure(args);
        };
        let cluster = lemonade::cluster::start_in_process(dir.path(), configure).await?;
        let root = format!("http://{}", cluster.coordinator.addr);
        return Ok(TestApp {
            base_url: format!("{root}/api/v1"),
            root_url: root,
            client: client(),
            token: cluster.coordinator.token.clone(),
            local: Some(Arc::new(Local {
                dir,
                shutdown: Mutex::new(None),
                server: Mutex::new(None),
                cluster: Mutex::new(Some(cluster)),
                postgres,
            })),
        });
    }
    let mut args = ServeArgs::for_tests(dir.path().to_path_buf());
    configure(&mut args);
    let (tx, rx) = oneshot::channel::<()>();
    let running = start(args, async {
        let _ = rx.await;
    })
    .await?;
    let root = format!("http://{}", running.addr);
    Ok(TestApp {
        base_url: format!("{root}/api/v1"),
        root_url: root,
        client: client(),
        token: running.token,
        local: Some(Arc::new(Local {
            dir,
            shutdown: Mutex::new(Some(tx)),
            server: Mutex::new(Some(running.server)),
            cluster: Mutex::new(None),
            postgres: None,
        })),
    })
}

/// A short random suffix that makes names unique across tests and runs.
pub fn unique() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    id[id.len() - 12..].to_owned()
}

/// Percent-encodes a query parameter value.
pub fn enc(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An answer: status, headers and the body as text (parsed on demand).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text))
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text
        );
        self.json()
    }

    /// Asserts a problem+json answer with this status and code, and returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text
        );
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "problem content type, got {:?}: {}",
            self.content_type(),
            self.text
        );
        let p = self.json();
        assert_eq!(p["code"], code, "problem code: {p}");
        assert_eq!(p["status"], status, "problem status member: {p}");
        assert!(p["type"].as_str().is_some_and(|t| !t.is_empty()), "problem type: {p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "problem title: {p}");
        assert!(p["detail"].is_string(), "problem detail: {p}");
        p
    }

    /// Asserts a 422 validation problem naming `field` among its errors.
    #[track_caller]
    pub fn invalid(&self, field: &str) -> Value {
        let p = self.problem(422, "validation_failed");
        let fields = error_fields(&p);
        assert!(
            fields.iter().any(|f| f == field),
            "expected an error on {field:?}, got {fields:?}: {p}"
        );
        p
    }
}

/// The `field`s of a validation problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("a validation problem has errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().expect("errors[].field is a string").to_owned())
        .collect()
}

/// Reads an unsigned integer member.
#[track_caller]
pub fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an unsigned integer, got {v}"))
}

/// Reads a signed integer member.
#[track_caller]
pub fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

/// Reads a string member.
#[track_caller]
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// A product that takes one ingredient, with its stock: the smallest shop that can sell.
#[derive(Clone, Debug)]
pub struct Stand {
    pub ingredient_id: String,
    pub product_id: String,
    pub product_name: String,
    /// How much of the ingredient one unit of the product takes.
    pub per_unit: u64,
    pub price: i64,
}

impl TestApp {
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The data folder of an in-process server.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        self.local.as_ref().map(|l| l.dir.path().to_path_buf())
    }

    /// The base URL of an in-process cluster's PostgreSQL databases.
    pub fn postgres_base(&self) -> Option<String> {
        self.local.as_ref().and_then(|l| l.postgres.clone())
    }

    /// Stops an in-process server the way Ctrl-C does and waits until every process of it has
    /// finished stopping. The data folder stays until the app is dropped.
    pub async fn stop(&self) {
        let local = self.local.as_ref().expect("only an in-process server can be stopped");
        let cluster = local.cluster.lock().expect("cluster lock").take();
        if let Some(mut cluster) = cluster {
            cluster.stop().await.expect("the cluster stops cleanly");
            return;
        }
        if let Some(tx) = local.shutdown.lock().expect("shutdown lock").take() {
            let _ = tx.send(());
        }
        let server = local.server.lock().expect("server lock").take();
        if let Some(server) = server {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }

    /// `base_url` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request to the API with the token, for the cases the helpers do not cover.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let response = rb.send().await.expect("the request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the body arrives");
        Reply { status, headers, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::PATCH, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// POSTs raw bytes with the given content type (none when `None`).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
        let mut rb = self.request(Method::POST, path).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        self.send(rb).await
    }

    /// Sends `request` as raw bytes on a new connection to the server and returns everything
    /// it answers (send `Connection: close`). For what an HTTP client will not send.
    pub async fn raw_http(&self, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = self
            .root_url
            .strip_prefix("http://")
            .expect("raw requests need an http:// server")
            .trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(authority).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        // The server may answer and close before reading all of a refused body.
        let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Every item of a list, page by page with `limit`. Fails if an item is seen twice or a
    /// page is larger than asked.
    pub async fn get_all(&self, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let mut page_path = format!("{path}{sep}limit={limit}");
            if let Some(c) = &cursor {
                page_path.push_str(&format!("&cursor={}", enc(c)));
            }
            let page = self.get(&page_path).await.expect(200);
            let batch = page["items"].as_array().expect("a page has items").clone();
            assert!(batch.len() <= limit as usize, "page larger than limit {limit}: {page}");
            for item in batch {
                let id = item["id"].as_str().expect("items have ids").to_owned();
                assert!(seen.insert(id.clone()), "{id} appears twice walking {path}");
                items.push(item);
            }
            match page["next_cursor"].as_str() {
                Some(c) => {
                    assert!(
                        !page["items"].as_array().unwrap().is_empty(),
                        "a cursor after an empty page"
                    );
                    cursor = Some(c.to_owned());
                }
                None => return items,
            }
        }
        panic!("walking {path} did not end");
    }

    // ---- fixtures ----------------------------------------------------------------------

    /// Creates an ingredient named `prefix` plus a unique suffix.
    pub async fn create_ingredient(&self, prefix: &str, unit: &str, on_hand: u64) -> Value {
        let name = format!("{prefix} {}", unique());
        self.post(
            "/ingredients",
            &json!({"name": name, "unit": unit, "on_hand": on_hand, "reorder_level": 0}),
        )
        .await
        .expect(201)
    }

    /// Creates a product named `prefix` plus a unique suffix; `recipe` is (ingredient id,
    /// quantity per unit).
    pub async fn create_product(&self, prefix: &str, price: i64, recipe: &[(&str, u64)]) -> Value {
        let name = format!("{prefix} {}", unique());
        let recipe: Vec<Value> = recipe
            .iter()
            .map(|(id, q)| json!({"ingredient_id": id, "quantity": q}))
            .collect();
        self.post("/products", &json!({"name": name, "price": price, "recipe": recipe}))
            .await
            .expect(201)
    }

    /// Creates a customer named `prefix` plus a unique suffix.
    pub async fn create_customer(&self, prefix: &str) -> Value {
        let name = format!("{prefix} {}", unique());
        self.post("/customers", &json!({"name": name})).await.expect(201)
    }

    /// An ingredient with stock for exactly `units` of a new product that takes `per_unit`
    /// of it and costs `price`.
    pub async fn stand_with(&self, units: u64, per_unit: u64, price: i64) -> Stand {
        let ingredient = self.create_ingredient("Lemons", "piece", units * per_unit).await;
        let ingredient_id = s(&ingredient["id"]).to_owned();
        let product = self
            .create_product("Lemonade", price, &[(&ingredient_id, per_unit)])
            .await;
        Stand {
            ingredient_id,
            product_id: s(&product["id"]).to_owned(),
            product_name: s(&product["name"]).to_owned(),
            per_unit,
            price,
        }
    }

    /// A lemonade at 350 taking 2 lemons, with lemons for exactly `units` of it.
    pub async fn stand(&self, units: u64) -> Stand {
        self.stand_with(units, 2, 350).await
    }

    /// The body of `POST /orders`.
    pub fn order_body(customer_id: Option<&str>, lines: &[(&str, i64)]) -> Value {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(p, q)| json!({"product_id": p, "quantity": q}))
            .collect();
        match customer_id {
            Some(c) => json!({"customer_id": c, "lines": lines}),
            None => json!({"lines": lines}),
        }
    }

    /// Places an order, with an `Idempotency-Key` when given.
    pub async fn place_order(&self, customer_id: Option<&str>, lines: &[(&str, i64)], key: Option<&str>) -> Reply {
        self.place_order_body(&Self::order_body(customer_id, lines), key).await
    }

    pub async fn place_order_body(&self, body: &Value, key: Option<&str>) -> Reply {
        let mut rb = self.request(Method::POST, "/orders").json(body);
        if let Some(k) = key {
            rb = rb.header("idempotency-key", k);
        }
        self.send(rb).await
    }

    /// Places an order that must succeed; returns it confirmed.
    pub async fn sell(&self, customer_id: Option<&str>, lines: &[(&str, i64)]) -> Value {
        let reply = self.place_order(customer_id, lines, None).await;
        let order = self.settle(&reply).await;
        assert_eq!(order["status"], "confirmed", "{order}");
        order
    }

    /// The order a 201 or 202 answer is about, once it is no longer pending: a deployment
    /// that places orders as a saga may answer 202 and confirm (or fail) the order later.
    pub async fn settle(&self, reply: &Reply) -> Value {
        let order = match reply.status.as_u16() {
            201 | 202 => reply.json(),
            _ => panic!("expected 201 or 202, got {}: {}", reply.status, reply.text),
        };
        if order["status"] != "pending" {
            return order;
        }
        let path = format!("/orders/{}", s(&order["id"]));
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.get(&path).await.expect(200);
            if now["status"] != "pending" {
                return now;
            }
        }
        panic!("order {} is still pending after 30 s", order["id"]);
    }

    pub async fn ingredient(&self, id: &str) -> Value {
        self.get(&format!("/ingredients/{id}")).await.expect(200)
    }

    pub async fn on_hand(&self, id: &str) -> u64 {
        u(&self.ingredient(id).await["on_hand"])
    }

    pub async fn product(&self, id: &str) -> Value {
        self.get(&format!("/products/{id}")).await.expect(200)
    }

    pub async fn customer(&self, id: &str) -> Value {
        self.get(&format!("/customers/{id}")).await.expect(200)
    }

    pub async fn order(&self, id: &str) -> Value {
        self.get(&format!("/orders/{id}")).await.expect(200)
    }

    /// The whole ledger of one ingredient, newest first.
    pub async fn moves_of(&self, ingredient_id: &str) -> Vec<Value> {
        self.get_all(&format!("/stock/moves?ingredient_id={ingredient_id}"), 200)
            .await
    }

    /// Every order of one customer, newest first.
    pub async fn orders_of(&self, customer_id: &str) -> Vec<Value> {
        self.get_all(&format!("/customers/{customer_id}/orders"), 200).await
    }

    /// What a refused request must leave as it was: these ingredients with their ledgers,
    /// these customers with their orders, these products, and (in-process, where the shop is
    /// this test's alone) the number of orders in the whole shop.
    pub async fn state(&self, ingredients: &[&str], products: &[&str], customers: &[&str]) -> Value {
        let mut out = serde_json::Map::new();
        for id in ingredients {
            out.insert(
                format!("ingredient {id}"),
                json!({"ingredient": self.ingredient(id).await, "moves": self.moves_of(id).await}),
            );
        }
        for id in products {
            out.insert(format!("product {id}"), self.product(id).await);
        }
        for id in customers {
            out.insert(
                format!("customer {id}"),
                json!({"customer": self.customer(id).await, "orders": self.orders_of(id).await}),
            );
        }
        if self.is_local() {
            out.insert("orders".into(), json!(self.get_all("/orders", 200).await.len()));
            out.insert(
                "ingredients".into(),
                json!(self.get_all("/ingredients", 200).await.len()),
            );
            out.insert("products".into(), json!(self.get_all("/products", 200).await.len()));
            out.insert("customers".into(), json!(self.get_all("/customers", 200).await.len()));
        }
        Value::Object(out)
    }

    /// Audits the database of an in-process server (`lemonade check`); a no-op against a
    /// deployment, whose database the suite cannot see. A cluster is audited across its
    /// databases once it has settled: events delivered and sagas finished take a moment after
    /// the answers, so it is audited again until clean, for at most [`SETTLE_TIMEOUT`].
    pub async fn assert_audit_clean(&self) {
        let Some(dir) = self.data_dir() else { return };
        let postgres = self.local.as_ref().and_then(|l| l.postgres.clone());
        let started = std::time::Instant::now();
        loop {
            let (dir, postgres) = (dir.clone(), postgres.clone());
            let report = tokio::task::spawn_blocking(move || {
                if let Some(base) = &postgres {
                    lemonade_store::audit::audit_postgres_cluster(base)
                } else {
                    lemonade_store::audit::audit_folder(&dir, &|_| Ok(()))
                }
            })
            .await
            .expect("the audit ran")
            .expect("the database can be audited");
            if report.is_clean() || !is_cluster() || started.elapsed() > SETTLE_TIMEOUT {
                assert!(report.is_clean(), "the audit found violations:\n{}", report.to_text());
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
