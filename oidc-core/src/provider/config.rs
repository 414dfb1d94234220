//! [`ProviderConfig`]: everything the provider needs to know before it starts.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::InvalidValue;
use crate::keys::{KeyGenerator, KeySize, RotationPolicy};
use crate::secret::SecretHash;
use crate::types::{Issuer, ResourceIndicator, Scope};

use super::cors::CorsPolicy;
use super::errors::ProviderError;
use super::rate_limit::RateLimit;
use super::static_client::StaticClient;

/// The scopes every provider supports, besides the configured ones.
pub const STANDARD_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The provider's configuration.
///
/// Start from [`ProviderConfig::new`], which sets safe defaults, and change fields or use
/// the `with_*` methods. [`Provider`](super::Provider) checks the whole configuration
/// when it is built.
///
/// ```
/// use oidc_core::provider::{ProviderConfig, ResourceScopes, ScopeDefinition, StaticClient};
/// use oidc_core::redirect::RedirectUri;
/// use oidc_core::types::{ClientId, Issuer, ResourceIndicator};
///
/// let config = ProviderConfig::new(
///     Issuer::parse("https://auth.example.com")?,
///     ResourceIndicator::parse("https://mcp.example.com/mcp")?,
/// )
/// .with_scope(ScopeDefinition::new("memories:read", "Read your memories")?)
/// .with_scope(ScopeDefinition::new("memories:write", "Add and change your memories")?)
/// .with_resource_scopes(ResourceScopes::parse(
///     "https://mcp.example.com/mcp=memories:read memories:write",
/// )?)
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
    /// Each resource's own scopes, granted by default to a request for the resource that
    /// names none of them (see [`ProviderConfig::scope_for_resources`]). A resource not
    /// listed has no default scopes. None by default.
    pub resource_scopes: Vec<ResourceScopes>,
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
    /// The SHA-256 of the operator token that unlocks the details of `/health` (signing
    /// kid, published keys, next rotation, store state) with `Authorization: Bearer`.
    /// Without one (the default), `/health` answers only its status. Compared in constant
    /// time; the token itself is never kept.
    pub health_token: Option<SecretHash>,
    /// Token status lists: the `status` claim of access tokens and the Status List Token
    /// endpoint, so revocations reach resource servers that verify offline.
    pub status_lists: StatusListPolicy,
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
            resource_scopes: Vec::new(),
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
            health_token: None,
            status_lists: StatusListPolicy::default(),
        }
    }

    /// Sets the access token lifetime, and keeps retired signing keys published long
    /// enough for it: [`rotation`](Self::rotation)'s retention grows to the longest token
    /// lifetime plus the JWKS max-age plus [`RotationPolicy::RETAIN_MARGIN`] when it is
    /// shorter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oidc_core::provider::ProviderConfig;
    /// use oidc_core::types::{Issuer, ResourceIndicator};
    ///
    /// let config = ProviderConfig::new(
    ///     Issuer::parse("https://auth.example.com")?,
    ///     ResourceIndicator::parse("https://mcp.example.com/mcp")?,
    /// )
    /// .with_access_token_lifetime(Duration::from_secs(12 * 3600));
    /// assert!(config.validate().is_ok());
    /// assert_eq!(config.lifetimes.access.as_secs(), 12 * 3600);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.access = lifetime;
        let needed = lifetime
            .max(self.lifetimes.id_token)
            .saturating_add(self.rotation.jwks_max_age())
            .saturating_add(RotationPolicy::RETAIN_MARGIN);
        if self.rotation.retain_after_retire() < needed {
            self.rotation = self.rotation.with_retain_after_retire(needed);
        }
        self
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

    /// Sets the default scopes of a resource (replacing any set before for it).
    #[must_use]
    pub fn with_resource_scopes(mut self, scopes: ResourceScopes) -> Self {
        self.resource_scopes
            .retain(|existing| existing.resource != scopes.resource);
        self.resource_scopes.push(scopes);
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

    /// The default scopes of `resource`, if it has any.
    pub fn default_scopes_for(&self, resource: &ResourceIndicator) -> Option<&Scope> {
        self.resource_scopes
            .iter()
            .find(|entry| entry.resource == *resource)
            .and_then(|entry| entry.defaults.as_ref())
    }

    /// The scope to grant when a client asks for `requested` in a token for `resources`
    /// (RFC 8707; the default audience when the request names none): Keycloak-style
    /// default client scopes, per resource.
    ///
    /// For each resource, if `requested` names **none** of that resource's own scopes
    /// ([`ResourceScopes`]), all of them are added; if it names any, nothing is added, so a
    /// client asking for `memories:read` alone stays read-only (least privilege). Only a
    /// resource's own scopes count: a scope that belongs to another resource does not
    /// suppress this one's defaults. The result keeps the requested tokens first, in order,
    /// and never drops one. Call it on a scope already checked against the supported ones.
    ///
    /// ```
    /// use oidc_core::provider::{ProviderConfig, ResourceScopes, ScopeDefinition};
    /// use oidc_core::types::{Issuer, ResourceIndicator, Scope};
    ///
    /// let mcp = ResourceIndicator::parse("https://mcp.example.com/mcp")?;
    /// let config = ProviderConfig::new(Issuer::parse("https://auth.example.com")?, mcp.clone())
    ///     .with_scope(ScopeDefinition::new("memories:read", "Read your memories")?)
    ///     .with_scope(ScopeDefinition::new("memories:write", "Change your memories")?)
    ///     .with_resource_scopes(ResourceScopes::parse(
    ///         "https://mcp.example.com/mcp=memories:read memories:write",
    ///     )?);
    /// let seed = Scope::parse("openid email profile")?;
    /// assert_eq!(
    ///     config.scope_for_resources(&seed, &[mcp.clone()])?.as_str(),
    ///     "openid email profile memories:read memories:write"
    /// );
    /// let read = Scope::parse("openid memories:read")?;
    /// assert_eq!(config.scope_for_resources(&read, &[mcp])?, read);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidValue`] if the result would exceed [`Scope::MAX_TOKENS`] or
    /// [`Scope::MAX_LEN`].
    pub fn scope_for_resources(
        &self,
        requested: &Scope,
        resources: &[ResourceIndicator],
    ) -> Result<Scope, InvalidValue> {
        let defaults: Vec<&Scope> = resources
            .iter()
            .filter_map(|resource| self.default_scopes_for(resource))
            .filter(|own| !requested.iter().any(|token| own.contains(token)))
            .collect();
        if defaults.is_empty() {
            return Ok(requested.clone());
        }
        Scope::from_tokens(
            requested
                .iter()
                .chain(defaults.into_iter().flat_map(Scope::iter)),
        )
    }

    /// Checks [`resource_scopes`](ProviderConfig::resource_scopes) (part of
    /// [`validate`](ProviderConfig::validate)): each resource is served (the default
    /// audience or one of [`resources`](ProviderConfig::resources)) and listed once, and
    /// each of its scopes is one of [`scopes`](ProviderConfig::scopes), never a standard
    /// scope (defaulting `offline_access` or `openid` would grant what nobody asked for).
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidConfig`] naming the first problem found.
    pub fn check_resource_scopes(&self) -> Result<(), ProviderError> {
        let invalid = |reason: &'static str| Err(ProviderError::InvalidConfig(reason));
        let mut seen = HashSet::new();
        for entry in &self.resource_scopes {
            if !self.allows_resource(&entry.resource) {
                return invalid(
                    "default scopes are set for a resource this server does not serve \
                     (neither the default audience nor a configured resource)",
                );
            }
            if !seen.insert(&entry.resource) {
                return invalid("default scopes are set twice for one resource");
            }
            let Some(defaults) = &entry.defaults else {
                continue;
            };
            let configured = |token: &str| {
                !STANDARD_SCOPES.contains(&token) && self.scopes.iter().any(|s| s.name() == token)
            };
            if !defaults.iter().all(configured) {
                return invalid(
                    "a resource's default scopes must be configured scopes, \
                     not openid, profile, email or offline_access",
                );
            }
        }
        Ok(())
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
        self.check_resource_scopes()?;
        let mut ids = HashSet::new();
        for client in &self.static_clients {
            if !ids.insert(client.client.client_id.clone()) {
                return invalid("two static clients share a client id");
            }
            if client.client.redirect_uris.is_empty() {
                return invalid("a static client has no redirect uri");
            }
        }
        if self
            .registration
            .unused_client_ttl
            .is_some_and(|ttl| ttl.as_secs() < 60)
        {
            return invalid("unused dynamic clients must be kept at least a minute");
        }
        if self.registration.max_redirect_uris == 0 {
            return invalid("dynamic registration must allow at least one redirect uri");
        }
        self.status_lists.validate()?;
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
            .field("resource_scopes", &self.resource_scopes)
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
            .field("health_token", &self.health_token.is_some())
            .field("status_lists", &self.status_lists)
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

/// One resource's own scopes (RFC 8707), all granted by default: a request for a token
/// for the resource that names none of them gets them all; one that names any gets only
/// what it named. See [`ProviderConfig::scope_for_resources`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScopes {
    resource: ResourceIndicator,
    defaults: Option<Scope>,
}

impl ResourceScopes {
    /// `resource` with the default scopes `defaults`; `None` says explicitly that it has
    /// none.
    ///
    /// ```
    /// use oidc_core::provider::ResourceScopes;
    /// use oidc_core::types::{ResourceIndicator, Scope};
    ///
    /// let entry = ResourceScopes::new(
    ///     ResourceIndicator::parse("https://mcp.example.com/mcp")?,
    ///     Some(Scope::parse("memories:read memories:write")?),
    /// );
    /// assert_eq!(entry.defaults().map(Scope::as_str), Some("memories:read memories:write"));
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn new(resource: ResourceIndicator, defaults: Option<Scope>) -> ResourceScopes {
        ResourceScopes { resource, defaults }
    }

    /// Parses `resource=scope scope…`: a resource indicator, `=`, and its default scopes
    /// separated by whitespace (none: the resource has no default scopes). The first `=`
    /// ends the resource, so a resource with `=` in its query cannot be written this way.
    ///
    /// ```
    /// use oidc_core::provider::ResourceScopes;
    ///
    /// let entry = ResourceScopes::parse(" https://mcp.example.com/mcp = memories:read memories:write ")?;
    /// assert_eq!(entry.resource().as_str(), "https://mcp.example.com/mcp");
    /// assert_eq!(entry.defaults().map(|s| s.len()), Some(2));
    /// assert!(ResourceScopes::parse("https://api.example.com/=")?.defaults().is_none());
    /// assert!(ResourceScopes::parse("https://mcp.example.com/mcp").is_err());
    /// assert!(ResourceScopes::parse("/mcp=memories:read").is_err());
    /// # Ok::<(), oidc_core::provider::ProviderError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidConfig`] if there is no `=`, the resource is not a valid
    /// resource indicator or a scope is not a valid scope token.
    pub fn parse(entry: &str) -> Result<ResourceScopes, ProviderError> {
        let Some((resource, scopes)) = entry.split_once('=') else {
            return Err(ProviderError::InvalidConfig(
                "a resource's default scopes must be written resource=scope scope…",
            ));
        };
        let resource = ResourceIndicator::parse(resource.trim()).map_err(|_| {
            ProviderError::InvalidConfig(
                "the resource of default scopes is not an absolute uri without a fragment",
            )
        })?;
        let mut tokens = scopes.split_whitespace().peekable();
        let defaults = if tokens.peek().is_none() {
            None
        } else {
            Some(Scope::from_tokens(tokens).map_err(|_| {
                ProviderError::InvalidConfig("a resource's default scopes are not valid scopes")
            })?)
        };
        Ok(ResourceScopes { resource, defaults })
    }

    /// The resource.
    pub fn resource(&self) -> &ResourceIndicator {
        &self.resource
    }

    /// Its default scopes, if it has any.
    pub fn defaults(&self) -> Option<&Scope> {
        self.defaults.as_ref()
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

/// Token status lists (draft-ietf-oauth-status-list).
///
/// When enabled (the default), every access token carries
/// `"status": {"status_list": {"idx": …, "uri": "{issuer}/statuslists/{n}"}}`, one entry per
/// grant, and `GET {issuer}/statuslists/{n}` serves the signed Status List Token
/// (`application/statuslist+jwt`) in which every revoked grant's entry is `1`. Resource
/// servers that fetch it every [`ttl`](Self::ttl) honour revocations within seconds
/// instead of at the token's `exp`.
///
/// The Status List Token expires `iat` + the access token lifetime + `ttl`: a verifier
/// that can no longer reach the provider keeps accepting (unrevoked) tokens exactly as
/// long as those tokens could still be valid, and an attacker who blocks its fetches
/// cannot stretch a stale list beyond that either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusListPolicy {
    /// Whether access tokens carry a `status` claim and the lists are served (default
    /// on). Turned off, tokens carry none and the list endpoints answer 404; revocations
    /// are still recorded, so turning it on again serves correct lists.
    pub enabled: bool,
    /// The Status List Token's `ttl` and `Cache-Control: max-age` (default 10 s, 1 s to
    /// 1 h): how stale a resource server's view of revocations may be. The provider
    /// signs a list again when it changed or when its last signature is this old.
    pub ttl: Duration,
    /// Entries of each new list (default 2^20; a multiple of 8, at most 2^24). A list
    /// that is full is followed by a new one; existing lists keep their size.
    pub list_size: u64,
}

impl StatusListPolicy {
    /// The default `ttl`: 10 seconds.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
    /// The longest `ttl` accepted: 1 hour.
    pub const MAX_TTL: Duration = Duration::from_secs(3600);
    /// The default list size: 2^20 entries (128 KiB before compression).
    pub const DEFAULT_LIST_SIZE: u64 = 1 << 20;

    /// Status lists off.
    ///
    /// ```
    /// use oidc_core::provider::StatusListPolicy;
    ///
    /// assert!(!StatusListPolicy::disabled().enabled);
    /// assert!(StatusListPolicy::default().enabled);
    /// ```
    pub fn disabled() -> StatusListPolicy {
        StatusListPolicy {
            enabled: false,
            ..StatusListPolicy::default()
        }
    }

    fn validate(&self) -> Result<(), ProviderError> {
        if self.ttl.is_zero() || self.ttl > Self::MAX_TTL || self.ttl.subsec_nanos() != 0 {
            return Err(ProviderError::InvalidConfig(
                "the status list ttl must be a whole number of seconds from 1 s to 1 h",
            ));
        }
        let size = self.list_size;
        if size == 0 || !size.is_multiple_of(8) || size > crate::status_list::MAX_LIST_SIZE {
            return Err(ProviderError::InvalidConfig(
                "the status list size must be a multiple of 8, at most 2^24",
            ));
        }
        Ok(())
    }
}

impl Default for StatusListPolicy {
    fn default() -> Self {
        StatusListPolicy {
            enabled: true,
            ttl: Self::DEFAULT_TTL,
            list_size: Self::DEFAULT_LIST_SIZE,
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
    /// How long a dynamically registered client may go unused before maintenance deletes
    /// it (default 30 days; `None` keeps clients forever). A client is used when a token
    /// is issued to it (a code redeemed or a refresh token rotated); one with a live
    /// grant (an unexpired access token, or a usable refresh token, under a grant not
    /// revoked) is kept however long ago it was last used.
    pub unused_client_ttl: Option<Duration>,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        RegistrationPolicy {
            enabled: true,
            max_redirect_uris: 10,
            unused_client_ttl: Some(Duration::from_secs(30 * 24 * 3600)),
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
    /// `/token`, `/revoke`, `/introspect` and the account API (default: bursts of 60, 60
    /// per minute).
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

#[cfg(test)]
mod tests;
