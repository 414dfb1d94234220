//! A memory and its parts: [`Memory`], [`MemoryId`], [`MemoryState`], [`NewMemory`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::owner::Owner;

/// A stored memory, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Memory {
    /// The store-assigned id.
    pub id: MemoryId,
    /// Whose memory this is.
    pub owner: Owner,
    /// The remembered text.
    pub text: String,
    /// Free-form JSON attributes.
    pub metadata: Map<String, Value>,
    /// Normalised categories: trimmed, lowercased, deduplicated, sorted.
    pub categories: Vec<String>,
    /// The OAuth `client_id` of the application that wrote it.
    pub app: String,
    /// Lifecycle state.
    pub state: MemoryState,
    /// When it was added, in Unix milliseconds.
    pub created_at: i64,
    /// When its text, metadata or state last changed, in Unix milliseconds.
    pub updated_at: i64,
}

/// The id of a memory: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Uuid", into = "Uuid")]
pub struct MemoryId(Uuid);

impl MemoryId {
    /// Wraps a UUID if it is a version 7 UUID.
    ///
    /// ```
    /// use mcp_api::store::MemoryId;
    /// use uuid::Uuid;
    ///
    /// let uuid = Uuid::parse_str("01890a5d-ac96-774b-bcce-b302099a8057")?;
    /// assert!(MemoryId::from_uuid(uuid).is_ok());
    /// assert!(MemoryId::from_uuid(Uuid::nil()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidMemoryId`] if the UUID is not version 7.
    pub fn from_uuid(uuid: Uuid) -> Result<Self, InvalidMemoryId> {
        if uuid.get_version_num() != 7 {
            return Err(InvalidMemoryId(()));
        }
        Ok(Self(uuid))
    }

    /// A new id from a v7 timestamp (a store generates ids).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn new_v7(timestamp: uuid::Timestamp) -> Self {
        Self(Uuid::new_v7(timestamp))
    }

    /// The UUID.
    #[must_use]
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The 16 bytes of the UUID, as stored.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for MemoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for MemoryId {
    type Err = InvalidMemoryId;

    /// Parses any UUID text form (hyphenated, simple, braced, URN) of a UUIDv7.
    ///
    /// ```
    /// use mcp_api::store::MemoryId;
    ///
    /// let id: MemoryId = "01890a5d-ac96-774b-bcce-b302099a8057".parse()?;
    /// assert_eq!(id.to_string(), "01890a5d-ac96-774b-bcce-b302099a8057");
    /// assert!("not-a-uuid".parse::<MemoryId>().is_err());
    /// # Ok::<(), mcp_api::store::InvalidMemoryId>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let uuid = Uuid::parse_str(text).map_err(|_| InvalidMemoryId(()))?;
        Self::from_uuid(uuid)
    }
}

impl TryFrom<Uuid> for MemoryId {
    type Error = InvalidMemoryId;

    fn try_from(uuid: Uuid) -> Result<Self, Self::Error> {
        Self::from_uuid(uuid)
    }
}

impl From<MemoryId> for Uuid {
    fn from(id: MemoryId) -> Self {
        id.0
    }
}

/// Text that is not a UUIDv7 and so cannot name a memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid memory id: expected a version 7 UUID")]
pub struct InvalidMemoryId(());

/// The lifecycle state of a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryState {
    /// Served to applications.
    Active,
    /// Kept, but temporarily not served.
    Paused,
    /// Kept for the record, hidden from default listings.
    Archived,
    /// Gone: text, metadata, categories and access log are wiped. Final.
    Deleted,
}

impl MemoryState {
    /// The lowercase name, as stored and serialised.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Archived => "archived",
            Self::Deleted => "deleted",
        }
    }
}

impl fmt::Display for MemoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemoryState {
    type Err = InvalidMemoryState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "archived" => Ok(Self::Archived),
            "deleted" => Ok(Self::Deleted),
            _ => Err(InvalidMemoryState(())),
        }
    }
}

/// Text that names no [`MemoryState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid memory state: expected active, paused, archived or deleted")]
pub struct InvalidMemoryState(());

/// A memory to add. The store validates it against its
/// [`Limits`](super::Limits) and normalises the categories.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewMemory {
    /// The text to remember.
    pub text: String,
    /// Free-form JSON attributes; empty by default.
    pub metadata: Map<String, Value>,
    /// Categories, normalised by the store; none by default.
    pub categories: Vec<String>,
    /// The OAuth `client_id` of the application writing it.
    pub app: String,
}

impl NewMemory {
    /// A memory with text, written by `app`, without metadata or categories.
    ///
    /// ```
    /// use mcp_api::store::NewMemory;
    /// use serde_json::json;
    ///
    /// let memory = NewMemory::new("Prefers tea over coffee", "chatgpt-connector")
    ///     .with_categories(["Preferences", "food"])
    ///     .with_metadata(json!({"source": "chat"}).as_object().cloned().unwrap_or_default());
    /// assert_eq!(memory.categories, ["Preferences", "food"]);
    /// ```
    #[must_use]
    pub fn new(text: impl Into<String>, app: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            metadata: Map::new(),
            categories: Vec::new(),
            app: app.into(),
        }
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Replaces the categories.
    #[must_use]
    pub fn with_categories<I>(mut self, categories: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.categories = categories.into_iter().map(Into::into).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_id_rejects_other_uuid_versions() {
        let v4 = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert!(v4.parse::<MemoryId>().is_err());
        let from_json: Result<MemoryId, _> = serde_json::from_str(&format!("\"{v4}\""));
        assert!(from_json.is_err());
    }

    #[test]
    fn memory_id_round_trips_through_json() {
        let id: MemoryId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"01890a5d-ac96-774b-bcce-b302099a8057\"");
        assert_eq!(serde_json::from_str::<MemoryId>(&json).unwrap(), id);
    }

    #[test]
    fn state_names_round_trip() {
        for state in [
            MemoryState::Active,
            MemoryState::Paused,
            MemoryState::Archived,
            MemoryState::Deleted,
        ] {
            assert_eq!(state.as_str().parse::<MemoryState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        assert!("Active".parse::<MemoryState>().is_err());
    }
}
