//! Fast, hard-to-fool verification of bearer JWTs (RS256 by default) against a remote JWK
//! Set kept in a self-refreshing cache, with a tower layer for HTTP services.
//!
//! # Getting started
//!
//! ```no_run
//! use jwks_verify::{Policy, TypPolicy, Verifier};
//!
//! #[derive(serde::Deserialize)]
//! struct Claims {
//!     sub: String,
//!     scope: Option<String>,
//! }
//!
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Policy::new("https://accounts.example.com", "https://api.example.com")
//!     .typ(TypPolicy::AccessToken);
//! // Discovery at {issuer}/.well-known/openid-configuration, then its jwks_uri.
//! let verifier = Verifier::builder(policy).discover().build()?;
//!
//! let verified = verifier.verify::<Claims>(token).await?;
//! println!("hello {}", verified.sub);
//! # Ok(()) }
//! ```
//!
//! With the `tower` feature (on by default), [`BearerAuthLayer`] does the same for every
//! request of a hyper or axum service and answers RFC 6750 errors. Other frameworks use the
//! seam the layer uses: [`Verifier::attempt`] answers from memory without waiting, and only
//! an [`Attempt::Pending`] (no keys yet, an unknown `kid`, a status list never fetched) has a
//! fetch to await, with [`Pending::verify`].
//!
//! # What is checked, in order
//!
//! 1. Size (8 KiB by default), before any decoding.
//! 2. Three segments of canonical, unpadded base64url; a JSON object header with no
//!    duplicate members.
//! 3. `alg` in the allow-list (`RS256` only by default) before any cryptography; `crit`
//!    and `b64` refused; `typ` per [`TypPolicy`]. `jku`, `x5u`, `jwk` and `x5c` are never
//!    used: keys come only from the configured key set.
//! 4. A key with the token's `kid`, bound to the token's `alg`.
//! 5. The signature (aws-lc-rs, with the key parsed once when the set was loaded).
//! 6. Claims, in one JSON pass into your type: no duplicate names; `iss` a string and
//!    exactly equal to an accepted issuer; `aud` a string or non-empty string array holding
//!    an accepted audience; `exp` required; `exp`/`nbf`/`iat` non-negative integers checked
//!    with the leeway (30 s by default); `sub`/`jti` strings when present.
//! 7. With [status lists](#token-status-lists) on: the `status` claim (required, or
//!    optional by default) read in the same pass, its list URI allowed, and the token's
//!    entry in the issuer's list VALID. This runs on every verification, verified-token
//!    cache hits included.
//!
//! # The key cache
//!
//! [`jwks::JwksCache`] is a sans-IO state machine driven by a tokio task: keys are fetched
//! at start-up and refreshed in the background when their TTL (10 min, or the response's
//! `Cache-Control: max-age` clamped to 1 min..1 day) runs out, so once warm no request
//! waits on the network. A token with an unknown `kid` causes one refresh, then a 30 s
//! cooldown; concurrent callers share one fetch; failed refreshes keep the last good keys
//! for up to a day past their TTL. A verified-token cache (SHA-256 of the whole token,
//! bounded, never past `exp`, cleared on key change) makes repeated tokens cost a hash.
//!
//! # Token status lists
//!
//! A signed JWT stays valid until its `exp`; a [Token Status List] lets its issuer take it
//! back sooner. The token names an entry, `"status": {"status_list": {"idx": 7, "uri":
//! "https://issuer.example/statuslists/1"}}`, and the issuer serves at `uri` a Status List
//! Token (a JWS, `typ` `statuslist+jwt`, signed with the same keys) holding a compressed bit
//! array; entry 7 not 0 means revoked (1), suspended (2) or otherwise refused. Turn it on
//! with [`VerifierBuilder::status_lists`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use jwks_verify::status_list::{FailureMode, StatusListConfig};
//! use jwks_verify::{Policy, Verifier};
//!
//! # async fn run() -> Result<(), jwks_verify::BuildError> {
//! let verifier = Verifier::builder(Policy::new("https://accounts.example.com", "my-api"))
//!     .discover()
//!     .status_lists(StatusListConfig::new().require_status(true).max_age(Duration::from_secs(10)))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! The trade-offs:
//!
//! - **Revocation is bounded, not instant.** A list is used for `min(ttl, max_age)` (the list
//!   token's `ttl`, the configured `max_age`, 30 s by default; never under 1 s whatever `ttl`
//!   says) and refreshed in the background, so a revoked token is refused at most that long
//!   plus one fetch after the issuer publishes the change. Once a list is held, no
//!   verification waits on the network; the first token naming a new list waits for one
//!   fetch (shared by concurrent callers, at most the fetch timeout, 5 s).
//! - **Fail-closed or fail-open.** When refreshes fail, the last good list is used for
//!   `stale_if_error` more (5 min). After that, [`FailureMode::FailClosed`](status_list::FailureMode::FailClosed)
//!   (the default) refuses tokens naming that list with [`ErrorKind::StatusUnavailable`]
//!   (the tower layer answers 503 with `Retry-After`): an outage of the list server becomes
//!   an outage of yours. [`FailureMode::FailOpen`](status_list::FailureMode::FailOpen)
//!   accepts them, counts each in [`MetricsSnapshot::status_fail_open`] and logs once per
//!   outage: whoever can block the list server can then use revoked tokens.
//! - **No SSRF.** The `uri` comes from a signed token, but it is still fetched by your
//!   server, so only URIs on an accepted issuer's origin (scheme, host and port) or under a
//!   prefix given to [`StatusListConfig::allow_uri_prefix`](status_list::StatusListConfig::allow_uri_prefix)
//!   are fetched, over `https` (or `http` to loopback), without userinfo or dot segments; a
//!   token naming any other URI is refused without a request.
//! - **What a list token must be.** Signed with the verifier's keys and allowed algorithms,
//!   `typ` exactly `statuslist+jwt`, `sub` exactly the URI fetched, `iss` an accepted issuer,
//!   `iat` present and not older than the list held (no rollback), `exp` not passed; at most
//!   1 MiB on the wire and 16 MiB inflated (checked while inflating), at most 64 lists held
//!   (least recently used dropped), and lists no token named for 10 minutes are dropped.
//! - **Cost.** The `status` claim is read in the claims pass; its list is found once in a
//!   lock-free snapshot and kept with the verified token, so a verified-token cache hit
//!   checks it with a few atomic loads and a bit test. Measured (`cargo bench -p benches
//!   --bench verify -- status`): 0.99x of the check off for distinct tokens, 1.00x for
//!   cache hits.
//!
//! [Token Status List]: https://datatracker.ietf.org/doc/draft-ietf-oauth-status-list/
//!
//! # Features
//!
//! - `hyper-client` (default): the built-in HTTPS client for remote key sources.
//! - `tower` (default): [`BearerAuthLayer`].
//! - `status-list` (default): [`status_list`] checks. On by default because it does
//!   nothing until [`VerifierBuilder::status_lists`] is called (no claim parsing, no task,
//!   no fetch), so a deployment can turn revocation on from configuration without a
//!   rebuild; it costs only `flate2` with its pure-Rust `miniz_oxide` backend. Implies
//!   `runtime`.
//! - `runtime`: remote key sources with your own [`jwks::HttpFetcher`], without hyper.
//!
//! With no features the crate verifies against static key sets and does no I/O at all.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod base64url;
mod claims;
mod clock;
mod error;
mod json;
mod jwk;
pub mod jwks;
mod jws;
mod metrics;
mod policy;
mod published;
mod refusal;
mod shared;
mod standard_claims;
mod status_claim;
#[cfg(feature = "status-list")]
pub mod status_list;
mod token_cache;
mod url;
mod verified;
mod verifier;

#[cfg(feature = "tower")]
mod auth;

#[cfg(test)]
mod test_keys;

#[cfg(feature = "tower")]
pub use auth::{BearerAuth, BearerAuthLayer, Challenge, ResponseFuture, insufficient_scope};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BuildError, Error, ErrorKind};
pub use jwk::{JwksError, KeySet, MAX_KEYS, SkipReason, SkippedKey};
pub use metrics::MetricsSnapshot;
pub use policy::{
    Algorithm, AlgorithmSet, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, Policy, TypPolicy,
};
pub use standard_claims::StandardClaims;
pub use verified::Verified;
pub use verifier::{Attempt, DEFAULT_TOKEN_CACHE_ENTRIES, Pending, Verifier, VerifierBuilder};
