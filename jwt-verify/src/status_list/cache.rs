//! The status list cache as a sans-IO state machine: it takes `now`, says which list to
//! fetch and when, and digests responses. No clock, socket or task lives here.

use std::sync::Arc;
use std::time::Instant;

use http::Uri;

use super::list::StatusList;
use super::token::{self, ListTokenRules, STATUS_LIST_MEDIA_TYPE};
use super::{AllowRule, StatusListConfig};
use crate::error::BuildError;
use crate::jwk::KeySet;
use crate::jwks::FetchError;
use crate::policy::{AlgorithmSet, Policy};

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAction {
    /// Start this fetch now (others may already be in flight) and report its result with
    /// [`StatusListCache::on_response`] under the same `uri`.
    Fetch {
        /// The status list URI as tokens name it: the cache key.
        uri: Box<str>,
        /// The parsed URI to GET.
        target: Uri,
    },
    /// Nothing is due before this instant (or before [`StatusListCache::request`] is called).
    WaitUntil(Instant),
}

/// The answer to [`StatusListCache::request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusDemand {
    /// A usable list is held: look again, no fetch needed.
    Ready,
    /// A fetch will start: wait for it.
    Started,
    /// A fetch is already in flight: wait for it.
    Joined,
    /// Recent fetches of this list failed and the retry delay has not passed: answer now.
    BackingOff,
    /// The URI may not be fetched (see
    /// [`StatusListConfig::allow_uri_prefix`](super::StatusListConfig::allow_uri_prefix)).
    NotAllowed,
}

impl StatusDemand {
    /// Whether the caller should wait for a fetch to finish.
    pub fn should_wait(self) -> bool {
        matches!(self, StatusDemand::Started | StatusDemand::Joined)
    }
}

/// The result of digesting a response.
#[derive(Debug)]
pub enum StatusUpdate {
    /// A new list is in use (`changed` is false when its statuses are the same).
    Loaded {
        /// Whether any status differs from the previous list.
        changed: bool,
    },
    /// The fetch or the list token failed; the previous list (if any) stays in use within
    /// its stale-if-error grace.
    Failed(FetchError),
    /// The list was dropped while the fetch was in flight.
    Ignored,
}

/// The status of one index as the cache sees it at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCheck {
    /// Status 0: the token is valid.
    Valid,
    /// Any other status (1 INVALID, 2 SUSPENDED, 3+ application-specific): refuse.
    Revoked(u8),
    /// The index is past the end of the list: refuse.
    OutOfRange,
    /// The list is held but past its stale-if-error grace or its `exp`: the failure mode
    /// applies.
    Unavailable,
    /// No list was ever loaded for this URI.
    Unknown,
}

impl StatusCheck {
    /// The status of `index` in `list`, if the list may be used at all.
    #[inline]
    pub(crate) fn of(list: &StatusList, index: u64) -> StatusCheck {
        match list.status(index) {
            Some(0) => StatusCheck::Valid,
            Some(status) => StatusCheck::Revoked(status),
            None => StatusCheck::OutOfRange,
        }
    }
}

/// A list in use, and until when.
#[derive(Debug, Clone)]
pub struct Held {
    /// The statuses.
    pub list: Arc<StatusList>,
    /// The list token's `iat`: a later list must not be older (no rollback).
    pub iat: u64,
    /// The list token's `exp`, if any: the list is not used at or after it (plus leeway).
    pub exp: Option<u64>,
    /// When the list was fetched.
    pub fetched_at: Instant,
    /// When a background refresh is due.
    pub refresh_at: Instant,
    /// After this instant (refresh time plus stale-if-error) the list is not used.
    pub usable_until: Instant,
}

/// The status list cache state machine: one entry per status list URI, each with its own
/// refresh schedule, single-flight fetch and retry delay.
///
/// ```
/// use std::time::Instant;
/// use jwks_verify::Policy;
/// use jwks_verify::status_list::{StatusAction, StatusDemand, StatusListCache, StatusListConfig};
///
/// let now = Instant::now();
/// let policy = Policy::new("https://issuer.example", "api");
/// let mut cache = StatusListCache::new(&policy, StatusListConfig::new())?;
/// // A list on the issuer's origin may be fetched; one elsewhere may not.
/// assert_eq!(cache.request(now, "https://evil.example/lists/1"), StatusDemand::NotAllowed);
/// assert_eq!(cache.request(now, "https://issuer.example/lists/1"), StatusDemand::Started);
/// assert_eq!(cache.request(now, "https://issuer.example/lists/1"), StatusDemand::Joined);
/// let StatusAction::Fetch { target, .. } = cache.poll(now) else { unreachable!() };
/// assert_eq!(target, "https://issuer.example/lists/1");
/// # Ok::<(), jwks_verify::BuildError>(())
/// ```
#[derive(Debug)]
pub struct StatusListCache {
    config: StatusListConfig,
    allow: AllowRule,
    issuers: Vec<String>,
    algorithms: AlgorithmSet,
    leeway_secs: u64,
    entries: Vec<Entry>,
    changed: bool,
}

#[derive(Debug)]
struct Entry {
    uri: Box<str>,
    target: Uri,
    held: Option<Held>,
    in_flight: bool,
    /// A caller asked for a fetch that has not started yet.
    requested: bool,
    next_fetch_at: Instant,
    failures: u32,
    last_used: Instant,
    rounds: u64,
}

impl StatusListCache {
    /// A cache for tokens accepted by `policy`: list tokens must come from one of its
    /// issuers and be signed with one of its algorithms.
    pub fn new(policy: &Policy, config: StatusListConfig) -> Result<Self, BuildError> {
        Ok(StatusListCache {
            allow: AllowRule::new(&policy.issuers, &config.allowed_prefixes)?,
            issuers: policy.issuers.clone(),
            algorithms: policy.algorithms,
            leeway_secs: policy.leeway_secs,
            entries: Vec::new(),
            changed: false,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StatusListConfig {
        &self.config
    }

    /// Whether lists at `uri` may be fetched.
    pub fn allows(&self, uri: &str) -> bool {
        self.allow.check(uri).is_some()
    }

    /// How many lists are held or being fetched.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no list is held or being fetched.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The list held for `uri`, if any (it may be past `usable_until`; the caller checks).
    pub fn held(&self, uri: &str) -> Option<&Held> {
        self.entry(uri).and_then(|entry| entry.held.as_ref())
    }

    /// Every URI with its held list, if any.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Option<&Held>)> {
        self.entries
            .iter()
            .map(|entry| (&*entry.uri, entry.held.as_ref()))
    }

    /// How many fetches of `uri` have finished. A caller told to wait by
    /// [`request`](Self::request) waits until this exceeds its value at that time.
    pub fn rounds(&self, uri: &str) -> u64 {
        self.entry(uri).map_or(0, |entry| entry.rounds)
    }

    /// Whether the set of lists or a held list changed since the last call (the driver
    /// then republishes what verifications read).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The status of `index` in the list for `uri` at (`now`, `now_unix`).
    pub fn check(&self, now: Instant, now_unix: u64, uri: &str, index: u64) -> StatusCheck {
        let Some(held) = self.held(uri) else {
            return StatusCheck::Unknown;
        };
        let expired = held
            .exp
            .is_some_and(|exp| now_unix >= exp.saturating_add(self.leeway_secs));
        if now >= held.usable_until || expired {
            return StatusCheck::Unavailable;
        }
        StatusCheck::of(&held.list, index)
    }

    /// A token refers to the list at `uri`. Records the use and decides whether a fetch
    /// should happen (the driver is then woken and calls [`poll`](Self::poll)).
    pub fn request(&mut self, now: Instant, uri: &str) -> StatusDemand {
        if let Some(entry) = self.entry_mut(uri) {
            entry.last_used = now;
            return if entry.held.as_ref().is_some_and(|h| now < h.usable_until) {
                StatusDemand::Ready
            } else if entry.in_flight || entry.requested {
                StatusDemand::Joined
            } else if entry.failures > 0 && now < entry.next_fetch_at {
                StatusDemand::BackingOff
            } else {
                entry.next_fetch_at = now;
                entry.requested = true;
                StatusDemand::Started
            };
        }
        let Some(target) = self.allow.check(uri) else {
            return StatusDemand::NotAllowed;
        };
        if self.entries.len() >= self.config.max_lists {
            self.evict_least_recently_used();
        }
        self.entries.push(Entry {
            uri: uri.into(),
            target,
            held: None,
            in_flight: false,
            requested: true,
            next_fetch_at: now,
            failures: 0,
            last_used: now,
            rounds: 0,
        });
        self.changed = true;
        StatusDemand::Started
    }

    /// Records that a token referred to `uri` at about `now` (the driver reports uses
    /// seen by verifications, which do not lock the cache).
    pub fn note_used(&mut self, now: Instant, uri: &str) {
        if let Some(entry) = self.entry_mut(uri) {
            entry.last_used = entry.last_used.max(now);
        }
    }

    /// What to do at `now`. Call again after acting on a [`StatusAction::Fetch`]: several
    /// lists may be due at once.
    pub fn poll(&mut self, now: Instant) -> StatusAction {
        let idle = self.config.idle_timeout;
        let before = self.entries.len();
        // A list nobody used for `idle` is dropped when its refresh comes, not refreshed.
        self.entries.retain(|entry| {
            entry.in_flight
                || now < entry.next_fetch_at
                || now.saturating_duration_since(entry.last_used) < idle
        });
        if self.entries.len() != before {
            self.changed = true;
        }
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| !entry.in_flight && now >= entry.next_fetch_at)
        {
            entry.in_flight = true;
            entry.requested = false;
            return StatusAction::Fetch {
                uri: entry.uri.clone(),
                target: entry.target.clone(),
            };
        }
        let next = self
            .entries
            .iter()
            .filter(|entry| !entry.in_flight)
            .map(|entry| entry.next_fetch_at)
            .min();
        StatusAction::WaitUntil(next.unwrap_or(now + idle.max(self.config.max_age)))
    }

    /// Digests the result of the fetch of `uri` that [`poll`](Self::poll) asked for,
    /// verifying the list token with `keys` (the verifier's key set) at (`now`, `now_unix`).
    pub fn on_response(
        &mut self,
        now: Instant,
        now_unix: u64,
        uri: &str,
        response: Result<http::Response<Vec<u8>>, FetchError>,
        keys: Option<&KeySet>,
    ) -> StatusUpdate {
        let rules = ListTokenRules {
            uri,
            issuers: &self.issuers,
            algorithms: self.algorithms,
            leeway_secs: self.leeway_secs,
            now_unix,
            max_list_bytes: self.config.max_list_bytes,
        };
        let max_response_bytes = self.config.max_response_bytes;
        let digested = response.and_then(|response| {
            let keys = keys.ok_or_else(|| {
                FetchError::Invalid("no key set to verify the status list token with".into())
            })?;
            digest(&response, max_response_bytes, keys, &rules)
        });
        let config = &self.config;
        let Some(entry) = self.entries.iter_mut().find(|e| *e.uri == *uri) else {
            return StatusUpdate::Ignored;
        };
        entry.in_flight = false;
        entry.rounds += 1;
        let digested = digested.and_then(|token| match &entry.held {
            Some(held) if token.iat < held.iat => Err(FetchError::Invalid(
                "status list token older than the list held (rollback)".into(),
            )),
            _ => Ok(token),
        });
        match digested {
            Ok(token) => {
                let interval = config.refresh_interval(token.ttl);
                let changed = entry
                    .held
                    .as_ref()
                    .is_none_or(|held| *held.list != token.list);
                entry.held = Some(Held {
                    list: Arc::new(token.list),
                    iat: token.iat,
                    exp: token.exp,
                    fetched_at: now,
                    refresh_at: now + interval,
                    usable_until: now + interval + config.stale_if_error,
                });
                entry.failures = 0;
                entry.next_fetch_at = now + interval;
                self.changed = true;
                StatusUpdate::Loaded { changed }
            }
            Err(error) => {
                entry.failures = entry.failures.saturating_add(1);
                let doublings = entry.failures.saturating_sub(1).min(16);
                let delay = (config.retry_min * (1u32 << doublings)).min(config.retry_max);
                entry.next_fetch_at = now + delay;
                StatusUpdate::Failed(error)
            }
        }
    }

    fn entry(&self, uri: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| *entry.uri == *uri)
    }

    fn entry_mut(&mut self, uri: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|entry| *entry.uri == *uri)
    }

    /// Drops the list used least recently, preferring one without a fetch in flight.
    fn evict_least_recently_used(&mut self) {
        let victim = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, entry)| (entry.in_flight, entry.last_used))
            .map(|(index, _)| index);
        if let Some(index) = victim {
            self.entries.swap_remove(index);
            self.changed = true;
        }
    }
}

/// Checks the response around a Status List Token and the token itself.
fn digest(
    response: &http::Response<Vec<u8>>,
    max_response_bytes: usize,
    keys: &KeySet,
    rules: &ListTokenRules<'_>,
) -> Result<token::ListToken, FetchError> {
    if response.status() != http::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.body().len() > max_response_bytes {
        return Err(FetchError::BodyTooLarge);
    }
    // A fetcher that keeps headers lets us check the media type; one that drops them is
    // still safe, since the token's own `typ` is checked.
    if let Some(content_type) = response.headers().get(http::header::CONTENT_TYPE) {
        let media_type = content_type
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(STATUS_LIST_MEDIA_TYPE)) {
            return Err(FetchError::Invalid(
                "status list response is not application/statuslist+jwt".into(),
            ));
        }
    }
    token::verify_list_token(response.body(), keys, rules)
        .map_err(|detail| FetchError::Invalid(detail.into()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::Algorithm;
    use crate::status_list::list::lst_of;
    use crate::test_keys;

    const SEC: Duration = Duration::from_secs(1);
    const NOW: u64 = 1_700_000_000;
    const URI: &str = "https://issuer.example/statuslists/1";

    fn cache(config: StatusListConfig) -> StatusListCache {
        StatusListCache::new(&Policy::new("https://issuer.example", "api"), config).unwrap()
    }

    fn keys() -> KeySet {
        let jwks = test_keys::jwks(&[test_keys::rsa_jwk("k1")]);
        KeySet::from_jwks(jwks.as_bytes(), AlgorithmSet::only(Algorithm::RS256)).unwrap()
    }

    /// A signed list for `uri` whose byte 0 is `first_byte`.
    fn list_response(
        uri: &str,
        iat: u64,
        ttl: u64,
        first_byte: u8,
    ) -> Result<http::Response<Vec<u8>>, FetchError> {
        let token = test_keys::sign(
            &serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "statuslist+jwt"}),
            &serde_json::json!({
                "iss": "https://issuer.example", "sub": uri, "iat": iat, "exp": iat + 86_400,
                "ttl": ttl, "status_list": {"bits": 1, "lst": lst_of(&[first_byte, 0])},
            }),
        );
        Ok(http::Response::builder()
            .header("content-type", "application/statuslist+jwt")
            .body(token.into_bytes())
            .unwrap())
    }

    fn fetch(cache: &mut StatusListCache, now: Instant) -> Box<str> {
        match cache.poll(now) {
            StatusAction::Fetch { uri, .. } => uri,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    /// Requests `URI` at `t0` and loads a list (index 0 revoked when `first_byte` is 1).
    fn loaded(config: StatusListConfig, t0: Instant, ttl: u64) -> StatusListCache {
        let mut c = cache(config);
        assert_eq!(c.request(t0, URI), StatusDemand::Started);
        fetch(&mut c, t0);
        let update = c.on_response(t0, NOW, URI, list_response(URI, NOW, ttl, 0), Some(&keys()));
        assert!(
            matches!(update, StatusUpdate::Loaded { changed: true }),
            "{update:?}"
        );
        c
    }

    #[test]
    fn refresh_ahead_keeps_the_list_in_use() {
        let t0 = Instant::now();
        let mut c = loaded(StatusListConfig::default(), t0, 10);
        assert_eq!(c.check(t0, NOW, URI, 0), StatusCheck::Valid);
        assert_eq!(c.poll(t0 + SEC), StatusAction::WaitUntil(t0 + 10 * SEC));
        // The refresh is due at ttl; the list stays usable while it runs.
        let t1 = t0 + 10 * SEC;
        assert_eq!(&*fetch(&mut c, t1), URI);
        assert_eq!(c.check(t1, NOW + 10, URI, 0), StatusCheck::Valid);
        assert_eq!(
            c.request(t1, URI),
            StatusDemand::Ready,
            "callers never wait"
        );
        let update = c.on_response(
            t1,
            NOW + 10,
            URI,
            list_response(URI, NOW + 10, 10, 1),
            Some(&keys()),
        );
        assert!(matches!(update, StatusUpdate::Loaded { changed: true }));
        assert_eq!(c.check(t1, NOW + 10, URI, 0), StatusCheck::Revoked(1));
        assert_eq!(c.check(t1, NOW + 10, URI, 1), StatusCheck::Valid);
        assert_eq!(c.check(t1, NOW + 10, URI, 16), StatusCheck::OutOfRange);
    }

    #[test]
    fn refresh_interval_is_the_smaller_of_ttl_and_max_age() {
        let t0 = Instant::now();
        let c = loaded(StatusListConfig::default().max_age(20 * SEC), t0, 3600);
        assert_eq!(c.held(URI).unwrap().refresh_at, t0 + 20 * SEC);
    }

    #[test]
    fn attack_tiny_ttl_is_clamped_to_the_floor() {
        let t0 = Instant::now();
        let mut c = loaded(StatusListConfig::default(), t0, 0);
        assert_eq!(c.held(URI).unwrap().refresh_at, t0 + SEC);
        assert_eq!(c.poll(t0), StatusAction::WaitUntil(t0 + SEC));
    }

    #[test]
    fn concurrent_first_uses_share_one_fetch() {
        let t0 = Instant::now();
        let mut c = cache(StatusListConfig::default());
        assert_eq!(c.request(t0, URI), StatusDemand::Started);
        assert_eq!(
            c.request(t0, URI),
            StatusDemand::Joined,
            "not in flight yet"
        );
        fetch(&mut c, t0);
        for _ in 0..3 {
            assert_eq!(c.request(t0, URI), StatusDemand::Joined);
        }
        assert!(
            matches!(c.poll(t0), StatusAction::WaitUntil(_)),
            "one fetch only"
        );
        assert_eq!(c.rounds(URI), 0);
        c.on_response(t0, NOW, URI, list_response(URI, NOW, 60, 0), Some(&keys()));
        assert_eq!(c.rounds(URI), 1);
        assert_eq!(c.request(t0, URI), StatusDemand::Ready);
    }

    #[test]
    fn stale_if_error_then_unavailable() {
        let t0 = Instant::now();
        let mut c = loaded(StatusListConfig::default(), t0, 30);
        let mut t = t0 + 30 * SEC;
        let mut delays = Vec::new();
        while t < t0 + 400 * SEC {
            fetch(&mut c, t);
            let update = c.on_response(t, NOW, URI, Err(FetchError::Timeout), Some(&keys()));
            assert!(matches!(update, StatusUpdate::Failed(_)));
            let StatusAction::WaitUntil(next) = c.poll(t) else {
                panic!()
            };
            delays.push((next - t).as_secs());
            t = next;
        }
        assert_eq!(delays[..6], [1, 2, 4, 8, 16, 30]);
        // Usable for 5 min past the refresh time, then not.
        let unix = |at: Instant| NOW + (at - t0).as_secs();
        let last_good = t0 + 329 * SEC;
        assert_eq!(
            c.check(last_good, unix(last_good), URI, 0),
            StatusCheck::Valid
        );
        let gone = t0 + 330 * SEC;
        assert_eq!(c.check(gone, unix(gone), URI, 0), StatusCheck::Unavailable);
        assert_eq!(c.request(gone, URI), StatusDemand::BackingOff);
        // A good fetch brings it back.
        let t = t + SEC;
        fetch(&mut c, t);
        c.on_response(
            t,
            unix(t),
            URI,
            list_response(URI, unix(t), 30, 0),
            Some(&keys()),
        );
        assert_eq!(c.check(t, unix(t), URI, 0), StatusCheck::Valid);
    }

    #[test]
    fn an_expired_list_token_is_not_used() {
        let t0 = Instant::now();
        let c = loaded(StatusListConfig::default(), t0, 30);
        // exp is iat + 1 day; leeway 30 s.
        assert_eq!(c.check(t0, NOW + 86_400 + 29, URI, 0), StatusCheck::Valid);
        assert_eq!(
            c.check(t0, NOW + 86_400 + 30, URI, 0),
            StatusCheck::Unavailable
        );
    }

    #[test]
    fn attack_status_list_rollback_is_refused() {
        let t0 = Instant::now();
        let mut c = cache(StatusListConfig::default());
        c.request(t0, URI);
        fetch(&mut c, t0);
        c.on_response(t0, NOW, URI, list_response(URI, NOW, 10, 1), Some(&keys()));
        // An older list (index 0 still valid there) replayed by an attacker in the path.
        let t1 = t0 + 10 * SEC;
        fetch(&mut c, t1);
        let update = c.on_response(
            t1,
            NOW + 10,
            URI,
            list_response(URI, NOW - 60, 10, 0),
            Some(&keys()),
        );
        assert!(
            matches!(update, StatusUpdate::Failed(FetchError::Invalid(_))),
            "{update:?}"
        );
        assert_eq!(c.held(URI).unwrap().iat, NOW);
        assert_eq!(c.check(t1, NOW + 10, URI, 0), StatusCheck::Revoked(1));
        // The same list again (equal iat) is fine.
        let t2 = t1 + SEC;
        fetch(&mut c, t2);
        let update = c.on_response(
            t2,
            NOW + 11,
            URI,
            list_response(URI, NOW, 10, 1),
            Some(&keys()),
        );
        assert!(matches!(update, StatusUpdate::Loaded { changed: false }));
    }

    #[test]
    fn least_recently_used_list_is_evicted() {
        let t0 = Instant::now();
        let mut c = cache(StatusListConfig::default().max_lists(2));
        let uri = |i: u32| format!("https://issuer.example/statuslists/{i}");
        c.request(t0, &uri(1));
        c.request(t0 + SEC, &uri(2));
        c.request(t0 + 2 * SEC, &uri(1));
        c.take_changed();
        assert_eq!(c.request(t0 + 3 * SEC, &uri(3)), StatusDemand::Started);
        assert!(c.take_changed());
        let held: Vec<_> = c.entries().map(|(u, _)| u.to_owned()).collect();
        assert_eq!(held, [uri(1), uri(3)]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn idle_lists_stop_being_refreshed_and_are_dropped() {
        let t0 = Instant::now();
        let config = StatusListConfig::default().idle_timeout(60 * SEC);
        let mut c = loaded(config, t0, 30);
        c.take_changed();
        // Used at 20 s: the refresh at 30 s happens, and at 60 s.
        c.note_used(t0 + 20 * SEC, URI);
        fetch(&mut c, t0 + 30 * SEC);
        c.on_response(
            t0 + 30 * SEC,
            NOW + 30,
            URI,
            list_response(URI, NOW + 30, 30, 0),
            Some(&keys()),
        );
        fetch(&mut c, t0 + 60 * SEC);
        c.on_response(
            t0 + 60 * SEC,
            NOW + 60,
            URI,
            list_response(URI, NOW + 60, 30, 0),
            Some(&keys()),
        );
        c.take_changed();
        // Unused since 20 s: at 90 s it is dropped instead of refreshed.
        assert!(matches!(c.poll(t0 + 90 * SEC), StatusAction::WaitUntil(_)));
        assert!(c.is_empty());
        assert!(c.take_changed());
        assert_eq!(
            c.check(t0 + 90 * SEC, NOW + 90, URI, 0),
            StatusCheck::Unknown
        );
    }

    #[test]
    fn attack_ssrf_uri_outside_the_issuer_origin_is_never_fetched() {
        let t0 = Instant::now();
        let mut c = cache(StatusListConfig::default());
        for uri in [
            "https://evil.example/statuslists/1",
            "http://169.254.169.254/latest/meta-data/",
            "https://issuer.example.evil.example/1",
        ] {
            assert_eq!(c.request(t0, uri), StatusDemand::NotAllowed);
        }
        assert!(c.is_empty());
        assert!(matches!(c.poll(t0), StatusAction::WaitUntil(_)));
    }

    #[test]
    fn attack_oversized_or_mistyped_status_list_response_is_refused() {
        let t0 = Instant::now();
        let good = || list_response(URI, NOW, 30, 0);
        let mut wrong_type = good().unwrap();
        wrong_type.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let mut not_ok = good().unwrap();
        *not_ok.status_mut() = http::StatusCode::NOT_FOUND;
        let mut huge = good().unwrap();
        huge.body_mut().resize(2 * 1024 * 1024, b' ');
        for (response, keys) in [
            (Ok(wrong_type), Some(keys())),
            (Ok(not_ok), Some(keys())),
            (Ok(huge), Some(keys())),
            (
                list_response("https://issuer.example/statuslists/2", NOW, 30, 0),
                Some(keys()),
            ),
            (good(), None),
        ] {
            let mut c = cache(StatusListConfig::default());
            c.request(t0, URI);
            fetch(&mut c, t0);
            let update = c.on_response(t0, NOW, URI, response, keys.as_ref());
            assert!(matches!(update, StatusUpdate::Failed(_)), "{update:?}");
            assert_eq!(c.check(t0, NOW, URI, 0), StatusCheck::Unknown);
            assert_eq!(c.request(t0, URI), StatusDemand::BackingOff);
        }
    }
}
