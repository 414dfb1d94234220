//! [`ProviderConfig`]: everything the provider needs to know before it starts.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, ClientAuthMethod, ClientKind};
use crate::keys::{KeyGenerator, KeySize, RotationPolicy};
use crate::redirect::RedirectUri;
use crate::secret::SecretHash;
use crate::types::{ClientId, Issuer, ResourceIndicator, Scope};

use super::cors::CorsPolicy;
use super::errors::ProviderError;
use super::rate_limit::RateLimit;

/// The scopes every provider supports, besides the configured ones.
pub const STANDARD_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The provider's configuration.
///
/// Start from [`ProviderConfig::new`], which sets safe defaults, and change fields or use
/// the `with_*` methods. [`Provider`](super::Provider) checks the whole configuration
/// when it is built.
///
/// ```
/// use oidc_core::provider::{ProviderConfig, ScopeDefinition, StaticClient};
/// use oidc_core::redirect::RedirectUri;
/// use oidc_core::types::{ClientId, Issuer, ResourceIndicator};
///
/// let config = ProviderConfig::new(
///     Issuer::parse("https://auth.example.com")?,
///     ResourceIndicator::parse("https://mcp.example.com/mcp")?,
/// )
/// .with_scope(ScopeDefinition::new("memories:read", "Read your memories")?)
/// .with_scope(ScopeDefinition::new("memories:write", "Add and change your memories")?)
/// .with_static_client(StaticClient::public(
///     ClientId::parse("cli")?,
///     "Command-line tool",
///     vec![RedirectUri::parse("http://127.0.0.1/callback")?],
/// ));
/// assert!(config.validate().is_ok());
/// assert_eq!(config.lifetimes.code.as_secs(), 60);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub struct ProviderConfig {
    /// The issuer identifier; every endpoint lives under it.
    pub issuer: Issuer,
    /// The audience of access tokens when the request names no `resource`; always
    /// allowed.
    pub default_audience: ResourceIndicator,
    /// Further resources clients may name with `resource` (RFC 8707); anything else is
    /// `invalid_target`.
    pub resources: Vec<ResourceIndicator>,
    /// Scopes beside [`STANDARD_SCOPES`], with the words the consent page shows.
    pub scopes: Vec<ScopeDefinition>,
    /// The scope granted when a request names none. `None` means `openid` plus every
    /// configured scope.
    pub default_scope: Option<Scope>,
    /// Token and code lifetimes.
    pub lifetimes: Lifetimes,
    /// Clients from configuration.
    pub static_clients: Vec<StaticClient>,
    /// Dynamic Client Registration (RFC 7591) at `/register`.
    pub registration: RegistrationPolicy,
    /// Whether clients may use an https URL as `client_id` (OAuth Client ID Metadata
    /// Documents). Needs a resolver given to the builder.
    pub metadata_documents: bool,
    /// When signing keys rotate.
    pub rotation: RotationPolicy,
    /// Makes new signing keys (RSA 2048 by default).
    pub key_generator: Arc<dyn KeyGenerator + Send + Sync>,
    /// Which browser origins may call the CORS-enabled endpoints.
    pub cors: CorsPolicy,
    /// Per-client-IP rate limits.
    pub rate_limits: RateLimits,
    /// Largest request body read, in bytes (forms and JSON).
    pub max_body_bytes: usize,
    /// Key rotation and purging of expired rows.
    pub maintenance: Maintenance,
}

impl ProviderConfig {
    /// The defaults: access and ID tokens 1 h, codes 60 s, refresh tokens 30 days idle and
    /// 90 days absolute, pending authorizations 10 min; DCR on (10 registrations per
    /// minute per IP); metadata documents on; default key rotation; CORS for ChatGPT and
    /// loopback origins; 64 KiB bodies; background maintenance every minute.
    pub fn new(issuer: Issuer, default_audience: ResourceIndicator) -> ProviderConfig {
        ProviderConfig {
            issuer,
            default_audience,
            resources: Vec::new(),
            scopes: Vec::new(),
            default_scope: None,
            lifetimes: Lifetimes::default(),
            static_clients: Vec::new(),
            registration: RegistrationPolicy::default(),
            metadata_documents: true,
            rotation: RotationPolicy::default(),
            key_generator: Arc::new(KeySize::Rsa2048),
            cors: CorsPolicy::default(),
            rate_limits: RateLimits::default(),
            max_body_bytes: 64 * 1024,
            maintenance: Maintenance::default(),
        }
    }

    /// Adds a resource clients may name.
    #[must_use]
    pub fn with_resource(mut self, resource: ResourceIndicator) -> Self {
        self.resources.push(resource);
        self
    }

    /// Adds a scope.
    #[must_use]
    pub fn with_scope(mut self, scope: ScopeDefinition) -> Self {
        self.scopes.push(scope);
        self
    }

    /// Adds a static client.
    #[must_use]
    pub fn with_static_client(mut self, client: StaticClient) -> Self {
        self.static_clients.push(client);
        self
    }

    /// Every scope the provider supports: [`STANDARD_SCOPES`], then the configured ones.
    pub fn supported_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = STANDARD_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        for scope in &self.scopes {
            if !scopes.iter().any(|s| s == scope.name()) {
                scopes.push(scope.name().to_owned());
            }
        }
        scopes
    }

    /// Whether `resource` may be requested: the default audience or a configured resource.
    pub fn allows_resource(&self, resource: &ResourceIndicator) -> bool {
        *resource == self.default_audience || self.resources.contains(resource)
    }

    /// The scope granted when a request names none.
    pub fn effective_default_scope(&self) -> Scope {
        if let Some(scope) = &self.default_scope {
            return scope.clone();
        }
        let tokens = std::iter::once("openid").chain(self.scopes.iter().map(ScopeDefinition::name));
        // `openid` and validated scope names always form a valid scope.
        Scope::from_tokens(tokens).unwrap_or_else(|_| {
            Scope::parse("openid").unwrap_or_else(|_| unreachable!("openid is a valid scope"))
        })
    }

    /// Checks the configuration as a whole.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidConfig`] naming the first problem found.
    pub fn validate(&self) -> Result<(), ProviderError> {
        let invalid = |reason: &'static str| Err(ProviderError::InvalidConfig(reason));
        let l = &self.lifetimes;
        if l.code.is_zero() || l.code > Lifetimes::MAX_CODE {
            return invalid("the code lifetime must be between 1 and 60 seconds");
        }
        if l.access.is_zero() || l.id_token.is_zero() || l.pending.is_zero() {
            return invalid("token and pending lifetimes must not be zero");
        }
        if l.refresh_idle.is_zero() || l.refresh_idle > l.refresh_absolute {
            return invalid(
                "the refresh idle lifetime must be between 1 s and the absolute lifetime",
            );
        }
        self.rotation
            .validate()
            .map_err(|_| ProviderError::InvalidConfig("invalid key rotation policy"))?;
        let longest = l.access.max(l.id_token);
        if self.rotation.retain_after_retire() < longest + self.rotation.jwks_max_age() {
            return invalid(
                "retired keys must stay published for the longest token lifetime plus the jwks max-age",
            );
        }
        if self.max_body_bytes < 1024 {
            return invalid("the body limit must be at least 1 KiB");
        }
        let supported = self.supported_scopes();
        if let Some(scope) = &self.default_scope
            && !scope.iter().all(|t| supported.iter().any(|s| s == t))
        {
            return invalid("the default scope names an unsupported scope");
        }
        let mut ids = HashSet::new();
        for client in &self.static_clients {
            if !ids.insert(client.client.client_id.clone()) {
                return invalid("two static clients share a client id");
            }
            if client.client.redirect_uris.is_empty() {
                return invalid("a static client has no redirect uri");
            }
        }
        if self.registration.max_redirect_uris == 0 {
            return invalid("dynamic registration must allow at least one redirect uri");
        }
        Ok(())
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("issuer", &self.issuer)
            .field("default_audience", &self.default_audience)
            .field("resources", &self.resources)
            .field("scopes", &self.scopes)
            .field("default_scope", &self.default_scope)
            .field("lifetimes", &self.lifetimes)
            .field("static_clients", &self.static_clients)
            .field("registration", &self.registration)
            .field("metadata_documents", &self.metadata_documents)
            .field("rotation", &self.rotation)
            .field("cors", &self.cors)
            .field("rate_limits", &self.rate_limits)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("maintenance", &self.maintenance)
            .finish_non_exhaustive()
    }
}

/// A scope beside the standard ones, with the words the consent page shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDefinition {
    name: String,
    description: String,
}

impl ScopeDefinition {
    /// A scope `name` (one valid scope token) described as `description`.
    ///
    /// ```
    /// use oidc_core::provider::ScopeDefinition;
    ///
    /// assert!(ScopeDefinition::new("memories:read", "Read your memories").is_ok());
    /// assert!(ScopeDefinition::new("two words", "…").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidConfig`] if `name` is not a single scope token.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Result<ScopeDefinition, ProviderError> {
        let name = name.into();
        if name.contains(' ') || Scope::parse(&name).is_err() {
            return Err(ProviderError::InvalidConfig("invalid scope name"));
        }
        Ok(ScopeDefinition {
            name,
            description: description.into(),
        })
    }

    /// The scope token.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The consent page's words for it.
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// How long codes, tokens and pending authorizations live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lifetimes {
    /// Access tokens (default 1 h).
    pub access: Duration,
    /// ID tokens (default 1 h).
    pub id_token: Duration,
    /// Authorization codes (default and maximum 60 s).
    pub code: Duration,
    /// A refresh token not used for this long expires (default 30 days).
    pub refresh_idle: Duration,
    /// No refresh token of a grant outlives this (default 90 days).
    pub refresh_absolute: Duration,
    /// A pending authorization (login and consent) expires after this (default 10 min).
    pub pending: Duration,
}

impl Lifetimes {
    /// The longest code lifetime accepted.
    pub const MAX_CODE: Duration = Duration::from_secs(60);
}

impl Default for Lifetimes {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Lifetimes {
            access: Duration::from_secs(3600),
            id_token: Duration::from_secs(3600),
            code: Duration::from_secs(60),
            refresh_idle: Duration::from_secs(30 * DAY),
            refresh_absolute: Duration::from_secs(90 * DAY),
            pending: Duration::from_secs(600),
        }
    }
}

/// Dynamic Client Registration settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationPolicy {
    /// Whether `/register` exists (and is advertised).
    pub enabled: bool,
    /// Most redirect URIs one registration may carry.
    pub max_redirect_uris: usize,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        RegistrationPolicy {
            enabled: true,
            max_redirect_uris: 10,
        }
    }
}

/// Rate limits per client IP address (IPv6 addresses are grouped by /64). `None` turns a
/// limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// `/authorize` (default: bursts of 30, 30 per minute).
    pub authorize: Option<RateLimit>,
    /// `/token`, `/revoke`, `/introspect` (default: bursts of 60, 60 per minute).
    pub token: Option<RateLimit>,
    /// `/register` (default: bursts of 10, 10 per minute).
    pub register: Option<RateLimit>,
    /// Login method paths, the login chooser and `/consent` (default: bursts of 30, 30 per
    /// minute).
    pub login: Option<RateLimit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            authorize: Some(RateLimit::new(30, 30)),
            token: Some(RateLimit::new(60, 60)),
            register: Some(RateLimit::new(10, 10)),
            login: Some(RateLimit::new(30, 30)),
        }
    }
}

impl RateLimits {
    /// Every limit off (tests, or a rate-limiting proxy in front).
    pub fn unlimited() -> RateLimits {
        RateLimits {
            authorize: None,
            token: None,
            register: None,
            login: None,
        }
    }
}

/// Background maintenance: key rotation and purging of expired rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Maintenance {
    /// Whether the provider spawns a Tokio task that runs
    /// [`Provider::run_maintenance`](super::Provider::run_maintenance) on a schedule
    /// (default on). Turn it off to drive maintenance yourself, e.g. on a virtual clock.
    pub background: bool,
    /// The longest wait between two runs (default 60 s); runs also happen when a key is
    /// due.
    pub interval: Duration,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            background: true,
            interval: Duration::from_secs(60),
        }
    }
}

/// A client from configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticClient {
    pub(crate) client: Client,
}

impl StaticClient {
    /// A public client (`token_endpoint_auth_method=none`, PKCE only) that may use refresh
    /// tokens.
    ///
    /// ```
    /// use oidc_core::client::ClientAuthMethod;
    /// use oidc_core::provider::StaticClient;
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::types::ClientId;
    ///
    /// let cli = StaticClient::public(
    ///     ClientId::parse("cli")?,
    ///     "Command-line tool",
    ///     vec![RedirectUri::parse("http://127.0.0.1/callback")?],
    /// );
    /// assert_eq!(cli.client().auth_method, ClientAuthMethod::None);
    /// assert!(cli.client().refresh_tokens);
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn public(
        client_id: ClientId,
        name: impl Into<String>,
        redirect_uris: Vec<RedirectUri>,
    ) -> StaticClient {
        StaticClient {
            client: Client {
                client_id,
                name: name.into(),
                redirect_uris,
                auth_method: ClientAuthMethod::None,
                secret_hash: None,
                refresh_tokens: true,
                kind: ClientKind::Static,
                created_at: 0,
            },
        }
    }

    /// A confidential client authenticating with the secret whose hash is `secret_hash`
    /// (`client_secret_basic` or `client_secret_post`; either is accepted at the token
    /// endpoint) that may use refresh tokens.
    ///
    /// ```
    /// use oidc_core::provider::StaticClient;
    /// use oidc_core::redirect::RedirectUri;
    /// use oidc_core::secret::SecretHash;
    /// use oidc_core::types::ClientId;
    ///
    /// let web = StaticClient::confidential(
    ///     ClientId::parse("web")?,
    ///     "Web app",
    ///     vec![RedirectUri::parse("https://app.example/callback")?],
    ///     SecretHash::of("a long random secret"),
    /// )
    /// .with_refresh_tokens(false);
    /// assert!(web.client().secret_hash.is_some());
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn confidential(
        client_id: ClientId,
        name: impl Into<String>,
        redirect_uris: Vec<RedirectUri>,
        secret_hash: SecretHash,
    ) -> StaticClient {
        StaticClient {
            client: Client {
                client_id,
                name: name.into(),
                redirect_uris,
                auth_method: ClientAuthMethod::ClientSecretBasic,
                secret_hash: Some(secret_hash),
                refresh_tokens: true,
                kind: ClientKind::Static,
                created_at: 0,
            },
        }
    }

    /// Sets whether the client gets refresh tokens.
    #[must_use]
    pub fn with_refresh_tokens(mut self, allowed: bool) -> Self {
        self.client.refresh_tokens = allowed;
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client.client_id
    }

    /// The client as the provider sees it.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl fmt::Debug for StaticClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.client.fmt(f)
    }
}
