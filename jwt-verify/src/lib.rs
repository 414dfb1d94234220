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
//! request of a hyper or axum service and answers RFC 6750 errors.
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
//! # Features
//!
//! - `hyper-client` (default): the built-in HTTPS client for remote key sources.
//! - `tower` (default): [`BearerAuthLayer`].
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
mod standard_claims;
mod token_cache;
mod url;
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
pub use verifier::{DEFAULT_TOKEN_CACHE_ENTRIES, Verified, Verifier, VerifierBuilder};
