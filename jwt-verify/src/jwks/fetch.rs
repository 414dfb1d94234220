//! The HTTP client seam: a small trait so users can bring their own client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (fetches are on the cold path; boxing costs nothing there).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One GET the key cache wants made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Absolute `https` URL (or `http` to a loopback host).
    pub uri: http::Uri,
    /// Bodies longer than this must be refused with [`FetchError::BodyTooLarge`].
    pub max_body_bytes: usize,
    /// The `Accept` header value to send: the media types of the document wanted.
    pub accept: &'static str,
}

/// The `Accept` value of JWKS and discovery fetches.
#[cfg(feature = "runtime")]
pub(crate) const JWKS_ACCEPT: &str = "application/jwk-set+json, application/json";

/// Makes HTTP GET requests for JWKS and discovery documents (and, with the `status-list`
/// feature, Status List Tokens).
///
/// Implementations must not follow redirects and must enforce
/// [`FetchRequest::max_body_bytes`]. The caller applies the overall timeout.
///
/// ```
/// use jwks_verify::jwks::{BoxFuture, FetchError, FetchRequest, HttpFetcher};
///
/// /// Serves one fixed document (useful in tests).
/// struct Fixed(&'static str);
///
/// impl HttpFetcher for Fixed {
///     fn get(&self, _request: FetchRequest) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>> {
///         let body = self.0.as_bytes().to_vec();
///         Box::pin(async move { Ok(http::Response::new(body)) })
///     }
/// }
/// ```
pub trait HttpFetcher: Send + Sync + 'static {
    /// Performs a GET and returns the response with its whole body.
    fn get(
        &self,
        request: FetchRequest,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, FetchError>>;
}

/// A failed fetch. The message names the failure, never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// No answer within the timeout.
    Timeout,
    /// Connection, TLS or protocol failure.
    Transport(String),
    /// The body was longer than allowed.
    BodyTooLarge,
    /// The status was not 200 (redirects are not followed).
    Status(u16),
    /// The document was not what it should be.
    Invalid(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::Transport(e) => write!(f, "transport error: {e}"),
            FetchError::BodyTooLarge => f.write_str("body over the size limit"),
            FetchError::Status(s) => write!(f, "unexpected http status {s}"),
            FetchError::Invalid(e) => write!(f, "invalid document: {e}"),
        }
    }
}

impl std::error::Error for FetchError {}
