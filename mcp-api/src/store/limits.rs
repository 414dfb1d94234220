//! [`Limits`] on input sizes, and the checks every store runs before any I/O.
//!
//! A store turns each request into a `Checked*` value first; only a checked
//! value reaches the database, so a violation is an
//! [`ErrorKind::InvalidInput`](super::ErrorKind::InvalidInput) and nothing is
//! written.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::access::Access;
use super::error::StoreError;
use super::memory::{MemoryId, MemoryState, NewMemory};
use super::query::{ListQuery, SearchQuery, SortColumn, SortDirection};

/// The most bytes an app (`client_id`) may have.
pub const MAX_APP_BYTES: usize = 255;

/// The most bytes an [`Access::via`] may have.
pub const MAX_VIA_BYTES: usize = 64;

/// Size limits a store enforces on every request.
///
/// ```
/// use mcp_api::store::Limits;
///
/// let mut limits = Limits::default();
/// assert_eq!(limits.max_text_bytes, 16 * 1024);
/// limits.max_batch = 10;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most bytes of a memory's text. Default 16 KiB.
    pub max_text_bytes: usize,
    /// Most bytes of a memory's metadata, serialised as compact JSON. Default 16 KiB.
    pub max_metadata_bytes: usize,
    /// Most categories on one memory or in one filter. Default 32.
    pub max_categories: usize,
    /// Most characters of one category. Default 64.
    pub max_category_chars: usize,
    /// Most memories or ids in one add, delete, state change or access record. Default 100.
    pub max_batch: usize,
    /// Largest page size. Default 100.
    pub max_page_size: u32,
    /// Most bytes of a search query or a `text_contains` filter. Default 1 KiB.
    pub max_query_bytes: usize,
    /// Most hits one search may ask for. Default 50.
    pub max_search_limit: u32,
    /// Most memories (not deleted) one owner may have. Default 100,000.
    pub max_memories_per_owner: u64,
    /// Most bytes of text and metadata (of memories not deleted) one owner may
    /// have. Default 256 MiB.
    pub max_bytes_per_owner: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_bytes: 16 * 1024,
            max_metadata_bytes: 16 * 1024,
            max_categories: 32,
            max_category_chars: 64,
            max_batch: 100,
            max_page_size: 100,
            max_query_bytes: 1024,
            max_search_limit: 50,
            max_memories_per_owner: 100_000,
            max_bytes_per_owner: 256 * 1024 * 1024,
        }
    }
}

/// A [`NewMemory`] that passed the limits, with its metadata serialised and
/// its categories normalised.
#[derive(Debug, Clone)]
pub(crate) struct CheckedMemory {
    pub(crate) text: String,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) metadata_json: String,
    pub(crate) categories: Vec<String>,
    pub(crate) app: String,
}

/// A [`ListQuery`] that passed the limits.
#[derive(Debug, Clone)]
pub(crate) struct CheckedListQuery {
    pub(crate) states: Vec<MemoryState>,
    pub(crate) categories: Vec<String>,
    pub(crate) app: Option<String>,
    pub(crate) from: Option<i64>,
    pub(crate) to: Option<i64>,
    pub(crate) text_contains: Option<String>,
    pub(crate) sort: SortColumn,
    pub(crate) direction: SortDirection,
    pub(crate) page: u32,
    pub(crate) size: u32,
}

/// A [`SearchQuery`] that passed the limits.
#[derive(Debug, Clone)]
pub(crate) struct CheckedSearchQuery {
    pub(crate) query: String,
    pub(crate) limit: u32,
    pub(crate) states: Vec<MemoryState>,
    pub(crate) categories: Vec<String>,
    pub(crate) app: Option<String>,
}

impl Limits {
    pub(crate) fn check_new_memories(
        &self,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<CheckedMemory>, StoreError> {
        self.check_batch_len("memories", memories.len())?;
        memories
            .into_iter()
            .map(|memory| self.check_new_memory(memory))
            .collect()
    }

    fn check_new_memory(&self, memory: NewMemory) -> Result<CheckedMemory, StoreError> {
        let NewMemory {
            text,
            metadata,
            categories,
            app,
        } = memory;
        self.check_text(&text)?;
        let metadata_json = self.check_metadata(&metadata)?;
        Ok(CheckedMemory {
            text,
            metadata,
            metadata_json,
            categories: self.normalise_categories(categories)?,
            app: check_app("app", app)?,
        })
    }

    pub(crate) fn check_ids(&self, ids: &[MemoryId]) -> Result<(), StoreError> {
        self.check_batch_len("ids", ids.len())
    }

    fn check_batch_len(&self, field: &'static str, len: usize) -> Result<(), StoreError> {
        if len > self.max_batch {
            return Err(StoreError::invalid_input(
                field,
                format!("at most {} per request", self.max_batch),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_text(&self, text: &str) -> Result<(), StoreError> {
        if text.trim().is_empty() {
            return Err(StoreError::invalid_input("text", "must not be empty"));
        }
        if text.len() > self.max_text_bytes {
            return Err(StoreError::invalid_input(
                "text",
                format!("must be at most {} bytes", self.max_text_bytes),
            ));
        }
        if text.contains('\0') {
            return Err(StoreError::invalid_input(
                "text",
                "must not contain NUL characters",
            ));
        }
        Ok(())
    }

    /// Serialises the metadata, which must fit the limit.
    pub(crate) fn check_metadata(
        &self,
        metadata: &Map<String, Value>,
    ) -> Result<String, StoreError> {
        let json = serde_json::to_string(metadata)
            .map_err(|_| StoreError::invalid_input("metadata", "must be serialisable JSON"))?;
        if json.len() > self.max_metadata_bytes {
            return Err(StoreError::invalid_input(
                "metadata",
                format!("must be at most {} bytes as JSON", self.max_metadata_bytes),
            ));
        }
        Ok(json)
    }

    /// Trims, lowercases, deduplicates and sorts categories.
    pub(crate) fn normalise_categories(
        &self,
        categories: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        if categories.len() > self.max_categories {
            return Err(StoreError::invalid_input(
                "categories",
                format!("at most {} categories", self.max_categories),
            ));
        }
        let mut normalised = BTreeSet::new();
        for category in categories {
            normalised.insert(self.normalise_category(&category)?);
        }
        Ok(normalised.into_iter().collect())
    }

    fn normalise_category(&self, category: &str) -> Result<String, StoreError> {
        let category = category.trim().to_lowercase();
        if category.is_empty() {
            return Err(StoreError::invalid_input(
                "categories",
                "a category must not be empty",
            ));
        }
        if category.chars().count() > self.max_category_chars {
            return Err(StoreError::invalid_input(
                "categories",
                format!(
                    "a category must be at most {} characters",
                    self.max_category_chars
                ),
            ));
        }
        if category.chars().any(char::is_control) {
            return Err(StoreError::invalid_input(
                "categories",
                "a category must not contain control characters",
            ));
        }
        Ok(category)
    }

    pub(crate) fn check_list_query(
        &self,
        query: &ListQuery,
    ) -> Result<CheckedListQuery, StoreError> {
        self.check_page(query.page, query.size)?;
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(StoreError::invalid_input("from", "must not be after to"));
        }
        Ok(CheckedListQuery {
            states: check_states(&query.states)?,
            categories: self.normalise_categories(query.categories.clone())?,
            app: query
                .app
                .clone()
                .map(|app| check_app("app", app))
                .transpose()?,
            from: query.from,
            to: query.to,
            text_contains: query
                .text_contains
                .clone()
                .map(|needle| self.check_text_contains(needle))
                .transpose()?,
            sort: query.sort,
            direction: query.direction,
            page: query.page,
            size: query.size,
        })
    }

    fn check_text_contains(&self, needle: String) -> Result<String, StoreError> {
        if needle.len() > self.max_query_bytes {
            return Err(StoreError::invalid_input(
                "text_contains",
                format!("must be at most {} bytes", self.max_query_bytes),
            ));
        }
        if needle.contains('\0') {
            return Err(StoreError::invalid_input(
                "text_contains",
                "must not contain NUL characters",
            ));
        }
        Ok(needle)
    }

    pub(crate) fn check_page(&self, page: u32, size: u32) -> Result<(), StoreError> {
        if page == 0 {
            return Err(StoreError::invalid_input(
                "page",
                "pages are numbered from 1",
            ));
        }
        if size == 0 || size > self.max_page_size {
            return Err(StoreError::invalid_input(
                "size",
                format!("must be between 1 and {}", self.max_page_size),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_search_query(
        &self,
        query: &SearchQuery,
    ) -> Result<CheckedSearchQuery, StoreError> {
        if query.query.len() > self.max_query_bytes {
            return Err(StoreError::invalid_input(
                "query",
                format!("must be at most {} bytes", self.max_query_bytes),
            ));
        }
        self.check_search_limit(query.limit)?;
        Ok(CheckedSearchQuery {
            query: query.query.clone(),
            limit: query.limit,
            states: check_states(&query.states)?,
            categories: self.normalise_categories(query.categories.clone())?,
            app: query
                .app
                .clone()
                .map(|app| check_app("app", app))
                .transpose()?,
        })
    }

    pub(crate) fn check_search_limit(&self, limit: u32) -> Result<(), StoreError> {
        if limit == 0 || limit > self.max_search_limit {
            return Err(StoreError::invalid_input(
                "limit",
                format!("must be between 1 and {}", self.max_search_limit),
            ));
        }
        Ok(())
    }
}

/// Checks the reader of an access-log entry.
pub(crate) fn check_access(access: &Access) -> Result<Access, StoreError> {
    let app = check_app("app", access.app.clone())?;
    let via = &access.via;
    if via.is_empty() || via.len() > MAX_VIA_BYTES {
        return Err(StoreError::invalid_input(
            "via",
            format!("must be 1 to {MAX_VIA_BYTES} bytes"),
        ));
    }
    if !via.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(StoreError::invalid_input(
            "via",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(Access::new(app, via.clone()))
}

/// An app is an OAuth `client_id`: 1 to [`MAX_APP_BYTES`] bytes, no control characters.
fn check_app(field: &'static str, app: String) -> Result<String, StoreError> {
    if app.is_empty() || app.len() > MAX_APP_BYTES {
        return Err(StoreError::invalid_input(
            field,
            format!("must be 1 to {MAX_APP_BYTES} bytes"),
        ));
    }
    if app.chars().any(char::is_control) {
        return Err(StoreError::invalid_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(app)
}

/// A state filter is non-empty and cannot ask for deleted memories (they are wiped).
fn check_states(states: &[MemoryState]) -> Result<Vec<MemoryState>, StoreError> {
    if states.is_empty() {
        return Err(StoreError::invalid_input(
            "states",
            "must name at least one state",
        ));
    }
    if states.contains(&MemoryState::Deleted) {
        return Err(StoreError::invalid_input(
            "states",
            "deleted memories cannot be listed or searched",
        ));
    }
    let mut states = states.to_vec();
    states.sort_by_key(|state| state.as_str());
    states.dedup();
    Ok(states)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::ErrorKind;

    fn field_of(error: &StoreError) -> &'static str {
        match error.kind() {
            ErrorKind::InvalidInput { field, .. } => field,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn categories_are_trimmed_lowercased_deduplicated_and_sorted() {
        let limits = Limits::default();
        let categories = limits
            .normalise_categories(vec![
                " Work ".into(),
                "work".into(),
                "ÉTÉ".into(),
                "health".into(),
            ])
            .unwrap();
        assert_eq!(categories, ["health", "work", "été"]);
    }

    #[test]
    fn category_length_counts_characters_not_bytes() {
        let limits = Limits::default();
        assert!(limits.normalise_categories(vec!["é".repeat(64)]).is_ok());
        let error = limits
            .normalise_categories(vec!["é".repeat(65)])
            .unwrap_err();
        assert_eq!(field_of(&error), "categories");
    }

    #[test]
    fn blank_category_is_rejected() {
        let error = Limits::default()
            .normalise_categories(vec!["  ".into()])
            .unwrap_err();
        assert_eq!(field_of(&error), "categories");
    }

    #[test]
    fn text_at_the_limit_passes_and_one_byte_more_fails() {
        let limits = Limits::default();
        assert!(limits.check_text(&"a".repeat(16 * 1024)).is_ok());
        let error = limits.check_text(&"a".repeat(16 * 1024 + 1)).unwrap_err();
        assert_eq!(field_of(&error), "text");
    }

    #[test]
    fn blank_and_nul_text_is_rejected() {
        let limits = Limits::default();
        assert!(limits.check_text(" \n ").is_err());
        assert!(limits.check_text("a\0b").is_err());
    }

    #[test]
    fn metadata_limit_is_on_serialised_bytes() {
        let limits = Limits::default();
        let big = json!({ "k": "v".repeat(16 * 1024) });
        let error = limits.check_metadata(big.as_object().unwrap()).unwrap_err();
        assert_eq!(field_of(&error), "metadata");
        let small = json!({ "k": "v" });
        assert_eq!(
            limits.check_metadata(small.as_object().unwrap()).unwrap(),
            r#"{"k":"v"}"#
        );
    }

    #[test]
    fn states_cannot_be_empty_or_deleted() {
        assert!(check_states(&[]).is_err());
        assert!(check_states(&[MemoryState::Active, MemoryState::Deleted]).is_err());
        assert_eq!(
            check_states(&[
                MemoryState::Paused,
                MemoryState::Active,
                MemoryState::Paused
            ])
            .unwrap(),
            [MemoryState::Active, MemoryState::Paused]
        );
    }

    #[test]
    fn page_and_size_bounds() {
        let limits = Limits::default();
        assert_eq!(field_of(&limits.check_page(0, 10).unwrap_err()), "page");
        assert_eq!(field_of(&limits.check_page(1, 0).unwrap_err()), "size");
        assert_eq!(field_of(&limits.check_page(1, 101).unwrap_err()), "size");
        assert!(limits.check_page(1, 100).is_ok());
    }

    #[test]
    fn via_must_be_short_printable_ascii() {
        assert!(check_access(&Access::new("app", "mcp:fetch")).is_ok());
        assert!(check_access(&Access::new("app", "")).is_err());
        assert!(check_access(&Access::new("app", "mcp fetch")).is_err());
        assert!(check_access(&Access::new("app", "x".repeat(65))).is_err());
        assert!(check_access(&Access::new("", "mcp:fetch")).is_err());
    }
}
