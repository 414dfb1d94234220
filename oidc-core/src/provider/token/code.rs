//! The `authorization_code` grant: the code is redeemed exactly once, bound to its client,
//! redirect URI and PKCE challenge; a replayed code revokes the grant it produced.

use crate::audit::{self, AuditEvent};
use crate::client::Client;
use crate::pkce;
use crate::provider::errors::{OAuthError, pkce_description, store_error};
use crate::provider::form::{Deferred, Params};
use crate::provider::issuance::{
    TokenResponse, allocate_status, choose_audience, mint, new_refresh_token,
};
use crate::provider::state::ProviderState;
use crate::secret::SecretHash;
use crate::store::{AuthorizationCodeRecord, GrantId, GrantRecord, NewTokens, RedeemOutcome};

/// The parameters of the `authorization_code` grant. A missing or repeated
/// `redirect_uri` or `code_verifier` is reported after the code is looked up (a replayed
/// code revokes its grant whatever else is wrong with the request).
pub(crate) struct CodeRequest<'a> {
    code: &'a str,
    redirect_uri: Deferred<'a>,
    code_verifier: Deferred<'a>,
    resources: Vec<&'a str>,
}

impl std::fmt::Debug for CodeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRequest")
            .field("redirect_uri", &self.redirect_uri)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

impl<'a> CodeRequest<'a> {
    /// Reads the grant's parameters.
    pub(crate) fn parse(params: &'a Params) -> Result<CodeRequest<'a>, OAuthError> {
        let Some(code) = params.get("code")? else {
            return Err(OAuthError::invalid_request("code is required"));
        };
        Ok(CodeRequest {
            code,
            redirect_uri: params.get("redirect_uri"),
            code_verifier: params.get("code_verifier"),
            resources: params.all("resource").collect(),
        })
    }
}

/// The `authorization_code` grant for an authenticated `client`.
pub(crate) async fn grant(
    state: &ProviderState,
    client: &Client,
    request: &CodeRequest<'_>,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    let code_hash = SecretHash::of(request.code);
    let record = state
        .store()
        .code(code_hash, now)
        .await
        .map_err(|e| store_error(&e))?;
    let Some(record) = record else {
        return Err(OAuthError::invalid_grant("the code is invalid or expired"));
    };
    if let Some(redemption) = &record.redeemed {
        // RFC 6749 §4.1.2: deny, and revoke what the code produced.
        if let Some(grant) = &redemption.grant_id {
            state
                .store()
                .revoke_grant(grant.clone(), now)
                .await
                .map_err(|e| store_error(&e))?;
        }
        audit::record(&AuditEvent::CodeReplayed {
            client_id: client.client_id.as_str(),
        });
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    check_binding(&record, client, request)?;
    let audience = choose_audience(&request.resources, &record.resources)?;

    let Ok(grant_id) = GrantId::generate(state.rng()) else {
        return Err(OAuthError::server_error());
    };
    let refresh_expires_at = client
        .refresh_tokens
        .then(|| now.saturating_add(state.config().lifetimes.refresh_absolute.as_secs()));
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
    if state.config().status_lists.enabled {
        grant = grant.with_status(allocate_status(state, now).await?);
    }
    let minted = mint(
        state,
        &grant,
        &record.scope,
        &audience,
        record.nonce.as_deref(),
        now,
    )?;
    let refresh = match refresh_expires_at {
        Some(absolute) => Some(new_refresh_token(state, &record.scope, absolute, now)?),
        None => None,
    };
    let tokens = NewTokens::new(
        minted.jti.clone(),
        minted.expires_at,
        refresh.as_ref().map(|(_, stored)| stored.clone()),
    );
    match state
        .store()
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
    Ok(TokenResponse::new(
        state,
        minted,
        &record.scope,
        refresh.map(|(secret, _)| secret),
    ))
}

/// The code must have been issued to this client for this redirect URI, and the PKCE
/// verifier must match its challenge.
fn check_binding(
    record: &AuthorizationCodeRecord,
    client: &Client,
    request: &CodeRequest<'_>,
) -> Result<(), OAuthError> {
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    match request.redirect_uri? {
        None => return Err(OAuthError::invalid_request("redirect_uri is required")),
        Some(uri) if uri != record.redirect_uri.as_str() => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        Some(_) => {}
    }
    pkce::check_token_request(record.code_challenge.as_ref(), request.code_verifier?)
        .map_err(|e| OAuthError::invalid_grant(pkce_description(e)))
}
