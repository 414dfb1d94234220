//! Who read a memory: [`Access`] and [`AccessLogEntry`].

use serde::Serialize;

use super::memory::MemoryId;

/// Who is reading memories, and through which surface; recorded in the
/// access log by [`MemoryStore::get`](super::MemoryStore::get) and
/// [`MemoryStore::record_access`](super::MemoryStore::record_access).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Access {
    /// The OAuth `client_id` of the reader.
    pub app: String,
    /// The tool or route that read, such as `"mcp:fetch"` or `"rest:get"`.
    pub via: String,
}

impl Access {
    /// An access by `app` through `via`. The store checks both when it is used.
    ///
    /// ```
    /// use mcp_api::store::Access;
    ///
    /// let access = Access::new("chatgpt-connector", "mcp:fetch");
    /// assert_eq!(access.via, "mcp:fetch");
    /// ```
    #[must_use]
    pub fn new(app: impl Into<String>, via: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            via: via.into(),
        }
    }
}

/// One recorded read of a memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccessLogEntry {
    /// The memory read.
    pub memory_id: MemoryId,
    /// When, in Unix milliseconds.
    pub accessed_at: i64,
    /// The OAuth `client_id` of the reader.
    pub app: String,
    /// The tool or route that read.
    pub via: String,
}
