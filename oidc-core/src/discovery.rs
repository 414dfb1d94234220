//! The discovery document: OpenID Connect Discovery 1.0 provider metadata, which is also
//! served as RFC 8414 authorization server metadata.
//!
//! One document is served unchanged at every path of [`well_known_paths`]: MCP clients
//! try `/.well-known/oauth-authorization-server` first and some never read the OpenID
//! document, so both must carry the same fields (notably
//! `client_id_metadata_document_supported`).
//!
//! ```
//! use oidc_core::discovery::ProviderMetadata;
//! use oidc_core::types::{Issuer, Scope};
//!
//! let issuer = Issuer::parse("https://auth.example.com")?;
//! let metadata = ProviderMetadata::for_issuer(&issuer)
//!     .with_scopes(&Scope::parse("memories:read memories:write")?);
//! let doc: serde_json::Value = serde_json::from_str(&metadata.to_json())?;
//! assert_eq!(doc["issuer"], "https://auth.example.com");
//! assert_eq!(doc["token_endpoint"], "https://auth.example.com/token");
//! assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Serialize;

use crate::error::{InvalidValue, InvalidValueKind};
use crate::types::{Issuer, Scope};
use crate::uri;

/// Path of the authorization endpoint under the issuer.
pub const AUTHORIZATION_PATH: &str = "/authorize";
/// Path of the token endpoint under the issuer.
pub const TOKEN_PATH: &str = "/token";
/// Path of the JWK Set under the issuer.
pub const JWKS_PATH: &str = "/jwks.json";
/// Path of the userinfo endpoint under the issuer.
pub const USERINFO_PATH: &str = "/userinfo";
/// Path of the dynamic client registration endpoint under the issuer.
pub const REGISTRATION_PATH: &str = "/register";
/// Path of the revocation endpoint under the issuer.
pub const REVOCATION_PATH: &str = "/revoke";
/// Path of the introspection endpoint under the issuer.
pub const INTROSPECTION_PATH: &str = "/introspect";

/// Scopes advertised by default besides `openid`.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];

const CLIENT_AUTH_METHODS: [&str; 3] = ["client_secret_post", "client_secret_basic", "none"];
const CLAIMS_SUPPORTED: [&str; 10] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "email",
    "email_verified",
    "name",
];

/// The URL of an endpoint: absolute `https` (or `http` to a loopback host), no fragment,
/// no user information. A query is allowed (RFC 8414 §2 allows it on the authorization
/// endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointUrl(Box<str>);

impl EndpointUrl {
    /// Parses an endpoint URL.
    ///
    /// ```
    /// use oidc_core::discovery::EndpointUrl;
    ///
    /// assert!(EndpointUrl::parse("https://auth.example.com/oauth2/token").is_ok());
    /// assert!(EndpointUrl::parse("http://auth.example.com/token").is_err());
    /// assert!(EndpointUrl::parse("https://auth.example.com/token#x").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<EndpointUrl, InvalidValue> {
        const WHAT: &str = "endpoint url";
        uri::check_chars(WHAT, value, uri::MAX_URI_LEN)?;
        if value.contains('#') {
            return Err(InvalidValue::new(WHAT, InvalidValueKind::HasFragment));
        }
        let url = uri::parse_absolute(WHAT, value)?;
        uri::check_web_scheme(WHAT, &url)?;
        if uri::has_userinfo(&url) {
            return Err(InvalidValue::new(WHAT, InvalidValueKind::HasUserinfo));
        }
        if !uri::is_canonical(value, &url) {
            return Err(InvalidValue::new(WHAT, InvalidValueKind::NotCanonical));
        }
        Ok(EndpointUrl(value.into()))
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `issuer` + `path`. An issuer has no query or fragment and `path` is one of this
    /// module's constants, so the result is valid.
    fn under(issuer: &Issuer, path: &str) -> EndpointUrl {
        EndpointUrl(issuer.join(path).into())
    }
}

string_newtype_impls!(EndpointUrl);

/// The endpoints advertised in the discovery document.
///
/// Start from [`Endpoints::under_issuer`] and replace fields as needed; the optional ones
/// are left out of the document when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoints {
    /// `authorization_endpoint`.
    pub authorization: EndpointUrl,
    /// `token_endpoint`.
    pub token: EndpointUrl,
    /// `jwks_uri`.
    pub jwks: EndpointUrl,
    /// `userinfo_endpoint`.
    pub userinfo: EndpointUrl,
    /// `registration_endpoint` (dynamic client registration, RFC 7591).
    pub registration: Option<EndpointUrl>,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation: EndpointUrl,
    /// `introspection_endpoint` (RFC 7662).
    pub introspection: Option<EndpointUrl>,
    /// `status_list_aggregation_endpoint` (draft-ietf-oauth-status-list): the URIs of
    /// every token status list. `None` from [`Endpoints::under_issuer`]; the provider sets
    /// it when status lists are on.
    pub status_list_aggregation: Option<EndpointUrl>,
}

impl Endpoints {
    /// Every endpoint at its fixed path under the issuer (a trailing `/` of the issuer is
    /// not doubled): `/authorize`, `/token`, `/jwks.json`, `/userinfo`, `/register`,
    /// `/revoke`, `/introspect`.
    ///
    /// ```
    /// use oidc_core::discovery::Endpoints;
    /// use oidc_core::types::Issuer;
    ///
    /// let endpoints = Endpoints::under_issuer(&Issuer::parse("https://auth.example.com/t1/")?);
    /// assert_eq!(endpoints.jwks.as_str(), "https://auth.example.com/t1/jwks.json");
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn under_issuer(issuer: &Issuer) -> Endpoints {
        Endpoints {
            authorization: EndpointUrl::under(issuer, AUTHORIZATION_PATH),
            token: EndpointUrl::under(issuer, TOKEN_PATH),
            jwks: EndpointUrl::under(issuer, JWKS_PATH),
            userinfo: EndpointUrl::under(issuer, USERINFO_PATH),
            registration: Some(EndpointUrl::under(issuer, REGISTRATION_PATH)),
            revocation: EndpointUrl::under(issuer, REVOCATION_PATH),
            introspection: Some(EndpointUrl::under(issuer, INTROSPECTION_PATH)),
            status_list_aggregation: None,
        }
    }

    /// Sets `status_list_aggregation_endpoint` to `{issuer}/statuslists`.
    ///
    /// ```
    /// use oidc_core::discovery::Endpoints;
    /// use oidc_core::types::Issuer;
    ///
    /// let issuer = Issuer::parse("https://auth.example.com")?;
    /// let endpoints = Endpoints::under_issuer(&issuer).with_status_lists(&issuer);
    /// assert_eq!(
    ///     endpoints.status_list_aggregation.unwrap().as_str(),
    ///     "https://auth.example.com/statuslists"
    /// );
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    #[must_use]
    pub fn with_status_lists(mut self, issuer: &Issuer) -> Endpoints {
        self.status_list_aggregation = Some(EndpointUrl::under(
            issuer,
            crate::status_list::STATUS_LISTS_PATH,
        ));
        self
    }
}

/// The provider metadata document.
///
/// The supported values are fixed by what this server implements: the code flow with
/// `query` responses, PKCE `S256`, RS256-signed ID tokens, public subjects,
/// `client_secret_post`/`client_secret_basic`/`none` client authentication, RFC 9207 `iss`
/// in authorization responses, Client ID Metadata Documents and resource indicators; no
/// request objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    issuer: Issuer,
    endpoints: Endpoints,
    scopes: Vec<String>,
    metadata_documents: bool,
}

impl ProviderMetadata {
    /// Metadata for `issuer` with the given endpoints and the default scopes
    /// ([`DEFAULT_SCOPES`]).
    ///
    /// ```
    /// use oidc_core::discovery::{EndpointUrl, Endpoints, ProviderMetadata};
    /// use oidc_core::types::Issuer;
    ///
    /// let issuer = Issuer::parse("https://auth.example.com")?;
    /// let mut endpoints = Endpoints::under_issuer(&issuer);
    /// endpoints.registration = None;
    /// endpoints.token = EndpointUrl::parse("https://token.example.com/token")?;
    /// let doc = ProviderMetadata::new(&issuer, endpoints).to_json();
    /// assert!(!doc.contains("registration_endpoint"));
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn new(issuer: &Issuer, endpoints: Endpoints) -> ProviderMetadata {
        ProviderMetadata {
            issuer: issuer.clone(),
            endpoints,
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            metadata_documents: true,
        }
    }

    /// Metadata with every endpoint at its fixed path under the issuer
    /// ([`Endpoints::under_issuer`]).
    ///
    /// ```
    /// use oidc_core::discovery::ProviderMetadata;
    /// use oidc_core::types::Issuer;
    ///
    /// let metadata = ProviderMetadata::for_issuer(&Issuer::parse("https://auth.example.com")?);
    /// assert_eq!(metadata.endpoints().authorization.as_str(), "https://auth.example.com/authorize");
    /// # Ok::<(), oidc_core::InvalidValue>(())
    /// ```
    pub fn for_issuer(issuer: &Issuer) -> ProviderMetadata {
        ProviderMetadata::new(issuer, Endpoints::under_issuer(issuer))
    }

    /// Adds `extra` to `scopes_supported` (after `openid`, `profile`, `email`; repeated
    /// tokens are listed once).
    #[must_use]
    pub fn with_scopes(mut self, extra: &Scope) -> Self {
        for token in extra.iter() {
            if !self.scopes.iter().any(|s| s == token) {
                self.scopes.push(token.to_owned());
            }
        }
        self
    }

    /// Whether `client_id_metadata_document_supported` is advertised (default `true`):
    /// turn it off when no resolver for URL client ids is configured.
    #[must_use]
    pub fn with_metadata_documents(mut self, supported: bool) -> Self {
        self.metadata_documents = supported;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The scopes advertised in `scopes_supported`; `openid` is always first.
    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes
    }

    /// The document as compact JSON, to serve with `Content-Type: application/json`.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings, booleans and string arrays cannot fail.
        serde_json::to_string(&self.document()).unwrap_or_default()
    }

    fn document(&self) -> Document<'_> {
        let e = &self.endpoints;
        Document {
            issuer: self.issuer.as_str(),
            authorization_endpoint: e.authorization.as_str(),
            token_endpoint: e.token.as_str(),
            jwks_uri: e.jwks.as_str(),
            userinfo_endpoint: e.userinfo.as_str(),
            registration_endpoint: e.registration.as_ref().map(EndpointUrl::as_str),
            revocation_endpoint: e.revocation.as_str(),
            introspection_endpoint: e.introspection.as_ref().map(EndpointUrl::as_str),
            status_list_aggregation_endpoint: e
                .status_list_aggregation
                .as_ref()
                .map(EndpointUrl::as_str),
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: ["authorization_code", "refresh_token"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256"],
            code_challenge_methods_supported: ["S256"],
            token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
            revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
            scopes_supported: &self.scopes,
            claims_supported: CLAIMS_SUPPORTED,
            authorization_response_iss_parameter_supported: true,
            client_id_metadata_document_supported: self.metadata_documents,
            request_parameter_supported: false,
            resource_indicators_supported: true,
        }
    }
}

impl Serialize for ProviderMetadata {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document().serialize(serializer)
    }
}

#[derive(Serialize)]
struct Document<'a> {
    issuer: &'a str,
    authorization_endpoint: &'a str,
    token_endpoint: &'a str,
    jwks_uri: &'a str,
    userinfo_endpoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<&'a str>,
    revocation_endpoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_list_aggregation_endpoint: Option<&'a str>,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 2],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    code_challenge_methods_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    scopes_supported: &'a [String],
    claims_supported: [&'static str; 10],
    authorization_response_iss_parameter_supported: bool,
    client_id_metadata_document_supported: bool,
    request_parameter_supported: bool,
    resource_indicators_supported: bool,
}

/// The request paths (on the issuer's host) at which the discovery document is served:
///
/// - `/.well-known/oauth-authorization-server{path}` (RFC 8414 §3.1);
/// - `/.well-known/openid-configuration{path}` (the RFC 8414 form for OpenID, which MCP
///   clients try);
/// - `{path}/.well-known/openid-configuration` (OpenID Connect Discovery §4.1),
///
/// where `{path}` is the issuer's path without a trailing `/`. For an issuer without a
/// path the last two coincide and are listed once.
///
/// ```
/// use oidc_core::discovery::well_known_paths;
/// use oidc_core::types::Issuer;
///
/// let paths = well_known_paths(&Issuer::parse("https://auth.example.com/tenant1")?);
/// assert_eq!(paths, [
///     "/.well-known/oauth-authorization-server/tenant1",
///     "/.well-known/openid-configuration/tenant1",
///     "/tenant1/.well-known/openid-configuration",
/// ]);
/// # Ok::<(), oidc_core::InvalidValue>(())
/// ```
pub fn well_known_paths(issuer: &Issuer) -> Vec<String> {
    let path = issuer.path();
    let mut paths = vec![
        format!("/.well-known/oauth-authorization-server{path}"),
        format!("/.well-known/openid-configuration{path}"),
    ];
    let oidc = format!("{path}/.well-known/openid-configuration");
    if !paths.contains(&oidc) {
        paths.push(oidc);
    }
    paths
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn doc(metadata: &ProviderMetadata) -> Value {
        serde_json::from_str(&metadata.to_json()).unwrap()
    }

    #[test]
    fn document_has_exactly_the_specified_fields() {
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        let metadata = ProviderMetadata::for_issuer(&issuer)
            .with_scopes(&Scope::parse("memories:read memories:write openid").unwrap());
        let expected = json!({
            "issuer": "https://auth.example.com",
            "authorization_endpoint": "https://auth.example.com/authorize",
            "token_endpoint": "https://auth.example.com/token",
            "jwks_uri": "https://auth.example.com/jwks.json",
            "userinfo_endpoint": "https://auth.example.com/userinfo",
            "registration_endpoint": "https://auth.example.com/register",
            "revocation_endpoint": "https://auth.example.com/revoke",
            "introspection_endpoint": "https://auth.example.com/introspect",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_post", "client_secret_basic", "none"],
            "revocation_endpoint_auth_methods_supported":
                ["client_secret_post", "client_secret_basic", "none"],
            "scopes_supported": ["openid", "profile", "email", "memories:read", "memories:write"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
                "email", "email_verified", "name"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": true,
            "request_parameter_supported": false,
            "resource_indicators_supported": true,
        });
        assert_eq!(doc(&metadata), expected);
        assert_eq!(serde_json::to_value(&metadata).unwrap(), expected);
    }

    #[test]
    fn issuer_is_exact_with_no_trailing_slash_drift() {
        for raw in [
            "https://auth.example.com",
            "https://auth.example.com/",
            "https://a.example/t1",
        ] {
            let issuer = Issuer::parse(raw).unwrap();
            assert_eq!(doc(&ProviderMetadata::for_issuer(&issuer))["issuer"], raw);
        }
        let slash = Issuer::parse("https://auth.example.com/").unwrap();
        assert_eq!(
            doc(&ProviderMetadata::for_issuer(&slash))["token_endpoint"],
            "https://auth.example.com/token"
        );
    }

    #[test]
    fn endpoints_keep_the_issuer_path() {
        let issuer = Issuer::parse("https://a.example/tenant1").unwrap();
        let d = doc(&ProviderMetadata::for_issuer(&issuer));
        assert_eq!(
            d["authorization_endpoint"],
            "https://a.example/tenant1/authorize"
        );
        assert_eq!(d["jwks_uri"], "https://a.example/tenant1/jwks.json");
        assert_eq!(
            d["introspection_endpoint"],
            "https://a.example/tenant1/introspect"
        );
    }

    #[test]
    fn optional_endpoints_can_be_left_out() {
        let issuer = Issuer::parse("http://127.0.0.1:8080").unwrap();
        let mut endpoints = Endpoints::under_issuer(&issuer);
        endpoints.introspection = None;
        endpoints.registration = None;
        let d = doc(&ProviderMetadata::new(&issuer, endpoints));
        assert!(d.get("introspection_endpoint").is_none());
        assert!(d.get("registration_endpoint").is_none());
        assert_eq!(d["token_endpoint"], "http://127.0.0.1:8080/token");
    }

    #[test]
    fn openid_is_always_the_first_scope() {
        let issuer = Issuer::parse("https://a.example").unwrap();
        let metadata = ProviderMetadata::for_issuer(&issuer);
        assert_eq!(metadata.scopes_supported()[0], "openid");
        let metadata = metadata.with_scopes(&Scope::parse("x openid").unwrap());
        assert_eq!(
            metadata.scopes_supported(),
            ["openid", "profile", "email", "x"]
        );
    }

    #[test]
    fn endpoint_url_validation() {
        use InvalidValueKind::*;
        let kind = |s: &str| EndpointUrl::parse(s).unwrap_err().kind();
        assert_eq!(kind("http://a.example/token"), InsecureScheme);
        assert_eq!(kind("https://a.example/token#f"), HasFragment);
        assert_eq!(kind("https://u@a.example/token"), HasUserinfo);
        assert_eq!(kind("https://A.example/token"), NotCanonical);
        assert_eq!(kind("/token"), NotAbsoluteUri);
        assert!(EndpointUrl::parse("https://a.example/authorize?tenant=1").is_ok());
    }

    #[test]
    fn well_known_paths_for_root_and_path_issuers() {
        let root = Issuer::parse("https://a.example").unwrap();
        assert_eq!(
            well_known_paths(&root),
            [
                "/.well-known/oauth-authorization-server",
                "/.well-known/openid-configuration"
            ]
        );
        let slash = Issuer::parse("https://a.example/").unwrap();
        assert_eq!(well_known_paths(&slash), well_known_paths(&root));
        let tenant = Issuer::parse("https://a.example/t/1/").unwrap();
        assert_eq!(
            well_known_paths(&tenant),
            [
                "/.well-known/oauth-authorization-server/t/1",
                "/.well-known/openid-configuration/t/1",
                "/t/1/.well-known/openid-configuration"
            ]
        );
    }
}
