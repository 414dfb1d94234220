//! The error every [`MemoryStore`](super::MemoryStore) method returns.

use std::error::Error as StdError;
use std::fmt;

/// Why a store operation failed.
///
/// Match on [`StoreError::kind`]; the `Display` text is for logs and is not a
/// stable API. Messages never contain memory text, metadata or owners.
#[derive(Debug)]
pub struct StoreError {
    kind: ErrorKind,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// The kind of a [`StoreError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input breaks a rule or a [`Limits`](super::Limits) value;
    /// nothing was written. Map it to a 400-class answer.
    InvalidInput {
        /// The input field at fault, e.g. `"text"` or `"categories"`.
        field: &'static str,
        /// What is wrong with it, in lowercase words; never echoes the value.
        reason: String,
    },
    /// The database stayed locked by another process for longer than the busy
    /// timeout. Retrying later may succeed.
    Busy,
    /// The database failed (I/O error, full disk, constraint the store did not
    /// expect). The source error has the details.
    Backend,
    /// Stored data could not be decoded (a corrupt row or an incompatible writer).
    Corrupt,
    /// The database file was written by a newer version of this crate.
    UnsupportedSchema {
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build understands.
        supported: i64,
    },
    /// The store could not run the work: no Tokio runtime, the runtime is
    /// shutting down, or the blocking task panicked.
    Unavailable,
    /// The write would take the owner over a storage quota
    /// ([`Limits::max_memories_per_owner`](super::Limits::max_memories_per_owner)
    /// or [`Limits::max_bytes_per_owner`](super::Limits::max_bytes_per_owner));
    /// nothing was written. Deleting memories makes room.
    QuotaExceeded {
        /// `"memories"` or `"bytes"`.
        quota: &'static str,
        /// The quota.
        limit: u64,
    },
}

impl StoreError {
    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the caller's input was at fault (and nothing was written).
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidInput { .. })
    }

    pub(crate) fn invalid_input(field: &'static str, reason: impl Into<String>) -> Self {
        Self::from(ErrorKind::InvalidInput {
            field,
            reason: reason.into(),
        })
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            source: Some(Box::new(source)),
        }
    }
}

impl From<ErrorKind> for StoreError {
    fn from(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput { field, reason } => write!(f, "invalid {field}: {reason}"),
            Self::Busy => f.write_str("the memory database is busy"),
            Self::Backend => f.write_str("the memory database failed"),
            Self::Corrupt => f.write_str("stored memory data could not be decoded"),
            Self::UnsupportedSchema { found, supported } => write!(
                f,
                "memory database schema version {found} is newer than the supported version {supported}"
            ),
            Self::Unavailable => f.write_str("the memory store could not run the operation"),
            Self::QuotaExceeded { quota, limit } => write!(
                f,
                "storage quota reached: at most {limit} {quota} per user; delete memories to make room"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_the_field_and_reason() {
        let error = StoreError::invalid_input("text", "must not be empty");
        assert!(error.is_invalid_input());
        assert_eq!(error.to_string(), "invalid text: must not be empty");
        assert_eq!(
            error.kind(),
            &ErrorKind::InvalidInput {
                field: "text",
                reason: "must not be empty".to_owned()
            }
        );
    }

    #[test]
    fn source_is_kept_but_not_displayed() {
        let io = std::io::Error::other("disk on fire");
        let error = StoreError::with_source(ErrorKind::Backend, io);
        assert_eq!(error.to_string(), "the memory database failed");
        let source = error.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
    }
}
