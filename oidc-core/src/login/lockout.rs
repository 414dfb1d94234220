//! Failed-login tracking with exponential lockout, on a clock passed in (no I/O).

use std::collections::HashMap;
use std::time::Duration;

/// When repeated failed logins lock a username or a client address out.
///
/// With the defaults: once 5 failures have happened without a 15-minute pause between
/// them, each further failure locks the key for 1 min, 2 min, 4 min, … up to 15 min.
/// Attempts during a lock are refused without checking the password (and without
/// counting). A quiet 15 minutes (no failure, no lock in force) forgets the key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockoutPolicy {
    /// Failures allowed before the first lock (5).
    pub max_failures: u32,
    /// A key with no failure for this long, counted from the end of its last lock, starts
    /// over (15 min).
    pub window: Duration,
    /// The first lock's length, doubled for each further failure (1 min).
    pub base_delay: Duration,
    /// The longest lock (15 min).
    pub max_delay: Duration,
    /// Most keys tracked per kind (usernames, addresses): 10 000. When full, forgotten
    /// keys are dropped first, then the least recently failed.
    pub max_tracked: usize,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
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

    /// Counts a failure; returns `Some(until)` when it locks the key.
    pub(crate) fn record_failure(&mut self, key: &str, now: u64) -> Option<u64> {
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
        if entry.failures < self.policy.max_failures {
            return None;
        }
        let doublings = (entry.failures - self.policy.max_failures).min(30);
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
