//! Counters a user can read. Hot-path counters are striped per thread so two cores never
//! fight over one cache line.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::ErrorKind;

const STRIPES: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// A counter spread over cache-line-padded stripes, one picked per thread.
#[derive(Default)]
struct StripedCounter {
    stripes: [Padded; STRIPES],
}

fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    INDEX.with(|i| *i)
}

impl StripedCounter {
    fn increment(&self) {
        self.stripes[stripe_index()]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// Live counters of one verifier.
#[derive(Default)]
pub(crate) struct Metrics {
    verified: StripedCounter,
    token_cache_hits: StripedCounter,
    rejected: [AtomicU64; ErrorKind::ALL.len()],
    /// Accepted tokens whose status was checked (counted instead of `verified`, so the
    /// hot path pays one counter either way).
    verified_with_status: StripedCounter,
    pub(crate) status_revoked: AtomicU64,
    pub(crate) status_out_of_range: AtomicU64,
    pub(crate) status_list_fetches: AtomicU64,
    pub(crate) status_list_fetch_failures: AtomicU64,
    pub(crate) status_fail_open: AtomicU64,
    pub(crate) status_lists: AtomicUsize,
    pub(crate) jwks_fetches: AtomicU64,
    pub(crate) jwks_fetch_failures: AtomicU64,
    pub(crate) keys_in_use: AtomicUsize,
    pub(crate) key_set_loaded_at: Mutex<Option<Instant>>,
}

impl Metrics {
    pub(crate) fn record<T, E: HasKind>(&self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.verified.increment(),
            Err(e) => self.refused(e.error_kind()),
        }
    }

    /// Counts a refused token.
    pub(crate) fn refused(&self, kind: ErrorKind) {
        self.rejected[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn token_cache_hit(&self) {
        self.token_cache_hits.increment();
    }

    /// Counts an accepted token whose `status` was checked (or accepted under fail-open).
    #[cfg_attr(not(feature = "status-list"), allow(dead_code))]
    pub(crate) fn verified_with_status(&self) {
        self.verified_with_status.increment();
    }

    /// A key set of `keys` keys, fetched at `at`, is in use.
    pub(crate) fn keys_loaded(&self, keys: usize, at: Instant) {
        self.keys_in_use.store(keys, Ordering::Relaxed);
        *self
            .key_set_loaded_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
    }

    pub(crate) fn snapshot(&self, now: Instant) -> MetricsSnapshot {
        let loaded_at = *self
            .key_set_loaded_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let with_status = self.verified_with_status.sum();
        let revoked = self.status_revoked.load(Ordering::Relaxed);
        let fail_open = self.status_fail_open.load(Ordering::Relaxed);
        let lookups = (with_status + revoked + self.status_out_of_range.load(Ordering::Relaxed))
            .saturating_sub(fail_open);
        MetricsSnapshot {
            verified: self.verified.sum() + with_status,
            rejected: ErrorKind::ALL
                .iter()
                .map(|k| (*k, self.rejected[k.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            token_cache_hits: self.token_cache_hits.sum(),
            jwks_fetches: self.jwks_fetches.load(Ordering::Relaxed),
            jwks_fetch_failures: self.jwks_fetch_failures.load(Ordering::Relaxed),
            keys_in_use: self.keys_in_use.load(Ordering::Relaxed),
            status_lookups: lookups,
            status_revoked: revoked,
            status_list_fetches: self.status_list_fetches.load(Ordering::Relaxed),
            status_list_fetch_failures: self.status_list_fetch_failures.load(Ordering::Relaxed),
            status_fail_open: fail_open,
            status_lists: self.status_lists.load(Ordering::Relaxed),
            key_set_age: loaded_at.map(|t| now.saturating_duration_since(t)),
        }
    }
}

pub(crate) trait HasKind {
    fn error_kind(&self) -> ErrorKind;
}

impl HasKind for crate::Error {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}

/// A point-in-time copy of a verifier's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Tokens accepted (including verified-token cache hits).
    pub verified: u64,
    /// Tokens refused, by reason (reasons with a zero count are left out).
    pub rejected: Vec<(ErrorKind, u64)>,
    /// Tokens accepted from the verified-token cache without signature work.
    pub token_cache_hits: u64,
    /// HTTP fetches of the JWKS and discovery documents.
    pub jwks_fetches: u64,
    /// Fetches that failed (network, status, body or parse).
    pub jwks_fetch_failures: u64,
    /// Keys (JWKs) in the current key set.
    pub keys_in_use: usize,
    /// Time since the current key set was fetched (or loaded, for static keys).
    pub key_set_age: Option<Duration>,
    /// Tokens whose `status` was looked up in a usable status list (including cache hits).
    pub status_lookups: u64,
    /// Tokens refused because their status is not VALID (also in `rejected` as
    /// [`ErrorKind::Revoked`]).
    pub status_revoked: u64,
    /// HTTP fetches of Status List Tokens.
    pub status_list_fetches: u64,
    /// Status list fetches that failed (network, status, size, signature or claims).
    pub status_list_fetch_failures: u64,
    /// Tokens accepted without a status check because their list was unavailable and the
    /// failure mode is fail-open.
    pub status_fail_open: u64,
    /// Status lists held.
    pub status_lists: usize,
}

impl MetricsSnapshot {
    /// Refusals of one kind.
    pub fn rejected(&self, kind: ErrorKind) -> u64 {
        self.rejected
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn counts_by_outcome_across_threads() {
        let m = Metrics::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        m.record::<(), Error>(&Ok(()));
                    }
                });
            }
        });
        m.record::<(), _>(&Err(Error::new(ErrorKind::Expired, "token expired")));
        m.token_cache_hit();
        let snap = m.snapshot(Instant::now());
        assert_eq!(snap.verified, 4000);
        assert_eq!(snap.rejected(ErrorKind::Expired), 1);
        assert_eq!(snap.rejected(ErrorKind::Malformed), 0);
        assert_eq!(snap.token_cache_hits, 1);
        assert_eq!(snap.key_set_age, None);
    }
}
