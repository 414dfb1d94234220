//! Time, injected so that tests (yours and ours) can run on a virtual clock.
//!
//! [`Clock`] is meant to be the one time source of a whole service: the verifier reads it,
//! and so can the code around it (token lifetimes in seconds, timestamps in milliseconds,
//! session idle times on the monotonic clock). Share one as `Arc<dyn Clock>`, which is a
//! `Clock` too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of monotonic time (for cache ages, deadlines and elapsed times) and wall-clock
/// time (for `exp`, `nbf`, `iat`, and timestamps).
///
/// Implement [`now`](Self::now) and [`unix_time`](Self::unix_time); override
/// [`unix_time_ms`](Self::unix_time_ms) when your clock has better than whole seconds.
/// [`SystemClock`] reads the operating system; [`ManualClock`] only moves when told to, all
/// its readings together.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now. Never goes back.
    fn now(&self) -> Instant;

    /// Seconds since the Unix epoch.
    fn unix_time(&self) -> u64;

    /// Milliseconds since the Unix epoch. The default is [`unix_time`](Self::unix_time) in
    /// whole seconds times 1000; [`SystemClock`] and [`ManualClock`] give milliseconds.
    fn unix_time_ms(&self) -> u64 {
        self.unix_time().saturating_mul(1000)
    }

    /// Time since `earlier`, an earlier reading of [`now`](Self::now) (zero if it is later).
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwks_verify::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::at_unix(1_700_000_000);
    /// let started = clock.now();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(clock.elapsed(started), Duration::from_secs(5));
    /// ```
    fn elapsed(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

/// A shared clock is a clock: one `Arc<dyn Clock>` can serve a verifier and everything
/// around it.
///
/// ```
/// use std::sync::Arc;
/// use jwks_verify::{Clock, ManualClock, Policy, Verifier};
///
/// let manual = ManualClock::at_unix(1_700_000_000);
/// let clock: Arc<dyn Clock> = Arc::new(manual.clone());
/// # let jwks = br#"{"keys":[{"kty":"RSA","kid":"k1","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}"#;
/// let verifier = Verifier::builder(Policy::new("https://issuer.example", "my-api"))
///     .static_jwks(jwks)
///     .clock(Arc::clone(&clock))
///     .build()?;
/// assert_eq!(clock.unix_time_ms(), 1_700_000_000_000);
/// # drop(verifier);
/// # Ok::<(), jwks_verify::BuildError>(())
/// ```
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn unix_time(&self) -> u64 {
        (**self).unix_time()
    }

    fn unix_time_ms(&self) -> u64 {
        (**self).unix_time_ms()
    }

    fn elapsed(&self, earlier: Instant) -> Duration {
        (**self).elapsed(earlier)
    }
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Time since the Unix epoch; zero for a clock set before 1970.
    fn since_epoch() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_time(&self) -> u64 {
        SystemClock::since_epoch().as_secs()
    }

    fn unix_time_ms(&self) -> u64 {
        u64::try_from(SystemClock::since_epoch().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share the same time.
///
/// Every reading is virtual and moves together: [`now`](Clock::now),
/// [`unix_time`](Clock::unix_time), [`unix_time_ms`](Clock::unix_time_ms) and
/// [`elapsed`](Clock::elapsed).
///
/// ```
/// use std::time::Duration;
/// use jwks_verify::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix(1_300_819_000);
/// let before = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.unix_time(), 1_300_819_090);
/// assert_eq!(clock.now() - before, Duration::from_secs(90));
///
/// let clock = ManualClock::at_unix_ms(1_700_000_000_250);
/// clock.advance(Duration::from_millis(800));
/// assert_eq!(clock.unix_time_ms(), 1_700_000_001_050);
/// assert_eq!(clock.unix_time(), 1_700_000_001);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    origin: Instant,
    origin_unix_ms: u64,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock whose wall time starts at `unix_seconds`.
    pub fn at_unix(unix_seconds: u64) -> Self {
        ManualClock::at_unix_ms(unix_seconds.saturating_mul(1000))
    }

    /// A clock whose wall time starts at `unix_millis` milliseconds since the epoch.
    pub fn at_unix_ms(unix_millis: u64) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                origin: Instant::now(),
                origin_unix_ms: unix_millis,
                offset_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.inner.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    fn offset(&self) -> Duration {
        Duration::from_nanos(self.inner.offset_nanos.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.origin + self.offset()
    }

    fn unix_time(&self) -> u64 {
        self.unix_time_ms() / 1000
    }

    fn unix_time_ms(&self) -> u64 {
        let offset_ms = u64::try_from(self.offset().as_millis()).unwrap_or(u64::MAX);
        self.inner.origin_unix_ms.saturating_add(offset_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_readings_move_together() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let start = shared.now();
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(shared.unix_time(), 1_700_000_001);
        assert_eq!(shared.unix_time_ms(), 1_700_000_001_500);
        assert_eq!(shared.elapsed(start), Duration::from_millis(1_500));
        assert_eq!(shared.now() - start, Duration::from_millis(1_500));
    }

    #[test]
    fn system_clock_seconds_and_milliseconds_agree() {
        let clock = SystemClock;
        let ms = clock.unix_time_ms();
        let s = clock.unix_time();
        assert!(ms / 1000 <= s && s <= ms / 1000 + 1, "{ms} ms vs {s} s");
        assert!(s > 1_577_836_800, "after 2020");
    }

    /// A clock that only implements the required methods gets whole-second milliseconds.
    struct SecondsOnly;

    impl Clock for SecondsOnly {
        fn now(&self) -> Instant {
            Instant::now()
        }

        fn unix_time(&self) -> u64 {
            1_700_000_000
        }
    }

    #[test]
    fn default_milliseconds_are_whole_seconds() {
        assert_eq!(SecondsOnly.unix_time_ms(), 1_700_000_000_000);
    }
}
