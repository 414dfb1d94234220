//! The whole memory service as one tower [`Service`]: routing, bearer authentication, CORS,
//! the public metadata documents and health.
//!
//! | Path | Access |
//! |---|---|
//! | `/health`, `/openapi.json` | public (`/health` shows only `status`; its details need the operator token of [`MemoryServer::with_health_token`]) |
//! | RFC 9728 metadata: `/.well-known/oauth-protected-resource[/mcp[/sse]]`, `/mcp/sse/oauth-protected-resource` | public (`GET`) |
//! | CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) | public |
//! | `/mcp` | bearer token ([`McpService`]) |
//! | `/mcp/sse`, `/mcp/sse/messages`, `/mcp/messages` (legacy SSE) | bearer token ([`McpService`]); 401s point at `/mcp/sse/oauth-protected-resource` |
//! | `/api/v1/…` | bearer token ([`RestApi`]) |
//! | `/app/…` (feature `app`) | the memory page's own sign-in and session cookie (`mcp_api::app`, feature `app`) |
//!
//! Everything else is a JSON 404. CORS headers are added for allowed origins on every
//! response, errors and 401s included, so browser clients can read `WWW-Authenticate`.
//!
//! The public routes expose nothing but the service's own description and liveness; every
//! route that touches memories authenticates each request itself, so the service needs no
//! access proxy in front of it. Behind one that passes only `/openapi.json`, `/mcp/sse`,
//! `/api/v1/memories/*` and `/health` the legacy SSE transport and its OAuth discovery
//! still work: both live under `/mcp/sse` (see [`crate::resource`]).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use jwks_verify::{BearerAuth, BearerAuthLayer, Policy, TypPolicy, Verifier};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::AccessClaims;
use crate::http::{BoxError, ResponseBody, empty_response, full, json_response};
use crate::mcp::{
    MCP_PATH, MESSAGES_ALIAS_PATH, MESSAGES_PATH, McpConfig, McpService, SSE_PATH, SessionBackend,
};
use crate::rate_limit::{RateLimit, RateLimiter, SubjectRateLimit};
use crate::resource::{
    MetadataLocation, ProtectedResource, SSE_METADATA_PATH, WELL_KNOWN_METADATA_PATHS,
};
use crate::rest::{RestApi, openapi_document};
use crate::store::MemoryStore;

/// Methods browsers may use cross-origin.
const CORS_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
/// Request headers browsers may send cross-origin: the seed's two plus what MCP needs.
const CORS_ALLOW_HEADERS: &str = "Content-Type, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
/// Response headers browsers may read.
const CORS_EXPOSE_HEADERS: &str = "Mcp-Session-Id, WWW-Authenticate";

/// The access-token policy for a memory server: our issuer, RFC 9068 `at+jwt` only, and an
/// audience of the canonical MCP resource (or the base URL).
///
/// ```
/// use mcp_api::{ProtectedResource, server::access_token_policy};
///
/// let resource = ProtectedResource::new("https://mcp.example", "https://auth.example");
/// let policy = access_token_policy(&resource);
/// assert_eq!(policy.audiences(), ["https://mcp.example/mcp", "https://mcp.example"]);
/// ```
pub fn access_token_policy(resource: &ProtectedResource) -> Policy {
    let [canonical, base] = resource.audiences();
    Policy::new(resource.issuer(), canonical)
        .also_accept_audience(base)
        .typ(TypPolicy::AccessToken)
}

/// The memory server.
pub struct MemoryServer<S> {
    shared: Arc<Shared<S>>,
    /// SHA-256 of the operator token that unlocks `/health` details.
    health_token: Option<[u8; 32]>,
    /// The memory page, when configured.
    #[cfg(feature = "app")]
    app: Option<crate::app::App<S>>,
}

struct Shared<S> {
    store: Arc<S>,
    verifier: Verifier,
    config: McpConfig,
    mcp: BearerAuth<SubjectRateLimit<McpService<S>>, AccessClaims>,
    /// The same service for the legacy SSE paths, challenging with the metadata under
    /// `/mcp/sse`.
    mcp_sse: BearerAuth<SubjectRateLimit<McpService<S>>, AccessClaims>,
    rest: BearerAuth<SubjectRateLimit<RestApi<S>>, AccessClaims>,
    /// The per-user request limit of all three, once set.
    rate_limiter: Arc<OnceLock<RateLimiter>>,
    mcp_service: McpService<S>,
    openapi: Bytes,
    metadata: Bytes,
}

impl<S: MemoryStore> MemoryServer<S> {
    /// Serves `store`, checking bearer tokens with `verifier` (build it with
    /// [`access_token_policy`]). `config` governs the MCP transports and the CORS and
    /// `Origin` allow-list shared by all routes.
    ///
    /// **One clock**: the verifier's ([`Verifier::clock`]) also ages MCP sessions and
    /// counts per-user allowances, so a verifier built on a
    /// [`ManualClock`](jwks_verify::ManualClock) puts the whole server on virtual time.
    pub fn new(
        store: Arc<S>,
        verifier: Verifier,
        resource: ProtectedResource,
        config: McpConfig,
    ) -> Self {
        MemoryServer::with_sessions(store, verifier, resource, config, SessionBackend::InProcess)
    }

    /// The same, keeping MCP sessions and legacy SSE streams in `sessions`; with
    /// `SessionBackend::Postgres` (feature `postgres`) replicas behind a load balancer
    /// without sticky routing serve each other's sessions. See
    /// [`McpService::with_sessions`].
    pub fn with_sessions(
        store: Arc<S>,
        verifier: Verifier,
        resource: ProtectedResource,
        config: McpConfig,
        sessions: SessionBackend,
    ) -> Self {
        let auth = BearerAuthLayer::<AccessClaims>::new(verifier.clone())
            .challenge(resource.challenge_at(MetadataLocation::WellKnown));
        let sse_auth = BearerAuthLayer::<AccessClaims>::new(verifier.clone())
            .challenge(resource.challenge_at(MetadataLocation::UnderSse));
        // The verifier's clock is the service's one clock: sessions and rate limits too.
        let clock = verifier.clock();
        let mcp_service = McpService::with_sessions(
            Arc::clone(&store),
            resource.clone(),
            config.clone(),
            Arc::clone(&clock),
            sessions,
        );
        let openapi = serde_json::to_vec(&openapi_document(&resource)).unwrap_or_default();
        let metadata = serde_json::to_vec(&resource.metadata()).unwrap_or_default();
        let rest = RestApi::new(Arc::clone(&store), resource);
        let rate_limiter = Arc::new(OnceLock::new());
        MemoryServer {
            shared: Arc::new(Shared {
                store,
                verifier,
                config,
                mcp: auth.layer(SubjectRateLimit::new(
                    mcp_service.clone(),
                    Arc::clone(&rate_limiter),
                    Arc::clone(&clock),
                    true,
                )),
                mcp_sse: sse_auth.layer(SubjectRateLimit::new(
                    mcp_service.clone(),
                    Arc::clone(&rate_limiter),
                    Arc::clone(&clock),
                    true,
                )),
                rest: auth.layer(SubjectRateLimit::new(
                    rest,
                    Arc::clone(&rate_limiter),
                    clock,
                    false,
                )),
                rate_limiter,
                mcp_service,
                openapi: Bytes::from(openapi),
                metadata: Bytes::from(metadata),
            }),
            health_token: None,
            #[cfg(feature = "app")]
            app: None,
        }
    }
}

impl<S> MemoryServer<S> {
    /// Holds each user (token subject) to `limit` on the MCP and REST routes: requests
    /// over it get `429` with `Retry-After` (and a JSON-RPC error body on the MCP routes).
    /// Without this call there is no per-user limit. Only the first limit set counts.
    ///
    /// ```
    /// # fn server(s: mcp_api::MemoryServer<mcp_api::SqliteStore>) -> mcp_api::MemoryServer<mcp_api::SqliteStore> {
    /// s.with_rate_limit(mcp_api::RateLimit::new(20, 200))
    /// # }
    /// ```
    #[must_use]
    pub fn with_rate_limit(self, limit: RateLimit) -> Self {
        // Set once, before serving: a second call keeps the first limit.
        let _ = self.shared.rate_limiter.set(RateLimiter::new(limit));
        self
    }

    /// Shows the details of `/health` (store, keys in use, key-set age, verified-token and
    /// JWKS-failure counts) to requests carrying `token` as `Authorization: Bearer`;
    /// everyone else gets only `{"status": …}`, and a wrong token gets `401`. Only the
    /// token's SHA-256 is kept, and it is compared in constant time. Without this call
    /// `/health` never shows details.
    ///
    /// ```
    /// # fn server(s: mcp_api::MemoryServer<mcp_api::SqliteStore>) -> mcp_api::MemoryServer<mcp_api::SqliteStore> {
    /// s.with_health_token("a-long-random-operator-token-0123456789")
    /// # }
    /// ```
    #[must_use]
    pub fn with_health_token(mut self, token: &str) -> Self {
        self.health_token = Some(sha256(token));
        self
    }

    /// Serves the memory page ([`crate::app`]) under `/app/`. Without this call, `/app/`
    /// answers 404 with a page saying how to turn it on.
    #[cfg(feature = "app")]
    #[must_use]
    pub fn with_app(mut self, app: crate::app::App<S>) -> Self {
        self.app = Some(app);
        self
    }

    /// Ends every open SSE stream cleanly (for graceful shutdown); returns how many.
    pub fn close_streams(&self) -> usize {
        self.shared.mcp_service.close_streams()
    }

    /// The token verifier (for its metrics).
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }
}

impl<S> Clone for MemoryServer<S> {
    fn clone(&self) -> Self {
        MemoryServer {
            shared: Arc::clone(&self.shared),
            health_token: self.health_token,
            #[cfg(feature = "app")]
            app: self.app.clone(),
        }
    }
}

impl<S> std::fmt::Debug for MemoryServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryServer").finish_non_exhaustive()
    }
}

/// Where a request goes.
enum Route {
    Preflight,
    Health,
    OpenApi,
    ResourceMetadata,
    Mcp,
    McpSse,
    Rest,
    #[cfg(feature = "app")]
    App,
    NotFound,
}

fn route<B>(request: &Request<B>) -> Route {
    let path = request.uri().path();
    let method = request.method();
    if method == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return Route::Preflight;
    }
    match path {
        "/health" if method == Method::GET => Route::Health,
        "/openapi.json" if method == Method::GET => Route::OpenApi,
        _ if method == Method::GET
            && (path == SSE_METADATA_PATH || WELL_KNOWN_METADATA_PATHS.contains(&path)) =>
        {
            Route::ResourceMetadata
        }
        MCP_PATH => Route::Mcp,
        SSE_PATH | MESSAGES_PATH | MESSAGES_ALIAS_PATH => Route::McpSse,
        _ if path == "/api/v1" || path.starts_with("/api/v1/") => Route::Rest,
        #[cfg(feature = "app")]
        _ if crate::app::is_app_path(path) => Route::App,
        _ => Route::NotFound,
    }
}

/// The future of [`MemoryServer`]. Boxed: it wraps the MCP and REST services' own boxed
/// futures and the health check, none of which have nameable types.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<S, B> Service<Request<B>> for MemoryServer<S>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> ResponseFuture {
        let shared = Arc::clone(&self.shared);
        let health_token = self.health_token;
        #[cfg(feature = "app")]
        let app = self.app.clone();
        // Echoed in CORS headers only if every `Origin` value is allowed (so the first is).
        // The verdict travels with the request: `McpService` refuses a disallowed origin
        // with 403 without checking again.
        let origin = if shared.config.check_origin(&mut request) {
            request.headers().get(ORIGIN).cloned()
        } else {
            None
        };
        Box::pin(async move {
            let mut response = match route(&request) {
                Route::Preflight => preflight(origin.is_some()),
                Route::Health => health(&shared, health_token.as_ref(), request.headers()).await,
                Route::OpenApi => json_bytes(shared.openapi.clone()),
                Route::ResourceMetadata => json_bytes(shared.metadata.clone()),
                Route::Mcp => call_ready(shared.mcp.clone(), request).await,
                Route::McpSse => call_ready(shared.mcp_sse.clone(), request).await,
                Route::Rest => call_ready(shared.rest.clone(), request).await,
                // The page is same-origin only: no CORS headers.
                #[cfg(feature = "app")]
                Route::App => {
                    return Ok(match app {
                        Some(app) => app.handle(request).await,
                        None => crate::app::not_configured(request.method()),
                    });
                }
                Route::NotFound => not_found(),
            };
            if let Some(origin) = origin {
                add_cors(response.headers_mut(), origin);
            }
            Ok(response)
        })
    }
}

async fn call_ready<T, B>(mut service: T, request: Request<B>) -> Response<ResponseBody>
where
    T: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
{
    let Ok(()) = poll_fn(|cx| service.poll_ready(cx)).await;
    let Ok(response) = service.call(request).await;
    response
}

// Hand-written, not tower-http's `CorsLayer`: CORS must skip `/app/` (same-origin pages) and
// share its allow-list with the MCP `Origin` check, and preflights answer 204 from the router.
fn preflight(allowed: bool) -> Response<ResponseBody> {
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if allowed {
        let headers = response.headers_mut();
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

/// CORS for an allowed origin: never `Allow-Credentials` (bearer tokens, not cookies).
fn add_cors(headers: &mut http::HeaderMap, origin: HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(CORS_EXPOSE_HEADERS),
    );
    headers.append(VARY, HeaderValue::from_static("Origin"));
}

fn json_bytes(bytes: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(full(bytes));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn not_found() -> Response<ResponseBody> {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found", "message": "no such route"}),
    )
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    store: &'static str,
    keys_in_use: usize,
    key_set_age_seconds: Option<u64>,
    verified: u64,
    jwks_fetch_failures: u64,
}

/// `/health`: the status for everyone, [`Health`] for the operator.
async fn health<S: MemoryStore>(
    shared: &Shared<S>,
    token: Option<&[u8; 32]>,
    headers: &http::HeaderMap,
) -> Response<ResponseBody> {
    let operator = match (token, bearer_token(headers)) {
        (Some(expected), Some(presented)) => {
            let presented = sha256(presented);
            if aws_lc_rs::constant_time::verify_slices_are_equal(expected, &presented).is_err() {
                let mut response = json_response(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({"error": "invalid_token", "message": "the operator token is not valid"}),
                );
                response.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                return response;
            }
            true
        }
        // Without a configured token no details are shown; a header is ignored.
        _ => false,
    };
    let store_ok = shared.store.health().await.is_ok();
    let metrics = shared.verifier.metrics();
    let keys_ok = shared.verifier.key_set().is_some();
    let status = if store_ok && keys_ok {
        "ok"
    } else {
        "degraded"
    };
    let body = Health {
        status,
        store: if store_ok { "ok" } else { "unavailable" },
        keys_in_use: if keys_ok { metrics.keys_in_use } else { 0 },
        key_set_age_seconds: metrics.key_set_age.map(|age| age.as_secs()),
        verified: metrics.verified,
        jwks_fetch_failures: metrics.jwks_fetch_failures,
    };
    let code = if store_ok && keys_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !operator {
        return json_response(code, &serde_json::json!({ "status": status }));
    }
    json_response(code, &body)
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive).
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn sha256(text: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0; 32];
    // A SHA-256 digest is always 32 bytes.
    out.copy_from_slice(digest.as_ref());
    out
}
