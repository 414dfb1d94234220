//! Token revocation (RFC 7009). Revoking either kind of token revokes its grant: a
//! refresh token's whole family, and every access token issued under it (they are refused
//! at userinfo and introspection from then on). Unknown tokens, and tokens of other
//! clients, get the same empty 200 without any effect.

use super::access_tokens::{active_access_token, looks_like_jwt};
use super::errors::{OAuthError, store_error};
use super::form::Params;
use super::state::ProviderState;
use crate::audit::{self, AuditEvent};
use crate::client::Client;
use crate::secret::SecretHash;
use crate::store::GrantId;

/// A revocation request: the token to revoke (`token_type_hint` is ignored).
pub(crate) struct RevocationRequest<'a> {
    token: &'a str,
}

impl<'a> RevocationRequest<'a> {
    /// Reads `token`.
    pub(crate) fn parse(params: &'a Params) -> Result<RevocationRequest<'a>, OAuthError> {
        match params.get("token")? {
            Some(token) => Ok(RevocationRequest { token }),
            None => Err(OAuthError::invalid_request("token is required")),
        }
    }
}

/// `POST /revoke` for an authenticated `client`: success is an empty 200 whatever the
/// token was.
pub(crate) async fn revoke(
    state: &ProviderState,
    client: &Client,
    request: &RevocationRequest<'_>,
    now: u64,
) -> Result<(), OAuthError> {
    let token = request.token;
    let grant: Option<GrantId> = if looks_like_jwt(token) {
        match active_access_token(state, token, now).await? {
            Some(active) if active.record.grant.client_id == client.client_id => {
                Some(active.record.grant.id.clone())
            }
            _ => None,
        }
    } else {
        match state.store().refresh_token(SecretHash::of(token)).await {
            Ok(Some(record)) if record.client_id == client.client_id => Some(record.grant.id),
            Ok(_) => None,
            Err(e) => return Err(store_error(&e)),
        }
    };
    if let Some(grant) = grant {
        let revoked = state
            .store()
            .revoke_grant(grant, now)
            .await
            .map_err(|e| store_error(&e))?;
        if revoked {
            audit::record(&AuditEvent::TokenRevoked {
                client_id: client.client_id.as_str(),
            });
        }
    }
    Ok(())
}
