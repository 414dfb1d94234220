//! The upstream's discovery document (OpenID Connect Discovery 1.0): the request for
//! it and the checks its answer must pass. No I/O: the driver sends the request.

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use jwks_verify::Algorithm;
use serde::Deserialize;

use super::config::UpstreamError;
use crate::pkce::S256;
use crate::types::Issuer;

/// What this login needs from the upstream's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamMetadata {
    /// The issuer (equal to the configured one).
    pub issuer: Issuer,
    /// Where browsers are sent to log in.
    pub authorization_endpoint: String,
    /// Where codes are redeemed.
    pub token_endpoint: String,
    /// The signing keys of ID tokens.
    pub jwks_uri: String,
    /// `id_token_signing_alg_values_supported`.
    pub id_token_signing_algs: Vec<String>,
    /// `token_endpoint_auth_methods_supported` (default `client_secret_basic`).
    pub token_endpoint_auth_methods: Vec<String>,
    /// `code_challenge_methods_supported`, if published.
    pub code_challenge_methods: Option<Vec<String>>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    pub iss_parameter_supported: bool,
}

impl UpstreamMetadata {
    /// The discovery URL of `issuer`: `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(issuer: &Issuer) -> String {
        issuer.join("/.well-known/openid-configuration")
    }

    /// The request for `issuer`'s discovery document: `GET` [`discovery_url`](Self::discovery_url)
    /// with `Accept: application/json`. `None` if the URL is not a valid request target.
    pub(super) fn discovery_request(issuer: &Issuer) -> Option<Request<Bytes>> {
        Request::builder()
            .method(Method::GET)
            .uri(Self::discovery_url(issuer))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Bytes::new())
            .ok()
    }

    /// Reads the answer to [`discovery_request`](Self::discovery_request): `200 OK` with a
    /// document that passes [`from_json`](Self::from_json).
    pub(super) fn from_response(
        expected: &Issuer,
        response: &Response<Bytes>,
    ) -> Result<UpstreamMetadata, UpstreamError> {
        if response.status() != StatusCode::OK {
            return Err(UpstreamError::Discovery(format!(
                "http status {}",
                response.status().as_u16()
            )));
        }
        UpstreamMetadata::from_json(expected, response.body())
    }

    /// Parses and checks a discovery document fetched for `expected`: the `issuer` must
    /// be exactly `expected`, endpoints must be `https` (or `http` if the issuer itself is
    /// a loopback `http` issuer), `S256` must be supported if methods are listed, and ID
    /// tokens must be signed with `RS256` or `ES256`.
    ///
    /// ```
    /// use oidc_core::login::UpstreamMetadata;
    /// use oidc_core::types::Issuer;
    ///
    /// let issuer = Issuer::parse("https://accounts.google.com")?;
    /// let doc = br#"{"issuer":"https://accounts.google.com",
    ///   "authorization_endpoint":"https://accounts.google.com/o/oauth2/v2/auth",
    ///   "token_endpoint":"https://oauth2.googleapis.com/token",
    ///   "jwks_uri":"https://www.googleapis.com/oauth2/v3/certs",
    ///   "id_token_signing_alg_values_supported":["RS256"],
    ///   "code_challenge_methods_supported":["plain","S256"]}"#;
    /// let metadata = UpstreamMetadata::from_json(&issuer, doc)?;
    /// assert_eq!(metadata.token_endpoint, "https://oauth2.googleapis.com/token");
    /// let other = Issuer::parse("https://evil.example")?;
    /// assert!(UpstreamMetadata::from_json(&other, doc).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_json(expected: &Issuer, json: &[u8]) -> Result<UpstreamMetadata, UpstreamError> {
        #[derive(Deserialize)]
        struct Document {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
            jwks_uri: String,
            #[serde(default)]
            id_token_signing_alg_values_supported: Vec<String>,
            #[serde(default)]
            token_endpoint_auth_methods_supported: Option<Vec<String>>,
            #[serde(default)]
            code_challenge_methods_supported: Option<Vec<String>>,
            #[serde(default)]
            authorization_response_iss_parameter_supported: bool,
        }
        let fail = |m: &str| UpstreamError::Discovery(m.to_owned());
        let doc: Document = serde_json::from_slice(json)
            .map_err(|_| fail("not an openid provider metadata document"))?;
        if doc.issuer != expected.as_str() {
            return Err(fail("the document's issuer is not the configured issuer"));
        }
        let allow_http = expected.as_str().starts_with("http://");
        for (what, url) in [
            ("authorization_endpoint", &doc.authorization_endpoint),
            ("token_endpoint", &doc.token_endpoint),
            ("jwks_uri", &doc.jwks_uri),
        ] {
            if !is_acceptable_endpoint(url, allow_http) {
                return Err(UpstreamError::Discovery(format!(
                    "{what} is not an https url"
                )));
            }
        }
        if let Some(methods) = &doc.code_challenge_methods_supported
            && !methods.iter().any(|m| m == S256)
        {
            return Err(fail("the upstream does not support pkce s256"));
        }
        if id_token_algorithms(&doc.id_token_signing_alg_values_supported).is_none() {
            return Err(fail("id tokens are signed with neither RS256 nor ES256"));
        }
        Ok(UpstreamMetadata {
            issuer: expected.clone(),
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
            id_token_signing_algs: doc.id_token_signing_alg_values_supported,
            token_endpoint_auth_methods: doc
                .token_endpoint_auth_methods_supported
                .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]),
            code_challenge_methods: doc.code_challenge_methods_supported,
            iss_parameter_supported: doc.authorization_response_iss_parameter_supported,
        })
    }
}

/// The ID token algorithms to accept: RS256 (which OpenID Connect requires of every
/// provider), plus ES256 when advertised; `None` when the advertised list has neither.
pub(super) fn id_token_algorithms(advertised: &[String]) -> Option<Vec<Algorithm>> {
    let has = |name: &str| advertised.iter().any(|a| a == name);
    if !advertised.is_empty() && !has("RS256") && !has("ES256") {
        return None;
    }
    let mut algorithms = vec![Algorithm::RS256];
    if has("ES256") {
        algorithms.push(Algorithm::ES256);
    }
    Some(algorithms)
}

/// An absolute `https` URL (or `http` for a loopback `http` issuer) with a host, and no
/// fragment or user information.
fn is_acceptable_endpoint(url: &str, allow_http: bool) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let scheme_ok = parsed.scheme() == "https" || (allow_http && parsed.scheme() == "http");
    scheme_ok
        && parsed.host().is_some()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer::parse("https://idp.example").unwrap()
    }

    fn answer(status: StatusCode, body: &str) -> Response<Bytes> {
        let mut response = Response::new(Bytes::copy_from_slice(body.as_bytes()));
        *response.status_mut() = status;
        response
    }

    const DOCUMENT: &str = r#"{"issuer":"https://idp.example",
        "authorization_endpoint":"https://idp.example/authorize",
        "token_endpoint":"https://idp.example/token",
        "jwks_uri":"https://idp.example/jwks"}"#;

    #[test]
    fn discovery_request_gets_the_well_known_document_as_json() {
        let request = UpstreamMetadata::discovery_request(&issuer()).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri(),
            "https://idp.example/.well-known/openid-configuration"
        );
        assert_eq!(request.headers()[ACCEPT], "application/json");
        assert!(request.body().is_empty());
    }

    #[test]
    fn discovery_answer_is_read_into_metadata() {
        let metadata =
            UpstreamMetadata::from_response(&issuer(), &answer(StatusCode::OK, DOCUMENT)).unwrap();
        assert_eq!(metadata.issuer, issuer());
        assert_eq!(metadata.token_endpoint, "https://idp.example/token");
        assert_eq!(metadata.jwks_uri, "https://idp.example/jwks");
    }

    #[test]
    fn attack_malformed_discovery_answer_is_refused() {
        for body in [
            "",
            "<html>",
            "[]",
            r#"{"issuer":"https://idp.example"}"#,
            "null",
        ] {
            let refused = UpstreamMetadata::from_response(&issuer(), &answer(StatusCode::OK, body));
            assert_eq!(
                refused,
                Err(UpstreamError::Discovery(
                    "not an openid provider metadata document".into()
                )),
                "{body:?}"
            );
        }
    }

    #[test]
    fn discovery_error_status_is_refused_even_with_a_document() {
        let refused = UpstreamMetadata::from_response(
            &issuer(),
            &answer(StatusCode::SERVICE_UNAVAILABLE, DOCUMENT),
        );
        assert_eq!(
            refused,
            Err(UpstreamError::Discovery("http status 503".into()))
        );
    }

    #[test]
    fn attack_discovery_document_of_another_issuer_is_refused() {
        let other = Issuer::parse("https://evil.example").unwrap();
        let refused = UpstreamMetadata::from_response(&other, &answer(StatusCode::OK, DOCUMENT));
        assert!(
            matches!(refused, Err(UpstreamError::Discovery(m)) if m.contains("issuer")),
            "a mix-up: keys and endpoints of another provider"
        );
    }

    #[test]
    fn attack_discovery_endpoint_downgraded_to_http_is_refused() {
        let doc = DOCUMENT.replace("https://idp.example/jwks", "http://idp.example/jwks");
        let refused = UpstreamMetadata::from_response(&issuer(), &answer(StatusCode::OK, &doc));
        assert_eq!(
            refused,
            Err(UpstreamError::Discovery(
                "jwks_uri is not an https url".into()
            ))
        );
    }

    #[test]
    fn metadata_checks() {
        let issuer = Issuer::parse("https://idp.example").unwrap();
        let doc = |extra: serde_json::Value| {
            let mut base = serde_json::json!({
                "issuer": "https://idp.example",
                "authorization_endpoint": "https://idp.example/authorize",
                "token_endpoint": "https://idp.example/token",
                "jwks_uri": "https://idp.example/jwks",
            });
            for (k, v) in extra.as_object().unwrap() {
                base[k] = v.clone();
            }
            UpstreamMetadata::from_json(&issuer, base.to_string().as_bytes())
        };
        let metadata = doc(serde_json::json!({})).unwrap();
        assert_eq!(
            metadata.token_endpoint_auth_methods,
            ["client_secret_basic"]
        );
        assert!(!metadata.iss_parameter_supported);
        assert!(doc(serde_json::json!({"issuer": "https://idp.example/"})).is_err());
        assert!(doc(serde_json::json!({"token_endpoint": "http://idp.example/token"})).is_err());
        assert!(doc(serde_json::json!({"code_challenge_methods_supported": ["plain"]})).is_err());
        assert!(
            doc(serde_json::json!({"authorization_response_iss_parameter_supported": true}))
                .unwrap()
                .iss_parameter_supported
        );
    }

    #[test]
    fn id_token_algorithms_follow_the_metadata() {
        let algs = |list: &[&str]| {
            id_token_algorithms(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(algs(&[]), Some(vec![Algorithm::RS256]));
        assert_eq!(algs(&["RS256"]), Some(vec![Algorithm::RS256]));
        assert_eq!(
            algs(&["RS256", "ES256"]),
            Some(vec![Algorithm::RS256, Algorithm::ES256])
        );
        assert_eq!(algs(&["HS256", "none"]), None);
    }
}
