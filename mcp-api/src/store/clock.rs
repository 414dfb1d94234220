//! Where a store gets the time: [`jwks_verify::Clock`], the one clock of the whole
//! service (re-exported here as [`Clock`] and [`SystemClock`]), so tests can fix it with
//! [`jwks_verify::ManualClock`].
//!
//! ```
//! use mcp_api::store::Clock;
//! use jwks_verify::ManualClock;
//!
//! let fixed = ManualClock::at_unix_ms(1_700_000_000_000);
//! assert_eq!(fixed.unix_time_ms(), 1_700_000_000_000);
//! ```

pub use jwks_verify::{Clock, SystemClock};

/// `clock`'s Unix milliseconds as the store counts them (`i64`; one past year 292 million
/// reads as `i64::MAX`).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn now_unix_ms(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.unix_time_ms()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use jwks_verify::ManualClock;

    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(now_unix_ms(&SystemClock) > 1_577_836_800_000);
    }

    #[test]
    fn milliseconds_past_i64_saturate() {
        assert_eq!(now_unix_ms(&ManualClock::at_unix_ms(u64::MAX)), i64::MAX);
    }
}
