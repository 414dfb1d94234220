//! The built-in HTTPS client: hyper-util + rustls (aws-lc-rs), webpki roots, no redirects.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, USER_AGENT};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::fetch::{BoxFuture, FetchError, FetchRequest, HttpFetcher};

/// Fetches documents over HTTPS with hyper. Redirects are not followed; bodies over the
/// limit are refused; the caller applies the timeout.
#[derive(Clone)]
pub struct HyperFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HyperFetcher {
    /// A client trusting the Mozilla root store (webpki-roots).
    pub fn new() -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        #[allow(clippy::expect_used)]
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            // Invariant: the aws-lc-rs provider supports both default TLS versions.
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self::with_tls_config(config)
    }

    /// A client with your own TLS configuration (e.g. private roots).
    pub fn with_tls_config(config: rustls::ClientConfig) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        HyperFetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl Default for HyperFetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HyperFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HyperFetcher")
    }
}

impl HttpFetcher for HyperFetcher {
    fn get(
        &self,
        request: FetchRequest,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
        Box::pin(async move {
            let outgoing = http::Request::get(request.uri)
                .header(ACCEPT, request.accept)
                .header(
                    USER_AGENT,
                    concat!("jwks-verify/", env!("CARGO_PKG_VERSION")),
                )
                .body(Empty::new())
                .map_err(|e| FetchError::Transport(e.to_string()))?;
            let response = self
                .client
                .request(outgoing)
                .await
                .map_err(|e| FetchError::Transport(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            if parts.status != http::StatusCode::OK {
                return Err(FetchError::Status(parts.status.as_u16()));
            }
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|len| len > request.max_body_bytes) {
                return Err(FetchError::BodyTooLarge);
            }
            let body = Limited::new(body, request.max_body_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::BodyTooLarge
                    } else {
                        FetchError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
