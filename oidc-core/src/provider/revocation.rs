//! Token revocation (RFC 7009). Revoking either kind of token revokes its grant: a
//! refresh token's whole family, and every access token issued under it (they are refused
//! at userinfo and introspection from then on). Unknown tokens, and tokens of other
//! clients, get the same empty 200 without any effect.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, PRAGMA};
use http::request::Parts;
use http::{HeaderValue, StatusCode};

use super::access_tokens::active_access_token;
use super::client_auth;
use super::errors::{OAuthError, store_error};
use super::form::{self, Params};
use super::introspection::looks_like_jwt;
use super::response::{self, HttpResponse};
use super::service::Inner;
use super::token::error;
use crate::audit::{self, AuditEvent};
use crate::secret::SecretHash;
use crate::store::GrantId;

/// `POST /revoke`.
pub(crate) async fn handle(inner: &Inner, parts: &Parts, body: &Bytes, now: u64) -> HttpResponse {
    if !form::is_form(&parts.headers) {
        return error(OAuthError::invalid_request(
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let params = match Params::parse(body) {
        Ok(params) => params,
        Err(e) => return error(e),
    };
    let client = match client_auth::authenticate(inner, &parts.headers, &params, now).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let token = match params.get("token") {
        Ok(Some(token)) => token,
        Ok(None) => return error(OAuthError::invalid_request("token is required")),
        Err(e) => return error(e),
    };

    let grant: Option<GrantId> = if looks_like_jwt(token) {
        match active_access_token(inner, token, now).await {
            Ok(Some(active)) if active.record.grant.client_id == client.client_id => {
                Some(active.record.grant.id.clone())
            }
            Ok(_) => None,
            Err(e) => return error(e),
        }
    } else {
        match inner.store.refresh_token(SecretHash::of(token)).await {
            Ok(Some(record)) if record.client_id == client.client_id => Some(record.grant.id),
            Ok(_) => None,
            Err(e) => return error(store_error(&e)),
        }
    };
    if let Some(grant) = grant {
        match inner.store.revoke_grant(grant, now).await {
            Ok(true) => audit::record(&AuditEvent::TokenRevoked {
                client_id: client.client_id.as_str(),
            }),
            Ok(false) => {}
            Err(e) => return error(store_error(&e)),
        }
    }
    let mut response = response::with_body(StatusCode::OK, Bytes::new());
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
