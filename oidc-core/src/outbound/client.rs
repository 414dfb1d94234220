//! [`OutboundClient`]: the provider's only way out to the network.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use jwks_verify::jwks::{FetchError, FetchRequest, HttpFetcher};
use url::form_urlencoded;
use zeroize::Zeroizing;

use super::address::{AddressPolicy, AddressRefused};
use super::connector::{self, GuardedConnector};
use super::resolver::{DnsResolver, SystemResolver};

/// Default time for a whole exchange, from connecting to the last body byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest response body (metadata documents, token responses, discovery).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("oidc-core/", env!("CARGO_PKG_VERSION"));

/// Settings of an [`OutboundClient`]. `Default` is what production wants.
///
/// ```
/// use std::time::Duration;
/// use oidc_core::outbound::{AddressPolicy, OutboundConfig};
///
/// let config = OutboundConfig::default()
///     .timeout(Duration::from_secs(3))
///     .max_body_bytes(16 * 1024);
/// assert_eq!(config.address_policy(), AddressPolicy::public_only());
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OutboundConfig {
    timeout: Duration,
    max_body_bytes: usize,
    user_agent: HeaderValue,
    address_policy: AddressPolicy,
    allow_http_to_loopback: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            address_policy: AddressPolicy::public_only(),
            allow_http_to_loopback: false,
        }
    }
}

impl OutboundConfig {
    /// Time for a whole exchange, connect to last byte (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body accepted by default (64 KiB).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The `User-Agent` header. A value that is not a valid header value is ignored.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(user_agent) {
            self.user_agent = value;
        }
        self
    }

    /// Which addresses may be reached (default [`AddressPolicy::public_only`]).
    pub fn address_policy(&self) -> AddressPolicy {
        self.address_policy
    }

    /// Replaces the address policy.
    pub fn with_address_policy(mut self, policy: AddressPolicy) -> Self {
        self.address_policy = policy;
        self
    }

    /// Allows plain `http` to loopback host names (`127.0.0.0/8`, `[::1]`, `localhost`).
    ///
    /// This is only about the scheme: the addresses are still checked against the
    /// address policy, which must allow loopback too
    /// ([`AddressPolicy::insecure_allow_loopback`]) for such a request to go anywhere.
    ///
    /// Insecure: for tests whose peers run on the local host without TLS.
    pub fn insecure_allow_http_to_loopback(mut self) -> Self {
        self.allow_http_to_loopback = true;
        self
    }

    /// Whether plain `http` to loopback hosts is allowed.
    pub fn allows_http_to_loopback(&self) -> bool {
        self.allow_http_to_loopback
    }
}

/// An outbound request failed. Messages never contain the URL's query, a body, a header
/// value or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The URL is not an absolute `http(s)` URL with a host.
    #[error("invalid outbound url")]
    InvalidUrl,
    /// The URL is not `https` (plain `http` is allowed only to loopback, and only when
    /// configured).
    #[error("outbound requests must use https")]
    InsecureScheme,
    /// The host resolves to an address the [`AddressPolicy`] refuses.
    #[error(transparent)]
    Forbidden(#[from] AddressRefused),
    /// The host name did not resolve.
    #[error("host name did not resolve")]
    Dns,
    /// No complete response within the timeout.
    #[error("outbound request timed out")]
    Timeout,
    /// The body was longer than the limit.
    #[error("response body over the size limit")]
    BodyTooLarge,
    /// Connection, TLS or protocol failure.
    #[error("outbound request failed: {0}")]
    Transport(String),
}

/// A whole response: status, headers and body (within the size limit). Redirects are
/// returned as they are, never followed.
///
/// `Debug` shows the status, the header names and the body's length only: the body may be
/// an upstream token response, and header values may carry tokens too.
#[derive(Clone)]
#[non_exhaustive]
pub struct OutboundResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl fmt::Debug for OutboundResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundResponse")
            .field("status", &self.status)
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

type HyperClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// The provider's HTTP client for upstream discovery, token exchange, JWKS and client
/// metadata documents.
///
/// - `https` only (rustls with aws-lc-rs, Mozilla roots from webpki-roots, TLS 1.2+);
///   plain `http` only to loopback hosts, and only with
///   [`OutboundConfig::insecure_allow_http_to_loopback`].
/// - SSRF protection: host names are resolved once, every address is vetted against the
///   [`AddressPolicy`], and the connection goes to those vetted addresses only (see the
///   module docs); IP-literal hosts are vetted too.
/// - Redirects are never followed; one timeout covers connect to last byte; bodies over
///   the limit are refused (also when `Content-Length` announces it).
///
/// Cheap to clone: clones share the connection pool.
///
/// ```no_run
/// use oidc_core::outbound::{OutboundClient, OutboundConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = OutboundClient::new(OutboundConfig::default());
/// let response = client
///     .get("https://accounts.google.com/.well-known/openid-configuration", "application/json")
///     .await?;
/// assert_eq!(response.status, 200);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OutboundClient {
    shared: Arc<Shared>,
}

struct Shared {
    config: OutboundConfig,
    client: HyperClient,
}

impl fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundClient")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl OutboundClient {
    /// A client with the system resolver and the Mozilla root store.
    pub fn new(config: OutboundConfig) -> Self {
        Self::with_resolver(config, Arc::new(SystemResolver))
    }

    /// A client with its own DNS resolver (a caching resolver, or a fixed map in tests).
    pub fn with_resolver(config: OutboundConfig, dns: Arc<dyn DnsResolver>) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => builder,
            // The aws-lc-rs provider supports the default protocol versions; this arm is
            // never taken, and falls back to rustls' process-wide default provider.
            Err(_) => rustls::ClientConfig::builder(),
        }
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self::with_tls_config(config, dns, tls)
    }

    /// A client with its own TLS configuration (e.g. a private root for an internal
    /// upstream). ALPN is set by this client.
    pub fn with_tls_config(
        config: OutboundConfig,
        dns: Arc<dyn DnsResolver>,
        tls: rustls::ClientConfig,
    ) -> Self {
        let tcp = GuardedConnector::new(config.address_policy, dns, config.timeout);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        OutboundClient {
            shared: Arc::new(Shared { config, client }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutboundConfig {
        &self.shared.config
    }

    /// `GET url` with `Accept: accept`, within the configured body limit.
    pub async fn get(&self, url: &str, accept: &str) -> Result<OutboundResponse, OutboundError> {
        self.get_with_limit(url, accept, self.shared.config.max_body_bytes)
            .await
    }

    /// `GET url` with its own body limit (e.g. a JWK Set, which may be larger).
    pub async fn get_with_limit(
        &self,
        url: &str,
        accept: &str,
        max_body_bytes: usize,
    ) -> Result<OutboundResponse, OutboundError> {
        let uri = self.check_url(url)?;
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri;
        if let Ok(accept) = HeaderValue::from_str(accept) {
            request.headers_mut().insert(ACCEPT, accept);
        }
        self.send(request, max_body_bytes).await
    }

    /// Sends `request` as it is (method, headers, body), under the same URL checks,
    /// address policy, timeout and body limit as the other methods. For callers that
    /// speak a protocol of their own to a configured server (e.g. a relying party's token
    /// and account requests); header values marked sensitive stay so.
    pub async fn send_request(
        &self,
        request: Request<Bytes>,
    ) -> Result<OutboundResponse, OutboundError> {
        let (mut parts, body) = request.into_parts();
        parts.uri = self.check_url(&parts.uri.to_string())?;
        self.send(
            Request::from_parts(parts, Full::new(body)),
            self.shared.config.max_body_bytes,
        )
        .await
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body and `Accept:
    /// application/json`, optionally with HTTP Basic client authentication (RFC 6749
    /// §2.3.1: the id and secret are form-urlencoded before base64). The form and the
    /// credentials may hold secrets: they are never logged, the `Authorization` header
    /// is marked sensitive, and the intermediate encodings are zeroed (the buffers handed
    /// to hyper are not under this client's control).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<OutboundResponse, OutboundError> {
        let uri = self.check_url(url)?;
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        let mut request = Request::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some((id, secret)) = basic_auth {
            let credentials =
                Zeroizing::new(format!("{}:{}", form_component(id), form_component(secret)));
            let encoded =
                Zeroizing::new(format!("Basic {}", STANDARD.encode(credentials.as_bytes())));
            let mut value = HeaderValue::from_str(&encoded)
                .map_err(|_| OutboundError::Transport("invalid client credentials".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        self.send(request, self.shared.config.max_body_bytes).await
    }

    /// Checks the URL's form and scheme. Addresses are checked when connecting.
    fn check_url(&self, url: &str) -> Result<Uri, OutboundError> {
        let uri: Uri = url.parse().map_err(|_| OutboundError::InvalidUrl)?;
        let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
            return Err(OutboundError::InvalidUrl);
        };
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(OutboundError::InvalidUrl);
        }
        match uri.scheme_str() {
            Some("https") => Ok(uri),
            Some("http") if self.shared.config.allow_http_to_loopback && is_loopback_host(host) => {
                Ok(uri)
            }
            Some("http") => Err(OutboundError::InsecureScheme),
            _ => Err(OutboundError::InvalidUrl),
        }
    }

    async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
        max_body_bytes: usize,
    ) -> Result<OutboundResponse, OutboundError> {
        request
            .headers_mut()
            .insert(USER_AGENT, self.shared.config.user_agent.clone());
        let host = request.uri().host().unwrap_or_default().to_owned();
        let exchange = async {
            let response = self
                .shared
                .client
                .request(request)
                .await
                .map_err(|e| map_client_error(&e))?;
            let (parts, body) = response.into_parts();
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max_body_bytes as u64) {
                return Err(OutboundError::BodyTooLarge);
            }
            let body = Limited::new(body, max_body_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        OutboundError::BodyTooLarge
                    } else {
                        OutboundError::Transport(error_chain(&*e))
                    }
                })?
                .to_bytes();
            Ok(OutboundResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let result = match tokio::time::timeout(self.shared.config.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(OutboundError::Timeout),
        };
        match &result {
            Ok(response) => {
                tracing::debug!(host, status = response.status.as_u16(), "outbound request");
            }
            Err(error) => tracing::debug!(host, %error, "outbound request failed"),
        }
        result
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || connector::ip_literal(host).is_some_and(|ip| ip.is_loopback())
}

fn form_component(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn map_client_error(error: &hyper_util::client::legacy::Error) -> OutboundError {
    if let Some(refused) = connector::find_refusal(error) {
        return OutboundError::Forbidden(refused);
    }
    if connector::is_timeout(error) {
        return OutboundError::Timeout;
    }
    if connector::is_dns_failure(error) {
        return OutboundError::Dns;
    }
    OutboundError::Transport(error_chain(error))
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out.chars().take(300).collect()
}

/// JWK Sets, jwks-verify's own discovery and Status List Tokens through the same client,
/// policy and limits, with the media types and size limit jwks-verify asks for.
impl HttpFetcher for OutboundClient {
    fn get(
        &self,
        request: FetchRequest,
    ) -> jwks_verify::jwks::BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
        Box::pin(async move {
            let url = request.uri.to_string();
            let response = self
                .get_with_limit(&url, request.accept, request.max_body_bytes)
                .await
                .map_err(|e| match e {
                    OutboundError::Timeout => FetchError::Timeout,
                    OutboundError::BodyTooLarge => FetchError::BodyTooLarge,
                    other => FetchError::Transport(other.to_string()),
                })?;
            if response.status != StatusCode::OK {
                return Err(FetchError::Status(response.status.as_u16()));
            }
            let mut out = http::Response::new(response.body.to_vec());
            *out.headers_mut() = response.headers;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_response_shows_neither_body_nor_header_values() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "x-upstream-token",
            HeaderValue::from_static("header-secret"),
        );
        let response = OutboundResponse {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(br#"{"access_token":"upstream-secret"}"#),
        };
        let debug = format!("{response:?}");
        assert!(!debug.contains("upstream-secret"), "{debug}");
        assert!(!debug.contains("header-secret"), "{debug}");
        assert!(!debug.contains("application/json"), "{debug}");
        assert!(debug.contains("200"), "{debug}");
        assert!(debug.contains("content-type") && debug.contains("x-upstream-token"));
        assert!(debug.contains("body_len: 34"), "{debug}");
    }
}
