//! The faults of one run, drawn from its seed (swarm testing, as TigerBeetle's VOPR does):
//! each kind is switched on or off and given its own rate, so some seeds are calm and some
//! are storms of one or two kinds, which finds more than every fault always at one rate.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::SmallRng;

/// One kind of fault the simulation injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A call's connection is refused or reset before anything is sent.
    Refuse,
    /// A call is answered 429 with `Retry-After`, without being carried out.
    RateLimit,
    /// A call is carried out and its reply cannot be decoded (garbled or truncated).
    Garble,
    /// A call is carried out and its reply is lost: the unknown outcome.
    LoseReply,
    /// A call is not answered within the caller's timeout, and reaches its service only
    /// after it (up to 5 s late), carried out all the same.
    Timeout,
    /// A call is delivered twice: the copy up to 5 s later, after a retry or a compensation.
    Duplicate,
    /// A call or its reply is delayed (so replies come back in another order).
    Delay,
    /// Two nodes cannot reach each other (one way or both) until healed.
    Partition,
    /// A node crashes (its tasks and calls cut, its writer's unanswered commits lost) and
    /// restarts later.
    Crash,
    /// A node's clock jumps forward or back, beyond the lease lengths, or drifts.
    Clock,
    /// A node's commits take long (up to 200 ms) to be answered; its rate is a chance per
    /// commit.
    SlowDisk,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Refuse,
        FaultKind::RateLimit,
        FaultKind::Garble,
        FaultKind::LoseReply,
        FaultKind::Timeout,
        FaultKind::Duplicate,
        FaultKind::Delay,
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Clock,
        FaultKind::SlowDisk,
    ];

    /// Its name on the command line and in summaries (`lose-reply`, `slow-disk`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Refuse => "refuse",
            FaultKind::RateLimit => "rate-limit",
            FaultKind::Garble => "garble",
            FaultKind::LoseReply => "lose-reply",
            FaultKind::Timeout => "timeout",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Delay => "delay",
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Clock => "clock",
            FaultKind::SlowDisk => "slow-disk",
        }
    }

    /// The kind named `name` ([`FaultKind::as_str`]).
    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether this kind hits single calls (drawn per call) rather than a node or a link
    /// (drawn by the nemesis).
    pub fn is_per_call(self) -> bool {
        matches!(
            self,
            FaultKind::Refuse
                | FaultKind::RateLimit
                | FaultKind::Garble
                | FaultKind::LoseReply
                | FaultKind::Timeout
                | FaultKind::Duplicate
                | FaultKind::Delay
        )
    }
}

/// The most a per-call fault's probability is drawn as (25%): a storm, in which retries
/// still get through.
pub const CALL_RATE_MAX: f64 = 0.25;
/// The most nemesis actions of one kind per simulated second (one every 2 s).
pub const NEMESIS_RATE_MAX_PER_S: f64 = 0.5;

/// What one run injects: per kind, a rate (a probability per call for per-call kinds,
/// actions per simulated second for the others); a kind that is off is absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultRates {
    rates: BTreeMap<FaultKind, f64>,
}

impl FaultRates {
    /// No fault at all.
    pub fn calm() -> FaultRates {
        FaultRates::default()
    }

    /// Swarm: each kind in `allowed` is on with probability one half, at a rate drawn
    /// uniformly up to its maximum.
    pub fn draw(rng: &mut SmallRng, allowed: &[FaultKind]) -> FaultRates {
        let mut rates = BTreeMap::new();
        for kind in FaultKind::ALL {
            // Draw for every kind, allowed or not, so a switch does not shift the others.
            let on = rng.random_bool(0.5);
            let share: f64 = rng.random_range(0.05..=1.0);
            if on && allowed.contains(&kind) {
                let max = if kind.is_per_call() {
                    CALL_RATE_MAX
                } else {
                    NEMESIS_RATE_MAX_PER_S
                };
                rates.insert(kind, share * max);
            }
        }
        FaultRates { rates }
    }

    /// The rate of `kind`, 0 when off.
    pub fn rate(&self, kind: FaultKind) -> f64 {
        self.rates.get(&kind).copied().unwrap_or(0.0)
    }

    /// The kinds on, with their rates, in [`FaultKind::ALL`] order.
    pub fn on(&self) -> impl Iterator<Item = (FaultKind, f64)> + '_ {
        self.rates.iter().map(|(k, r)| (*k, *r))
    }

    /// One line: `lose-reply 12.0%, crash 0.31/s, ...`, or `calm`.
    pub fn describe(&self) -> String {
        if self.rates.is_empty() {
            return "calm".into();
        }
        self.on()
            .map(|(kind, rate)| {
                if kind.is_per_call() || kind == FaultKind::SlowDisk {
                    format!("{} {:.1}%", kind.as_str(), rate * 100.0)
                } else {
                    format!("{} {:.2}/s", kind.as_str(), rate)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
