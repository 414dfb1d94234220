//! `GET /health`: only `status` for everyone; the details for a request carrying the
//! operator token ([`ProviderConfig::health_token`](super::ProviderConfig::health_token))
//! as a bearer token. A wrong token gets 401, so a typo is not mistaken for a server
//! without details.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use serde_json::{Value, json};

use super::state::ProviderState;

/// A health request: whether it presented an operator token, and which.
pub(crate) struct HealthRequest<'a> {
    token: Option<&'a str>,
}

impl<'a> HealthRequest<'a> {
    /// Reads an `Authorization: Bearer` header (scheme case-insensitive).
    pub(crate) fn parse(headers: &'a HeaderMap) -> HealthRequest<'a> {
        HealthRequest {
            token: bearer_token(headers),
        }
    }
}

/// The health answer: whether the provider is healthy, and the body.
pub(crate) struct Health {
    pub(crate) healthy: bool,
    pub(crate) body: Value,
}

/// A wrong operator token.
pub(crate) struct WrongOperatorToken;

/// `GET /health`.
pub(crate) async fn health(
    state: &ProviderState,
    request: &HealthRequest<'_>,
    now: u64,
) -> Result<Health, WrongOperatorToken> {
    let operator = match (&state.config().health_token, request.token) {
        (Some(expected), Some(presented)) => {
            if !expected.matches(presented) {
                return Err(WrongOperatorToken);
            }
            true
        }
        (Some(_), None) => false,
        // Without a configured token, details are never shown; a header is ignored.
        (None, _) => false,
    };
    let store = state.store().health().await;
    let keys = state.keys().status(now);
    let healthy = store.is_ok() && keys.signing_kid.is_some();
    let status_text = if healthy { "ok" } else { "unhealthy" };
    let body = if operator {
        json!({
            "status": status_text,
            "store": if store.is_ok() { "ok" } else { "unavailable" },
            "keys": {
                "signing_kid": keys.signing_kid,
                "published": keys.published,
                "next_due": keys.next_due,
            },
        })
    } else {
        json!({ "status": status_text })
    };
    Ok(Health { healthy, body })
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
