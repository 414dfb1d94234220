//! The export file: every memory of one person as one JSON document, and reading it back.
//!
//! ```json
//! {"format": "mcp-api.memories", "version": 1, "exported_at": 1765000000,
//!  "memories": [{"id": "…", "text": "…", "metadata": {}, "categories": ["health"],
//!                "app": "chatgpt", "state": "active",
//!                "created_at": 1765000000, "updated_at": 1765000000}]}
//! ```
//!
//! Times are Unix seconds, as in the REST API and the MCP tools. On import, `text`,
//! `metadata`, `categories`, `app` and `state` are kept; ids and times are new (the
//! memories are added again), and a memory whose text is already stored is skipped, so
//! importing a file twice adds nothing the second time.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{Memory, MemoryState};
use crate::timestamp::unix_seconds;

/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "mcp-api.memories";
/// The `version` of the export format this crate writes and reads.
pub const EXPORT_VERSION: u32 = 1;

#[derive(Serialize)]
pub(super) struct ExportFile<'a> {
    format: &'static str,
    version: u32,
    exported_at: i64,
    memories: Vec<ExportedMemory<'a>>,
}

#[derive(Serialize)]
struct ExportedMemory<'a> {
    id: String,
    text: &'a str,
    metadata: &'a Map<String, Value>,
    categories: &'a [String],
    app: &'a str,
    state: MemoryState,
    created_at: i64,
    updated_at: i64,
}

impl<'a> ExportFile<'a> {
    /// The file of `memories`, exported at `exported_at` (Unix milliseconds).
    pub(super) fn new(memories: &'a [Memory], exported_at: i64) -> Self {
        ExportFile {
            format: EXPORT_FORMAT,
            version: EXPORT_VERSION,
            exported_at: unix_seconds(exported_at),
            memories: memories
                .iter()
                .map(|memory| ExportedMemory {
                    id: memory.id.to_string(),
                    text: &memory.text,
                    metadata: &memory.metadata,
                    categories: &memory.categories,
                    app: &memory.app,
                    state: memory.state,
                    created_at: unix_seconds(memory.created_at),
                    updated_at: unix_seconds(memory.updated_at),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct ImportFile {
    format: String,
    version: u32,
    memories: Vec<ImportedMemory>,
}

/// One memory read from an export file.
#[derive(Debug, Deserialize)]
pub(super) struct ImportedMemory {
    pub(super) text: String,
    #[serde(default)]
    pub(super) metadata: Map<String, Value>,
    #[serde(default)]
    pub(super) categories: Vec<String>,
    pub(super) app: String,
    #[serde(default = "active")]
    pub(super) state: MemoryState,
    #[serde(default)]
    pub(super) created_at: i64,
}

fn active() -> MemoryState {
    MemoryState::Active
}

/// Why a file cannot be imported (shown to the person as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ImportError {
    #[error("the file is not JSON, or not a memory export ({0})")]
    Malformed(String),
    #[error("the file is a memory export of version {0}; this server reads version 1")]
    Version(u32),
    #[error("the file holds a deleted memory; exports never do")]
    Deleted,
}

/// Reads an export file; memories come back oldest first, so they are added in the order
/// they were first written.
pub(super) fn read_export(bytes: &[u8]) -> Result<Vec<ImportedMemory>, ImportError> {
    let file: ImportFile = serde_json::from_slice(bytes).map_err(|error| {
        // Line and column only: never echo the file's content.
        ImportError::Malformed(format!("line {}, column {}", error.line(), error.column()))
    })?;
    if file.format != EXPORT_FORMAT {
        return Err(ImportError::Malformed("unknown format".to_owned()));
    }
    if file.version != EXPORT_VERSION {
        return Err(ImportError::Version(file.version));
    }
    if file
        .memories
        .iter()
        .any(|memory| memory.state == MemoryState::Deleted)
    {
        return Err(ImportError::Deleted);
    }
    let mut memories = file.memories;
    memories.sort_by_key(|memory| memory.created_at);
    Ok(memories)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_oldest_first() {
        let file = r#"{"format":"mcp-api.memories","version":1,"exported_at":3,"memories":[
            {"id":"x","text":"newer","metadata":{"k":1},"categories":["a"],"app":"c","state":"paused","created_at":2,"updated_at":2},
            {"id":"y","text":"older","app":"c","created_at":1}]}"#;
        let memories = read_export(file.as_bytes()).unwrap();
        assert_eq!(memories[0].text, "older");
        assert_eq!(memories[0].state, MemoryState::Active);
        assert_eq!(memories[1].state, MemoryState::Paused);
        assert_eq!(memories[1].categories, ["a"]);
    }

    #[test]
    fn refuses_other_files_without_echoing_them() {
        let error = read_export(b"{\"secret\": ").unwrap_err();
        assert!(!error.to_string().contains("secret"));
        assert!(matches!(
            read_export(br#"{"format":"other","version":1,"memories":[]}"#),
            Err(ImportError::Malformed(_))
        ));
        assert_eq!(
            read_export(br#"{"format":"mcp-api.memories","version":2,"memories":[]}"#).unwrap_err(),
            ImportError::Version(2)
        );
        assert_eq!(
            read_export(
                br#"{"format":"mcp-api.memories","version":1,"memories":[{"text":"t","app":"a","state":"deleted"}]}"#
            )
            .unwrap_err(),
            ImportError::Deleted
        );
    }
}
