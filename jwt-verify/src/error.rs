//! Errors. Messages are lowercase, never quote the token, and are not a stable API: match on
//! [`ErrorKind`] instead.

use std::fmt;

/// Why a token was refused (or could not be checked).
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: &'static str,
}

/// The class of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Longer than the policy's maximum; refused before any decoding.
    TooLarge,
    /// Not three base64url segments of JSON objects, non-canonical or padded base64,
    /// duplicate JSON members, or a header member of the wrong type.
    Malformed,
    /// `alg` is not in the allow-list (this covers `none` in every casing and HMAC).
    AlgorithmNotAllowed,
    /// The `typ` header does not match the policy.
    WrongType,
    /// A `crit` header (or an extension such as `b64`) the verifier does not understand.
    UnsupportedCritical,
    /// No key in the key set matches the token's `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify.
    InvalidSignature,
    /// A required claim is missing.
    MissingClaim,
    /// A claim has the wrong JSON type or an impossible value.
    InvalidClaim,
    /// `iss` is not one of the accepted issuers.
    WrongIssuer,
    /// `aud` does not contain an accepted audience.
    WrongAudience,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// The claims did not deserialize into the requested type.
    Claims,
    /// No usable key set: never fetched successfully, or older than the maximum stale age.
    KeySetUnavailable,
    /// The token's status list entry is not VALID: the issuer revoked (INVALID), suspended
    /// or otherwise flagged it.
    Revoked,
    /// The token's status list could not be had (never fetched, or stale past its grace)
    /// and the failure mode is fail-closed.
    StatusUnavailable,
}

impl ErrorKind {
    /// Every kind, for counters.
    pub(crate) const ALL: [ErrorKind; 18] = [
        ErrorKind::TooLarge,
        ErrorKind::Malformed,
        ErrorKind::AlgorithmNotAllowed,
        ErrorKind::WrongType,
        ErrorKind::UnsupportedCritical,
        ErrorKind::UnknownKey,
        ErrorKind::InvalidSignature,
        ErrorKind::MissingClaim,
        ErrorKind::InvalidClaim,
        ErrorKind::WrongIssuer,
        ErrorKind::WrongAudience,
        ErrorKind::Expired,
        ErrorKind::NotYetValid,
        ErrorKind::IssuedInFuture,
        ErrorKind::Claims,
        ErrorKind::KeySetUnavailable,
        ErrorKind::Revoked,
        ErrorKind::StatusUnavailable,
    ];

    /// A short stable label, e.g. for metrics: `"expired"`, `"invalid_signature"`.
    pub const fn label(self) -> &'static str {
        match self {
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Malformed => "malformed",
            ErrorKind::AlgorithmNotAllowed => "algorithm_not_allowed",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::UnsupportedCritical => "unsupported_critical",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::InvalidSignature => "invalid_signature",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::InvalidClaim => "invalid_claim",
            ErrorKind::WrongIssuer => "wrong_issuer",
            ErrorKind::WrongAudience => "wrong_audience",
            ErrorKind::Expired => "expired",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::IssuedInFuture => "issued_in_future",
            ErrorKind::Claims => "claims",
            ErrorKind::KeySetUnavailable => "key_set_unavailable",
            ErrorKind::Revoked => "revoked",
            ErrorKind::StatusUnavailable => "status_unavailable",
        }
    }

    /// Whether the token itself is at fault (as opposed to the key set or its status list
    /// being unavailable).
    pub const fn is_token_error(self) -> bool {
        !matches!(
            self,
            ErrorKind::KeySetUnavailable | ErrorKind::StatusUnavailable
        )
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, detail: &'static str) -> Self {
        Error { kind, detail }
    }

    /// The class of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail)
    }
}

impl std::error::Error for Error {}

/// Building a [`Verifier`](crate::Verifier) failed: the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The policy names no issuer or no audience, or an empty one.
    #[error("policy needs a non-empty issuer and audience")]
    IncompletePolicy,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithms,
    /// No key source was configured.
    #[error("no key source: call discover(), jwks_url() or static_jwks()")]
    NoKeySource,
    /// A URL is not absolute `https` (or `http` to a loopback host). The URL is shown
    /// without userinfo, query or fragment.
    #[error("url must be absolute https (http only for loopback hosts): {0}")]
    InsecureUrl(String),
    /// A key source URL carries userinfo (`user:password@`). Credentials in URLs leak into
    /// logs; authenticate in a custom [`HttpFetcher`](crate::jwks::HttpFetcher) instead.
    #[error("key source url must not carry credentials (user:password@)")]
    CredentialsInUrl,
    /// A static JWKS did not parse, or holds no usable key.
    #[error("static jwks unusable: {0}")]
    StaticJwks(String),
    /// A remote key source needs a tokio runtime and an HTTP client.
    #[error("remote key sources need the `runtime` feature, a tokio runtime and an http client")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_indexes_dense() {
        let mut labels: Vec<_> = ErrorKind::ALL.iter().map(|k| k.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ErrorKind::ALL.len());
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }
}
