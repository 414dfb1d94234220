//! Federation to an upstream OpenID provider: Google by default, any issuer by
//! configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use jwks_verify::{Algorithm, Policy, Verifier};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

use super::params::{self, Params};
use crate::audit::{self, AuditEvent};
use crate::authn::{
    AuthenticatedUser, Authenticator, BoxFuture, LoginMethod, LoginOutcome, LoginRequest,
    LoginStateStore, TransactionId, federated_subject,
};
use crate::html;
use crate::outbound::{OutboundClient, OutboundError};
use crate::pkce::{CodeVerifier, S256};
use crate::secret::Secret;
use crate::store::GrantLogin;
use crate::types::{Issuer, Scope, Subject};

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The legacy spelling of Google's issuer, still found in the `iss` claim of some Google
/// ID tokens. Accepted only for the `iss` claim of a [`UpstreamFlavor::Google`] upstream.
pub const GOOGLE_LEGACY_ISSUER: &str = "accounts.google.com";
/// Default lifetime of an upstream login (state, nonce, verifier): 10 minutes.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);

/// Longest `sub`, `email`, `hd` or `name` accepted from an ID token, in bytes.
const MAX_CLAIM_BYTES: usize = 255;
/// Largest ID token accepted from the token endpoint (the verifier's policy refuses longer
/// ones before decoding them).
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// Which provider-specific behaviour an upstream gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamFlavor {
    /// Google: `iss` may also be [`GOOGLE_LEGACY_ISSUER`]; `access_type=online`,
    /// `prompt=select_account`, and `hd` as a hint when exactly one hosted domain is
    /// configured; `max_age=0` (not `prompt=login`, which Google does not define) to force
    /// a fresh login.
    Google,
    /// Any OpenID provider: `prompt=login` to force a fresh login, nothing else added.
    Generic,
}

/// The client secret registered at the upstream provider. Redacted `Debug`, zeroed on
/// drop, not `Clone`.
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(Zeroizing::new(secret.into()))
    }

    /// The secret, for the token request. Do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Configuration of an upstream login.
///
/// Who may log in: with [`hosted_domains`](Self::hosted_domains), the ID token's `hd`
/// claim must be one of them (the `hd` request parameter is only a hint and is never
/// trusted). With [`allowed_emails`](Self::allowed_emails) and/or
/// [`allowed_email_domains`](Self::allowed_email_domains), the ID token's email must be
/// verified (`email_verified: true`) and be one of the emails or in one of the domains.
/// Both kinds of rule apply when both are set. Without any rule,
/// [`allow_any_user`](Self::allow_any_user) must be set explicitly, or [`Upstream`]
/// refuses the configuration.
///
/// ```
/// use oidc_core::login::{ClientSecret, UpstreamConfig};
/// use oidc_core::types::Issuer;
///
/// let ours = Issuer::parse("https://auth.example.com")?;
/// let config = UpstreamConfig::google("1234.apps.googleusercontent.com", ClientSecret::new("GOCSPX-…"), &ours)
///     .hosted_domains(["example.com"]);
/// assert_eq!(config.name(), "google");
/// assert_eq!(config.callback_url(), "https://auth.example.com/login/google/callback");
/// assert!(config.has_restriction());
/// # Ok::<(), oidc_core::InvalidValue>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct UpstreamConfig {
    issuer: Issuer,
    our_issuer: Issuer,
    client_id: String,
    client_secret: ClientSecret,
    name: Option<String>,
    label: Option<String>,
    flavor: UpstreamFlavor,
    scopes: Scope,
    hosted_domains: Vec<String>,
    allowed_emails: Vec<String>,
    allowed_email_domains: Vec<String>,
    allow_any_user: bool,
    state_ttl: Duration,
}

impl UpstreamConfig {
    /// Google as the upstream (issuer [`GOOGLE_ISSUER`]), for the provider whose issuer
    /// is `our_issuer`.
    pub fn google(
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        our_issuer: &Issuer,
    ) -> Self {
        // GOOGLE_ISSUER is a valid issuer.
        let issuer = Issuer::parse(GOOGLE_ISSUER)
            .unwrap_or_else(|_| unreachable!("GOOGLE_ISSUER is a valid issuer"));
        Self::new(issuer, client_id, client_secret, our_issuer)
    }

    /// Any OpenID provider as the upstream. The flavor, and with it the default name
    /// (`"google"` or `"oidc"`), follows from the issuer.
    pub fn new(
        issuer: Issuer,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        our_issuer: &Issuer,
    ) -> Self {
        let flavor = if issuer.as_str() == GOOGLE_ISSUER {
            UpstreamFlavor::Google
        } else {
            UpstreamFlavor::Generic
        };
        UpstreamConfig {
            issuer,
            our_issuer: our_issuer.clone(),
            client_id: client_id.into(),
            client_secret,
            name: None,
            label: None,
            flavor,
            // Three valid scope tokens.
            scopes: Scope::parse("openid email profile")
                .unwrap_or_else(|_| unreachable!("a valid scope")),
            hosted_domains: Vec::new(),
            allowed_emails: Vec::new(),
            allowed_email_domains: Vec::new(),
            allow_any_user: false,
            state_ttl: DEFAULT_STATE_TTL,
        }
    }

    /// Sets the flavor (by default [`UpstreamFlavor::Google`] for [`GOOGLE_ISSUER`] and
    /// [`UpstreamFlavor::Generic`] for any other issuer), and with it the default name
    /// and label.
    pub fn flavor(mut self, flavor: UpstreamFlavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// The machine name (`[a-z0-9-]`, 1 to 32 characters; default `"google"` or
    /// `"oidc"` by flavor), which also names the paths: `/login/{name}` and the callback
    /// `/login/{name}/callback`. Needed only to run two upstreams of the same flavor.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The label of a login chooser button (default "Sign in with Google", or "Sign in
    /// with" and the issuer's host).
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The scopes requested upstream (default `openid email profile`; `openid` is added
    /// if missing).
    pub fn scopes(mut self, scopes: Scope) -> Self {
        self.scopes = if scopes.contains("openid") {
            scopes
        } else {
            Scope::from_tokens(std::iter::once("openid").chain(scopes.iter())).unwrap_or(scopes)
        };
        self
    }

    /// Only users whose ID token carries one of these `hd` (Google Workspace domain)
    /// values may log in.
    pub fn hosted_domains<S: AsRef<str>>(mut self, domains: impl IntoIterator<Item = S>) -> Self {
        self.hosted_domains = domains
            .into_iter()
            .map(|d| d.as_ref().trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        self
    }

    /// Only users with one of these verified email addresses (or one in
    /// [`allowed_email_domains`](Self::allowed_email_domains)) may log in. Compared
    /// without regard to ASCII case.
    pub fn allowed_emails<S: AsRef<str>>(mut self, emails: impl IntoIterator<Item = S>) -> Self {
        self.allowed_emails = emails
            .into_iter()
            .map(|e| e.as_ref().trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        self
    }

    /// Only users with a verified email address in one of these domains (or one listed
    /// in [`allowed_emails`](Self::allowed_emails)) may log in.
    pub fn allowed_email_domains<S: AsRef<str>>(
        mut self,
        domains: impl IntoIterator<Item = S>,
    ) -> Self {
        self.allowed_email_domains = domains
            .into_iter()
            .map(|d| {
                d.as_ref()
                    .trim()
                    .trim_start_matches('@')
                    .to_ascii_lowercase()
            })
            .filter(|d| !d.is_empty())
            .collect();
        self
    }

    /// Lets every account of the upstream log in when no other rule is set. Must be
    /// chosen explicitly: with Google, "any user" means any Google account in the world.
    pub fn allow_any_user(mut self, allow: bool) -> Self {
        self.allow_any_user = allow;
        self
    }

    /// How long a started login may take (default 10 minutes).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The upstream issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The machine name.
    pub fn name(&self) -> &str {
        match (&self.name, self.flavor) {
            (Some(name), _) => name,
            (None, UpstreamFlavor::Google) => "google",
            (None, UpstreamFlavor::Generic) => "oidc",
        }
    }

    /// The label of a login chooser button.
    pub fn label(&self) -> String {
        match (&self.label, self.flavor) {
            (Some(label), _) => label.clone(),
            (None, UpstreamFlavor::Google) => "Sign in with Google".to_owned(),
            (None, UpstreamFlavor::Generic) => {
                format!("Sign in with {}", host_of(self.issuer.as_str()))
            }
        }
    }

    /// Our callback URL, to register at the upstream: our issuer +
    /// `/login/{name}/callback`.
    pub fn callback_url(&self) -> String {
        self.our_issuer.join(&self.callback_path())
    }

    /// Whether some rule restricts who may log in.
    pub fn has_restriction(&self) -> bool {
        !self.hosted_domains.is_empty()
            || !self.allowed_emails.is_empty()
            || !self.allowed_email_domains.is_empty()
    }

    fn path_prefix(&self) -> String {
        format!("/login/{}", self.name())
    }

    fn callback_path(&self) -> String {
        format!("/login/{}/callback", self.name())
    }

    fn has_email_rule(&self) -> bool {
        !self.allowed_emails.is_empty() || !self.allowed_email_domains.is_empty()
    }

    /// Whether `email` (verified) is on the allow-list: listed, or in a listed domain.
    /// Compared without case.
    fn email_allowed(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.allowed_emails.contains(&email)
            || self.allowed_email_domains.iter().any(|d| d == domain)
    }
}

/// Setting up an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The configuration is unusable (no restriction on who may log in, a bad name, …).
    #[error("upstream configuration: {0}")]
    Config(String),
    /// The discovery document could not be fetched or is not acceptable.
    #[error("upstream discovery: {0}")]
    Discovery(String),
    /// The ID token verifier could not be built.
    #[error("upstream id token verifier: {0}")]
    Verifier(#[from] jwks_verify::BuildError),
}

/// What this login needs from the upstream's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamMetadata {
    /// The issuer (equal to the configured one).
    pub issuer: Issuer,
    /// Where browsers are sent to log in.
    pub authorization_endpoint: String,
    /// Where codes are redeemed.
    pub token_endpoint: String,
    /// The signing keys of ID tokens.
    pub jwks_uri: String,
    /// `id_token_signing_alg_values_supported`.
    pub id_token_signing_algs: Vec<String>,
    /// `token_endpoint_auth_methods_supported` (default `client_secret_basic`).
    pub token_endpoint_auth_methods: Vec<String>,
    /// `code_challenge_methods_supported`, if published.
    pub code_challenge_methods: Option<Vec<String>>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    pub iss_parameter_supported: bool,
}

impl UpstreamMetadata {
    /// The discovery URL of `issuer`: `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(issuer: &Issuer) -> String {
        issuer.join("/.well-known/openid-configuration")
    }

    /// Parses and checks a discovery document fetched for `expected`: the `issuer` must
    /// be exactly `expected`, endpoints must be `https` (or `http` if the issuer itself is
    /// a loopback `http` issuer), `S256` must be supported if methods are listed, and ID
    /// tokens must be signed with `RS256` or `ES256`.
    ///
    /// ```
    /// use oidc_core::login::UpstreamMetadata;
    /// use oidc_core::types::Issuer;
    ///
    /// let issuer = Issuer::parse("https://accounts.google.com")?;
    /// let doc = br#"{"issuer":"https://accounts.google.com",
    ///   "authorization_endpoint":"https://accounts.google.com/o/oauth2/v2/auth",
    ///   "token_endpoint":"https://oauth2.googleapis.com/token",
    ///   "jwks_uri":"https://www.googleapis.com/oauth2/v3/certs",
    ///   "id_token_signing_alg_values_supported":["RS256"],
    ///   "code_challenge_methods_supported":["plain","S256"]}"#;
    /// let metadata = UpstreamMetadata::from_json(&issuer, doc)?;
    /// assert_eq!(metadata.token_endpoint, "https://oauth2.googleapis.com/token");
    /// let other = Issuer::parse("https://evil.example")?;
    /// assert!(UpstreamMetadata::from_json(&other, doc).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_json(expected: &Issuer, json: &[u8]) -> Result<UpstreamMetadata, UpstreamError> {
        #[derive(Deserialize)]
        struct Document {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
            jwks_uri: String,
            #[serde(default)]
            id_token_signing_alg_values_supported: Vec<String>,
            #[serde(default)]
            token_endpoint_auth_methods_supported: Option<Vec<String>>,
            #[serde(default)]
            code_challenge_methods_supported: Option<Vec<String>>,
            #[serde(default)]
            authorization_response_iss_parameter_supported: bool,
        }
        let fail = |m: &str| UpstreamError::Discovery(m.to_owned());
        let doc: Document = serde_json::from_slice(json)
            .map_err(|_| fail("not an openid provider metadata document"))?;
        if doc.issuer != expected.as_str() {
            return Err(fail("the document's issuer is not the configured issuer"));
        }
        let allow_http = expected.as_str().starts_with("http://");
        for (what, url) in [
            ("authorization_endpoint", &doc.authorization_endpoint),
            ("token_endpoint", &doc.token_endpoint),
            ("jwks_uri", &doc.jwks_uri),
        ] {
            if !is_acceptable_endpoint(url, allow_http) {
                return Err(UpstreamError::Discovery(format!(
                    "{what} is not an https url"
                )));
            }
        }
        if let Some(methods) = &doc.code_challenge_methods_supported
            && !methods.iter().any(|m| m == S256)
        {
            return Err(fail("the upstream does not support pkce s256"));
        }
        if id_token_algorithms(&doc.id_token_signing_alg_values_supported).is_none() {
            return Err(fail("id tokens are signed with neither RS256 nor ES256"));
        }
        Ok(UpstreamMetadata {
            issuer: expected.clone(),
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
            id_token_signing_algs: doc.id_token_signing_alg_values_supported,
            token_endpoint_auth_methods: doc
                .token_endpoint_auth_methods_supported
                .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]),
            code_challenge_methods: doc.code_challenge_methods_supported,
            iss_parameter_supported: doc.authorization_response_iss_parameter_supported,
        })
    }
}

/// The ID token algorithms to accept: RS256 (which OpenID Connect requires of every
/// provider), plus ES256 when advertised; `None` when the advertised list has neither.
fn id_token_algorithms(advertised: &[String]) -> Option<Vec<Algorithm>> {
    let has = |name: &str| advertised.iter().any(|a| a == name);
    if !advertised.is_empty() && !has("RS256") && !has("ES256") {
        return None;
    }
    let mut algorithms = vec![Algorithm::RS256];
    if has("ES256") {
        algorithms.push(Algorithm::ES256);
    }
    Some(algorithms)
}

/// An absolute `https` URL (or `http` for a loopback `http` issuer) with a host, and no
/// fragment or user information.
fn is_acceptable_endpoint(url: &str, allow_http: bool) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let scheme_ok = parsed.scheme() == "https" || (allow_http && parsed.scheme() == "http");
    scheme_ok
        && parsed.host().is_some()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none()
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenAuth {
    Basic,
    Post,
}

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
/// is [`federated_subject`]`(issuer, sub)`, never the email. The upstream's access token is
/// dropped unread. Every outcome is audited; no token, code or email is ever logged.
pub struct Upstream {
    name: String,
    label: String,
    config: UpstreamConfig,
    metadata: UpstreamMetadata,
    path_prefix: String,
    callback_path: String,
    callback_url: String,
    token_auth: TokenAuth,
    verifier: Verifier,
    outbound: OutboundClient,
    store: Arc<dyn LoginStateStore>,
    rng: SystemRandom,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("issuer", &self.config.issuer)
            .field("callback_url", &self.callback_url)
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
        let url = UpstreamMetadata::discovery_url(&config.issuer);
        let response = outbound
            .get(&url, "application/json")
            .await
            .map_err(|e| UpstreamError::Discovery(e.to_string()))?;
        if response.status != StatusCode::OK {
            return Err(UpstreamError::Discovery(format!(
                "http status {}",
                response.status.as_u16()
            )));
        }
        let metadata = UpstreamMetadata::from_json(&config.issuer, &response.body)?;
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
        check_config(&config)?;
        if metadata.issuer != config.issuer {
            return Err(UpstreamError::Config(
                "metadata is for another issuer".into(),
            ));
        }
        let methods = &metadata.token_endpoint_auth_methods;
        let token_auth = if methods.iter().any(|m| m == "client_secret_basic") {
            TokenAuth::Basic
        } else if methods.iter().any(|m| m == "client_secret_post") {
            TokenAuth::Post
        } else {
            return Err(UpstreamError::Discovery(
                "the token endpoint supports neither client_secret_basic nor client_secret_post"
                    .into(),
            ));
        };
        let algorithms = id_token_algorithms(&metadata.id_token_signing_algs).ok_or_else(|| {
            UpstreamError::Discovery("id tokens are signed with neither RS256 nor ES256".into())
        })?;
        let mut policy = Policy::new(config.issuer.as_str(), config.client_id.as_str())
            .algorithms(algorithms)
            .max_token_bytes(MAX_ID_TOKEN_BYTES);
        if config.flavor == UpstreamFlavor::Google {
            policy = policy.also_accept_issuer(GOOGLE_LEGACY_ISSUER);
        }
        let verifier = Verifier::builder(policy)
            .jwks_url(metadata.jwks_uri.as_str())
            .http_fetcher(outbound.clone())
            // Each ID token is used once: caching verified tokens would only cost memory.
            .token_cache_entries(0)
            .build()?;
        Ok(Upstream {
            name: config.name().to_owned(),
            label: config.label(),
            path_prefix: config.path_prefix(),
            callback_path: config.callback_path(),
            callback_url: config.callback_url(),
            config,
            metadata,
            token_auth,
            verifier,
            outbound,
            store,
            rng: SystemRandom::new(),
        })
    }

    /// The upstream metadata in use.
    pub fn metadata(&self) -> &UpstreamMetadata {
        &self.metadata
    }

    /// Our callback URL at the upstream.
    pub fn callback_url(&self) -> &str {
        &self.callback_url
    }

    async fn start_login(&self, request: LoginRequest, now: u64) -> Response<Bytes> {
        match self.redirect_upstream(&request, now).await {
            Ok(response) => response,
            Err(refusal) => self.refuse(&refusal),
        }
    }

    async fn redirect_upstream(
        &self,
        request: &LoginRequest,
        now: u64,
    ) -> Result<Response<Bytes>, Refusal> {
        let state = Secret::generate(&self.rng).map_err(|_| Refusal::Internal("random"))?;
        let nonce = Secret::generate(&self.rng).map_err(|_| Refusal::Internal("random"))?;
        let verifier =
            CodeVerifier::generate(&self.rng).map_err(|_| Refusal::Internal("random"))?;
        let pending = PendingLogin {
            transaction: request.transaction.as_str().to_owned(),
            nonce: nonce.expose_secret().to_owned(),
            verifier: verifier.secret().to_owned(),
            created: now,
        };
        let value = params::encode(&pending).ok_or(Refusal::Internal("encode"))?;
        let key = params::store_key(&self.name, "state", state.expose_secret());
        let expires_at = now.saturating_add(self.config.state_ttl.as_secs());
        self.store
            .put(&key, value, expires_at)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;

        let mut url = url::Url::parse(&self.metadata.authorization_endpoint)
            .map_err(|_| Refusal::Internal("authorization endpoint"))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.callback_url)
                .append_pair("scope", self.config.scopes.as_str())
                .append_pair("state", state.expose_secret())
                .append_pair("nonce", nonce.expose_secret())
                .append_pair("code_challenge", &verifier.challenge().as_base64url())
                .append_pair("code_challenge_method", S256);
            match self.config.flavor {
                UpstreamFlavor::Google => {
                    query
                        .append_pair("access_type", "online")
                        .append_pair("prompt", "select_account");
                    if request.force_login {
                        query.append_pair("max_age", "0");
                    }
                    if let [domain] = self.config.hosted_domains.as_slice() {
                        query.append_pair("hd", domain);
                    }
                }
                UpstreamFlavor::Generic => {
                    if request.force_login {
                        query.append_pair("prompt", "login");
                    }
                }
            }
            if let Some(hint) = request
                .login_hint
                .as_deref()
                .filter(|h| !h.is_empty() && h.len() <= MAX_CLAIM_BYTES)
            {
                query.append_pair("login_hint", hint);
            }
        }
        let mut location = HeaderValue::from_str(url.as_str())
            .map_err(|_| Refusal::Internal("authorization url"))?;
        // It carries the upstream `state` and `nonce`.
        location.set_sensitive(true);
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::SEE_OTHER;
        let headers = response.headers_mut();
        headers.insert(LOCATION, location);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        Ok(response)
    }

    async fn callback(&self, request: Request<Bytes>, now: u64) -> LoginOutcome {
        // The provider may serve under its issuer's path: match the end of the path.
        if !request.uri().path().ends_with(&self.callback_path) {
            return LoginOutcome::Respond(html::error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here.",
            ));
        }
        if request.method() != Method::GET {
            return LoginOutcome::Respond(html::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "The sign-in callback only accepts GET.",
            ));
        }
        match self.finish_login(&request, now).await {
            Ok((transaction, user)) => {
                audit::record(&AuditEvent::LoginSucceeded {
                    method: &self.name,
                    subject: user.subject.as_str(),
                });
                LoginOutcome::Authenticated { transaction, user }
            }
            Err(refusal) => LoginOutcome::Respond(self.refuse(&refusal)),
        }
    }

    async fn finish_login(
        &self,
        request: &Request<Bytes>,
        now: u64,
    ) -> Result<(TransactionId, AuthenticatedUser), Refusal> {
        let query = request.uri().query().unwrap_or_default();
        let params = Params::parse(query.as_bytes()).ok_or(Refusal::BadRequest)?;
        let state = params.get("state").ok_or(Refusal::UnknownState)?;
        let key = params::store_key(&self.name, "state", state);
        let stored = self
            .store
            .take(&key, now)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?
            .ok_or(Refusal::UnknownState)?;
        let pending: PendingLogin = params::decode(stored).ok_or(Refusal::UnknownState)?;
        // The store expires entries; this also holds if a store keeps them too long.
        if now
            > pending
                .created
                .saturating_add(self.config.state_ttl.as_secs())
        {
            return Err(Refusal::UnknownState);
        }
        let transaction =
            TransactionId::parse(&pending.transaction).ok_or(Refusal::UnknownState)?;

        // RFC 9207: the response names the issuer that sent it (exact comparison).
        match params.get("iss") {
            Some(iss) if iss != self.config.issuer.as_str() => return Err(Refusal::IssuerMismatch),
            None if self.metadata.iss_parameter_supported => return Err(Refusal::IssuerMismatch),
            _ => {}
        }
        if params.get("error").is_some() {
            return Err(Refusal::UpstreamDenied);
        }
        let code = params.get("code").ok_or(Refusal::MissingCode)?;
        let verifier = CodeVerifier::parse(&pending.verifier).map_err(|_| Refusal::UnknownState)?;
        let id_token = self.redeem(code, &verifier).await?;
        let verified = self
            .verifier
            .verify::<IdTokenClaims>(&id_token)
            .await
            .map_err(|e| Refusal::InvalidIdToken(e.kind().label()))?;
        let claims = verified.claims();

        let nonce_ok: bool = claims
            .nonce
            .as_deref()
            .is_some_and(|n| bool::from(n.as_bytes().ct_eq(pending.nonce.as_bytes())));
        if !nonce_ok {
            return Err(Refusal::NonceMismatch);
        }
        if claims
            .azp
            .as_deref()
            .is_some_and(|azp| azp != self.config.client_id)
        {
            return Err(Refusal::InvalidIdToken("azp"));
        }
        if let Audience::Many(audiences) = &claims.aud
            && audiences.iter().any(|a| *a != self.config.client_id)
        {
            return Err(Refusal::InvalidIdToken("untrusted_audience"));
        }
        if claims.sub.is_empty() || claims.sub.len() > MAX_CLAIM_BYTES {
            return Err(Refusal::InvalidIdToken("sub"));
        }
        let user = self.admit(claims, now)?;
        Ok((transaction, user))
    }

    /// Redeems `code` at the token endpoint and returns the ID token. The access token
    /// in the response is never read.
    async fn redeem(
        &self,
        code: &str,
        verifier: &CodeVerifier,
    ) -> Result<Zeroizing<String>, Refusal> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.callback_url.as_str()),
            ("code_verifier", verifier.secret()),
        ];
        let secret = self.config.client_secret.expose_secret();
        let basic = match self.token_auth {
            TokenAuth::Basic => Some((self.config.client_id.as_str(), secret)),
            TokenAuth::Post => {
                form.push(("client_id", self.config.client_id.as_str()));
                form.push(("client_secret", secret));
                None
            }
        };
        let response = self
            .outbound
            .post_form(&self.metadata.token_endpoint, &form, basic)
            .await
            .map_err(Refusal::Outbound)?;
        if response.status != StatusCode::OK {
            #[derive(Deserialize)]
            struct ErrorBody {
                error: Option<String>,
            }
            let error = serde_json::from_slice::<ErrorBody>(&response.body)
                .ok()
                .and_then(|b| b.error)
                .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic()))
                .unwrap_or_default();
            tracing::info!(
                method = %self.name,
                status = response.status.as_u16(),
                error,
                "upstream token endpoint refused the code"
            );
            return Err(Refusal::TokenEndpoint);
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&response.body).map_err(|_| Refusal::TokenEndpoint)?;
        Ok(Zeroizing::new(
            parsed.id_token.ok_or(Refusal::TokenEndpoint)?,
        ))
    }

    /// Applies the admission rules to verified claims and builds the user.
    fn admit(&self, claims: &IdTokenClaims, now: u64) -> Result<AuthenticatedUser, Refusal> {
        let config = &self.config;
        let email = claims.email.as_deref().filter(|e| {
            e.len() <= MAX_CLAIM_BYTES && e.contains('@') && !e.chars().any(char::is_control)
        });
        let email_verified = email.is_some() && claims.email_verified == Some(EmailVerified(true));

        if !config.hosted_domains.is_empty() {
            let hd = claims.hd.as_deref().map(str::to_ascii_lowercase);
            if !hd.is_some_and(|hd| config.hosted_domains.contains(&hd)) {
                return Err(Refusal::HostedDomainMismatch);
            }
        }
        if config.has_email_rule() {
            let Some(email) = email.filter(|_| email_verified) else {
                return Err(Refusal::EmailNotVerified);
            };
            if !config.email_allowed(email) {
                return Err(Refusal::EmailNotAllowed);
            }
        }

        let issuer =
            if claims.iss == GOOGLE_LEGACY_ISSUER && config.flavor == UpstreamFlavor::Google {
                config.issuer.as_str()
            } else {
                claims.iss.as_str()
            };
        let subject = federated_subject(issuer, &claims.sub);
        let auth_time = claims
            .auth_time
            .filter(|t| *t <= now && *t > 0)
            .unwrap_or(now);
        let mut user = AuthenticatedUser::new(
            subject,
            auth_time,
            LoginMethod::Upstream {
                issuer: claims.iss.clone(),
            },
        );
        if email_verified {
            user.email = email.map(str::to_owned);
            user.email_verified = true;
        }
        user.name = claims
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| {
                !n.is_empty() && n.len() <= MAX_CLAIM_BYTES && !n.chars().any(char::is_control)
            })
            .map(str::to_owned);
        Ok(user)
    }

    fn refuse(&self, refusal: &Refusal) -> Response<Bytes> {
        let reason = refusal.reason();
        if let Refusal::InvalidIdToken(detail) = refusal {
            tracing::info!(method = %self.name, detail, "upstream id token refused");
        }
        if let Refusal::Internal(what) = refusal {
            tracing::error!(method = %self.name, what, "upstream login failed internally");
        }
        if let Refusal::Outbound(error) = refusal {
            tracing::warn!(method = %self.name, %error, "upstream token request failed");
        }
        audit::record(&AuditEvent::LoginRefused {
            method: &self.name,
            reason,
        });
        let (status, title, message) = match refusal {
            Refusal::UnknownState | Refusal::BadRequest => (
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in link has expired or was already used. Go back to the application and start again.",
            ),
            Refusal::UpstreamDenied => (
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "The sign-in was cancelled or refused. Go back to the application to try again.",
            ),
            Refusal::EmailNotVerified => (
                StatusCode::FORBIDDEN,
                "Email not verified",
                "This account's email address is not verified, so it cannot be used to sign in here.",
            ),
            Refusal::HostedDomainMismatch | Refusal::EmailNotAllowed => (
                StatusCode::FORBIDDEN,
                "Account not allowed",
                "This account is not allowed to sign in here. Try another account.",
            ),
            Refusal::IssuerMismatch | Refusal::NonceMismatch | Refusal::MissingCode => (
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The sign-in response could not be accepted. Go back to the application and start again.",
            ),
            Refusal::TokenEndpoint | Refusal::Outbound(_) | Refusal::InvalidIdToken(_) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                "The identity provider's answer could not be accepted. Go back to the application and start again.",
            ),
            Refusal::StoreUnavailable | Refusal::Internal(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Sign-in is temporarily unavailable. Try again in a moment.",
            ),
        };
        html::error_page(status, title, message)
    }
}

fn check_config(config: &UpstreamConfig) -> Result<(), UpstreamError> {
    let name = config.name();
    let name_ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(UpstreamError::Config(
            "name must be 1 to 32 characters of [a-z0-9-]".into(),
        ));
    }
    if name == "password" {
        return Err(UpstreamError::Config(
            "name \"password\" belongs to the password login".into(),
        ));
    }
    if config.client_id.is_empty() || config.client_secret.expose_secret().is_empty() {
        return Err(UpstreamError::Config(
            "client_id and client_secret are required".into(),
        ));
    }
    if !config.has_restriction() && !config.allow_any_user {
        return Err(UpstreamError::Config(
            "no rule restricts who may log in: set hosted domains, allowed emails or allowed email domains, or allow any user explicitly".into(),
        ));
    }
    if config.state_ttl.is_zero() {
        return Err(UpstreamError::Config("state ttl must be positive".into()));
    }
    Ok(())
}

impl Authenticator for Upstream {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn path_prefix(&self) -> &str {
        &self.path_prefix
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
        if !self.config.has_email_rule() {
            return None;
        }
        Some(
            email
                .as_deref()
                .is_some_and(|e| self.config.email_allowed(e)),
        )
    }
}

/// What [`Upstream`] keeps in the state store between `start` and the callback. The
/// nonce and verifier are zeroed on drop.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    #[serde(rename = "t")]
    transaction: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "v")]
    verifier: String,
    #[serde(rename = "c")]
    created: u64,
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        self.nonce.zeroize();
        self.verifier.zeroize();
    }
}

/// The ID token claims this login reads.
#[derive(Deserialize)]
struct IdTokenClaims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<EmailVerified>,
    #[serde(default)]
    hd: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    auth_time: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(#[allow(dead_code)] String),
    Many(Vec<String>),
}

/// `email_verified`: a JSON boolean, or the strings `"true"`/`"false"` some providers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EmailVerified(bool);

impl<'de> Deserialize<'de> for EmailVerified {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        Ok(EmailVerified(match Raw::deserialize(deserializer)? {
            Raw::Bool(b) => b,
            Raw::Text(t) => t == "true",
        }))
    }
}

/// Why a login did not complete.
#[derive(Debug)]
enum Refusal {
    BadRequest,
    UnknownState,
    IssuerMismatch,
    UpstreamDenied,
    MissingCode,
    TokenEndpoint,
    Outbound(OutboundError),
    InvalidIdToken(&'static str),
    NonceMismatch,
    EmailNotVerified,
    HostedDomainMismatch,
    EmailNotAllowed,
    StoreUnavailable,
    Internal(&'static str),
}

impl Refusal {
    /// The audit reason.
    fn reason(&self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::UnknownState => "unknown_state",
            Refusal::IssuerMismatch => "issuer_mismatch",
            Refusal::UpstreamDenied => "upstream_error",
            Refusal::MissingCode => "missing_code",
            Refusal::TokenEndpoint | Refusal::Outbound(_) => "token_exchange_failed",
            Refusal::InvalidIdToken(_) => "invalid_id_token",
            Refusal::NonceMismatch => "nonce_mismatch",
            Refusal::EmailNotVerified => "email_not_verified",
            Refusal::HostedDomainMismatch => "hosted_domain_mismatch",
            Refusal::EmailNotAllowed => "email_not_allowed",
            Refusal::StoreUnavailable => "state_store_unavailable",
            Refusal::Internal(_) => "internal_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Issuer {
        Issuer::parse("https://auth.example.com").unwrap()
    }

    #[test]
    fn google_defaults() {
        let config = UpstreamConfig::google("id", ClientSecret::new("s"), &ours());
        assert_eq!(config.issuer().as_str(), GOOGLE_ISSUER);
        assert_eq!(config.name(), "google");
        assert_eq!(config.flavor, UpstreamFlavor::Google);
        assert_eq!(config.scopes.as_str(), "openid email profile");
        assert_eq!(
            config.callback_url(),
            "https://auth.example.com/login/google/callback"
        );
        assert!(!config.has_restriction());
        assert!(check_config(&config).is_err(), "unrestricted by default");
        assert!(check_config(&config.allow_any_user(true)).is_ok());
    }

    #[test]
    fn generic_names_and_paths() {
        let issuer = Issuer::parse("https://login.example.org").unwrap();
        let config = UpstreamConfig::new(issuer, "id", ClientSecret::new("s"), &ours())
            .allowed_email_domains(["@Example.org"]);
        assert_eq!(config.name(), "oidc");
        assert_eq!(config.label(), "Sign in with login.example.org");
        assert_eq!(config.allowed_email_domains, ["example.org"]);
        assert_eq!(config.path_prefix(), "/login/oidc");
        let renamed = config.with_name("corp");
        assert_eq!(
            renamed.callback_url(),
            "https://auth.example.com/login/corp/callback"
        );
        assert!(check_config(&renamed).is_ok());
        for bad in ["", "Corp", "a/b", "password"] {
            let issuer = Issuer::parse("https://login.example.org").unwrap();
            let config = UpstreamConfig::new(issuer, "id", ClientSecret::new("s"), &ours())
                .allow_any_user(true)
                .with_name(bad);
            assert!(check_config(&config).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_always_include_openid() {
        let config = UpstreamConfig::google("id", ClientSecret::new("s"), &ours())
            .scopes(Scope::parse("email").unwrap());
        assert_eq!(config.scopes.as_str(), "openid email");
    }

    #[test]
    fn client_secret_is_redacted() {
        let config = UpstreamConfig::google("id", ClientSecret::new("GOCSPX-very-secret"), &ours());
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"));
        assert!(debug.contains("ClientSecret(<redacted>)"));
    }

    #[test]
    fn metadata_checks() {
        let issuer = Issuer::parse("https://idp.example").unwrap();
        let doc = |extra: serde_json::Value| {
            let mut base = serde_json::json!({
                "issuer": "https://idp.example",
                "authorization_endpoint": "https://idp.example/authorize",
                "token_endpoint": "https://idp.example/token",
                "jwks_uri": "https://idp.example/jwks",
            });
            for (k, v) in extra.as_object().unwrap() {
                base[k] = v.clone();
            }
            UpstreamMetadata::from_json(&issuer, base.to_string().as_bytes())
        };
        let metadata = doc(serde_json::json!({})).unwrap();
        assert_eq!(
            metadata.token_endpoint_auth_methods,
            ["client_secret_basic"]
        );
        assert!(!metadata.iss_parameter_supported);
        assert!(doc(serde_json::json!({"issuer": "https://idp.example/"})).is_err());
        assert!(doc(serde_json::json!({"token_endpoint": "http://idp.example/token"})).is_err());
        assert!(doc(serde_json::json!({"code_challenge_methods_supported": ["plain"]})).is_err());
        assert!(
            doc(serde_json::json!({"authorization_response_iss_parameter_supported": true}))
                .unwrap()
                .iss_parameter_supported
        );
    }

    #[test]
    fn id_token_algorithms_follow_the_metadata() {
        let algs = |list: &[&str]| {
            id_token_algorithms(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(algs(&[]), Some(vec![Algorithm::RS256]));
        assert_eq!(algs(&["RS256"]), Some(vec![Algorithm::RS256]));
        assert_eq!(
            algs(&["RS256", "ES256"]),
            Some(vec![Algorithm::RS256, Algorithm::ES256])
        );
        assert_eq!(algs(&["HS256", "none"]), None);
    }

    #[test]
    fn login_methods_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Upstream>();
        assert_send_sync::<UpstreamConfig>();
        assert_send_sync::<OutboundClient>();
    }

    #[test]
    fn email_verified_accepts_bool_and_string() {
        let parse = |v: &str| serde_json::from_str::<EmailVerified>(v).unwrap();
        assert_eq!(parse("true"), EmailVerified(true));
        assert_eq!(parse("false"), EmailVerified(false));
        assert_eq!(parse("\"true\""), EmailVerified(true));
        assert_eq!(parse("\"yes\""), EmailVerified(false));
    }
}
