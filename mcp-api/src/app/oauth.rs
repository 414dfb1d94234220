//! The page as an OAuth client of the provider: discovery, the authorization request with
//! PKCE S256, the code exchange and refresh, and the provider's account API.
//!
//! Every response is read within a size limit and parsed into a typed value; an answer
//! that is not what the protocol says is an error, never a guess.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{AppConfig, HttpClient, HttpClientError};

/// The scopes the page asks for: who the person is, and a refresh token to stay signed in.
const SCOPE: &str = "openid profile email offline_access";

/// Why talking to the provider failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum OAuthError {
    #[error(transparent)]
    Transport(#[from] HttpClientError),
    #[error("the provider answered {0}")]
    Status(StatusCode),
    #[error("the provider's answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("the provider refused: {0}")]
    Refused(String),
}

/// The endpoints named by the provider's discovery document.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A token response.
#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub(super) access_token: String,
    #[serde(default)]
    pub(super) refresh_token: Option<String>,
    #[serde(default)]
    pub(super) expires_in: Option<u64>,
    #[serde(default)]
    pub(super) id_token: Option<String>,
}

/// What the page reads from the ID token. It came straight from the token endpoint over
/// the provider's TLS connection, so its signature need not be checked (OpenID Connect
/// Core §3.1.3.7); the person's identity comes from the verified access token, and these
/// claims must agree with it.
#[derive(Deserialize)]
pub(super) struct IdClaims {
    pub(super) sub: String,
    #[serde(default)]
    pub(super) nonce: Option<String>,
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) preferred_username: Option<String>,
}

impl IdClaims {
    /// Reads the payload of `id_token` and checks it was meant for `client_id`.
    pub(super) fn read(id_token: &str, client_id: &str) -> Result<IdClaims, OAuthError> {
        let payload = id_token
            .split('.')
            .nth(1)
            .ok_or(OAuthError::Malformed("id_token"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| OAuthError::Malformed("id_token"))?;
        let claims: IdClaims =
            serde_json::from_slice(&bytes).map_err(|_| OAuthError::Malformed("id_token"))?;
        let for_us = match &claims.aud {
            serde_json::Value::String(aud) => aud == client_id,
            serde_json::Value::Array(auds) => auds.iter().any(|aud| aud == client_id),
            _ => false,
        };
        if !for_us {
            return Err(OAuthError::Malformed("id_token audience"));
        }
        Ok(claims)
    }

    /// A name to greet the person with.
    pub(super) fn display_name(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.email.clone())
            .or_else(|| self.preferred_username.clone())
            .unwrap_or_else(|| self.sub.clone())
    }
}

/// An app holding a grant for the person at the provider.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct GrantedApp {
    pub(super) client_id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) scope: String,
    pub(super) first_granted_at: u64,
}

#[derive(Deserialize)]
struct GrantList {
    apps: Vec<GrantedApp>,
}

#[derive(Deserialize)]
struct Revoked {
    revoked: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The provider, as the page sees it.
pub(super) struct Provider {
    http: std::sync::Arc<dyn HttpClient>,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    resource: String,
    metadata: OnceCell<Metadata>,
}

impl Provider {
    pub(super) fn new(config: &AppConfig, http: std::sync::Arc<dyn HttpClient>) -> Provider {
        Provider {
            http,
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            redirect_uri: config.redirect_uri(),
            resource: format!("{}{}", config.base_url, crate::mcp::MCP_PATH),
            metadata: OnceCell::new(),
        }
    }

    /// The discovery document, fetched once (a failed fetch is tried again next time).
    async fn metadata(&self) -> Result<&Metadata, OAuthError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let response = self.send(get(&url, None)?).await?;
                let metadata: Metadata = json(&response)?;
                if metadata.issuer.trim_end_matches('/') != self.issuer {
                    return Err(OAuthError::Malformed("discovery issuer"));
                }
                Ok(metadata)
            })
            .await
    }

    /// Where to send the browser to sign in.
    pub(super) async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OAuthError> {
        let metadata = self.metadata().await?;
        let challenge = URL_SAFE_NO_PAD.encode(super::session::sha256(verifier));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &self.resource)
            .finish();
        let separator = if metadata.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!(
            "{}{separator}{query}",
            metadata.authorization_endpoint
        ))
    }

    /// Redeems an authorization code.
    pub(super) async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
    ) -> Result<TokenResponse, OAuthError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", verifier),
            ("resource", &self.resource),
        ])
        .await
    }

    /// Renews the tokens with a refresh token.
    pub(super) async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, OAuthError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("resource", &self.resource),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let metadata = self.metadata().await?;
        let body = {
            let mut body = form_urlencoded::Serializer::new(String::new());
            body.extend_pairs(form);
            if self.client_secret.is_none() {
                body.append_pair("client_id", &self.client_id);
            }
            body.finish()
        };
        let mut request = Request::new(Bytes::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = metadata
            .token_endpoint
            .parse()
            .map_err(|_| OAuthError::Malformed("token_endpoint"))?;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, http::HeaderValue::from_static("application/json"));
        if let Some(secret) = &self.client_secret {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let credentials = format!(
                "{}:{}",
                form_component(&self.client_id),
                form_component(secret)
            );
            let mut value =
                http::HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(credentials)))
                    .map_err(|_| OAuthError::Malformed("client credentials"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let response = self.http.send(request).await?;
        if response.status() == StatusCode::BAD_REQUEST
            || response.status() == StatusCode::UNAUTHORIZED
        {
            let error = serde_json::from_slice::<ErrorBody>(response.body())
                .map(|body| body.error)
                .unwrap_or_else(|_| "invalid_request".to_owned());
            return Err(OAuthError::Refused(error));
        }
        let tokens: TokenResponse = json(&response)?;
        Ok(tokens)
    }

    /// The apps holding a grant for the person whose access token this is.
    pub(super) async fn granted_apps(
        &self,
        access_token: &str,
    ) -> Result<Vec<GrantedApp>, OAuthError> {
        let url = format!("{}/account/grants", self.issuer);
        let response = self.send(get(&url, Some(access_token))?).await?;
        let list: GrantList = json(&response)?;
        Ok(list.apps)
    }

    /// Revokes every grant the person gave `client_id`; returns how many.
    pub(super) async fn revoke_app(
        &self,
        access_token: &str,
        client_id: &str,
    ) -> Result<u64, OAuthError> {
        let url = format!("{}/account/grants/revoke", self.issuer);
        let body = serde_json::to_vec(&serde_json::json!({ "client_id": client_id }))
            .map_err(|_| OAuthError::Malformed("request"))?;
        let mut request = Request::new(Bytes::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.parse().map_err(|_| OAuthError::Malformed("issuer"))?;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(ACCEPT, http::HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, bearer(access_token)?);
        let response = self.send(request).await?;
        let revoked: Revoked = json(&response)?;
        Ok(revoked.revoked)
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, OAuthError> {
        Ok(self.http.send(request).await?)
    }
}

fn get(url: &str, access_token: Option<&str>) -> Result<Request<Bytes>, OAuthError> {
    let mut request = Request::new(Bytes::new());
    *request.uri_mut() = url.parse().map_err(|_| OAuthError::Malformed("url"))?;
    let headers = request.headers_mut();
    headers.insert(ACCEPT, http::HeaderValue::from_static("application/json"));
    if let Some(token) = access_token {
        headers.insert(AUTHORIZATION, bearer(token)?);
    }
    Ok(request)
}

fn bearer(token: &str) -> Result<http::HeaderValue, OAuthError> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| OAuthError::Malformed("access token"))?;
    value.set_sensitive(true);
    Ok(value)
}

fn json<T: serde::de::DeserializeOwned>(response: &Response<Bytes>) -> Result<T, OAuthError> {
    if !response.status().is_success() {
        return Err(OAuthError::Status(response.status()));
    }
    serde_json::from_slice(response.body()).map_err(|_| OAuthError::Malformed("JSON body"))
}

fn form_component(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_token(payload: &serde_json::Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap())
        )
    }

    #[test]
    fn an_id_token_for_another_client_is_refused() {
        let token = id_token(&serde_json::json!({"sub": "a", "aud": "other"}));
        assert!(IdClaims::read(&token, "memory-page").is_err());
        let token = id_token(&serde_json::json!({"sub": "a", "aud": ["x", "memory-page"]}));
        assert!(IdClaims::read(&token, "memory-page").is_ok());
        assert!(IdClaims::read("garbage", "memory-page").is_err());
    }

    #[test]
    fn display_name_prefers_the_name() {
        let token = id_token(&serde_json::json!({
            "sub": "a", "aud": "c", "email": "a@example.com", "name": "Ada"
        }));
        assert_eq!(IdClaims::read(&token, "c").unwrap().display_name(), "Ada");
        let token = id_token(&serde_json::json!({"sub": "a", "aud": "c"}));
        assert_eq!(IdClaims::read(&token, "c").unwrap().display_name(), "a");
    }
}
