//! Dynamic Client Registration (RFC 7591) at `/register`.
//!
//! Open registration (no initial access token: MCP clients cannot get one), rate-limited
//! per IP. Redirect URIs must be `https` or `http` to a loopback host, with no fragment
//! and no wildcard; private-use schemes are not registered here. A `client_name` longer
//! than [`MAX_CLIENT_NAME_CHARS`](crate::outbound::MAX_CLIENT_NAME_CHARS) characters or
//! holding control or invisible formatting characters is refused. These rules are shared
//! with Client ID Metadata Documents. Unknown metadata is ignored and not echoed.
//! Confidential clients get a secret once; only its hash is kept.

use http::request::Parts;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::errors::{ErrorCode, OAuthError, store_error};
use super::form;
use super::state::ProviderState;
use crate::audit::{self, AuditEvent};
use crate::client::{Client, ClientAuthMethod, ClientKind};
use crate::client_metadata::{self, RedirectUrisError};
use crate::redirect::RedirectUri;
use crate::secret::Secret;
use crate::store::StoreErrorKind;
use crate::types::ClientId;

/// The name shown for a client that gave none.
const UNNAMED: &str = "An unnamed application";

/// The registration request fields this server reads; everything else is ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    application_type: Option<String>,
}

/// Validated registration metadata.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) redirect_uris: Vec<RedirectUri>,
    pub(crate) auth_method: ClientAuthMethod,
    pub(crate) grant_types: Vec<&'static str>,
    pub(crate) client_name: Option<String>,
    pub(crate) application_type: Option<&'static str>,
}

fn metadata_error(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

fn redirect_error(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description)
}

/// Checks a registration request (sans I/O).
pub(crate) fn validate(
    request: &RegistrationRequest,
    max_redirect_uris: usize,
) -> Result<Registration, OAuthError> {
    let redirect_uris =
        client_metadata::redirect_uris(request.redirect_uris.as_deref(), max_redirect_uris)
            .map_err(|e| {
                redirect_error(match e {
                    RedirectUrisError::Missing => "redirect_uris is required",
                    RedirectUrisError::TooMany => "too many redirect_uris",
                    RedirectUrisError::Invalid(..) => {
                        "each redirect_uri must be https (or http to a loopback host) without fragment or wildcard"
                    }
                    RedirectUrisError::PrivateUseScheme(_) => {
                        "each redirect_uri must be https or http to a loopback host"
                    }
                })
            })?;

    let auth_method = match request.token_endpoint_auth_method.as_deref() {
        None => ClientAuthMethod::ClientSecretBasic,
        Some(name) => ClientAuthMethod::from_name(name).ok_or_else(|| {
            metadata_error(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
            )
        })?,
    };

    let grant_types =
        client_metadata::grant_types(request.grant_types.as_deref()).map_err(metadata_error)?;
    client_metadata::response_types(request.response_types.as_deref()).map_err(metadata_error)?;
    let client_name = match request
        .client_name
        .as_deref()
        .map(client_metadata::client_name)
    {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(name))) => Some(name.to_owned()),
        Some(Err(_)) => {
            return Err(metadata_error(
                "client_name must be at most 64 characters without control or invisible characters",
            ));
        }
    };
    let application_type = match request.application_type.as_deref() {
        None => None,
        Some("web") => Some("web"),
        Some("native") => Some("native"),
        Some(_) => return Err(metadata_error("application_type must be web or native")),
    };
    Ok(Registration {
        redirect_uris,
        auth_method,
        grant_types,
        client_name,
        application_type,
    })
}

impl Registration {
    /// Reads and checks a `POST /register` body (sans I/O).
    pub(crate) fn parse(
        parts: &Parts,
        body: &[u8],
        max_redirect_uris: usize,
    ) -> Result<Registration, OAuthError> {
        if !form::is_json(&parts.headers) {
            return Err(metadata_error("the request body must be application/json"));
        }
        let request: RegistrationRequest = serde_json::from_slice(body)
            .map_err(|_| metadata_error("the request body is not valid client metadata"))?;
        validate(&request, max_redirect_uris)
    }
}

/// A registered client, answered once with its secret (RFC 7591 §3.2.1).
pub(crate) struct RegisteredClient {
    client_id: ClientId,
    issued_at: u64,
    secret: Option<Secret>,
    registration: Registration,
}

impl RegisteredClient {
    /// The registration response body.
    pub(crate) fn to_json(&self) -> Value {
        let registration = &self.registration;
        let mut body = Map::new();
        body.insert("client_id".to_owned(), json!(self.client_id.as_str()));
        body.insert("client_id_issued_at".to_owned(), json!(self.issued_at));
        if let Some(secret) = &self.secret {
            body.insert("client_secret".to_owned(), json!(secret.expose_secret()));
            body.insert("client_secret_expires_at".to_owned(), json!(0));
        }
        let uris: Vec<&str> = registration
            .redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect();
        body.insert("redirect_uris".to_owned(), json!(uris));
        body.insert(
            "token_endpoint_auth_method".to_owned(),
            json!(registration.auth_method.as_str()),
        );
        body.insert("grant_types".to_owned(), json!(registration.grant_types));
        body.insert("response_types".to_owned(), json!(["code"]));
        if let Some(name) = &registration.client_name {
            body.insert("client_name".to_owned(), json!(name));
        }
        if let Some(kind) = registration.application_type {
            body.insert("application_type".to_owned(), json!(kind));
        }
        Value::Object(body)
    }
}

/// `POST /register`: stores a new dynamic client.
pub(crate) async fn register(
    state: &ProviderState,
    registration: Registration,
    now: u64,
) -> Result<RegisteredClient, OAuthError> {
    let id = crate::jwt::generate_jti(state.rng()).map_err(|_| OAuthError::server_error())?;
    let client_id = ClientId::parse(&id).map_err(|_| OAuthError::server_error())?;
    let secret = match registration.auth_method {
        ClientAuthMethod::None => None,
        _ => Some(Secret::generate(state.rng()).map_err(|_| OAuthError::server_error())?),
    };
    let client = Client {
        client_id: client_id.clone(),
        name: registration
            .client_name
            .clone()
            .unwrap_or_else(|| UNNAMED.to_owned()),
        redirect_uris: registration.redirect_uris.clone(),
        auth_method: registration.auth_method,
        secret_hash: secret.as_ref().map(Secret::to_hash),
        refresh_tokens: registration.grant_types.contains(&"refresh_token"),
        kind: ClientKind::Dynamic,
        created_at: now,
    };
    if let Err(e) = state.store().insert_client(client).await {
        if e.kind() == StoreErrorKind::Conflict {
            tracing::error!("a generated client id collided");
            return Err(OAuthError::server_error());
        }
        return Err(store_error(&e));
    }
    audit::record(&AuditEvent::ClientRegistered {
        client_id: client_id.as_str(),
        how: "dcr",
    });
    Ok(RegisteredClient {
        client_id,
        issued_at: now,
        secret,
        registration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> Result<Registration, OAuthError> {
        validate(&serde_json::from_value(json).unwrap(), 10)
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let r = request(json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(r.auth_method, ClientAuthMethod::ClientSecretBasic);
        assert_eq!(r.grant_types, ["authorization_code"]);
    }

    #[test]
    fn attack_dangerous_redirect_uris_are_refused() {
        for uri in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "https://*.app.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
        ] {
            let e = request(json!({"redirect_uris": [uri]})).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRedirectUri, "{uri}");
        }
        assert!(request(json!({"redirect_uris": ["http://127.0.0.1:3000/cb"]})).is_ok());
    }

    #[test]
    fn unsupported_grants_and_response_types_are_refused() {
        let base = |extra: Value| {
            let mut v = json!({"redirect_uris": ["https://app.example/cb"]});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            request(v)
        };
        assert!(base(json!({"grant_types": ["implicit"]})).is_err());
        assert!(base(json!({"grant_types": ["password"]})).is_err());
        assert!(base(json!({"grant_types": ["refresh_token"]})).is_err());
        assert!(base(json!({"response_types": ["token"]})).is_err());
        assert!(base(json!({"token_endpoint_auth_method": "private_key_jwt"})).is_err());
        assert!(base(json!({"client_name": "a\u{0}b"})).is_err());
        assert!(base(json!({"client_name": "Bank\u{202E}lapyap"})).is_err());
        assert!(base(json!({"client_name": "Zero\u{200B}width"})).is_err());
        assert!(base(json!({"client_name": "Café Ünïcode ✓"})).is_ok());
        assert!(base(json!({"client_name": "x".repeat(101)})).is_err());
        let longest = "x".repeat(crate::outbound::MAX_CLIENT_NAME_CHARS);
        assert!(base(json!({ "client_name": longest })).is_ok());
        let too_long = base(json!({ "client_name": longest.clone() + "x" })).unwrap_err();
        assert_eq!(too_long.code(), ErrorCode::InvalidClientMetadata);
        assert!(
            too_long
                .description()
                .contains(&crate::outbound::MAX_CLIENT_NAME_CHARS.to_string())
        );
        assert!(base(json!({"application_type": "desktop"})).is_err());
        let ok = base(json!({"grant_types": ["authorization_code", "refresh_token"], "extra": 1}))
            .unwrap();
        assert_eq!(ok.grant_types, ["authorization_code", "refresh_token"]);
    }
}
