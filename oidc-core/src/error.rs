//! Errors shared by several modules.

use std::fmt;

/// Why a string was refused as an identifier, URI, scope or redirect URI.
///
/// The message names the kind of value and the reason; it never repeats the value, which
/// may be attacker-controlled or, for a mistyped secret, sensitive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {kind}")]
pub struct InvalidValue {
    what: &'static str,
    kind: InvalidValueKind,
}

impl InvalidValue {
    pub(crate) const fn new(what: &'static str, kind: InvalidValueKind) -> Self {
        InvalidValue { what, kind }
    }

    /// What was being parsed, e.g. `"issuer"` or `"redirect uri"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Why it was refused.
    pub fn kind(&self) -> InvalidValueKind {
        self.kind
    }
}

/// The reason an [`InvalidValue`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidValueKind {
    /// The value is empty.
    #[error("empty")]
    Empty,
    /// The value is longer than the limit for its kind.
    #[error("too long")]
    TooLong,
    /// A character outside what the value's syntax allows (control characters, spaces,
    /// non-ASCII, backslashes, …).
    #[error("character not allowed")]
    InvalidCharacter,
    /// Not of the expected syntax (e.g. two spaces between scope tokens).
    #[error("malformed")]
    Malformed,
    /// Not an absolute URI.
    #[error("not an absolute uri")]
    NotAbsoluteUri,
    /// `http` to a host that is not loopback.
    #[error("http is only allowed for a loopback host")]
    InsecureScheme,
    /// A URI scheme that is not accepted here.
    #[error("scheme not allowed")]
    UnsupportedScheme,
    /// The URI has no host.
    #[error("missing host")]
    MissingHost,
    /// The URI has user information (`user:pass@`).
    #[error("user information not allowed")]
    HasUserinfo,
    /// The URI has a query component.
    #[error("query not allowed")]
    HasQuery,
    /// The URI has a fragment component (or an empty `#`).
    #[error("fragment not allowed")]
    HasFragment,
    /// The URI contains a `*` wildcard.
    #[error("wildcard not allowed")]
    Wildcard,
    /// The URI is not written in its canonical form (lowercase scheme and host, no
    /// default port, no dot segments, …), so string comparison with it would be fragile.
    #[error("not in canonical form")]
    NotCanonical,
}

/// The random number generator failed. Nothing was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, thiserror::Error)]
#[non_exhaustive]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("random number generator failed")
    }
}

impl From<aws_lc_rs::error::Unspecified> for RandomError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        RandomError
    }
}
