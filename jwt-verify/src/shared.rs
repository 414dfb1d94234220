//! [`Shared`]: the state a verifier's clones share, and the steps of one verification over
//! it (size, keys, verified-token cache, header, signature, claims, status), never waiting.
//! [`Verifier`](crate::Verifier) turns these steps into its public entry points; the
//! background drivers publish into this state through [`KeyHost`] and [`ListHost`].

use std::sync::Arc;
#[cfg(feature = "status-list")]
use std::sync::OnceLock;

use arc_swap::ArcSwapOption;
use serde::de::DeserializeOwned;

use crate::base64url;
use crate::claims::{Decoded, decode_claims};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::jwk::VerifyingKey;
use crate::jwks::Demand;
use crate::jws;
use crate::metrics::Metrics;
use crate::policy::{Algorithm, Policy};
use crate::published::{KeysAt, Published};
use crate::refusal::{Refusal, demand_error, refuse};
use crate::token_cache::{self, TokenCache};
use crate::verified::{Verified, VerifiedInner};

/// Claims up to this size are decoded on the stack.
const PAYLOAD_STACK_BYTES: usize = 1024;

/// What the clones of one verifier share.
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

impl Shared {
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
        let policy = &self.policy;
        let keys = self.begin_attempt(token)?;
        let now = keys.now;
        let loaded = keys.usable();

        let hash = self
            .token_cache
            .as_ref()
            .map(|_| token_cache::hash_token(token));
        if let (Some(cache), Some(hash), Some(loaded)) = (&self.token_cache, &hash, loaded)
            && let Some(value) = cache.get(hash, loaded.generation, now)
            && let Ok(inner) = value.downcast::<VerifiedInner<C>>()
        {
            self.metrics.token_cache_hit();
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
        if let (Some(cache), Some(hash), Some(loaded)) = (&self.token_cache, hash, loaded) {
            cache.insert(hash, expires_at, loaded.generation, inner.clone(), now);
        }
        #[cfg(feature = "status-list")]
        self.check_status(&inner, now, may_wait_for_status)?;
        Ok(Verified { inner })
    }

    /// The signature steps alone, for JWS payloads that are not claims sets.
    pub(crate) fn attempt_jws(&self, token: &str) -> Result<Vec<u8>, Refusal> {
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

    /// Counts the outcome and passes it on.
    pub(crate) fn finish<T: Outcome>(&self, result: Result<T, Error>) -> Result<T, Error> {
        self.count(&result);
        result
    }

    /// Counts a final outcome.
    #[inline]
    pub(crate) fn count<T: Outcome>(&self, result: &Result<T, Error>) {
        match result {
            Ok(value) if value.status_checked() => self.metrics.verified_with_status(),
            _ => self.metrics.record(result),
        }
    }

    /// The key set in use, unless it is past its maximum stale age.
    pub(crate) fn current_keys(&self) -> Option<Arc<Published>> {
        let now = self.clock.unix_time();
        self.keys.load_full().filter(|keys| now < keys.usable_until)
    }

    /// What every attempt starts with: the size limit (before any decoding), one clock
    /// read, the key set in use, and a nudge to the refresh task once that set is due.
    #[inline]
    fn begin_attempt(&self, token: &str) -> Result<KeysAt, Refusal> {
        if token.len() > self.policy.max_token_bytes {
            return Err(refuse(
                ErrorKind::TooLarge,
                "token longer than the maximum size",
            ));
        }
        let keys = KeysAt {
            now: self.clock.unix_time(),
            guard: self.keys.load(),
        };
        if let Some(loaded) = keys.usable()
            && keys.now >= loaded.refresh_at
        {
            self.nudge_refresh();
        }
        Ok(keys)
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
        let policy = &self.policy;
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

    /// Whether tokens' `status` claims are checked against status lists.
    fn checks_status(&self) -> bool {
        #[cfg(feature = "status-list")]
        {
            self.status.is_some()
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
        match &self.status {
            None => Ok(()),
            Some(lists) => lists.check(
                inner.status.as_ref(),
                &inner.status_slot,
                now,
                may_wait,
                &self.metrics,
            ),
        }
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

    /// Answers `pending` without waiting: schedules what it needs in the background, then
    /// answers from memory (a missing status list gets the failure mode).
    pub(crate) fn answer_without_waiting<C>(
        &self,
        token: &str,
        pending: Refusal,
    ) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        match pending {
            #[cfg(feature = "status-list")]
            Refusal::NeedStatus(uri) => {
                self.schedule_status_fetch(&uri);
                self.attempt(token, false).map_err(Refusal::into_error)
            }
            refusal => {
                #[cfg(not(feature = "status-list"))]
                let _ = token;
                if let Refusal::NeedKeys(demand) = refusal {
                    self.schedule_fetch(demand);
                }
                Err(refusal.into_error())
            }
        }
    }

    #[cfg(feature = "status-list")]
    fn schedule_status_fetch(&self, uri: &str) {
        if let Some(lists) = &self.status {
            let _ = lists.request(self.clock.now(), uri);
        }
    }

    #[cfg(feature = "status-list")]
    async fn wait_for_status_fetch(&self, uri: &str) {
        if let Some(lists) = &self.status {
            lists.wait_for_fetch(self.clock.now(), uri).await;
        }
    }

    fn has_remote(&self) -> bool {
        #[cfg(feature = "runtime")]
        {
            self.remote.is_some()
        }
        #[cfg(not(feature = "runtime"))]
        {
            false
        }
    }

    fn nudge_refresh(&self) {
        #[cfg(feature = "runtime")]
        if let Some(remote) = &self.remote {
            remote.nudge();
        }
    }

    fn schedule_fetch(&self, demand: Demand) {
        #[cfg(feature = "runtime")]
        if let Some(remote) = &self.remote {
            let _ = remote.request(self.clock.now(), demand);
        }
        #[cfg(not(feature = "runtime"))]
        let _ = demand;
    }

    /// Asks for a key fetch and, if one starts or is running, waits for it to finish.
    pub(crate) async fn wait_for_fetch(&self, demand: Demand) {
        #[cfg(feature = "runtime")]
        if let Some(remote) = &self.remote {
            remote.wait_for_fetch(self.clock.now(), demand).await;
        }
        #[cfg(not(feature = "runtime"))]
        let _ = demand;
    }
}

#[cfg(feature = "runtime")]
impl crate::jwks::driver::KeyHost for Shared {
    fn remote(&self) -> Option<&crate::jwks::driver::Remote> {
        self.remote.as_ref()
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn publish_keys(&self, loaded: &crate::jwks::Loaded, changed: bool, now: std::time::Instant) {
        self.keys.store(Some(Arc::new(Published::from_loaded(
            loaded,
            now,
            self.clock.unix_time(),
        ))));
        if changed && let Some(cache) = &self.token_cache {
            cache.clear();
        }
        self.metrics
            .keys_loaded(loaded.key_set.len(), loaded.fetched_at);
    }
}

#[cfg(feature = "status-list")]
impl crate::status_list::driver::ListHost for Shared {
    fn status_lists(&self) -> Option<&crate::status_list::driver::StatusLists> {
        self.status.as_ref()
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn key_set(&self, now_unix: u64) -> Option<Arc<crate::jwk::KeySet>> {
        self.keys
            .load_full()
            .filter(|published| now_unix < published.usable_until)
            .map(|published| Arc::clone(&published.key_set))
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
        Verified::status_checked(self)
    }
}

impl<T: Outcome> Outcome for &T {
    fn status_checked(&self) -> bool {
        (**self).status_checked()
    }
}

impl Outcome for Vec<u8> {}

impl Outcome for () {}

struct SignedParts<'t> {
    payload: &'t [u8],
    algorithm: Algorithm,
    key_id: Option<Box<str>>,
}
