//! The receiver's rate limiter (governor's) on tokio time: a runtime with paused time (a
//! test, the simulation) moves it forward, and nothing in it reads the wall clock.

use std::num::NonZeroU32;
use std::ops::Add;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

/// A moment of tokio's clock, as governor measures time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(tokio::time::Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, by: Nanos) -> Self {
        TokioInstant(self.0 + Duration::from(by))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, by: Nanos) -> Self {
        self.0.checked_sub(Duration::from(by)).map_or(*self, TokioInstant)
    }
}

/// governor's clock over [`tokio::time::Instant`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(tokio::time::Instant::now())
    }
}

/// A rate limit of one process: `rate_per_s` calls a second, `burst` at once above it.
pub struct Limiter {
    inner: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>,
    burst: NonZeroU32,
}

impl Limiter {
    /// A limit of `rate_per_s` a second with bursts of `burst` (each at least 1).
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).expect("positive");
        let rate = NonZeroU32::new(rate_per_s.max(1)).expect("positive");
        Limiter {
            inner: RateLimiter::direct_with_clock(Quota::per_second(rate).allow_burst(burst), TokioClock),
            burst,
        }
    }

    /// Takes `calls` cells, or says how long until they could pass. A request larger than
    /// the whole burst takes the whole burst instead (it could never pass otherwise).
    pub fn take(&self, calls: NonZeroU32) -> Result<(), Duration> {
        let cells = calls.min(self.burst);
        let taken = self.inner.check_n(cells).expect("at most the burst");
        taken.map_err(|not_until: NotUntil<TokioInstant>| not_until.wait_time_from(TokioClock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> NonZeroU32 {
        NonZeroU32::new(1).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_refills_as_tokio_time_passes_and_not_otherwise() {
        let limiter = Limiter::new(2, 2);
        assert_eq!(limiter.take(one()), Ok(()));
        assert_eq!(limiter.take(one()), Ok(()));
        let wait = limiter.take(one()).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Wall-clock time passing changes nothing while tokio's clock is paused.
        std::thread::sleep(Duration::from_millis(20));
        assert!(limiter.take(one()).is_err());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(limiter.take(one()), Ok(()));
        assert!(limiter.take(one()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_larger_than_the_burst_takes_the_whole_burst() {
        let limiter = Limiter::new(10, 4);
        assert_eq!(limiter.take(NonZeroU32::new(64).unwrap()), Ok(()));
        assert!(limiter.take(one()).is_err());
    }
}
