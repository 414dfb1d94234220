//! [`Provider`]: construction, routing and the tower `Service` implementation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use http::header::{
    AUTHORIZATION, ORIGIN, REFERRER_POLICY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use serde_json::json;
use tokio::task::JoinHandle;

use super::config::ProviderConfig;
use super::errors::ProviderError;
use super::keys::KeyManager;
use super::rate_limit::{LimitedEndpoint, RateLimiter};
use super::response::{self, HttpResponse};
use super::status_lists::{self, StatusListCache};
use super::{
    UnixClock, account, authorize, consent, cors, introspection, registration, revocation,
    system_clock, token, userinfo,
};
use crate::audit::{self, AuditEvent};
use crate::authn::Authenticator;
use crate::client::{Client, MetadataDocumentError, MetadataDocumentResolver};
use crate::discovery::{self, ProviderMetadata};
use crate::store::{GrantLogin, LiveGrantLogin, ProviderStore, PurgeReport, StoreError};
use crate::types::{ClientId, Scope};

/// The OpenID provider, as a tower `Service` over `http` requests.
///
/// Cheap to clone: clones share everything. Build it with [`Provider::builder`]; see the
/// [module documentation](super) for the routes and the flow.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # use std::sync::Arc;
/// # use oidc_core::authn::Authenticator;
/// # fn login_method() -> Arc<dyn Authenticator> { unimplemented!() }
/// use oidc_core::provider::{Provider, ProviderConfig};
/// use oidc_core::store::SqliteStore;
/// use oidc_core::types::{Issuer, ResourceIndicator};
///
/// let config = ProviderConfig::new(
///     Issuer::parse("https://auth.example.com")?,
///     ResourceIndicator::parse("https://mcp.example.com/mcp")?,
/// );
/// let store = Arc::new(SqliteStore::open("/var/lib/auth/provider.db")?);
/// let provider = Provider::builder(config, store)
///     .authenticator(login_method())
///     .build()
///     .await?;
/// // Serve `provider` with hyper or axum; put the peer `SocketAddr` into the request
/// // extensions so rate limits work per client.
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

/// Builds a [`Provider`].
pub struct ProviderBuilder {
    config: ProviderConfig,
    store: Arc<dyn ProviderStore>,
    authenticators: Vec<Arc<dyn Authenticator>>,
    resolver: Option<Arc<dyn MetadataDocumentResolver>>,
    clock: Option<UnixClock>,
    rng: Option<Arc<dyn SecureRandom + Send + Sync>>,
}

/// What one maintenance run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Expired rows deleted.
    pub purged: PurgeReport,
    /// The key that signs now.
    pub signing_kid: Option<String>,
}

/// The path of the account API's grant list, under the issuer's path.
const ACCOUNT_GRANTS_PATH: &str = "/account/grants";
/// The path of the account API's revocation, under the issuer's path.
const ACCOUNT_REVOKE_PATH: &str = "/account/grants/revoke";

/// The shared state behind every clone of a [`Provider`].
pub(crate) struct Inner {
    pub(crate) config: ProviderConfig,
    pub(crate) store: Arc<dyn ProviderStore>,
    pub(crate) authenticators: Vec<Arc<dyn Authenticator>>,
    resolver: Option<Arc<dyn MetadataDocumentResolver>>,
    pub(crate) clock: UnixClock,
    rng: Arc<dyn SecureRandom + Send + Sync>,
    pub(crate) keys: KeyManager,
    limiter: RateLimiter,
    static_clients: HashMap<ClientId, Client>,
    /// The static clients with access to the account API.
    account_clients: HashSet<ClientId>,
    pub(crate) paths: Paths,
    pub(crate) supported_scopes: Vec<String>,
    /// `scheme://host[:port]` of the issuer, for `Origin` checks.
    pub(crate) issuer_origin: String,
    metadata: ProviderMetadata,
    metadata_json: Bytes,
    /// `Cache-Control` of the discovery document.
    metadata_cache_control: HeaderValue,
    /// `Cache-Control` of the JWK Set.
    jwks_cache_control: HeaderValue,
    /// Signed Status List Tokens.
    pub(crate) status_list_cache: StatusListCache,
    maintenance_task: Mutex<Option<JoinHandle<()>>>,
}

/// The request paths of the endpoints (under the issuer's path).
pub(crate) struct Paths {
    pub(crate) well_known: Vec<String>,
    pub(crate) jwks: String,
    pub(crate) authorize: String,
    pub(crate) select_login: String,
    pub(crate) consent: String,
    pub(crate) token: String,
    pub(crate) userinfo: String,
    pub(crate) revoke: String,
    pub(crate) introspect: String,
    pub(crate) register: String,
    pub(crate) health: String,
    /// The account API: the user's grants, and their revocation.
    pub(crate) account_grants: String,
    pub(crate) account_revoke: String,
    /// The Status List Aggregation; list `n` is at `{status_lists}/{n}`.
    pub(crate) status_lists: String,
    /// `(prefix, authenticator index)`.
    pub(crate) login: Vec<(String, usize)>,
}

/// Why a client could not be looked up.
pub(crate) enum ClientLookupError {
    Store(StoreError),
    MetadataDocument(MetadataDocumentError),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Discovery,
    Jwks,
    Authorize,
    SelectLogin,
    Consent,
    Token,
    Userinfo,
    Revoke,
    Introspect,
    Register,
    Health,
    AccountGrants,
    AccountRevoke,
    StatusListAggregation,
    StatusList(u64),
    Login(usize),
    NotFound,
}

impl Provider {
    /// Starts building a provider from its configuration and store.
    pub fn builder(config: ProviderConfig, store: Arc<dyn ProviderStore>) -> ProviderBuilder {
        ProviderBuilder {
            config,
            store,
            authenticators: Vec::new(),
            resolver: None,
            clock: None,
            rng: None,
        }
    }

    /// Runs maintenance once: picks up keys saved by other replicas, rotates when due
    /// (auditing `KeyRotated`), and purges expired rows. The background task calls this on
    /// schedule; call it yourself when [`Maintenance::background`](super::Maintenance) is
    /// off.
    ///
    /// # Errors
    ///
    /// The store or key generation failed; the next run tries again.
    pub async fn run_maintenance(&self) -> Result<MaintenanceReport, ProviderError> {
        self.inner.run_maintenance().await
    }

    /// The discovery document.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    /// The JWK Set document currently published.
    pub fn jwks(&self) -> Bytes {
        self.inner.keys.jwks()
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.inner.config.issuer)
            .finish_non_exhaustive()
    }
}

impl ProviderBuilder {
    /// Adds a login method. At least one is required; with several, users choose.
    #[must_use]
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticators.push(authenticator);
        self
    }

    /// Sets the resolver of Client ID Metadata Documents. Without one, URL client ids are
    /// not supported (and not advertised) even when the configuration enables them.
    #[must_use]
    pub fn metadata_resolver(mut self, resolver: Arc<dyn MetadataDocumentResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Sets the clock (Unix seconds); the system clock by default.
    #[must_use]
    pub fn clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Sets the random source; [`SystemRandom`] by default.
    #[must_use]
    pub fn rng(mut self, rng: Arc<dyn SecureRandom + Send + Sync>) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Checks the configuration, loads (or creates) the signing keys, revokes the grants
    /// of removed users and, unless turned off, spawns the maintenance task. Must run
    /// inside a Tokio runtime.
    ///
    /// **Removed users lose their grants.** Each grant records how its user signed in
    /// ([`GrantLogin`]). At build, every live grant is checked with
    /// [`Authenticator::still_admits`] of each login method: if one admits the user, the
    /// grant stays; if one refuses and none admits (a local user no longer in the users
    /// file, an upstream email no longer on the allow-list), every live grant of that
    /// subject is revoked, setting its status list entry. A password grant that no
    /// configured method answers for is revoked too (password login was turned off); an
    /// upstream grant no method can judge (no email allow-list) stays. Grants created
    /// before logins were recorded are left alone. Login methods here are configured at
    /// start, so this check at start is where removals take effect.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidConfig`] for a configuration problem (including no login
    /// method or clashing login paths), or a store or key error.
    pub async fn build(self) -> Result<Provider, ProviderError> {
        let ProviderBuilder {
            config,
            store,
            authenticators,
            resolver,
            clock,
            rng,
        } = self;
        config.validate()?;
        if authenticators.is_empty() {
            return Err(ProviderError::InvalidConfig(
                "at least one login method is required",
            ));
        }
        let clock = clock.unwrap_or_else(system_clock);
        let rng = rng.unwrap_or_else(|| Arc::new(SystemRandom::new()));
        let resolver = if config.metadata_documents {
            if resolver.is_none() {
                tracing::warn!(
                    "client metadata documents are enabled but no resolver was given; url client ids are refused"
                );
            }
            resolver
        } else {
            None
        };
        let paths = Paths::new(&config, &authenticators)?;
        let metadata = metadata(&config);
        let metadata_json = Bytes::from(
            metadata
                .clone()
                .with_metadata_documents(resolver.is_some())
                .to_json(),
        );
        let issuer_origin = url::Url::parse(config.issuer.as_str())
            .map(|u| u.origin().ascii_serialization())
            .map_err(|_| ProviderError::InvalidConfig("the issuer has no origin"))?;
        let keys = KeyManager::load(store.as_ref(), &config, Arc::clone(&clock)).await?;
        revoke_grants_of_removed_users(store.as_ref(), &authenticators, clock()).await?;
        let jwks_cache_control = response::public_cache_control(keys.jwks_max_age());
        let static_clients = config
            .static_clients
            .iter()
            .map(|c| (c.client.client_id.clone(), c.client.clone()))
            .collect();
        let account_clients = config
            .static_clients
            .iter()
            .filter(|c| c.has_account_access())
            .map(|c| c.client.client_id.clone())
            .collect();
        let supported_scopes = config.supported_scopes();
        let inner = Arc::new(Inner {
            store,
            authenticators,
            resolver,
            clock,
            rng,
            keys,
            limiter: RateLimiter::new(),
            static_clients,
            account_clients,
            paths,
            supported_scopes,
            issuer_origin,
            metadata,
            metadata_json,
            metadata_cache_control: response::public_cache_control(300),
            jwks_cache_control,
            status_list_cache: StatusListCache::new(config.status_lists.ttl.as_secs()),
            maintenance_task: Mutex::new(None),
            config,
        });
        if inner.config.maintenance.background {
            let task = spawn_maintenance(&inner);
            *inner
                .maintenance_task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
        Ok(Provider { inner })
    }
}

/// See [`ProviderBuilder::build`]: revokes every live grant of the subjects no login
/// method admits any more. Returns how many grants were revoked.
async fn revoke_grants_of_removed_users(
    store: &dyn ProviderStore,
    authenticators: &[Arc<dyn Authenticator>],
    now: u64,
) -> Result<u64, StoreError> {
    let mut removed = BTreeSet::new();
    for LiveGrantLogin { subject, login, .. } in store.live_grant_logins(now).await? {
        if removed.contains(&subject) {
            continue;
        }
        let mut answers = authenticators
            .iter()
            .filter_map(|method| method.still_admits(&subject, &login))
            .peekable();
        let keep = match answers.peek() {
            Some(_) => answers.any(|admitted| admitted),
            // No configured method signs users in this way: password login was turned off.
            None => !matches!(login, GrantLogin::Password),
        };
        if !keep {
            removed.insert(subject);
        }
    }
    let mut revoked = 0;
    for subject in &removed {
        revoked += store.revoke_subject_grants(subject.clone(), now).await?;
    }
    if revoked > 0 {
        tracing::info!(
            users = removed.len(),
            grants = revoked,
            "revoked the grants of users who may no longer sign in"
        );
    }
    Ok(revoked)
}

impl fmt::Debug for ProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderBuilder")
            .field("config", &self.config)
            .field("authenticators", &self.authenticators.len())
            .field("resolver", &self.resolver.is_some())
            .finish_non_exhaustive()
    }
}

/// The discovery document for this configuration.
fn metadata(config: &ProviderConfig) -> ProviderMetadata {
    let mut endpoints = discovery::Endpoints::under_issuer(&config.issuer);
    if !config.registration.enabled {
        endpoints.registration = None;
    }
    if config.status_lists.enabled {
        endpoints = endpoints.with_status_lists(&config.issuer);
    }
    let scopes = config.supported_scopes();
    let metadata = ProviderMetadata::new(&config.issuer, endpoints);
    match Scope::from_tokens(scopes.iter().map(String::as_str)) {
        Ok(scopes) => metadata.with_scopes(&scopes),
        Err(_) => metadata,
    }
}

impl Paths {
    fn new(
        config: &ProviderConfig,
        authenticators: &[Arc<dyn Authenticator>],
    ) -> Result<Paths, ProviderError> {
        let base = config.issuer.path();
        let at = |path: &str| format!("{base}{path}");
        let mut paths = Paths {
            well_known: discovery::well_known_paths(&config.issuer),
            jwks: at(discovery::JWKS_PATH),
            authorize: at(discovery::AUTHORIZATION_PATH),
            select_login: at("/authorize/select"),
            consent: at("/consent"),
            token: at(discovery::TOKEN_PATH),
            userinfo: at(discovery::USERINFO_PATH),
            revoke: at(discovery::REVOCATION_PATH),
            introspect: at(discovery::INTROSPECTION_PATH),
            register: at(discovery::REGISTRATION_PATH),
            health: at("/health"),
            account_grants: at(ACCOUNT_GRANTS_PATH),
            account_revoke: at(ACCOUNT_REVOKE_PATH),
            status_lists: at(crate::status_list::STATUS_LISTS_PATH),
            login: Vec::new(),
        };
        let fixed = [
            &paths.jwks,
            &paths.authorize,
            &paths.select_login,
            &paths.consent,
            &paths.token,
            &paths.userinfo,
            &paths.revoke,
            &paths.introspect,
            &paths.register,
            &paths.health,
            &paths.account_grants,
            &paths.status_lists,
        ];
        for (index, authenticator) in authenticators.iter().enumerate() {
            let prefix = authenticator.path_prefix();
            let valid = prefix.len() > 1
                && prefix.starts_with('/')
                && !prefix.ends_with('/')
                && !prefix.contains(['?', '#', ' ']);
            if !valid {
                return Err(ProviderError::InvalidConfig(
                    "a login path prefix must start with / and not end with /",
                ));
            }
            let full = at(prefix);
            let clashes = fixed.iter().any(|p| under(p, &full) || under(&full, p))
                || paths.well_known.iter().any(|p| under(p, &full))
                || paths
                    .login
                    .iter()
                    .any(|(p, _)| under(p, &full) || under(&full, p));
            if clashes {
                return Err(ProviderError::InvalidConfig(
                    "login path prefixes must not overlap each other or the provider's paths",
                ));
            }
            paths.login.push((full, index));
        }
        Ok(paths)
    }
}

/// Whether `path` is `prefix` or below it (segment-wise).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn spawn_maintenance(inner: &Arc<Inner>) -> JoinHandle<()> {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let longest = inner.config.maintenance.interval.as_secs().max(1);
    tokio::spawn(async move {
        loop {
            let wait = {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let now = (inner.clock)();
                inner
                    .keys
                    .next_due(now)
                    .saturating_sub(now)
                    .clamp(1, longest)
            };
            tokio::time::sleep(Duration::from_secs(wait)).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if let Err(error) = inner.run_maintenance().await {
                tracing::warn!(%error, "provider maintenance failed");
            }
        }
    })
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .maintenance_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Inner {
    pub(crate) fn rng(&self) -> &dyn SecureRandom {
        self.rng.as_ref()
    }

    async fn run_maintenance(&self) -> Result<MaintenanceReport, ProviderError> {
        self.keys.maintain(self.store.as_ref()).await?;
        let now = (self.clock)();
        let mut purged = self.store.purge_expired(now).await?;
        if let Some(ttl) = self.config.registration.unused_client_ttl {
            purged.clients = self
                .store
                .purge_unused_clients(now.saturating_sub(ttl.as_secs()), now)
                .await?;
            if purged.clients > 0 {
                tracing::info!(
                    clients = purged.clients,
                    "deleted unused dynamically registered clients"
                );
            }
        }
        Ok(MaintenanceReport {
            purged,
            signing_kid: self.keys.status(now).signing_kid,
        })
    }

    /// A client from configuration, registration or its metadata document.
    pub(crate) async fn find_client(
        &self,
        client_id: &ClientId,
        now: u64,
    ) -> Result<Option<Client>, ClientLookupError> {
        if let Some(client) = self.static_clients.get(client_id) {
            return Ok(Some(client.clone()));
        }
        if let Some(client) = self
            .store
            .client(client_id)
            .await
            .map_err(ClientLookupError::Store)?
        {
            return Ok(Some(client));
        }
        match &self.resolver {
            Some(resolver) if client_id.is_metadata_document_url() => resolver
                .resolve(client_id, now)
                .await
                .map(Some)
                .map_err(ClientLookupError::MetadataDocument),
            _ => Ok(None),
        }
    }

    /// Whether `client_id` is a static client with access to the account API.
    pub(crate) fn has_account_access(&self, client_id: &ClientId) -> bool {
        self.account_clients.contains(client_id)
    }

    /// A client's name for the user's own pages: the configured or registered name, a
    /// metadata document's name if it is cached (never fetched here), else the client id.
    pub(crate) async fn client_display_name(&self, client_id: &ClientId, now: u64) -> String {
        if let Some(client) = self.static_clients.get(client_id) {
            return client.name.clone();
        }
        match self.store.client(client_id).await {
            Ok(Some(client)) => return client.name,
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "could not read a client's name; showing its id");
            }
        }
        self.resolver
            .as_ref()
            .filter(|_| client_id.is_metadata_document_url())
            .and_then(|resolver| resolver.cached_client(client_id, now))
            .map_or_else(|| client_id.as_str().to_owned(), |client| client.name)
    }

    fn route(&self, path: &str) -> Route {
        let p = &self.paths;
        if p.well_known.iter().any(|w| w == path) {
            return Route::Discovery;
        }
        let fixed = [
            (&p.jwks, Route::Jwks),
            (&p.authorize, Route::Authorize),
            (&p.select_login, Route::SelectLogin),
            (&p.consent, Route::Consent),
            (&p.token, Route::Token),
            (&p.userinfo, Route::Userinfo),
            (&p.revoke, Route::Revoke),
            (&p.introspect, Route::Introspect),
            (&p.health, Route::Health),
            (&p.account_grants, Route::AccountGrants),
            (&p.account_revoke, Route::AccountRevoke),
        ];
        if let Some((_, route)) = fixed.iter().find(|(candidate, _)| *candidate == path) {
            return *route;
        }
        if self.config.registration.enabled && p.register == path {
            return Route::Register;
        }
        if self.config.status_lists.enabled
            && let Some(rest) = path.strip_prefix(p.status_lists.as_str())
        {
            if rest.is_empty() {
                return Route::StatusListAggregation;
            }
            if let Some(number) = rest
                .strip_prefix('/')
                .and_then(status_lists::parse_list_number)
            {
                return Route::StatusList(number);
            }
        }
        if let Some((_, index)) = p.login.iter().find(|(prefix, _)| under(path, prefix)) {
            return Route::Login(*index);
        }
        Route::NotFound
    }

    async fn handle<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let now = (self.clock)();
        let route = self.route(request.uri().path());
        let cors_enabled = matches!(
            route,
            Route::Discovery
                | Route::Jwks
                | Route::Token
                | Route::Userinfo
                | Route::Register
                | Route::Revoke
                | Route::StatusListAggregation
                | Route::StatusList(_)
        );
        let mut response = if cors_enabled && request.method() == Method::OPTIONS {
            let mut response = response::with_body(StatusCode::NO_CONTENT, Bytes::new());
            let origin = request.headers().get(ORIGIN);
            cors::apply_preflight(&self.config.cors, origin, response.headers_mut());
            response
        } else {
            // Only the `Origin` is kept: the other headers may hold credentials.
            let origin = cors_enabled.then(|| request.headers().get(ORIGIN).cloned());
            let mut response = self.dispatch(route, request, now).await;
            if let Some(origin) = origin {
                cors::apply(&self.config.cors, origin.as_ref(), response.headers_mut());
            }
            response
        };
        let headers = response.headers_mut();
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if !headers.contains_key(REFERRER_POLICY) {
            headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        }
        response
    }

    async fn dispatch<B>(&self, route: Route, request: Request<B>, now: u64) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limited = match route {
            Route::Authorize => Some((
                LimitedEndpoint::Authorize,
                self.config.rate_limits.authorize,
            )),
            Route::SelectLogin | Route::Consent | Route::Login(_) => {
                Some((LimitedEndpoint::Login, self.config.rate_limits.login))
            }
            Route::Token
            | Route::Revoke
            | Route::Introspect
            | Route::AccountGrants
            | Route::AccountRevoke => Some((LimitedEndpoint::Token, self.config.rate_limits.token)),
            Route::Register => Some((LimitedEndpoint::Register, self.config.rate_limits.register)),
            _ => None,
        };
        if let Some((endpoint, Some(limit))) = limited {
            let client: Option<IpAddr> =
                request.extensions().get::<SocketAddr>().map(SocketAddr::ip);
            if let Err(retry_after) = self.limiter.check(endpoint, limit, client, now) {
                audit::record(&AuditEvent::RateLimited {
                    endpoint: endpoint.name(),
                });
                return response::too_many_requests(retry_after);
            }
        }

        let (parts, body) = request.into_parts();
        let body = match read_body(body, self.config.max_body_bytes).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let method = &parts.method;
        let is_get = method == Method::GET || method == Method::HEAD;
        let is_post = method == Method::POST;
        match route {
            Route::Discovery if is_get => response::public_json(
                self.metadata_json.clone(),
                self.metadata_cache_control.clone(),
            ),
            Route::Jwks if is_get => {
                response::public_json(self.keys.jwks(), self.jwks_cache_control.clone())
            }
            Route::Authorize if is_get || is_post => {
                authorize::handle(self, &parts, &body, now).await
            }
            Route::SelectLogin if is_get => authorize::select_login(self, &parts, now).await,
            Route::Consent if is_post => consent::submit(self, &parts, &body, now).await,
            Route::Token if is_post => token::handle(self, &parts, &body, now).await,
            Route::Userinfo if is_get || is_post => userinfo::handle(self, &parts, now).await,
            Route::Revoke if is_post => revocation::handle(self, &parts, &body, now).await,
            Route::Introspect if is_post => introspection::handle(self, &parts, &body, now).await,
            Route::Register if is_post => registration::handle(self, &parts, &body, now).await,
            Route::Health if is_get => self.health(&parts, now).await,
            Route::AccountGrants if is_get => account::list_grants(self, &parts, now).await,
            Route::AccountRevoke if is_post => {
                account::revoke_grants(self, &parts, &body, now).await
            }
            Route::StatusListAggregation if is_get => status_lists::aggregation(self).await,
            Route::StatusList(number) if is_get => status_lists::list(self, number, now).await,
            Route::Login(index) => self.login(index, parts, body, now).await,
            Route::NotFound => response::not_found(),
            Route::Discovery
            | Route::Jwks
            | Route::SelectLogin
            | Route::Health
            | Route::AccountGrants
            | Route::StatusListAggregation
            | Route::StatusList(_) => response::method_not_allowed("GET"),
            Route::Authorize | Route::Userinfo => response::method_not_allowed("GET, POST"),
            Route::Consent
            | Route::Token
            | Route::Revoke
            | Route::Introspect
            | Route::Register
            | Route::AccountRevoke => response::method_not_allowed("POST"),
        }
    }

    /// Hands a request under a login method's prefix to it; a finished login continues
    /// with consent.
    async fn login(&self, index: usize, parts: Parts, body: Bytes, now: u64) -> HttpResponse {
        let Some(authenticator) = self.authenticators.get(index) else {
            return response::not_found();
        };
        let request = Request::from_parts(parts, body);
        match authenticator.handle(request, now).await {
            crate::authn::LoginOutcome::Respond(response) => response::page(response),
            // The login method records `LoginSucceeded` itself.
            crate::authn::LoginOutcome::Authenticated { transaction, user } => {
                consent::begin(self, &transaction, user, now).await
            }
        }
    }

    /// `GET /health`: only `status` for everyone; the details for a request carrying the
    /// operator token ([`ProviderConfig::health_token`]) as a bearer token. A wrong token
    /// gets 401, so a typo is not mistaken for a server without details.
    async fn health(&self, parts: &Parts, now: u64) -> HttpResponse {
        let operator = match (&self.config.health_token, bearer_token(parts)) {
            (Some(expected), Some(presented)) => {
                if !expected.matches(presented) {
                    return health_unauthorized();
                }
                true
            }
            (Some(_), None) => false,
            // Without a configured token, details are never shown; a header is ignored.
            (None, _) => false,
        };
        let store = self.store.health().await;
        let keys = self.keys.status(now);
        let healthy = store.is_ok() && keys.signing_kid.is_some();
        let status_text = if healthy { "ok" } else { "unhealthy" };
        let body = if operator {
            json!({
                "status": status_text,
                "store": if store.is_ok() { "ok" } else { "unavailable" },
                "keys": {
                    "signing_kid": keys.signing_kid,
                    "published": keys.published,
                    "next_due": keys.next_due,
                },
            })
        } else {
            json!({ "status": status_text })
        };
        let status = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        response::json(status, &body)
    }
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive).
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// 401 for a wrong operator token at `/health` (RFC 6750 §3).
fn health_unauthorized() -> HttpResponse {
    let mut response = response::oauth_error(
        StatusCode::UNAUTHORIZED,
        super::errors::OAuthError::new(
            super::errors::ErrorCode::InvalidToken,
            "the operator token is not valid",
        ),
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// Reads the body within `limit` bytes.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, HttpResponse>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(response::json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": "invalid_request", "error_description": "the request body is too large"}),
        )),
        Err(_) => Err(response::json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "the request body could not be read"}),
        )),
    }
}

impl<B> tower_service::Service<Request<B>> for Provider
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        ResponseFuture {
            inner: Box::pin(async move { Ok(inner.handle(request).await) }),
        }
    }
}

type BoxedResponse = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

/// The future of [`Provider`]'s `Service::call`.
pub struct ResponseFuture {
    inner: BoxedResponse,
}

impl Future for ResponseFuture {
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn provider_and_its_future_can_cross_threads() {
        assert_send_sync::<Provider>();
        assert_send::<ResponseFuture>();
        #[cfg(feature = "sqlite")]
        assert_send_sync::<crate::store::SqliteStore>();
    }

    #[test]
    fn paths_nest_by_segment() {
        assert!(under("/login/google", "/login/google"));
        assert!(under("/login/google/callback", "/login/google"));
        assert!(!under("/login/googlex", "/login/google"));
        assert!(!under("/login", "/login/google"));
    }
}
