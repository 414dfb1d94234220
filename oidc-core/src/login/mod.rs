//! Login methods: the ways a user proves who they are before the provider issues a code.
//!
//! Each is an [`Authenticator`](crate::authn::Authenticator), keeping its short-lived state
//! (upstream `state`/`nonce`/PKCE verifier, CSRF tokens) in the provider's
//! [`LoginStateStore`](crate::authn::LoginStateStore) under keys derived from a hash of the
//! single-use token, so a token is never stored in the clear and is accepted once.
//!
//! - [`Upstream`] (feature `hyper-client`): federation to an upstream OpenID provider,
//!   Google by default ([`UpstreamConfig::google`]) or any issuer ([`UpstreamConfig::new`]).
//!   State, nonce and PKCE `S256` toward the upstream, RFC 9207 `iss` checking, ID tokens
//!   verified with [`jwks_verify::Verifier`], `email_verified`, `hd` and allow-lists
//!   enforced, subjects from the upstream `iss` + `sub` only.
//! - [`Passwords`] (feature `tower`): local users from configuration with Argon2id
//!   hashes ([`hash_password`]), a form with a CSRF token, constant work for unknown
//!   usernames and a [`LockoutPolicy`] per (username, client address), per address and
//!   per username, so that a guesser locks out only itself. The counters live in a
//!   [`LockoutStore`]: in memory by default, or shared by every replica
//!   (`store::PostgresLimitStore`, feature `postgres`).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use oidc_core::authn::LoginStateStore;
//! use oidc_core::login::{ClientSecret, Upstream, UpstreamConfig};
//! use oidc_core::outbound::{OutboundClient, OutboundConfig};
//! use oidc_core::types::Issuer;
//!
//! # async fn run(store: Arc<dyn LoginStateStore>) -> Result<(), Box<dyn std::error::Error>> {
//! let ours = Issuer::parse("https://auth.example.com")?;
//! let config = UpstreamConfig::google("1234.apps.googleusercontent.com", ClientSecret::new("…"), &ours)
//!     .hosted_domains(["example.com"]);
//! let google = Upstream::discover(config, OutboundClient::new(OutboundConfig::default()), store).await?;
//! // Register `google.callback_url()` at Google; hand `google` to the provider.
//! # Ok(()) }
//! ```

use std::net::IpAddr;

mod lockout;
#[cfg(any(feature = "tower", feature = "hyper-client"))]
mod params;
mod password;
#[cfg(feature = "tower")]
mod passwords;
#[cfg(feature = "hyper-client")]
mod upstream;

pub use lockout::{
    CounterKey, CounterKind, FailureRecord, LockoutAnswer, LockoutOp, LockoutPolicy, LockoutStore,
    MemoryLockoutStore,
};
pub use password::{
    ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, LocalUser, MAX_PASSWORD_BYTES, PasswordError,
    PasswordHashString, generate_password, hash_password, hash_password_with,
};
#[cfg(feature = "tower")]
pub use passwords::{PASSWORD_ISSUER, PASSWORD_METHOD, PASSWORD_PATH, PasswordStats, Passwords};
#[cfg(feature = "hyper-client")]
pub use upstream::{
    ClientSecret, DEFAULT_STATE_TTL, GOOGLE_ISSUER, GOOGLE_LEGACY_ISSUER, Upstream, UpstreamConfig,
    UpstreamError, UpstreamFlavor, UpstreamMetadata,
};

/// The client's IP address, as a request extension for login methods.
///
/// The provider does not insert it: requests reach
/// [`Authenticator::handle`](crate::authn::Authenticator::handle) with the extensions the
/// server gave them. Insert it in front of the provider (after deciding which proxy headers
/// to trust) to name the client's address; [`Passwords`] counts failed logins per address
/// with it, and falls back to a [`std::net::SocketAddr`] extension (the peer address, or
/// the client a trusted proxy forwarded, as the server set it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);
