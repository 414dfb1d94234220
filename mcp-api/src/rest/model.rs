//! The JSON the REST API reads and writes, with the JSON Schemas the OpenAPI document is
//! generated from.
//!
//! Field names follow OpenMemory where they make sense (`content`, `metadata_`, `app_name`,
//! `memory_ids`, `search_query`, …); times are Unix seconds. Every request type refuses
//! unknown fields, so an OpenMemory client that sends `user_id` gets a 422 naming it rather
//! than the false impression that it chose whose memories it touches: the owner is always
//! the access token's subject.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{
    AccessLogEntry, AppStats, Memory, MemoryId, MemoryState, Page, SortColumn, SortDirection, Stats,
};

// ----- Requests ------------------------------------------------------------------------------

/// Query parameters of `GET /api/v1/memories/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct ListMemoriesParams {
    /// 1-based page number.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Memories per page, at most the store's page-size limit (100 by default).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1))]
    pub size: u32,
    /// Only memories written by this app (OAuth `client_id`).
    #[serde(default)]
    #[schemars(with = "String")]
    pub app_id: Option<String>,
    /// Only memories with any of these categories, comma-separated.
    #[serde(default)]
    #[schemars(with = "String")]
    pub categories: Option<String>,
    /// Only memories whose text contains this substring (ASCII case-insensitive).
    #[serde(default)]
    #[schemars(with = "String")]
    pub search_query: Option<String>,
    /// Only memories created at or after this Unix second.
    #[serde(default)]
    #[schemars(with = "i64")]
    pub from_date: Option<i64>,
    /// Only memories created at or before this Unix second.
    #[serde(default)]
    #[schemars(with = "i64")]
    pub to_date: Option<i64>,
    /// Sort by this column (default `created_at`).
    #[serde(default)]
    #[schemars(with = "SortField")]
    pub sort_column: Option<SortField>,
    /// Sort direction (default `desc`).
    #[serde(default)]
    #[schemars(with = "SortOrder")]
    pub sort_direction: Option<SortOrder>,
}

/// Body of `POST /api/v1/memories/`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateMemoryRequest {
    /// The text to remember (not blank; at most the store's text limit, 16 KiB by default).
    pub text: String,
    /// Free-form JSON attributes (at most 16 KiB serialised by default).
    pub metadata: Option<Map<String, Value>>,
    /// Categories; trimmed, lowercased and deduplicated by the store.
    pub categories: Option<Vec<String>>,
}

/// Body of `PUT /api/v1/memories/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpdateMemoryRequest {
    /// The new text.
    pub memory_content: String,
    /// New metadata; when absent or null the metadata is kept.
    pub metadata: Option<Map<String, Value>>,
}

/// Body of `DELETE /api/v1/memories/` and `POST /api/v1/memories/actions/archive`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryIdsRequest {
    /// The memories to change (at most the store's batch limit, 100 by default). Ids that are
    /// not the caller's memories are skipped.
    #[schemars(schema_with = "memory_ids_schema")]
    pub memory_ids: Vec<MemoryId>,
}

/// Body of `POST /api/v1/memories/actions/pause`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PauseMemoriesRequest {
    /// The memories to change (at most the store's batch limit, 100 by default). Ids that are
    /// not the caller's memories are skipped.
    #[schemars(schema_with = "memory_ids_schema")]
    pub memory_ids: Vec<MemoryId>,
    /// The state to move them to.
    #[serde(default)]
    pub state: PauseState,
}

/// Body of `POST /api/v1/memories/filter`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FilterMemoriesRequest {
    /// 1-based page number.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Memories per page, at most the store's page-size limit (100 by default).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1))]
    pub size: u32,
    /// Only memories whose text contains this substring (ASCII case-insensitive).
    pub search_query: Option<String>,
    /// Only memories written by this app (OAuth `client_id`); at most one entry.
    pub app_ids: Option<Vec<String>>,
    /// Only memories with any of these categories.
    pub categories: Option<Vec<String>>,
    /// Sort by this column (default `created_at`).
    pub sort_column: Option<SortField>,
    /// Sort direction (default `desc`).
    pub sort_direction: Option<SortOrder>,
    /// Only memories created at or after this Unix second.
    pub from_date: Option<i64>,
    /// Only memories created at or before this Unix second.
    pub to_date: Option<i64>,
    /// Include archived memories.
    #[serde(default)]
    pub show_archived: bool,
}

/// Query parameters of `GET /api/v1/memories/{id}/access-log`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct AccessLogParams {
    /// 1-based page number.
    #[serde(default = "first_page")]
    #[schemars(range(min = 1))]
    pub page: u32,
    /// Entries per page, at most the store's page-size limit (100 by default).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1))]
    pub page_size: u32,
}

/// Query parameters of `GET /api/v1/memories/{id}/related`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
#[non_exhaustive]
pub struct RelatedParams {
    /// How many related memories at most (1 to the store's search limit, 50 by default).
    #[serde(default = "default_related_size")]
    #[schemars(range(min = 1))]
    pub size: u32,
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
pub enum PauseState {
    /// Kept, but not served to applications.
    #[default]
    Paused,
    /// Served again.
    Active,
}

impl From<PauseState> for MemoryState {
    fn from(state: PauseState) -> Self {
        match state {
            PauseState::Paused => MemoryState::Paused,
            PauseState::Active => MemoryState::Active,
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

// ----- Helpers -------------------------------------------------------------------------------

/// The default page number.
fn first_page() -> u32 {
    1
}

/// The default page size of listings (OpenMemory's).
fn default_page_size() -> u32 {
    10
}

/// The default number of related memories (OpenMemory's fixed 5).
fn default_related_size() -> u32 {
    5
}

/// Unix milliseconds to Unix seconds, rounding down.
fn unix_seconds(millis: i64) -> i64 {
    millis.div_euclid(1000)
}

/// A length as a JSON count.
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// The states a listed memory can be in (deleted memories are never shown).
const VISIBLE_STATES: [MemoryState; 3] = [
    MemoryState::Active,
    MemoryState::Paused,
    MemoryState::Archived,
];

fn memory_id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "uuid",
        "description": "A memory id: a version 7 UUID.",
    })
}

fn memory_ids_schema(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": memory_id_schema(generator),
    })
}

fn memory_state_schema(_: &mut SchemaGenerator) -> Schema {
    let states: Vec<&str> = VISIBLE_STATES.iter().map(|state| state.as_str()).collect();
    json_schema!({
        "type": "string",
        "enum": states,
    })
}
