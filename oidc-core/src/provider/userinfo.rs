//! The userinfo endpoint (GET and POST; the token only in `Authorization: Bearer`).

use http::StatusCode;
use http::request::Parts;
use serde::Serialize;

use super::access_tokens::{active_access_token, bearer_token};
use super::errors::{BearerFailure, ErrorCode, OAuthError};
use super::state::ProviderState;

/// The `realm` of userinfo's `WWW-Authenticate` challenges.
pub(crate) const REALM: &str = "userinfo";

/// A userinfo request: the bearer token.
pub(crate) struct UserinfoRequest<'a> {
    token: &'a str,
}

impl<'a> UserinfoRequest<'a> {
    /// Reads the `Authorization: Bearer` header: none is a bare 401 challenge, any other
    /// header 400 `invalid_request`.
    pub(crate) fn parse(parts: &'a Parts) -> Result<UserinfoRequest<'a>, BearerFailure> {
        match bearer_token(&parts.headers) {
            Ok(Some(token)) => Ok(UserinfoRequest { token }),
            Ok(None) => Err(BearerFailure::challenge(StatusCode::UNAUTHORIZED, None)),
            Err(error) => Err(BearerFailure::challenge(
                StatusCode::BAD_REQUEST,
                Some(error),
            )),
        }
    }
}

/// The claims released to the token's client.
#[derive(Serialize)]
pub(crate) struct UserinfoResponse {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// `GET`/`POST /userinfo`.
pub(crate) async fn userinfo(
    state: &ProviderState,
    request: &UserinfoRequest<'_>,
    now: u64,
) -> Result<UserinfoResponse, BearerFailure> {
    let active = match active_access_token(state, request.token, now).await {
        Ok(Some(active)) => active,
        Ok(None) => {
            return Err(BearerFailure::challenge(
                StatusCode::UNAUTHORIZED,
                Some(OAuthError::new(
                    ErrorCode::InvalidToken,
                    "the access token is invalid, expired or revoked",
                )),
            ));
        }
        Err(error) => return Err(BearerFailure::Server(error)),
    };
    let claims = &active.claims;
    if !claims.has_scope("openid") {
        return Err(BearerFailure::challenge(
            StatusCode::FORBIDDEN,
            Some(OAuthError::new(
                ErrorCode::InsufficientScope,
                "the access token lacks the openid scope",
            )),
        ));
    }
    let released = &active.record.grant.claims;
    let email = released.email.clone().filter(|_| claims.has_scope("email"));
    Ok(UserinfoResponse {
        sub: claims.sub.clone(),
        email_verified: email.as_ref().map(|_| true),
        email,
        name: released
            .name
            .clone()
            .filter(|_| claims.has_scope("profile")),
    })
}
