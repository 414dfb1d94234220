//! [`RestApi`]: the tower service that routes, authorizes and answers REST requests.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::LOCATION;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use jwks_verify::Challenge;
use serde::Serialize;
use tower_service::Service;

use super::error::ApiError;
use super::extract::{json_body, memory_id, query};
use super::handlers;
use super::model::{MemoryResponse, UserIdParams};
use super::routes::{Route, RouteMiss, match_route};
use crate::auth::Caller;
use crate::http::{BoxError, DEFAULT_MAX_BODY_BYTES, ResponseBody, json_response};
use crate::resource::ProtectedResource;
use crate::store::MemoryStore;

/// The REST API under `/api/v1`, as a tower [`Service`].
///
/// Mount it behind [`jwks_verify::BearerAuthLayer<AccessClaims>`](crate::AccessClaims): every
/// request must carry verified claims, and the owner of everything it touches is the
/// token's `sub` (never a path, query or body value). Reads need
/// [`SCOPE_READ`](crate::auth::SCOPE_READ), changes [`SCOPE_WRITE`](crate::auth::SCOPE_WRITE);
/// see [`routes()`](super::routes) for the table.
///
/// ```
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use mcp_api::rest::RestApi;
/// use mcp_api::{Limits, ProtectedResource, SqliteStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = Arc::new(SqliteStore::open(dir.path().join("memories.db"), Limits::default())?);
/// let resource = ProtectedResource::new("https://mcp.example.com", "https://auth.example.com");
/// let api = RestApi::new(store, resource).with_max_body_bytes(64 * 1024);
/// assert_eq!(api.max_body_bytes(), 64 * 1024);
/// # Ok(())
/// # }
/// ```
pub struct RestApi<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    store: Arc<S>,
    resource: ProtectedResource,
    challenge: Challenge,
    max_body_bytes: usize,
}

impl<S: MemoryStore> RestApi<S> {
    /// The API over `store`, answering auth errors with challenges that point to `resource`.
    /// Request bodies are limited to [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(store: Arc<S>, resource: ProtectedResource) -> Self {
        RestApi {
            shared: Arc::new(Shared {
                store,
                challenge: resource.challenge(),
                resource,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            }),
        }
    }

    /// Limits request bodies to `max_body_bytes`; a longer body is refused with 413.
    #[must_use]
    pub fn with_max_body_bytes(self, max_body_bytes: usize) -> Self {
        RestApi {
            shared: Arc::new(Shared {
                store: Arc::clone(&self.shared.store),
                resource: self.shared.resource.clone(),
                challenge: self.shared.challenge.clone(),
                max_body_bytes,
            }),
        }
    }

    /// The protected resource this API belongs to.
    #[must_use]
    pub fn resource(&self) -> &ProtectedResource {
        &self.shared.resource
    }

    /// The request-body limit in bytes.
    #[must_use]
    pub fn max_body_bytes(&self) -> usize {
        self.shared.max_body_bytes
    }
}

impl<S> Clone for RestApi<S> {
    fn clone(&self) -> Self {
        RestApi {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> fmt::Debug for RestApi<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestApi")
            .field("max_body_bytes", &self.shared.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RestApi<S>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    // The store's futures are opaque `impl Future`s, so the handler future cannot be named
    // without boxing.
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(handle(&shared, request).await) })
    }
}

/// Authenticates, routes, authorizes, then runs the handler; every failure is a JSON error.
async fn handle<S, B>(shared: &Shared<S>, request: Request<B>) -> Response<ResponseBody>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let caller = match Caller::from_request(&request) {
        Ok(caller) => caller,
        Err(error) => return ApiError::Unauthenticated(error).into_response(&shared.challenge),
    };
    let (parts, body) = request.into_parts();
    let matched = match match_route(&parts.method, parts.uri.path()) {
        Ok(matched) => matched,
        Err(RouteMiss::NotFound) => {
            return ApiError::RouteNotFound.into_response(&shared.challenge);
        }
        Err(RouteMiss::MethodNotAllowed(methods)) => {
            return ApiError::MethodNotAllowed(methods).into_response(&shared.challenge);
        }
    };
    let route = matched.spec.route;
    if !matched.spec.scope.is_granted_to(&caller) {
        return ApiError::InsufficientScope(matched.spec.scope).into_response(&shared.challenge);
    }
    let input = Input {
        store: &*shared.store,
        caller: &caller,
        parts: &parts,
        id: matched.id,
        max_body_bytes: shared.max_body_bytes,
    };
    match dispatch(route, input, body).await {
        Ok(response) => response,
        Err(error) => {
            error.log(route);
            error.into_response(&shared.challenge)
        }
    }
}

/// What a handler may read of the request, besides its body.
struct Input<'a, S> {
    store: &'a S,
    caller: &'a Caller,
    parts: &'a Parts,
    id: Option<&'a str>,
    max_body_bytes: usize,
}

impl<S> Input<'_, S> {
    async fn body<T, B>(&self, body: B) -> Result<T, ApiError>
    where
        T: serde::de::DeserializeOwned,
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        json_body(self.parts, body, self.max_body_bytes).await
    }
}

/// Runs the handler of `route` with its typed inputs and serializes its output.
async fn dispatch<S, B>(
    route: Route,
    input: Input<'_, S>,
    body: B,
) -> Result<Response<ResponseBody>, ApiError>
where
    S: MemoryStore,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Input { store, caller, .. } = input;
    if !takes_query(route) {
        // OpenMemory's clients send `?user_id=` everywhere; it is read and ignored.
        let _: UserIdParams = query(input.parts)?;
    }
    match route {
        Route::ListMemories => {
            ok(&handlers::list_memories(store, caller, query(input.parts)?).await?)
        }
        Route::CreateMemory => {
            created(&handlers::create_memory(store, caller, input.body(body).await?).await?)
        }
        Route::DeleteMemories => {
            ok(&handlers::delete_memories(store, caller, input.body(body).await?).await?)
        }
        Route::GetMemory => ok(&handlers::get_memory(store, caller, memory_id(input.id)?).await?),
        Route::UpdateMemory => {
            let path = memory_id(input.id)?;
            ok(&handlers::update_memory(store, caller, path, input.body(body).await?).await?)
        }
        Route::ArchiveMemories => {
            ok(&handlers::archive_memories(store, caller, input.body(body).await?).await?)
        }
        Route::PauseMemories => {
            ok(&handlers::pause_memories(store, caller, input.body(body).await?).await?)
        }
        Route::FilterMemories => {
            ok(&handlers::filter_memories(store, caller, input.body(body).await?).await?)
        }
        Route::ListCategories => ok(&handlers::list_categories(store, caller).await?),
        Route::GetAccessLog => {
            let path = memory_id(input.id)?;
            ok(&handlers::get_access_log(store, caller, path, query(input.parts)?).await?)
        }
        Route::GetRelatedMemories => {
            let path = memory_id(input.id)?;
            ok(&handlers::get_related_memories(store, caller, path, query(input.parts)?).await?)
        }
        Route::GetStats => ok(&handlers::get_stats(store, caller).await?),
    }
}

/// Whether a route reads query parameters of its own; the others take only `user_id`.
fn takes_query(route: Route) -> bool {
    matches!(
        route,
        Route::ListMemories | Route::GetAccessLog | Route::GetRelatedMemories
    )
}

/// 200 with a JSON body.
fn ok<T: Serialize>(value: &T) -> Result<Response<ResponseBody>, ApiError> {
    Ok(json_response(StatusCode::OK, value))
}

/// 201 with the new memory and its `Location`.
fn created(memory: &MemoryResponse) -> Result<Response<ResponseBody>, ApiError> {
    let mut response = json_response(StatusCode::CREATED, memory);
    let location = format!("{}/memories/{}", super::routes::API_PREFIX, memory.id);
    // A UUID and a constant prefix are always a valid header value.
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}
