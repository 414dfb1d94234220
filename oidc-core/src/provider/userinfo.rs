//! The userinfo endpoint (GET and POST; the token only in `Authorization: Bearer`).

use http::header::WWW_AUTHENTICATE;
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use super::access_tokens::{active_access_token, bearer_token};
use super::errors::{ErrorCode, OAuthError};
use super::response::{self, HttpResponse};
use super::service::Inner;

#[derive(Serialize)]
struct UserinfoResponse<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// `GET`/`POST /userinfo`.
pub(crate) async fn handle(inner: &Inner, parts: &Parts, now: u64) -> HttpResponse {
    let token = match bearer_token(&parts.headers) {
        Ok(Some(token)) => token,
        Ok(None) => return challenge(StatusCode::UNAUTHORIZED, None),
        Err(error) => return challenge(StatusCode::BAD_REQUEST, Some(error)),
    };
    let active = match active_access_token(inner, token, now).await {
        Ok(Some(active)) => active,
        Ok(None) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(OAuthError::new(
                    ErrorCode::InvalidToken,
                    "the access token is invalid, expired or revoked",
                )),
            );
        }
        Err(error) => return response::oauth_error(StatusCode::INTERNAL_SERVER_ERROR, error),
    };
    let claims = &active.claims;
    if !claims.has_scope("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some(OAuthError::new(
                ErrorCode::InsufficientScope,
                "the access token lacks the openid scope",
            )),
        );
    }
    let released = &active.record.grant.claims;
    let email = released
        .email
        .as_deref()
        .filter(|_| claims.has_scope("email"));
    let body = UserinfoResponse {
        sub: &claims.sub,
        email,
        email_verified: email.map(|_| true),
        name: released
            .name
            .as_deref()
            .filter(|_| claims.has_scope("profile")),
    };
    response::json(StatusCode::OK, &body)
}

/// An RFC 6750 §3 error with its `WWW-Authenticate: Bearer` challenge.
fn challenge(status: StatusCode, error: Option<OAuthError>) -> HttpResponse {
    let (mut response, header) = match error {
        None => (
            response::with_body(status, bytes::Bytes::new()),
            "Bearer realm=\"userinfo\"".to_owned(),
        ),
        Some(error) => {
            let mut header = format!(
                "Bearer realm=\"userinfo\", error=\"{}\", error_description=\"{}\"",
                error.code(),
                error.description()
            );
            if error.code() == ErrorCode::InsufficientScope {
                header.push_str(", scope=\"openid\"");
            }
            (response::oauth_error(status, error), header)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}
