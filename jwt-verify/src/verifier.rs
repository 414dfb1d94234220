//! The verifier: policy + key source + optional verified-token cache + counters.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwapOption, Guard};
use serde::de::DeserializeOwned;

use crate::base64url;
use crate::claims::{Decoded, decode_claims};
use crate::clock::{Clock, SystemClock};
use crate::error::{BuildError, Error, ErrorKind};
use crate::jwk::{KeySet, VerifyingKey};
use crate::jwks::{Demand, JwksCacheConfig};
use crate::jws;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::policy::{Algorithm, Policy};
use crate::token_cache::{self, TokenCache};

/// Claims up to this size are decoded on the stack.
const PAYLOAD_STACK_BYTES: usize = 1024;

/// Default number of entries in the verified-token cache.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 4096;

/// Verifies bearer JWTs. Cheap to clone: clones share keys, caches and counters.
///
/// Build one per issuer and audience with [`Verifier::builder`] and keep it for the life of
/// the process. Remote key sources are refreshed by a background tokio task that ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) policy: Policy,
    pub(crate) keys: ArcSwapOption<Published>,
    pub(crate) token_cache: Option<TokenCache>,
    pub(crate) metrics: Metrics,
    pub(crate) clock: Arc<dyn Clock>,
    #[cfg(feature = "runtime")]
    pub(crate) remote: Option<crate::jwks::driver::Remote>,
    #[cfg(feature = "status-list")]
    pub(crate) status: Option<crate::status_list::driver::StatusLists>,
}

/// The key set as the hot path reads it. Deadlines are in wall-clock seconds so a
/// verification reads the clock once.
pub(crate) struct Published {
    pub(crate) key_set: Arc<KeySet>,
    pub(crate) generation: u64,
    /// A background refresh is due from this Unix time.
    pub(crate) refresh_at: u64,
    /// The keys must not be used from this Unix time.
    pub(crate) usable_until: u64,
    /// Header segments that resolved to a key and then carried a valid signature.
    accepted_headers: [OnceLock<AcceptedHeader>; ACCEPTED_HEADERS],
}

/// How many distinct header segments a key set remembers. An issuer signs all its tokens
/// with a handful of headers (one per key and `typ`); slots are filled once and never
/// evicted, so a flood of other headers cannot push these out.
const ACCEPTED_HEADERS: usize = 4;

/// Longest header segment worth remembering.
const MAX_ACCEPTED_HEADER_BYTES: usize = 512;

/// A header segment and what it resolved to under one key set and policy.
///
/// Header checks are a pure function of the segment's bytes (strict base64url has one
/// encoding per byte string), the policy and the key set, so equal bytes under the same
/// key set get the same answer without decoding and parsing the header again.
struct AcceptedHeader {
    encoded: Box<[u8]>,
    algorithm: Algorithm,
    key_index: usize,
}

impl Published {
    pub(crate) fn new(
        key_set: Arc<KeySet>,
        generation: u64,
        refresh_at: u64,
        usable_until: u64,
    ) -> Self {
        Published {
            key_set,
            generation,
            refresh_at,
            usable_until,
            accepted_headers: Default::default(),
        }
    }

    /// Converts the cache's monotonic deadlines at (`now`, `now_unix`).
    #[cfg(feature = "runtime")]
    pub(crate) fn from_loaded(
        loaded: &crate::jwks::Loaded,
        now: std::time::Instant,
        now_unix: u64,
    ) -> Self {
        let to_unix = |t: std::time::Instant| {
            now_unix.saturating_add(t.saturating_duration_since(now).as_secs())
        };
        Published::new(
            Arc::clone(&loaded.key_set),
            loaded.generation,
            to_unix(loaded.refresh_at),
            to_unix(loaded.usable_until),
        )
    }

    /// What a header segment accepted earlier resolved to: its algorithm and key.
    fn accepted_header(&self, encoded: &[u8]) -> Option<(Algorithm, &VerifyingKey)> {
        self.accepted_headers
            .iter()
            .map_while(OnceLock::get)
            .find(|accepted| *accepted.encoded == *encoded)
            .and_then(|accepted| {
                let key = self.key_set.key(accepted.key_index)?;
                Some((accepted.algorithm, key))
            })
    }

    /// Remembers a header segment whose token carried a valid signature, if a slot is free.
    fn remember_header(&self, encoded: &[u8], algorithm: Algorithm, key_index: usize) {
        if encoded.len() > MAX_ACCEPTED_HEADER_BYTES {
            return;
        }
        if let Some(slot) = self
            .accepted_headers
            .iter()
            .find(|slot| slot.get().is_none())
        {
            // Losing a race to another thread only leaves this header unremembered.
            let _ = slot.set(AcceptedHeader {
                encoded: encoded.into(),
                algorithm,
                key_index,
            });
        }
    }
}

/// A verified token: its claims (by `Deref`) and what it was verified with.
pub struct Verified<C> {
    inner: Arc<VerifiedInner<C>>,
}

struct VerifiedInner<C> {
    claims: C,
    expires_at: u64,
    algorithm: Algorithm,
    /// A copy, not a shared `Arc`: cloning one refcount from every core would bounce its
    /// cache line between them on each verification.
    key_id: Option<Box<str>>,
    /// Where the token's status lives, looked up again on every verification (cache hits
    /// included) so a later revocation is seen.
    #[cfg(feature = "status-list")]
    status: Option<crate::status_claim::StatusRef>,
    /// The list `status` names, once found.
    #[cfg(feature = "status-list")]
    status_slot: OnceLock<Arc<crate::status_list::driver::ListSlot>>,
}

impl<C> Verified<C> {
    /// The claims.
    pub fn claims(&self) -> &C {
        &self.inner.claims
    }

    /// The token's `exp`, in Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.inner.expires_at
    }

    /// The algorithm the signature was checked with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// The `kid` of the key that verified the signature.
    pub fn key_id(&self) -> Option<&str> {
        self.inner.key_id.as_deref()
    }
}

impl<C> Deref for Verified<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.inner.claims
    }
}

impl<C> Clone for Verified<C> {
    fn clone(&self) -> Self {
        Verified {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for Verified<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("claims", &self.inner.claims)
            .field("expires_at", &self.inner.expires_at)
            .field("algorithm", &self.inner.algorithm)
            .field("key_id", &self.inner.key_id)
            .finish()
    }
}

impl Verifier {
    /// Starts building a verifier for `policy`.
    ///
    /// ```
    /// use jwks_verify::{Policy, Verifier};
    ///
    /// # let jwks = br#"{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}"#;
    /// let verifier = Verifier::builder(Policy::new("https://issuer.example", "my-api"))
    ///     .static_jwks(jwks)
    ///     .build()?;
    /// assert_eq!(verifier.metrics().keys_in_use, 1);
    /// # Ok::<(), jwks_verify::BuildError>(())
    /// ```
    pub fn builder(policy: Policy) -> VerifierBuilder {
        VerifierBuilder {
            policy,
            source: None,
            cache_config: JwksCacheConfig::default(),
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
            clock: Arc::new(SystemClock),
            #[cfg(feature = "runtime")]
            fetcher: None,
            #[cfg(feature = "status-list")]
            status_lists: None,
        }
    }

    /// Verifies `token` and deserializes its claims into `C`.
    ///
    /// Once keys are loaded this never waits on the network. It waits (at most the fetch
    /// timeout) only when there are no keys yet, for one refresh when the token's `kid`
    /// is unknown and no unknown-kid refresh happened within the cooldown, or (with status
    /// lists) for the first fetch of a status list no earlier token named.
    pub async fn verify<C>(&self, token: &str) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let result = match self.attempt(token, true) {
            Err(Refusal::Token(error)) => Err(error),
            Err(pending) => self.retry_after_fetch(token, pending).await,
            Ok(verified) => Ok(verified),
        };
        self.finish(result)
    }

    /// Verifies `token` with the keys already in memory; never waits. A missing key
    /// schedules a refresh (within the same limits as [`verify`](Self::verify)) and fails
    /// with [`ErrorKind::UnknownKey`] or [`ErrorKind::KeySetUnavailable`]. A status list
    /// never fetched before is scheduled, and meanwhile the failure mode applies.
    pub fn try_verify<C>(&self, token: &str) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let result = match self.attempt(token, true) {
            Ok(verified) => Ok(verified),
            #[cfg(feature = "status-list")]
            Err(Refusal::NeedStatus(uri)) => {
                self.schedule_status_fetch(&uri);
                self.attempt(token, false).map_err(Refusal::into_error)
            }
            Err(refusal) => {
                if let Refusal::NeedKeys(demand) = refusal {
                    self.schedule_fetch(demand);
                }
                Err(refusal.into_error())
            }
        };
        self.finish(result)
    }

    /// Checks a compact JWS's size, header (algorithm allow-list, `typ`, `crit`) and
    /// signature, and returns the payload bytes without reading them as claims.
    ///
    /// For JWS payloads that are not JWT claims sets. Nothing about the payload (expiry,
    /// issuer, audience) is checked: prefer [`verify`](Self::verify) for tokens.
    pub async fn verify_jws_payload(&self, token: &str) -> Result<Vec<u8>, Error> {
        let result = match self.attempt_jws(token) {
            Ok(payload) => Ok(payload),
            Err(Refusal::NeedKeys(demand)) => {
                self.wait_for_fetch(demand).await;
                self.attempt_jws(token).map_err(Refusal::into_error)
            }
            Err(refusal) => Err(refusal.into_error()),
        };
        self.finish(result)
    }

    /// Waits until a key set is loaded (or the first fetch failed) and reports whether
    /// keys are usable. Useful for readiness checks at start-up.
    pub async fn ready(&self) -> bool {
        if self.current_keys().is_none() {
            self.wait_for_fetch(Demand::NoKeys).await;
        }
        self.current_keys().is_some()
    }

    /// A copy of the counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot(self.shared.clock.now())
    }

    /// The policy tokens are checked against.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The key set in use, if one is loaded and not past its maximum stale age.
    pub fn key_set(&self) -> Option<Arc<KeySet>> {
        self.current_keys()
            .map(|loaded| Arc::clone(&loaded.key_set))
    }

    /// Counts the outcome and passes it on.
    pub(crate) fn finish<T: Outcome>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match &result {
            Ok(value) if value.status_checked() => self.shared.metrics.verified_with_status(),
            _ => self.shared.metrics.record(&result),
        }
        result
    }

    fn current_keys(&self) -> Option<Arc<Published>> {
        let now = self.shared.clock.unix_time();
        self.shared
            .keys
            .load_full()
            .filter(|keys| now < keys.usable_until)
    }

    /// Everything up to and including the signature: structure, header, key, signature.
    fn check_signature<'t>(
        &self,
        token: &'t str,
        loaded: Option<&Published>,
    ) -> Result<SignedParts<'t>, Refusal> {
        let compact = jws::split(token)?;
        let remembered = loaded.and_then(|loaded| loaded.accepted_header(compact.header));
        let (algorithm, key, key_index) = match remembered {
            Some((algorithm, key)) => (algorithm, key, None),
            None => {
                let (algorithm, index, key) = self.resolve_header(compact.header, loaded)?;
                (algorithm, key, Some(index))
            }
        };
        if !jws::verify_signature(compact.signature, |signature| {
            key.verify(compact.signing_input, signature)
        })? {
            return Err(refuse(
                ErrorKind::InvalidSignature,
                "signature does not verify",
            ));
        }
        if let (Some(loaded), Some(index)) = (loaded, key_index) {
            loaded.remember_header(compact.header, algorithm, index);
        }
        Ok(SignedParts {
            payload: compact.payload,
            algorithm,
            key_id: key.kid.as_deref().map(Box::from),
        })
    }

    /// Decodes and checks a header segment (algorithm allow-list, extensions, `typ`) and
    /// finds the key it names: the algorithm, the key's index in the set and the key.
    fn resolve_header<'k>(
        &self,
        encoded: &[u8],
        loaded: Option<&'k Published>,
    ) -> Result<(Algorithm, usize, &'k VerifyingKey), Refusal> {
        let policy = &self.shared.policy;
        jws::with_header(encoded, |header| {
            let Some(alg) =
                Algorithm::from_name(&header.alg).filter(|a| policy.algorithms.contains(*a))
            else {
                return Err(refuse(
                    ErrorKind::AlgorithmNotAllowed,
                    "algorithm not allowed",
                ));
            };
            if header.has_extension {
                return Err(refuse(
                    ErrorKind::UnsupportedCritical,
                    "unsupported critical header",
                ));
            }
            if !policy.typ.accepts(header.typ.as_deref()) {
                return Err(refuse(ErrorKind::WrongType, "typ header not accepted"));
            }
            let Some(loaded) = loaded else {
                return Err(Refusal::NeedKeys(Demand::NoKeys));
            };
            let Some((index, key)) = loaded.key_set.find(alg, header.kid.as_deref()) else {
                return Err(Refusal::NeedKeys(Demand::UnknownKid {
                    seen_generation: loaded.generation,
                }));
            };
            Ok((alg, index, key))
        })?
    }

    /// Turns "keys needed" into an error when there is no remote source to fetch from.
    fn need_keys<T>(&self, demand: Demand) -> Result<T, Refusal> {
        if self.has_remote() {
            Err(Refusal::NeedKeys(demand))
        } else {
            Err(Refusal::Token(demand_error(demand)))
        }
    }

    /// One verification with the keys (and status lists) in memory; never waits.
    /// `may_wait_for_status` is false once the caller waited for a status list fetch: a
    /// list still missing then gets the failure mode instead of [`Refusal::NeedStatus`].
    pub(crate) fn attempt<C>(
        &self,
        token: &str,
        may_wait_for_status: bool,
    ) -> Result<Verified<C>, Refusal>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let shared = &*self.shared;
        let policy = &shared.policy;
        let keys = self.begin_attempt(token)?;
        let now = keys.now;
        let loaded = keys.usable();

        let hash = shared
            .token_cache
            .as_ref()
            .map(|_| token_cache::hash_token(token));
        if let (Some(cache), Some(hash), Some(loaded)) = (&shared.token_cache, &hash, loaded)
            && let Some(value) = cache.get(hash, loaded.generation, now)
            && let Ok(inner) = value.downcast::<VerifiedInner<C>>()
        {
            shared.metrics.token_cache_hit();
            #[cfg(feature = "status-list")]
            self.check_status(&inner, now, may_wait_for_status)?;
            return Ok(Verified { inner });
        }

        let parts = match self.check_signature(token, loaded) {
            Err(Refusal::NeedKeys(demand)) => return self.need_keys(demand),
            other => other?,
        };
        let capture_status = self.checks_status();
        let decoded: Decoded<C> =
            base64url::with_decoded::<PAYLOAD_STACK_BYTES, _>(parts.payload, |payload| {
                decode_claims::<C>(payload, policy, now, capture_status)
            })
            .ok_or(refuse(
                ErrorKind::Malformed,
                "payload is not canonical base64url",
            ))??;
        #[cfg(not(feature = "status-list"))]
        let _ = (may_wait_for_status, decoded.status);
        let expires_at = decoded.exp;
        let inner = Arc::new(VerifiedInner {
            claims: decoded.claims,
            expires_at,
            algorithm: parts.algorithm,
            key_id: parts.key_id,
            #[cfg(feature = "status-list")]
            status: decoded.status,
            #[cfg(feature = "status-list")]
            status_slot: OnceLock::new(),
        });
        // Cached before the status check: a hit checks the status again.
        if let (Some(cache), Some(hash), Some(loaded)) = (&shared.token_cache, hash, loaded) {
            cache.insert(hash, expires_at, loaded.generation, inner.clone(), now);
        }
        #[cfg(feature = "status-list")]
        self.check_status(&inner, now, may_wait_for_status)?;
        Ok(Verified { inner })
    }

    /// Whether tokens' `status` claims are checked against status lists.
    fn checks_status(&self) -> bool {
        #[cfg(feature = "status-list")]
        {
            self.shared.status.is_some()
        }
        #[cfg(not(feature = "status-list"))]
        {
            false
        }
    }

    #[cfg(feature = "status-list")]
    #[inline]
    fn check_status<C>(
        &self,
        inner: &VerifiedInner<C>,
        now: u64,
        may_wait: bool,
    ) -> Result<(), Refusal> {
        match &self.shared.status {
            None => Ok(()),
            Some(lists) => lists.check(
                inner.status.as_ref(),
                &inner.status_slot,
                now,
                may_wait,
                &self.shared.metrics,
            ),
        }
    }

    fn attempt_jws(&self, token: &str) -> Result<Vec<u8>, Refusal> {
        let keys = self.begin_attempt(token)?;
        let parts = match self.check_signature(token, keys.usable()) {
            Err(Refusal::NeedKeys(demand)) => return self.need_keys(demand),
            other => other?,
        };
        base64url::decode_to_vec(parts.payload).ok_or(refuse(
            ErrorKind::Malformed,
            "payload is not canonical base64url",
        ))
    }

    /// What every attempt starts with: the size limit (before any decoding), one clock
    /// read, the key set in use, and a nudge to the refresh task once that set is due.
    #[inline]
    fn begin_attempt(&self, token: &str) -> Result<KeysAt, Refusal> {
        let shared = &*self.shared;
        if token.len() > shared.policy.max_token_bytes {
            return Err(refuse(
                ErrorKind::TooLarge,
                "token longer than the maximum size",
            ));
        }
        let keys = KeysAt {
            now: shared.clock.unix_time(),
            guard: shared.keys.load(),
        };
        if let Some(loaded) = keys.usable()
            && keys.now >= loaded.refresh_at
        {
            self.nudge_refresh();
        }
        Ok(keys)
    }

    /// Waits for what `pending` needs (keys, then perhaps a status list) and verifies again.
    pub(crate) async fn retry_after_fetch<C>(
        &self,
        token: &str,
        pending: Refusal,
    ) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let may_wait_for_status = match pending {
            Refusal::Token(error) => return Err(error),
            Refusal::NeedKeys(demand) => {
                self.wait_for_fetch(demand).await;
                true
            }
            #[cfg(feature = "status-list")]
            Refusal::NeedStatus(uri) => {
                self.wait_for_status_fetch(&uri).await;
                false
            }
        };
        match self.attempt(token, may_wait_for_status) {
            #[cfg(feature = "status-list")]
            Err(Refusal::NeedStatus(uri)) => {
                // The keys arrived; the token names a list not fetched yet.
                self.wait_for_status_fetch(&uri).await;
                self.attempt(token, false).map_err(Refusal::into_error)
            }
            other => other.map_err(Refusal::into_error),
        }
    }

    #[cfg(feature = "status-list")]
    fn schedule_status_fetch(&self, uri: &str) {
        if let Some(lists) = &self.shared.status {
            let _ = lists.request(self.shared.clock.now(), uri);
        }
    }

    #[cfg(feature = "status-list")]
    async fn wait_for_status_fetch(&self, uri: &str) {
        if let Some(lists) = &self.shared.status {
            lists.wait_for_fetch(self.shared.clock.now(), uri).await;
        }
    }

    fn has_remote(&self) -> bool {
        #[cfg(feature = "runtime")]
        {
            self.shared.remote.is_some()
        }
        #[cfg(not(feature = "runtime"))]
        {
            false
        }
    }

    fn nudge_refresh(&self) {
        #[cfg(feature = "runtime")]
        if let Some(remote) = &self.shared.remote {
            remote.nudge();
        }
    }

    fn schedule_fetch(&self, demand: Demand) {
        #[cfg(feature = "runtime")]
        if let Some(remote) = &self.shared.remote {
            let _ = remote.request(self.shared.clock.now(), demand);
        }
        #[cfg(not(feature = "runtime"))]
        let _ = demand;
    }

    async fn wait_for_fetch(&self, demand: Demand) {
        #[cfg(feature = "runtime")]
        if let Some(remote) = &self.shared.remote {
            remote.wait_for_fetch(self.shared.clock.now(), demand).await;
        }
        #[cfg(not(feature = "runtime"))]
        let _ = demand;
    }
}

/// A successful outcome, for counting.
pub(crate) trait Outcome {
    /// Whether the token's `status` was checked against a status list.
    fn status_checked(&self) -> bool {
        false
    }
}

impl<C> Outcome for Verified<C> {
    fn status_checked(&self) -> bool {
        #[cfg(feature = "status-list")]
        {
            self.inner.status.is_some()
        }
        #[cfg(not(feature = "status-list"))]
        {
            false
        }
    }
}

impl<T: Outcome> Outcome for &T {
    fn status_checked(&self) -> bool {
        (**self).status_checked()
    }
}

impl Outcome for Vec<u8> {}

impl Outcome for () {}

/// Why an attempt stopped short of a verified token.
pub(crate) enum Refusal {
    /// The token is refused.
    Token(Error),
    /// The answer depends on keys we do not have yet.
    NeedKeys(Demand),
    /// The answer depends on a status list never fetched before (this URI, allowed).
    #[cfg(feature = "status-list")]
    NeedStatus(Box<str>),
}

impl Refusal {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Refusal::Token(e) => e,
            Refusal::NeedKeys(demand) => demand_error(demand),
            #[cfg(feature = "status-list")]
            Refusal::NeedStatus(_) => {
                Error::new(ErrorKind::StatusUnavailable, "status list unavailable")
            }
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Token(e)
    }
}

fn refuse(kind: ErrorKind, detail: &'static str) -> Refusal {
    Refusal::Token(Error::new(kind, detail))
}

/// The key set as one attempt sees it, and the Unix time it was read at. Holds an
/// `arc_swap` guard, not a cloned `Arc`, so the hot path touches no shared refcount.
struct KeysAt {
    now: u64,
    guard: Guard<Option<Arc<Published>>>,
}

impl KeysAt {
    /// The key set, unless it is past its maximum stale age.
    fn usable(&self) -> Option<&Published> {
        self.guard
            .as_deref()
            .filter(|keys| self.now < keys.usable_until)
    }
}

struct SignedParts<'t> {
    payload: &'t [u8],
    algorithm: Algorithm,
    key_id: Option<Box<str>>,
}

pub(crate) fn demand_error(demand: Demand) -> Error {
    match demand {
        Demand::NoKeys => Error::new(ErrorKind::KeySetUnavailable, "no usable key set"),
        Demand::UnknownKid { .. } => Error::new(
            ErrorKind::UnknownKey,
            "no key matches the token's kid and alg",
        ),
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("policy", &self.shared.policy)
            .field("token_cache", &self.shared.token_cache.is_some())
            .finish_non_exhaustive()
    }
}

enum Source {
    Static(Vec<u8>),
    #[cfg(feature = "runtime")]
    Discover,
    #[cfg(feature = "runtime")]
    JwksUrl(String),
}

/// Configures a [`Verifier`].
#[must_use]
pub struct VerifierBuilder {
    policy: Policy,
    source: Option<Source>,
    cache_config: JwksCacheConfig,
    token_cache_entries: usize,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "runtime")]
    fetcher: Option<Arc<dyn crate::jwks::HttpFetcher>>,
    #[cfg(feature = "status-list")]
    status_lists: Option<crate::status_list::StatusListConfig>,
}

impl VerifierBuilder {
    /// Keys from the issuer's discovery document (`{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must equal the policy's first issuer exactly) and its `jwks_uri`.
    #[cfg(feature = "runtime")]
    pub fn discover(mut self) -> Self {
        self.source = Some(Source::Discover);
        self
    }

    /// Keys from this JWKS URL (`https`, or `http` to a loopback host; no `user:password@`,
    /// which [`build`](Self::build) refuses with [`BuildError::CredentialsInUrl`]).
    #[cfg(feature = "runtime")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.source = Some(Source::JwksUrl(url.into()));
        self
    }

    /// Keys from a JWK Set document held in memory; never refreshed.
    pub fn static_jwks(mut self, jwks_json: impl AsRef<[u8]>) -> Self {
        self.source = Some(Source::Static(jwks_json.as_ref().to_vec()));
        self
    }

    /// Cache timing and limits for remote key sources.
    pub fn jwks_cache(mut self, config: JwksCacheConfig) -> Self {
        self.cache_config = config;
        self
    }

    /// Size of the verified-token cache (default 4096 entries; 0 turns it off).
    pub fn token_cache_entries(mut self, entries: usize) -> Self {
        self.token_cache_entries = entries;
        self
    }

    /// The clock (default: the system clocks).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The HTTP client for remote key sources (default: the built-in hyper client, with the
    /// `hyper-client` feature).
    #[cfg(feature = "runtime")]
    pub fn http_fetcher(mut self, fetcher: impl crate::jwks::HttpFetcher) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Check every token's `status` claim against the issuer's Token Status Lists
    /// (draft-ietf-oauth-status-list), fetched with the same HTTP client and verified with
    /// the same keys as tokens. Needs a tokio runtime at [`build`](Self::build).
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwks_verify::status_list::{FailureMode, StatusListConfig};
    /// use jwks_verify::{Policy, Verifier};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jwks_verify::BuildError> {
    /// let verifier = Verifier::builder(Policy::new("https://issuer.example", "my-api"))
    ///     .discover()
    ///     .status_lists(
    ///         StatusListConfig::new()
    ///             .require_status(true)
    ///             .max_age(Duration::from_secs(30))
    ///             .failure_mode(FailureMode::FailClosed),
    ///     )
    ///     .build()?;
    /// # drop(verifier);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "status-list")]
    pub fn status_lists(mut self, config: crate::status_list::StatusListConfig) -> Self {
        self.status_lists = Some(config);
        self
    }

    /// Builds the verifier. A remote key source starts fetching at once on a background
    /// task of the current tokio runtime.
    pub fn build(self) -> Result<Verifier, BuildError> {
        let policy = self.policy;
        if policy.issuers.iter().any(String::is_empty)
            || (policy.check_audience && policy.audiences.iter().any(String::is_empty))
        {
            return Err(BuildError::IncompletePolicy);
        }
        if policy.algorithms.is_empty() {
            return Err(BuildError::NoAlgorithms);
        }
        let token_cache =
            (self.token_cache_entries > 0).then(|| TokenCache::new(self.token_cache_entries));
        let metrics = Metrics::default();
        let keys = ArcSwapOption::empty();
        let source = self.source.ok_or(BuildError::NoKeySource)?;
        #[cfg(feature = "runtime")]
        let mut remote_cache = None;
        match source {
            Source::Static(json) => {
                let key_set = KeySet::from_jwks(&json, policy.algorithms)
                    .map_err(|e| BuildError::StaticJwks(e.to_string()))?;
                let now = self.clock.now();
                metrics
                    .keys_in_use
                    .store(key_set.len(), std::sync::atomic::Ordering::Relaxed);
                *metrics
                    .key_set_loaded_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
                keys.store(Some(Arc::new(Published::new(
                    Arc::new(key_set),
                    1,
                    u64::MAX,
                    u64::MAX,
                ))));
            }
            #[cfg(feature = "runtime")]
            Source::Discover => {
                let issuer = policy.issuers.first().ok_or(BuildError::IncompletePolicy)?;
                remote_cache = Some(crate::jwks::JwksCache::for_issuer(
                    issuer,
                    policy.algorithms,
                    self.cache_config.clone(),
                    self.clock.now(),
                )?);
            }
            #[cfg(feature = "runtime")]
            Source::JwksUrl(url) => {
                remote_cache = Some(crate::jwks::JwksCache::for_jwks_url(
                    &url,
                    policy.algorithms,
                    self.cache_config.clone(),
                    self.clock.now(),
                )?);
            }
        }
        #[cfg(feature = "status-list")]
        let status = match self.status_lists {
            None => None,
            Some(config) => {
                let cache = crate::status_list::StatusListCache::new(&policy, config)?;
                Some(crate::status_list::driver::StatusLists::new(
                    cache, &policy,
                )?)
            }
        };
        #[cfg(feature = "status-list")]
        let needs_runtime = remote_cache.is_some() || status.is_some();
        #[cfg(all(feature = "runtime", not(feature = "status-list")))]
        let needs_runtime = remote_cache.is_some();
        #[cfg(feature = "runtime")]
        let start = if needs_runtime {
            let fetcher = match self.fetcher {
                Some(fetcher) => fetcher,
                None => default_fetcher()?,
            };
            let handle =
                tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
            Some((fetcher, handle))
        } else {
            None
        };
        #[cfg(feature = "runtime")]
        let remote = remote_cache.map(crate::jwks::driver::Remote::new);
        let verifier = Verifier {
            shared: Arc::new(Shared {
                policy,
                keys,
                token_cache,
                metrics,
                clock: self.clock,
                #[cfg(feature = "runtime")]
                remote,
                #[cfg(feature = "status-list")]
                status,
            }),
        };
        #[cfg(feature = "runtime")]
        if let Some((fetcher, handle)) = start {
            #[cfg(feature = "status-list")]
            crate::status_list::driver::spawn(&verifier.shared, Arc::clone(&fetcher), &handle);
            crate::jwks::driver::spawn(&verifier.shared, fetcher, &handle);
        }
        Ok(verifier)
    }
}

#[cfg(feature = "hyper-client")]
fn default_fetcher() -> Result<Arc<dyn crate::jwks::HttpFetcher>, BuildError> {
    Ok(Arc::new(crate::jwks::HyperFetcher::new()))
}

#[cfg(all(feature = "runtime", not(feature = "hyper-client")))]
fn default_fetcher() -> Result<Arc<dyn crate::jwks::HttpFetcher>, BuildError> {
    Err(BuildError::NoRuntime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::test_keys;

    const NOW: u64 = 1_700_000_000;

    #[derive(Debug, serde::Deserialize)]
    struct Claims {
        sub: String,
    }

    fn verifier(entries: usize) -> (Verifier, ManualClock) {
        let clock = ManualClock::at_unix(NOW);
        let jwks = test_keys::jwks(&[test_keys::rsa_jwk("k1")]);
        let v = Verifier::builder(Policy::new("https://issuer.example", "api"))
            .static_jwks(jwks)
            .token_cache_entries(entries)
            .clock(clock.clone())
            .build()
            .unwrap();
        (v, clock)
    }

    fn token(exp: u64) -> String {
        test_keys::sign(
            &serde_json::json!({"alg": "RS256", "kid": "k1"}),
            &serde_json::json!({"iss": "https://issuer.example", "aud": "api", "sub": "alice", "exp": exp}),
        )
    }

    #[test]
    fn verifies_and_counts() {
        let (v, _) = verifier(0);
        let verified = v.try_verify::<Claims>(&token(NOW + 60)).unwrap();
        assert_eq!(verified.sub, "alice");
        assert_eq!(verified.key_id(), Some("k1"));
        assert_eq!(verified.algorithm(), Algorithm::RS256);
        assert_eq!(verified.expires_at(), NOW + 60);
        let err = v.try_verify::<Claims>("a.b.c").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed);
        let m = v.metrics();
        assert_eq!(m.verified, 1);
        assert_eq!(m.rejected(ErrorKind::Malformed), 1);
        assert_eq!(m.keys_in_use, 1);
    }

    #[test]
    fn token_cache_hits_and_respects_exp() {
        let (v, clock) = verifier(64);
        let t = token(NOW + 60);
        for _ in 0..3 {
            v.try_verify::<Claims>(&t).unwrap();
        }
        assert_eq!(v.metrics().token_cache_hits, 2);
        clock.advance(std::time::Duration::from_secs(60));
        // At exp the cache no longer serves it; full verification applies the leeway.
        v.try_verify::<Claims>(&t).unwrap();
        assert_eq!(v.metrics().token_cache_hits, 2);
        clock.advance(std::time::Duration::from_secs(30));
        assert_eq!(
            v.try_verify::<Claims>(&t).unwrap_err().kind(),
            ErrorKind::Expired
        );
    }

    #[test]
    fn token_cache_is_per_claims_type() {
        let (v, _) = verifier(64);
        let t = token(NOW + 60);
        v.try_verify::<Claims>(&t).unwrap();
        let value = v.try_verify::<serde_json::Value>(&t).unwrap();
        assert_eq!(value["sub"], "alice");
    }

    fn remembered_headers(v: &Verifier) -> usize {
        let loaded = v.shared.keys.load_full().unwrap();
        loaded
            .accepted_headers
            .iter()
            .filter_map(OnceLock::get)
            .count()
    }

    fn claims_for(sub: &str) -> serde_json::Value {
        serde_json::json!({"iss": "https://issuer.example", "aud": "api", "sub": sub, "exp": NOW + 60})
    }

    #[test]
    fn remembered_header_still_needs_a_valid_signature() {
        let (v, _) = verifier(0);
        let good = token(NOW + 60);
        v.try_verify::<Claims>(&good).unwrap();
        assert_eq!(remembered_headers(&v), 1);
        // The remembered header with a swapped payload and the original signature.
        let other = test_keys::sign(
            &serde_json::json!({"alg": "RS256", "kid": "k1"}),
            &claims_for("mallory"),
        );
        let [header, _, signature]: [&str; 3] =
            good.split('.').collect::<Vec<_>>().try_into().unwrap();
        let payload = other.split('.').nth(1).unwrap();
        let spliced = format!("{header}.{payload}.{signature}");
        assert_eq!(
            v.try_verify::<Claims>(&spliced).unwrap_err().kind(),
            ErrorKind::InvalidSignature
        );
    }

    #[test]
    fn forged_tokens_do_not_fill_the_remembered_header_slots() {
        let (v, _) = verifier(0);
        for i in 0..10 {
            let forged = test_keys::sign(
                &serde_json::json!({"alg": "RS256", "kid": "k1", "x": i}),
                &claims_for("mallory"),
            );
            // Change one signature character well before the end (all six bits count).
            let at = forged.len() - 10;
            let swap = if &forged[at..=at] == "A" { "B" } else { "A" };
            let tampered = format!("{}{swap}{}", &forged[..at], &forged[at + 1..]);
            assert_eq!(
                v.try_verify::<Claims>(&tampered).unwrap_err().kind(),
                ErrorKind::InvalidSignature
            );
        }
        assert_eq!(remembered_headers(&v), 0);
        v.try_verify::<Claims>(&token(NOW + 60)).unwrap();
        assert_eq!(remembered_headers(&v), 1);
    }

    #[test]
    fn remembered_header_slots_are_bounded() {
        let (v, _) = verifier(0);
        for i in 0..2 * ACCEPTED_HEADERS {
            let t = test_keys::sign(
                &serde_json::json!({"alg": "RS256", "kid": "k1", "x": i}),
                &claims_for("alice"),
            );
            // Twice: the second time through the remembered header when one was kept.
            v.try_verify::<Claims>(&t).unwrap();
            v.try_verify::<Claims>(&t).unwrap();
        }
        assert_eq!(remembered_headers(&v), ACCEPTED_HEADERS);
    }

    #[test]
    fn static_unknown_kid_fails_without_waiting() {
        let (v, _) = verifier(0);
        let t = test_keys::sign(
            &serde_json::json!({"alg": "RS256", "kid": "other"}),
            &serde_json::json!({"iss": "https://issuer.example", "aud": "api", "sub": "a", "exp": NOW + 60}),
        );
        assert_eq!(
            v.try_verify::<Claims>(&t).unwrap_err().kind(),
            ErrorKind::UnknownKey
        );
    }

    #[test]
    fn builder_refuses_incomplete_configuration() {
        let no_source = Verifier::builder(Policy::new("https://i", "a")).build();
        assert_eq!(no_source.unwrap_err(), BuildError::NoKeySource);
        let empty = Verifier::builder(Policy::new("", "a"))
            .static_jwks("{}")
            .build();
        assert_eq!(empty.unwrap_err(), BuildError::IncompletePolicy);
        let no_algs = Verifier::builder(Policy::new("https://i", "a").algorithms([]))
            .static_jwks("{}")
            .build();
        assert_eq!(no_algs.unwrap_err(), BuildError::NoAlgorithms);
        let bad_jwks = Verifier::builder(Policy::new("https://i", "a"))
            .static_jwks("{}")
            .build();
        assert!(matches!(bad_jwks.unwrap_err(), BuildError::StaticJwks(_)));
    }
}
