//! [`McpConfig`]: origins, limits, session lifetime and SSE behaviour of the MCP service.

use std::time::Duration;

use http::header::ORIGIN;
use http::{HeaderMap, Request};

/// How the Streamable HTTP endpoint answers a request when the client accepts both
/// `application/json` and `text/event-stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// One `application/json` body (survives buffering proxies best).
    #[default]
    Json,
    /// A `text/event-stream` with the response as its one `message` event.
    Sse,
}

/// Configuration of [`McpService`](super::McpService).
///
/// Fields are public; start from [`McpConfig::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use mcp_api::mcp::{McpConfig, ResponseFormat};
///
/// let mut config = McpConfig::default();
/// config.allowed_origins.push("https://claude.ai".to_owned());
/// config.session_idle_timeout = Duration::from_secs(10 * 60);
/// config.response_format = ResponseFormat::Sse;
/// assert!(config.allows_origin("https://claude.ai"));
/// assert!(config.allows_origin("http://localhost:6274"));
/// assert!(!config.allows_origin("https://evil.example"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct McpConfig {
    /// Origins (`scheme://host[:port]`, compared ignoring ASCII case) whose browsers may
    /// call the service. A request without an `Origin` header is always allowed: only
    /// browsers send one, and every request needs a bearer token anyway. Default:
    /// `https://chatgpt.com` and `https://chat.openai.com`.
    pub allowed_origins: Vec<String>,
    /// Also allow `http://localhost`, `http://127.0.0.1` and `http://[::1]` on any port
    /// (local inspectors and development clients). Default: `true`.
    pub allow_loopback_origins: bool,
    /// The largest request body accepted; larger ones get `413`. Default: 1 MiB.
    pub max_body_bytes: usize,
    /// The most sessions (Streamable HTTP sessions and legacy SSE streams together) held
    /// at once. When full, expired sessions are dropped first, then the least recently
    /// used Streamable HTTP sessions (their clients get `404` and initialize again); live
    /// legacy streams are never closed for others, so a table full of them refuses new
    /// sessions with `503` and `Retry-After`. Default: 10 000.
    pub max_sessions: usize,
    /// The most Streamable HTTP sessions one subject (token `sub`) may hold; opening one
    /// more closes that subject's least recently used one (a session is only a table
    /// entry, and clients that re-initialize often must not lock themselves out).
    /// Default: 100.
    pub max_sessions_per_subject: usize,
    /// The most legacy SSE streams (`GET /mcp/sse`) open at once. Each holds a connection,
    /// and so a file descriptor, for as long as it lasts: one more is refused with `503`
    /// and `Retry-After`, and no open stream is closed for it. Keep it well below the
    /// server's connection limit so that other requests always find room. Default: 1 000.
    pub max_sse_streams: usize,
    /// The most legacy SSE streams one subject may hold open; one more is refused with
    /// `429` and `Retry-After`. Default: 32.
    pub max_sse_streams_per_subject: usize,
    /// How long a Streamable HTTP session lives without requests. Legacy SSE sessions
    /// live as long as their stream. Default: 30 minutes.
    pub session_idle_timeout: Duration,
    /// How often an open legacy SSE stream sends a `: ping` comment; `None` or zero
    /// disables keep-alives. Default: 15 seconds.
    pub sse_keep_alive: Option<Duration>,
    /// How a request is answered when the client accepts both JSON and SSE.
    /// Default: [`ResponseFormat::Json`].
    pub response_format: ResponseFormat,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            allowed_origins: vec![
                "https://chatgpt.com".to_owned(),
                "https://chat.openai.com".to_owned(),
            ],
            allow_loopback_origins: true,
            max_body_bytes: 1024 * 1024,
            max_sessions: 10_000,
            max_sessions_per_subject: 100,
            max_sse_streams: 1_000,
            max_sse_streams_per_subject: 32,
            session_idle_timeout: Duration::from_secs(30 * 60),
            sse_keep_alive: Some(Duration::from_secs(15)),
            response_format: ResponseFormat::Json,
        }
    }
}

impl McpConfig {
    /// Whether a browser at `origin` (the value of an `Origin` header) may call the service.
    #[must_use]
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self
            .allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        self.allow_loopback_origins && is_loopback_origin(origin)
    }

    /// Whether a request's browser origin may call the service: no `Origin` header, or
    /// every `Origin` header allowed. A repeated `Origin` with one disallowed value is
    /// refused, whichever value an intermediary would have kept (DNS-rebinding defence).
    pub(crate) fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        headers.get_all(ORIGIN).iter().all(|origin| {
            origin
                .to_str()
                .is_ok_and(|origin| self.allows_origin(origin))
        })
    }

    /// [`Self::origin_allowed`] for `request`, checked once per request: the first service
    /// to ask (the [`MemoryServer`](crate::MemoryServer) in front, or the [`McpService`]
    /// alone) records the verdict in the request's extensions, and every later ask reads it.
    ///
    /// [`McpService`]: super::McpService
    pub(crate) fn check_origin<B>(&self, request: &mut Request<B>) -> bool {
        if let Some(OriginVerdict(allowed)) = request.extensions().get::<OriginVerdict>() {
            return *allowed;
        }
        let allowed = self.origin_allowed(request.headers());
        request.extensions_mut().insert(OriginVerdict(allowed));
        allowed
    }

    /// The keep-alive period, if keep-alives are on.
    pub(crate) fn keep_alive_period(&self) -> Option<Duration> {
        self.sse_keep_alive.filter(|period| !period.is_zero())
    }
}

/// The `Origin` verdict of a request, recorded by [`McpConfig::check_origin`]. Only this
/// crate can insert it: a client cannot make a request skip the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OriginVerdict(bool);

/// `http://localhost`, `http://127.0.0.1` or `http://[::1]`, optionally with a numeric port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    ["localhost", "127.0.0.1", "[::1]"].into_iter().any(|host| {
        let Some(rest) = strip_prefix_ignore_case(authority, host) else {
            return false;
        };
        match rest.strip_prefix(':') {
            None => rest.is_empty(),
            Some(port) => {
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
            }
        }
    })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    let rest = text.get(prefix.len()..)?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatgpt_and_loopback_are_allowed_by_default() {
        let config = McpConfig::default();
        for origin in [
            "https://chatgpt.com",
            "https://chat.openai.com",
            "https://ChatGPT.com",
            "http://localhost",
            "http://localhost:6274",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
        ] {
            assert!(config.allows_origin(origin), "{origin}");
        }
    }

    #[test]
    fn look_alike_origins_are_refused() {
        let config = McpConfig::default();
        for origin in [
            "null",
            "",
            "https://chatgpt.com.evil.example",
            "https://evil.example",
            "http://chatgpt.com",
            "https://localhost",
            "http://localhost.evil.example",
            "http://localhost:",
            "http://localhost:80x",
            "http://localhost:123456",
            "http://127.0.0.1.nip.io",
            "http://127.0.0.1@evil.example",
        ] {
            assert!(!config.allows_origin(origin), "{origin}");
        }
    }

    #[test]
    fn attack_repeated_origin_with_one_disallowed_value_is_refused() {
        let config = McpConfig::default();
        let origins = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(ORIGIN, http::HeaderValue::from_static(value));
            }
            headers
        };
        assert!(config.origin_allowed(&origins(&[])));
        assert!(config.origin_allowed(&origins(&["https://chatgpt.com"])));
        assert!(config.origin_allowed(&origins(&["https://chatgpt.com", "http://localhost:6274"])));
        for values in [
            ["https://chatgpt.com", "https://evil.example"],
            ["https://evil.example", "https://chatgpt.com"],
        ] {
            assert!(!config.origin_allowed(&origins(&values)), "{values:?}");
        }
    }

    #[test]
    fn loopback_can_be_turned_off() {
        let config = McpConfig {
            allow_loopback_origins: false,
            ..McpConfig::default()
        };
        assert!(!config.allows_origin("http://localhost:3000"));
    }

    #[test]
    fn zero_keep_alive_means_none() {
        let config = McpConfig {
            sse_keep_alive: Some(Duration::ZERO),
            ..McpConfig::default()
        };
        assert_eq!(config.keep_alive_period(), None);
    }
}
