//! The memory API of an authenticated MCP server: OpenMemory's data model
//! (memories with state, categories, apps and an access log) where every
//! operation belongs to the `sub` of a verified OAuth access token.
//!
//! What exists so far is the storage layer, [`store`]:
//!
//! - [`MemoryStore`], the storage contract: add, get, update, change state,
//!   delete, list with filters and pages, full-text search, categories,
//!   access log, related memories and per-app statistics, every method
//!   scoped to one [`Owner`];
//! - [`SqliteStore`] (feature `sqlite`, on by default), its implementation
//!   over an embedded SQLite file with an FTS5 index;
//! - the value types ([`Memory`], [`NewMemory`], [`ListQuery`],
//!   [`SearchQuery`], …), input [`Limits`] and the typed [`StoreError`].
//!
//! The MCP tools and REST routes that call the store come next.
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

pub mod auth;
pub mod http;
pub mod mcp;
pub mod resource;
pub mod rest;
pub mod store;

pub use auth::{AccessClaims, Caller};
pub use resource::ProtectedResource;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    Access, Limits, ListQuery, Memory, MemoryId, MemoryState, MemoryStore, NewMemory, Owner,
    SearchQuery, StoreError,
};
