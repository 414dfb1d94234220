//! [`Provider`] and its [`ProviderBuilder`]: the public face of the provider and its
//! tower `Service` implementation. Requests go to [`router`](super::router).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_lc_rs::rand::SecureRandom;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use jwks_verify::Clock;

use super::config::ProviderConfig;
use super::errors::ProviderError;
use super::rate_limit::RateLimitStore;
use super::response::HttpResponse;
use super::router;
use super::state::{MaintenanceReport, ProviderState};
use crate::authn::Authenticator;
use crate::client::MetadataDocumentResolver;
use crate::discovery::ProviderMetadata;
#[cfg(doc)]
use crate::store::GrantLogin;
use crate::store::ProviderStore;

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
    state: Arc<ProviderState>,
}

/// Builds a [`Provider`].
pub struct ProviderBuilder {
    config: ProviderConfig,
    store: Arc<dyn ProviderStore>,
    authenticators: Vec<Arc<dyn Authenticator>>,
    resolver: Option<Arc<dyn MetadataDocumentResolver>>,
    clock: Option<Arc<dyn Clock>>,
    rng: Option<Arc<dyn SecureRandom + Send + Sync>>,
    rate_limits: Option<Arc<dyn RateLimitStore>>,
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
            rate_limits: None,
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
        self.state.run_maintenance().await
    }

    /// The discovery document.
    pub fn metadata(&self) -> &ProviderMetadata {
        self.state.metadata()
    }

    /// The JWK Set document currently published.
    pub fn jwks(&self) -> Bytes {
        self.state.keys().jwks()
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        self.state.config()
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.state.config().issuer)
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

    /// Sets the clock, [`SystemClock`](jwks_verify::SystemClock) by default. Every time the
    /// provider reads comes from it: token lifetimes, codes, lockouts, rate limits, key
    /// rotation, and the verifier of its own access tokens. A
    /// [`ManualClock`](jwks_verify::ManualClock) puts it all on virtual time; an
    /// `Arc<dyn Clock>` shares one clock with other services.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Sets the random source; [`SystemRandom`](aws_lc_rs::rand::SystemRandom) by default.
    #[must_use]
    pub fn rng(mut self, rng: Arc<dyn SecureRandom + Send + Sync>) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Keeps the rate limit buckets in `store` instead of this process's memory
    /// ([`MemoryRateLimitStore`](super::MemoryRateLimitStore), the default). Give every
    /// replica the same shared store (such as `store::PostgresLimitStore`, feature
    /// `postgres`) and a client alternating between replicas gets one allowance, not one
    /// per replica. Maintenance purges the buckets that are full again. When the store
    /// fails, requests are let through with a warning (see
    /// [`RateLimitStore`](super::RateLimitStore)).
    #[must_use]
    pub fn rate_limit_store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.rate_limits = Some(store);
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
            rate_limits,
        } = self;
        let state = ProviderState::build(
            config,
            store,
            authenticators,
            resolver,
            clock,
            rng,
            rate_limits,
        )
        .await?;
        Ok(Provider { state })
    }
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
        let state = Arc::clone(&self.state);
        ResponseFuture {
            inner: Box::pin(async move { Ok(router::handle(&state, request).await) }),
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
}
