//! The whole cluster in a seeded deterministic simulation (issue 12).
//!
//! [`run`] takes one seed and runs, in this process on one thread, the coordinator, stock,
//! orders and CRM nodes exactly as production builds them (`lemonade_node::build`), on
//! SQLite files, under a current-thread tokio runtime whose clock is paused: virtual time
//! moves only when every task waits, so a run of minutes of shop time takes a fraction of a
//! second, and nothing but the seed decides what happens. Only the seams differ from
//! production: the network ([`net`]), each node's clock and ids ([`clock`]), the writer and
//! readers run inline (`lemonade_store::writer::Execution::Inline`), each disk's speed.
//!
//! A run has two phases. The **safety phase**: clients ([`workload`]) use the shop while
//! the faults the seed drew ([`faults`], swarm testing) hit every call, and a nemesis
//! crashes and restarts nodes, cuts links and jumps clocks. The **liveness phase**: every
//! fault healed, the cluster is given bounded time to settle. Then every node is stopped,
//! its final state read from the data folder as `lemonade check` reads it, and the
//! checker (`lemonade_checker`) judges the history and the state. The [`trace`]'s digest
//! proves the run replays.

pub mod cli;
pub mod clock;
pub mod faults;
pub mod net;
pub mod panics;
pub mod trace;
pub mod workload;
pub mod world;

use std::path::PathBuf;
use std::time::Duration;

use lemonade_checker::read::{ReadOptions, read_baseline, read_final_state};
use lemonade_checker::state::{BreakerPhase, BreakerState, ReadPoolState};
use lemonade_checker::{History, Invariant, Reports, check};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};

use crate::clock::Skew;
use crate::faults::{FaultKind, FaultRates};
use crate::net::{Net, NodeId};
use crate::trace::Trace;
use crate::workload::{Outcomes, Shared};
use crate::world::World;

/// How a run goes, beyond its seed.
#[derive(Clone, Debug)]
pub struct Options {
    /// The fault kinds the seed may switch on (swarm); the others stay off.
    pub faults: Vec<FaultKind>,
    /// Clients using the shop at once.
    pub clients: u64,
    /// How long the safety phase lasts, in virtual ms.
    pub safety_ms: u64,
    /// Longest the liveness phase lasts, in virtual ms; it ends sooner once settled.
    pub liveness_ms_max: u64,
    /// Keep the trace's lines (for `--trace`).
    pub keep_trace: bool,
    /// Where the run's data folder is made (a fresh folder inside it, removed after the
    /// run); when `None`, `/dev/shm` if there is one, else the system's temporary folder.
    pub scratch: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            faults: FaultKind::ALL.to_vec(),
            clients: 4,
            safety_ms: 20_000,
            liveness_ms_max: 240_000,
            keep_trace: false,
            scratch: None,
        }
    }
}

/// Longest a restarted node stays down, in virtual ms.
pub const DOWNTIME_MS_MAX: u64 = 5_000;
/// Longest a cut link stays cut, in virtual ms.
pub const PARTITION_MS_MAX: u64 = 6_000;
/// The most a clock jump moves a clock, in ms: past the coordinator's 30 s lease both ways.
pub const CLOCK_JUMP_MS_MAX: i64 = 90_000;
/// The most a clock drifts, in parts per million.
pub const DRIFT_PPM_MAX: i64 = 50_000;
/// How often the liveness phase looks whether the cluster has settled, in virtual ms.
pub const SETTLE_POLL_MS: u64 = 5_000;

/// What one run gave.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    /// The faults the seed drew.
    pub rates: FaultRates,
    /// The trace's digest: the same for every run of the seed.
    pub digest: String,
    pub reports: Reports,
    /// Operations by outcome.
    pub outcomes: Outcomes,
    /// Faults injected, by kind.
    pub faults: std::collections::BTreeMap<FaultKind, u64>,
    /// Virtual time the run covered.
    pub simulated: Duration,
    /// Wall time it took.
    pub wall: Duration,
    /// The trace's lines, when kept.
    pub trace: Vec<String>,
    /// What every client asked and was told (Jepsen's model; `History::to_json` writes it).
    pub history: History,
    /// Why the run itself broke, if it did: a panic of the simulation, or of a node's code,
    /// whether it reached the run or was caught and answered as an error (`panics`): the
    /// run is then invalid, whatever its reports say.
    pub panic: Option<String>,
}

impl Outcome {
    /// Whether the run ended and every invariant holds.
    pub fn is_valid(&self) -> bool {
        self.panic.is_none() && self.reports.all_valid()
    }

    /// The reports as text, or why the run broke.
    pub fn to_text(&self) -> String {
        match &self.panic {
            Some(why) => format!("the run panicked: {why}"),
            None => self.reports.to_text(),
        }
    }
}

/// Runs seed `seed`. Panics only on a bug of the simulation itself (a node that cannot be
/// built, a data folder that cannot be made).
pub fn run(seed: u64, options: &Options) -> Outcome {
    let wall = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let scratch = match options.scratch.as_deref().or_else(|| memory_folder()) {
        Some(dir) => tempfile::Builder::new().prefix("lemonade-sim-").tempdir_in(dir),
        None => tempfile::Builder::new().prefix("lemonade-sim-").tempdir(),
    }
    .expect("a scratch folder for the run");
    let data = scratch.path().join("data");
    panics::start();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(simulate(seed, options, data))
    }));
    let mut outcome = ran.unwrap_or_else(|panic| {
        let why = panics::message(panic.as_ref());
        Outcome {
            seed,
            rates: FaultRates::calm(),
            digest: String::new(),
            reports: Reports(Vec::new()),
            outcomes: Outcomes::default(),
            faults: Default::default(),
            simulated: Duration::ZERO,
            wall: Duration::ZERO,
            trace: Vec::new(),
            history: History::new(),
            panic: Some(why),
        }
    });
    // Tasks the nodes left (none should) go with the runtime, before the folder.
    drop(runtime);
    let (caught, count) = panics::finish();
    if outcome.panic.is_none()
        && let Some(first) = caught.first()
    {
        outcome.panic = Some(format!(
            "the nodes' code panicked {count} time(s), each caught and answered as an error; the first: {first}"
        ));
    }
    outcome.wall = wall.elapsed();
    outcome
}

/// A folder in memory (Linux's `/dev/shm`), where an fsync costs nothing: a simulated
/// crash keeps what was committed whether or not it reached a disk, so a real disk would
/// only slow the run.
fn memory_folder() -> Option<&'static std::path::Path> {
    let shm = std::path::Path::new("/dev/shm");
    shm.is_dir().then_some(shm)
}

async fn simulate(seed: u64, options: &Options, data: PathBuf) -> Outcome {
    let started = tokio::time::Instant::now();
    let mut rng = SmallRng::seed_from_u64(seed);
    let trace = Trace::new(options.keep_trace);
    let net = Net::new(rng.random(), trace.clone(), world::CLUSTER_TOKEN);
    let mut world = World::new(data.clone(), seed, net.clone(), trace.clone());
    for node in [NodeId::Stock, NodeId::Orders, NodeId::Crm, NodeId::Coordinator] {
        world.start(node).await;
    }
    let catalog = workload::catalog(&net).await;
    let baseline = read_baseline(&data).expect("the baseline of a fresh shop reads");
    let rates = FaultRates::draw(&mut rng, &options.faults);
    trace.event("nemesis", format_args!("seed {seed}: {}", rates.describe()));

    // Safety: the clients use the shop while everything fails.
    net.set_rates(rates.clone());
    let slow_disk = rates.rate(FaultKind::SlowDisk);
    for node in NodeId::ALL {
        world.set_slow_disk(node, slow_disk);
    }
    let shared = Shared::new(net.clone(), catalog);
    let until = tokio::time::Instant::now() + Duration::from_millis(options.safety_ms);
    let mut clients: Vec<_> = (1..=options.clients)
        .map(|process| {
            let seed = rng.random();
            tokio::spawn(workload::client(shared.clone(), process, seed, until))
        })
        .collect();
    clients.push(tokio::spawn(workload::tablet(
        shared.clone(),
        options.clients + 1,
        until,
    )));
    nemesis(&mut world, &net, &trace, &rates, &mut rng, until).await;

    // Heal: every node up, every link whole, every clock right, no fault.
    net.set_rates(FaultRates::calm());
    net.heal_links();
    for node in NodeId::ALL {
        world.set_slow_disk(node, 0.0);
        world.clock(node).set_skew(Skew::default());
        if !world.is_up(node) {
            world.start(node).await;
        }
    }
    trace.event("nemesis", "healed");
    for client in clients {
        client.await.expect("a client does not panic");
    }

    // Liveness: bounded time to settle.
    let options_read = ReadOptions {
        baseline,
        ..ReadOptions::default()
    };
    let settle_until = tokio::time::Instant::now() + Duration::from_millis(options.liveness_ms_max);
    loop {
        tokio::time::sleep(Duration::from_millis(SETTLE_POLL_MS)).await;
        let mut state = read_final_state(&data, &options_read).expect("the state reads while the cluster runs");
        state.breakers = Some(breaker_states(&world));
        // Settled: what the checker calls in flight is done (the same judgement, so the
        // phase cannot end early by a looser test of its own).
        let reports = check(&shared.history.lock(), &state);
        let settled = [Invariant::Liveness, Invariant::ErasuresDone]
            .into_iter()
            .all(|i| reports.get(i).is_some_and(|r| r.is_valid()));
        if settled || tokio::time::Instant::now() >= settle_until {
            break;
        }
    }
    let breakers = breaker_states(&world);
    let final_reads = workload::final_reads(&net, options.clients + 2).await;
    let ends = world.stop().await;
    trace.event("nemesis", "stopped");
    let mut state = read_final_state(&data, &options_read).expect("the final state reads");
    state.breakers = Some(breakers);
    state.final_reads = Some(final_reads);
    state.read_pools = Some(
        ends.into_iter()
            .map(|end| ReadPoolState {
                node: end.node.as_str().into(),
                strays: end.read_strays,
                returned_at_stop: Some(end.closed.readers_returned),
            })
            .collect(),
    );
    let history = shared.history.lock().clone();
    let reports = check(&history, &state);
    Outcome {
        seed,
        rates,
        digest: trace.digest(),
        reports,
        outcomes: shared.outcomes(),
        faults: trace.faults(),
        simulated: started.elapsed(),
        wall: Duration::ZERO,
        trace: trace.lines(),
        history,
        panic: None,
    }
}

/// Every running node's breakers, as the checker reads them.
fn breaker_states(world: &World) -> Vec<BreakerState> {
    world
        .breakers()
        .into_iter()
        .map(|(node, target, phase)| BreakerState {
            node: node.as_str().into(),
            target: target.into(),
            phase: match phase {
                lemonade_cluster::client::BreakerPhase::Closed => BreakerPhase::Closed,
                lemonade_cluster::client::BreakerPhase::Open => BreakerPhase::Open,
                lemonade_cluster::client::BreakerPhase::HalfOpen => BreakerPhase::HalfOpen,
            },
        })
        .collect()
}

/// An action of the nemesis that undoes an earlier one.
#[derive(Clone, Copy, Debug)]
enum Undo {
    Restart(NodeId),
    HealLinks,
}

/// Crashes nodes, cuts links and jumps clocks at the seed's rates until `until`, undoing
/// each after a while (restarts and heals due after `until` are left to the heal).
async fn nemesis(
    world: &mut World,
    net: &Net,
    trace: &Trace,
    rates: &FaultRates,
    rng: &mut SmallRng,
    until: tokio::time::Instant,
) {
    let kinds: Vec<(FaultKind, f64)> = [FaultKind::Crash, FaultKind::Partition, FaultKind::Clock]
        .into_iter()
        .map(|k| (k, rates.rate(k)))
        .filter(|(_, r)| *r > 0.0)
        .collect();
    let total_per_s: f64 = kinds.iter().map(|(_, r)| r).sum();
    let mut undo: Vec<(tokio::time::Instant, Undo)> = Vec::new();
    let next_action = |rng: &mut SmallRng| {
        if total_per_s <= 0.0 {
            return until;
        }
        // Exponential gaps: a Poisson process of the kinds' summed rate.
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        let gap_ms = (-u.ln() / total_per_s * 1_000.0).min(3_600_000.0);
        tokio::time::Instant::now() + Duration::from_millis(gap_ms as u64)
    };
    let mut act_at = next_action(rng);
    loop {
        let due = undo.iter().map(|(at, _)| *at).min();
        let next = due.map_or(act_at, |d| d.min(act_at)).min(until);
        tokio::time::sleep_until(next).await;
        let now = tokio::time::Instant::now();
        if now >= until {
            return;
        }
        // Undo what is due, in the order it was scheduled.
        let (ready, later): (Vec<_>, Vec<_>) = undo.into_iter().partition(|(at, _)| *at <= now);
        undo = later;
        for (_, action) in ready {
            match action {
                Undo::Restart(node) => {
                    if !world.is_up(node) {
                        world.start(node).await;
                    }
                }
                Undo::HealLinks => {
                    net.heal_links();
                    trace.event("nemesis", "links healed");
                }
            }
        }
        if now < act_at {
            continue;
        }
        act_at = next_action(rng);
        let pick: f64 = rng.random_range(0.0..total_per_s);
        let mut acc = 0.0;
        let kind = kinds
            .iter()
            .find(|(_, r)| {
                acc += r;
                pick < acc
            })
            .map_or(kinds[kinds.len() - 1].0, |(k, _)| *k);
        let node = *NodeId::ALL.choose(rng).expect("four nodes");
        match kind {
            FaultKind::Crash => {
                if world.is_up(node) {
                    world.crash(node).await;
                    let down_ms = rng.random_range(100..=DOWNTIME_MS_MAX);
                    undo.push((now + Duration::from_millis(down_ms), Undo::Restart(node)));
                }
            }
            FaultKind::Partition => {
                let other = *NodeId::ALL
                    .iter()
                    .filter(|n| **n != node)
                    .collect::<Vec<_>>()
                    .choose(rng)
                    .expect("three others");
                net.cut(node, *other);
                let both = rng.random_bool(0.5);
                if both {
                    net.cut(*other, node);
                }
                trace.fault(
                    "nemesis",
                    FaultKind::Partition,
                    format_args!(
                        "link {} {} {} cut",
                        node.as_str(),
                        if both { "<->" } else { "->" },
                        other.as_str()
                    ),
                );
                let heal_ms = rng.random_range(200..=PARTITION_MS_MAX);
                undo.push((now + Duration::from_millis(heal_ms), Undo::HealLinks));
            }
            FaultKind::Clock => {
                let skew = if rng.random_bool(0.7) {
                    Skew {
                        offset_ms: rng.random_range(-CLOCK_JUMP_MS_MAX..=CLOCK_JUMP_MS_MAX),
                        drift_ppm: world.clock(node).skew().drift_ppm,
                    }
                } else {
                    Skew {
                        offset_ms: world.clock(node).skew().offset_ms,
                        drift_ppm: rng.random_range(-DRIFT_PPM_MAX..=DRIFT_PPM_MAX),
                    }
                };
                world.clock(node).set_skew(skew);
                trace.fault(
                    "nemesis",
                    FaultKind::Clock,
                    format_args!(
                        "clock of {} now off by {} ms, drifting {} ppm",
                        node.as_str(),
                        skew.offset_ms,
                        skew.drift_ppm
                    ),
                );
            }
            _ => unreachable!("the nemesis draws only crash, partition and clock"),
        }
    }
}
