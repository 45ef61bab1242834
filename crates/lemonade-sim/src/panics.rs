//! Panics of the nodes' own code during a run. The shop catches a panic where it would
//! otherwise take a process down (a handler's becomes a 500, a placement's a 503, a writer
//! job's a rolled-back batch, a read's an error), so one can pass as an ordinary error
//! answer that the checker counts as an unknown outcome. A panic is a bug whatever its
//! answer, so a run records every panic on its thread and fails if there was one.

use std::cell::{Cell, RefCell};
use std::sync::Once;

/// Most panics a run keeps the words of.
pub const KEPT_MAX: usize = 8;

thread_local! {
    /// Whether this thread is running a seed, whose panics are recorded.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    /// The panics recorded on this thread (at most [`KEPT_MAX`]) and how many there were.
    static CAUGHT: RefCell<(Vec<String>, u64)> = const { RefCell::new((Vec::new(), 0)) };
}

static HOOK: Once = Once::new();

/// Records the panics of this thread from now until [`finish`]: a panic hook (installed once
/// for the process, over the one before it) keeps their words instead of printing them.
pub fn start() {
    HOOK.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !RECORDING.with(Cell::get) {
                return before(info);
            }
            let words = match info.location() {
                Some(at) => format!("{} (at {}:{})", message(info.payload()), at.file(), at.line()),
                None => message(info.payload()),
            };
            CAUGHT.with(|c| {
                let (kept, count) = &mut *c.borrow_mut();
                *count += 1;
                if kept.len() < KEPT_MAX {
                    kept.push(words);
                }
            });
        }));
    });
    CAUGHT.with(|c| *c.borrow_mut() = (Vec::new(), 0));
    RECORDING.with(|r| r.set(true));
}

/// Stops recording this thread's panics; the ones recorded since [`start`] (their first
/// [`KEPT_MAX`] words) and how many there were.
pub fn finish() -> (Vec<String>, u64) {
    RECORDING.with(|r| r.set(false));
    CAUGHT.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// A panic's message, if it has one of the usual kinds.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_recorded_while_recording_and_not_after() {
        start();
        let caught = std::panic::catch_unwind(|| panic!("a bug in a handler"));
        assert!(caught.is_err());
        let (words, count) = finish();
        assert_eq!(count, 1);
        assert!(words[0].starts_with("a bug in a handler (at "), "{words:?}");
        start();
        let (words, count) = finish();
        assert_eq!((words.len(), count), (0, 0), "each run starts empty");
    }
}
