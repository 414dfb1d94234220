//! Issuing tokens, shared by the token endpoint's grants (`authorization_code` and
//! `refresh_token`): the audience of a token request, signing access and ID tokens, new
//! refresh tokens and status list entries, and the token response. It imports no
//! endpoint.

use serde::Serialize;

use super::errors::{ErrorCode, OAuthError, store_error};
use super::state::ProviderState;
use crate::jwt::{self, AccessTokenClaims, IdTokenClaims};
use crate::secret::Secret;
use crate::status_list::{StatusClaim, StatusIndex};
use crate::store::{GrantRecord, NewRefreshToken};
use crate::types::{ResourceIndicator, Scope};

/// The access token's audience: the one `resource` of the token request (which must have
/// been granted), or the only granted resource.
pub(crate) fn choose_audience(
    requested: &[&str],
    granted: &[ResourceIndicator],
) -> Result<ResourceIndicator, OAuthError> {
    match requested {
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
    state: &ProviderState,
    grant: &GrantRecord,
    scope: &Scope,
    audience: &ResourceIndicator,
    nonce: Option<&str>,
    now: u64,
) -> Result<Minted, OAuthError> {
    let lifetimes = &state.config().lifetimes;
    let jti = jwt::generate_jti(state.rng()).map_err(|_| OAuthError::server_error())?;
    let expires_at = now.saturating_add(lifetimes.access.as_secs());
    let claims = AccessTokenClaims {
        iss: state.config().issuer.clone(),
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
        .filter(|_| state.config().status_lists.enabled)
        .map(|entry| StatusClaim::new(&state.config().issuer, entry));
    let access_token = state
        .keys()
        .sign_access_token(&claims, status.as_ref(), now)?;
    let id_token = if scope.contains("openid") {
        let mut claims = IdTokenClaims::new(
            state.config().issuer.clone(),
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
        Some(state.keys().sign_id_token(&claims, now)?)
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
pub(crate) async fn allocate_status(
    state: &ProviderState,
    now: u64,
) -> Result<StatusIndex, OAuthError> {
    state
        .store()
        .allocate_status_index(state.config().status_lists.list_size, now)
        .await
        .map_err(|e| store_error(&e))
}

/// A new refresh token (the secret to hand out, and what to store).
pub(crate) fn new_refresh_token(
    state: &ProviderState,
    scope: &Scope,
    absolute_expiry: u64,
    now: u64,
) -> Result<(Secret, NewRefreshToken), OAuthError> {
    let secret = Secret::generate(state.rng()).map_err(|_| OAuthError::server_error())?;
    let idle = now
        .saturating_add(state.config().lifetimes.refresh_idle.as_secs())
        .min(absolute_expiry);
    let stored = NewRefreshToken::new(secret.to_hash(), scope.clone(), idle);
    Ok((secret, stored))
}

/// A successful token response (RFC 6749 §5.1), served with `Cache-Control: no-store`.
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    refresh_token: Option<Secret>,
}

impl TokenResponse {
    /// The response handing out `minted` (and a refresh token).
    pub(crate) fn new(
        state: &ProviderState,
        minted: Minted,
        scope: &Scope,
        refresh_token: Option<Secret>,
    ) -> TokenResponse {
        TokenResponse {
            access_token: minted.access_token,
            token_type: "Bearer",
            expires_in: state.config().lifetimes.access.as_secs(),
            scope: scope.as_str().to_owned(),
            id_token: minted.id_token,
            refresh_token,
        }
    }
}

/// Serializes the refresh token itself (its `Debug` is redacted).
#[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<T>`.
fn expose<S: serde::Serializer>(secret: &Option<Secret>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}
