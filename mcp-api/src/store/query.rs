//! Listing and searching: [`ListQuery`], [`SearchQuery`] and what they return.

use serde::{Deserialize, Serialize};

use super::memory::{Memory, MemoryState};

/// Filters, order and page of [`MemoryStore::list`](super::MemoryStore::list).
///
/// Filters combine with AND. The default lists active and paused memories,
/// newest first, 20 per page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// States to include; must be non-empty and must not contain
    /// [`MemoryState::Deleted`]. Default: active and paused.
    pub states: Vec<MemoryState>,
    /// Keep memories with any of these categories (normalised like a
    /// memory's). Empty: no category filter.
    pub categories: Vec<String>,
    /// Keep memories written by this app only.
    pub app: Option<String>,
    /// Keep memories created at or after this Unix millisecond.
    pub from: Option<i64>,
    /// Keep memories created at or before this Unix millisecond.
    pub to: Option<i64>,
    /// Keep memories whose text contains this substring, ignoring ASCII case.
    pub text_contains: Option<String>,
    /// Order by this column.
    pub sort: SortColumn,
    /// In this direction.
    pub direction: SortDirection,
    /// 1-based page number.
    pub page: u32,
    /// Items per page, 1 to [`Limits::max_page_size`](super::Limits::max_page_size).
    pub size: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            states: vec![MemoryState::Active, MemoryState::Paused],
            categories: Vec::new(),
            app: None,
            from: None,
            to: None,
            text_contains: None,
            sort: SortColumn::CreatedAt,
            direction: SortDirection::Descending,
            page: 1,
            size: 20,
        }
    }
}

impl ListQuery {
    /// The default query: active and paused memories, newest first, page 1 of 20.
    ///
    /// ```
    /// use mcp_api::store::{ListQuery, MemoryState, SortColumn, SortDirection};
    ///
    /// let query = ListQuery::new()
    ///     .with_states([MemoryState::Archived])
    ///     .with_categories(["work"])
    ///     .with_text_contains("100%")
    ///     .with_sort(SortColumn::UpdatedAt, SortDirection::Ascending)
    ///     .with_page(2, 50);
    /// assert_eq!(query.page, 2);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the states to include.
    #[must_use]
    pub fn with_states(mut self, states: impl IntoIterator<Item = MemoryState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Keeps memories with any of these categories.
    #[must_use]
    pub fn with_categories<I>(mut self, categories: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.categories = categories.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps memories written by this app.
    #[must_use]
    pub fn with_app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// Keeps memories created within `from..=to` (Unix milliseconds); `None` leaves that side open.
    #[must_use]
    pub fn with_created_between(mut self, from: Option<i64>, to: Option<i64>) -> Self {
        self.from = from;
        self.to = to;
        self
    }

    /// Keeps memories whose text contains `needle`, ignoring ASCII case.
    #[must_use]
    pub fn with_text_contains(mut self, needle: impl Into<String>) -> Self {
        self.text_contains = Some(needle.into());
        self
    }

    /// Sets the order.
    #[must_use]
    pub fn with_sort(mut self, sort: SortColumn, direction: SortDirection) -> Self {
        self.sort = sort;
        self.direction = direction;
        self
    }

    /// Sets the 1-based page number and page size.
    #[must_use]
    pub fn with_page(mut self, page: u32, size: u32) -> Self {
        self.page = page;
        self.size = size;
        self
    }
}

/// The column [`ListQuery`] orders by; ties are broken by insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SortColumn {
    /// Creation time.
    CreatedAt,
    /// Last change time.
    UpdatedAt,
    /// The text, ignoring ASCII case.
    Text,
    /// The writing app.
    App,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortDirection {
    /// Smallest first.
    #[serde(rename = "asc")]
    Ascending,
    /// Largest first.
    #[serde(rename = "desc")]
    Descending,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// How many items match across all pages.
    pub total: u64,
    /// This page's 1-based number.
    pub page: u32,
    /// The requested page size.
    pub size: u32,
    /// How many pages there are (0 when nothing matches).
    pub pages: u64,
}

impl<T> Page<T> {
    pub(crate) fn new(items: Vec<T>, total: u64, page: u32, size: u32) -> Self {
        Self {
            items,
            total,
            page,
            size,
            pages: total.div_ceil(u64::from(size.max(1))),
        }
    }
}

/// A full-text search of [`MemoryStore::search`](super::MemoryStore::search).
///
/// The query is plain words, not a query language: it is split into words
/// (stop words dropped, spellings and word forms normalised, stemmed), and a
/// memory matches if it or a memory written just before or after it has any
/// of them; the owner's memories are ranked by BM25F with that context, and
/// weak matches fall below a relevance floor. Default: 10 results from
/// active memories.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchQuery {
    /// The words to look for.
    pub query: String,
    /// At most this many hits, 1 to [`Limits::max_search_limit`](super::Limits::max_search_limit).
    pub limit: u32,
    /// States to include; non-empty, without [`MemoryState::Deleted`]. Default: active.
    pub states: Vec<MemoryState>,
    /// Keep memories with any of these categories. Empty: no category filter.
    pub categories: Vec<String>,
    /// Keep memories written by this app only.
    pub app: Option<String>,
}

impl SearchQuery {
    /// Searches active memories for `query`, returning at most 10 hits.
    ///
    /// ```
    /// use mcp_api::store::{MemoryState, SearchQuery};
    ///
    /// let query = SearchQuery::new("what coffee do I like?")
    ///     .with_limit(5)
    ///     .with_states([MemoryState::Active, MemoryState::Paused]);
    /// assert_eq!(query.limit, 5);
    /// ```
    #[must_use]
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            limit: 10,
            states: vec![MemoryState::Active],
            categories: Vec::new(),
            app: None,
        }
    }

    /// Sets the most hits to return.
    #[must_use]
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Replaces the states to include.
    #[must_use]
    pub fn with_states(mut self, states: impl IntoIterator<Item = MemoryState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Keeps memories with any of these categories.
    #[must_use]
    pub fn with_categories<I>(mut self, categories: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.categories = categories.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps memories written by this app.
    #[must_use]
    pub fn with_app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }
}

/// A memory found by [`MemoryStore::search`](super::MemoryStore::search).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SearchHit {
    /// The memory.
    pub memory: Memory,
    /// Relevance, higher is better (BM25F over the owner's own memories). Comparable only within one
    /// result list.
    pub score: f64,
    /// An excerpt of the text with each matched term as `**term**` and `…`
    /// where text was cut.
    pub snippet: String,
}

/// Usage figures of one owner, from [`MemoryStore::stats`](super::MemoryStore::stats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Memories that are not deleted.
    pub total_memories: u64,
    /// Apps that wrote a non-deleted memory or read one (`apps.len()`).
    pub total_apps: u64,
    /// Per app, ordered by app.
    pub apps: Vec<AppStats>,
}

/// Usage figures of one app for one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AppStats {
    /// The OAuth `client_id`.
    pub app: String,
    /// Non-deleted memories it wrote.
    pub memories_created: u64,
    /// Distinct non-deleted memories it read.
    pub memories_accessed: u64,
    /// When it last wrote or read, in Unix milliseconds: the latest creation
    /// of a non-deleted memory it wrote and of its reads in the access log
    /// (which keeps reads for the store's retention period only). `None` if
    /// it has neither.
    pub last_used_at: Option<i64>,
}

/// How far back [`MemoryStore::activity`](super::MemoryStore::activity)
/// reaches, in whole UTC days before today.
pub const MAX_ACTIVITY_DAYS: u32 = 400;

/// One app's activity on one UTC day, from
/// [`MemoryStore::activity`](super::MemoryStore::activity).
///
/// A row exists only for a day and app with something to count; days without
/// activity have no row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ActivityDay {
    /// The day, as the Unix millisecond of the UTC midnight that starts it.
    pub day: i64,
    /// The OAuth `client_id`.
    pub app: String,
    /// Memories it wrote that day that are not deleted.
    pub added: u64,
    /// Reads it made that day, as recorded in the access log: every read
    /// counts, also repeated reads of one memory. Reads of memories deleted
    /// since are gone with their access log.
    pub read: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_counts_round_up() {
        assert_eq!(Page::<()>::new(Vec::new(), 0, 1, 10).pages, 0);
        assert_eq!(Page::<()>::new(Vec::new(), 10, 1, 10).pages, 1);
        assert_eq!(Page::<()>::new(Vec::new(), 11, 1, 10).pages, 2);
    }
}
