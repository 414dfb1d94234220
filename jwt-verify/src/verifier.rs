//! [`Verifier`]: the public entry points (one-call and two-phase) over the steps in
//! [`shared`](crate::shared), and [`VerifierBuilder`], which starts the background drivers.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock};
use crate::error::{BuildError, Error};
use crate::jwk::KeySet;
use crate::jwks::{Demand, JwksCacheConfig};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::policy::Policy;
use crate::published::Published;
use crate::refusal::Refusal;
use crate::shared::Shared;
use crate::token_cache::TokenCache;
use crate::verified::Verified;

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
    ///
    /// The same as [`attempt`](Self::attempt), then [`Pending::verify`] when it is pending.
    pub async fn verify<C>(&self, token: &str) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        match self.attempt(token) {
            Attempt::Verified(verified) => Ok(verified),
            Attempt::Refused(error) => Err(error),
            Attempt::Pending(pending) => pending.verify(token).await,
        }
    }

    /// Verifies `token` with the keys already in memory; never waits. A missing key
    /// schedules a refresh (within the same limits as [`verify`](Self::verify)) and fails
    /// with [`ErrorKind::UnknownKey`](crate::ErrorKind::UnknownKey) or
    /// [`ErrorKind::KeySetUnavailable`](crate::ErrorKind::KeySetUnavailable). A status list
    /// never fetched before is scheduled, and meanwhile the failure mode applies.
    ///
    /// The same as [`attempt`](Self::attempt), then [`Pending::verify_now`] when it is
    /// pending.
    pub fn try_verify<C>(&self, token: &str) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        match self.attempt(token) {
            Attempt::Verified(verified) => Ok(verified),
            Attempt::Refused(error) => Err(error),
            Attempt::Pending(pending) => pending.verify_now(token),
        }
    }

    /// The first phase of a verification: checks `token` with the keys, verified tokens and
    /// status lists in memory, without waiting, and says whether the answer needs a fetch.
    ///
    /// This is the seam for frameworks: answer at once on [`Attempt::Verified`] and
    /// [`Attempt::Refused`] (the hot path: no future, no allocation beyond the claims), and
    /// only on [`Attempt::Pending`] start something to await. [`verify`](Self::verify) and
    /// [`try_verify`](Self::try_verify) are this, plus the second phase; the
    /// [`BearerAuthLayer`](crate::BearerAuthLayer) uses nothing else.
    ///
    /// Outcomes are counted in [`metrics`](Self::metrics) when they are final: here for
    /// verified and refused tokens, by [`Pending`] for the rest.
    ///
    /// ```
    /// use jwks_verify::{Attempt, Error, Policy, StandardClaims, Verified, Verifier};
    ///
    /// /// What a framework's request handler does with a bearer token.
    /// async fn authenticate(
    ///     verifier: &Verifier,
    ///     token: &str,
    /// ) -> Result<Verified<StandardClaims>, Error> {
    ///     match verifier.attempt::<StandardClaims>(token) {
    ///         // Almost every request: answered from memory, no await.
    ///         Attempt::Verified(verified) => Ok(verified),
    ///         Attempt::Refused(error) => Err(error),
    ///         // Cold: no keys yet, an unknown `kid`, or a status list never fetched. The
    ///         // handle owns what it needs, so it can move into a `'static` future.
    ///         Attempt::Pending(pending) => {
    ///             let token = token.to_owned();
    ///             tokio::spawn(async move { pending.verify(&token).await })
    ///                 .await
    ///                 .expect("the task does not panic")
    ///         }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let jwks = br#"{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}"#;
    /// let verifier = Verifier::builder(Policy::new("https://issuer.example", "my-api"))
    ///     .static_jwks(jwks)
    ///     .build()?;
    /// let refused = authenticate(&verifier, "not.a.token").await.unwrap_err();
    /// assert_eq!(refused.kind(), jwks_verify::ErrorKind::Malformed);
    /// assert_eq!(verifier.metrics().rejected(jwks_verify::ErrorKind::Malformed), 1);
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn attempt<C>(&self, token: &str) -> Attempt<C>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        match self.shared.attempt(token, true) {
            Ok(verified) => {
                self.shared.count(&Ok::<_, Error>(&verified));
                Attempt::Verified(verified)
            }
            Err(refusal) => self.stopped(refusal),
        }
    }

    /// The rarer outcomes of [`attempt`](Self::attempt), kept out of its inlined body.
    #[cold]
    #[inline(never)]
    fn stopped<C>(&self, refusal: Refusal) -> Attempt<C> {
        match refusal {
            Refusal::Token(error) => {
                self.shared.metrics.refused(error.kind());
                Attempt::Refused(error)
            }
            need => Attempt::Pending(Pending {
                shared: Arc::clone(&self.shared),
                need,
            }),
        }
    }

    /// Checks a compact JWS's size, header (algorithm allow-list, `typ`, `crit`) and
    /// signature, and returns the payload bytes without reading them as claims.
    ///
    /// For JWS payloads that are not JWT claims sets. Nothing about the payload (expiry,
    /// issuer, audience) is checked: prefer [`verify`](Self::verify) for tokens.
    pub async fn verify_jws_payload(&self, token: &str) -> Result<Vec<u8>, Error> {
        let shared = &*self.shared;
        let result = match shared.attempt_jws(token) {
            Ok(payload) => Ok(payload),
            Err(Refusal::NeedKeys(demand)) => {
                shared.wait_for_fetch(demand).await;
                shared.attempt_jws(token).map_err(Refusal::into_error)
            }
            Err(refusal) => Err(refusal.into_error()),
        };
        shared.finish(result)
    }

    /// Waits until a key set is loaded (or the first fetch failed) and reports whether
    /// keys are usable. Useful for readiness checks at start-up.
    pub async fn ready(&self) -> bool {
        if self.shared.current_keys().is_none() {
            self.shared.wait_for_fetch(Demand::NoKeys).await;
        }
        self.shared.current_keys().is_some()
    }

    /// A copy of the counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot(self.shared.clock.now())
    }

    /// The clock this verifier reads (set with [`VerifierBuilder::clock`]), to share with
    /// the code around it so that one clock serves the whole service.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwks_verify::{Clock, ManualClock, Policy, Verifier};
    ///
    /// let manual = ManualClock::at_unix(1_700_000_000);
    /// # let jwks = br#"{"keys":[{"kty":"RSA","kid":"k1","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}"#;
    /// let verifier = Verifier::builder(Policy::new("https://issuer.example", "my-api"))
    ///     .static_jwks(jwks)
    ///     .clock(manual.clone())
    ///     .build()?;
    /// manual.advance(Duration::from_secs(5));
    /// assert_eq!(verifier.clock().unix_time(), 1_700_000_005);
    /// # Ok::<(), jwks_verify::BuildError>(())
    /// ```
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    /// The policy tokens are checked against.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The key set in use, if one is loaded and not past its maximum stale age.
    pub fn key_set(&self) -> Option<Arc<KeySet>> {
        self.shared
            .current_keys()
            .map(|loaded| Arc::clone(&loaded.key_set))
    }
}

/// The outcome of the first phase of a verification, [`Verifier::attempt`].
#[must_use = "a verification outcome says whether the token may be used"]
pub enum Attempt<C> {
    /// The token verified with what is in memory.
    Verified(Verified<C>),
    /// The token is refused; no fetch would change that.
    Refused(Error),
    /// The answer needs a key set or a status list not in memory yet.
    Pending(Pending),
}

impl<C: fmt::Debug> fmt::Debug for Attempt<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Verified(verified) => f.debug_tuple("Verified").field(verified).finish(),
            Attempt::Refused(error) => f.debug_tuple("Refused").field(error).finish(),
            Attempt::Pending(pending) => f.debug_tuple("Pending").field(pending).finish(),
        }
    }
}

/// The second phase of a verification whose [`Attempt`] is pending: a handle on the key
/// (or status list) fetch the token needs. It owns a reference to the verifier's shared
/// state, so it can move into a `'static` future.
///
/// It finishes the verification either way: [`verify`](Self::verify) waits for the fetch
/// (bounded by the fetch timeout) and verifies again; [`verify_now`](Self::verify_now)
/// schedules the fetch in the background and answers from memory. A pending attempt
/// dropped unfinished is not counted in the metrics and schedules nothing.
pub struct Pending {
    shared: Arc<Shared>,
    /// What the attempt needs; never [`Refusal::Token`].
    need: Refusal,
}

impl Pending {
    /// Waits for the fetch, then verifies `token` again (the same token given to
    /// [`Verifier::attempt`]). A token whose keys just arrived and whose status list was
    /// never fetched waits once more, for the list; after that, missing keys are an error
    /// and a missing list gets the failure mode.
    pub async fn verify<C>(self, token: &str) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let result = self.shared.retry_after_fetch(token, self.need).await;
        self.shared.finish(result)
    }

    /// Does not wait: schedules the fetch in the background and answers from memory, as
    /// [`Verifier::try_verify`] does. Missing keys are an error
    /// ([`UnknownKey`](crate::ErrorKind::UnknownKey) or
    /// [`KeySetUnavailable`](crate::ErrorKind::KeySetUnavailable)); a missing status list
    /// gets the failure mode.
    pub fn verify_now<C>(self, token: &str) -> Result<Verified<C>, Error>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let result = self.shared.answer_without_waiting(token, self.need);
        self.shared.finish(result)
    }

    /// What the attempt waits for: [`KeySetUnavailable`](crate::ErrorKind::KeySetUnavailable)
    /// (no keys yet), [`UnknownKey`](crate::ErrorKind::UnknownKey) (a refresh for an unknown
    /// `kid`) or [`StatusUnavailable`](crate::ErrorKind::StatusUnavailable) (a status list
    /// never fetched). Also the error to give if you do not finish it.
    pub fn kind(&self) -> crate::ErrorKind {
        match &self.need {
            Refusal::Token(error) => error.kind(),
            Refusal::NeedKeys(demand) => crate::refusal::demand_error(*demand).kind(),
            #[cfg(feature = "status-list")]
            Refusal::NeedStatus(_) => crate::ErrorKind::StatusUnavailable,
        }
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
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
                metrics.keys_loaded(key_set.len(), self.clock.now());
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
#[path = "verifier_tests.rs"]
mod tests;
