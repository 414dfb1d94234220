//! The userinfo endpoint (GET and POST; the token only in `Authorization: Bearer`), and
//! the check of our own access tokens shared with introspection and revocation.

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use jwks_verify::Verified;
use serde::{Deserialize, Serialize};

use super::errors::{ErrorCode, OAuthError};
use super::response::{self, HttpResponse};
use super::service::Inner;
use crate::store::AccessTokenRecord;

/// The claims of our access tokens that the endpoints read.
#[derive(Debug, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) jti: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

impl AccessClaims {
    pub(crate) fn has_scope(&self, wanted: &str) -> bool {
        self.scope.split(' ').any(|s| s == wanted)
    }
}

/// An access token that verified and belongs to a live grant.
pub(crate) struct ActiveAccessToken {
    pub(crate) claims: Verified<AccessClaims>,
    pub(crate) record: AccessTokenRecord,
}

/// Verifies one of our access tokens (signature, `typ: at+jwt`, issuer, audience, expiry)
/// and checks that its `jti` is recorded under a grant that is not revoked.
pub(crate) async fn active_access_token(
    inner: &Inner,
    token: &str,
    now: u64,
) -> Result<Option<ActiveAccessToken>, OAuthError> {
    let Ok(verified) = inner.keys.verifier().try_verify::<AccessClaims>(token) else {
        return Ok(None);
    };
    let claims: &AccessClaims = &verified;
    let record = inner
        .store
        .access_token(&claims.jti, now)
        .await
        .map_err(|e| super::token::store_error(&e))?;
    let Some(record) = record else {
        return Ok(None);
    };
    if record.grant.revoked
        || record.grant.client_id.as_str() != claims.client_id
        || record.grant.subject.as_str() != claims.sub
    {
        return Ok(None);
    }
    Ok(Some(ActiveAccessToken {
        claims: verified,
        record,
    }))
}

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

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1); `None` without one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one authorization header",
        ));
    }
    let malformed =
        || OAuthError::invalid_request("the authorization header is not a bearer token");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    let token = token.trim();
    let token68 = !token.is_empty()
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
        });
    if token68 {
        Ok(Some(token))
    } else {
        Err(malformed())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn bearer_tokens_are_read_from_one_header_only() {
        assert_eq!(bearer_token(&headers(&[])).unwrap(), None);
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def-ghi"])).unwrap(),
            Some("abc.def-ghi")
        );
        assert_eq!(
            bearer_token(&headers(&["bearer abc"])).unwrap(),
            Some("abc")
        );
        assert!(bearer_token(&headers(&["Basic abc"])).is_err());
        assert!(bearer_token(&headers(&["Bearer a b"])).is_err());
        assert!(bearer_token(&headers(&["Bearer a", "Bearer b"])).is_err());
    }
}
