//! Per-user memory storage.
//!
//! [`MemoryStore`] is the storage contract of the memory API. `SqliteStore`
//! (feature `sqlite`, the default) implements it over an embedded SQLite file;
//! `PostgresStore` (feature `postgres`) over PostgreSQL, for several replicas
//! behind a load balancer. Both search with the same in-process engine.
//!
//! # Owner scoping
//!
//! Every method takes the [`Owner`] (the verified token's `sub`) and the
//! store, not the caller, scopes every read, change and count to that owner.
//! There is no method that reaches another owner's data: an id of someone
//! else's memory behaves exactly like an id that does not exist.
//!
//! # Input limits
//!
//! Every request is checked against the store's [`Limits`] before any I/O. A
//! violation is an [`ErrorKind::InvalidInput`] and nothing is written; batch
//! writes are all-or-nothing.

mod access;
mod clock;
// The checks and error constructors serve every store; without one compiled in they are unused.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod ids;
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod limits;
mod memory;
mod owner;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod query;
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod search;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::future::Future;

use serde_json::{Map, Value};

pub use self::access::{Access, AccessLogEntry};
pub(crate) use self::clock::now_unix_ms;
pub use self::clock::{Clock, SystemClock};
pub use self::error::{ErrorKind, StoreError};
pub use self::limits::{Limits, MAX_APP_BYTES, MAX_VIA_BYTES};
pub use self::memory::{
    InvalidMemoryId, InvalidMemoryState, Memory, MemoryId, MemoryState, NewMemory,
};
pub use self::owner::{InvalidOwner, MAX_OWNER_BYTES, Owner};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresOptions, PostgresStore};
pub use self::query::{
    ActivityDay, AppStats, ListQuery, MAX_ACTIVITY_DAYS, Page, SearchHit, SearchQuery, SortColumn,
    SortDirection, Stats,
};
pub use self::search::SearchParams;
#[cfg(feature = "app")]
pub(crate) use self::search::match_spans;
#[cfg(feature = "sqlite")]
pub use self::sqlite::{SqliteOptions, SqliteStore};

/// Storage of memories, scoped per owner.
///
/// Implementations are cheap to share (`Send + Sync + 'static`) and their
/// futures are `Send`, so a handler can call them from any task. Methods that
/// take ids silently skip ids that are not the owner's (or do not exist);
/// methods about one memory return `None` for them. Deleted memories are
/// tombstones: never returned, never counted, never changed again.
pub trait MemoryStore: Send + Sync + 'static {
    /// Adds a batch of memories written by their `app`s, all or none.
    ///
    /// An empty batch adds nothing. Returns the stored memories in input order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if the batch or any memory breaks a limit
    /// (then nothing is stored); a backend kind if the database fails.
    fn add(
        &self,
        owner: &Owner,
        memories: Vec<NewMemory>,
    ) -> impl Future<Output = Result<Vec<Memory>, StoreError>> + Send;

    /// Fetches one memory that is not deleted and records the access in its
    /// access log (written behind, as [`record_access`](Self::record_access) does).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `access` is malformed; a backend kind if
    /// the database fails.
    fn get(
        &self,
        owner: &Owner,
        id: MemoryId,
        access: &Access,
    ) -> impl Future<Output = Result<Option<Memory>, StoreError>> + Send;

    /// Fetches one memory that is not deleted without recording an access: for its
    /// owner looking at it (the memory page), not for an app reading it.
    ///
    /// # Errors
    ///
    /// A backend kind if the database fails.
    fn memory(
        &self,
        owner: &Owner,
        id: MemoryId,
    ) -> impl Future<Output = Result<Option<Memory>, StoreError>> + Send;

    /// Replaces the text of a memory that is not deleted, and its metadata if
    /// given, and re-indexes it for search. `None` if no such memory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if the text or metadata breaks a limit; a
    /// backend kind if the database fails.
    fn update_text(
        &self,
        owner: &Owner,
        id: MemoryId,
        text: String,
        metadata: Option<Map<String, Value>>,
    ) -> impl Future<Output = Result<Option<Memory>, StoreError>> + Send;

    /// Moves memories to `state` (archive, pause, resume), all or none.
    /// Returns how many changed; memories already in `state` do not count.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `state` is [`MemoryState::Deleted`] (use
    /// [`delete`](Self::delete)) or there are too many ids.
    fn set_state(
        &self,
        owner: &Owner,
        ids: &[MemoryId],
        state: MemoryState,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes memories, all or none: each becomes a tombstone whose text,
    /// metadata, categories, search entry and access log are gone. Returns how
    /// many were deleted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if there are too many ids.
    fn delete(
        &self,
        owner: &Owner,
        ids: &[MemoryId],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes every memory of the owner, as [`delete`](Self::delete) does.
    /// Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// A backend kind if the database fails (then nothing is deleted).
    fn delete_all(&self, owner: &Owner) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Lists memories by filters, order and page.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if the query breaks a limit.
    fn list(
        &self,
        owner: &Owner,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Page<Memory>, StoreError>> + Send;

    /// Full-text search, best first. A query without any word finds nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if the query breaks a limit. Query text is
    /// never interpreted as a query language, so no text makes it fail.
    fn search(
        &self,
        owner: &Owner,
        query: &SearchQuery,
    ) -> impl Future<Output = Result<Vec<SearchHit>, StoreError>> + Send;

    /// Categories of the owner's non-deleted memories with how many memories
    /// have each, most used first.
    ///
    /// # Errors
    ///
    /// A backend kind if the database fails.
    fn categories(
        &self,
        owner: &Owner,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;

    /// One page of a memory's access log, newest first; `None` if the memory
    /// is not the owner's or is deleted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if the page or size is out of range.
    fn access_log(
        &self,
        owner: &Owner,
        id: MemoryId,
        page: u32,
        size: u32,
    ) -> impl Future<Output = Result<Option<Page<AccessLogEntry>>, StoreError>> + Send;

    /// Records that `access` read these memories (e.g. the hits of a search).
    /// Returns how many entries are recorded; ids that are not the owner's
    /// non-deleted memories are skipped.
    ///
    /// The entries may be written behind the call, off the read path (the
    /// SQLite store commits them with its next write group, without an fsync
    /// of their own); [`access_log`](Self::access_log) and
    /// [`stats`](Self::stats) see every entry recorded before they were called.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `access` is malformed or there are too
    /// many ids.
    fn record_access(
        &self,
        owner: &Owner,
        ids: &[MemoryId],
        access: &Access,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`search`](Self::search), then [`record_access`](Self::record_access)
    /// of the hits by `access`, as a tool that shows them does. A store may
    /// record the hits without reading them again (the SQLite store queues
    /// them behind the search).
    ///
    /// # Errors
    ///
    /// Those of [`search`](Self::search) and [`record_access`](Self::record_access).
    fn search_recorded(
        &self,
        owner: &Owner,
        query: &SearchQuery,
        access: &Access,
    ) -> impl Future<Output = Result<Vec<SearchHit>, StoreError>> + Send {
        async move {
            let hits = self.search(owner, query).await?;
            let ids: Vec<MemoryId> = hits.iter().map(|hit| hit.memory.id).collect();
            if !ids.is_empty() {
                self.record_access(owner, &ids, access).await?;
            }
            Ok(hits)
        }
    }

    /// Up to `limit` active or paused memories related to one: those sharing
    /// the most categories first, then the newest. A memory without
    /// categories gets the memories most similar to its text instead. Never
    /// includes the memory itself. `None` if the memory is not the owner's or
    /// is deleted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `limit` is outside
    /// 1..=[`Limits::max_search_limit`].
    fn related(
        &self,
        owner: &Owner,
        id: MemoryId,
        limit: u32,
    ) -> impl Future<Output = Result<Option<Vec<Memory>>, StoreError>> + Send;

    /// Usage figures per app.
    ///
    /// # Errors
    ///
    /// A backend kind if the database fails.
    fn stats(&self, owner: &Owner) -> impl Future<Output = Result<Stats, StoreError>> + Send;

    /// What each app did per UTC day from `since` (Unix milliseconds,
    /// inclusive) on: how many of the owner's memories it added (not
    /// deleted since) and how many reads of them it made (access-log entries,
    /// see [`ActivityDay::read`]). Ordered by day, then app; a day and app
    /// with nothing to count has no row.
    ///
    /// Events before `since` are not counted, so a `since` in the middle of
    /// a day makes that day's row partial; pass a UTC midnight for whole days.
    /// A `since` more than [`MAX_ACTIVITY_DAYS`] days before the UTC midnight
    /// starting today (by the store's clock) is raised to that midnight, so
    /// the answer covers at most `MAX_ACTIVITY_DAYS + 1` days. Like
    /// [`stats`](Self::stats), it sees every read recorded before the call.
    ///
    /// # Errors
    ///
    /// A backend kind if the database fails.
    fn activity(
        &self,
        owner: &Owner,
        since: i64,
    ) -> impl Future<Output = Result<Vec<ActivityDay>, StoreError>> + Send;

    /// Checks that the store can answer a trivial query.
    ///
    /// # Errors
    ///
    /// A backend kind or [`ErrorKind::Unavailable`] if it cannot.
    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
