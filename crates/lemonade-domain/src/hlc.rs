//! Hybrid logical clocks (Kulkarni et al., 2014): each process's stamps follow its own wall
//! clock while it is ahead, and every stamp it makes after seeing another's sorts after that
//! one, so a cause always sorts before its effect, whatever the wall clocks say.
//!
//! Pure: the wall time comes in as an argument, read by the caller through the
//! [`Clock`](crate::ports::Clock) seam, and a clock's name is given (the process's role),
//! never drawn at random, so a simulation stays deterministic. Why our own and not uhlc:
//! docs/decisions.md, 2026-12-01.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::values::Timestamp;

/// Bits of a stamp that hold its logical counter; the rest hold milliseconds since the Unix
/// epoch (2⁴⁷ ms is 4,000+ years).
pub const LOGICAL_BITS: u32 = 16;
const LOGICAL_MAX: i64 = (1 << LOGICAL_BITS) - 1;

/// How far ahead of this process's wall clock a stamp from another may be before it is
/// refused instead of moving the clock forward (uhlc's and CockroachDB's default scale).
pub const SKEW_BOUND_MS_DEFAULT: i64 = 500;

/// Most peers whose offset a clock remembers (the cluster has four processes).
pub const PEERS_MAX: usize = 16;

/// One hybrid logical time: milliseconds (`physical_ms`) and a counter (`logical`) packed in
/// one `i64` that sorts as the pair does, so it can be stored and compared as one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Stamp(pub i64);

impl Stamp {
    /// The stamp of `physical_ms` and `logical` (at most 2¹⁶ − 1).
    pub fn new(physical_ms: i64, logical: i64) -> Self {
        debug_assert!((0..=LOGICAL_MAX).contains(&logical));
        Stamp((physical_ms << LOGICAL_BITS) | logical)
    }
    /// The first stamp of a wall time.
    pub fn at(wall: Timestamp) -> Self {
        Stamp::new(wall.millis().max(0), 0)
    }
    /// Its milliseconds part.
    pub fn physical_ms(self) -> i64 {
        self.0 >> LOGICAL_BITS
    }
    /// Its counter part.
    pub fn logical(self) -> i64 {
        self.0 & LOGICAL_MAX
    }
    /// The next stamp after this one.
    fn next(self) -> Stamp {
        Stamp(self.0 + 1)
    }
    /// Reads the text form `<physical_ms>.<logical>` (as [`fmt::Display`] writes it).
    pub fn parse(raw: &str) -> Option<Stamp> {
        let (ms, logical) = raw.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(logical) {
            return None;
        }
        let (ms, logical): (i64, i64) = (ms.parse().ok()?, logical.parse().ok()?);
        (ms < (1 << 46) && logical <= LOGICAL_MAX).then(|| Stamp::new(ms, logical))
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

/// A stamp from another process that is too far ahead of this one's wall clock: it was not
/// merged, and the clock did not move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooFarAhead {
    /// How far ahead of this process's wall clock the stamp was.
    pub ahead_ms: i64,
    /// The bound it passed.
    pub bound_ms: i64,
}

/// The hybrid logical clock of one process: its last stamp, its name, its bound, and the
/// offsets it measured from the stamps of its peers.
#[derive(Debug)]
pub struct Hlc {
    name: &'static str,
    bound_ms: i64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Stamp,
    /// Per peer: the last offset seen (its stamp's milliseconds minus this wall clock,
    /// positive when it is ahead) and how many stamps were seen.
    peers: BTreeMap<&'static str, PeerOffset>,
}

/// What a clock measured of a peer: the offset of its last stamp to this process's wall clock
/// when it came (positive: the peer's clock is ahead), and the stamps seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerOffset {
    /// The peer's last stamp minus this process's wall clock when it came, in ms. Includes
    /// the time the message travelled, and a peer's stamp that had been pushed forward by a
    /// third clock, so it bounds the offset from above rather than measuring it exactly.
    pub offset_ms: i64,
    /// Stamps seen from the peer.
    pub stamps_seen: u64,
    /// Stamps refused from the peer for being more than the bound ahead.
    pub stamps_refused: u64,
}

impl Hlc {
    /// A clock named `name` (the process's role: `stock`, `monolith`, ...) that refuses stamps
    /// more than `bound_ms` ahead.
    pub fn new(name: &'static str, bound_ms: i64) -> Self {
        assert!(bound_ms > 0, "the bound must be positive");
        Hlc {
            name,
            bound_ms,
            state: Mutex::new(State::default()),
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its bound.
    pub fn bound_ms(&self) -> i64 {
        self.bound_ms
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A stamp for an event (or a message sent) at `wall`: after every stamp this clock made
    /// or merged before.
    pub fn tick(&self, wall: Timestamp) -> Stamp {
        let mut state = self.state();
        let stamp = Stamp::at(wall).max(state.last.next());
        state.last = stamp;
        stamp
    }

    /// Merges `remote`, a stamp `peer` sent, seen at `wall`: the next stamp sorts after it.
    /// A stamp more than the bound ahead of `wall` is refused and changes nothing but the
    /// peer's offset.
    pub fn merge(&self, peer: &'static str, remote: Stamp, wall: Timestamp) -> Result<Stamp, TooFarAhead> {
        let mut state = self.state();
        let ahead_ms = remote.physical_ms() - wall.millis();
        let too_far = ahead_ms > self.bound_ms;
        if state.peers.len() < PEERS_MAX || state.peers.contains_key(peer) {
            let seen = state.peers.entry(peer).or_default();
            seen.offset_ms = ahead_ms;
            seen.stamps_seen += 1;
            seen.stamps_refused += u64::from(too_far);
        }
        if too_far {
            return Err(TooFarAhead {
                ahead_ms,
                bound_ms: self.bound_ms,
            });
        }
        let stamp = Stamp::at(wall).max(state.last.next()).max(remote.next());
        state.last = stamp;
        Ok(stamp)
    }

    /// The last stamp made or merged.
    pub fn last(&self) -> Stamp {
        self.state().last
    }

    /// What it measured of each peer, by name.
    pub fn peers(&self) -> BTreeMap<String, PeerOffset> {
        self.state().peers.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_wall_clock_and_never_go_back() {
        let hlc = Hlc::new("stock", 500);
        let a = hlc.tick(Timestamp(1_000));
        let b = hlc.tick(Timestamp(1_000));
        let c = hlc.tick(Timestamp(900)); // the wall clock stepped back
        let d = hlc.tick(Timestamp(2_000));
        assert_eq!(a, Stamp::new(1_000, 0));
        assert_eq!(b, Stamp::new(1_000, 1));
        assert_eq!(c, Stamp::new(1_000, 2));
        assert_eq!(d, Stamp::new(2_000, 0));
    }

    #[test]
    fn a_merged_stamp_sorts_before_everything_after_it() {
        let hlc = Hlc::new("crm", 500);
        let remote = Stamp::new(1_400, 7);
        let merged = hlc.merge("stock", remote, Timestamp(1_000)).unwrap();
        assert!(merged > remote);
        assert!(hlc.tick(Timestamp(1_001)) > merged);
        assert_eq!(hlc.peers()["stock"].offset_ms, 400);
    }

    #[test]
    fn a_stamp_beyond_the_bound_is_refused_and_moves_nothing() {
        let hlc = Hlc::new("crm", 500);
        let before = hlc.tick(Timestamp(1_000));
        let refused = hlc.merge("stock", Stamp::new(1_501, 0), Timestamp(1_000));
        assert_eq!(
            refused,
            Err(TooFarAhead {
                ahead_ms: 501,
                bound_ms: 500
            })
        );
        assert_eq!(hlc.last(), before);
        assert_eq!(hlc.peers()["stock"].stamps_refused, 1);
        assert!(hlc.merge("stock", Stamp::new(1_500, 0), Timestamp(1_000)).is_ok());
    }

    #[test]
    fn the_text_form_reads_back() {
        let s = Stamp::new(1_764_103_051_123, 42);
        assert_eq!(Stamp::parse(&s.to_string()), Some(s));
        for bad in ["", "1", "1.", ".1", "a.1", "1.65536", "-1.0", "1.0.0"] {
            assert_eq!(Stamp::parse(bad), None, "{bad:?}");
        }
    }
}
