//! The clients of a run, as real ones behave: each places orders (with and without a
//! customer, each with an idempotency key), retries an unknown outcome with the same key and
//! body (and sometimes gives up), hangs up mid-request when its deadline passes, cancels,
//! restocks, wastes and counts, creates customers, updates and erases them. Every operation
//! is recorded in the run's [`History`] as Jepsen records it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{self, Method, header};
use lemonade_checker::state::FinalRead;
use lemonade_checker::{History, Line, Op, Phase, Told};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::net::Net;

/// The longest a patient client waits for an answer.
pub const PATIENT_DEADLINE_MS: u64 = 10_000;
/// The range of an impatient client's deadline: short enough that some orders are still
/// being placed when it hangs up, and some answers are 202.
pub const IMPATIENT_DEADLINE_MS: (u64, u64) = (100, 3_500);
/// Most times a client sends an operation whose outcome stayed unknown again.
pub const RETRIES_MAX: u32 = 3;

/// What the clients sell and count: read from the shop before the run.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub products: Vec<String>,
    pub ingredients: Vec<String>,
}

/// What the clients share: the history, and what the shop told them exists.
#[derive(Clone)]
pub struct Shared {
    pub net: Net,
    pub history: Arc<Mutex<History>>,
    pub catalog: Catalog,
    customers: Arc<Mutex<Vec<String>>>,
    orders: Arc<Mutex<Vec<String>>>,
    started: tokio::time::Instant,
}

/// Operations by outcome, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Shared {
    pub fn new(net: Net, catalog: Catalog) -> Shared {
        Shared {
            net,
            history: Arc::new(Mutex::new(History::new())),
            catalog,
            customers: Arc::default(),
            orders: Arc::default(),
            started: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Operations completed so far, by outcome.
    pub fn outcomes(&self) -> Outcomes {
        let history = self.history.lock();
        let mut outcomes = Outcomes::default();
        for event in history.events() {
            match event.phase {
                Phase::Ok => outcomes.ok += 1,
                Phase::Fail => outcomes.fail += 1,
                Phase::Info => outcomes.info += 1,
                Phase::Invoke => {}
            }
        }
        outcomes
    }
}

/// A request of the public API, before it is sent.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    key: Option<String>,
}

impl Call {
    fn get(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            body: None,
            key: None,
        }
    }

    fn of(op: &Op) -> Call {
        let request = op.request();
        Call {
            method: Method::from_bytes(request.method.as_bytes()).expect("the API's methods"),
            path: format!("/api/v1{}", request.path),
            body: request.body,
            key: request.key,
        }
    }

    fn request(&self) -> http::Request<Body> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str());
        if let Some(key) = &self.key {
            builder = builder.header("idempotency-key", key.as_str());
        }
        let body = match &self.body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        builder.body(body).expect("a request of known parts")
    }
}

/// Sends `call` from client `process` as a person would, hanging up after `deadline_ms`:
/// the status and the JSON body (`null` if none), or `None` for no answer.
async fn send(net: &Net, process: u64, call: &Call, deadline_ms: u64) -> Option<(u16, Value)> {
    let answer = tokio::time::timeout(Duration::from_millis(deadline_ms), net.public(process, call.request()))
        .await
        .ok()
        .flatten()?;
    let (status, body) = answer;
    Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

impl Shared {
    /// Sends `op` for client `process`, recording its invoke and completion; what it told.
    async fn perform(&self, process: u64, op: Op, deadline_ms: u64) -> (Phase, Told) {
        let call = Call::of(&op);
        self.history
            .lock()
            .invoke(process, self.now_ms(), op)
            .expect("one operation at a time per client");
        let answer = send(&self.net, process, &call, deadline_ms).await;
        let told = Told::of_answer(answer.as_ref().map(|(status, body)| (*status, body)));
        let phase = Phase::of_answer(told.http_status);
        self.history
            .lock()
            .complete(process, self.now_ms(), phase, told.clone())
            .expect("the operation was invoked");
        if let Some(order) = &told.order {
            self.orders.lock().push(order.id.clone());
        }
        if let Some(customer) = &told.customer {
            self.customers.lock().push(customer.clone());
        }
        (phase, told)
    }
}

/// How often the counter's tablet asks the shop's health (the web app's "Online /
/// Degraded / Offline"), in virtual ms, and how long it waits for the answer.
pub const HEALTH_POLL_MS: u64 = 2_000;
pub const HEALTH_DEADLINE_MS: u64 = 1_000;

/// The tablet's health poll until `until`: a read whose answer depends on every service
/// answering within a bound, and which hangs up after [`HEALTH_DEADLINE_MS`].
pub async fn tablet(shared: Shared, process: u64, until: tokio::time::Instant) {
    while tokio::time::Instant::now() < until {
        send(
            &shared.net,
            process,
            &Call::get("/api/v1/health".into()),
            HEALTH_DEADLINE_MS,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(HEALTH_POLL_MS)).await;
    }
}

/// What the healed shop is asked at the end, as Jepsen's final reads: its health and a page
/// of each list, every one through the read pools and the coordinator's calls.
pub const FINAL_READS: [&str; 5] = [
    "/api/v1/health",
    "/api/v1/orders?limit=20",
    "/api/v1/customers?limit=20",
    "/api/v1/ingredients?limit=20",
    "/api/v1/stock/moves?limit=20",
];

/// Asks the healed shop each of [`FINAL_READS`] as client `process`, with a patient
/// deadline: answered means 2xx (and, for health, every dependency ok).
pub async fn final_reads(net: &Net, process: u64) -> Vec<FinalRead> {
    let mut reads = Vec::new();
    for path in FINAL_READS {
        let answer = send(net, process, &Call::get(path.into()), PATIENT_DEADLINE_MS).await;
        let healthy = |body: &Value| !path.ends_with("/health") || body["ok"] == Value::Bool(true);
        let (answered, detail) = match &answer {
            Some((status, body)) if (200..300).contains(status) && healthy(body) => (true, String::new()),
            Some((status, body)) => (false, format!("{status}: {body}")),
            None => (false, format!("no answer within {PATIENT_DEADLINE_MS} ms")),
        };
        reads.push(FinalRead {
            request: format!("GET {path}"),
            answered,
            detail,
        });
    }
    reads
}

/// One client: operations until `until` (virtual), then it stops.
pub async fn client(shared: Shared, process: u64, seed: u64, until: tokio::time::Instant) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut placed = 0u64;
    while tokio::time::Instant::now() < until {
        let think_ms = rng.random_range(0..=300);
        tokio::time::sleep(Duration::from_millis(think_ms)).await;
        let deadline_ms = if rng.random_bool(0.7) {
            PATIENT_DEADLINE_MS
        } else {
            rng.random_range(IMPATIENT_DEADLINE_MS.0..=IMPATIENT_DEADLINE_MS.1)
        };
        let roll: u32 = rng.random_range(0..100);
        let op = match roll {
            0..50 => {
                placed += 1;
                let op = place_order(&shared, &mut rng, process, placed);
                // An unknown outcome is sent again with the same key and body, a few times.
                let mut tries = 0;
                loop {
                    let (phase, _) = shared.perform(process, op.clone(), deadline_ms).await;
                    tries += 1;
                    if phase != Phase::Info || tries > RETRIES_MAX || rng.random_bool(0.2) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(rng.random_range(50..=1_000))).await;
                }
                continue;
            }
            50..58 => match pick(&shared.orders, &mut rng) {
                Some(order) => Op::CancelOrder { order },
                None => continue,
            },
            58..64 => match pick(&shared.orders, &mut rng) {
                // A read of an order is recorded: it must see what was acknowledged before.
                Some(order) => Op::ReadOrder { order },
                None => continue,
            },
            64..70 => {
                // Other reads are not judged; they are here for what a reader's hang-up does
                // to the calls behind it.
                let path = match rng.random_range(0..3) {
                    0 => pick(&shared.customers, &mut rng).map(|c| format!("/api/v1/customers/{c}")),
                    1 => Some("/api/v1/orders?limit=20".to_owned()),
                    _ => Some("/api/v1/products?limit=20".to_owned()),
                };
                if let Some(path) = path {
                    send(&shared.net, process, &Call::get(path), deadline_ms).await;
                }
                continue;
            }
            70..85 => stock_op(&shared, &mut rng, process),
            85..92 => Op::CreateCustomer {
                name: format!("Customer {process}-{}", rng.random_range(0..1_000_000)),
            },
            92..97 => match pick(&shared.customers, &mut rng) {
                Some(customer) => Op::UpdateCustomer { customer },
                None => continue,
            },
            _ => match pick(&shared.customers, &mut rng) {
                Some(customer) => Op::EraseCustomer { customer },
                None => continue,
            },
        };
        shared.perform(process, op, deadline_ms).await;
    }
}

fn pick(from: &Mutex<Vec<String>>, rng: &mut SmallRng) -> Option<String> {
    from.lock().choose(rng).cloned()
}

fn place_order(shared: &Shared, rng: &mut SmallRng, process: u64, n: u64) -> Op {
    let lines_count = rng.random_range(1..=3);
    let mut lines: Vec<Line> = (0..lines_count)
        .filter_map(|_| {
            shared.catalog.products.choose(rng).map(|p| Line {
                product: p.clone(),
                quantity: rng.random_range(1..=3),
            })
        })
        .collect();
    lines.sort();
    lines.dedup_by(|a, b| a.product == b.product);
    let customer = if rng.random_bool(0.5) {
        pick(&shared.customers, rng)
    } else {
        None
    };
    Op::PlaceOrder {
        key: Some(format!("client-{process}-order-{n}")),
        customer,
        lines,
    }
}

fn stock_op(shared: &Shared, rng: &mut SmallRng, process: u64) -> Op {
    let Some(ingredient) = shared.catalog.ingredients.choose(rng).cloned() else {
        return Op::CreateCustomer {
            name: format!("Customer {process}"),
        };
    };
    // One note per operation: the checker tells an unanswered adjustment's fate by it.
    let note = Some(format!("client {process} adjustment {}", rng.random::<u64>()));
    match rng.random_range(0..10) {
        0..6 => Op::Restock {
            ingredient,
            quantity: rng.random_range(100..=5_000),
            note,
        },
        6..9 => Op::Waste {
            ingredient,
            quantity: rng.random_range(1..=50),
            note,
        },
        _ => Op::Count {
            ingredient,
            on_hand: rng.random_range(1_000..=20_000),
            note,
        },
    }
}

/// Reads what the shop sells and counts through its public API (before any fault): every
/// product's and ingredient's id, in the order listed.
pub async fn catalog(net: &Net) -> Catalog {
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let get = |path: &str| Call::get(path.into());
    let products = send(net, 0, &get("/api/v1/products?limit=200"), PATIENT_DEADLINE_MS)
        .await
        .expect("the coordinator lists the products");
    let ingredients = send(net, 0, &get("/api/v1/ingredients?limit=200"), PATIENT_DEADLINE_MS)
        .await
        .expect("the coordinator lists the ingredients");
    Catalog {
        products: ids(&products.1),
        ingredients: ids(&ingredients.1),
    }
}
