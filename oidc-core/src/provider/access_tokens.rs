//! Our own access tokens as bearer credentials: reading `Authorization: Bearer` (RFC 6750
//! §2.1) and checking that a token is one we issued to a grant that is still live. Shared
//! by the endpoints that accept our access tokens (userinfo, introspection, revocation,
//! the account API); it imports no endpoint.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jwks_verify::Verified;
use serde::Deserialize;

use super::errors::{OAuthError, store_error};
use super::state::ProviderState;
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
/// and checks that its `jti` is recorded under a grant that is not revoked, of the same
/// client and subject as the token names.
pub(crate) async fn active_access_token(
    state: &ProviderState,
    token: &str,
    now: u64,
) -> Result<Option<ActiveAccessToken>, OAuthError> {
    let Ok(verified) = state.keys().verifier().try_verify::<AccessClaims>(token) else {
        return Ok(None);
    };
    let claims: &AccessClaims = &verified;
    let record = state
        .store()
        .access_token(&claims.jti, now)
        .await
        .map_err(|e| store_error(&e))?;
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

/// Whether a token has the shape of a compact JWS (our refresh tokens never contain `.`).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// What a request's `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BearerHeader<'a> {
    /// No `Authorization` header.
    Absent,
    /// One header with another scheme (`Basic …`).
    OtherScheme,
    /// Several headers, a value that is not text, or a bearer value that is not a
    /// `token68`.
    Malformed,
    /// One `Bearer` header with a well-formed token.
    Token(&'a str),
}

/// Reads the `Authorization` header (the scheme is case-insensitive; exactly one header).
pub(crate) fn read_bearer(headers: &HeaderMap) -> BearerHeader<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return BearerHeader::Absent;
    };
    if values.next().is_some() {
        return BearerHeader::Malformed;
    }
    let Ok(text) = value.to_str() else {
        return BearerHeader::Malformed;
    };
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerHeader::OtherScheme;
    }
    let token = token.trim();
    let token68 = !token.is_empty()
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
        });
    if token68 {
        BearerHeader::Token(token)
    } else {
        BearerHeader::Malformed
    }
}

/// The token of an `Authorization: Bearer` header; `None` without one, `invalid_request`
/// for any other header (another scheme, several headers, a malformed token).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    match read_bearer(headers) {
        BearerHeader::Absent => Ok(None),
        BearerHeader::Token(token) => Ok(Some(token)),
        BearerHeader::OtherScheme => Err(OAuthError::invalid_request(
            "the authorization header is not a bearer token",
        )),
        BearerHeader::Malformed => Err(OAuthError::invalid_request(
            "the authorization header is not a single well-formed bearer token",
        )),
    }
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

    #[test]
    fn the_header_is_classified_by_scheme_and_form() {
        assert_eq!(read_bearer(&headers(&[])), BearerHeader::Absent);
        assert_eq!(
            read_bearer(&headers(&["Basic YTpi"])),
            BearerHeader::OtherScheme
        );
        assert_eq!(read_bearer(&headers(&["Token"])), BearerHeader::OtherScheme);
        assert_eq!(read_bearer(&headers(&["Bearer"])), BearerHeader::Malformed);
        assert_eq!(read_bearer(&headers(&["Bearer "])), BearerHeader::Malformed);
        assert_eq!(
            read_bearer(&headers(&["Bearer a\"b"])),
            BearerHeader::Malformed
        );
        assert_eq!(
            read_bearer(&headers(&["Bearer a", "Bearer a"])),
            BearerHeader::Malformed
        );
        assert_eq!(
            read_bearer(&headers(&["BEARER x.y_z"])),
            BearerHeader::Token("x.y_z")
        );
    }
}
