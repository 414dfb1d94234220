//! Client authentication at the token, revocation and introspection endpoints:
//! `client_secret_basic`, `client_secret_post` and `none` — exactly one per request.
//!
//! [`authenticated_form`] is the one prelude of those endpoints: the form body is read,
//! then the client authenticated, before the endpoint parses its typed request.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use super::errors::{ErrorCode, OAuthError, store_error};
use super::form::{self, Params, form_decode};
use super::state::{ClientLookupError, ProviderState};
use crate::client::{Client, ClientAuthMethod};
use crate::secret::SecretHash;
use crate::types::ClientId;

/// The credentials a request presented.
pub(crate) enum Presented {
    /// HTTP Basic with the form-decoded id and secret.
    Basic {
        client_id: String,
        secret: Zeroizing<String>,
    },
    /// `client_id` and `client_secret` form fields.
    Post {
        client_id: String,
        secret: Zeroizing<String>,
    },
    /// Only `client_id` (a public client).
    Public { client_id: String },
}

impl Presented {
    fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
            | Presented::Public { client_id } => client_id,
        }
    }
}

/// A refused client authentication.
#[derive(Debug)]
pub(crate) struct AuthFailure {
    pub(crate) error: OAuthError,
}

const INVALID_CLIENT: OAuthError =
    OAuthError::new(ErrorCode::InvalidClient, "client authentication failed");

/// Reads the credentials of a request (sans I/O).
pub(crate) fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, AuthFailure> {
    let fail = |error| AuthFailure { error };
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(fail(OAuthError::invalid_request(
            "more than one authorization header",
        )));
    }
    let body_id = params.get("client_id").map_err(fail)?;
    let body_secret = params.get("client_secret").map_err(fail)?;
    if params.contains("client_assertion") || params.contains("client_assertion_type") {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidClient,
            "client assertions are not supported",
        )));
    }

    if let Some(header) = header {
        let (client_id, secret) = parse_basic(header).ok_or_else(|| fail(INVALID_CLIENT))?;
        if body_secret.is_some() {
            return Err(fail(OAuthError::invalid_request(
                "use exactly one client authentication method",
            )));
        }
        if body_id.is_some_and(|id| id != client_id) {
            return Err(fail(OAuthError::invalid_request(
                "client_id does not match the authorization header",
            )));
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(Presented::Post {
            client_id: id.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
        }),
        (Some(id), None) => Ok(Presented::Public {
            client_id: id.to_owned(),
        }),
        (None, _) => Err(fail(INVALID_CLIENT)),
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: &HeaderValue) -> Option<(String, Zeroizing<String>)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = form_decode(id)?;
    let secret = Zeroizing::new(form_decode(secret)?);
    if id.is_empty() {
        return None;
    }
    Some((id, secret))
}

/// The shared prelude of the endpoints clients call with a form and their credentials
/// (token, introspection, revocation): the body must be a form, its parameters decode,
/// and the client authenticates. The endpoint then parses its typed request from the
/// parameters.
pub(crate) async fn authenticated_form(
    state: &ProviderState,
    parts: &Parts,
    body: &[u8],
    now: u64,
) -> Result<(Client, Params), OAuthError> {
    if !form::is_form(&parts.headers) {
        return Err(OAuthError::invalid_request(
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let client = authenticate(state, &parts.headers, &params, now).await?;
    Ok((client, params))
}

/// Authenticates the client of a request: `invalid_client` (answered 401 with a Basic
/// challenge), `invalid_request` for a malformed request, or `server_error`.
pub(crate) async fn authenticate(
    state: &ProviderState,
    headers: &HeaderMap,
    params: &Params,
    now: u64,
) -> Result<Client, OAuthError> {
    let presented = presented(headers, params).map_err(|failure| failure.error)?;
    let refuse = || INVALID_CLIENT;
    let Ok(client_id) = ClientId::parse(presented.client_id()) else {
        return Err(refuse());
    };
    let client = match state.find_client(&client_id, now).await {
        Ok(Some(client)) => client,
        Ok(None) | Err(ClientLookupError::MetadataDocument(_)) => return Err(refuse()),
        Err(ClientLookupError::Store(error)) => return Err(store_error(&error)),
    };
    let accepted = match (&presented, client.auth_method) {
        (Presented::Public { .. }, ClientAuthMethod::None) => true,
        (
            Presented::Basic { secret, .. } | Presented::Post { secret, .. },
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost,
        ) => client
            .secret_hash
            .as_ref()
            .is_some_and(|hash: &SecretHash| hash.matches(secret)),
        _ => false,
    };
    if accepted { Ok(client) } else { Err(refuse()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let headers = basic("my%20client", "p%3Ass+word");
        let params = Params::parse(b"").unwrap();
        let Presented::Basic { client_id, secret } = presented(&headers, &params).unwrap() else {
            panic!("expected basic");
        };
        assert_eq!(client_id, "my client");
        assert_eq!(secret.as_str(), "p:ss word");
    }

    #[test]
    fn attack_two_authentication_methods_are_refused() {
        let headers = basic("c", "s");
        let params = Params::parse(b"client_id=c&client_secret=s").unwrap();
        let failure = presented(&headers, &params).err().unwrap();
        assert_eq!(failure.error.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn attack_mismatched_client_ids_are_refused() {
        let headers = basic("c", "s");
        let params = Params::parse(b"client_id=other").unwrap();
        assert!(presented(&headers, &params).is_err());
        let params = Params::parse(b"client_id=c").unwrap();
        assert!(presented(&headers, &params).is_ok());
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Basic !!!".parse().unwrap());
        let params = Params::parse(b"").unwrap();
        let failure = presented(&headers, &params).err().unwrap();
        assert_eq!(failure.error.code(), ErrorCode::InvalidClient);
    }
}
