//! [`McpService`]: the tower service that serves `/mcp`, `/mcp/sse`, `/mcp/sse/messages`
//! and its old alias `/mcp/messages`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use jwks_verify::{Clock, SystemClock};
use tower_service::Service;

use super::state::McpState;
use super::{
    MCP_PATH, MESSAGES_ALIAS_PATH, MESSAGES_PATH, McpConfig, SSE_PATH, SessionBackend, legacy,
    responses, streamable,
};
use crate::auth::Caller;
use crate::http::{BoxError, ResponseBody, empty_response};
use crate::resource::ProtectedResource;
use crate::store::MemoryStore;

/// The MCP server of the memory service, as a tower [`Service`].
///
/// It must sit behind [`jwks_verify::BearerAuthLayer`] with [`AccessClaims`](crate::AccessClaims):
/// every request needs verified claims, and the token's `sub` owns every memory touched
/// (a request without claims gets `401`, whose challenge names the metadata copy for the
/// path, see [`MetadataLocation::for_path`](crate::resource::MetadataLocation::for_path)). It answers four paths, which the caller routes
/// to it unchanged: [`MCP_PATH`], [`SSE_PATH`], [`MESSAGES_PATH`] and
/// [`MESSAGES_ALIAS_PATH`]; any other path gets `404`. See the [module documentation](super) for the protocol details.
///
/// Cloning is cheap and clones share sessions.
pub struct McpService<S> {
    state: Arc<McpState<S>>,
}

impl<S: MemoryStore> McpService<S> {
    /// A service over `store`, for the protected resource `resource`.
    ///
    /// ```
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use http_body_util::Empty;
    /// use mcp_api::mcp::{McpConfig, McpService};
    /// use mcp_api::{Limits, ProtectedResource, SqliteStore};
    /// use tower::ServiceExt;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Arc::new(SqliteStore::open(dir.path().join("memories.db"), Limits::default())?);
    /// let resource = ProtectedResource::new("https://mcp.example.com", "https://auth.example.com");
    /// let service = McpService::new(store, resource, McpConfig::default());
    ///
    /// // Without `BearerAuthLayer` in front there are no verified claims: 401.
    /// let request = http::Request::post("/mcp").body(Empty::<bytes::Bytes>::new())?;
    /// let response = tokio::runtime::Builder::new_current_thread()
    ///     .enable_all()
    ///     .build()?
    ///     .block_on(service.oneshot(request))?;
    /// assert_eq!(response.status(), 401);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn new(store: Arc<S>, resource: ProtectedResource, config: McpConfig) -> Self {
        McpService::with_clock(store, resource, config, SystemClock)
    }

    /// The same, on `clock`: Streamable HTTP sessions expire after
    /// [`McpConfig::session_idle_timeout`] of its time, so a
    /// [`ManualClock`](jwks_verify::ManualClock) moves them without sleeping. Share the
    /// verifier's clock ([`Verifier::clock`](jwks_verify::Verifier::clock)) so that one
    /// clock serves the whole service; [`MemoryServer`](crate::MemoryServer) does.
    ///
    /// ```
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use jwks_verify::ManualClock;
    /// use mcp_api::mcp::{McpConfig, McpService};
    /// use mcp_api::{Limits, ProtectedResource, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Arc::new(SqliteStore::open(dir.path().join("memories.db"), Limits::default())?);
    /// let resource = ProtectedResource::new("https://mcp.example.com", "https://auth.example.com");
    /// let clock = ManualClock::at_unix(1_700_000_000);
    /// let service = McpService::with_clock(store, resource, McpConfig::default(), clock);
    /// assert_eq!(service.open_sessions(), 0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock(
        store: Arc<S>,
        resource: ProtectedResource,
        config: McpConfig,
        clock: impl Clock,
    ) -> Self {
        McpService::with_sessions(store, resource, config, clock, SessionBackend::InProcess)
    }

    /// The same, keeping sessions in `sessions`: with
    /// `SessionBackend::Postgres` (feature `postgres`) every replica on the same
    /// database serves every session and legacy SSE stream, so a load balancer needs no
    /// sticky routing. `clock` then still drives everything but session idle times, which
    /// the database measures.
    ///
    /// ```
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use jwks_verify::SystemClock;
    /// use mcp_api::mcp::{McpConfig, McpService, SessionBackend};
    /// use mcp_api::{Limits, ProtectedResource, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Arc::new(SqliteStore::open(dir.path().join("memories.db"), Limits::default())?);
    /// let resource = ProtectedResource::new("https://mcp.example.com", "https://auth.example.com");
    /// let backend = SessionBackend::InProcess; // or SessionBackend::Postgres(…)
    /// let service =
    ///     McpService::with_sessions(store, resource, McpConfig::default(), SystemClock, backend);
    /// assert_eq!(service.open_sessions(), 0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_sessions(
        store: Arc<S>,
        resource: ProtectedResource,
        config: McpConfig,
        clock: impl Clock,
        sessions: SessionBackend,
    ) -> Self {
        McpService {
            state: Arc::new(McpState::new(
                store,
                resource,
                config,
                Arc::new(clock),
                sessions,
            )),
        }
    }
}

impl<S> McpService<S> {
    /// Ends every open legacy SSE stream cleanly (after the events already queued) and
    /// refuses new ones with `503`; call it when graceful shutdown starts so the server
    /// does not wait for streams that never end. Streamable HTTP answers are finite and
    /// need no closing. Returns how many streams were closed. With PostgreSQL sessions,
    /// these are the streams this replica holds; then call `PostgresSessions::shutdown`.
    pub fn close_streams(&self) -> usize {
        self.state.sessions.close_legacy_streams()
    }

    /// How many sessions (Streamable HTTP sessions and legacy streams) are open; with
    /// PostgreSQL sessions, how many legacy streams this replica holds.
    #[must_use]
    pub fn open_sessions(&self) -> usize {
        self.state.sessions.len()
    }
}

impl<S> Clone for McpService<S> {
    fn clone(&self) -> Self {
        McpService {
            state: Arc::clone(&self.state),
        }
    }
}

impl<S> fmt::Debug for McpService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpService")
            .field("resource", &self.state.resource)
            .field("config", &self.state.config)
            .field("open_sessions", &self.state.sessions.len())
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for McpService<S>
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

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let state = Arc::clone(&self.state);
        ResponseFuture {
            inner: Box::pin(async move { serve(&state, request).await }),
        }
    }
}

/// The future of [`McpService`].
///
/// It is boxed: the work is an `async` function generic over the store and the body, whose
/// future type cannot be named, and it awaits the request body and the store, so one
/// allocation per request is small next to the I/O it waits for.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

/// Checks the request's `Origin` and claims, then hands it to its transport.
async fn serve<S, B>(state: &Arc<McpState<S>>, mut request: Request<B>) -> Response<ResponseBody>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Checked once per request: a verdict recorded in front (by `MemoryServer`) is reused.
    if !state.config.check_origin(&mut request) {
        return responses::forbidden_origin();
    }
    let caller = match Caller::from_request(&request) {
        Ok(caller) => caller,
        Err(error) => {
            return responses::unauthorized(state.challenge_for(request.uri().path()), error);
        }
    };
    match request.uri().path() {
        MCP_PATH => streamable::serve(state, &caller, request).await,
        SSE_PATH => legacy::open_stream(state, &caller, request.method(), request.headers()).await,
        MESSAGES_PATH | MESSAGES_ALIAS_PATH => legacy::post_message(state, &caller, request).await,
        _ => empty_response(StatusCode::NOT_FOUND),
    }
}
