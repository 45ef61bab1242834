//! The fault switchboard: its syntax (parse, refusals with their position, Display then parse
//! gives the same spec), and one test per fault kind that a call through it fails as that
//! kind and the client handles it as it should. In paused tokio time: no timing assertion.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use lemonade_cluster::client::{CallError, Failure};
use lemonade_cluster::rpc::{CommitReservation, ReleaseReservation, Service};
use lemonade_cluster::switchboard::spec::{DELAY_MS_MAX, RULES_PER_TARGET_MAX, SPEC_BYTES_MAX};
use lemonade_cluster::switchboard::{
    CallFault, ExitPoint, ExitSeam, FaultSpec, OffsetClock, Percent, ProcessRule, SetError, Switchboard,
    SwitchboardTransport, Target, parse,
};
use lemonade_cluster::transport::{Reply, Request, Transport, TransportError};
use lemonade_cluster::{CallPolicy, Clients};
use lemonade_domain::ids::OrderId;
use lemonade_domain::ports::Clock;
use lemonade_domain::values::Timestamp;
use lemonade_store::migrations::Role;
use parking_lot::Mutex;
use tokio::time::Instant;
use tower::ServiceExt as _;

// ---- the syntax ----

#[test]
fn the_issue_s_example_parses_into_its_rules() {
    let spec = parse("stock: lose-reply 10%, delay 50ms±20ms; crm: refuse 5%").unwrap();
    let calls = spec.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, Target::Service(Service::Stock));
    assert_eq!(calls[0].1[0].fault, CallFault::LoseReply);
    assert_eq!(calls[0].1[0].chance, Percent::from_hundredths(1_000).unwrap());
    assert_eq!(
        calls[0].1[1].fault,
        CallFault::Delay {
            delay_ms: 50,
            jitter_ms: 20
        }
    );
    assert_eq!(calls[0].1[1].chance, Percent::ALWAYS);
    assert_eq!(calls[1].0, Target::Service(Service::Crm));
    assert_eq!(calls[1].1[0].fault, CallFault::Refuse);
}

#[test]
fn every_kind_a_call_path_a_process_and_the_empty_spec_parse() {
    let spec = parse(
        " stock/reservations/reserve : reset 0.5% , garble 12.25%,truncate ; orders: hang 1%, duplicate 100%, \
         rate-limit 2s 30%, rate-limit, delay 1s+-100ms 0%; @orders: exit after-commit 50%, exit on-receive, clock -2s;",
    )
    .unwrap();
    assert_eq!(
        spec.calls()[0].0,
        Target::Call(Service::Stock, "/internal/v1/reservations/reserve")
    );
    assert_eq!(
        spec.process(Role::Orders),
        [
            ProcessRule::Exit {
                point: ExitPoint::AfterCommit,
                chance: Percent::from_hundredths(5_000).unwrap()
            },
            ProcessRule::Exit {
                point: ExitPoint::OnReceive,
                chance: Percent::ALWAYS
            },
            ProcessRule::Clock { offset_ms: -2_000 },
        ]
    );
    assert!(parse("").unwrap().is_empty());
    assert!(parse("   ").unwrap().is_empty());
}

#[test]
fn display_then_parse_gives_the_same_spec() {
    for text in [
        "stock: lose-reply 10%, delay 50ms±20ms; crm: refuse 5%",
        "stock/reservations/reserve: reset 0.5%, garble 12.25%, truncate; orders: hang 1%, duplicate, rate-limit 2s 30%, rate-limit, delay 1s±100ms 0%; @orders: exit after-commit 50%, exit on-receive, clock -2s",
        "@coordinator: clock +250ms, exit after-commit 0.01%",
        "crm/customers/create: delay 0ms",
        "",
    ] {
        let spec = parse(text).unwrap();
        let shown = spec.to_string();
        assert_eq!(parse(&shown).unwrap(), spec, "{text:?} shown as {shown:?}");
        assert_eq!(shown, text, "the canonical form is kept as written");
    }
}

#[test]
fn a_refusal_names_the_column_and_what_was_expected_there() {
    let refused = |text: &str| parse(text).unwrap_err();
    let e = refused("stock: lose-reply 10%, delya 5ms");
    assert_eq!(e.column, 24);
    assert!(e.expected.starts_with("a fault: refuse"), "{e}");
    assert_eq!(e.found, "\"delya\"");
    assert_eq!(
        e.to_string(),
        format!("at column 24: expected {}, found \"delya\"", e.expected)
    );

    let e = refused("stok: refuse");
    assert_eq!((e.column, e.found.as_str()), (1, "\"stok\""));
    let e = refused("stock refuse");
    assert_eq!(e.column, 7);
    assert!(e.expected.contains("':'"), "{e}");
    let e = refused("stock: refuse 101%");
    assert_eq!(e.column, 15);
    assert!(e.expected.contains("0% to 100%"), "{e}");
    let e = refused("stock: refuse 10");
    assert_eq!(e.column, 15);
    let e = refused("stock: refuse 1.234%");
    assert_eq!(e.column, 15);
    let e = refused(&format!("stock: delay {}ms", DELAY_MS_MAX + 1));
    assert_eq!(e.column, 14);
    assert!(e.expected.contains("at most 10s"), "{e}");
    let e = refused("stock: delay 5");
    assert_eq!(e.column, 14);
    let e = refused("stock/reservations/reserv: refuse");
    assert_eq!(e.column, 7);
    assert!(e.expected.contains("reservations/reserve"), "{e}");
    let e = refused("stock: refuse; stock: hang");
    assert_eq!(e.column, 16);
    assert!(e.expected.contains("each target once"), "{e}");
    let e = refused("@shop: clock +1s");
    assert_eq!(e.column, 2);
    let e = refused("@crm: clock 1s");
    assert_eq!(e.column, 13);
    let e = refused("@crm: exit now");
    assert_eq!(e.column, 12);
    let e = refused("@crm: clock +2h");
    assert_eq!(e.column, 14);
    let e = refused("stock: refuse garble");
    assert_eq!(e.column, 15);
    assert!(e.expected.contains("';' or the end"), "{e}");
    let e = refused("stock: refuse;;");
    assert_eq!(e.column, 15);
    let e = refused("crm: ré");
    assert_eq!((e.column, e.found.as_str()), (6, "\"ré\""));
}

#[test]
fn the_limits_are_refused_at_the_first_thing_past_them() {
    let rules = ["refuse 1%"; RULES_PER_TARGET_MAX].join(", ");
    assert!(parse(&format!("stock: {rules}")).is_ok());
    let e = parse(&format!("stock: {rules}, hang")).unwrap_err();
    assert!(
        e.expected.contains(&format!("at most {RULES_PER_TARGET_MAX} rules")),
        "{e}"
    );
    let long = format!("stock: refuse{}", " ".repeat(SPEC_BYTES_MAX));
    let e = parse(&long).unwrap_err();
    assert_eq!(e.column, 1);
    assert!(e.expected.contains("bytes"), "{e}");
}

#[test]
fn cluster_gives_each_process_the_calls_and_its_own_section_and_a_process_refuses_another_s() {
    let spec = parse("stock: refuse 5%; @orders: clock +1s; @crm: exit after-commit").unwrap();
    assert_eq!(
        spec.for_role(Role::Orders).to_string(),
        "stock: refuse 5%; @orders: clock +1s"
    );
    assert_eq!(spec.for_role(Role::Coordinator).to_string(), "stock: refuse 5%");
    let board = Switchboard::new(Role::Orders, 1).unwrap();
    let refused = board.set(spec.clone()).unwrap_err();
    assert_eq!(
        refused,
        SetError::OtherProcess {
            this: "orders",
            given: "crm"
        }
    );
    assert!(board.spec().is_empty(), "a refused spec changes nothing");
    board.set(spec.for_role(Role::Orders)).unwrap();
    assert_eq!(board.clock_offset_ms(), 1_000);
    assert!(matches!(Switchboard::new(Role::Monolith, 1), Err(SetError::Monolith)));
}

// ---- the faults, through the client ----

/// A service that answers every call with `null` (the reply of a reservation's release),
/// counting what reached it.
#[derive(Default)]
struct Answers {
    delivered: AtomicUsize,
    keys: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl Transport for Answers {
    async fn send(&self, request: Request) -> Result<Reply, TransportError> {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.keys.lock().push(request.step_key);
        Ok(Reply {
            status: 200,
            retry_after: None,
            body: Bytes::from_static(b"null"),
            hlc: None,
        })
    }
}

const ATTEMPT_MS: u64 = 2_000;

/// Clients of one service through a switchboard with `faults` set, retrying nothing, and
/// the service behind it.
fn through(faults: &str) -> (Clients, Arc<Switchboard>, Arc<Answers>) {
    let answers = Arc::new(Answers::default());
    let board = Arc::new(Switchboard::new(Role::Coordinator, 20261201).unwrap());
    board.set(parse(faults).unwrap()).unwrap();
    let transport = Arc::new(SwitchboardTransport::new(answers.clone(), Arc::clone(&board)));
    let policy = CallPolicy {
        attempt_timeout_ms: ATTEMPT_MS,
        retries_max: 0,
        ..CallPolicy::default()
    };
    (Clients::new(transport, policy, 7), board, answers)
}

async fn release(clients: &Clients) -> Result<(), CallError> {
    let call = ReleaseReservation {
        order_id: OrderId::parse("o-1").unwrap(),
    };
    clients
        .call(&call, Some("step-1".into()), Instant::now() + Duration::from_secs(10))
        .await
}

fn injected(board: &Switchboard, kind: &str) -> u64 {
    board
        .injected()
        .iter()
        .filter(|i| i.kind == kind && i.target == "stock")
        .map(|i| i.count)
        .sum()
}

/// The failure of a call: whether its outcome is unknown, and its `Retry-After`.
fn failed(outcome: Result<(), CallError>) -> (bool, Option<Duration>, String) {
    match outcome {
        Err(CallError::Failed {
            unknown,
            retry_after,
            why: Failure::Attempt(what),
            ..
        }) => (unknown, retry_after, what),
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn refuse_sends_nothing_and_the_client_knows_it_was_not_done() {
    let (clients, board, answers) = through("stock: refuse");
    let (unknown, retry_after, what) = failed(release(&clients).await);
    assert!(!unknown && retry_after.is_none(), "{what}");
    assert!(what.contains("connection refused"), "{what}");
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(injected(&board, "refuse"), 1);
}

#[tokio::test(start_paused = true)]
async fn reset_is_delivered_and_the_client_does_not_know_the_outcome() {
    let (clients, board, answers) = through("stock: reset");
    let (unknown, _, what) = failed(release(&clients).await);
    assert!(unknown, "{what}");
    assert!(what.contains("reset"), "{what}");
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 1);
    assert_eq!(injected(&board, "reset"), 1);
}

#[tokio::test(start_paused = true)]
async fn garble_and_truncate_are_delivered_and_their_replies_cannot_be_read() {
    for kind in ["garble", "truncate"] {
        let (clients, board, answers) = through(&format!("stock: {kind}"));
        let (unknown, _, what) = failed(release(&clients).await);
        assert!(unknown, "{kind}: {what}");
        assert!(what.contains("could not be read"), "{kind}: {what}");
        assert_eq!(answers.delivered.load(Ordering::Relaxed), 1, "{kind}");
        assert_eq!(injected(&board, kind), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limit_answers_429_with_its_retry_after_and_nothing_done() {
    let (clients, board, answers) = through("stock: rate-limit 3s");
    let (unknown, retry_after, _) = failed(release(&clients).await);
    assert!(!unknown);
    assert_eq!(retry_after, Some(Duration::from_secs(3)));
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(injected(&board, "rate-limit"), 1);
}

#[tokio::test(start_paused = true)]
async fn delay_holds_the_call_within_its_jitter_then_it_succeeds() {
    let (clients, board, answers) = through("stock: delay 300ms±100ms");
    for _ in 0..20 {
        let started = Instant::now();
        release(&clients).await.unwrap();
        let waited = started.elapsed();
        assert!(
            (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&waited),
            "{waited:?}"
        );
    }
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 20);
    assert_eq!(injected(&board, "delay"), 20);
}

#[tokio::test(start_paused = true)]
async fn hang_holds_the_call_past_its_timeout_and_sends_nothing() {
    let (clients, board, answers) = through("stock: hang");
    let started = Instant::now();
    let (unknown, _, what) = failed(release(&clients).await);
    assert!(unknown, "a timed-out call's outcome is unknown to its caller: {what}");
    assert!(what.contains("did not answer"), "{what}");
    assert_eq!(started.elapsed(), Duration::from_millis(ATTEMPT_MS));
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(injected(&board, "hang"), 1);
}

#[tokio::test(start_paused = true)]
async fn lose_reply_carries_the_call_out_and_the_client_does_not_know_the_outcome() {
    let (clients, board, answers) = through("stock: lose-reply");
    let (unknown, _, what) = failed(release(&clients).await);
    assert!(unknown, "{what}");
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 1);
    assert_eq!(injected(&board, "lose-reply"), 1);
}

#[tokio::test(start_paused = true)]
async fn duplicate_delivers_the_call_twice_with_its_step_key_and_the_client_hears_once() {
    let (clients, board, answers) = through("stock: duplicate");
    release(&clients).await.unwrap();
    assert_eq!(
        *answers.keys.lock(),
        [Some("step-1".to_owned()), Some("step-1".to_owned())],
        "both copies carry the step key the receiver dedupes by"
    );
    assert_eq!(injected(&board, "duplicate"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_path_s_rules_apply_to_that_call_only_and_cleared_faults_inject_nothing() {
    let (clients, board, answers) = through("stock/reservations/commit: refuse");
    release(&clients).await.unwrap();
    let commit = CommitReservation {
        order_id: OrderId::parse("o-1").unwrap(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    assert!(clients.call(&commit, Some("step-2".into()), deadline).await.is_err());
    assert_eq!(injected(&board, "refuse"), 1);
    board.clear();
    clients.call(&commit, Some("step-2".into()), deadline).await.unwrap();
    assert_eq!(answers.delivered.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_draws_the_same_faults() {
    let outcomes = || async {
        let (clients, _, _) = through("stock: refuse 50%");
        let mut seen = Vec::new();
        for _ in 0..64 {
            seen.push(release(&clients).await.is_ok());
        }
        seen
    };
    let first = outcomes().await;
    assert_eq!(first, outcomes().await);
    let refused = first.iter().filter(|ok| !**ok).count();
    assert!((10..=54).contains(&refused), "about half: {refused}");
}

// ---- the process: clock and exit points ----

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        Timestamp(1_000_000)
    }
}

#[test]
fn the_clock_reads_the_offset_set_and_nothing_once_cleared() {
    let board = Arc::new(Switchboard::new(Role::Stock, 1).unwrap());
    let clock = OffsetClock::new(Arc::new(Fixed), Arc::clone(&board));
    assert_eq!(clock.now(), Timestamp(1_000_000));
    board.set(parse("@stock: clock -250ms").unwrap()).unwrap();
    assert_eq!(clock.now(), Timestamp(999_750));
    board.clear();
    assert_eq!(clock.now(), Timestamp(1_000_000));
}

/// A router whose one change commits (counted) then answers; its exit points recorded
/// instead of exiting.
fn exiting_router(faults: &str) -> (Router, Arc<Mutex<Vec<ExitPoint>>>, Arc<AtomicUsize>) {
    let board = Arc::new(Switchboard::new(Role::Stock, 1).unwrap());
    board.set(parse(faults).unwrap()).unwrap();
    let exits = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&exits);
    let seam = ExitSeam {
        board,
        exit: Arc::new(move |point| recorded.lock().push(point)),
    };
    let commits = Arc::new(AtomicUsize::new(0));
    let committed = Arc::clone(&commits);
    let router = Router::new()
        .route(
            "/internal/v1/reservations/commit",
            post(move || {
                let committed = Arc::clone(&committed);
                async move {
                    committed.fetch_add(1, Ordering::Relaxed);
                    "null"
                }
            }),
        )
        .route("/internal/v1/stock/status", post(|| async { "{}" }))
        .layer(axum::middleware::from_fn_with_state(
            seam,
            lemonade_cluster::switchboard::exit_points,
        ));
    (router, exits, commits)
}

async fn post_to(router: &Router, path: &str) -> StatusCode {
    let request = HttpRequest::post(path).body(Body::empty()).unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn exit_after_commit_runs_the_handler_then_exits_before_the_reply_and_reads_never_exit() {
    let (router, exits, commits) = exiting_router("@stock: exit after-commit");
    assert_eq!(post_to(&router, "/internal/v1/stock/status").await, StatusCode::OK);
    assert!(exits.lock().is_empty(), "a read commits nothing");
    post_to(&router, "/internal/v1/reservations/commit").await;
    assert_eq!(commits.load(Ordering::Relaxed), 1, "the handler ran first");
    assert_eq!(*exits.lock(), [ExitPoint::AfterCommit]);

    let (router, exits, commits) = exiting_router("@stock: exit on-receive");
    post_to(&router, "/internal/v1/reservations/commit").await;
    assert_eq!(*exits.lock(), [ExitPoint::OnReceive]);
    // The recorder returns where a real exit would not: the handler then runs.
    assert_eq!(commits.load(Ordering::Relaxed), 1);

    let (router, exits, _) = exiting_router("stock: refuse");
    post_to(&router, "/internal/v1/reservations/commit").await;
    assert!(exits.lock().is_empty(), "no exit point set");
}

#[test]
fn a_spec_is_a_value_that_parses_from_str() {
    let spec: FaultSpec = "crm: refuse 5%".parse().unwrap();
    assert_eq!(spec.to_string(), "crm: refuse 5%");
}
