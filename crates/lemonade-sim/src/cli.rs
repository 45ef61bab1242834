//! `lemonade simulate`: runs seeds of the simulation, on every core, with a progress bar,
//! and ends with a summary; a failing seed prints itself and the command that replays it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lemonade_checker::{Invariant, Verdict};

use crate::faults::FaultKind;
use crate::{Options, Outcome};

/// Most seeds one command runs.
pub const SEEDS_MAX: u64 = 10_000_000;

#[derive(clap::Args, Clone, Debug)]
pub struct SimulateArgs {
    /// How many seeds to run, from `--from`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=SEEDS_MAX))]
    pub seeds: u64,
    /// The first seed of `--seeds` (default: drawn at random, and printed).
    #[arg(long)]
    pub from: Option<u64>,
    /// Run this one seed only, and print its reports (with `--trace`, its timeline).
    #[arg(long, conflicts_with_all = ["seeds", "from"])]
    pub seed: Option<u64>,
    /// Print the run's timeline: node, virtual time in ms, event (with `--seed`).
    #[arg(long, requires = "seed")]
    pub trace: bool,
    /// Write the run's history (what every client asked and was told, Jepsen's model) to
    /// this file as JSON (with `--seed`).
    #[arg(long, requires = "seed")]
    pub history: Option<std::path::PathBuf>,
    /// The fault kinds a seed may switch on, comma-separated (default: all): refuse,
    /// rate-limit, garble, lose-reply, timeout, duplicate, delay, partition, crash, clock,
    /// slow-disk; `none` for a calm run.
    #[arg(long, value_delimiter = ',', value_parser = parse_fault)]
    pub faults: Option<Vec<Option<FaultKind>>>,
    /// Clients using the shop at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,
    /// How long the safety phase (faults on) lasts, in virtual seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub safety_s: u64,
    /// Seeds run at once (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: Option<u64>,
}

fn parse_fault(name: &str) -> Result<Option<FaultKind>, String> {
    if name == "none" {
        return Ok(None);
    }
    FaultKind::parse(name).map(Some).ok_or_else(|| {
        let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("no fault kind {name:?}; the kinds are {}, or none", names.join(", "))
    })
}

impl SimulateArgs {
    /// The run options these flags give.
    pub fn options(&self) -> Options {
        Options {
            faults: match &self.faults {
                None => FaultKind::ALL.to_vec(),
                Some(kinds) => kinds.iter().flatten().copied().collect(),
            },
            clients: self.clients,
            safety_ms: self.safety_s * 1_000,
            keep_trace: self.trace,
            ..Options::default()
        }
    }

    /// The flags that replay seed `seed` as this command ran it.
    fn replay(&self, seed: u64) -> String {
        let mut command = format!("lemonade simulate --seed {seed}");
        if let Some(kinds) = &self.faults {
            let names: Vec<&str> = kinds.iter().map(|k| k.map_or("none", |k| k.as_str())).collect();
            command.push_str(&format!(" --faults {}", names.join(",")));
        }
        if self.clients != 4 {
            command.push_str(&format!(" --clients {}", self.clients));
        }
        if self.safety_s != 20 {
            command.push_str(&format!(" --safety-s {}", self.safety_s));
        }
        command
    }
}

/// Runs the command; the process's exit code: 0 every seed valid, 1 a seed failed.
pub fn run(args: &SimulateArgs) -> std::process::ExitCode {
    let options = args.options();
    if let Some(seed) = args.seed {
        let outcome = crate::run(seed, &options);
        for line in &outcome.trace {
            println!("{line}");
        }
        if let Some(path) = &args.history
            && let Err(e) = std::fs::write(path, outcome.history.to_json())
        {
            eprintln!("error: writing the history to {}: {e}", path.display());
            return std::process::ExitCode::from(2);
        }
        println!("seed {seed}: {}", outcome.rates.describe());
        println!("{}", outcome.to_text());
        println!(
            "digest {}; {} virtual s in {:.2} s",
            outcome.digest,
            outcome.simulated.as_secs(),
            outcome.wall.as_secs_f64()
        );
        return exit(outcome.is_valid());
    }
    let from = args.from.unwrap_or_else(rand::random);
    println!(
        "Simulating seeds {from} to {} ({} seeds)",
        from.wrapping_add(args.seeds - 1),
        args.seeds
    );
    let summary = run_seeds(from, args.seeds, args.jobs, &options, |outcome, bar| {
        if !outcome.is_valid() {
            bar.suspend(|| {
                eprintln!("seed {} FAILED ({}):", outcome.seed, outcome.rates.describe());
                if let Some(why) = &outcome.panic {
                    eprintln!("  the run panicked: {why}");
                }
                for report in outcome.reports.0.iter().filter(|r| !r.is_valid()) {
                    eprintln!("  {}", report.to_text());
                }
                eprintln!("  replay: {}", args.replay(outcome.seed));
            });
        }
    });
    println!("{}", summary.to_text());
    exit(summary.failed.is_empty())
}

fn exit(valid: bool) -> std::process::ExitCode {
    if valid {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// What many seeds gave.
#[derive(Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    /// Seeds that drew no fault at all (swarm testing leaves some calm).
    pub calm: u64,
    /// The seeds whose run broke an invariant, in the order they ended.
    pub failed: Vec<u64>,
    pub simulated: Duration,
    pub wall: Duration,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub faults: BTreeMap<FaultKind, u64>,
    /// Per invariant (in `Invariant::ALL` order): (valid, invalid, unknown) seeds.
    pub invariants: BTreeMap<usize, (u64, u64, u64)>,
}

impl Summary {
    fn add(&mut self, outcome: &Outcome) {
        self.seeds += 1;
        if outcome.rates.on().next().is_none() {
            self.calm += 1;
        }
        if !outcome.is_valid() {
            self.failed.push(outcome.seed);
        }
        self.simulated += outcome.simulated;
        self.ok += outcome.outcomes.ok;
        self.fail += outcome.outcomes.fail;
        self.info += outcome.outcomes.info;
        for (kind, n) in &outcome.faults {
            *self.faults.entry(*kind).or_default() += n;
        }
        for report in &outcome.reports.0 {
            let position = Invariant::ALL
                .iter()
                .position(|i| *i == report.invariant)
                .unwrap_or(usize::MAX);
            let entry = self.invariants.entry(position).or_default();
            match report.verdict {
                Verdict::Valid => entry.0 += 1,
                Verdict::Invalid { .. } => entry.1 += 1,
                Verdict::Unknown { .. } => entry.2 += 1,
            }
        }
    }

    /// The summary as a person reads it.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{} seeds run ({} calm), {} failed{}\n",
            self.seeds,
            self.calm,
            self.failed.len(),
            if self.failed.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    self.failed.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                )
            }
        );
        let wall = self.wall.as_secs_f64().max(f64::EPSILON);
        text.push_str(&format!(
            "{:.0} virtual s in {:.1} wall s: {:.0}x real time, {:.0} seeds a minute\n",
            self.simulated.as_secs_f64(),
            wall,
            self.simulated.as_secs_f64() / wall,
            self.seeds as f64 * 60.0 / wall
        ));
        text.push_str(&format!(
            "operations: {} ok, {} fail, {} info\n",
            self.ok, self.fail, self.info
        ));
        let faults: Vec<String> = self.faults.iter().map(|(k, n)| format!("{} {n}", k.as_str())).collect();
        text.push_str(&format!(
            "faults injected: {}\n",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(", ")
            }
        ));
        text.push_str("invariants (seeds valid / invalid / unknown):\n");
        for (position, (valid, invalid, unknown)) in &self.invariants {
            let name = Invariant::ALL.get(*position).map_or("?", |i| i.name());
            text.push_str(&format!("  {name}: {valid} / {invalid} / {unknown}\n"));
        }
        text
    }
}

/// Runs `count` seeds from `from` on `jobs` threads (default: one per core), each seed on a
/// runtime of its own; `each` sees every outcome as it ends.
pub fn run_seeds(
    from: u64,
    count: u64,
    jobs: Option<u64>,
    options: &Options,
    mut each: impl FnMut(&Outcome, &ProgressBar),
) -> Summary {
    let started = Instant::now();
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64));
    let next = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Outcome>();
    let bar = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {elapsed} ({msg})").expect("a valid template"),
    );
    let mut summary = Summary::default();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(count) {
            let (next, tx, options) = (Arc::clone(&next), tx.clone(), options.clone());
            scope.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return;
                    }
                    if tx.send(crate::run(from.wrapping_add(n), &options)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for outcome in rx {
            summary.add(&outcome);
            each(&outcome, &bar);
            bar.set_message(format!("{} failed", summary.failed.len()));
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    summary.wall = started.elapsed();
    summary
}
