//! Why an upstream login did not complete, and what the browser is shown then.

use http::StatusCode;

use crate::outbound::OutboundError;

/// Why a login did not complete.
#[derive(Debug)]
pub(super) enum Refusal {
    BadRequest,
    UnknownState,
    IssuerMismatch,
    UpstreamDenied,
    MissingCode,
    TokenEndpoint,
    Outbound(OutboundError),
    InvalidIdToken(&'static str),
    NonceMismatch,
    EmailNotVerified,
    HostedDomainMismatch,
    EmailNotAllowed,
    StoreUnavailable,
    Internal(&'static str),
}

impl Refusal {
    /// The audit reason.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::UnknownState => "unknown_state",
            Refusal::IssuerMismatch => "issuer_mismatch",
            Refusal::UpstreamDenied => "upstream_error",
            Refusal::MissingCode => "missing_code",
            Refusal::TokenEndpoint | Refusal::Outbound(_) => "token_exchange_failed",
            Refusal::InvalidIdToken(_) => "invalid_id_token",
            Refusal::NonceMismatch => "nonce_mismatch",
            Refusal::EmailNotVerified => "email_not_verified",
            Refusal::HostedDomainMismatch => "hosted_domain_mismatch",
            Refusal::EmailNotAllowed => "email_not_allowed",
            Refusal::StoreUnavailable => "state_store_unavailable",
            Refusal::Internal(_) => "internal_error",
        }
    }

    /// The status, title and message of the error page.
    pub(super) fn page(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Refusal::UnknownState | Refusal::BadRequest => (
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in link has expired or was already used. Go back to the application and start again.",
            ),
            Refusal::UpstreamDenied => (
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "The sign-in was cancelled or refused. Go back to the application to try again.",
            ),
            Refusal::EmailNotVerified => (
                StatusCode::FORBIDDEN,
                "Email not verified",
                "This account's email address is not verified, so it cannot be used to sign in here.",
            ),
            Refusal::HostedDomainMismatch | Refusal::EmailNotAllowed => (
                StatusCode::FORBIDDEN,
                "Account not allowed",
                "This account is not allowed to sign in here. Try another account.",
            ),
            Refusal::IssuerMismatch | Refusal::NonceMismatch | Refusal::MissingCode => (
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "The sign-in response could not be accepted. Go back to the application and start again.",
            ),
            Refusal::TokenEndpoint | Refusal::Outbound(_) | Refusal::InvalidIdToken(_) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                "The identity provider's answer could not be accepted. Go back to the application and start again.",
            ),
            Refusal::StoreUnavailable | Refusal::Internal(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Sign-in is temporarily unavailable. Try again in a moment.",
            ),
        }
    }
}
