//! Token introspection (RFC 7662), for authenticated clients, about their own tokens.
//!
//! A client learns only about tokens issued to itself; any other token (unknown, expired,
//! revoked, of another client) is `{"active": false}`. Resource servers verify our access
//! tokens offline with the JWKS; this endpoint is for clients, and for deployments that
//! want revocation to reach them (a resource server registered as a confidential client
//! can only introspect its own tokens).

use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;

use super::access_tokens::active_access_token;
use super::client_auth;
use super::errors::{OAuthError, store_error};
use super::form::{self, Params};
use super::response::{self, HttpResponse};
use super::service::Inner;
use super::token::error;
use crate::secret::SecretHash;

#[derive(Serialize, Default)]
struct Introspection<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

/// `POST /introspect`.
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
    let inactive = || response::json(StatusCode::OK, &Introspection::default());

    if looks_like_jwt(token) {
        return match active_access_token(inner, token, now).await {
            Ok(Some(active)) if active.claims.client_id == client.client_id.as_str() => {
                let claims = &active.claims;
                response::json(
                    StatusCode::OK,
                    &Introspection {
                        active: true,
                        scope: Some(&claims.scope),
                        client_id: Some(&claims.client_id),
                        sub: Some(&claims.sub),
                        exp: Some(claims.exp),
                        iat: Some(claims.iat),
                        iss: Some(&claims.iss),
                        aud: Some(&claims.aud),
                        jti: Some(&claims.jti),
                        token_type: Some("Bearer"),
                    },
                )
            }
            Ok(_) => inactive(),
            Err(e) => error(e),
        };
    }

    let record = match inner.store.refresh_token(SecretHash::of(token)).await {
        Ok(record) => record,
        Err(e) => return error(store_error(&e)),
    };
    let Some(record) = record else {
        return inactive();
    };
    if record.client_id != client.client_id || !record.is_active(now) {
        return inactive();
    }
    response::json(
        StatusCode::OK,
        &Introspection {
            active: true,
            scope: Some(record.scope.as_str()),
            client_id: Some(record.client_id.as_str()),
            sub: Some(record.grant.subject.as_str()),
            exp: Some(record.expires_at()),
            iat: Some(record.issued_at),
            iss: Some(inner.config.issuer.as_str()),
            token_type: Some("refresh_token"),
            ..Introspection::default()
        },
    )
}

/// Whether a token has the shape of a compact JWS (our refresh tokens never contain `.`).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}
