//! The trace of a run: every event the simulation sees (a call and its fault, a client's
//! request and answer, a crash, a partition, a clock jump), on the virtual clock. Its
//! digest is the proof that a seed replays the same run; kept lines are what `--trace`
//! prints, in the spirit of TigerBeetle's VOPR log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::faults::FaultKind;

/// Most trace lines kept for printing; the digest covers every line.
pub const LINES_KEPT_MAX: usize = 200_000;

/// A run's trace. Cheap to clone (shared).
#[derive(Clone)]
pub struct Trace {
    inner: Arc<Mutex<Inner>>,
    started: tokio::time::Instant,
}

struct Inner {
    digest: Sha256,
    keep: bool,
    lines: Vec<String>,
    events: u64,
    faults: BTreeMap<FaultKind, u64>,
}

impl Trace {
    /// A trace that keeps its lines when `keep` (for `--trace`). Must be made inside the
    /// simulation's runtime: its times are from then.
    pub fn new(keep: bool) -> Trace {
        Trace {
            inner: Arc::new(Mutex::new(Inner {
                digest: Sha256::new(),
                keep,
                lines: Vec::new(),
                events: 0,
                faults: BTreeMap::new(),
            })),
            started: tokio::time::Instant::now(),
        }
    }

    /// Virtual ms since the run began.
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Records that `who` saw `what` now.
    pub fn event(&self, who: &str, what: impl std::fmt::Display) {
        let mut line = String::with_capacity(64);
        let _ = write!(line, "{:>9} {who:<11} {what}", self.now_ms());
        let mut inner = self.inner.lock();
        inner.digest.update(line.as_bytes());
        inner.digest.update(b"\n");
        inner.events += 1;
        if inner.keep && inner.lines.len() < LINES_KEPT_MAX {
            inner.lines.push(line);
        }
    }

    /// Records an injected fault of `kind`: counted, and traced.
    pub fn fault(&self, who: &str, kind: FaultKind, what: impl std::fmt::Display) {
        *self.inner.lock().faults.entry(kind).or_default() += 1;
        self.event(who, format_args!("FAULT {}: {what}", kind.as_str()));
    }

    /// The digest of every line so far, in hex.
    pub fn digest(&self) -> String {
        let digest = self.inner.lock().digest.clone().finalize();
        digest.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }

    /// How many events were recorded.
    pub fn events(&self) -> u64 {
        self.inner.lock().events
    }

    /// Faults injected, by kind.
    pub fn faults(&self) -> BTreeMap<FaultKind, u64> {
        self.inner.lock().faults.clone()
    }

    /// The kept lines (empty unless kept).
    pub fn lines(&self) -> Vec<String> {
        self.inner.lock().lines.clone()
    }
}
