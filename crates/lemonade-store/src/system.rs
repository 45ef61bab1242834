//! The production fillings of the domain's seams: the system clock and UUIDv7 ids.

use lemonade_domain::ports::{Clock, IdSource};
use lemonade_domain::values::Timestamp;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the system clock is after 1970");
        Timestamp(since.as_millis() as i64)
    }
}

/// UUIDv7: time-ordered, so ids sort by creation and make good cursors; the uuid crate keeps
/// them monotonic within the process even within one millisecond.
pub struct UuidV7Ids;

impl IdSource for UuidV7Ids {
    fn next_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }
}
