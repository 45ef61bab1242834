//! A history in Jepsen's model: every client operation as an `invoke` event, then at most
//! one completion, `ok` (2xx: it happened), `fail` (a refusal: it definitely did not) or
//! `info` (a timeout, a 5xx, a 202: unknown). Events are numbered in the order they were
//! recorded; each client (Jepsen's process) has at most one operation outstanding. An
//! operation never completed (its client crashed or gave up) counts as `info`.
//!
//! A history is built through [`History::invoke`] and [`History::complete`], which refuse an
//! event that would make it malformed, or read from JSON ([`History::from_json`]), which
//! checks the same rules: a malformed history is an error, never a panic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::op::{Op, Told};

/// Most events one history holds (two per operation).
pub const EVENTS_MAX: usize = 2_000_000;

/// Most bytes of a history's JSON that [`History::from_json`] reads (about 500 bytes for
/// each of [`EVENTS_MAX`] events).
pub const JSON_BYTES_MAX: usize = 1 << 30;

/// Where an event stands in its operation's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The client sent the request.
    Invoke,
    /// A 2xx other than 202: the operation happened.
    Ok,
    /// A refusal (4xx): the operation definitely did not happen.
    Fail,
    /// Unknown: a timeout, a broken connection, a 5xx, or a 202 (accepted, not done).
    Info,
}

impl Phase {
    /// The completion an HTTP answer makes: `None` (no answer: a timeout, a reset) and 202
    /// are `info`, other 2xx `ok`, 4xx other than 408 `fail` (the request was refused before
    /// it did anything, the API's contract), everything else `info`.
    pub fn of_answer(http_status: Option<u16>) -> Phase {
        match http_status {
            Some(202) | None => Phase::Info,
            Some(200..=299) => Phase::Ok,
            Some(408) => Phase::Info,
            Some(400..=499) => Phase::Fail,
            Some(_) => Phase::Info,
        }
    }

    /// Its name in a history (`invoke`, `ok`, `fail`, `info`), as Jepsen's `:type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Invoke => "invoke",
            Phase::Ok => "ok",
            Phase::Fail => "fail",
            Phase::Info => "info",
        }
    }
}

/// One event of a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the history, from 0.
    pub index: u64,
    /// The client (Jepsen's process) it belongs to.
    pub process: u64,
    /// When it was recorded, in ms of the caller's clock (simulated or wall).
    pub time_ms: i64,
    pub phase: Phase,
    /// The operation (repeated on its completion, as Jepsen does).
    pub op: Op,
    /// What the answer told, on a completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<Told>,
}

/// Why a history is malformed, or cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistoryError {
    #[error("the history holds more than {max} events")]
    TooLong { max: usize },
    #[error("event {position} has index {index}: events are numbered 0, 1, 2, ... in order")]
    Index { position: usize, index: u64 },
    #[error("event {index}: process {process} invokes while its operation of event {outstanding} is outstanding")]
    Overlapping { index: u64, process: u64, outstanding: u64 },
    #[error("event {index}: process {process} completes an operation it never invoked")]
    NotInvoked { index: u64, process: u64 },
    #[error("event {index}: the completion's operation is not the one event {invoke} invoked")]
    OtherOp { index: u64, invoke: u64 },
    #[error("event {index}: a completion must be ok, fail or info, not invoke")]
    InvokeAsCompletion { index: u64 },
    #[error("event {index}: {what}")]
    TooBig { index: u64, what: String },
    #[error("the history's JSON has {bytes} bytes, at most {max}")]
    JsonTooBig { bytes: usize, max: usize },
    #[error("the history is not JSON of a history: {0}")]
    Json(String),
}

/// A history of client operations. Always well formed: every way of building one checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct History {
    events: Vec<Event>,
    /// Each process's outstanding invoke (its event index).
    #[serde(skip)]
    outstanding: BTreeMap<u64, u64>,
}

/// An operation: its invoke and, once it came, its completion (`None`: never completed,
/// which counts as `info`).
#[derive(Clone, Copy, Debug)]
pub struct Operation<'h> {
    pub invoke: &'h Event,
    pub completion: Option<&'h Event>,
}

impl<'h> Operation<'h> {
    /// How it ended: its completion's phase, or `info` when it never completed.
    pub fn outcome(&self) -> Phase {
        self.completion.map_or(Phase::Info, |c| c.phase)
    }

    /// What the answer told, if an answer came.
    pub fn told(&self) -> Option<&'h Told> {
        self.completion.and_then(|c| c.told.as_ref())
    }

    /// What was asked.
    pub fn op(&self) -> &'h Op {
        &self.invoke.op
    }

    /// The index of the event that decided it: its completion, or its invoke.
    pub fn index(&self) -> u64 {
        self.completion.unwrap_or(self.invoke).index
    }

    /// When it was decided, in the history's ms.
    pub fn time_ms(&self) -> i64 {
        self.completion.unwrap_or(self.invoke).time_ms
    }
}

impl History {
    /// An empty history, to record into.
    pub fn new() -> History {
        History::default()
    }

    /// Every event, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Records that `process` invoked `op` at `time_ms`; returns the event's index. Refused
    /// while `process` has an operation outstanding, or when the history is full.
    pub fn invoke(&mut self, process: u64, time_ms: i64, op: Op) -> Result<u64, HistoryError> {
        self.push(Event {
            index: self.events.len() as u64,
            process,
            time_ms,
            phase: Phase::Invoke,
            op,
            told: None,
        })
    }

    /// Records the completion of `process`'s outstanding operation (`phase`: ok, fail or
    /// info) with what the answer told; returns the event's index.
    pub fn complete(&mut self, process: u64, time_ms: i64, phase: Phase, told: Told) -> Result<u64, HistoryError> {
        let index = self.events.len() as u64;
        if phase == Phase::Invoke {
            return Err(HistoryError::InvokeAsCompletion { index });
        }
        let invoke = *self
            .outstanding
            .get(&process)
            .ok_or(HistoryError::NotInvoked { index, process })?;
        let op = self.events[invoke as usize].op.clone();
        self.push(Event {
            index,
            process,
            time_ms,
            phase,
            op,
            told: Some(told),
        })
    }

    /// Records a whole operation: its invoke at `invoked_ms`, then its completion as an HTTP
    /// answer (`http_status`, `None` for no answer: see [`Phase::of_answer`]) at `completed_ms`.
    pub fn record(
        &mut self,
        process: u64,
        op: Op,
        invoked_ms: i64,
        completed_ms: i64,
        told: Told,
    ) -> Result<(u64, u64), HistoryError> {
        let phase = Phase::of_answer(told.http_status);
        let invoke = self.invoke(process, invoked_ms, op)?;
        Ok((invoke, self.complete(process, completed_ms, phase, told)?))
    }

    /// A history of `events`, refused when malformed (see [`HistoryError`]).
    pub fn from_events(events: Vec<Event>) -> Result<History, HistoryError> {
        if events.len() > EVENTS_MAX {
            return Err(HistoryError::TooLong { max: EVENTS_MAX });
        }
        let mut history = History::new();
        for (position, event) in events.into_iter().enumerate() {
            if event.index != position as u64 {
                return Err(HistoryError::Index {
                    position,
                    index: event.index,
                });
            }
            history.push(event)?;
        }
        Ok(history)
    }

    /// Reads a history written by [`History::to_json`], refused when malformed or longer
    /// than [`JSON_BYTES_MAX`].
    pub fn from_json(json: &str) -> Result<History, HistoryError> {
        if json.len() > JSON_BYTES_MAX {
            return Err(HistoryError::JsonTooBig {
                bytes: json.len(),
                max: JSON_BYTES_MAX,
            });
        }
        #[derive(Deserialize)]
        struct File {
            events: Vec<Event>,
        }
        let file: File = serde_json::from_str(json).map_err(|e| HistoryError::Json(e.to_string()))?;
        History::from_events(file.events)
    }

    /// The history as JSON (`{"events": [...]}`), for a file a later check reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a history is plain data")
    }

    /// Every operation, in the order of their invokes.
    pub fn operations(&self) -> Vec<Operation<'_>> {
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        let mut ops: Vec<Operation<'_>> = Vec::new();
        for event in &self.events {
            if event.phase == Phase::Invoke {
                open.insert(event.process, ops.len());
                ops.push(Operation {
                    invoke: event,
                    completion: None,
                });
            } else if let Some(at) = open.remove(&event.process) {
                ops[at].completion = Some(event);
            }
        }
        ops
    }

    /// Appends `event` if it keeps the history well formed.
    fn push(&mut self, event: Event) -> Result<u64, HistoryError> {
        let index = event.index;
        if self.events.len() >= EVENTS_MAX {
            return Err(HistoryError::TooLong { max: EVENTS_MAX });
        }
        if let Some(what) = event
            .op
            .too_big()
            .or_else(|| event.told.as_ref().and_then(Told::too_big))
        {
            return Err(HistoryError::TooBig { index, what });
        }
        let outstanding = self.outstanding.get(&event.process).copied();
        match (event.phase, outstanding) {
            (Phase::Invoke, Some(outstanding)) => {
                return Err(HistoryError::Overlapping {
                    index,
                    process: event.process,
                    outstanding,
                });
            }
            (Phase::Invoke, None) => {
                self.outstanding.insert(event.process, index);
            }
            (_, None) => {
                return Err(HistoryError::NotInvoked {
                    index,
                    process: event.process,
                });
            }
            (_, Some(invoke)) => {
                if self.events[invoke as usize].op != event.op {
                    return Err(HistoryError::OtherOp { index, invoke });
                }
                self.outstanding.remove(&event.process);
            }
        }
        self.events.push(event);
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel(order: &str) -> Op {
        Op::CancelOrder { order: order.into() }
    }

    #[test]
    fn answers_map_to_jepsen_phases() {
        assert_eq!(Phase::of_answer(Some(201)), Phase::Ok);
        assert_eq!(Phase::of_answer(Some(202)), Phase::Info);
        assert_eq!(Phase::of_answer(Some(409)), Phase::Fail);
        assert_eq!(Phase::of_answer(Some(503)), Phase::Info);
        assert_eq!(Phase::of_answer(None), Phase::Info);
    }

    #[test]
    fn a_second_invoke_while_one_is_outstanding_is_refused() {
        let mut h = History::new();
        h.invoke(1, 0, cancel("a")).unwrap();
        assert_eq!(
            h.invoke(1, 1, cancel("b")),
            Err(HistoryError::Overlapping {
                index: 1,
                process: 1,
                outstanding: 0
            })
        );
        h.invoke(2, 1, cancel("b")).unwrap();
    }

    #[test]
    fn a_completion_without_its_invoke_is_refused() {
        let mut h = History::new();
        assert_eq!(
            h.complete(3, 0, Phase::Ok, Told::nothing()),
            Err(HistoryError::NotInvoked { index: 0, process: 3 })
        );
    }

    #[test]
    fn a_history_read_back_is_checked_like_one_recorded() {
        let mut h = History::new();
        h.record(1, cancel("a"), 0, 5, Told::status(200)).unwrap();
        let read = History::from_json(&h.to_json()).unwrap();
        assert_eq!(read, h);
        let mut events = h.events().to_vec();
        events.swap(0, 1);
        assert!(matches!(
            History::from_events(events.clone()),
            Err(HistoryError::Index { .. })
        ));
        events[0].index = 0;
        events[1].index = 1;
        assert_eq!(
            History::from_events(events),
            Err(HistoryError::NotInvoked { index: 0, process: 1 })
        );
        assert!(matches!(
            History::from_json("{\"events\": 3}"),
            Err(HistoryError::Json(_))
        ));
    }

    #[test]
    fn a_completion_of_another_operation_is_refused() {
        let mut h = History::new();
        h.invoke(1, 0, cancel("a")).unwrap();
        let mut events = h.events().to_vec();
        events.push(Event {
            index: 1,
            process: 1,
            time_ms: 1,
            phase: Phase::Ok,
            op: cancel("b"),
            told: None,
        });
        assert_eq!(
            History::from_events(events),
            Err(HistoryError::OtherOp { index: 1, invoke: 0 })
        );
    }

    #[test]
    fn an_operation_never_completed_counts_as_info() {
        let mut h = History::new();
        h.invoke(1, 0, cancel("a")).unwrap();
        let ops = h.operations();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].outcome(), Phase::Info);
    }

    #[test]
    fn an_oversized_text_is_refused_not_held() {
        let mut h = History::new();
        let big = "x".repeat(crate::op::TEXT_BYTES_MAX + 1);
        assert!(matches!(
            h.invoke(1, 0, cancel(&big)),
            Err(HistoryError::TooBig { index: 0, .. })
        ));
    }
}
