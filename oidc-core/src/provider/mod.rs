//! The OpenID provider (OAuth 2.1 authorization server) as a tower [`Service`]:
//! [`Provider`].
//!
//! # Routes
//!
//! Every path is under the issuer's path (`https://as.example/t1` serves `/t1/token`);
//! the discovery document is also served at each of
//! [`well_known_paths`](crate::discovery::well_known_paths).
//!
//! | Path | Methods | CORS | Rate limit |
//! |---|---|---|---|
//! | `/.well-known/openid-configuration`, `/.well-known/oauth-authorization-server` | GET | yes | – |
//! | `/jwks.json` | GET | yes | – |
//! | `/authorize` | GET, POST | no | authorize |
//! | `/authorize/select` (login chooser) | GET | no | login |
//! | `/consent` | POST | no | login |
//! | each login method's `path_prefix` | any | no | login |
//! | `/token` | POST | yes | token |
//! | `/revoke` | POST | yes | token |
//! | `/introspect` | POST | no | token |
//! | `/userinfo` | GET, POST | yes | – |
//! | `/register` (when enabled) | POST | yes | register |
//! | `/account/grants` (see below) | GET | no | token |
//! | `/account/grants/revoke` | POST | no | token |
//! | `/health` | GET | no | – |
//! | `/statuslists/{n}`, `/statuslists` (when [`StatusListPolicy::enabled`]) | GET | yes | – |
//!
//! `/account/grants` is the **account API**, for first-party apps only: a static client
//! marked with [`StaticClient::with_account_access`] calls it server to server with the
//! user's access token as `Authorization: Bearer`, to list which apps hold a live grant
//! for that user (`GET`, grouped per client) and to revoke them (`POST
//! /account/grants/revoke` with `{"client_id": "…"}`, each grant as `/revoke` would,
//! status list entry included). Tokens of any other client get 403
//! `insufficient_scope`; the user is always the token's subject. See the
//! [`StaticClient::with_account_access`] documentation for the JSON shapes and errors.
//!
//! `/health` answers only `{"status": …}` to everyone; the details (store, signing kid,
//! published keys, next rotation) need the operator token of
//! [`ProviderConfig::health_token`] as `Authorization: Bearer`.
//!
//! # The flow
//!
//! 1. `/authorize` checks the client and the redirect URI first; if either is wrong it
//!    shows an error page and never redirects. Every later error redirects to an
//!    operator-configured client with `error`, `error_description`, `state` and `iss`
//!    (RFC 9207); a self-registered client (DCR, metadata document) gets an error page
//!    with that redirect as a link instead, never an automatic redirect (RFC 9700
//!    §4.11.2: its redirect URI is whatever its registrant chose). PKCE `S256` is
//!    required of every client. The validated request is stored as a pending
//!    authorization and the login method starts (or a chooser page lists several).
//! 2. When a login method reports the user, the provider shows the consent page: the
//!    client's name, the host it will redirect to, the scopes in words and the resources.
//!    The form carries a per-transaction CSRF token; cross-origin posts are refused.
//! 3. Approval issues a 256-bit code, stored hashed, bound to the client, redirect URI,
//!    PKCE challenge, nonce, scope, resources and user, valid for at most 60 s, and
//!    redirects with `303 See Other`.
//! 4. `/token` redeems the code exactly once, creating a *grant*. A replayed code revokes
//!    the grant. Access tokens are RFC 9068 JWTs (`typ: at+jwt`, `aud` = the resource),
//!    ID tokens are `typ: JWT` with `aud` = the client id.
//!
//! # Design decisions
//!
//! - **No provider sessions.** Every authorization runs a login method, so `prompt=none`
//!   always answers `login_required`, and `prompt=login`/`max_age` ask the login method
//!   to force re-authentication.
//! - **Consent every time**, for every client: self-registered clients (DCR, metadata
//!   documents) name themselves, so the page shows the redirect host prominently.
//! - **Unused dynamic clients expire**: maintenance deletes a DCR client that has not
//!   been issued a token for [`RegistrationPolicy::unused_client_ttl`] (30 days) unless
//!   it still holds a live grant.
//! - **Refresh tokens** are issued when the client may use the `refresh_token` grant
//!   (static clients by default; DCR clients that registered it in `grant_types`; metadata
//!   document clients as their resolver says), whether or not `offline_access` was
//!   requested: MCP clients expect them without it. `offline_access` is dropped from the
//!   scope of a client that may not refresh. Refresh tokens rotate on every use; a used
//!   one presented again revokes the whole grant (its family). They expire when idle and
//!   at an absolute limit.
//! - **Default scopes per resource** ([`ResourceScopes`]): a request for a resource that
//!   names none of the resource's own scopes is granted them all (Keycloak's default client
//!   scopes), so a client asking only for `openid email profile` can use the resource; one
//!   naming any of them gets only what it named. The consent page lists the result, and a
//!   refresh applies the same rule within the grant.
//! - **Revocation reaches access tokens** through their `jti`: each is recorded with its
//!   grant, and userinfo, introspection and revocation refuse tokens of a revoked grant.
//!   Revoking an access token at `/revoke` revokes its whole grant.
//! - **Token status lists** ([`StatusListPolicy`], draft-ietf-oauth-status-list) carry
//!   revocations to resource servers that verify offline: each grant gets one entry
//!   (allocated in sequence, persisted, never reused), every access token of the grant
//!   names it as `"status": {"status_list": {"idx": n, "uri": "{issuer}/statuslists/{list}"}}`,
//!   and every revocation (code replay, refresh token reuse, `/revoke` of either token)
//!   sets it in the same store transaction. `GET /statuslists/{list}` serves the list as a
//!   Status List Token (`application/statuslist+jwt`, signed with the current key,
//!   `ttl` and `max-age` 10 s by default); a signature is reused until the list changes
//!   or the `ttl` passes. Set entries are stored apart from grants and never cleared, so
//!   purging a revoked grant cannot make its tokens valid again. ID tokens carry no
//!   status. See [`crate::status_list`] for the encoding and the privacy trade-off of one
//!   entry per grant.
//! - **Keys** are loaded from the store at start (generated if there are none), advanced
//!   by a background task on [`KeyRing::next_due`](crate::keys::KeyRing::next_due) and
//!   saved with a compare-and-swap, so two replicas cannot both rotate.
//! - **Rate limits** are token buckets per client IP, taken from the request extension
//!   [`std::net::SocketAddr`]; forwarded headers are never trusted. The buckets live in a
//!   [`RateLimitStore`] ([`ProviderBuilder::rate_limit_store`]): in memory per replica by
//!   default, or shared by every replica (`store::PostgresLimitStore`, feature
//!   `postgres`). A failing store lets requests through with a warning (fail open).

// The public face: `Provider`, its builder and the tower `Service`.
mod service;
// The one module between HTTP and the endpoints.
mod router;
// The endpoints: each parses its typed request once and answers a typed result; none
// imports another.
mod account;
mod authorize;
mod consent;
mod health;
mod introspection;
mod registration;
mod revocation;
mod status_lists;
mod token;
mod userinfo;
// Below the endpoints: shared preludes, token issuance, pages, state and plumbing.
mod access_tokens;
mod client_auth;
mod config;
mod cors;
mod errors;
mod form;
mod issuance;
mod keys;
mod pages;
pub(crate) mod rate_limit;
mod response;
mod routes;
mod state;
mod static_client;
mod status_list_cache;

pub use config::{
    Lifetimes, Maintenance, ProviderConfig, RateLimits, RegistrationPolicy, ResourceScopes,
    STANDARD_SCOPES, ScopeDefinition, StatusListPolicy,
};
pub use cors::CorsPolicy;
pub use errors::{ErrorCode, OAuthError, ProviderError};
pub use rate_limit::{
    LimitedEndpoint, MemoryRateLimitStore, RateDecision, RateLimit, RateLimitStore,
};
pub use service::{Provider, ProviderBuilder, ResponseFuture};
pub use state::MaintenanceReport;
pub use static_client::StaticClient;

#[cfg(doc)]
use tower_service::Service;
