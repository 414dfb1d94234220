//! The account API: which apps hold a grant for the user, and revoking them.
//!
//! Server to server, JSON, no CORS. The caller presents one of our access tokens as
//! `Authorization: Bearer`; it must be live (signature by our keys, `typ: at+jwt`,
//! unexpired, its grant not revoked) and issued to a static client with account access
//! ([`StaticClient::with_account_access`](super::StaticClient::with_account_access)).
//! The token's subject is the user: the API never shows or changes another user's grants.
//!
//! - `GET /account/grants` → `{"apps": [{"client_id", "name", "scope",
//!   "first_granted_at", "last_granted_at", "grants"}]}`: the user's live grants grouped
//!   per client, the most recently granted first (times in Unix seconds).
//! - `POST /account/grants/revoke` with `{"client_id": "…"}` → `{"revoked": n}`: revokes
//!   every live grant of the user and that client, setting each one's status list entry.
//!
//! Errors follow RFC 6750 §3: no `Authorization` header or another scheme is 401 with
//! `WWW-Authenticate: Bearer realm="{issuer}"`; a malformed, unknown, expired or revoked
//! token 401 with `error="invalid_token"`; a live token of a client without account
//! access 403 with `error="insufficient_scope"`; a body that is not `{"client_id": …}`
//! 400 `invalid_request`.

use http::StatusCode;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use super::access_tokens::{BearerHeader, active_access_token, read_bearer};
use super::errors::{BearerFailure, ErrorCode, OAuthError, store_error};
use super::state::ProviderState;
use crate::audit::{self, AuditEvent};
use crate::store::GrantRecord;
use crate::types::{ClientId, Subject};

/// `GET /account/grants` for an authenticated `caller`.
pub(crate) async fn list_grants(
    state: &ProviderState,
    caller: &Caller,
    now: u64,
) -> Result<GrantsResponse, BearerFailure> {
    let grants = state
        .store()
        .subject_grants(caller.subject.clone(), now)
        .await
        .map_err(|e| BearerFailure::Server(store_error(&e)))?;
    let mut apps = Vec::new();
    for group in group_by_client(grants) {
        let name = state.client_display_name(&group.client_id, now).await;
        apps.push(App {
            client_id: group.client_id.as_str().to_owned(),
            name,
            scope: group.scope.join(" "),
            first_granted_at: group.first_granted_at,
            last_granted_at: group.last_granted_at,
            grants: group.grants,
        });
    }
    Ok(GrantsResponse { apps })
}

/// `POST /account/grants/revoke` for an authenticated `caller`.
pub(crate) async fn revoke_grants(
    state: &ProviderState,
    caller: &Caller,
    request: &AccountRevokeRequest,
    now: u64,
) -> Result<RevokeResponse, BearerFailure> {
    // A client id that cannot exist has no grants.
    let Some(client_id) = &request.client_id else {
        return Ok(RevokeResponse { revoked: 0 });
    };
    let revoked = state
        .store()
        .revoke_subject_client_grants(caller.subject.clone(), client_id.clone(), now)
        .await
        .map_err(|e| BearerFailure::Server(store_error(&e)))?;
    if revoked > 0 {
        audit::record(&AuditEvent::AccountGrantsRevoked {
            subject: caller.subject.as_str(),
            client_id: client_id.as_str(),
            grants: revoked,
            through: caller.client_id.as_str(),
        });
    }
    Ok(RevokeResponse { revoked })
}

/// The user's apps.
#[derive(Serialize)]
pub(crate) struct GrantsResponse {
    apps: Vec<App>,
}

#[derive(Serialize)]
struct App {
    client_id: String,
    name: String,
    scope: String,
    first_granted_at: u64,
    last_granted_at: u64,
    grants: u64,
}

#[derive(Deserialize)]
struct RevokeRequest {
    client_id: String,
}

/// How many grants were revoked.
#[derive(Serialize)]
pub(crate) struct RevokeResponse {
    revoked: u64,
}

/// Who called: the user the token is about, and the client it was issued to.
pub(crate) struct Caller {
    subject: Subject,
    client_id: ClientId,
}

/// Checks the bearer token: a live access token of ours, issued to a client with account
/// access. The shared prelude of both account endpoints.
pub(crate) async fn authenticate(
    state: &ProviderState,
    parts: &Parts,
    now: u64,
) -> Result<Caller, BearerFailure> {
    let token = match read_bearer(&parts.headers) {
        BearerHeader::Token(token) => token,
        BearerHeader::Absent | BearerHeader::OtherScheme => {
            return Err(BearerFailure::challenge(StatusCode::UNAUTHORIZED, None));
        }
        BearerHeader::Malformed => return Err(invalid_token()),
    };
    let active = match active_access_token(state, token, now).await {
        Ok(Some(active)) => active,
        Ok(None) => return Err(invalid_token()),
        Err(error) => return Err(BearerFailure::Server(error)),
    };
    let grant = active.record.grant;
    if !state.has_account_access(&grant.client_id) {
        return Err(BearerFailure::challenge(
            StatusCode::FORBIDDEN,
            Some(OAuthError::new(
                ErrorCode::InsufficientScope,
                "the access token's client has no access to the account api",
            )),
        ));
    }
    Ok(Caller {
        subject: grant.subject,
        client_id: grant.client_id,
    })
}

/// `{"client_id": "…"}`: whose grants to revoke.
pub(crate) struct AccountRevokeRequest {
    /// `None` for a value that is not a valid client id (so no client has it).
    client_id: Option<ClientId>,
}

impl AccountRevokeRequest {
    /// Reads a JSON (or unlabelled) body.
    pub(crate) fn parse(parts: &Parts, body: &[u8]) -> Result<AccountRevokeRequest, BearerFailure> {
        parse_revoke_request(parts, body)
            .map(|client_id| AccountRevokeRequest { client_id })
            .map_err(BearerFailure::Invalid)
    }
}

/// The client id of a `{"client_id": "…"}` body; `None` for one that is not a valid
/// client id (so no client has it).
fn parse_revoke_request(parts: &Parts, body: &[u8]) -> Result<Option<ClientId>, OAuthError> {
    let json_or_unlabelled = parts.headers.get(CONTENT_TYPE).is_none_or(|value| {
        value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json_or_unlabelled {
        return Err(OAuthError::invalid_request(
            "the request body must be application/json",
        ));
    }
    let request: RevokeRequest = serde_json::from_slice(body).map_err(|_| {
        OAuthError::invalid_request("the body must be a json object with a client_id string")
    })?;
    if request.client_id.is_empty() {
        return Err(OAuthError::invalid_request("client_id must not be empty"));
    }
    Ok(ClientId::parse(&request.client_id).ok())
}

/// One client's live grants of the user.
struct ClientGrants {
    client_id: ClientId,
    /// Every scope token granted, in the order first seen (oldest grant first).
    scope: Vec<String>,
    first_granted_at: u64,
    last_granted_at: u64,
    grants: u64,
}

/// Groups grants per client, the most recently granted client first (ties by client id).
fn group_by_client(grants: Vec<GrantRecord>) -> Vec<ClientGrants> {
    let mut groups: Vec<ClientGrants> = Vec::new();
    for grant in grants {
        let index = match groups.iter().position(|g| g.client_id == grant.client_id) {
            Some(index) => index,
            None => {
                groups.push(ClientGrants {
                    client_id: grant.client_id.clone(),
                    scope: Vec::new(),
                    first_granted_at: grant.created_at,
                    last_granted_at: grant.created_at,
                    grants: 0,
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        for token in grant.scope.iter() {
            if !group.scope.iter().any(|s| s == token) {
                group.scope.push(token.to_owned());
            }
        }
        group.first_granted_at = group.first_granted_at.min(grant.created_at);
        group.last_granted_at = group.last_granted_at.max(grant.created_at);
        group.grants += 1;
    }
    groups.sort_by(|a, b| {
        b.last_granted_at
            .cmp(&a.last_granted_at)
            .then_with(|| a.client_id.cmp(&b.client_id))
    });
    groups
}

fn invalid_token() -> BearerFailure {
    BearerFailure::challenge(
        StatusCode::UNAUTHORIZED,
        Some(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{GrantId, ReleasedClaims};
    use crate::types::{ResourceIndicator, Scope};

    fn grant(client: &str, scope: &str, created_at: u64) -> GrantRecord {
        GrantRecord::new(
            GrantId::generate(&aws_lc_rs::rand::SystemRandom::new()).unwrap(),
            ClientId::parse(client).unwrap(),
            Subject::parse("u-1").unwrap(),
            Scope::parse(scope).unwrap(),
            vec![ResourceIndicator::parse("https://mcp.example.com/mcp").unwrap()],
            created_at,
            ReleasedClaims::default(),
            created_at,
            None,
        )
    }

    #[test]
    fn grants_are_grouped_per_client_newest_first_with_the_union_of_scopes() {
        let groups = group_by_client(vec![
            grant("a", "openid email", 10),
            grant("b", "openid", 20),
            grant("a", "openid memories:read", 30),
            grant("c", "profile", 20),
        ]);
        let summary: Vec<(&str, String, u64, u64, u64)> = groups
            .iter()
            .map(|g| {
                (
                    g.client_id.as_str(),
                    g.scope.join(" "),
                    g.first_granted_at,
                    g.last_granted_at,
                    g.grants,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", "openid email memories:read".to_owned(), 10, 30, 2),
                ("b", "openid".to_owned(), 20, 20, 1),
                ("c", "profile".to_owned(), 20, 20, 1),
            ]
        );
    }
}
