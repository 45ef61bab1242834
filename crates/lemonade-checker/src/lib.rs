//! A Jepsen-style checker for the shop, used by the deterministic simulation and by the
//! chaos run against real processes (issue 12).
//!
//! The inputs are a [`History`] of what every client asked and was told (Jepsen's model:
//! `invoke`, then `ok`, `fail` or `info`) and the shop's [`FinalState`] once the run is over
//! (read from a stopped shop's data folder by [`read::read_final_state`], or built by a
//! simulation). [`check`] judges each [`Invariant`] and gives one [`Report`] each: valid,
//! invalid (how many violations, and the first: operation index, node, time) or unknown.
//!
//! Modules: `op` (operations and what answers told), `history` (events, recording,
//! validation), `state` (the final state), `read` (reading it from a data folder),
//! `invariants` (one module per invariant), `report` (verdicts and their text).

pub mod history;
mod invariants;
pub mod op;
pub mod read;
pub mod report;
pub mod state;

pub use history::{Event, History, HistoryError, Operation, Phase};
pub use invariants::check;
pub use op::{ApiRequest, Line, Op, OrderTold, Told};
pub use report::{Invariant, Report, Reports, Verdict, Violation};
pub use state::FinalState;
