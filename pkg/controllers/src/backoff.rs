//! [`ItemBackoff`]: the wait before retrying an object whose pass failed, doubling with each
//! consecutive failure of that object (client-go's `ItemExponentialFailureRateLimiter`, which
//! upstream's controllers put in front of their work queues).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Consecutive failures per object, and the waits they give.
#[derive(Debug)]
pub struct ItemBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl ItemBackoff {
    /// Waits of `base` after a first failure, doubled for each further one, at most `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        ItemBackoff {
            base,
            max,
            failures: Mutex::default(),
        }
    }

    /// Counts one more failure of `name`: the wait before its next pass.
    pub fn failed(&self, name: &str) -> Duration {
        // A panic elsewhere while holding the lock leaves the counts usable.
        let mut all = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let earlier = all.entry(name.to_owned()).or_default();
        let factor = 2u32.checked_pow(*earlier).unwrap_or(u32::MAX);
        *earlier = earlier.saturating_add(1);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// `name`'s pass went through (or it is gone): its next failure waits the least again
    /// (client-go's `Forget`).
    pub fn forget(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_per_object_until_a_pass_goes_through() {
        let ms = Duration::from_millis;
        let backoff = ItemBackoff::new(ms(200), Duration::from_secs(1000));
        let waits: Vec<Duration> = (0..40).map(|_| backoff.failed("a")).collect();
        assert_eq!(waits[..4], [ms(200), ms(400), ms(800), ms(1600)]);
        assert_eq!(waits[12], ms(819_200));
        assert!(waits[13..].iter().all(|w| *w == Duration::from_secs(1000)));
        // Each object counts its own failures.
        assert_eq!(backoff.failed("b"), ms(200));
        // A pass that goes through starts the count again.
        backoff.forget("a");
        assert_eq!(backoff.failed("a"), ms(200));
        assert_eq!(backoff.failed("b"), ms(400));
    }
}
