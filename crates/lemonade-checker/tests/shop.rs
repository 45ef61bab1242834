//! The checker against a real shop started in this process: a few operations through its
//! HTTP API, recorded as a history; the shop stopped; its final state read from its data
//! folder; every invariant valid. Once for the monolith and once for the in-process cluster
//! (whose breakers live in its processes, so its liveness is unknown on that count alone).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lemonade::serve::{ServeArgs, start};
use lemonade_checker::read::{ReadOptions, read_baseline, read_final_state};
use lemonade_checker::{FinalState, History, Invariant, Line, Op, Told, Verdict, check};
use serde_json::{Value, json};

/// A running shop reached over HTTP, with the history of what its clients saw.
struct Run {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
    history: History,
    started: Instant,
}

impl Run {
    fn new(addr: std::net::SocketAddr, token: Option<String>) -> Run {
        Run {
            base: format!("http://{addr}/api/v1"),
            token,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            history: History::new(),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Sends a request; the status and the body (`null` when empty), or `None` for no answer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Option<(u16, Value)> {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(k) = key {
            rb = rb.header("idempotency-key", k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let response = rb.send().await.ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Sends `op` for client `process` and records its invoke and its completion; returns the body.
    async fn perform(&mut self, process: u64, op: Op) -> Value {
        let invoked = self.now_ms();
        let request = op.request();
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("the API's methods");
        let answer = self
            .send(method, &request.path, request.body, request.key.as_deref())
            .await;
        let told = Told::of_answer(answer.as_ref().map(|(status, body)| (*status, body)));
        self.history
            .record(process, op, invoked, self.now_ms(), told)
            .expect("one operation at a time per client");
        answer.map(|(_, body)| body).unwrap_or(Value::Null)
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

fn lines(product: &str, quantity: u64) -> Vec<Line> {
    vec![Line {
        product: product.to_owned(),
        quantity,
    }]
}

/// Sets up a stand (lemons, a lemonade taking 2, a customer), takes the baseline, then runs
/// the workload; returns the run with its history.
async fn workload(
    addr: std::net::SocketAddr,
    token: Option<String>,
    data: PathBuf,
) -> (Run, lemonade_checker::state::Baseline) {
    let mut run = Run::new(addr, token);
    let post = |run: &Run, path: &'static str, body: Value| {
        let (base, client, token) = (run.base.clone(), run.client.clone(), run.token.clone());
        async move {
            let mut rb = client.post(format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            let response = rb.send().await.expect("the shop answers");
            assert_eq!(response.status().as_u16(), 201, "{path}");
            response.json::<Value>().await.expect("JSON")
        }
    };
    let lemons = id(&post(
        &run,
        "/ingredients",
        json!({"name": "Checker lemons", "unit": "piece", "on_hand": 20, "reorder_level": 0}),
    )
    .await);
    let recipe = json!([{"ingredient_id": lemons, "quantity": 2}]);
    let lemonade = id(&post(
        &run,
        "/products",
        json!({"name": "Checker lemonade", "price": 350, "recipe": recipe}),
    )
    .await);
    let baseline = tokio::task::spawn_blocking(move || read_baseline(&data))
        .await
        .expect("the baseline's read ran")
        .expect("the baseline can be read");

    let customer = run
        .perform(
            1,
            Op::CreateCustomer {
                name: "Ada Checker".into(),
            },
        )
        .await;
    let customer = id(&customer);
    let place = |key: &str, customer: Option<&str>, quantity| Op::PlaceOrder {
        key: Some(key.to_owned()),
        customer: customer.map(str::to_owned),
        lines: lines(&lemonade, quantity),
    };
    let first = run.perform(1, place("checker-k1", Some(&customer), 2)).await;
    assert_eq!(first["status"], "confirmed", "{first}");
    let replay = run.perform(1, place("checker-k1", Some(&customer), 2)).await;
    assert_eq!(replay["id"], first["id"], "a key replays its order");
    let second = run.perform(2, place("checker-k2", None, 1)).await;
    run.perform(2, Op::CancelOrder { order: id(&second) }).await;
    let restock = |note: &str| Op::Restock {
        ingredient: lemons.clone(),
        quantity: 10,
        note: Some(note.to_owned()),
    };
    run.perform(3, restock("checker-restock-1")).await;
    run.perform(
        3,
        Op::Waste {
            ingredient: lemons.clone(),
            quantity: 3,
            note: Some("checker-waste-1".into()),
        },
    )
    .await;
    run.perform(
        3,
        Op::Count {
            ingredient: lemons.clone(),
            on_hand: 20,
            note: Some("checker-count-1".into()),
        },
    )
    .await;
    let refused = run.perform(1, place("checker-k3", Some(&customer), 1_000)).await;
    assert!(refused["type"].is_string(), "too big an order is refused: {refused}");
    run.perform(1, place("checker-k4", Some(&customer), 3)).await;
    run.perform(
        4,
        Op::UpdateCustomer {
            customer: customer.clone(),
        },
    )
    .await;
    (run, baseline)
}

/// The reports, printed, with every invariant but those in `unknown` valid.
fn assert_valid(history: &History, state: &FinalState, unknown: &[Invariant]) {
    let reports = check(history, state);
    println!("{}", reports.to_text());
    for report in &reports.0 {
        if unknown.contains(&report.invariant) {
            assert!(
                matches!(report.verdict, Verdict::Unknown { .. }),
                "{}",
                report.to_text()
            );
        } else {
            assert!(report.is_valid(), "{}", reports.to_text());
        }
    }
}

#[tokio::test]
async fn a_monolith_run_through_its_api_is_valid_on_every_invariant() {
    let dir = tempfile::tempdir().expect("a data folder");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = start(ServeArgs::for_tests(dir.path().to_path_buf()), async {
        let _ = stopped.await;
    })
    .await
    .expect("the monolith starts");
    let (run, baseline) = workload(running.addr, running.token.clone(), dir.path().to_path_buf()).await;
    let _ = stop.send(());
    running.server.await.expect("the server task").expect("a clean stop");

    let options = ReadOptions {
        baseline,
        ..ReadOptions::default()
    };
    let state = read_final_state(dir.path(), &options).expect("the final state can be read");
    assert_eq!(state.orders.len(), 3, "{:?}", state.orders);
    assert_valid(&run.history, &state, &[]);
}

#[tokio::test]
async fn a_cluster_run_through_its_api_is_valid_once_settled() {
    let dir = tempfile::tempdir().expect("a data folder");
    let mut cluster = lemonade::cluster::start_in_process(dir.path(), |_| {})
        .await
        .expect("the cluster starts");
    let token = cluster.coordinator.token.clone();
    let (run, baseline) = workload(cluster.coordinator.addr, token, dir.path().to_path_buf()).await;
    let options = ReadOptions {
        baseline,
        ..ReadOptions::default()
    };
    // Events and sagas finish a moment after the answers: wait until nothing is in flight.
    let settled = Instant::now();
    loop {
        let (data, options) = (dir.path().to_path_buf(), options.clone());
        let state = tokio::task::spawn_blocking(move || read_final_state(&data, &options))
            .await
            .expect("the read ran")
            .expect("the state can be read while the cluster runs");
        let quiet =
            state.open_sagas.is_empty() && state.held_reservations.is_empty() && state.undelivered_events.is_empty();
        if quiet || settled.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop().await.expect("a clean stop");

    let state = read_final_state(dir.path(), &options).expect("the final state can be read");
    assert_eq!(state.orders.len(), 3, "{:?}", state.orders);
    assert!(state.breakers.is_none(), "no database holds the breakers");
    assert_valid(&run.history, &state, &[Invariant::Liveness]);
}
