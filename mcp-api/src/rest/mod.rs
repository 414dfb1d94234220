//! The REST API under `/api/v1`: OpenMemory's routes, scoped to the access token's subject.
//!
//! [`RestApi`] is a tower service meant to sit behind
//! [`jwks_verify::BearerAuthLayer<AccessClaims>`](crate::AccessClaims). It routes with a
//! small table ([`routes()`]), checks the token's scope per route, parses typed inputs
//! (such as [`CreateMemoryRequest`]) and calls the [`MemoryStore`](crate::MemoryStore) with the caller's
//! [`Owner`](crate::Owner). [`openapi_document`] describes the same table with schemas
//! generated from the same types.
//!
//! # Routes
//!
//! | Method | Path | Scope | Answer |
//! |---|---|---|---|
//! | GET | `/api/v1/memories/` | read | [`MemoryPage`] (query [`ListMemoriesParams`]) |
//! | POST | `/api/v1/memories/` | write | 201 [`MemoryResponse`] (body [`CreateMemoryRequest`]) |
//! | DELETE | `/api/v1/memories/` | write | [`DeletedResponse`] (body [`MemoryIdsRequest`]) |
//! | GET | `/api/v1/memories/{id}` | read | [`MemoryDetailResponse`], logged as `rest:get` |
//! | PUT | `/api/v1/memories/{id}` | write | [`MemoryResponse`] (body [`UpdateMemoryRequest`]) |
//! | POST | `/api/v1/memories/actions/archive` | write | [`UpdatedResponse`] (body [`MemoryIdsRequest`]) |
//! | POST | `/api/v1/memories/actions/pause` | write | [`UpdatedResponse`] (body [`PauseMemoriesRequest`]) |
//! | POST | `/api/v1/memories/filter` | read | [`MemoryPage`] (body [`FilterMemoriesRequest`]) |
//! | GET | `/api/v1/memories/categories` | read | [`CategoriesResponse`] |
//! | GET | `/api/v1/memories/{id}/access-log` | read | [`AccessLogPage`] (query [`AccessLogParams`]) |
//! | GET | `/api/v1/memories/{id}/related` | read | [`RelatedMemoriesResponse`] (query [`RelatedParams`]) |
//! | GET | `/api/v1/stats/` | read | [`StatsResponse`] |
//!
//! Every path matches with or without a trailing slash. `memories:write` implies
//! `memories:read`.
//!
//! # Errors
//!
//! Every failure is an [`ErrorResponse`] `{"error": code, "message": text, "field"?: name}`:
//! 401 `unauthorized` (no verified claims; with `WWW-Authenticate`), 403
//! `insufficient_scope` (with `WWW-Authenticate: Bearer error="insufficient_scope"`), 404
//! `not_found` (unknown route, or an id that is not one of the caller's memories — someone
//! else's memory looks exactly like a missing one), 405 `method_not_allowed` (with
//! `Allow`), 415 `unsupported_media_type` (a body route without `Content-Type:
//! application/json`), 413 `payload_too_large`, 400 `invalid_json`, 422 `invalid_request`
//! (a broken rule or limit, an unknown field or parameter; nothing is written), 503
//! `service_unavailable` (store busy; `Retry-After`) and 500 `internal_error` (store failure;
//! logged, never detailed to the client).
//!
//! ```
//! use mcp_api::rest::{ErrorCode, ErrorResponse};
//!
//! let body: ErrorResponse = serde_json::from_str(
//!     r#"{"error":"invalid_request","message":"invalid text: must not be empty","field":"text"}"#,
//! )?;
//! assert_eq!(body.error, ErrorCode::InvalidRequest);
//! assert_eq!(body.field.as_deref(), Some("text"));
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! # OpenMemory's fields, and unknown fields
//!
//! OpenMemory's clients send `user_id` in every query string and most bodies (and `app`,
//! `infer`, `memory_id`, `all_for_app`, `category_ids` on some routes). Those are accepted so
//! the clients work unchanged, and never choose anything: the owner is always the token's
//! `sub`, and the app recorded on writes is always its `client_id`. Any other unknown field or
//! query parameter is refused with 422 naming it.
//!
//! # Limits
//!
//! The OpenAPI document states every limit the handlers enforce (the default
//! [`Limits`](crate::Limits)); a filter that can match nothing (an inverted date range, an
//! impossible app or category) answers an empty page rather than an error.

mod error;
mod extract;
mod handlers;
mod model;
mod openapi;
mod query;
mod routes;
mod service;

pub use self::error::{ErrorCode, ErrorResponse};
pub use self::model::{
    AccessLogItem, AccessLogPage, AccessLogParams, AppUsage, CategoriesResponse, CategoryCount,
    CreateMemoryRequest, DeletedResponse, FilterMemoriesRequest, ListMemoriesParams,
    MemoryDetailResponse, MemoryIdPath, MemoryIdsRequest, MemoryPage, MemoryResponse,
    PauseMemoriesRequest, PauseState, RelatedMemoriesResponse, RelatedParams, SortField, SortOrder,
    StatsResponse, UpdateMemoryRequest, UpdatedResponse, UserIdParams,
};
pub use self::openapi::{OIDC_SCHEME, openapi_document};
pub use self::routes::{API_PREFIX, RequiredScope, Route, RouteSpec, routes};
pub use self::service::RestApi;
