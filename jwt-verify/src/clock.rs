//! Time, injected so that tests (yours and ours) can run on a virtual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of monotonic time (for cache ages) and wall-clock time (for `exp`, `nbf`, `iat`).
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Seconds since the Unix epoch.
    fn unix_time(&self) -> u64;
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_time(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share the same time.
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
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    origin: Instant,
    origin_unix: u64,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock whose wall time starts at `unix_seconds`.
    pub fn at_unix(unix_seconds: u64) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                origin: Instant::now(),
                origin_unix: unix_seconds,
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
        self.inner.origin_unix + self.offset().as_secs()
    }
}
