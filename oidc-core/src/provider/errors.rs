//! Errors: the OAuth error codes the endpoints answer with, and why a provider could not
//! be built or maintained.

use std::fmt;

use http::StatusCode;

use crate::keys::KeyRingError;
use crate::pkce::PkceError;
use crate::store::{StoreError, StoreErrorKind};

/// An OAuth / OpenID Connect error code (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1,
/// RFC 7591 §3.2.2, RFC 8707 §2, OpenID Connect Core §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`.
    InvalidClient,
    /// `invalid_grant`.
    InvalidGrant,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_target` (RFC 8707).
    InvalidTarget,
    /// `access_denied`.
    AccessDenied,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `login_required` (OpenID Connect).
    LoginRequired,
    /// `request_not_supported` (OpenID Connect).
    RequestNotSupported,
    /// `request_uri_not_supported` (OpenID Connect).
    RequestUriNotSupported,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `invalid_redirect_uri` (RFC 7591).
    InvalidRedirectUri,
    /// `invalid_client_metadata` (RFC 7591).
    InvalidClientMetadata,
    /// `invalid_token` (RFC 6750).
    InvalidToken,
    /// `insufficient_scope` (RFC 6750).
    InsufficientScope,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to a client: a code and a fixed description that never repeats the
/// request's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthError {
    code: ErrorCode,
    description: &'static str,
}

impl OAuthError {
    /// An error with a description.
    ///
    /// ```
    /// use oidc_core::provider::{ErrorCode, OAuthError};
    ///
    /// let error = OAuthError::new(ErrorCode::InvalidTarget, "the resource is not served here");
    /// assert_eq!(error.to_string(), "invalid_target: the resource is not served here");
    /// ```
    pub const fn new(code: ErrorCode, description: &'static str) -> OAuthError {
        OAuthError { code, description }
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The description (`error_description`).
    pub fn description(&self) -> &'static str {
        self.description
    }

    pub(crate) const fn invalid_request(description: &'static str) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub(crate) const fn invalid_grant(description: &'static str) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    pub(crate) const fn temporarily_unavailable() -> OAuthError {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the server is temporarily unavailable; retry shortly",
        )
    }

    pub(crate) const fn server_error() -> OAuthError {
        OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
}

/// A refused request at an endpoint that takes our access tokens as bearer credentials.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BearerFailure {
    /// An RFC 6750 §3 answer with a `WWW-Authenticate: Bearer` challenge; without an
    /// error (no credentials at all), an empty body.
    Challenge {
        status: StatusCode,
        error: Option<OAuthError>,
    },
    /// A malformed request body: 400 without a challenge.
    Invalid(OAuthError),
    /// The store failed: 500 without a challenge (503 with `Retry-After` for
    /// `temporarily_unavailable`).
    Server(OAuthError),
}

impl BearerFailure {
    pub(crate) fn challenge(status: StatusCode, error: Option<OAuthError>) -> BearerFailure {
        BearerFailure::Challenge { status, error }
    }
}

/// Logs a store failure and answers `temporarily_unavailable` (503 with `Retry-After`)
/// when retrying may succeed (the database is unreachable, busy or out of pooled
/// connections), `server_error` otherwise.
pub(crate) fn store_error(error: &StoreError) -> OAuthError {
    if matches!(
        error.kind(),
        StoreErrorKind::Unavailable | StoreErrorKind::Busy
    ) {
        tracing::warn!(%error, "provider store temporarily unavailable");
        return OAuthError::temporarily_unavailable();
    }
    tracing::error!(%error, "provider store failed");
    OAuthError::server_error()
}

/// A fixed description for each PKCE error.
pub(crate) fn pkce_description(error: PkceError) -> &'static str {
    match error {
        PkceError::MissingChallenge => "code_challenge is required",
        PkceError::MissingMethod => "code_challenge_method is required and must be S256",
        PkceError::PlainMethod => "code_challenge_method plain is not supported; use S256",
        PkceError::UnsupportedMethod => "code_challenge_method is not supported; use S256",
        PkceError::MalformedChallenge => "code_challenge is not a base64url sha-256 digest",
        PkceError::VerifierTooShort => "code_verifier is shorter than 43 characters",
        PkceError::VerifierTooLong => "code_verifier is longer than 128 characters",
        PkceError::VerifierInvalidCharacter => {
            "code_verifier has a character outside [A-Za-z0-9-._~]"
        }
        PkceError::MissingVerifier => "code_verifier is required",
        PkceError::UnexpectedVerifier => {
            "code_verifier sent for a code issued without code_challenge"
        }
        PkceError::VerifierMismatch => "code_verifier does not match code_challenge",
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// Why a [`Provider`](super::Provider) could not be built or could not run maintenance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The configuration contradicts itself.
    #[error("invalid provider configuration: {0}")]
    InvalidConfig(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing keys could not be loaded, generated or rotated.
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    /// The published key set could not be loaded into the access token verifier.
    #[error("the published key set could not be loaded")]
    KeySet,
    /// Other replicas kept rotating the keys while this one tried to load them.
    #[error("signing keys changed concurrently too often")]
    KeysContended,
    /// A background task could not run (no Tokio runtime, or it panicked).
    #[error("a provider task could not run")]
    Runtime,
}
