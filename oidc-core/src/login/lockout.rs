//! Failed-login tracking with exponential lockout, on a clock passed in (no I/O).

use std::collections::HashMap;
use std::time::Duration;

/// When repeated failed password logins slow a guesser down, without letting the guesser
/// lock the real user out.
///
/// Three counters, in the manner of Keycloak's brute-force detection (temporary lockout
/// with a growing wait) but keyed so that the lock lands on the guesser, not the account:
///
/// - **Per (username, client address)**: once [`max_failures`](Self::max_failures) (5)
///   failures have happened without a quiet [`window`](Self::window) (15 min), each further
///   failure locks that username *at that address* for 1 min, 2 min, 4 min, … up to
///   [`max_delay`](Self::max_delay) (15 min). Attempts during a lock are refused without
///   checking the password and without counting, so the wait cannot be extended by
///   retrying faster; a guesser that keeps failing after each lock keeps doubling its own
///   wait. The same user at another address is not affected: an attacker cannot lock
///   anyone out but themselves.
/// - **Per client address, across usernames**: [`max_failures_per_address`](Self::max_failures_per_address)
///   (20) failures lock the address for every username the same way (password spraying
///   from one place). It only affects that address.
/// - **Per username, across addresses** (a soft ceiling, never a lock): once
///   [`user_ceiling`](Self::user_ceiling) (30) failures for one username from anywhere
///   have happened without a quiet window, the user is under a distributed attack, and
///   each address then gets a single failure for that username before its (username,
///   address) lock starts. A distributed guesser is slowed from five guesses per address
///   to one, each new address waiting a growing lock after its first miss, while an
///   address that has not failed — the real user's — still has its password checked and a
///   correct one still signs in. Keycloak's per-user lock instead refuses the real user
///   too, which is exactly the denial of service this design avoids; the price is that a
///   guesser with very many addresses gets one guess per address per lock period, which
///   the rate limits per address and a strong password bound.
///
/// The counters are in memory: they reset when the process restarts, and each replica
/// counts on its own. A successful login clears its (username, address) counter only: the
/// per-username count of a distributed attack keeps running until the attack goes quiet.
///
/// ```
/// use oidc_core::login::LockoutPolicy;
///
/// let policy = LockoutPolicy::default();
/// assert_eq!((policy.max_failures, policy.max_failures_per_address, policy.user_ceiling), (5, 20, 30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockoutPolicy {
    /// Failures of one username from one address allowed before the first lock (5).
    pub max_failures: u32,
    /// Failures from one address, whatever the username, before the address is locked
    /// for every username (20).
    pub max_failures_per_address: u32,
    /// Failures of one username from all addresses after which each address gets a single
    /// failure before its lock (30). Never locks the username itself.
    pub user_ceiling: u32,
    /// A key with no failure for this long, counted from the end of its last lock, starts
    /// over (15 min).
    pub window: Duration,
    /// The first lock's length, doubled for each further failure (1 min).
    pub base_delay: Duration,
    /// The longest lock (15 min).
    pub max_delay: Duration,
    /// Most keys tracked per kind ((username, address) pairs, addresses, usernames):
    /// 10 000. When full, forgotten keys are dropped first, then the least recently failed.
    pub max_tracked: usize,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            max_failures_per_address: 20,
            user_ceiling: 30,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(15 * 60),
            max_tracked: 10_000,
        }
    }
}

/// Failure counts per key (a username or an address).
#[derive(Debug)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) struct Lockout {
    policy: LockoutPolicy,
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
struct Entry {
    failures: u32,
    last_failure: u64,
    locked_until: u64,
}

#[cfg_attr(not(feature = "tower"), allow(dead_code))]
impl Entry {
    /// A quiet `window` has passed since the last failure and the end of any lock: waiting
    /// out a lock does not reset the count, so the delays keep growing for a patient
    /// guesser.
    fn is_forgotten(&self, now: u64, window: u64) -> bool {
        now.saturating_sub(self.last_failure.max(self.locked_until)) >= window
    }
}

#[cfg_attr(not(feature = "tower"), allow(dead_code))]
impl Lockout {
    pub(crate) fn new(policy: LockoutPolicy) -> Self {
        Lockout {
            policy,
            entries: HashMap::new(),
        }
    }

    /// `Some(until)` while `key` is locked at `now`.
    pub(crate) fn locked_until(&self, key: &str, now: u64) -> Option<u64> {
        self.entries
            .get(key)
            .map(|e| e.locked_until)
            .filter(|until| now < *until)
    }

    /// Counts a failure; returns `Some(until)` when it locks the key (from the policy's
    /// `max_failures` on).
    #[cfg(test)]
    pub(crate) fn record_failure(&mut self, key: &str, now: u64) -> Option<u64> {
        self.record_failure_with_threshold(key, now, self.policy.max_failures)
    }

    /// Failures of `key` counted at `now` (0 once a quiet window has passed).
    pub(crate) fn failures(&self, key: &str, now: u64) -> u32 {
        let window = self.policy.window.as_secs();
        self.entries
            .get(key)
            .filter(|e| !e.is_forgotten(now, window))
            .map_or(0, |e| e.failures)
    }

    /// Counts a failure; returns `Some(until)` when it locks the key, which it does from
    /// the `threshold`-th failure on (`u32::MAX`: only counts).
    pub(crate) fn record_failure_with_threshold(
        &mut self,
        key: &str,
        now: u64,
        threshold: u32,
    ) -> Option<u64> {
        let window = self.policy.window.as_secs();
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: 0,
        });
        if entry.is_forgotten(now, window) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        let threshold = threshold.max(1);
        if entry.failures < threshold {
            return None;
        }
        let doublings = (entry.failures - threshold).min(30);
        let delay = self
            .policy
            .base_delay
            .as_secs()
            .saturating_mul(1u64 << doublings)
            .min(self.policy.max_delay.as_secs());
        entry.locked_until = now.saturating_add(delay);
        Some(entry.locked_until)
    }

    /// Forgets `key` (after a successful login).
    pub(crate) fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn make_room(&mut self, now: u64) {
        if self.entries.len() < self.policy.max_tracked {
            return;
        }
        let window = self.policy.window.as_secs();
        self.entries.retain(|_, e| !e.is_forgotten(now, window));
        while self.entries.len() >= self.policy.max_tracked.max(1) {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (now < e.locked_until, e.last_failure))
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    #[test]
    fn locks_after_max_failures_and_doubles() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        for i in 0..4 {
            assert_eq!(lockout.record_failure("u:alice", T0 + i), None);
            assert_eq!(lockout.locked_until("u:alice", T0 + i), None);
        }
        assert_eq!(lockout.record_failure("u:alice", T0 + 4), Some(T0 + 4 + 60));
        assert_eq!(lockout.locked_until("u:alice", T0 + 5), Some(T0 + 64));
        assert_eq!(lockout.locked_until("u:alice", T0 + 64), None);
        assert_eq!(
            lockout.record_failure("u:alice", T0 + 64),
            Some(T0 + 64 + 120)
        );
        assert_eq!(
            lockout.record_failure("u:alice", T0 + 200),
            Some(T0 + 200 + 240)
        );
        let mut now = T0 + 500;
        for _ in 0..10 {
            let until = lockout.record_failure("u:alice", now).unwrap();
            assert!(until - now <= 900, "capped at 15 min");
            now = until;
        }
        assert_eq!(lockout.locked_until("u:bob", T0), None, "keys are separate");
    }

    #[test]
    fn a_quiet_window_forgets() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        for i in 0..4 {
            lockout.record_failure("k", T0 + i);
        }
        assert_eq!(
            lockout.record_failure("k", T0 + 3 + 900),
            None,
            "counter reset"
        );
        lockout.forget("k");
        assert_eq!(lockout.len(), 0);
    }

    #[test]
    fn a_lower_threshold_locks_at_once_and_counts_are_readable() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        assert_eq!(lockout.failures("k", T0), 0);
        assert_eq!(
            lockout.record_failure_with_threshold("k", T0, 1),
            Some(T0 + 60)
        );
        assert_eq!(
            lockout.record_failure_with_threshold("c", T0, u32::MAX),
            None
        );
        assert_eq!(
            lockout.record_failure_with_threshold("c", T0, u32::MAX),
            None
        );
        assert_eq!(lockout.failures("c", T0 + 1), 2);
        assert_eq!(
            lockout.failures("c", T0 + 900),
            0,
            "forgotten after a quiet window"
        );
    }

    #[test]
    fn tracking_is_bounded() {
        let policy = LockoutPolicy {
            max_tracked: 3,
            ..LockoutPolicy::default()
        };
        let mut lockout = Lockout::new(policy);
        for i in 0..5 {
            lockout.record_failure("locked", T0 + i);
        }
        for i in 0..10u64 {
            lockout.record_failure(&format!("spray{i}"), T0 + 10 + i);
            assert!(lockout.len() <= 3);
        }
        assert!(
            lockout.locked_until("locked", T0 + 20).is_some(),
            "an active lock outlives a spray of new keys"
        );
    }
}
