//! An OpenID Connect provider: protocol and crypto primitives with no I/O, and the provider
//! service built on them.
//!
//! Time is always passed in as `now` (Unix seconds) and randomness comes from an injected
//! [`aws_lc_rs::rand::SecureRandom`], so everything here runs on a virtual clock with
//! deterministic inputs in tests. The I/O edges (storage, the provider's HTTP service and
//! background task, outbound requests) sit behind traits and features.
//!
//! # Modules
//!
//! - [`types`]: identifiers that can only hold valid values — [`Issuer`](types::Issuer),
//!   [`ClientId`](types::ClientId), [`Subject`](types::Subject), [`Scope`](types::Scope)
//!   and [`ResourceIndicator`](types::ResourceIndicator).
//! - [`redirect`]: [`RedirectUri`](redirect::RedirectUri) registration rules and the exact
//!   matching used at the authorization endpoint (loopback ports may vary, RFC 8252 §7.3).
//! - [`pkce`]: RFC 7636 with `S256` only; `plain` and a missing method are refused.
//! - [`secret`]: 256-bit bearer secrets (client secrets, codes, refresh tokens) that are
//!   stored as SHA-256 and compared in constant time.
//! - [`keys`]: RSA [`SigningKey`](keys::SigningKey)s (aws-lc-rs; RFC 7638 `kid`) and the
//!   [`KeyRing`](keys::KeyRing) that rotates them on a schedule driven by `now`, publishes
//!   them before they sign and keeps them until every token they signed has expired.
//! - [`jwt`]: RS256 compact JWS encoding, RFC 9068 access tokens (`typ: at+jwt`) and ID
//!   tokens (`typ: JWT`).
//! - [`status_list`]: IETF Token Status Lists: the `status` claim of access tokens, the
//!   compressed bit array and the signed Status List Token (`typ: statuslist+jwt`).
//! - [`discovery`]: the provider metadata document, served at both well-known paths.
//! - [`login`]: the login methods behind [`authn::Authenticator`]: federation to an
//!   upstream OpenID provider (Google or any issuer; feature `hyper-client`) and local
//!   Argon2id passwords with CSRF-protected forms and lockout (feature `tower`).
//! - [`outbound`]: the SSRF-safe outbound HTTP client (feature `hyper-client`; every
//!   resolved address vetted, connections pinned to the vetted addresses) and the Client
//!   ID Metadata Document resolver.
//! - [`store`]: the provider's storage contract, [`ProviderStore`](store::ProviderStore)
//!   (every multi-step change atomic, every "exactly once" step a compare-and-swap), and
//!   [`SqliteStore`](store::SqliteStore), one durable SQLite file (features `sqlite` and
//!   `tower`), and `PostgresStore`, a PostgreSQL database shared by replicas (feature
//!   `postgres`).
//! - [`provider`]: the OpenID provider itself as a tower `Service`
//!   (feature `tower`): discovery, JWKS, authorization with consent, token (code and
//!   refresh grants), revocation, introspection, userinfo and dynamic registration, with
//!   CORS, rate limits, audit events and key rotation in the background.
//!
//! # Security properties
//!
//! - Values are parsed once into types that cannot hold invalid values; comparisons of
//!   issuers, redirect URIs, client ids and resources are exact string comparisons.
//! - Secrets (PKCE verifiers, generated secrets, private keys) have redacted `Debug`, are
//!   zeroed on drop and are not `Clone`. Error messages never contain them.
//! - Verifier and secret checks are constant-time (`subtle`).
//! - Private keys are parsed once; the JWK Set carries public members only.
//!
//! # Example
//!
//! ```
//! use aws_lc_rs::rand::SystemRandom;
//! use oidc_core::jwt::{AccessTokenClaims, encode_access_token, generate_jti};
//! use oidc_core::keys::{KeyRing, KeySize, RotationPolicy};
//! use oidc_core::types::{ClientId, Issuer, ResourceIndicator, Scope, Subject};
//!
//! let now = 1_700_000_000;
//! let mut ring = KeyRing::new(RotationPolicy::default())?;
//! ring.advance(now, &KeySize::Rsa2048)?;
//!
//! let claims = AccessTokenClaims {
//!     iss: Issuer::parse("https://auth.example.com")?,
//!     sub: Subject::parse("u-123")?,
//!     aud: ResourceIndicator::parse("https://mcp.example.com/mcp")?,
//!     client_id: ClientId::parse("https://app.example/client.json")?,
//!     iat: now,
//!     exp: now + 900,
//!     jti: generate_jti(&SystemRandom::new())?,
//!     scope: Scope::parse("memories:read")?,
//! };
//! let signer = ring.signer(now).ok_or("no signing key")?;
//! let access_token = encode_access_token(signer, &claims)?;
//! let jwks = ring.jwks(); // serve at jwks_uri
//! # assert!(jwks.contains(signer.kid()) && !access_token.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[macro_use]
mod macros;

mod base64url;
mod client_metadata;
mod error;
mod status_claim;
mod uri;

pub mod audit;
pub mod authn;
pub mod client;
pub mod discovery;
pub mod html;
pub mod jwt;
pub mod keys;
pub mod login;
pub mod outbound;
pub mod pkce;
#[cfg(feature = "tower")]
pub mod provider;
pub mod redirect;
pub mod secret;
pub mod status_list;
pub mod store;
pub mod types;

pub use error::{InvalidValue, InvalidValueKind, RandomError};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<crate::keys::KeyRing>();
        assert_send_sync::<crate::keys::SigningKey>();
        assert_send_sync::<crate::keys::KeyRecord>();
        assert_send_sync::<crate::secret::Secret>();
        assert_send_sync::<crate::pkce::CodeVerifier>();
        assert_send_sync::<crate::redirect::RedirectUri>();
        assert_send_sync::<crate::discovery::ProviderMetadata>();
    }
}
