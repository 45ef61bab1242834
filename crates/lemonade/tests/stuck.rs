//! Ways a process could get stuck for good, against the real binary.
//!
//! Clients that hang up: thousands of requests given up 0.2 to 5 ms after they were sent
//! (the request's future is dropped wherever it was: waiting for a read connection, in a read
//! on a blocking thread, in a call to another service), then every process must still answer
//! normal requests, report itself healthy, and deliver its events. Run against the monolith,
//! and against the four processes of the distributed mode (`lemonade serve --role ...`, so
//! that the test can also call the services directly with the cluster token) on SQLite files
//! and on PostgreSQL (the server at `LEMONADE_TEST_POSTGRES`; the test's databases are
//! dropped at the end).
//!
//! A process that cannot serve says so in its own health (503), so that a supervisor
//! restarts it, and says it is healthy again once it can.

mod binary;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lemonade_cluster::rpc::{Call, GetCustomer, GetOrder, ListOrders, OrdersStatus};
use serde_json::{Value, json};

/// Requests each hang-up client sends; clients run at once.
const HANGUPS_PER_CLIENT: usize = 200;
const HANGUP_CLIENTS: usize = 32;
/// How long a normal request may take to succeed after the hang-ups (a circuit opened by the
/// load may stay open for a moment; a stuck service never recovers).
const RECOVERY: Duration = Duration::from_secs(20);
/// Orders placed before the hang-ups, so that a page of them is a long read.
const ORDERS_LISTED: usize = 200;
const TOKEN: &str = "hangup-test-cluster-token-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The processes of one test, SIGKILLed when dropped; their logs are printed on failure.
struct Processes {
    children: Vec<(String, Child)>,
    logs: Vec<std::path::PathBuf>,
}

impl Processes {
    fn logs(&self) -> String {
        self.logs
            .iter()
            .map(|p| {
                format!(
                    "--- {}\n{}",
                    p.display(),
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// PostgreSQL databases of one test, dropped at the end.
struct PgBase(String);

impl Drop for PgBase {
    fn drop(&mut self) {
        let _ = lemonade_store::postgres::drop_cluster_databases(&self.0);
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// Waits until `url` answers `GET` with 200 (the process is up).
async fn wait_up(url: &str, processes: &mut Processes) {
    let http = client(Duration::from_secs(2));
    let since = Instant::now();
    loop {
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        for (name, child) in &mut processes.children {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name} exited ({status})");
            }
        }
        assert!(since.elapsed() < Duration::from_secs(30), "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the distributed mode's processes listen.
struct Cluster {
    processes: Processes,
    /// The coordinator's public API, `http://.../api/v1`.
    api: String,
    stock: String,
    orders: String,
    crm: String,
}

/// Starts stock, CRM, orders and the coordinator as `lemonade serve --role ...`, empty, on
/// SQLite files in `dir` or on PostgreSQL databases named after `postgres`.
async fn start_cluster(dir: &Path, postgres: Option<&str>) -> Cluster {
    let roles = ["stock", "crm", "orders", "coordinator"];
    let ports: Vec<u16> = roles.iter().map(|_| free_port()).collect();
    let addr = |role: &str| format!("127.0.0.1:{}", ports[roles.iter().position(|r| *r == role).unwrap()]);
    let mut processes = Processes {
        children: Vec::new(),
        logs: Vec::new(),
    };
    for (role, port) in roles.iter().zip(&ports) {
        let log = dir.join(format!("{role}.log"));
        let mut command = binary::serve_command(&dir.join("data"), *port);
        command
            .args(["--role", role, "--empty", "--cluster-token", TOKEN])
            // A busy test machine should not turn answers into 202.
            .args(["--order-deadline-ms", "10000"])
            .args(["--stock-addr", &addr("stock"), "--orders-addr", &addr("orders")])
            .args(["--crm-addr", &addr("crm")])
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        if let Some(base) = postgres {
            let role = match *role {
                "stock" => lemonade_store::migrations::Role::Stock,
                "crm" => lemonade_store::migrations::Role::Crm,
                "orders" => lemonade_store::migrations::Role::Orders,
                _ => lemonade_store::migrations::Role::Coordinator,
            };
            command.args([
                "--database-url",
                &lemonade_store::postgres::role_url(base, role).unwrap(),
            ]);
        }
        processes
            .children
            .push((role.to_string(), command.spawn().expect("start lemonade serve")));
        processes.logs.push(log);
        let health = match *role {
            "coordinator" => format!("http://{}/api/v1/health", addr(role)),
            _ => format!("http://{}/health", addr(role)),
        };
        wait_up(&health, &mut processes).await;
    }
    Cluster {
        processes,
        api: format!("http://{}/api/v1", addr("coordinator")),
        stock: format!("http://{}", addr("stock")),
        orders: format!("http://{}", addr("orders")),
        crm: format!("http://{}", addr("crm")),
    }
}

/// What the hang-ups are aimed at: an order, a customer, and a product to order.
struct Stand {
    order: String,
    customer: String,
    order_body: Value,
}

/// An ingredient with plenty of stock, a product made of it, a customer and one order.
async fn open_stand(api: &str) -> Stand {
    async fn post(api: &str, path: &str, body: Value) -> Value {
        let reply = client(Duration::from_secs(30))
            .post(format!("{api}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.unwrap();
        // A placement still under way when its deadline passed is 202: placed all the same.
        assert!(status == 201 || status == 202, "{path}: {status} {body}");
        body
    }
    let water = post(
        api,
        "/ingredients",
        json!({"name": "Hang-up water", "unit": "ml", "on_hand": 1_000_000_000}),
    )
    .await;
    let glass = post(
        api,
        "/products",
        json!({"name": "Hang-up glass", "price": 100, "recipe": [{"ingredient_id": water["id"], "quantity": 1}]}),
    )
    .await;
    let customer = post(api, "/customers", json!({"name": "Patient"})).await;
    let order_body = json!({"customer_id": customer["id"], "lines": [{"product_id": glass["id"], "quantity": 1}]});
    let order = post(api, "/orders", order_body.clone()).await;
    // Enough orders that listing them takes a while: a client has time to hang up mid-read.
    let mut placing = tokio::task::JoinSet::new();
    for _ in 0..ORDERS_LISTED {
        let (api, body) = (api.to_owned(), order_body.clone());
        placing.spawn(async move { post(&api, "/orders", body).await });
    }
    while let Some(placed) = placing.join_next().await {
        placed.unwrap();
    }
    Stand {
        order: order["id"].as_str().unwrap().to_owned(),
        customer: customer["id"].as_str().unwrap().to_owned(),
        order_body,
    }
}

/// One request a hang-up client sends.
#[derive(Clone)]
enum Aim {
    Get(String),
    /// An internal call, with the cluster token.
    Internal(String, Value),
    /// `POST /orders` with a fresh idempotency key.
    Place(String, Value),
}

impl Aim {
    /// The address to connect to, and the bytes of the request (the `n`th of client `c`).
    fn request(&self, c: usize, n: usize) -> (String, Vec<u8>) {
        let (method, url, headers, body) = match self {
            Aim::Get(url) => ("GET", url, String::new(), None),
            Aim::Internal(url, body) => ("POST", url, format!("authorization: Bearer {TOKEN}\r\n"), Some(body)),
            Aim::Place(url, body) => ("POST", url, format!("idempotency-key: hangup-{c}-{n}\r\n"), Some(body)),
        };
        let url = reqwest::Url::parse(url).unwrap();
        let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {host}\r\n{headers}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        (host, request.into_bytes())
    }
}

/// Sends every aim over and over from clients that hang up 0.2 to 5 ms after sending (a
/// closed connection: the server drops the request's future wherever it is).
async fn hang_up(aims: Vec<Aim>) {
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..HANGUP_CLIENTS {
        let aims = aims.clone();
        clients.spawn(async move {
            use tokio::io::AsyncWriteExt;
            for n in 0..HANGUPS_PER_CLIENT {
                let (host, request) = aims[(c + n) % aims.len()].request(c, n);
                let patience = Duration::from_micros(200 + ((c * 7_919 + n * 104_729) % 4_800) as u64);
                let Ok(mut stream) = tokio::net::TcpStream::connect(&host).await else {
                    continue;
                };
                if stream.write_all(&request).await.is_ok() {
                    tokio::time::sleep(patience).await;
                }
                drop(stream);
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
}

/// Sends `request` until it answers `want`, within [`RECOVERY`]; returns the body.
async fn eventually(what: &str, want: u16, request: impl Fn() -> reqwest::RequestBuilder) -> Value {
    let since = Instant::now();
    loop {
        let (status, body) = match request().send().await {
            Ok(reply) => {
                let status = reply.status().as_u16();
                (status, reply.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        };
        if status == want {
            return serde_json::from_str(&body).unwrap_or(Value::String(body));
        }
        assert!(
            since.elapsed() < RECOVERY,
            "{what}: still {status} {body} after {} s",
            RECOVERY.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn clients_that_hang_up_leave_every_service_serving(postgres: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path(), postgres).await;
    let api = &cluster.api;
    let stand = open_stand(api).await;
    let get_order = json!({"id": stand.order});
    let get_customer = json!({"id": stand.customer});
    let list_orders = json!({"filter": {"status": null, "customer_id": null}, "page": {"limit": 200, "cursor": null}});
    hang_up(vec![
        Aim::Get(format!("{api}/orders/{}", stand.order)),
        Aim::Internal(format!("{}{}", cluster.orders, GetOrder::PATH), get_order.clone()),
        Aim::Get(format!("{api}/customers/{}", stand.customer)),
        Aim::Internal(format!("{}{}", cluster.crm, GetCustomer::PATH), get_customer),
        Aim::Place(format!("{api}/orders"), stand.order_body.clone()),
        // Longer reads: more time for a client to hang up in the middle of one.
        Aim::Get(format!("{api}/orders?limit=200")),
        Aim::Internal(format!("{}{}", cluster.orders, ListOrders::PATH), list_orders.clone()),
        Aim::Internal(format!("{}{}", cluster.orders, ListOrders::PATH), list_orders),
    ])
    .await;

    let http = client(Duration::from_secs(10));
    for (name, url) in [
        ("stock", format!("{}/health", cluster.stock)),
        ("orders", format!("{}/health", cluster.orders)),
        ("crm", format!("{}/health", cluster.crm)),
        ("coordinator", format!("{api}/health")),
    ] {
        eventually(&format!("{name}'s health"), 200, || http.get(&url)).await;
    }
    eventually("an order through the coordinator", 200, || {
        http.get(format!("{api}/orders/{}", stand.order))
    })
    .await;
    eventually("an order at the orders service", 200, || {
        http.post(format!("{}{}", cluster.orders, GetOrder::PATH))
            .bearer_auth(TOKEN)
            .json(&get_order)
    })
    .await;
    let before = eventually("a customer", 200, || {
        http.get(format!("{api}/customers/{}", stand.customer))
    })
    .await;
    let placed = eventually("a keyed order", 201, || {
        http.post(format!("{api}/orders"))
            .header("idempotency-key", "after-the-hangups")
            .json(&stand.order_body)
    })
    .await;
    assert_eq!(placed["status"], "confirmed", "{placed}");
    // Events are still delivered: the relay empties the outbox, and the customer has the
    // points of every order placed for them (the hung-up ones included, which ran on).
    let since = Instant::now();
    loop {
        let status = eventually("the orders service's status", 200, || {
            http.post(format!("{}{}", cluster.orders, OrdersStatus::PATH))
                .bearer_auth(TOKEN)
                .json(&json!({}))
        })
        .await;
        if status["waiting"] == 0 {
            break;
        }
        assert!(since.elapsed() < RECOVERY, "events are not delivered: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = eventually("the customer", 200, || {
        http.get(format!("{api}/customers/{}", stand.customer))
    })
    .await;
    assert!(
        after["points"].as_u64() > before["points"].as_u64(),
        "the points of the order placed after the hang-ups arrived: {before} then {after}"
    );
    drop(cluster.processes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_leave_every_service_serving_on_sqlite() {
    clients_that_hang_up_leave_every_service_serving(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_leave_every_service_serving_on_postgres() {
    let base = PgBase(lemonade_store::postgres::test_base("h"));
    clients_that_hang_up_leave_every_service_serving(Some(&base.0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_leave_the_monolith_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = binary::Server::start(&dir.path().join("data"), dir.path(), "monolith").await;
    let api = server.base.clone();
    let stand = open_stand(&api).await;
    hang_up(vec![
        Aim::Get(format!("{api}/orders/{}", stand.order)),
        Aim::Get(format!("{api}/customers/{}", stand.customer)),
        Aim::Place(format!("{api}/orders"), stand.order_body.clone()),
        Aim::Get(format!("{api}/orders?limit=200")),
        Aim::Get(format!("{api}/orders?limit=200")),
        Aim::Get(format!("{api}/customers/{}/orders", stand.customer)),
    ])
    .await;
    let http = client(Duration::from_secs(10));
    eventually("health", 200, || http.get(format!("{api}/health"))).await;
    eventually("an order", 200, || http.get(format!("{api}/orders/{}", stand.order))).await;
    eventually("a customer", 200, || {
        http.get(format!("{api}/customers/{}", stand.customer))
    })
    .await;
    eventually("a keyed order", 201, || {
        http.post(format!("{api}/orders"))
            .header("idempotency-key", "after-the-hangups")
            .json(&stand.order_body)
    })
    .await;
    let mut server = server;
    assert!(
        server.terminate().await.success(),
        "it stops cleanly after the hang-ups"
    );
}

/// Runs `sql` on the test server's maintenance database.
async fn admin(sql: String) {
    let url = format!("{}/postgres", lemonade_store::postgres::test_server());
    tokio::task::spawn_blocking(move || {
        lemonade_store::conn::PgConn::connect(&url)
            .unwrap()
            .batch(&sql)
            .unwrap()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_database_is_unreachable_answers_503_in_its_health_until_it_is_back() {
    let base = PgBase(lemonade_store::postgres::test_base("h"));
    let url = lemonade_store::postgres::role_url(&base.0, lemonade_store::migrations::Role::Crm).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("crm.log");
    let crm = binary::serve_command(&dir.path().join("data"), port)
        .args(["--role", "crm", "--cluster-token", TOKEN, "--database-url", &url])
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start lemonade serve");
    let mut processes = Processes {
        children: vec![("crm".into(), crm)],
        logs: vec![log],
    };
    let health = format!("http://127.0.0.1:{port}/health");
    wait_up(&health, &mut processes).await;
    let name = url.rsplit('/').next().unwrap().to_owned();
    admin(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let http = client(Duration::from_secs(10));
    let down = eventually("crm's health without its database", 503, || http.get(&health)).await;
    assert_eq!(
        (&down["serving"], &down["mode"]),
        (&json!(false), &json!("crm")),
        "{down}"
    );
    let database = &down["dependencies"][0];
    assert_eq!(
        (&database["name"], &database["ok"]),
        (&json!("database"), &json!(false)),
        "{down}"
    );
    assert!(database["detail"].as_str().is_some_and(|d| !d.is_empty()), "{down}");
    admin(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let up = eventually("crm's health with its database back", 200, || http.get(&health)).await;
    assert_eq!((&up["ok"], &up["serving"]), (&json!(true), &json!(true)), "{up}");
    drop(processes);
}
