//! The JSON the REST API reads and writes, with the JSON Schemas the OpenAPI document is
//! generated from.
//!
//! Field names follow OpenMemory where they make sense (`content`, `metadata_`, `app_name`,
//! `memory_ids`, `search_query`, …); times are Unix seconds. OpenMemory's clients send
//! fields that name a user or an app (`user_id`, `app`, `infer`, `all_for_app`,
//! `memory_id`): every request type accepts the ones OpenMemory's clients send on that
//! route and ignores them, because the owner is always the access token's subject and the
//! app its `client_id`. Any other unknown field is refused.
//!
//! The schemas state every limit the REST API enforces with the default
//! [`Limits`](crate::store::Limits) (lengths, ranges, patterns); rules JSON Schema cannot
//! state are handled gracefully instead: a filter that cannot match anything (an inverted
//! date range, an app or category no memory can have) gives an empty page.

mod fields;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) use self::fields::documented_limits;
use self::fields::{
    app_ids_schema, category_filter_schema, comma_list_schema, default_page_size,
    default_related_size, first_page, ignored_bool_schema, ignored_string_schema, json_option_i64,
    json_u32, len_u64, memory_id_schema, memory_ids_schema, memory_state_schema,
    new_categories_schema, nullable_bool_schema, nullable_search_query_schema,
    nullable_unix_seconds_schema, page_schema, page_size_schema, related_size_schema,
    search_query_schema, text_schema, unix_seconds_schema,
};
use crate::store::{
    AccessLogEntry, AppStats, Memory, MemoryId, MemoryState, Page, SortColumn, SortDirection, Stats,
};
use crate::timestamp::unix_seconds;

// ----- Requests ------------------------------------------------------------------------------

/// Query parameters of `GET /api/v1/memories/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct ListMemoriesParams {
    /// 1-based page number.
    #[serde(default = "first_page")]
    #[schemars(schema_with = "page_schema")]
    pub page: u32,
    /// Memories per page, 1 to 100.
    #[serde(default = "default_page_size")]
    #[schemars(schema_with = "page_size_schema")]
    pub size: u32,
    /// Only memories written by this app (OAuth `client_id`); empty means any app.
    #[serde(default)]
    #[schemars(with = "String")]
    pub app_id: Option<String>,
    /// Only memories with any of these categories, comma-separated (at most 32; blanks are
    /// ignored; matched after trimming and lowercasing).
    #[serde(default)]
    #[schemars(schema_with = "comma_list_schema")]
    pub categories: Option<String>,
    /// Only memories whose text contains this substring (ASCII case-insensitive; at most
    /// 1024 bytes of UTF-8); empty means no filter.
    #[serde(default)]
    #[schemars(schema_with = "search_query_schema")]
    pub search_query: Option<String>,
    /// Only memories created at or after this Unix second.
    #[serde(default)]
    #[schemars(schema_with = "unix_seconds_schema")]
    pub from_date: Option<i64>,
    /// Only memories created at or before this Unix second (a range that ends before it
    /// starts matches nothing).
    #[serde(default)]
    #[schemars(schema_with = "unix_seconds_schema")]
    pub to_date: Option<i64>,
    /// Sort by this column (default `created_at`).
    #[serde(default)]
    #[schemars(with = "SortField")]
    pub sort_column: Option<SortField>,
    /// Sort direction (default `desc`).
    #[serde(default)]
    #[schemars(with = "SortOrder")]
    pub sort_direction: Option<SortOrder>,
    /// OpenMemory's user id: accepted so OpenMemory's clients work unchanged, and ignored
    /// (the owner is always the access token's subject).
    #[serde(default)]
    #[schemars(with = "String")]
    pub user_id: Option<String>,
}

/// Query parameters of the routes that take no other: OpenMemory's clients send `user_id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct UserIdParams {
    /// OpenMemory's user id: accepted so OpenMemory's clients work unchanged, and ignored
    /// (the owner is always the access token's subject).
    #[serde(default)]
    #[schemars(with = "String")]
    pub user_id: Option<String>,
}

/// Body of `POST /api/v1/memories/`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateMemoryRequest {
    /// The text to remember: not blank, no NUL character, at most 16384 bytes of UTF-8.
    #[schemars(schema_with = "text_schema")]
    pub text: String,
    /// Free-form JSON attributes (at most 16384 bytes serialised as compact JSON).
    pub metadata: Option<Map<String, Value>>,
    /// Categories (at most 32, each not blank, at most 64 characters, no control
    /// characters); trimmed, lowercased and deduplicated.
    #[serde(default)]
    #[schemars(schema_with = "new_categories_schema")]
    pub categories: Option<Vec<String>>,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub user_id: Option<String>,
    /// OpenMemory's app name: accepted and ignored (the app is the token's `client_id`).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub app: Option<String>,
    /// OpenMemory's switch for LLM fact extraction: accepted and ignored (the text is
    /// always stored as given).
    #[serde(default)]
    #[schemars(schema_with = "ignored_bool_schema")]
    pub infer: Option<bool>,
}

/// Body of `PUT /api/v1/memories/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpdateMemoryRequest {
    /// The new text: not blank, no NUL character, at most 16384 bytes of UTF-8.
    #[schemars(schema_with = "text_schema")]
    pub memory_content: String,
    /// New metadata; when absent or null the metadata is kept.
    pub metadata: Option<Map<String, Value>>,
    /// OpenMemory's copy of the path's id: accepted and ignored (the path names the memory).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub memory_id: Option<String>,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub user_id: Option<String>,
}

/// Body of `DELETE /api/v1/memories/` and `POST /api/v1/memories/actions/archive`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryIdsRequest {
    /// The memories to change (at most 100). Ids that are not the caller's memories are
    /// skipped.
    #[schemars(schema_with = "memory_ids_schema")]
    pub memory_ids: Vec<MemoryId>,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub user_id: Option<String>,
}

/// Body of `POST /api/v1/memories/actions/pause`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PauseMemoriesRequest {
    /// The memories to change (at most 100). Ids that are not the caller's memories are
    /// skipped.
    #[schemars(schema_with = "memory_ids_schema")]
    pub memory_ids: Vec<MemoryId>,
    /// The state to move them to.
    #[serde(default)]
    pub state: PauseState,
    /// OpenMemory's "only this app's memories among the ids": accepted and ignored (the
    /// ids given are the caller's memories to change, whichever app wrote them).
    #[serde(default)]
    #[schemars(schema_with = "ignored_bool_schema")]
    pub all_for_app: Option<bool>,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub user_id: Option<String>,
}

/// Body of `POST /api/v1/memories/filter`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FilterMemoriesRequest {
    /// 1-based page number.
    #[serde(default = "first_page", deserialize_with = "json_u32")]
    #[schemars(schema_with = "page_schema")]
    pub page: u32,
    /// Memories per page, 1 to 100.
    #[serde(default = "default_page_size", deserialize_with = "json_u32")]
    #[schemars(schema_with = "page_size_schema")]
    pub size: u32,
    /// Only memories whose text contains this substring (ASCII case-insensitive; at most
    /// 1024 bytes of UTF-8); empty means no filter.
    #[serde(default)]
    #[schemars(schema_with = "nullable_search_query_schema")]
    pub search_query: Option<String>,
    /// Only memories written by this app (OAuth `client_id`); at most one entry.
    #[serde(default)]
    #[schemars(schema_with = "app_ids_schema")]
    pub app_ids: Option<Vec<String>>,
    /// Only memories with any of these categories (at most 32; blanks are ignored; matched
    /// after trimming and lowercasing). OpenMemory's name `category_ids` is accepted too
    /// (categories are named by their names here).
    #[serde(default, alias = "category_ids")]
    #[schemars(schema_with = "category_filter_schema")]
    pub categories: Option<Vec<String>>,
    /// Sort by this column (default `created_at`).
    pub sort_column: Option<SortField>,
    /// Sort direction (default `desc`).
    pub sort_direction: Option<SortOrder>,
    /// Only memories created at or after this Unix second.
    #[serde(default, deserialize_with = "json_option_i64")]
    #[schemars(schema_with = "nullable_unix_seconds_schema")]
    pub from_date: Option<i64>,
    /// Only memories created at or before this Unix second (a range that ends before it
    /// starts matches nothing).
    #[serde(default, deserialize_with = "json_option_i64")]
    #[schemars(schema_with = "nullable_unix_seconds_schema")]
    pub to_date: Option<i64>,
    /// Include archived memories (`null` means false).
    #[serde(default)]
    #[schemars(schema_with = "nullable_bool_schema")]
    pub show_archived: Option<bool>,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(schema_with = "ignored_string_schema")]
    pub user_id: Option<String>,
}

/// Query parameters of `GET /api/v1/memories/{id}/access-log`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct AccessLogParams {
    /// 1-based page number.
    #[serde(default = "first_page")]
    #[schemars(schema_with = "page_schema")]
    pub page: u32,
    /// Entries per page, 1 to 100.
    #[serde(default = "default_page_size")]
    #[schemars(schema_with = "page_size_schema")]
    pub page_size: u32,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(with = "String")]
    pub user_id: Option<String>,
}

/// Query parameters of `GET /api/v1/memories/{id}/related`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct RelatedParams {
    /// How many related memories at most, 1 to 50.
    #[serde(default = "default_related_size")]
    #[schemars(schema_with = "related_size_schema")]
    pub size: u32,
    /// OpenMemory's user id: accepted and ignored (the owner is the token's subject).
    #[serde(default)]
    #[schemars(with = "String")]
    pub user_id: Option<String>,
}

/// The path parameter of the routes about one memory.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(inline)]
#[non_exhaustive]
pub struct MemoryIdPath {
    /// The memory's id (a UUIDv7). An id that is not one of the caller's memories is a 404.
    #[schemars(schema_with = "memory_id_schema")]
    pub id: MemoryId,
}

impl MemoryIdPath {
    /// The id in a path segment; `None` if it is not a UUIDv7 (so names no memory).
    pub(crate) fn parse(segment: &str) -> Option<Self> {
        segment.parse().ok().map(|id| MemoryIdPath { id })
    }
}

/// The column memories are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    /// Creation time.
    CreatedAt,
    /// Last change time.
    UpdatedAt,
    /// The text, ignoring ASCII case.
    Memory,
    /// The writing app.
    AppName,
}

impl From<SortField> for SortColumn {
    fn from(field: SortField) -> Self {
        match field {
            SortField::CreatedAt => SortColumn::CreatedAt,
            SortField::UpdatedAt => SortColumn::UpdatedAt,
            SortField::Memory => SortColumn::Text,
            SortField::AppName => SortColumn::App,
        }
    }
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl From<SortOrder> for SortDirection {
    fn from(order: SortOrder) -> Self {
        match order {
            SortOrder::Asc => SortDirection::Ascending,
            SortOrder::Desc => SortDirection::Descending,
        }
    }
}

/// The state `POST /api/v1/memories/actions/pause` moves memories to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PauseState {
    /// Kept, but not served to applications.
    #[default]
    Paused,
    /// Served again.
    Active,
    /// Hidden from listings unless archived memories are asked for (OpenMemory's UI
    /// archives through this route).
    Archived,
}

impl From<PauseState> for MemoryState {
    fn from(state: PauseState) -> Self {
        match state {
            PauseState::Paused => MemoryState::Paused,
            PauseState::Active => MemoryState::Active,
            PauseState::Archived => MemoryState::Archived,
        }
    }
}

// ----- Responses -----------------------------------------------------------------------------

/// A memory of the caller.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct MemoryResponse {
    /// The memory's id (a UUIDv7).
    #[schemars(schema_with = "memory_id_schema")]
    pub id: MemoryId,
    /// The remembered text.
    pub content: String,
    /// When it was added, in Unix seconds.
    pub created_at: i64,
    /// When its text, metadata or state last changed, in Unix seconds.
    pub updated_at: i64,
    /// Its lifecycle state.
    #[schemars(schema_with = "memory_state_schema")]
    pub state: MemoryState,
    /// The OAuth `client_id` of the app that wrote it.
    pub app_name: String,
    /// Its categories, normalised and sorted.
    pub categories: Vec<String>,
    /// Its free-form JSON attributes.
    #[serde(rename = "metadata_")]
    pub metadata: Map<String, Value>,
}

impl From<Memory> for MemoryResponse {
    fn from(memory: Memory) -> Self {
        MemoryResponse {
            id: memory.id,
            content: memory.text,
            created_at: unix_seconds(memory.created_at),
            updated_at: unix_seconds(memory.updated_at),
            state: memory.state,
            app_name: memory.app,
            categories: memory.categories,
            metadata: memory.metadata,
        }
    }
}

/// A memory of the caller as `GET /api/v1/memories/{id}` answers it: the fields of
/// [`MemoryResponse`] plus `text`, the name OpenMemory's UI reads there.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct MemoryDetailResponse {
    /// The memory.
    #[serde(flatten)]
    pub memory: MemoryResponse,
    /// The remembered text (the same as `content`).
    pub text: String,
}

impl From<Memory> for MemoryDetailResponse {
    fn from(memory: Memory) -> Self {
        let memory = MemoryResponse::from(memory);
        MemoryDetailResponse {
            text: memory.content.clone(),
            memory,
        }
    }
}

/// One page of memories.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct MemoryPage {
    /// The memories on this page.
    pub items: Vec<MemoryResponse>,
    /// How many memories match across all pages.
    pub total: u64,
    /// This page's 1-based number.
    pub page: u32,
    /// The requested page size.
    pub size: u32,
    /// How many pages there are (0 when nothing matches).
    pub pages: u64,
}

impl MemoryPage {
    /// The answer when nothing can match: no items on page `page` of size `size`.
    pub(crate) fn empty(page: u32, size: u32) -> Self {
        MemoryPage {
            items: Vec::new(),
            total: 0,
            page,
            size,
            pages: 0,
        }
    }
}

impl From<Page<Memory>> for MemoryPage {
    fn from(page: Page<Memory>) -> Self {
        MemoryPage {
            items: page.items.into_iter().map(MemoryResponse::from).collect(),
            total: page.total,
            page: page.page,
            size: page.size,
            pages: page.pages,
        }
    }
}

/// How many memories were deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct DeletedResponse {
    /// The number of the caller's memories deleted; other ids are skipped.
    pub deleted: u64,
}

/// How many memories changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct UpdatedResponse {
    /// The number of the caller's memories that changed; memories already in the target
    /// state and ids that are not the caller's do not count.
    pub updated: u64,
}

/// The caller's categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct CategoriesResponse {
    /// Each category with its number of memories, most used first.
    pub categories: Vec<CategoryCount>,
    /// How many categories there are.
    pub total: u64,
}

impl From<Vec<(String, u64)>> for CategoriesResponse {
    fn from(categories: Vec<(String, u64)>) -> Self {
        let categories: Vec<CategoryCount> = categories
            .into_iter()
            .map(|(name, count)| CategoryCount { name, count })
            .collect();
        CategoriesResponse {
            total: len_u64(categories.len()),
            categories,
        }
    }
}

/// A category and how many of the caller's memories have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct CategoryCount {
    /// The category.
    pub name: String,
    /// How many memories (not deleted) have it.
    pub count: u64,
}

/// One page of a memory's access log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct AccessLogPage {
    /// How many entries there are across all pages.
    pub total: u64,
    /// This page's 1-based number.
    pub page: u32,
    /// The requested page size.
    pub page_size: u32,
    /// The entries on this page.
    pub logs: Vec<AccessLogItem>,
}

impl From<Page<AccessLogEntry>> for AccessLogPage {
    fn from(page: Page<AccessLogEntry>) -> Self {
        AccessLogPage {
            total: page.total,
            page: page.page,
            page_size: page.size,
            logs: page.items.into_iter().map(AccessLogItem::from).collect(),
        }
    }
}

/// One recorded read of a memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct AccessLogItem {
    /// When, in Unix seconds.
    pub accessed_at: i64,
    /// The OAuth `client_id` of the reader.
    pub app_name: String,
    /// The tool or route that read, such as `rest:get` or `mcp:fetch`.
    pub via: String,
}

impl From<AccessLogEntry> for AccessLogItem {
    fn from(entry: AccessLogEntry) -> Self {
        AccessLogItem {
            accessed_at: unix_seconds(entry.accessed_at),
            app_name: entry.app,
            via: entry.via,
        }
    }
}

/// Memories related to one.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct RelatedMemoriesResponse {
    /// Active or paused memories sharing the most categories first, then the newest.
    pub items: Vec<MemoryResponse>,
    /// How many items there are.
    pub total: u64,
}

impl From<Vec<Memory>> for RelatedMemoriesResponse {
    fn from(memories: Vec<Memory>) -> Self {
        RelatedMemoriesResponse {
            total: len_u64(memories.len()),
            items: memories.into_iter().map(MemoryResponse::from).collect(),
        }
    }
}

/// The caller's usage figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct StatsResponse {
    /// Memories that are not deleted.
    pub total_memories: u64,
    /// Apps that wrote or read one of those memories.
    pub total_apps: u64,
    /// Per app, ordered by name.
    pub apps: Vec<AppUsage>,
}

impl From<Stats> for StatsResponse {
    fn from(stats: Stats) -> Self {
        StatsResponse {
            total_memories: stats.total_memories,
            total_apps: stats.total_apps,
            apps: stats.apps.into_iter().map(AppUsage::from).collect(),
        }
    }
}

/// Usage figures of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[non_exhaustive]
pub struct AppUsage {
    /// The OAuth `client_id`.
    pub name: String,
    /// Memories (not deleted) it wrote.
    pub memories_created: u64,
    /// Distinct memories (not deleted) it read.
    pub memories_accessed: u64,
}

impl From<AppStats> for AppUsage {
    fn from(app: AppStats) -> Self {
        AppUsage {
            name: app.app,
            memories_created: app.memories_created,
            memories_accessed: app.memories_accessed,
        }
    }
}

#[cfg(test)]
mod tests;
