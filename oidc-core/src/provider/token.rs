//! The token endpoint: the `authorization_code` grant here, `refresh_token` in
//! [`refresh`](super::refresh). No implicit, no password grant.

use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;

use super::client_auth;
use super::errors::{ErrorCode, OAuthError, store_error};
use super::form::{self, Params};
use super::refresh;
use super::response::{self, HttpResponse};
use super::service::Inner;
use crate::audit::{self, AuditEvent};
use crate::client::Client;
use crate::jwt::{self, AccessTokenClaims, IdTokenClaims};
use crate::pkce;
use crate::secret::{Secret, SecretHash};
use crate::status_list::{StatusClaim, StatusIndex};
use crate::store::{
    AuthorizationCodeRecord, GrantId, GrantRecord, NewRefreshToken, NewTokens, RedeemOutcome,
};
use crate::types::{ResourceIndicator, Scope};

/// `POST /token`.
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
    let result = match params.get("grant_type") {
        Ok(Some("authorization_code")) => authorization_code(inner, &client, &params, now).await,
        Ok(Some("refresh_token")) => refresh::grant(inner, &client, &params, now).await,
        Ok(Some(_)) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "only authorization_code and refresh_token are supported",
        )),
        Ok(None) => Err(OAuthError::invalid_request("grant_type is required")),
        Err(e) => Err(e),
    };
    match result {
        Ok(response) => response,
        Err(e) => error(e),
    }
}

/// A token endpoint error (400, or 500 for `server_error`).
pub(crate) fn error(error: OAuthError) -> HttpResponse {
    let status = match error.code() {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InvalidClient => return client_auth::failure_response(error),
        _ => StatusCode::BAD_REQUEST,
    };
    response::oauth_error(status, error)
}

/// The `authorization_code` grant.
async fn authorization_code(
    inner: &Inner,
    client: &Client,
    params: &Params,
    now: u64,
) -> Result<HttpResponse, OAuthError> {
    let Some(code) = params.get("code")? else {
        return Err(OAuthError::invalid_request("code is required"));
    };
    let code_hash = SecretHash::of(code);
    let record = inner
        .store
        .code(code_hash, now)
        .await
        .map_err(|e| store_error(&e))?;
    let Some(record) = record else {
        return Err(OAuthError::invalid_grant("the code is invalid or expired"));
    };
    if let Some(redemption) = &record.redeemed {
        // RFC 6749 §4.1.2: deny, and revoke what the code produced.
        if let Some(grant) = &redemption.grant_id {
            inner
                .store
                .revoke_grant(grant.clone(), now)
                .await
                .map_err(|e| store_error(&e))?;
        }
        audit::record(&AuditEvent::CodeReplayed {
            client_id: client.client_id.as_str(),
        });
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    check_binding(&record, client, params)?;
    let audience = choose_audience(params, &record.resources)?;

    let Ok(grant_id) = GrantId::generate(inner.rng()) else {
        return Err(OAuthError::server_error());
    };
    let refresh_expires_at = client
        .refresh_tokens
        .then(|| now.saturating_add(inner.config.lifetimes.refresh_absolute.as_secs()));
    let mut grant = GrantRecord::new(
        grant_id,
        record.client_id.clone(),
        record.subject.clone(),
        record.scope.clone(),
        record.resources.clone(),
        record.auth_time,
        record.claims.clone(),
        now,
        refresh_expires_at,
    );
    grant.login.clone_from(&record.login);
    if inner.config.status_lists.enabled {
        grant = grant.with_status(allocate_status(inner, now).await?);
    }
    let minted = mint(
        inner,
        &grant,
        &record.scope,
        &audience,
        record.nonce.as_deref(),
        now,
    )?;
    let refresh = match refresh_expires_at {
        Some(absolute) => Some(new_refresh_token(inner, &record.scope, absolute, now)?),
        None => None,
    };
    let tokens = NewTokens::new(
        minted.jti.clone(),
        minted.expires_at,
        refresh.as_ref().map(|(_, stored)| stored.clone()),
    );
    match inner
        .store
        .redeem_code(code_hash, grant, tokens, now)
        .await
        .map_err(|e| store_error(&e))?
    {
        RedeemOutcome::Redeemed => {}
        RedeemOutcome::AlreadyRedeemed { .. } => {
            // A concurrent redemption won; its grant was revoked with this attempt.
            audit::record(&AuditEvent::CodeReplayed {
                client_id: client.client_id.as_str(),
            });
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        _ => return Err(OAuthError::invalid_grant("the code is invalid or expired")),
    }
    audit::record(&AuditEvent::CodeRedeemed {
        client_id: client.client_id.as_str(),
    });
    Ok(token_response(
        inner,
        &minted,
        &record.scope,
        refresh.as_ref().map(|(secret, _)| secret),
    ))
}

/// The code must have been issued to this client for this redirect URI, and the PKCE
/// verifier must match its challenge.
fn check_binding(
    record: &AuthorizationCodeRecord,
    client: &Client,
    params: &Params,
) -> Result<(), OAuthError> {
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    match params.get("redirect_uri")? {
        None => return Err(OAuthError::invalid_request("redirect_uri is required")),
        Some(uri) if uri != record.redirect_uri.as_str() => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        Some(_) => {}
    }
    pkce::check_token_request(record.code_challenge.as_ref(), params.get("code_verifier")?)
        .map_err(|e| OAuthError::invalid_grant(super::authorize::pkce_description(e)))
}

/// The access token's audience: the one `resource` of the token request (which must have
/// been granted), or the only granted resource.
pub(crate) fn choose_audience(
    params: &Params,
    granted: &[ResourceIndicator],
) -> Result<ResourceIndicator, OAuthError> {
    let requested: Vec<&str> = params.all("resource").collect();
    match requested.as_slice() {
        [] => match granted {
            [only] => Ok(only.clone()),
            _ => Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "several resources were granted; name one with resource",
            )),
        },
        [one] => {
            let resource = ResourceIndicator::parse(one).map_err(|_| {
                OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "resource must be an absolute uri without a fragment",
                )
            })?;
            if granted.contains(&resource) {
                Ok(resource)
            } else {
                Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "the resource was not granted",
                ))
            }
        }
        _ => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "name one resource per token request",
        )),
    }
}

/// Signed tokens, before they are stored.
pub(crate) struct Minted {
    pub(crate) access_token: String,
    pub(crate) jti: String,
    pub(crate) expires_at: u64,
    pub(crate) id_token: Option<String>,
}

/// Signs an access token (and an ID token when `openid` is in `scope`) for `grant`.
pub(crate) fn mint(
    inner: &Inner,
    grant: &GrantRecord,
    scope: &Scope,
    audience: &ResourceIndicator,
    nonce: Option<&str>,
    now: u64,
) -> Result<Minted, OAuthError> {
    let lifetimes = &inner.config.lifetimes;
    let jti = jwt::generate_jti(inner.rng()).map_err(|_| OAuthError::server_error())?;
    let expires_at = now.saturating_add(lifetimes.access.as_secs());
    let claims = AccessTokenClaims {
        iss: inner.config.issuer.clone(),
        sub: grant.subject.clone(),
        aud: audience.clone(),
        client_id: grant.client_id.clone(),
        iat: now,
        exp: expires_at,
        jti: jti.clone(),
        scope: scope.clone(),
    };
    // Tokens of a grant created while status lists were off carry none.
    let status = grant
        .status
        .filter(|_| inner.config.status_lists.enabled)
        .map(|entry| StatusClaim::new(&inner.config.issuer, entry));
    let access_token = inner
        .keys
        .sign_access_token(&claims, status.as_ref(), now)?;
    let id_token = if scope.contains("openid") {
        let mut claims = IdTokenClaims::new(
            inner.config.issuer.clone(),
            grant.subject.clone(),
            grant.client_id.clone(),
            now,
            now.saturating_add(lifetimes.id_token.as_secs()),
        );
        claims.auth_time = Some(grant.auth_time);
        claims.nonce = nonce.map(str::to_owned);
        if scope.contains("email")
            && let Some(email) = &grant.claims.email
        {
            claims.email = Some(email.clone());
            claims.email_verified = Some(true);
        }
        if scope.contains("profile") {
            claims.name.clone_from(&grant.claims.name);
        }
        Some(inner.keys.sign_id_token(&claims, now)?)
    } else {
        None
    };
    Ok(Minted {
        access_token,
        jti,
        expires_at,
        id_token,
    })
}

/// A new status list entry for a grant.
pub(crate) async fn allocate_status(inner: &Inner, now: u64) -> Result<StatusIndex, OAuthError> {
    inner
        .store
        .allocate_status_index(inner.config.status_lists.list_size, now)
        .await
        .map_err(|e| store_error(&e))
}

/// A new refresh token (the secret to hand out, and what to store).
pub(crate) fn new_refresh_token(
    inner: &Inner,
    scope: &Scope,
    absolute_expiry: u64,
    now: u64,
) -> Result<(Secret, NewRefreshToken), OAuthError> {
    let secret = Secret::generate(inner.rng()).map_err(|_| OAuthError::server_error())?;
    let idle = now
        .saturating_add(inner.config.lifetimes.refresh_idle.as_secs())
        .min(absolute_expiry);
    let stored = NewRefreshToken::new(secret.to_hash(), scope.clone(), idle);
    Ok((secret, stored))
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

/// The successful token response (`Cache-Control: no-store`).
pub(crate) fn token_response(
    inner: &Inner,
    minted: &Minted,
    scope: &Scope,
    refresh_token: Option<&Secret>,
) -> HttpResponse {
    response::json(
        StatusCode::OK,
        &TokenResponse {
            access_token: &minted.access_token,
            token_type: "Bearer",
            expires_in: inner.config.lifetimes.access.as_secs(),
            scope: scope.as_str(),
            id_token: minted.id_token.as_deref(),
            refresh_token: refresh_token.map(Secret::expose_secret),
        },
    )
}
