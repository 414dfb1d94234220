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

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::access_tokens::{BearerHeader, active_access_token, read_bearer};
use super::errors::{ErrorCode, OAuthError, store_error};
use super::response::{self, HttpResponse};
use super::service::Inner;
use crate::audit::{self, AuditEvent};
use crate::store::GrantRecord;
use crate::types::{ClientId, Subject};

/// `GET /account/grants`.
pub(crate) async fn list_grants(inner: &Inner, parts: &Parts, now: u64) -> HttpResponse {
    let caller = match authenticate(inner, parts, now).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let grants = match inner.store.subject_grants(caller.subject, now).await {
        Ok(grants) => grants,
        Err(e) => return server_error(&store_error(&e)),
    };
    let mut apps = Vec::new();
    for group in group_by_client(grants) {
        let name = inner.client_display_name(&group.client_id, now).await;
        apps.push(App {
            client_id: group.client_id.as_str().to_owned(),
            name,
            scope: group.scope.join(" "),
            first_granted_at: group.first_granted_at,
            last_granted_at: group.last_granted_at,
            grants: group.grants,
        });
    }
    response::json(StatusCode::OK, &GrantsResponse { apps })
}

/// `POST /account/grants/revoke`.
pub(crate) async fn revoke_grants(
    inner: &Inner,
    parts: &Parts,
    body: &Bytes,
    now: u64,
) -> HttpResponse {
    let caller = match authenticate(inner, parts, now).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let client_id = match parse_revoke_request(parts, body) {
        Ok(client_id) => client_id,
        Err(error) => return response::oauth_error(StatusCode::BAD_REQUEST, error),
    };
    // A client id that cannot exist has no grants.
    let Some(client_id) = client_id else {
        return response::json(StatusCode::OK, &RevokeResponse { revoked: 0 });
    };
    let revoked = match inner
        .store
        .revoke_subject_client_grants(caller.subject.clone(), client_id.clone(), now)
        .await
    {
        Ok(revoked) => revoked,
        Err(e) => return server_error(&store_error(&e)),
    };
    if revoked > 0 {
        audit::record(&AuditEvent::AccountGrantsRevoked {
            subject: caller.subject.as_str(),
            client_id: client_id.as_str(),
            grants: revoked,
            through: caller.client_id.as_str(),
        });
    }
    response::json(StatusCode::OK, &RevokeResponse { revoked })
}

#[derive(Serialize)]
struct GrantsResponse {
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

#[derive(Serialize)]
struct RevokeResponse {
    revoked: u64,
}

/// Who called: the user the token is about, and the client it was issued to.
struct Caller {
    subject: Subject,
    client_id: ClientId,
}

/// Checks the bearer token: a live access token of ours, issued to a client with account
/// access.
async fn authenticate(inner: &Inner, parts: &Parts, now: u64) -> Result<Caller, HttpResponse> {
    let token = match read_bearer(&parts.headers) {
        BearerHeader::Token(token) => token,
        BearerHeader::Absent | BearerHeader::OtherScheme => {
            return Err(challenge(inner, StatusCode::UNAUTHORIZED, None));
        }
        BearerHeader::Malformed => return Err(invalid_token(inner)),
    };
    let active = match active_access_token(inner, token, now).await {
        Ok(Some(active)) => active,
        Ok(None) => return Err(invalid_token(inner)),
        Err(error) => return Err(server_error(&error)),
    };
    let grant = active.record.grant;
    if !inner.has_account_access(&grant.client_id) {
        return Err(challenge(
            inner,
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

/// The client id of a `{"client_id": "…"}` body; `None` for one that is not a valid
/// client id (so no client has it).
fn parse_revoke_request(parts: &Parts, body: &Bytes) -> Result<Option<ClientId>, OAuthError> {
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

fn invalid_token(inner: &Inner) -> HttpResponse {
    challenge(
        inner,
        StatusCode::UNAUTHORIZED,
        Some(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )),
    )
}

fn server_error(error: &OAuthError) -> HttpResponse {
    response::oauth_error(StatusCode::INTERNAL_SERVER_ERROR, *error)
}

/// An RFC 6750 §3 answer with its `WWW-Authenticate: Bearer` challenge (realm: the
/// issuer); without an error, an empty body.
fn challenge(inner: &Inner, status: StatusCode, error: Option<OAuthError>) -> HttpResponse {
    let realm = inner.config.issuer.as_str();
    let (mut response, header) = match error {
        None => (
            response::with_body(status, Bytes::new()),
            format!("Bearer realm=\"{realm}\""),
        ),
        Some(error) => (
            response::oauth_error(status, error),
            format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                error.code(),
                error.description()
            ),
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
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
