//! [`Clock`]: where a store gets the time, so tests can fix it.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix milliseconds.
///
/// Any `Fn() -> i64 + Send + Sync + 'static` is a clock:
///
/// ```
/// use mcp_api::store::Clock;
///
/// let fixed = || 1_700_000_000_000_i64;
/// assert_eq!(fixed.now_unix_ms(), 1_700_000_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> i64 {
        // A clock set before 1970 reads as the epoch, one past year 292 million as i64::MAX.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            })
    }
}

impl<F> Clock for F
where
    F: Fn() -> i64 + Send + Sync + 'static,
{
    fn now_unix_ms(&self) -> i64 {
        self()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_unix_ms() > 1_577_836_800_000);
    }
}
