//! OAuth Client ID Metadata Documents (CIMD): a client whose `client_id` is an `https`
//! URL is described by the JSON document at that URL.
//!
//! [`parse_metadata_document`] validates a fetched document (no I/O);
//! [`ClientMetadataDocuments`] fetches through an [`OutboundClient`](super::OutboundClient)
//! (SSRF policy, timeout, size limit) and caches the result.
//!
//! # What a document must say
//!
//! - `client_id`: exactly the URL it was fetched from.
//! - `redirect_uris`: one to [`MAX_REDIRECT_URIS`] URIs, each a valid
//!   [`RedirectUri`](crate::redirect::RedirectUri) that is `https` or an `http` loopback
//!   URI (no fragment, no wildcard); duplicates are dropped. Private-use schemes
//!   (`com.example.app:/cb`) are refused: any app on a device can claim one, and nothing
//!   ties it to the document's host.
//! - `token_endpoint_auth_method`: absent or `none`. Metadata-document clients are public
//!   clients here (PKCE is their protection). A document asking for `private_key_jwt` or a
//!   shared-secret method is refused with [`MetadataDocumentError::Invalid`]: this
//!   provider does not verify client assertions, and a secret cannot be established
//!   through a public document (a document carrying `client_secret` is refused too).
//! - `grant_types`: absent (meaning `authorization_code`) or a subset of
//!   `authorization_code` and `refresh_token` that includes `authorization_code`;
//!   `refresh_token` in it allows the refresh grant.
//! - `response_types`: absent or `["code"]`.
//! - `client_name`: shown on the consent page; when absent, empty, longer than
//!   [`MAX_CLIENT_NAME_CHARS`], or holding control characters or invisible formatting
//!   characters (bidirectional overrides, zero-width marks), the URL's host is shown
//!   instead.
//!
//! These are the rules of Dynamic Client Registration too, except where a public document
//! must differ: only `none` authentication, and an unfit name falls back to the host
//! (which names who published the document) instead of refusing the client.
//!
//! Unknown members are ignored.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::HeaderMap;
use http::header::CACHE_CONTROL;
use serde::Deserialize;

use crate::client::{Client, ClientAuthMethod, ClientKind, MetadataDocumentError};
use crate::client_metadata::{self, RedirectUrisError};
use crate::redirect::RedirectUri;
use crate::types::ClientId;

pub use crate::client_metadata::MAX_CLIENT_NAME_CHARS;

/// Most redirect URIs a document may list.
pub const MAX_REDIRECT_URIS: usize = 16;

/// Validates a Client ID Metadata Document fetched from `client_id` at `now` and turns it
/// into a public [`Client`] of kind [`ClientKind::MetadataDocument`].
///
/// ```
/// use oidc_core::client::{ClientAuthMethod, ClientKind};
/// use oidc_core::outbound::parse_metadata_document;
/// use oidc_core::types::ClientId;
///
/// let id = ClientId::parse("https://app.example/oauth/client.json")?;
/// let doc = br#"{
///     "client_id": "https://app.example/oauth/client.json",
///     "client_name": "Example App",
///     "redirect_uris": ["https://app.example/callback", "http://127.0.0.1/cb"],
///     "grant_types": ["authorization_code", "refresh_token"]
/// }"#;
/// let client = parse_metadata_document(&id, doc, 1_700_000_000)?;
/// assert_eq!(client.name, "Example App");
/// assert_eq!(client.auth_method, ClientAuthMethod::None);
/// assert_eq!(client.kind, ClientKind::MetadataDocument);
/// assert!(client.refresh_tokens);
///
/// let wrong_id = br#"{"client_id": "https://evil.example/c.json", "redirect_uris": ["https://evil.example/cb"]}"#;
/// assert!(parse_metadata_document(&id, wrong_id, 1_700_000_000).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_metadata_document(
    client_id: &ClientId,
    body: &[u8],
    now: u64,
) -> Result<Client, MetadataDocumentError> {
    let invalid = |message: &str| MetadataDocumentError::Invalid(message.to_owned());
    let document: Document =
        serde_json::from_slice(body).map_err(|_| invalid("not a client metadata json object"))?;
    if document.client_id.as_deref() != Some(client_id.as_str()) {
        return Err(invalid(
            "the document's client_id is not the url it was fetched from",
        ));
    }
    if document.client_secret.is_some() || document.client_secret_expires_at.is_some() {
        return Err(invalid(
            "a metadata document must not carry a client secret",
        ));
    }
    match document.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some("private_key_jwt") => {
            return Err(invalid(
                "token_endpoint_auth_method private_key_jwt is not supported; metadata-document clients must be public (none)",
            ));
        }
        Some("client_secret_basic" | "client_secret_post" | "client_secret_jwt") => {
            return Err(invalid(
                "shared-secret token_endpoint_auth_method cannot be used with a metadata document; use none",
            ));
        }
        Some(_) => return Err(invalid("unsupported token_endpoint_auth_method")),
    }
    let redirect_uris = parse_redirect_uris(document.redirect_uris.as_deref())?;
    let grant_types =
        client_metadata::grant_types(document.grant_types.as_deref()).map_err(invalid)?;
    client_metadata::response_types(document.response_types.as_deref()).map_err(invalid)?;
    let name = display_name(document.client_name.as_deref(), client_id);
    let mut client = Client {
        client_id: client_id.clone(),
        name,
        redirect_uris,
        auth_method: ClientAuthMethod::None,
        secret_hash: None,
        refresh_tokens: grant_types.contains(&"refresh_token"),
        kind: ClientKind::MetadataDocument,
        created_at: now,
    };
    client.redirect_uris.shrink_to_fit();
    Ok(client)
}

/// The members this provider reads. Everything is optional here so that a missing member
/// gets a precise message.
#[derive(Deserialize)]
struct Document {
    client_id: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    client_name: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_secret: Option<serde::de::IgnoredAny>,
    client_secret_expires_at: Option<serde::de::IgnoredAny>,
}

fn parse_redirect_uris(uris: Option<&[String]>) -> Result<Vec<RedirectUri>, MetadataDocumentError> {
    client_metadata::redirect_uris(uris, MAX_REDIRECT_URIS).map_err(|error| {
        MetadataDocumentError::Invalid(match error {
            RedirectUrisError::Missing => "redirect_uris must list at least one uri".to_owned(),
            RedirectUrisError::TooMany => {
                format!("redirect_uris may list at most {MAX_REDIRECT_URIS} uris")
            }
            RedirectUrisError::Invalid(i, e) => format!("redirect_uris[{i}]: {e}"),
            RedirectUrisError::PrivateUseScheme(i) => format!(
                "redirect_uris[{i}]: private-use schemes are not accepted in metadata documents"
            ),
        })
    })
}

/// `client_name` when it is fit to show, else the URL's host.
fn display_name(client_name: Option<&str>, client_id: &ClientId) -> String {
    if let Some(Ok(Some(name))) = client_name.map(client_metadata::client_name) {
        return name.to_owned();
    }
    url::Url::parse(client_id.as_str())
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| client_id.as_str().to_owned())
}

/// Caching and size limits of [`ClientMetadataDocuments`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataDocumentConfig {
    /// Lifetime of a cached document without a usable `Cache-Control: max-age` (5 min).
    pub default_ttl: Duration,
    /// Shortest lifetime; also used for `no-store`/`no-cache` (1 min).
    pub min_ttl: Duration,
    /// Longest lifetime (24 h).
    pub max_ttl: Duration,
    /// Most documents kept (1024); the soonest to expire is evicted first.
    pub max_cached: usize,
    /// Largest document accepted (64 KiB).
    pub max_body_bytes: usize,
    /// Accept `http://` client ids on loopback hosts. Insecure: for tests only.
    pub insecure_allow_http_loopback: bool,
}

impl Default for MetadataDocumentConfig {
    fn default() -> Self {
        MetadataDocumentConfig {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_cached: 1024,
            max_body_bytes: 64 * 1024,
            insecure_allow_http_loopback: false,
        }
    }
}

impl MetadataDocumentConfig {
    /// Sets the lifetimes: without `max-age`, and the bounds a `max-age` is clamped to.
    #[must_use]
    pub fn ttls(mut self, default: Duration, min: Duration, max: Duration) -> Self {
        self.default_ttl = default;
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }

    /// Sets the most documents kept.
    #[must_use]
    pub fn max_cached(mut self, max: usize) -> Self {
        self.max_cached = max;
        self
    }

    /// Sets the largest document accepted.
    #[must_use]
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Accepts `http://` client ids on loopback hosts (`127.0.0.0/8`, `[::1]`,
    /// `localhost`). Insecure: for tests whose document server has no TLS.
    #[must_use]
    pub fn insecure_allow_http_loopback(mut self) -> Self {
        self.insecure_allow_http_loopback = true;
        self
    }

    /// How long a document fetched with these response headers may be cached, in seconds:
    /// `Cache-Control: max-age` clamped to [`min_ttl`](Self::min_ttl)..=
    /// [`max_ttl`](Self::max_ttl); `no-store` and `no-cache` give `min_ttl`; no usable
    /// directive gives [`default_ttl`](Self::default_ttl).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
    /// use oidc_core::outbound::MetadataDocumentConfig;
    ///
    /// let config = MetadataDocumentConfig::default();
    /// let mut headers = HeaderMap::new();
    /// assert_eq!(config.cache_lifetime(&headers), 300);
    /// headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=5"));
    /// assert_eq!(config.cache_lifetime(&headers), 60);
    /// headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=31536000"));
    /// assert_eq!(config.cache_lifetime(&headers), 86_400);
    /// ```
    pub fn cache_lifetime(&self, headers: &HeaderMap) -> u64 {
        let (min, max) = (
            self.min_ttl.as_secs(),
            self.max_ttl.as_secs().max(self.min_ttl.as_secs()),
        );
        let mut max_age = None;
        for directive in headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
        {
            let (name, value) = directive
                .split_once('=')
                .map_or((directive, None), |(n, v)| (n.trim(), Some(v.trim())));
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return min;
            }
            if name.eq_ignore_ascii_case("max-age") {
                max_age = value
                    .map(|v| v.trim_matches('"'))
                    .and_then(|v| v.parse::<u64>().ok());
            }
        }
        max_age
            .unwrap_or(self.default_ttl.as_secs())
            .clamp(min, max)
    }
}

#[cfg(feature = "hyper-client")]
pub use self::resolver::ClientMetadataDocuments;

#[cfg(feature = "hyper-client")]
mod resolver {
    use std::fmt;
    use std::sync::Arc;

    use http::StatusCode;

    use super::{Cache, MetadataDocumentConfig, parse_metadata_document};
    use crate::audit::{self, AuditEvent};
    use crate::authn::BoxFuture;
    use crate::client::{Client, MetadataDocumentError, MetadataDocumentResolver};
    use crate::outbound::{OutboundClient, OutboundError};
    use crate::types::ClientId;

    /// Fetches, validates and caches Client ID Metadata Documents: the provider's
    /// [`MetadataDocumentResolver`].
    ///
    /// Documents are fetched with the [`OutboundClient`] (whose [`AddressPolicy`]
    /// must be [`public_only`](crate::outbound::AddressPolicy::public_only) in production:
    /// anyone can pick a metadata document URL), validated with
    /// [`parse_metadata_document`], and cached for the lifetime
    /// [`MetadataDocumentConfig::cache_lifetime`] gives. Failures are not cached.
    ///
    /// [`AddressPolicy`]: crate::outbound::AddressPolicy
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use oidc_core::client::MetadataDocumentResolver;
    /// use oidc_core::outbound::{ClientMetadataDocuments, MetadataDocumentConfig, OutboundClient, OutboundConfig};
    /// use oidc_core::types::ClientId;
    ///
    /// # async fn run(now: u64) -> Result<(), Box<dyn std::error::Error>> {
    /// let documents = ClientMetadataDocuments::new(
    ///     OutboundClient::new(OutboundConfig::default()),
    ///     MetadataDocumentConfig::default(),
    /// );
    /// let id = ClientId::parse("https://app.example/oauth/client.json")?;
    /// let client = documents.resolve(&id, now).await?;
    /// println!("{} may redirect to {:?}", client.name, client.redirect_uris);
    /// # Ok(()) }
    /// ```
    pub struct ClientMetadataDocuments {
        client: OutboundClient,
        config: MetadataDocumentConfig,
        cache: Arc<std::sync::Mutex<Cache>>,
    }

    impl fmt::Debug for ClientMetadataDocuments {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ClientMetadataDocuments")
                .field("config", &self.config)
                .finish_non_exhaustive()
        }
    }

    impl ClientMetadataDocuments {
        /// A resolver fetching with `client`.
        pub fn new(client: OutboundClient, config: MetadataDocumentConfig) -> Self {
            ClientMetadataDocuments {
                client,
                cache: Arc::new(std::sync::Mutex::new(Cache::new(config.max_cached))),
                config,
            }
        }

        /// How many documents are cached (expired ones included until evicted).
        pub fn cached(&self) -> usize {
            super::lock(&self.cache).len()
        }

        async fn fetch(
            &self,
            client_id: &ClientId,
            now: u64,
        ) -> Result<Client, MetadataDocumentError> {
            if !self.is_acceptable_url(client_id) {
                return Err(MetadataDocumentError::Forbidden(
                    "client id is not an https url with a path".into(),
                ));
            }
            let response = self
                .client
                .get_with_limit(
                    client_id.as_str(),
                    "application/json",
                    self.config.max_body_bytes,
                )
                .await
                .map_err(|e| match e {
                    OutboundError::Forbidden(refused) => {
                        MetadataDocumentError::Forbidden(refused.to_string())
                    }
                    OutboundError::InsecureScheme | OutboundError::InvalidUrl => {
                        MetadataDocumentError::Forbidden(e.to_string())
                    }
                    other => MetadataDocumentError::Fetch(other.to_string()),
                })?;
            if response.status.is_redirection() {
                return Err(MetadataDocumentError::Fetch(format!(
                    "http status {} (redirects are not followed)",
                    response.status.as_u16()
                )));
            }
            if response.status != StatusCode::OK {
                return Err(MetadataDocumentError::Fetch(format!(
                    "http status {}",
                    response.status.as_u16()
                )));
            }
            let client = parse_metadata_document(client_id, &response.body, now)?;
            let ttl = self.config.cache_lifetime(&response.headers);
            super::lock(&self.cache).insert(
                client_id.clone(),
                client.clone(),
                now.saturating_add(ttl),
                now,
            );
            audit::record(&AuditEvent::ClientRegistered {
                client_id: client_id.as_str(),
                how: "metadata_document",
            });
            Ok(client)
        }

        fn is_acceptable_url(&self, client_id: &ClientId) -> bool {
            if client_id.is_metadata_document_url() {
                return true;
            }
            if !self.config.insecure_allow_http_loopback {
                return false;
            }
            let Ok(url) = url::Url::parse(client_id.as_str()) else {
                return false;
            };
            // `url` lowercases the host of an `http` URL, so `LOCALHOST` is `localhost`.
            url.scheme() == "http"
                && crate::uri::is_loopback(&url)
                && url.path() != "/"
                && url.fragment().is_none()
                && url.as_str() == client_id.as_str()
        }
    }

    impl MetadataDocumentResolver for ClientMetadataDocuments {
        fn resolve<'a>(
            &'a self,
            client_id: &'a ClientId,
            now: u64,
        ) -> BoxFuture<'a, Result<Client, MetadataDocumentError>> {
            Box::pin(async move {
                if let Some(client) = super::lock(&self.cache).get(client_id, now) {
                    return Ok(client);
                }
                let result = self.fetch(client_id, now).await;
                if let Err(error) = &result {
                    tracing::info!(client_id = client_id.as_str(), %error, "client metadata document refused");
                }
                result
            })
        }

        fn cached_client(&self, client_id: &ClientId, now: u64) -> Option<Client> {
            super::lock(&self.cache).get(client_id, now)
        }
    }
}

/// A bounded cache of validated documents.
#[cfg_attr(not(feature = "hyper-client"), allow(dead_code))]
struct Cache {
    entries: HashMap<ClientId, (Client, u64)>,
    capacity: usize,
}

impl Cache {
    #[cfg_attr(not(feature = "hyper-client"), allow(dead_code))]
    fn new(capacity: usize) -> Self {
        Cache {
            entries: HashMap::new(),
            capacity,
        }
    }

    #[cfg_attr(not(feature = "hyper-client"), allow(dead_code))]
    fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg_attr(not(feature = "hyper-client"), allow(dead_code))]
    fn get(&self, client_id: &ClientId, now: u64) -> Option<Client> {
        self.entries
            .get(client_id)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(client, _)| client.clone())
    }

    #[cfg_attr(not(feature = "hyper-client"), allow(dead_code))]
    fn insert(&mut self, client_id: ClientId, client: Client, expires_at: u64, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&client_id) {
            self.entries.retain(|_, (_, expires)| now < *expires);
        }
        while self.entries.len() >= self.capacity && !self.entries.contains_key(&client_id) {
            let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.entries.remove(&soonest);
        }
        self.entries.insert(client_id, (client, expires_at));
    }
}

#[cfg_attr(not(feature = "hyper-client"), allow(dead_code))]
fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example/oauth/client.json";
    const NOW: u64 = 1_700_000_000;

    fn parse(doc: &serde_json::Value) -> Result<Client, MetadataDocumentError> {
        parse_metadata_document(
            &ClientId::parse(URL).unwrap(),
            doc.to_string().as_bytes(),
            NOW,
        )
    }

    fn invalid_message(doc: &serde_json::Value) -> String {
        match parse(doc) {
            Err(MetadataDocumentError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "client_id": URL,
            "client_name": "Example",
            "redirect_uris": ["https://app.example/cb"],
        })
    }

    #[test]
    fn minimal_document_is_a_public_client() {
        let client = parse(&good()).unwrap();
        assert_eq!(client.client_id.as_str(), URL);
        assert_eq!(client.auth_method, ClientAuthMethod::None);
        assert_eq!(client.kind, ClientKind::MetadataDocument);
        assert!(client.secret_hash.is_none());
        assert!(!client.refresh_tokens);
        assert_eq!(client.created_at, NOW);
        assert_eq!(client.redirect_uris[0].as_str(), "https://app.example/cb");
    }

    #[test]
    fn client_id_must_be_the_url_exactly() {
        for other in [
            "https://app.example/oauth/client.json/",
            "https://APP.example/oauth/client.json",
            "https://evil.example/oauth/client.json",
        ] {
            let mut doc = good();
            doc["client_id"] = other.into();
            assert!(invalid_message(&doc).contains("client_id"), "{other}");
        }
        let mut doc = good();
        doc.as_object_mut().unwrap().remove("client_id");
        assert!(invalid_message(&doc).contains("client_id"));
    }

    #[test]
    fn redirect_uris_are_validated() {
        for bad in [
            serde_json::json!([]),
            serde_json::json!(["https://app.example/cb#frag"]),
            serde_json::json!(["https://*.app.example/cb"]),
            serde_json::json!(["http://app.example/cb"]),
            serde_json::json!(["com.example.app:/cb"]),
            serde_json::json!(["javascript:alert(1)"]),
            serde_json::json!(vec!["https://app.example/cb"; MAX_REDIRECT_URIS + 1]),
        ] {
            let mut doc = good();
            doc["redirect_uris"] = bad.clone();
            assert!(invalid_message(&doc).contains("redirect_uris"), "{bad}");
        }
        let mut doc = good();
        doc["redirect_uris"] = serde_json::json!(["http://127.0.0.1/cb", "https://app.example/cb"]);
        assert_eq!(parse(&doc).unwrap().redirect_uris.len(), 2);
    }

    #[test]
    fn only_public_clients() {
        let mut doc = good();
        doc["token_endpoint_auth_method"] = "none".into();
        assert!(parse(&doc).is_ok());
        doc["token_endpoint_auth_method"] = "private_key_jwt".into();
        assert!(invalid_message(&doc).contains("private_key_jwt"));
        for method in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
        ] {
            doc["token_endpoint_auth_method"] = method.into();
            assert!(invalid_message(&doc).contains("shared-secret"), "{method}");
        }
        doc["token_endpoint_auth_method"] = "tls_client_auth".into();
        assert!(invalid_message(&doc).contains("unsupported"));
        let mut doc = good();
        doc["client_secret"] = "s3cret".into();
        let message = invalid_message(&doc);
        assert!(message.contains("secret") && !message.contains("s3cret"));
    }

    #[test]
    fn grant_and_response_types() {
        let mut doc = good();
        doc["grant_types"] = serde_json::json!(["authorization_code", "refresh_token"]);
        assert!(parse(&doc).unwrap().refresh_tokens);
        for bad in [
            serde_json::json!(["refresh_token"]),
            serde_json::json!(["authorization_code", "client_credentials"]),
            serde_json::json!(["authorization_code", "implicit"]),
            serde_json::json!([]),
        ] {
            doc["grant_types"] = bad.clone();
            assert!(invalid_message(&doc).contains("grant_types"), "{bad}");
        }
        let mut doc = good();
        doc["response_types"] = serde_json::json!(["code"]);
        assert!(parse(&doc).is_ok());
        doc["response_types"] = serde_json::json!(["code", "token"]);
        assert!(invalid_message(&doc).contains("response_types"));
    }

    #[test]
    fn client_name_is_bounded() {
        let name_of = |name: serde_json::Value| {
            let mut doc = good();
            doc["client_name"] = name;
            parse(&doc).unwrap().name
        };
        assert_eq!(name_of("  Example App ".into()), "Example App");
        assert_eq!(
            name_of("x".repeat(MAX_CLIENT_NAME_CHARS).into()).len(),
            MAX_CLIENT_NAME_CHARS
        );
        assert_eq!(
            name_of("x".repeat(MAX_CLIENT_NAME_CHARS + 1).into()),
            "app.example"
        );
        assert_eq!(name_of("".into()), "app.example");
        assert_eq!(name_of("Evil\u{202e}\nName".into()), "app.example");
        let mut doc = good();
        doc.as_object_mut().unwrap().remove("client_name");
        assert_eq!(parse(&doc).unwrap().name, "app.example");
    }

    #[test]
    fn attack_bidi_override_in_metadata_document_name_falls_back_to_the_host() {
        // The right-to-left override makes "Bank\u{202E}lapyap" read "Bankpaypal".
        for spoof in [
            "Bank\u{202E}lapyap",
            "Pay\u{200B}Pal",
            "\u{2067}Bank\u{2069}",
            "Bank\u{FEFF}",
        ] {
            let mut doc = good();
            doc["client_name"] = spoof.into();
            assert_eq!(parse(&doc).unwrap().name, "app.example", "{spoof:?}");
        }
    }

    #[test]
    fn not_json_or_duplicate_members() {
        let id = ClientId::parse(URL).unwrap();
        assert!(matches!(
            parse_metadata_document(&id, b"<html>", NOW),
            Err(MetadataDocumentError::Invalid(_))
        ));
        assert!(matches!(
            parse_metadata_document(&id, b"[]", NOW),
            Err(MetadataDocumentError::Invalid(_))
        ));
        let duplicated = format!(
            r#"{{"client_id":"{URL}","client_id":"{URL}","redirect_uris":["https://app.example/cb"]}}"#
        );
        assert!(parse_metadata_document(&id, duplicated.as_bytes(), NOW).is_err());
    }

    #[test]
    fn cache_lifetimes() {
        use http::HeaderValue;
        let config = MetadataDocumentConfig::default();
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
            config.cache_lifetime(&headers)
        };
        assert_eq!(config.cache_lifetime(&HeaderMap::new()), 300);
        assert_eq!(with("max-age=600"), 600);
        assert_eq!(with("public, MAX-AGE=\"900\""), 900);
        assert_eq!(with("max-age=0"), 60);
        assert_eq!(with("no-store"), 60);
        assert_eq!(with("max-age=999999999"), 86_400);
        assert_eq!(with("max-age=abc"), 300);
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let client = parse(&good()).unwrap();
        let mut cache = Cache::new(2);
        let id = |n: u32| ClientId::parse(&format!("https://app.example/{n}.json")).unwrap();
        cache.insert(id(1), client.clone(), NOW + 100, NOW);
        cache.insert(id(2), client.clone(), NOW + 50, NOW);
        cache.insert(id(3), client.clone(), NOW + 200, NOW);
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(&id(2), NOW).is_none(),
            "soonest to expire evicted"
        );
        assert!(cache.get(&id(1), NOW).is_some());
        assert!(cache.get(&id(1), NOW + 100).is_none(), "expired");
        assert!(cache.get(&id(3), NOW + 199).is_some());
    }
}
