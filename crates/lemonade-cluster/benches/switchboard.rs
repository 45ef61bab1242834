//! What the fault switchboard costs a call: one send through a transport that answers at
//! once, made directly, through a switchboard with nothing set (the production default: one
//! atomic load), and through one with a rule set for another service (the rules are looked
//! at, none fires). The three run in one group; then rounds of direct and idle sends in turn
//! give the ratio of the two from one run.
//!
//! cargo bench -p lemonade-cluster --bench switchboard

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use lemonade_cluster::rpc::Service;
use lemonade_cluster::switchboard::{Switchboard, SwitchboardTransport, parse};
use lemonade_cluster::transport::{Reply, Request, Transport, TransportError};
use lemonade_store::migrations::Role;

/// A service that answers at once.
struct Answers;

#[async_trait]
impl Transport for Answers {
    async fn send(&self, _: Request) -> Result<Reply, TransportError> {
        Ok(Reply {
            status: 200,
            retry_after: None,
            body: Bytes::from_static(b"null"),
            hlc: None,
        })
    }
}

fn request() -> Request {
    Request {
        service: Service::Stock,
        path: "/internal/v1/reservations/commit",
        step_key: Some("saga-1/commit".into()),
        body: Bytes::from_static(br#"{"order_id":"o-1"}"#),
        timeout: Duration::from_secs(2),
        hlc: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let direct: Arc<dyn Transport> = Arc::new(Answers);
    let idle = Arc::new(Switchboard::new(Role::Coordinator, 1).unwrap());
    let through_idle: Arc<dyn Transport> = Arc::new(SwitchboardTransport::new(Arc::new(Answers), idle));
    let armed = Arc::new(Switchboard::new(Role::Coordinator, 1).unwrap());
    armed.set(parse("crm: refuse 5%").unwrap()).unwrap();
    let through_armed: Arc<dyn Transport> = Arc::new(SwitchboardTransport::new(Arc::new(Answers), armed));
    let mut group = c.benchmark_group("send");
    for (name, transport) in [
        ("direct", &direct),
        ("switchboard, nothing set", &through_idle),
        ("switchboard, a rule of another service", &through_armed),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(async { black_box(transport.send(request()).await) }))
        });
    }
    group.finish();
    alternating(&rt, &direct, &through_idle);
}

/// Rounds of the same sends directly and through the idle switchboard, in turn (so that
/// whatever else the machine does falls on both alike), and the ratio of their medians.
fn alternating(rt: &tokio::runtime::Runtime, direct: &Arc<dyn Transport>, through_idle: &Arc<dyn Transport>) {
    const ROUNDS: usize = 21;
    const SENDS_PER_ROUND: u32 = 200_000;
    let round = |transport: &Arc<dyn Transport>| {
        let started = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..SENDS_PER_ROUND {
                black_box(transport.send(request()).await.ok());
            }
        });
        started.elapsed().as_nanos() as f64 / f64::from(SENDS_PER_ROUND)
    };
    let (mut plain, mut switched) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        plain.push(round(direct));
        switched.push(round(through_idle));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plain, switched) = (median(&mut plain), median(&mut switched));
    println!(
        "alternating, {ROUNDS} rounds of {SENDS_PER_ROUND} sends each: direct {plain:.1} ns, switchboard with nothing set {switched:.1} ns per send (median); ratio {:.3}",
        switched / plain
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
