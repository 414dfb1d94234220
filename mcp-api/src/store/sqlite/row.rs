//! Decoding rows into store types, and mapping SQLite errors.

use std::fmt;

use rusqlite::{ErrorCode, Row};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::store::{ErrorKind, Memory, MemoryId, MemoryState, Owner, StoreError};

/// The columns [`MemoryRow::from_row`] reads, from `memories` aliased as `m`.
macro_rules! memory_columns {
    () => {
        "m.seq, m.id, m.text, m.metadata, m.app, m.state, m.created_at, m.updated_at, \
         (SELECT json_group_array(c.category) FROM memory_categories c \
          WHERE c.memory_seq = m.seq AND c.owner_id = m.owner_id) AS categories"
    };
}
pub(super) use memory_columns;

/// A `memories` row as stored, before decoding.
pub(super) struct MemoryRow {
    pub(super) seq: i64,
    id: [u8; 16],
    text: String,
    metadata: String,
    app: String,
    state: String,
    created_at: i64,
    updated_at: i64,
    categories: String,
}

impl MemoryRow {
    /// Reads the columns of [`memory_columns!`].
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            id: row.get(1)?,
            text: row.get(2)?,
            metadata: row.get(3)?,
            app: row.get(4)?,
            state: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
            categories: row.get(8)?,
        })
    }

    /// Decodes the row; the query that read it was scoped to `owner`.
    pub(super) fn into_memory(self, owner: &Owner) -> Result<Memory, StoreError> {
        let id = MemoryId::from_uuid(Uuid::from_bytes(self.id))
            .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
        let metadata: Map<String, Value> = serde_json::from_str(&self.metadata)
            .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
        let mut categories: Vec<String> = serde_json::from_str(&self.categories)
            .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
        categories.sort_unstable();
        let state: MemoryState = self
            .state
            .parse()
            .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
        Ok(Memory {
            id,
            owner: owner.clone(),
            text: self.text,
            metadata,
            categories,
            app: self.app,
            state,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Converts SQLite results into store results.
pub(super) trait DbResult<T> {
    /// Maps a SQLite error to [`ErrorKind::Busy`] or [`ErrorKind::Backend`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|error| {
            let kind = match error.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Busy,
                _ => ErrorKind::Backend,
            };
            StoreError::with_source(kind, error)
        })
    }
}

/// A count read from SQL, which is never negative.
pub(super) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A failure while setting up a connection that SQLite itself did not report.
#[derive(Debug)]
pub(super) struct SetupError(pub(super) &'static str);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SetupError {}
