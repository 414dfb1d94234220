//! The tools' arguments and results as typed structs. Their JSON Schemas (each tool's
//! `inputSchema` and `outputSchema`) are derived with schemars from the very types serde
//! reads and writes, as the REST API's are (`rest/model.rs`), so a schema cannot disagree
//! with the JSON it describes.
//!
//! Times are Unix seconds, as everywhere in the REST API (see [`crate::timestamp`]).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{Memory, MemoryState};
use crate::timestamp::unix_seconds;

/// The `inputSchema` of a tool whose arguments are a `T`: what `T` accepts.
pub(super) fn input_schema<T: JsonSchema>() -> Value {
    tool_schema::<T>(SchemaSettings::draft2020_12().for_deserialize())
}

/// The `outputSchema` of a tool whose result is a `T`: what `T` writes.
pub(super) fn output_schema<T: JsonSchema>() -> Value {
    tool_schema::<T>(SchemaSettings::draft2020_12().for_serialize())
}

/// A tool schema for `T`: JSON Schema 2020-12 (MCP's default dialect), every subschema
/// inline (no `$ref`), an object with `properties` (empty for no arguments), and without
/// the root's `$schema`, `title` and `description` (the tool's own `title` and
/// `description` say what it is), and without a `null` default.
fn tool_schema<T: JsonSchema>(settings: SchemaSettings) -> Value {
    let generator = settings
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(object) = &mut schema {
        object.remove("title");
        object.remove("description");
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        // An absent optional number is `None`, which schemars states as `"default": null`;
        // the descriptions state the real defaults.
        for property in properties
            .as_object_mut()
            .into_iter()
            .flat_map(Map::values_mut)
        {
            if let Value::Object(property) = property
                && property.get("default") == Some(&Value::Null)
            {
                property.remove("default");
            }
        }
    }
    schema
}

// ----- Arguments -----------------------------------------------------------------------------

/// Arguments of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchArguments {
    /// Words to look for.
    pub(super) query: String,
}

/// Arguments of `fetch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FetchArguments {
    /// A memory id returned by search.
    pub(super) id: String,
}

/// Arguments of `add_memories`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddMemoriesArguments {
    /// What to remember, as a self-contained sentence.
    #[schemars(length(min = 1))]
    pub(super) text: String,
    /// Optional topics, e.g. ["food", "health"].
    #[serde(default)]
    pub(super) categories: Vec<String>,
    /// Optional free-form attributes.
    #[serde(default)]
    pub(super) metadata: Map<String, Value>,
}

// Optional numbers are documented as integers: `null` is read as absent, but clients need
// not send it.

/// Arguments of `search_memory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchMemoryArguments {
    /// Words to look for.
    pub(super) query: String,
    /// Most results to return (default 10).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 50))]
    pub(super) limit: Option<u32>,
}

/// Arguments of `list_memories`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListMemoriesArguments {
    /// 1-based page number (default 1).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1))]
    pub(super) page: Option<u32>,
    /// Memories per page (default 20).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 100))]
    pub(super) size: Option<u32>,
}

/// Arguments of `delete_memories`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteMemoriesArguments {
    /// Ids of the memories to delete.
    #[schemars(length(min = 1, max = 100))]
    pub(super) memory_ids: Vec<String>,
}

/// Arguments of `delete_all_memories`: none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteAllMemoriesArguments {}

// ----- Results -------------------------------------------------------------------------------

/// The result of `search` (ChatGPT's connector contract).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct SearchResults {
    /// The matching memories, best first.
    pub(super) results: Vec<SearchResult>,
}

/// One result of `search`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct SearchResult {
    /// The memory's id, for `fetch`.
    pub(super) id: String,
    /// A short title from the memory's first line.
    pub(super) title: String,
    /// The memory in the REST API.
    #[schemars(url)]
    pub(super) url: String,
}

/// The result of `fetch` (ChatGPT's connector contract).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct FetchedMemory {
    /// The memory's id.
    pub(super) id: String,
    /// A short title from the memory's first line.
    pub(super) title: String,
    /// The whole remembered text.
    pub(super) text: String,
    /// The memory in the REST API.
    #[schemars(url)]
    pub(super) url: String,
    /// The memory's own attributes, then `categories`, `app`, `state` and `created_at`
    /// (Unix seconds), which win over attributes of the same names.
    pub(super) metadata: Map<String, Value>,
}

impl FetchedMemory {
    /// `memory` with the server's fields merged into its metadata.
    pub(super) fn new(memory: Memory, title: String, url: String) -> Self {
        let mut metadata = memory.metadata;
        metadata.insert("categories".to_owned(), Value::from(memory.categories));
        metadata.insert("app".to_owned(), Value::from(memory.app));
        metadata.insert("state".to_owned(), Value::from(memory.state.as_str()));
        metadata.insert(
            "created_at".to_owned(),
            Value::from(unix_seconds(memory.created_at)),
        );
        FetchedMemory {
            id: memory.id.to_string(),
            title,
            text: memory.text,
            url,
            metadata,
        }
    }
}

/// A memory as the OpenMemory tools show it (the result of `add_memories`).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct MemoryView {
    /// The memory's id.
    pub(super) id: String,
    /// The remembered text.
    pub(super) memory: String,
    /// Its categories, normalised and sorted.
    pub(super) categories: Vec<String>,
    /// Its free-form attributes.
    pub(super) metadata: Map<String, Value>,
    /// The OAuth `client_id` of the app that wrote it.
    pub(super) app: String,
    /// Its lifecycle state.
    #[schemars(schema_with = "memory_state_schema")]
    pub(super) state: MemoryState,
    /// When it was added, in Unix seconds.
    pub(super) created_at: i64,
    /// When its text, metadata or state last changed, in Unix seconds.
    pub(super) updated_at: i64,
}

impl From<&Memory> for MemoryView {
    fn from(memory: &Memory) -> Self {
        MemoryView {
            id: memory.id.to_string(),
            memory: memory.text.clone(),
            categories: memory.categories.clone(),
            metadata: memory.metadata.clone(),
            app: memory.app.clone(),
            state: memory.state,
            created_at: unix_seconds(memory.created_at),
            updated_at: unix_seconds(memory.updated_at),
        }
    }
}

/// The result of `search_memory`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct SearchMemoryResults {
    /// The matching memories, best first.
    pub(super) results: Vec<MemoryHit>,
    /// Present when nothing matched closely enough: says so, so that no results is not
    /// taken for an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub(super) message: Option<String>,
}

/// One result of `search_memory`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct MemoryHit {
    /// The memory's id.
    pub(super) id: String,
    /// The remembered text.
    pub(super) memory: String,
    /// The text around the matches, matched words in **bold**.
    pub(super) snippet: String,
    /// Its categories.
    pub(super) categories: Vec<String>,
    /// When it was added, in Unix seconds.
    pub(super) created_at: i64,
}

/// The result of `list_memories`: one page, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct MemoryList {
    /// The memories on this page.
    pub(super) items: Vec<MemoryView>,
    /// How many memories there are across all pages.
    pub(super) total: u64,
    /// This page's 1-based number.
    pub(super) page: u32,
    /// The page size.
    pub(super) size: u32,
    /// How many pages there are.
    pub(super) pages: u64,
}

/// The result of `delete_memories` and `delete_all_memories`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct Deleted {
    /// How many of the caller's memories were deleted.
    pub(super) deleted: u64,
}

/// The states a shown memory can be in (deleted memories are never shown).
fn memory_state_schema(_: &mut SchemaGenerator) -> Schema {
    let states = [
        MemoryState::Active,
        MemoryState::Paused,
        MemoryState::Archived,
    ]
    .map(MemoryState::as_str);
    json_schema!({"type": "string", "enum": states})
}
