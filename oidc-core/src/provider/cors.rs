// Hand-written, not tower-http's `CorsLayer`: CORS covers only some routes of this one Service, whose router answers their preflights with 204 (`CorsLayer` wraps a whole service, answers preflights 200 and sends a longer `Vary` list), and tower-http is not in oidc-core's tree.
//! CORS for the endpoints browsers may call from other origins: discovery, JWKS, token,
//! userinfo, registration and revocation. Never on `/authorize`, `/consent` or login paths.
//!
//! The policy: the response's `Access-Control-Allow-Origin` echoes the request's `Origin`
//! when it is allowed (and `Vary: Origin` is always set); `Access-Control-Allow-Credentials`
//! is never sent (every CORS endpoint authenticates with a header or a form field, never a
//! cookie); preflight requests are answered without authentication.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderMap, HeaderValue};

/// Which origins may call the CORS-enabled endpoints.
///
/// ```
/// use oidc_core::provider::CorsPolicy;
///
/// let policy = CorsPolicy::default();
/// assert!(policy.allows("https://chatgpt.com"));
/// assert!(policy.allows("http://localhost:6274"));
/// assert!(!policy.allows("https://chatgpt.com.evil.example"));
/// assert!(!CorsPolicy::none().allows("https://chatgpt.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
    loopback: bool,
}

impl CorsPolicy {
    /// The origins ChatGPT uses.
    pub const CHATGPT_ORIGINS: [&'static str; 2] =
        ["https://chatgpt.com", "https://chat.openai.com"];

    /// Exactly these origins (`scheme://host[:port]`, compared as strings), no loopback.
    ///
    /// ```
    /// use oidc_core::provider::CorsPolicy;
    ///
    /// let policy = CorsPolicy::new(["https://app.example"]);
    /// assert!(policy.allows("https://app.example"));
    /// assert!(!policy.allows("http://localhost:3000"));
    /// ```
    pub fn new(origins: impl IntoIterator<Item = impl Into<String>>) -> CorsPolicy {
        CorsPolicy {
            origins: origins.into_iter().map(Into::into).collect(),
            loopback: false,
        }
    }

    /// No cross-origin access at all.
    pub fn none() -> CorsPolicy {
        CorsPolicy::new(std::iter::empty::<String>())
    }

    /// Also allow `http://localhost` and `http://127.0.0.1` on any port (local MCP
    /// inspectors and development tools).
    #[must_use]
    pub fn with_loopback(mut self, allowed: bool) -> Self {
        self.loopback = allowed;
        self
    }

    /// Whether a request with this `Origin` may read the response.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin) || (self.loopback && is_loopback_origin(origin))
    }
}

impl Default for CorsPolicy {
    /// [`CHATGPT_ORIGINS`](Self::CHATGPT_ORIGINS) and loopback.
    fn default() -> Self {
        CorsPolicy::new(CorsPolicy::CHATGPT_ORIGINS).with_loopback(true)
    }
}

/// `http://localhost[:port]` or `http://127.0.0.1[:port]`.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else {
        return false;
    };
    let port = rest
        .strip_prefix("localhost")
        .or_else(|| rest.strip_prefix("127.0.0.1"));
    match port {
        Some("") => true,
        Some(port) => port.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }),
        None => false,
    }
}

/// Adds the CORS response headers for the request's `Origin` (if it has one and it is
/// allowed) to `headers`.
pub(crate) fn apply(policy: &CorsPolicy, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    headers.append(VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else {
        return;
    };
    let Ok(text) = origin.to_str() else {
        return;
    };
    if policy.allows(text) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate, Retry-After"),
        );
    }
}

/// Adds the headers of a preflight answer (to a 204) for an allowed origin.
pub(crate) fn apply_preflight(
    policy: &CorsPolicy,
    origin: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) {
    apply(policy, origin, headers);
    if !headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_need_an_exact_host_and_a_numeric_port() {
        for yes in [
            "http://localhost",
            "http://localhost:6274",
            "http://127.0.0.1:8080",
        ] {
            assert!(is_loopback_origin(yes), "{yes}");
        }
        for no in [
            "https://localhost",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://localhost:",
            "http://localhost:123456",
            "http://localhost:80/",
            "http://127.0.0.2",
        ] {
            assert!(!is_loopback_origin(no), "{no}");
        }
    }

    #[test]
    fn credentials_are_never_allowed() {
        let origin = HeaderValue::from_static("https://chatgpt.com");
        let mut headers = HeaderMap::new();
        apply_preflight(&CorsPolicy::default(), Some(&origin), &mut headers);
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "https://chatgpt.com");
        assert!(!headers.contains_key(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }
}
