//! A private, per-user memory store served as an OAuth-protected MCP server and REST API:
//! OpenMemory's data model (memories with state, categories, apps and an access log) where
//! every operation belongs to the `sub` of a verified RS256 access token.
//!
//! - [`store`]: [`MemoryStore`], the storage contract, every method scoped to one [`Owner`]
//!   inside the store itself; [`SqliteStore`] (feature `sqlite`, default) over one SQLite
//!   file with group commit, an access log written behind reads, and a per-owner
//!   BM25F search engine with neighbour context and highlighted snippets; `PostgresStore`
//!   (feature `postgres`) over PostgreSQL for several replicas, each keeping the same
//!   engine caught up with the others' writes within a second.
//! - [`mcp`]: the MCP server — ChatGPT's `search`/`fetch` tools and OpenMemory's memory
//!   tools over Streamable HTTP (`/mcp`, protocol versions 2025-03-26 to 2025-11-25 and the
//!   stateless 2026-07-28 era) and the legacy HTTP+SSE transport (`/mcp/sse`).
//! - [`rest`]: the REST API under `/api/v1` and its OpenAPI 3.1 document.
//! - [`server`]: [`MemoryServer`], everything composed into one tower `Service` with bearer
//!   authentication (`jwks-verify`), RFC 9728 protected-resource metadata, CORS and health.
//! - `app` (feature `app`): the memory page under `/app/`, where people sign in through
//!   the OpenID provider to see, search, edit, export and delete their memories and
//!   revoke apps' access.
//! - [`auth`], [`resource`], [`http`]: who the caller is, what this resource is called, and
//!   the response body type.
//!
//! **Times**: every time the REST API and the MCP tools show (`created_at`, `updated_at`,
//! `accessed_at`, a `fetch` result's `metadata.created_at`) and every date filter they read
//! (`from_date`, `to_date`) is a JSON integer of Unix **seconds**. The store's own types
//! ([`Memory`], read from [`store::Clock::unix_time_ms`]) count Unix milliseconds; the APIs
//! convert, rounding down.
//!
//! ```
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_api::{Access, Limits, MemoryStore, NewMemory, Owner, SearchQuery, SqliteStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("memories.db"), Limits::default())?;
//! let owner = Owner::new("auth0|alice")?;
//!
//! tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//!     store
//!         .add(&owner, vec![NewMemory::new("Allergic to peanuts", "client-a").with_categories(["health"])])
//!         .await?;
//!     let hits = store.search(&owner, &SearchQuery::new("peanut allergy?")).await?;
//!     assert_eq!(hits[0].snippet, "Allergic to **peanuts**");
//!
//!     let id = hits[0].memory.id;
//!     let fetched = store.get(&owner, id, &Access::new("client-a", "mcp:fetch")).await?;
//!     assert!(fetched.is_some());
//!     Ok(())
//! })
//! # }
//! ```

#[cfg(feature = "app")]
pub mod app;
pub mod auth;
pub mod http;
pub mod mcp;
mod rate_limit;
pub mod resource;
pub mod rest;
pub mod server;
pub mod store;
mod timestamp;

pub use auth::{AccessClaims, Caller};
pub use rate_limit::RateLimit;
pub use resource::ProtectedResource;
pub use server::MemoryServer;
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    Access, Limits, ListQuery, Memory, MemoryId, MemoryState, MemoryStore, NewMemory, Owner,
    SearchQuery, StoreError,
};
