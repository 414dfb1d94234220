//! The error every [`ProviderStore`](super::ProviderStore) method returns.

use std::error::Error as StdError;
use std::fmt;

/// Why a store operation failed.
///
/// Match on [`StoreError::kind`]; the `Display` text is for logs and is not a stable API.
/// Messages never contain a token, code, secret, key or email address.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// The kind of a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The database stayed locked for longer than the busy timeout, a statement ran past
    /// the statement timeout, or a PostgreSQL transaction kept failing on a deadlock or a
    /// serialization conflict; retrying may succeed.
    Busy,
    /// The database failed (I/O error, full disk, an unexpected constraint). The source
    /// error has the details.
    Backend,
    /// Stored data could not be decoded (a corrupt row or an incompatible writer).
    Corrupt,
    /// A row with the same key already exists.
    Conflict,
    /// The database was written by a newer version of this crate.
    UnsupportedSchema,
    /// The store could not run the work: the database server cannot be reached or closed
    /// the connection, no pooled connection became free in time, no Tokio runtime, the
    /// runtime is shutting down, or the blocking task panicked. Retrying later may
    /// succeed; the provider answers 503 with `Retry-After`.
    Unavailable,
    /// The store's configuration is invalid (a malformed connection URL, an unsupported
    /// `sslmode`, an unreadable CA file, an invalid schema name).
    InvalidConfig,
}

impl StoreError {
    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(
        kind: StoreErrorKind,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            kind,
            source: Some(Box::new(source)),
        }
    }
}

impl From<StoreErrorKind> for StoreError {
    fn from(kind: StoreErrorKind) -> Self {
        StoreError { kind, source: None }
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

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreErrorKind::Busy => "the provider database is busy",
            StoreErrorKind::Backend => "the provider database failed",
            StoreErrorKind::Corrupt => "stored provider data could not be decoded",
            StoreErrorKind::Conflict => "a stored row with the same key already exists",
            StoreErrorKind::UnsupportedSchema => {
                "the provider database was written by a newer version"
            }
            StoreErrorKind::Unavailable => "the provider store could not run the operation",
            StoreErrorKind::InvalidConfig => "the provider store configuration is invalid",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_is_kept_but_not_displayed() {
        let error =
            StoreError::with_source(StoreErrorKind::Backend, std::io::Error::other("disk full"));
        assert_eq!(error.to_string(), "the provider database failed");
        assert_eq!(error.kind(), StoreErrorKind::Backend);
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("disk full")
        );
    }
}
