//! Keys of requests still being worked on, so that a second request with the same
//! idempotency key gets "in progress" rather than queueing behind the first. The database
//! stays the judge of what was done; this set only answers the concurrent case early.

use std::collections::HashSet;
use std::sync::Arc;

use lemonade_domain::ShopError;
use parking_lot::Mutex;

/// Most keys in flight at once; past that new keyed requests are refused as busy.
pub const IN_FLIGHT_MAX: usize = 65_536;

#[derive(Clone, Default)]
pub struct InFlight {
    keys: Arc<Mutex<HashSet<String>>>,
}

/// Held while a keyed request runs; releases the key when dropped (also on cancellation).
pub struct Claim {
    keys: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl InFlight {
    pub fn claim(&self, key: &str) -> Result<Claim, ShopError> {
        let mut keys = self.keys.lock();
        if keys.len() >= IN_FLIGHT_MAX {
            return Err(ShopError::unavailable("the shop is busy: too many requests in flight"));
        }
        if !keys.insert(key.to_owned()) {
            return Err(ShopError::RequestInProgress);
        }
        Ok(Claim {
            keys: Arc::clone(&self.keys),
            key: key.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.keys.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_flight_is_refused_until_released() {
        let set = InFlight::default();
        let first = set.claim("k").unwrap();
        assert_eq!(set.claim("k").err(), Some(ShopError::RequestInProgress));
        drop(first);
        assert!(set.claim("k").is_ok());
    }
}
