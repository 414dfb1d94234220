//! The `refresh_token` grant: rotation on every use, reuse detection that revokes the whole
//! family (the grant), binding to the client, scope narrowing only, and idle and absolute
//! expiry (RFC 9700 §4.14.2). A narrowed `scope` that names none of the audience's own
//! scopes keeps the granted default scopes of that resource, as at `/authorize`.

use crate::audit::{self, AuditEvent};
use crate::client::Client;
use crate::provider::errors::{ErrorCode, OAuthError, store_error};
use crate::provider::form::{Deferred, Params};
use crate::provider::issuance::{
    TokenResponse, allocate_status, choose_audience, mint, new_refresh_token,
};
use crate::provider::state::ProviderState;
use crate::secret::SecretHash;
use crate::store::{NewTokens, RotateOutcome};
use crate::types::{ResourceIndicator, Scope};

/// The parameters of the `refresh_token` grant. A malformed or repeated `scope` is
/// reported after the refresh token is looked up.
pub(crate) struct RefreshRequest<'a> {
    refresh_token: &'a str,
    scope: Deferred<'a>,
    resources: Vec<&'a str>,
}

impl std::fmt::Debug for RefreshRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

impl<'a> RefreshRequest<'a> {
    /// Reads the grant's parameters.
    pub(crate) fn parse(params: &'a Params) -> Result<RefreshRequest<'a>, OAuthError> {
        let Some(refresh_token) = params.get("refresh_token")? else {
            return Err(OAuthError::invalid_request("refresh_token is required"));
        };
        Ok(RefreshRequest {
            refresh_token,
            scope: params.get("scope"),
            resources: params.all("resource").collect(),
        })
    }
}

/// The `refresh_token` grant for an authenticated `client`.
pub(crate) async fn grant(
    state: &ProviderState,
    client: &Client,
    request: &RefreshRequest<'_>,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    let hash = SecretHash::of(request.refresh_token);
    let Some(record) = state
        .store()
        .refresh_token(hash)
        .await
        .map_err(|e| store_error(&e))?
    else {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if !client.refresh_tokens {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use refresh tokens",
        ));
    }
    if record.used_at.is_some() {
        reused(state, client, &record.grant.id, now).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    if record.grant.revoked {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    // The successor's idle expiry is capped by the grant's absolute one, which every
    // active refresh token's grant has.
    let Some(absolute) = record
        .grant
        .refresh_expires_at
        .filter(|_| record.is_active(now))
    else {
        return Err(OAuthError::invalid_grant("the refresh token expired"));
    };
    let scope = match request.scope? {
        None => record.scope.clone(),
        Some(text) => {
            let requested = Scope::parse(text)
                .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?;
            if !requested.is_subset_of(&record.scope) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh may only narrow the granted scope",
                ));
            }
            requested
        }
    };
    let audience = choose_audience(&request.resources, &record.grant.resources)?;
    let scope = keep_resource_defaults(state, scope, &record.scope, &audience)?;

    // A grant created while status lists were off gets its entry now; the store keeps it
    // with the grant in the rotation's transaction.
    let mut grant = record.grant.clone();
    let new_status = if state.config().status_lists.enabled && grant.status.is_none() {
        let entry = allocate_status(state, now).await?;
        grant.status = Some(entry);
        Some(entry)
    } else {
        None
    };
    let minted = mint(state, &grant, &scope, &audience, None, now)?;
    // The successor keeps the scope of the token it replaces (RFC 6749 §6).
    let (secret, successor) = new_refresh_token(state, &record.scope, absolute, now)?;
    let mut tokens = NewTokens::new(minted.jti.clone(), minted.expires_at, Some(successor));
    if let Some(entry) = new_status {
        tokens = tokens.with_grant_status(entry);
    }
    match state
        .store()
        .rotate_refresh_token(hash, tokens, now)
        .await
        .map_err(|e| store_error(&e))?
    {
        RotateOutcome::Rotated => {}
        RotateOutcome::Reused { .. } => {
            // A concurrent use won; the store revoked the family with this attempt.
            audit::record(&AuditEvent::RefreshReused {
                client_id: client.client_id.as_str(),
            });
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ));
        }
        _ => return Err(OAuthError::invalid_grant("the refresh token is invalid")),
    }
    audit::record(&AuditEvent::RefreshRotated {
        client_id: client.client_id.as_str(),
    });
    Ok(TokenResponse::new(state, minted, &scope, Some(secret)))
}

/// The default-scope rule of `/authorize` again, for the refresh's audience, within what
/// was granted: a client that re-sends its original `scope` (naming none of the resource's
/// own scopes) keeps the defaulted ones, one that names any of them gets only what it
/// named, and nothing outside `granted` is ever added.
fn keep_resource_defaults(
    state: &ProviderState,
    requested: Scope,
    granted: &Scope,
    audience: &ResourceIndicator,
) -> Result<Scope, OAuthError> {
    let with_defaults = state
        .config()
        .scope_for_resources(&requested, std::slice::from_ref(audience))
        .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "the scope is too long"))?;
    if with_defaults == requested {
        return Ok(requested);
    }
    // `requested` is a subset of `granted`, so the filtered scope is never empty.
    Ok(
        Scope::from_tokens(with_defaults.iter().filter(|t| granted.contains(t)))
            .unwrap_or(requested),
    )
}

/// A used refresh token came back: revoke its family.
async fn reused(
    state: &ProviderState,
    client: &Client,
    grant: &crate::store::GrantId,
    now: u64,
) -> Result<(), OAuthError> {
    state
        .store()
        .revoke_grant(grant.clone(), now)
        .await
        .map_err(|e| store_error(&e))?;
    audit::record(&AuditEvent::RefreshReused {
        client_id: client.client_id.as_str(),
    });
    Ok(())
}
