//! Token introspection (RFC 7662), for authenticated clients, about their own tokens.
//!
//! A client learns only about tokens issued to itself; any other token (unknown, expired,
//! revoked, of another client) is `{"active": false}`. Resource servers verify our access
//! tokens offline with the JWKS; this endpoint is for clients, and for deployments that
//! want revocation to reach them (a resource server registered as a confidential client
//! can only introspect its own tokens).

use serde::Serialize;

use super::access_tokens::{active_access_token, looks_like_jwt};
use super::errors::{OAuthError, store_error};
use super::form::Params;
use super::state::ProviderState;
use crate::client::Client;
use crate::secret::SecretHash;

/// An introspection request: the token to look at (`token_type_hint` is ignored).
pub(crate) struct IntrospectionRequest<'a> {
    token: &'a str,
}

impl<'a> IntrospectionRequest<'a> {
    /// Reads `token`.
    pub(crate) fn parse(params: &'a Params) -> Result<IntrospectionRequest<'a>, OAuthError> {
        match params.get("token")? {
            Some(token) => Ok(IntrospectionRequest { token }),
            None => Err(OAuthError::invalid_request("token is required")),
        }
    }
}

/// The introspection response; an inactive token is only `{"active": false}`.
#[derive(Serialize, Default)]
pub(crate) struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

/// `POST /introspect` for an authenticated `client`.
pub(crate) async fn introspect(
    state: &ProviderState,
    client: &Client,
    request: &IntrospectionRequest<'_>,
    now: u64,
) -> Result<Introspection, OAuthError> {
    let token = request.token;
    if looks_like_jwt(token) {
        return match active_access_token(state, token, now).await? {
            Some(active) if active.claims.client_id == client.client_id.as_str() => {
                let claims = &active.claims;
                Ok(Introspection {
                    active: true,
                    scope: Some(claims.scope.clone()),
                    client_id: Some(claims.client_id.clone()),
                    sub: Some(claims.sub.clone()),
                    exp: Some(claims.exp),
                    iat: Some(claims.iat),
                    iss: Some(claims.iss.clone()),
                    aud: Some(claims.aud.clone()),
                    jti: Some(claims.jti.clone()),
                    token_type: Some("Bearer"),
                })
            }
            _ => Ok(Introspection::default()),
        };
    }

    let record = state
        .store()
        .refresh_token(SecretHash::of(token))
        .await
        .map_err(|e| store_error(&e))?;
    let Some(record) = record else {
        return Ok(Introspection::default());
    };
    if record.client_id != client.client_id || !record.is_active(now) {
        return Ok(Introspection::default());
    }
    Ok(Introspection {
        active: true,
        scope: Some(record.scope.as_str().to_owned()),
        client_id: Some(record.client_id.as_str().to_owned()),
        sub: Some(record.grant.subject.as_str().to_owned()),
        exp: Some(record.expires_at()),
        iat: Some(record.issued_at),
        iss: Some(state.config().issuer.as_str().to_owned()),
        token_type: Some("refresh_token"),
        ..Introspection::default()
    })
}
