//! Each node's own clock and its ids, on the simulation's virtual time.
//!
//! A node reads the time of what it writes from its [`SimClock`]: the runtime's paused clock
//! (tokio's, which only moves when every task waits) since the run began, plus the node's
//! offset and drift, which the nemesis changes. Its ids come from [`SimIds`]: UUIDv7 made of
//! the node's clock and a seeded counter, so they sort by creation on one node, as
//! production's do, and are the same on every run of a seed.

use std::sync::Arc;

use lemonade_domain::ports::{Clock, IdSource};
use lemonade_domain::values::Timestamp;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// 2026-01-01T00:00:00Z in ms since the Unix epoch: where every node's clock starts.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// A node's wall clock: virtual time since the run began, shifted by an offset and scaled
/// by a drift, both set by the nemesis.
pub struct SimClock {
    started: tokio::time::Instant,
    skew: Mutex<Skew>,
}

/// How far a clock is off: `offset_ms` added, and `drift_ppm` parts per million of the
/// elapsed time (positive runs fast).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skew {
    pub offset_ms: i64,
    pub drift_ppm: i64,
}

impl SimClock {
    /// A clock that reads [`EPOCH_MS`] now. Must be made inside the simulation's runtime.
    pub fn new() -> SimClock {
        SimClock {
            started: tokio::time::Instant::now(),
            skew: Mutex::new(Skew::default()),
        }
    }

    /// Sets how far this clock is off from now on (a jump, forward or back, of the
    /// difference in offset).
    pub fn set_skew(&self, skew: Skew) {
        *self.skew.lock() = skew;
    }

    pub fn skew(&self) -> Skew {
        *self.skew.lock()
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::new()
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        let elapsed_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX / 4);
        let skew = *self.skew.lock();
        Timestamp(EPOCH_MS + elapsed_ms + elapsed_ms * skew.drift_ppm / 1_000_000 + skew.offset_ms)
    }
}

/// UUIDv7 ids from a node's clock and a seeded counter: within one node they sort by
/// creation even when its clock goes back (the millisecond never goes below the last one
/// used, as the uuid crate's own generator does), and a seed gives the same ids every run.
pub struct SimIds {
    clock: Arc<SimClock>,
    state: Mutex<IdState>,
}

struct IdState {
    last_ms: i64,
    counter: u64,
    rng: SmallRng,
}

impl SimIds {
    pub fn new(clock: Arc<SimClock>, seed: u64) -> SimIds {
        SimIds {
            clock,
            state: Mutex::new(IdState {
                last_ms: 0,
                counter: 0,
                rng: SmallRng::seed_from_u64(seed),
            }),
        }
    }
}

impl IdSource for SimIds {
    fn next_id(&self) -> String {
        let now = self.clock.now().millis();
        let mut state = self.state.lock();
        if now > state.last_ms {
            state.last_ms = now;
        }
        state.counter += 1;
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&state.counter.to_be_bytes());
        state.rng.fill(&mut bytes[8..]);
        let ms = u64::try_from(state.last_ms).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(ms, &bytes)
            .into_uuid()
            .to_string()
    }
}
