//! The provider's shared state behind every clone of a [`Provider`](super::Provider):
//! configuration, store, keys, clients and caches. Its fields are private: the endpoints
//! read what they need through its methods, and only [`build`](ProviderState::build) and
//! maintenance change it. It imports no endpoint.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use http::HeaderValue;
use jwks_verify::{Clock, SystemClock};
use tokio::task::JoinHandle;

use super::config::ProviderConfig;
use super::errors::ProviderError;
use super::keys::KeyManager;
use super::rate_limit::{LimitedEndpoint, MemoryRateLimitStore, RateLimitStore};
use super::response::public_cache_control;
use super::routes::Paths;
use super::status_list_cache::StatusListCache;
use crate::authn::Authenticator;
use crate::client::{Client, MetadataDocumentError, MetadataDocumentResolver};
use crate::discovery::{self, ProviderMetadata};
use crate::store::{GrantLogin, LiveGrantLogin, ProviderStore, PurgeReport, StoreError};
use crate::types::{ClientId, Scope};

/// What one maintenance run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Expired rows deleted.
    pub purged: PurgeReport,
    /// The key that signs now.
    pub signing_kid: Option<String>,
}

/// The shared state behind every clone of a [`Provider`](super::Provider).
pub(crate) struct ProviderState {
    config: ProviderConfig,
    store: Arc<dyn ProviderStore>,
    authenticators: Vec<Arc<dyn Authenticator>>,
    resolver: Option<Arc<dyn MetadataDocumentResolver>>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom + Send + Sync>,
    keys: KeyManager,
    rate_limits: Arc<dyn RateLimitStore>,
    static_clients: HashMap<ClientId, Client>,
    /// The static clients with access to the account API.
    account_clients: HashSet<ClientId>,
    paths: Paths,
    supported_scopes: Vec<String>,
    /// `scheme://host[:port]` of the issuer, for `Origin` checks.
    issuer_origin: String,
    metadata: ProviderMetadata,
    metadata_json: Bytes,
    /// `Cache-Control` of the discovery document.
    metadata_cache_control: HeaderValue,
    /// `Cache-Control` of the JWK Set.
    jwks_cache_control: HeaderValue,
    /// Signed Status List Tokens.
    status_list_cache: StatusListCache,
    maintenance_task: Mutex<Option<JoinHandle<()>>>,
}

/// Why a client could not be looked up.
pub(crate) enum ClientLookupError {
    Store(StoreError),
    MetadataDocument(MetadataDocumentError),
}

impl ProviderState {
    /// Checks the configuration, loads (or creates) the signing keys, revokes the grants
    /// of removed users and, unless turned off, spawns the maintenance task (see
    /// [`ProviderBuilder::build`](super::ProviderBuilder::build)).
    pub(crate) async fn build(
        config: ProviderConfig,
        store: Arc<dyn ProviderStore>,
        authenticators: Vec<Arc<dyn Authenticator>>,
        resolver: Option<Arc<dyn MetadataDocumentResolver>>,
        clock: Option<Arc<dyn Clock>>,
        rng: Option<Arc<dyn SecureRandom + Send + Sync>>,
        rate_limits: Option<Arc<dyn RateLimitStore>>,
    ) -> Result<Arc<ProviderState>, ProviderError> {
        config.validate()?;
        if authenticators.is_empty() {
            return Err(ProviderError::InvalidConfig(
                "at least one login method is required",
            ));
        }
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
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
        revoke_grants_of_removed_users(store.as_ref(), &authenticators, clock.unix_time()).await?;
        let jwks_cache_control = public_cache_control(keys.jwks_max_age());
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
        let state = Arc::new(ProviderState {
            store,
            authenticators,
            resolver,
            clock,
            rng,
            keys,
            rate_limits: rate_limits.unwrap_or_else(|| Arc::new(MemoryRateLimitStore::new())),
            static_clients,
            account_clients,
            paths,
            supported_scopes,
            issuer_origin,
            metadata,
            metadata_json,
            metadata_cache_control: public_cache_control(300),
            jwks_cache_control,
            status_list_cache: StatusListCache::new(config.status_lists.ttl.as_secs()),
            maintenance_task: Mutex::new(None),
            config,
        });
        if state.config.maintenance.background {
            let task = spawn_maintenance(&state);
            *state
                .maintenance_task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
        Ok(state)
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The store.
    pub(crate) fn store(&self) -> &dyn ProviderStore {
        self.store.as_ref()
    }

    /// The login methods, in configuration order.
    pub(crate) fn authenticators(&self) -> &[Arc<dyn Authenticator>] {
        &self.authenticators
    }

    /// The current time (Unix seconds).
    pub(crate) fn now(&self) -> u64 {
        self.clock.unix_time()
    }

    /// The random source.
    pub(crate) fn rng(&self) -> &dyn SecureRandom {
        self.rng.as_ref()
    }

    /// The signing keys and the verifier of our own access tokens.
    pub(crate) fn keys(&self) -> &KeyManager {
        &self.keys
    }

    /// The per-IP rate limit buckets.
    pub(crate) fn rate_limits(&self) -> &dyn RateLimitStore {
        self.rate_limits.as_ref()
    }

    /// The request paths of the endpoints.
    pub(crate) fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Every scope token `/authorize` accepts.
    pub(crate) fn supported_scopes(&self) -> &[String] {
        &self.supported_scopes
    }

    /// `scheme://host[:port]` of the issuer.
    pub(crate) fn issuer_origin(&self) -> &str {
        &self.issuer_origin
    }

    /// The discovery document.
    pub(crate) fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// The discovery document as served, with its `Cache-Control`.
    pub(crate) fn metadata_document(&self) -> (Bytes, HeaderValue) {
        (
            self.metadata_json.clone(),
            self.metadata_cache_control.clone(),
        )
    }

    /// The JWK Set as served, with its `Cache-Control`.
    pub(crate) fn jwks_document(&self) -> (Bytes, HeaderValue) {
        (self.keys.jwks(), self.jwks_cache_control.clone())
    }

    /// Signed Status List Tokens.
    pub(crate) fn status_list_cache(&self) -> &StatusListCache {
        &self.status_list_cache
    }

    pub(crate) async fn run_maintenance(&self) -> Result<MaintenanceReport, ProviderError> {
        self.keys.maintain(self.store.as_ref()).await?;
        let now = self.clock.unix_time();
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
        self.purge_rate_limits(now).await;
        Ok(MaintenanceReport {
            purged,
            signing_kid: self.keys.status(now).signing_kid,
        })
    }

    /// Forgets the rate limit buckets that are full again. A failure only logs: the
    /// buckets are bounded again on the next run.
    async fn purge_rate_limits(&self, now: u64) {
        let limits = &self.config.rate_limits;
        let endpoints = [
            (LimitedEndpoint::Authorize, limits.authorize),
            (LimitedEndpoint::Token, limits.token),
            (LimitedEndpoint::Register, limits.register),
            (LimitedEndpoint::Login, limits.login),
        ];
        for (endpoint, limit) in endpoints {
            let Some(limit) = limit else { continue };
            if let Err(error) = self.rate_limits.purge(endpoint, limit, now).await {
                tracing::warn!(%error, endpoint = endpoint.name(), "could not purge rate limit buckets");
            }
        }
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
}

impl Drop for ProviderState {
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

/// See [`ProviderBuilder::build`](super::ProviderBuilder::build): revokes every live grant
/// of the subjects no login method admits any more. Returns how many grants were revoked.
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

fn spawn_maintenance(state: &Arc<ProviderState>) -> JoinHandle<()> {
    let weak: Weak<ProviderState> = Arc::downgrade(state);
    let longest = state.config.maintenance.interval.as_secs().max(1);
    tokio::spawn(async move {
        loop {
            let wait = {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let now = inner.clock.unix_time();
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
