//! Failed-login tracking with exponential lockout, on a clock passed in (no I/O).
//!
//! The policy is written once, as pure functions over [`FailureRecord`]s ([`LockoutOp::apply`]);
//! a [`LockoutStore`] only keeps the records and applies each operation atomically.
//! [`MemoryLockoutStore`] keeps them in process memory (one replica);
//! `store::PostgresLimitStore` (feature `postgres`) keeps them
//! as rows that every replica of a provider shares.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::authn::BoxFuture;
use crate::store::StoreError;

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
/// The counters live in a [`LockoutStore`]. The default, [`MemoryLockoutStore`], keeps them
/// in process memory: they reset when the process restarts, and each replica counts on its
/// own. `store::PostgresLimitStore` (feature `postgres`) keeps
/// them in rows that every replica shares, so a guesser spreading attempts over replicas
/// counts against the same limits. Every attempt is counted as a failure *before* its
/// password is checked, in the same atomic step that checks the locks, and taken back if
/// the password was right: concurrent attempts cannot all slip through the last allowed
/// slot. A successful login clears its (username, address) counter only: the per-username
/// count of a distributed attack keeps running until the attack goes quiet.
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
    /// Most keys [`MemoryLockoutStore`] tracks per kind ((username, address) pairs,
    /// addresses, usernames): 10 000. When full, forgotten keys are dropped first, then the
    /// least recently failed. Shared stores are bounded by purging forgotten keys instead.
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

/// Where failed-login counters live: the store of a [`LockoutPolicy`].
///
/// A store keeps [`FailureRecord`]s by [`CounterKey`] and applies each [`LockoutOp`]
/// atomically: read the records of [`LockoutOp::keys`] (`None` for a missing one), run
/// [`LockoutOp::apply`] on them, store what it leaves (`None`: delete), and return its
/// answer. Concurrent operations on a common key must not interleave, across processes
/// when the store is shared; that is all it takes for every replica to see the same
/// decisions. The policy itself is never in the store.
///
/// Methods return boxed futures so the trait can be used as `Arc<dyn LockoutStore>`. The
/// store never reads a clock: [`LockoutOp::now`] is the time.
///
/// When a store fails, the password login refuses the attempt with a temporary error
/// (503): it fails closed, since a guess that cannot be counted must not be checked.
///
/// ```
/// use oidc_core::login::{LockoutPolicy, LockoutStore, MemoryLockoutStore};
///
/// let store: std::sync::Arc<dyn LockoutStore> =
///     std::sync::Arc::new(MemoryLockoutStore::new(&LockoutPolicy::default()));
/// # let _ = store;
/// ```
pub trait LockoutStore: Send + Sync + 'static {
    /// Applies `op` atomically to the records of its keys and returns its answer.
    fn apply(&self, op: LockoutOp) -> BoxFuture<'_, Result<LockoutAnswer, StoreError>>;

    /// Deletes the records quiet since `quiet_since`: whose last failure and lock both end
    /// at or before it. The password login calls it with `now - window` from time to
    /// time; a forgotten record decides nothing, so deleting it changes no decision.
    /// Returns how many were deleted.
    fn purge(&self, quiet_since: u64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// One failed-login counter as a [`LockoutStore`] keeps it (a map entry, a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    /// Failures counted since the counter last started over.
    pub failures: u32,
    /// When the last failure was counted (Unix seconds).
    pub last_failure: u64,
    /// Until when the key is locked (Unix seconds; a past time means not locked).
    pub locked_until: u64,
}

impl FailureRecord {
    /// A quiet `window` has passed since the last failure and the end of any lock: waiting
    /// out a lock does not reset the count, so the delays keep growing for a patient
    /// guesser.
    fn is_forgotten(&self, now: u64, window: u64) -> bool {
        now.saturating_sub(self.quiet_from()) >= window
    }

    /// When the record went quiet: its last failure or the end of its lock.
    fn quiet_from(&self) -> u64 {
        self.last_failure.max(self.locked_until)
    }
}

/// Which of the three counters of a [`LockoutPolicy`] a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CounterKind {
    /// A username at a client address.
    Pair,
    /// A client address, across usernames.
    Address,
    /// A username, across addresses (the soft ceiling).
    Username,
}

impl CounterKind {
    /// A stable number for storage: 1, 2, 3.
    pub const fn number(self) -> u8 {
        match self {
            CounterKind::Pair => 1,
            CounterKind::Address => 2,
            CounterKind::Username => 3,
        }
    }
}

/// The key of one counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    /// The counter.
    pub kind: CounterKind,
    /// The username, address or both, as the login method spells them (at most a few
    /// hundred bytes).
    pub key: String,
}

/// One atomic step on the counters of a password login, for a [`LockoutStore`] to apply.
///
/// The password login makes two kinds: an *attempt* (refused if the username is locked at
/// the address or the address is locked; otherwise counted as a failure on all three
/// counters before the password is checked) and, when the password was right, a
/// *success* (forgets the (username, address) counter and takes back the advance count
/// of the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutOp {
    /// Pair, username, then the address if there is one.
    keys: Vec<CounterKey>,
    now: u64,
    step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Attempt(LockoutPolicy),
    /// Per key: the advance count to take back.
    Success(Vec<Option<Advance>>),
}

/// What an attempt did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Advance {
    before: Option<FailureRecord>,
    after: Option<FailureRecord>,
}

const PAIR: usize = 0;
const USERNAME: usize = 1;
const ADDRESS: usize = 2;

/// The answer of [`LockoutOp::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutAnswer(Answer);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Refused, not counted.
    Locked {
        until: u64,
    },
    /// Counted in advance; `locked` if this count locks the pair or the address.
    Counted {
        locked: bool,
        advance: Vec<Option<Advance>>,
    },
    Done,
}

impl LockoutOp {
    /// An attempt of `username_key` at `address_key` (`pair_key` names both).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn attempt(
        policy: &LockoutPolicy,
        pair_key: &str,
        username_key: &str,
        address_key: Option<&str>,
        now: u64,
    ) -> LockoutOp {
        let mut keys = vec![
            CounterKey {
                kind: CounterKind::Pair,
                key: pair_key.to_owned(),
            },
            CounterKey {
                kind: CounterKind::Username,
                key: username_key.to_owned(),
            },
        ];
        if let Some(key) = address_key {
            keys.push(CounterKey {
                kind: CounterKind::Address,
                key: key.to_owned(),
            });
        }
        LockoutOp {
            keys,
            now,
            step: Step::Attempt(policy.clone()),
        }
    }

    /// The success that follows `attempt`, answered `answer`; `None` if the attempt was
    /// not counted.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn success(
        attempt: &LockoutOp,
        answer: &LockoutAnswer,
        now: u64,
    ) -> Option<LockoutOp> {
        let Answer::Counted { advance, .. } = &answer.0 else {
            return None;
        };
        Some(LockoutOp {
            keys: attempt.keys.clone(),
            now,
            step: Step::Success(advance.clone()),
        })
    }

    /// The counters this operation reads and writes, in the order [`apply`](Self::apply)
    /// takes their records.
    pub fn keys(&self) -> &[CounterKey] {
        &self.keys
    }

    /// The time of the operation (Unix seconds).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The policy: changes `records` (those of [`keys`](Self::keys), in that order; `None`
    /// for a missing one, and `None` left behind means delete) and answers. Pure: the
    /// same records and operation always give the same result.
    pub fn apply(&self, records: &mut [Option<FailureRecord>]) -> LockoutAnswer {
        match &self.step {
            Step::Attempt(policy) => LockoutAnswer(attempt(policy, self.now, records)),
            Step::Success(advance) => {
                for (i, (record, advance)) in records.iter_mut().zip(advance).enumerate() {
                    *record = if i == PAIR {
                        None
                    } else {
                        take_back(*record, advance.as_ref())
                    };
                }
                LockoutAnswer(Answer::Done)
            }
        }
    }
}

impl LockoutAnswer {
    /// Until when the attempt is refused, if it is.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn locked_until(&self) -> Option<u64> {
        match self.0 {
            Answer::Locked { until } => Some(until),
            _ => None,
        }
    }

    /// Whether the attempt's advance count locked the pair or the address (it did if the
    /// password turns out wrong).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn locks(&self) -> bool {
        matches!(self.0, Answer::Counted { locked: true, .. })
    }
}

/// An attempt: refused while the pair or the address is locked, else counted as a failure
/// of the username (count only), the pair and the address.
fn attempt(policy: &LockoutPolicy, now: u64, records: &mut [Option<FailureRecord>]) -> Answer {
    let get = |i: usize| records.get(i).copied().flatten();
    let by_pair = locked_until(get(PAIR), now);
    let by_address = locked_until(get(ADDRESS), now);
    if let Some(until) = by_pair.max(by_address) {
        return Answer::Locked { until };
    }
    let before: Vec<Option<FailureRecord>> = records.to_vec();
    let window = policy.window.as_secs();
    let mut locked = false;
    if let Some(record) = records.get_mut(USERNAME) {
        *record = Some(record_failure(policy, *record, now, u32::MAX).0);
    }
    // Under a distributed attack on this username, each address gets one failure.
    let under_attack = failures(get_of(records, USERNAME), now, window) >= policy.user_ceiling;
    let pair_threshold = if under_attack { 1 } else { policy.max_failures };
    if let Some(record) = records.get_mut(PAIR) {
        let (counted, lock) = record_failure(policy, *record, now, pair_threshold);
        *record = Some(counted);
        locked |= lock.is_some();
    }
    if let Some(record) = records.get_mut(ADDRESS) {
        let (counted, lock) = record_failure(policy, *record, now, policy.max_failures_per_address);
        *record = Some(counted);
        locked |= lock.is_some();
    }
    let advance = before
        .into_iter()
        .zip(records.iter())
        .map(|(before, after)| {
            Some(Advance {
                before,
                after: *after,
            })
        })
        .collect();
    Answer::Counted { locked, advance }
}

fn get_of(records: &[Option<FailureRecord>], i: usize) -> Option<FailureRecord> {
    records.get(i).copied().flatten()
}

/// Takes back an advance count: the record as it was before, if nothing else changed it
/// since; otherwise one failure fewer.
fn take_back(current: Option<FailureRecord>, advance: Option<&Advance>) -> Option<FailureRecord> {
    let Some(advance) = advance else {
        return current;
    };
    if current == advance.after {
        return advance.before;
    }
    current.map(|record| FailureRecord {
        failures: record.failures.saturating_sub(1),
        ..record
    })
}

/// `Some(until)` while `record` is locked at `now`.
fn locked_until(record: Option<FailureRecord>, now: u64) -> Option<u64> {
    record.map(|r| r.locked_until).filter(|until| now < *until)
}

/// Failures of `record` counted at `now` (0 once a quiet window has passed).
fn failures(record: Option<FailureRecord>, now: u64, window: u64) -> u32 {
    record
        .filter(|r| !r.is_forgotten(now, window))
        .map_or(0, |r| r.failures)
}

/// Counts a failure; the second value is `Some(until)` when it locks the key, which it
/// does from the `threshold`-th failure on (`u32::MAX`: only counts).
fn record_failure(
    policy: &LockoutPolicy,
    record: Option<FailureRecord>,
    now: u64,
    threshold: u32,
) -> (FailureRecord, Option<u64>) {
    let window = policy.window.as_secs();
    let mut entry = record.unwrap_or(FailureRecord {
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
        return (entry, None);
    }
    let doublings = (entry.failures - threshold).min(30);
    let delay = policy
        .base_delay
        .as_secs()
        .saturating_mul(1u64 << doublings)
        .min(policy.max_delay.as_secs());
    entry.locked_until = now.saturating_add(delay);
    (entry, Some(entry.locked_until))
}

/// The counters in process memory: one replica's own, lost on restart. Each kind holds at
/// most [`LockoutPolicy::max_tracked`] keys; when full, forgotten keys are dropped first,
/// then the least recently failed (an active lock outlives a spray of new keys).
///
/// ```
/// use oidc_core::login::{LockoutPolicy, MemoryLockoutStore};
///
/// let store = MemoryLockoutStore::new(&LockoutPolicy::default());
/// # let _ = store;
/// ```
#[derive(Debug)]
pub struct MemoryLockoutStore {
    max_tracked: usize,
    window: u64,
    /// One map per [`CounterKind`], by [`CounterKind::number`] - 1.
    maps: Mutex<[HashMap<String, FailureRecord>; 3]>,
}

impl MemoryLockoutStore {
    /// An empty store bounded as `policy` says ([`LockoutPolicy::max_tracked`] keys per
    /// kind, forgetting after its [`window`](LockoutPolicy::window)).
    pub fn new(policy: &LockoutPolicy) -> Self {
        MemoryLockoutStore {
            max_tracked: policy.max_tracked,
            window: policy.window.as_secs(),
            maps: Mutex::new([HashMap::new(), HashMap::new(), HashMap::new()]),
        }
    }

    /// Applies `op` under the lock: the whole operation, synchronously.
    fn apply_now(&self, op: &LockoutOp) -> LockoutAnswer {
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let mut records: Vec<Option<FailureRecord>> = op
            .keys()
            .iter()
            .map(|k| maps[map_index(k.kind)].get(&k.key).copied())
            .collect();
        let answer = op.apply(&mut records);
        for (key, record) in op.keys().iter().zip(records) {
            let map = &mut maps[map_index(key.kind)];
            match record {
                None => {
                    map.remove(&key.key);
                }
                Some(record) => {
                    if !map.contains_key(&key.key) {
                        make_room(map, self.max_tracked, self.window, op.now());
                    }
                    map.insert(key.key.clone(), record);
                }
            }
        }
        answer
    }

    #[cfg(test)]
    fn len(&self, kind: CounterKind) -> usize {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)[map_index(kind)].len()
    }
}

impl LockoutStore for MemoryLockoutStore {
    fn apply(&self, op: LockoutOp) -> BoxFuture<'_, Result<LockoutAnswer, StoreError>> {
        let answer = self.apply_now(&op);
        Box::pin(async move { Ok(answer) })
    }

    fn purge(&self, quiet_since: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let mut purged = 0;
        for map in maps.iter_mut() {
            let before = map.len();
            map.retain(|_, r| r.quiet_from() > quiet_since);
            purged += (before - map.len()) as u64;
        }
        Box::pin(async move { Ok(purged) })
    }
}

fn map_index(kind: CounterKind) -> usize {
    usize::from(kind.number()) - 1
}

fn make_room(map: &mut HashMap<String, FailureRecord>, max_tracked: usize, window: u64, now: u64) {
    if map.len() < max_tracked {
        return;
    }
    map.retain(|_, e| !e.is_forgotten(now, window));
    while map.len() >= max_tracked.max(1) {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, e)| (now < e.locked_until, e.last_failure))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    /// One counter kind over the policy's pure functions, as the password login used to
    /// hold it: the tests below predate the stores and keep their assertions.
    struct Lockout {
        policy: LockoutPolicy,
        map: HashMap<String, FailureRecord>,
    }

    impl Lockout {
        fn new(policy: LockoutPolicy) -> Self {
            Lockout {
                policy,
                map: HashMap::new(),
            }
        }

        fn locked_until(&self, key: &str, now: u64) -> Option<u64> {
            super::locked_until(self.map.get(key).copied(), now)
        }

        fn record_failure(&mut self, key: &str, now: u64) -> Option<u64> {
            self.record_failure_with_threshold(key, now, self.policy.max_failures)
        }

        fn failures(&self, key: &str, now: u64) -> u32 {
            super::failures(
                self.map.get(key).copied(),
                now,
                self.policy.window.as_secs(),
            )
        }

        fn record_failure_with_threshold(
            &mut self,
            key: &str,
            now: u64,
            threshold: u32,
        ) -> Option<u64> {
            if !self.map.contains_key(key) {
                make_room(
                    &mut self.map,
                    self.policy.max_tracked,
                    self.policy.window.as_secs(),
                    now,
                );
            }
            let (record, lock) =
                record_failure(&self.policy, self.map.get(key).copied(), now, threshold);
            self.map.insert(key.to_owned(), record);
            lock
        }

        fn forget(&mut self, key: &str) {
            self.map.remove(key);
        }

        fn len(&self) -> usize {
            self.map.len()
        }
    }

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

    fn attempt(
        store: &MemoryLockoutStore,
        user: &str,
        ip: &str,
        now: u64,
    ) -> (LockoutOp, LockoutAnswer) {
        let op = LockoutOp::attempt(
            &LockoutPolicy::default(),
            &format!("{user}|{ip}"),
            user,
            Some(ip),
            now,
        );
        let answer = store.apply_now(&op);
        (op, answer)
    }

    #[test]
    fn an_attempt_is_counted_in_advance_and_a_success_takes_it_back_exactly() {
        let store = MemoryLockoutStore::new(&LockoutPolicy::default());
        for i in 0..3 {
            let (_, answer) = attempt(&store, "u:alice", "ip:a", T0 + i);
            assert_eq!(answer.locked_until(), None);
        }
        let snapshot = |kind| store.maps.lock().unwrap()[map_index(kind)].clone();
        let (addresses, usernames) = (
            snapshot(CounterKind::Address),
            snapshot(CounterKind::Username),
        );
        let (op, answer) = attempt(&store, "u:alice", "ip:a", T0 + 10);
        assert_ne!(
            snapshot(CounterKind::Address),
            addresses,
            "counted before the check"
        );
        let success = LockoutOp::success(&op, &answer, T0 + 11).unwrap();
        assert_eq!(store.apply_now(&success), LockoutAnswer(Answer::Done));
        assert_eq!(
            snapshot(CounterKind::Address),
            addresses,
            "taken back exactly"
        );
        assert_eq!(snapshot(CounterKind::Username), usernames);
        assert_eq!(store.len(CounterKind::Pair), 0, "the pair is forgotten");
    }

    #[test]
    fn the_last_allowed_attempt_locks_in_advance() {
        let store = MemoryLockoutStore::new(&LockoutPolicy::default());
        for i in 0..4 {
            assert!(!attempt(&store, "u:alice", "ip:a", T0 + i).1.locks());
        }
        let (op, fifth) = attempt(&store, "u:alice", "ip:a", T0 + 4);
        assert!(fifth.locks());
        // A concurrent sixth, before the fifth's password is checked, is refused.
        assert_eq!(
            attempt(&store, "u:alice", "ip:a", T0 + 4).1.locked_until(),
            Some(T0 + 64)
        );
        // The fifth was right after all: the lock goes with the pair counter.
        store.apply_now(&LockoutOp::success(&op, &fifth, T0 + 4).unwrap());
        assert_eq!(
            attempt(&store, "u:alice", "ip:a", T0 + 5).1.locked_until(),
            None
        );
        assert!(LockoutOp::success(&op, &LockoutAnswer(Answer::Locked { until: 1 }), T0).is_none());
    }

    #[test]
    fn a_success_after_other_changes_takes_back_one_failure() {
        let advance = Advance {
            before: None,
            after: Some(FailureRecord {
                failures: 1,
                last_failure: T0,
                locked_until: 0,
            }),
        };
        let changed = Some(FailureRecord {
            failures: 3,
            last_failure: T0 + 1,
            locked_until: 0,
        });
        assert_eq!(
            take_back(changed, Some(&advance)).map(|r| r.failures),
            Some(2)
        );
        assert_eq!(take_back(advance.after, Some(&advance)), None);
        assert_eq!(take_back(changed, None), changed);
    }

    #[test]
    fn purge_deletes_only_quiet_records() {
        let store = MemoryLockoutStore::new(&LockoutPolicy::default());
        attempt(&store, "u:old", "ip:a", T0);
        attempt(&store, "u:new", "ip:b", T0 + 600);
        let purged = futures_lite(store.purge(T0 + 300));
        assert_eq!(purged, 3, "the old pair, username and address");
        assert_eq!(store.len(CounterKind::Pair), 1);
    }

    /// Polls a future that is ready at once (the memory store's).
    fn futures_lite<T>(future: BoxFuture<'_, Result<T, StoreError>>) -> T {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = future;
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Ok(value)) => value,
            _ => panic!("the memory store answers at once"),
        }
    }
}
