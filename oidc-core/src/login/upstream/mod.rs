//! Federation to an upstream OpenID provider: Google by default, any issuer by
//! configuration.
//!
//! Top-down: [`Upstream`] (this file) is the driver, the only part doing I/O: it keeps
//! state in the [`LoginStateStore`], sends requests with the [`OutboundClient`] and
//! verifies ID tokens with a [`Verifier`] fed from the upstream JWKS. Below it, without
//! I/O: `flow` (the state machine: redirect, callback, token request and response),
//! `id_token` (the checks an ID token must pass), `metadata` (discovery), `config`, and
//! `refusal` (why a login failed and the page shown then).

mod config;
mod flow;
mod id_token;
mod metadata;
mod refusal;

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use bytes::Bytes;
use http::{Request, Response};
use jwks_verify::Verifier;

use self::config::check_config;
pub use self::config::{
    ClientSecret, DEFAULT_STATE_TTL, GOOGLE_ISSUER, GOOGLE_LEGACY_ISSUER, UpstreamConfig,
    UpstreamError, UpstreamFlavor,
};
use self::flow::{LoginSecrets, UpstreamFlow};
pub use self::metadata::UpstreamMetadata;
use self::refusal::Refusal;
use crate::authn::{
    AuthenticatedUser, Authenticator, BoxFuture, LoginOutcome, LoginRequest, LoginStateStore,
    TransactionId,
};
use crate::outbound::{OutboundClient, OutboundError, OutboundResponse};
use crate::store::GrantLogin;
use crate::types::Subject;

/// Login through an upstream OpenID provider: an [`Authenticator`] named `"google"` or
/// `"oidc"` (or as configured) with its callback at `/login/{name}/callback`.
///
/// # The flow
///
/// [`start`](Authenticator::start) makes a random `state` (256 bits, single use), a
/// `nonce` and a PKCE verifier, stores `{transaction, nonce, verifier}` in the
/// [`LoginStateStore`] under a hash of the state (for 10 minutes), and redirects (303) to
/// the upstream's authorization endpoint with `code_challenge_method=S256` spelled out.
///
/// The callback takes the state from the store (so an unknown, expired or replayed state
/// gets an error page, never a redirect to a client), checks the RFC 9207 `iss` parameter
/// (mix-up defence), redeems the code with the PKCE verifier and the client secret, and
/// verifies the ID token with a [`Verifier`] built once from the upstream's discovery
/// (signature against the upstream JWKS, `iss`, `aud` = our client id, `exp`), then checks
/// `nonce`, `azp`, extra audiences, `email_verified`, `hd` and the allow-lists. The subject
/// is [`federated_subject`](crate::authn::federated_subject)`(issuer, sub)`, never the email. The upstream's access token is
/// dropped unread. Every outcome is audited; no token, code or email is ever logged.
pub struct Upstream {
    flow: UpstreamFlow,
    verifier: Verifier,
    outbound: OutboundClient,
    store: Arc<dyn LoginStateStore>,
    rng: SystemRandom,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.flow.name)
            .field("issuer", &self.flow.config.issuer)
            .field("callback_url", &self.flow.callback_url)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Fetches the upstream's discovery document with `outbound` and builds the login.
    /// Call it at start-up (it needs a tokio runtime: the JWKS is kept fresh by a
    /// background task) and retry with a backoff if the upstream is unreachable.
    pub async fn discover(
        config: UpstreamConfig,
        outbound: OutboundClient,
        store: Arc<dyn LoginStateStore>,
    ) -> Result<Upstream, UpstreamError> {
        check_config(&config)?;
        let request = UpstreamMetadata::discovery_request(&config.issuer)
            .ok_or_else(|| UpstreamError::Discovery(OutboundError::InvalidUrl.to_string()))?;
        let response = outbound
            .send_request(request)
            .await
            .map_err(|e| UpstreamError::Discovery(e.to_string()))?;
        let metadata = UpstreamMetadata::from_response(&config.issuer, &into_response(response))?;
        Upstream::new(config, metadata, outbound, store)
    }

    /// Builds the login from metadata already at hand. ID token keys are fetched from
    /// `metadata.jwks_uri` through `outbound` (so the same address policy applies).
    pub fn new(
        config: UpstreamConfig,
        metadata: UpstreamMetadata,
        outbound: OutboundClient,
        store: Arc<dyn LoginStateStore>,
    ) -> Result<Upstream, UpstreamError> {
        let flow = UpstreamFlow::new(config, metadata)?;
        let verifier = id_token::verifier_builder(&flow.config, &flow.metadata)?
            .jwks_url(flow.metadata.jwks_uri.as_str())
            .http_fetcher(outbound.clone())
            .build()?;
        Ok(Upstream {
            flow,
            verifier,
            outbound,
            store,
            rng: SystemRandom::new(),
        })
    }

    /// The upstream metadata in use.
    pub fn metadata(&self) -> &UpstreamMetadata {
        &self.flow.metadata
    }

    /// Our callback URL at the upstream.
    pub fn callback_url(&self) -> &str {
        &self.flow.callback_url
    }

    async fn start_login(&self, request: LoginRequest, now: u64) -> Response<Bytes> {
        match self.redirect_upstream(&request, now).await {
            Ok(response) => response,
            Err(refusal) => self.flow.refuse(&refusal),
        }
    }

    async fn redirect_upstream(
        &self,
        request: &LoginRequest,
        now: u64,
    ) -> Result<Response<Bytes>, Refusal> {
        let secrets = LoginSecrets::generate(&self.rng)?;
        let started = self.flow.start(request, &secrets, now)?;
        self.store
            .put(&started.key, started.value, started.expires_at)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        Ok(started.redirect)
    }

    async fn callback(&self, request: Request<Bytes>, now: u64) -> LoginOutcome {
        if let Some(response) = self.flow.reject_route(&request) {
            return LoginOutcome::Respond(response);
        }
        match self.finish_login(&request, now).await {
            Ok((transaction, user)) => self.flow.authenticated(transaction, user),
            Err(refusal) => LoginOutcome::Respond(self.flow.refuse(&refusal)),
        }
    }

    async fn finish_login(
        &self,
        request: &Request<Bytes>,
        now: u64,
    ) -> Result<(TransactionId, AuthenticatedUser), Refusal> {
        let (params, key) = self.flow.callback_params(request)?;
        let stored = self
            .store
            .take(&key, now)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        let resumed = self.flow.resume(&params, stored, now)?;
        let token_request = self.flow.token_request(resumed.code, &resumed.verifier)?;
        let response = self
            .outbound
            .send_request(token_request)
            .await
            .map_err(Refusal::Outbound)?;
        let id_token = self.flow.read_token_response(&into_response(response))?;
        let user = id_token::admit_id_token(
            &self.verifier,
            &self.flow.config,
            &id_token,
            &resumed.pending.nonce,
            now,
        )
        .await?;
        Ok((resumed.transaction, user))
    }
}

/// The [`OutboundClient`]'s answer as the [`http::Response`] the flow reads.
fn into_response(outbound: OutboundResponse) -> Response<Bytes> {
    let mut response = Response::new(outbound.body);
    *response.status_mut() = outbound.status;
    *response.headers_mut() = outbound.headers;
    response
}

impl Authenticator for Upstream {
    fn name(&self) -> &str {
        &self.flow.name
    }

    fn label(&self) -> &str {
        &self.flow.label
    }

    fn path_prefix(&self) -> &str {
        &self.flow.path_prefix
    }

    fn start(&self, request: LoginRequest, now: u64) -> BoxFuture<'_, Response<Bytes>> {
        Box::pin(self.start_login(request, now))
    }

    fn handle(&self, request: Request<Bytes>, now: u64) -> BoxFuture<'_, LoginOutcome> {
        Box::pin(self.callback(request, now))
    }

    /// With an email allow-list, an upstream grant's user is admitted while the email they
    /// were admitted with still is (the rule sign-in applies). Without one
    /// (any user, or hosted domains only, whose `hd` is not kept) this cannot tell.
    fn still_admits(&self, _subject: &Subject, login: &GrantLogin) -> Option<bool> {
        let GrantLogin::Upstream { email } = login else {
            return None;
        };
        if !self.flow.config.has_email_rule() {
            return None;
        }
        Some(
            email
                .as_deref()
                .is_some_and(|e| self.flow.config.email_allowed(e)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_methods_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Upstream>();
        assert_send_sync::<UpstreamConfig>();
        assert_send_sync::<OutboundClient>();
    }
}
