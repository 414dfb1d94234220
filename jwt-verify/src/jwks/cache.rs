//! The JWKS cache as a sans-IO state machine: it takes `now`, says what to fetch and when,
//! and digests responses. No clock, socket or task lives here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Uri;
use serde::Deserialize;

use super::fetch::FetchError;
use crate::error::BuildError;
use crate::jwk::KeySet;
use crate::policy::AlgorithmSet;
use crate::url;

/// Tuning of the key cache. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksCacheConfig {
    /// Time-to-live when the response has no usable `Cache-Control: max-age` (10 min).
    pub default_ttl: Duration,
    /// Lower bound for a `max-age` (1 min).
    pub min_ttl: Duration,
    /// Upper bound for a `max-age` (1 day).
    pub max_ttl: Duration,
    /// After an unknown-`kid` refresh, further unknown kids wait this long before causing
    /// another fetch (30 s).
    pub unknown_kid_cooldown: Duration,
    /// How long past its TTL a key set stays in use while refreshes fail (1 day).
    pub max_stale: Duration,
    /// First retry delay after a failed fetch, doubled per failure (1 s).
    pub retry_min: Duration,
    /// Largest retry delay (1 min).
    pub retry_max: Duration,
    /// Per-fetch timeout, connect to last body byte (5 s).
    pub fetch_timeout: Duration,
    /// Largest accepted document (1 MiB).
    pub max_body_bytes: usize,
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        JwksCacheConfig {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Which document a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// `{issuer}/.well-known/openid-configuration`, to learn `jwks_uri`.
    Discovery,
    /// The JWK Set.
    Jwks,
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start this fetch now and report its result with [`JwksCache::on_response`].
    Fetch(FetchKind, Uri),
    /// Nothing to do before this instant (or before [`JwksCache::request`] is called).
    WaitUntil(Instant),
    /// A fetch is in flight; wait for it.
    AwaitResponse,
}

/// Why a caller wants keys it does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// There is no usable key set at all.
    NoKeys,
    /// The token's `kid` is not in the key set (perhaps rotated).
    UnknownKid {
        /// The generation of the key set the caller looked in.
        seen_generation: u64,
    },
}

/// The answer to a [`Demand`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandOutcome {
    /// A fetch will start: wait for it.
    Started,
    /// A fetch is already in flight: wait for it.
    Joined,
    /// An unknown-kid fetch happened within the cooldown: answer now, do not wait.
    CoolingDown,
    /// Recent fetches failed and the retry delay has not passed: answer now.
    BackingOff,
    /// Keys newer than the caller saw are already loaded: try again now, no fetch needed.
    Ready,
}

impl DemandOutcome {
    /// Whether the caller should wait for a fetch to finish.
    pub fn should_wait(self) -> bool {
        matches!(self, DemandOutcome::Started | DemandOutcome::Joined)
    }
}

/// A key set ready for use, and until when.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The keys.
    pub key_set: Arc<KeySet>,
    /// Bumped whenever the key material changes; cached verifications from an older
    /// generation are void.
    pub generation: u64,
    /// When the set was fetched.
    pub fetched_at: Instant,
    /// When a background refresh is due.
    pub refresh_at: Instant,
    /// After this instant the set must not be used any more.
    pub usable_until: Instant,
}

/// The result of digesting a response.
#[derive(Debug)]
pub enum Update {
    /// Discovery gave us the `jwks_uri`; the JWKS fetch is due immediately.
    Discovered,
    /// A new key set is in use (`changed` is false when the key material is the same).
    Loaded {
        /// Whether the key material differs from the previous set.
        changed: bool,
    },
    /// The fetch failed; the previous key set (if any) stays in use.
    Failed(FetchError),
}

/// The key cache state machine.
///
/// ```
/// use std::time::{Duration, Instant};
/// use jwks_verify::jwks::{Action, FetchKind, JwksCache, JwksCacheConfig, Update};
/// use jwks_verify::{Algorithm, AlgorithmSet};
///
/// let start = Instant::now();
/// let mut cache = JwksCache::for_jwks_url(
///     "https://issuer.example/jwks",
///     AlgorithmSet::only(Algorithm::RS256),
///     JwksCacheConfig::default(),
///     start,
/// )?;
/// let Action::Fetch(FetchKind::Jwks, uri) = cache.poll(start) else { unreachable!() };
/// assert_eq!(uri, "https://issuer.example/jwks");
/// // The fetch failed: the cache backs off for a second.
/// let update = cache.on_response(start, FetchKind::Jwks, Err(jwks_verify::jwks::FetchError::Timeout));
/// assert!(matches!(update, Update::Failed(_)));
/// assert_eq!(cache.poll(start), Action::WaitUntil(start + Duration::from_secs(1)));
/// # Ok::<(), jwks_verify::BuildError>(())
/// ```
#[derive(Debug)]
pub struct JwksCache {
    config: JwksCacheConfig,
    algorithms: AlgorithmSet,
    /// Set when keys come through discovery: the issuer the document must name.
    issuer: Option<String>,
    discovery_uri: Option<Uri>,
    jwks_uri: Option<Uri>,
    loaded: Option<Loaded>,
    in_flight: bool,
    next_fetch_at: Instant,
    demand: bool,
    failures: u32,
    last_unknown_kid_fetch: Option<Instant>,
    generation: u64,
    completed_rounds: u64,
}

/// After this many failed JWKS fetches in a row, discovery is run again in case the
/// `jwks_uri` moved.
const REDISCOVER_AFTER_FAILURES: u32 = 3;

impl JwksCache {
    /// Keys from `{issuer}/.well-known/openid-configuration` → `jwks_uri`.
    pub fn for_issuer(
        issuer: &str,
        algorithms: AlgorithmSet,
        config: JwksCacheConfig,
        now: Instant,
    ) -> Result<Self, BuildError> {
        let discovery = url::discovery_url(issuer)?;
        let mut cache = Self::new(algorithms, config, now);
        cache.issuer = Some(issuer.to_owned());
        cache.discovery_uri = Some(discovery);
        Ok(cache)
    }

    /// Keys straight from a JWKS URL.
    pub fn for_jwks_url(
        jwks_url: &str,
        algorithms: AlgorithmSet,
        config: JwksCacheConfig,
        now: Instant,
    ) -> Result<Self, BuildError> {
        let mut cache = Self::new(algorithms, config, now);
        cache.jwks_uri = Some(url::key_source_url(jwks_url)?);
        Ok(cache)
    }

    fn new(algorithms: AlgorithmSet, config: JwksCacheConfig, now: Instant) -> Self {
        JwksCache {
            config,
            algorithms,
            issuer: None,
            discovery_uri: None,
            jwks_uri: None,
            loaded: None,
            in_flight: false,
            next_fetch_at: now,
            demand: false,
            failures: 0,
            last_unknown_kid_fetch: None,
            generation: 0,
            completed_rounds: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &JwksCacheConfig {
        &self.config
    }

    /// The key set in use, if any (it may be past `usable_until`; the caller checks).
    pub fn loaded(&self) -> Option<&Loaded> {
        self.loaded.as_ref()
    }

    /// How many fetch rounds have finished (a key set loaded, or a failure). A caller told
    /// to wait by [`request`](Self::request) waits until this exceeds its value at that time.
    pub fn completed_rounds(&self) -> u64 {
        self.completed_rounds
    }

    /// What to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Action {
        if self.in_flight {
            return Action::AwaitResponse;
        }
        if !self.demand && now < self.next_fetch_at {
            return Action::WaitUntil(self.next_fetch_at);
        }
        let rediscover = self.failures >= REDISCOVER_AFTER_FAILURES && self.discovery_uri.is_some();
        let target = match (&self.jwks_uri, &self.discovery_uri) {
            (Some(jwks), _) if !rediscover => (FetchKind::Jwks, jwks.clone()),
            (_, Some(discovery)) => (FetchKind::Discovery, discovery.clone()),
            (Some(jwks), None) => (FetchKind::Jwks, jwks.clone()),
            (None, None) => return Action::WaitUntil(now + self.config.max_ttl),
        };
        self.in_flight = true;
        Action::Fetch(target.0, target.1)
    }

    /// A caller needs keys it does not have. Decides whether a fetch should happen (the
    /// driver is then woken and calls [`poll`](Self::poll)).
    pub fn request(&mut self, now: Instant, demand: Demand) -> DemandOutcome {
        let answered = match (demand, &self.loaded) {
            (Demand::NoKeys, Some(loaded)) => now < loaded.usable_until,
            (Demand::UnknownKid { seen_generation }, Some(loaded)) => {
                loaded.generation != seen_generation
            }
            (_, None) => false,
        };
        if answered {
            return DemandOutcome::Ready;
        }
        if self.in_flight {
            return DemandOutcome::Joined;
        }
        if self.failures > 0 && now < self.next_fetch_at {
            return DemandOutcome::BackingOff;
        }
        if matches!(demand, Demand::UnknownKid { .. }) {
            if self
                .last_unknown_kid_fetch
                .is_some_and(|last| now < last + self.config.unknown_kid_cooldown)
            {
                return DemandOutcome::CoolingDown;
            }
            self.last_unknown_kid_fetch = Some(now);
        }
        self.demand = true;
        DemandOutcome::Started
    }

    /// Digests the result of the fetch [`poll`](Self::poll) asked for.
    pub fn on_response(
        &mut self,
        now: Instant,
        kind: FetchKind,
        response: Result<http::Response<Vec<u8>>, FetchError>,
    ) -> Update {
        self.in_flight = false;
        let result = response.and_then(|response| {
            if response.status() != http::StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            match kind {
                FetchKind::Discovery => self
                    .digest_discovery(response.body())
                    .map(|()| Update::Discovered),
                FetchKind::Jwks => self.digest_jwks(now, &response),
            }
        });
        match result {
            Ok(update) => {
                if matches!(update, Update::Loaded { .. }) {
                    self.demand = false;
                    self.failures = 0;
                    self.completed_rounds += 1;
                } else {
                    self.next_fetch_at = now;
                }
                update
            }
            Err(error) => {
                self.completed_rounds += 1;
                self.failures = self.failures.saturating_add(1);
                self.demand = false;
                self.next_fetch_at = now + self.retry_delay();
                Update::Failed(error)
            }
        }
    }

    fn retry_delay(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        (self.config.retry_min * (1u32 << doublings)).min(self.config.retry_max)
    }

    fn digest_discovery(&mut self, body: &[u8]) -> Result<(), FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let doc: Discovery = serde_json::from_slice(body).map_err(|_| {
            FetchError::Invalid("discovery document without issuer and jwks_uri".into())
        })?;
        if self.issuer.as_deref() != Some(doc.issuer.as_str()) {
            return Err(FetchError::Invalid(
                "discovery issuer differs from the configured issuer".into(),
            ));
        }
        let jwks_uri = url::key_source_url(&doc.jwks_uri).map_err(|_| {
            FetchError::Invalid("jwks_uri is not https, or carries credentials".into())
        })?;
        self.jwks_uri = Some(jwks_uri);
        self.failures = 0;
        Ok(())
    }

    fn digest_jwks(
        &mut self,
        now: Instant,
        response: &http::Response<Vec<u8>>,
    ) -> Result<Update, FetchError> {
        let key_set = KeySet::from_jwks(response.body(), self.algorithms)
            .map_err(|e| FetchError::Invalid(e.to_string()))?;
        let ttl = max_age(response.headers()).map_or(self.config.default_ttl, |age| {
            age.clamp(self.config.min_ttl, self.config.max_ttl)
        });
        let changed = self
            .loaded
            .as_ref()
            .is_none_or(|old| old.key_set.fingerprint() != key_set.fingerprint());
        if changed {
            self.generation += 1;
        }
        self.next_fetch_at = now + ttl;
        self.loaded = Some(Loaded {
            key_set: Arc::new(key_set),
            generation: self.generation,
            fetched_at: now,
            refresh_at: now + ttl,
            usable_until: now + ttl + self.config.max_stale,
        });
        Ok(Update::Loaded { changed })
    }
}

/// `Cache-Control: max-age=N` (`no-cache`/`no-store` count as zero, i.e. the minimum TTL).
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let mut age = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-cache")
                || directive.eq_ignore_ascii_case("no-store")
            {
                return Some(Duration::ZERO);
            }
            let Some((name, seconds)) = directive.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("max-age")
                && let Ok(seconds) = seconds.trim().trim_matches('"').parse::<u64>()
            {
                age = Some(Duration::from_secs(seconds));
            }
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Algorithm;
    use crate::test_keys;

    const SEC: Duration = Duration::from_secs(1);

    fn jwks_response(
        kids: &[&str],
        cache_control: Option<&str>,
    ) -> Result<http::Response<Vec<u8>>, FetchError> {
        let keys: Vec<_> = kids.iter().map(|k| test_keys::rsa_jwk(k)).collect();
        let mut builder = http::Response::builder();
        if let Some(cc) = cache_control {
            builder = builder.header("cache-control", cc);
        }
        Ok(builder.body(test_keys::jwks(&keys).into_bytes()).unwrap())
    }

    fn direct(now: Instant) -> JwksCache {
        JwksCache::for_jwks_url(
            "https://issuer.example/jwks",
            AlgorithmSet::only(Algorithm::RS256),
            JwksCacheConfig::default(),
            now,
        )
        .unwrap()
    }

    fn fetch(cache: &mut JwksCache, now: Instant) -> FetchKind {
        match cache.poll(now) {
            Action::Fetch(kind, _) => kind,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn fetches_at_start_then_after_ttl() {
        let t0 = Instant::now();
        let mut cache = direct(t0);
        assert_eq!(fetch(&mut cache, t0), FetchKind::Jwks);
        assert_eq!(cache.poll(t0), Action::AwaitResponse);
        let update = cache.on_response(t0, FetchKind::Jwks, jwks_response(&["k1"], None));
        assert!(matches!(update, Update::Loaded { changed: true }));
        let loaded = cache.loaded().unwrap();
        assert_eq!(loaded.refresh_at, t0 + 600 * SEC);
        assert_eq!(loaded.usable_until, t0 + 600 * SEC + 24 * 3600 * SEC);
        assert_eq!(cache.poll(t0 + 10 * SEC), Action::WaitUntil(t0 + 600 * SEC));
        assert_eq!(fetch(&mut cache, t0 + 600 * SEC), FetchKind::Jwks);
    }

    #[test]
    fn honours_max_age_within_bounds() {
        let t0 = Instant::now();
        for (header, ttl) in [
            ("public, max-age=120", 120),
            ("max-age=5", 60),
            ("max-age=999999999", 24 * 3600),
            ("no-cache", 60),
            ("private", 600),
            ("max-age=abc", 600),
        ] {
            let mut cache = direct(t0);
            fetch(&mut cache, t0);
            cache.on_response(t0, FetchKind::Jwks, jwks_response(&["k"], Some(header)));
            assert_eq!(
                cache.loaded().unwrap().refresh_at,
                t0 + ttl * SEC,
                "{header}"
            );
        }
    }

    #[test]
    fn unknown_kid_refresh_then_cooldown() {
        let t0 = Instant::now();
        let mut cache = direct(t0);
        fetch(&mut cache, t0);
        cache.on_response(t0, FetchKind::Jwks, jwks_response(&["k1"], None));

        let t1 = t0 + 100 * SEC;
        assert_eq!(
            cache.request(t1, Demand::UnknownKid { seen_generation: 1 }),
            DemandOutcome::Started
        );
        assert_eq!(fetch(&mut cache, t1), FetchKind::Jwks);
        assert_eq!(
            cache.request(t1, Demand::UnknownKid { seen_generation: 1 }),
            DemandOutcome::Joined
        );
        let update = cache.on_response(t1, FetchKind::Jwks, jwks_response(&["k1", "k2"], None));
        assert!(matches!(update, Update::Loaded { changed: true }));
        assert_eq!(cache.loaded().unwrap().generation, 2);

        // Within the cooldown, more unknown kids cause no fetch.
        for s in [0, 1, 29] {
            assert_eq!(
                cache.request(t1 + s * SEC, Demand::UnknownKid { seen_generation: 2 }),
                DemandOutcome::CoolingDown
            );
        }
        assert!(matches!(cache.poll(t1 + 29 * SEC), Action::WaitUntil(_)));
        assert_eq!(
            cache.request(t1 + 30 * SEC, Demand::UnknownKid { seen_generation: 2 }),
            DemandOutcome::Started
        );
    }

    #[test]
    fn demand_answered_by_keys_loaded_meanwhile_needs_no_fetch() {
        let t0 = Instant::now();
        let mut cache = direct(t0);
        assert_eq!(cache.request(t0, Demand::NoKeys), DemandOutcome::Started);
        fetch(&mut cache, t0);
        cache.on_response(t0, FetchKind::Jwks, jwks_response(&["k1"], None));
        // A caller that looked before the keys arrived is told to look again.
        assert_eq!(cache.request(t0, Demand::NoKeys), DemandOutcome::Ready);
        assert_eq!(
            cache.request(t0, Demand::UnknownKid { seen_generation: 0 }),
            DemandOutcome::Ready
        );
        assert!(
            matches!(cache.poll(t0), Action::WaitUntil(_)),
            "no second fetch"
        );
    }

    #[test]
    fn same_keys_keep_the_generation() {
        let t0 = Instant::now();
        let mut cache = direct(t0);
        fetch(&mut cache, t0);
        cache.on_response(t0, FetchKind::Jwks, jwks_response(&["k1"], None));
        let t1 = t0 + 600 * SEC;
        fetch(&mut cache, t1);
        let update = cache.on_response(t1, FetchKind::Jwks, jwks_response(&["k1"], None));
        assert!(matches!(update, Update::Loaded { changed: false }));
        assert_eq!(cache.loaded().unwrap().generation, 1);
    }

    #[test]
    fn failures_keep_old_keys_and_back_off() {
        let t0 = Instant::now();
        let mut cache = direct(t0);
        fetch(&mut cache, t0);
        cache.on_response(t0, FetchKind::Jwks, jwks_response(&["k1"], None));
        let mut t = t0 + 600 * SEC;
        let mut delays = Vec::new();
        for body in [
            Err(FetchError::Timeout),
            Ok(http::Response::new(b"<html>oops</html>".to_vec())),
            Ok(http::Response::builder()
                .status(503)
                .body(Vec::new())
                .unwrap()),
            Ok(http::Response::new(br#"{"keys":[]}"#.to_vec())),
        ] {
            fetch(&mut cache, t);
            assert!(matches!(
                cache.on_response(t, FetchKind::Jwks, body),
                Update::Failed(_)
            ));
            assert_eq!(cache.loaded().unwrap().generation, 1, "old keys kept");
            let Action::WaitUntil(next) = cache.poll(t) else {
                panic!()
            };
            delays.push((next - t).as_secs());
            assert_eq!(
                cache.request(t, Demand::UnknownKid { seen_generation: 1 }),
                DemandOutcome::BackingOff
            );
            t = next;
        }
        assert_eq!(delays, [1, 2, 4, 8]);
    }

    #[test]
    fn retry_delay_is_capped() {
        let t0 = Instant::now();
        let mut cache = direct(t0);
        let mut t = t0;
        for _ in 0..20 {
            fetch(&mut cache, t);
            cache.on_response(t, FetchKind::Jwks, Err(FetchError::Timeout));
            let Action::WaitUntil(next) = cache.poll(t) else {
                panic!()
            };
            assert!(next - t <= 60 * SEC);
            t = next;
        }
    }

    fn discovering(now: Instant) -> JwksCache {
        JwksCache::for_issuer(
            "https://issuer.example",
            AlgorithmSet::only(Algorithm::RS256),
            JwksCacheConfig::default(),
            now,
        )
        .unwrap()
    }

    fn discovery_doc(issuer: &str, jwks_uri: &str) -> Result<http::Response<Vec<u8>>, FetchError> {
        Ok(http::Response::new(
            serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri})
                .to_string()
                .into_bytes(),
        ))
    }

    #[test]
    fn discovery_then_jwks() {
        let t0 = Instant::now();
        let mut cache = discovering(t0);
        let Action::Fetch(FetchKind::Discovery, uri) = cache.poll(t0) else {
            panic!()
        };
        assert_eq!(
            uri,
            "https://issuer.example/.well-known/openid-configuration"
        );
        let update = cache.on_response(
            t0,
            FetchKind::Discovery,
            discovery_doc("https://issuer.example", "https://keys.example/jwks"),
        );
        assert!(matches!(update, Update::Discovered));
        let Action::Fetch(FetchKind::Jwks, uri) = cache.poll(t0) else {
            panic!()
        };
        assert_eq!(uri, "https://keys.example/jwks");
    }

    #[test]
    fn discovery_issuer_must_match_exactly() {
        let t0 = Instant::now();
        for (issuer, jwks) in [
            ("https://issuer.example/", "https://keys.example/jwks"),
            ("https://evil.example", "https://keys.example/jwks"),
            ("https://issuer.example", "http://keys.example/jwks"),
            (
                "https://issuer.example",
                "https://user:pass@keys.example/jwks",
            ),
        ] {
            let mut cache = discovering(t0);
            cache.poll(t0);
            let update = cache.on_response(t0, FetchKind::Discovery, discovery_doc(issuer, jwks));
            assert!(
                matches!(update, Update::Failed(FetchError::Invalid(_))),
                "{issuer} {jwks}"
            );
        }
    }

    #[test]
    fn rediscovers_after_repeated_jwks_failures() {
        let t0 = Instant::now();
        let mut cache = discovering(t0);
        cache.poll(t0);
        cache.on_response(
            t0,
            FetchKind::Discovery,
            discovery_doc("https://issuer.example", "https://keys.example/jwks"),
        );
        let mut t = t0;
        for _ in 0..REDISCOVER_AFTER_FAILURES {
            assert_eq!(fetch(&mut cache, t), FetchKind::Jwks);
            cache.on_response(t, FetchKind::Jwks, Err(FetchError::Status(404)));
            t += 120 * SEC;
        }
        assert_eq!(fetch(&mut cache, t), FetchKind::Discovery);
    }
}
