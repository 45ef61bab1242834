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
use std::sync::atomic::{AtomicI64, Ordering};

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
///
/// Serialised as its text form (`"1764103051123.4"`), in headers, calls and the API alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(pub i64);

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Stamp::parse(&raw).ok_or_else(|| serde::de::Error::custom("not a hybrid logical clock stamp"))
    }
}

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
    bound_ms: AtomicI64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Stamp,
    /// Per peer: the last offset seen (its stamp's milliseconds minus this wall clock,
    /// positive when it is ahead) and how many stamps were seen.
    peers: BTreeMap<String, PeerOffset>,
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
            bound_ms: AtomicI64::new(bound_ms),
            state: Mutex::new(State::default()),
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its bound.
    pub fn bound_ms(&self) -> i64 {
        self.bound_ms.load(Ordering::Relaxed)
    }

    /// Sets its bound (a process's setting, given once before it serves).
    pub fn set_bound_ms(&self, bound_ms: i64) {
        assert!(bound_ms > 0, "the bound must be positive");
        self.bound_ms.store(bound_ms, Ordering::Relaxed);
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
    pub fn merge(&self, peer: &str, remote: Stamp, wall: Timestamp) -> Result<Stamp, TooFarAhead> {
        let mut state = self.state();
        let ahead_ms = remote.physical_ms() - wall.millis();
        let bound_ms = self.bound_ms();
        let too_far = ahead_ms > bound_ms;
        if state.peers.len() < PEERS_MAX || state.peers.contains_key(peer) {
            let seen = state.peers.entry(peer.to_owned()).or_default();
            seen.offset_ms = ahead_ms;
            seen.stamps_seen += 1;
            seen.stamps_refused += u64::from(too_far);
        }
        if too_far {
            return Err(TooFarAhead { ahead_ms, bound_ms });
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
        self.state().peers.clone()
    }

    /// Starts this clock at `stamp` at least: a restarted process resumes after the last
    /// stamp it recorded, even if its wall clock went back meanwhile.
    pub fn resume(&self, stamp: Stamp) {
        let mut state = self.state();
        state.last = state.last.max(stamp);
    }

    /// A stamp to send at `wall`, with this clock's name.
    pub fn send(&self, wall: Timestamp) -> Sent {
        Sent {
            from: self.name.to_owned(),
            stamp: self.tick(wall),
        }
    }

    /// Merges what `sent` carries (see [`Hlc::merge`]).
    pub fn receive(&self, sent: &Sent, wall: Timestamp) -> Result<Stamp, TooFarAhead> {
        self.merge(&sent.from, sent.stamp, wall)
    }
}

/// Longest name of a process a [`Sent`] may carry.
pub const NAME_CHARS_MAX: usize = 32;

/// A stamp as one process sends it to another, with the sender's name: the header
/// `lemonade-hlc: <name> <ms>.<counter>` on every call between services and every reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The sender's name (its role).
    pub from: String,
    /// The sender's stamp when it sent.
    pub stamp: Stamp,
}

impl Sent {
    /// Its header form: `<name> <ms>.<counter>`.
    pub fn to_header(&self) -> String {
        format!("{} {}", self.from, self.stamp)
    }
    /// Reads a header; `None` unless it is a name (1 to [`NAME_CHARS_MAX`] of `a-z`, `0-9`,
    /// `-`, `_`), one space and a stamp.
    pub fn parse(raw: &str) -> Option<Sent> {
        let (from, stamp) = raw.split_once(' ')?;
        let name_ok = (1..=NAME_CHARS_MAX).contains(&from.len())
            && from
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        name_ok.then_some(())?;
        Some(Sent {
            from: from.to_owned(),
            stamp: Stamp::parse(stamp)?,
        })
    }
}

/// Most events one order's timeline lists (from all services together); an order has a
/// dozen or so, a saga retried for long many more, of which the first are kept.
pub const TIMELINE_EVENTS_MAX: u32 = 500;
// The OpenAPI document says 500 (`Timeline::events`'s `max_items`, which must be a literal).
const _: () = assert!(TIMELINE_EVENTS_MAX == 500);

/// What happened, as recorded by the process it happened in. `what` is one of the words of
/// [`What`]; `detail` says more in a few words (a reason, an amount), never personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    /// The process that recorded it: `monolith`, `coordinator`, `stock`, `orders`, `crm`.
    pub service: String,
    /// Its hybrid logical clock stamp, `<ms>.<counter>`: what the timeline is ordered by.
    #[schema(value_type = String, example = "1764103051123.0")]
    pub hlc: Stamp,
    /// The wall-clock time as that process read it when it recorded the event (RFC 3339);
    /// two processes' wall clocks may disagree, so this may go backwards along a timeline.
    #[schema(value_type = String, format = DateTime)]
    pub wall_time: Timestamp,
    /// What happened: `order_placed`, `saga_started`, `saga_step`, `saga_retried`,
    /// `saga_rejected`, `stock_reserved`, `stock_committed`, `stock_released`,
    /// `stock_returned`, `order_confirmed`, `order_failed`, `order_cancelled`,
    /// `points_awarded`, `points_taken_back` (`What`).
    pub what: String,
    /// More about it, in a few words; empty when there is nothing to add.
    pub detail: String,
}

impl TimelineEvent {
    /// The order of a timeline: by stamp, then by process name (two processes can make the
    /// same stamp without ever having seen each other's; neither caused the other).
    pub fn sort(events: &mut [TimelineEvent]) {
        events.sort_by(|a, b| (a.hlc, &a.service).cmp(&(b.hlc, &b.service)));
    }
}

/// The kinds of event a timeline holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// The monolith placed an order in one transaction.
    OrderPlaced,
    /// The coordinator began an order's saga.
    SagaStarted,
    /// The coordinator's saga log moved to a new state (detail: the state).
    SagaStep,
    /// The coordinator refused the order (detail: why).
    SagaRejected,
    /// The coordinator's sweeper drove an unfinished saga again (a retry).
    SagaRetried,
    /// Stock held an order's ingredients.
    StockReserved,
    /// Stock made a hold final: the sale moves are on the ledger.
    StockCommitted,
    /// Stock let a hold go (a compensation, or an expired lease).
    StockReleased,
    /// Stock gave back what a cancelled order took (the cancel moves).
    StockReturned,
    /// The orders service confirmed the order.
    OrderConfirmed,
    /// The order failed (detail: why).
    OrderFailed,
    /// The order was cancelled.
    OrderCancelled,
    /// The customer was awarded the order's points.
    PointsAwarded,
    /// The order's points were taken back.
    PointsTakenBack,
    /// A customer was created.
    CustomerCreated,
    /// A customer's details changed.
    CustomerChanged,
    /// A customer was erased.
    CustomerErased,
}

impl What {
    /// The word stored and shown for it.
    pub fn as_str(self) -> &'static str {
        match self {
            What::OrderPlaced => "order_placed",
            What::SagaStarted => "saga_started",
            What::SagaStep => "saga_step",
            What::SagaRejected => "saga_rejected",
            What::SagaRetried => "saga_retried",
            What::StockReserved => "stock_reserved",
            What::StockCommitted => "stock_committed",
            What::StockReleased => "stock_released",
            What::StockReturned => "stock_returned",
            What::OrderConfirmed => "order_confirmed",
            What::OrderFailed => "order_failed",
            What::OrderCancelled => "order_cancelled",
            What::PointsAwarded => "points_awarded",
            What::PointsTakenBack => "points_taken_back",
            What::CustomerCreated => "customer_created",
            What::CustomerChanged => "customer_changed",
            What::CustomerErased => "customer_erased",
        }
    }
}

/// One order's timeline as the public API answers it: its events from every process in
/// stamp order, at most 500 (`TIMELINE_EVENTS_MAX`), and the services that could not be
/// asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timeline {
    /// The events, in hybrid-logical-clock order (ties by service name); at most 500.
    #[schema(max_items = 500)]
    pub events: Vec<TimelineEvent>,
    /// Whether there were more than the bound (the first are kept).
    pub truncated: bool,
    /// Services that did not answer in time: their events are missing from this answer.
    pub unreachable: Vec<String>,
}

impl Timeline {
    /// The timeline of the events each process gave (each at most one more than the bound,
    /// so a cut can be told), merged in stamp order and cut at [`TIMELINE_EVENTS_MAX`].
    pub fn of(parts: Vec<Vec<TimelineEvent>>, unreachable: Vec<String>) -> Timeline {
        let mut events: Vec<TimelineEvent> = parts.into_iter().flatten().collect();
        TimelineEvent::sort(&mut events);
        let truncated = events.len() > TIMELINE_EVENTS_MAX as usize;
        events.truncate(TIMELINE_EVENTS_MAX as usize);
        Timeline {
            events,
            truncated,
            unreachable,
        }
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
    fn a_timeline_merges_in_stamp_order_and_is_cut_at_its_bound() {
        let event = |service: &str, ms: i64| TimelineEvent {
            service: service.into(),
            hlc: Stamp::new(ms, 0),
            wall_time: Timestamp(ms),
            what: "x".into(),
            detail: String::new(),
        };
        let stock: Vec<_> = (0..400).map(|i| event("stock", 2 * i)).collect();
        let crm: Vec<_> = (0..200).map(|i| event("crm", 2 * i + 1)).collect();
        let timeline = Timeline::of(vec![stock, crm], vec!["orders".into()]);
        assert_eq!(timeline.events.len(), TIMELINE_EVENTS_MAX as usize);
        assert!(timeline.truncated);
        assert!(timeline.events.windows(2).all(|w| w[0].hlc < w[1].hlc));
        assert_eq!(timeline.unreachable, ["orders"]);
    }

    #[test]
    fn the_text_form_reads_back() {
        let s = Stamp::new(1_764_103_051_123, 42);
        assert_eq!(Stamp::parse(&s.to_string()), Some(s));
        for bad in ["", "1", "1.", ".1", "a.1", "1.65536", "-1.0", "1.0.0"] {
            assert_eq!(Stamp::parse(bad), None, "{bad:?}");
        }
        let sent = Sent {
            from: "stock".into(),
            stamp: s,
        };
        assert_eq!(Sent::parse(&sent.to_header()), Some(sent));
        for bad in ["stock", "stock 1", " 1.0", "Stock 1.0", "stock  1.0"] {
            assert_eq!(Sent::parse(bad), None, "{bad:?}");
        }
    }
}
