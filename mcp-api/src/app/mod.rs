//! The memory page (feature `app`): where people see and control what the AI remembers
//! about them, and which apps may read it.
//!
//! [`App`] serves server-rendered pages under `/app/`. People sign in through the OpenID
//! provider like any other client (authorization code with PKCE S256, as the client named
//! by [`AppConfig::client_id`]); the page keeps their tokens in a server-side session and
//! never hands them to the browser. Every page shows only the memories of the signed-in
//! subject (the `sub` of the access token, checked on every request by the same
//! [`Verifier`] as the API, so a revoked grant ends the session).
//!
//! | Path | What |
//! |---|---|
//! | `GET /app/` | memories: search (the tools' engine, matched words marked), filters, paging, bulk actions |
//! | `GET`/`POST /app/memories/{id}` | one memory with its access log; edit, pause, archive, delete |
//! | `POST /app/memories/bulk` | pause, archive, resume or delete the selected memories |
//! | `GET`/`POST /app/delete-all` | delete everything, after typing `DELETE` |
//! | `GET /app/export`, `POST /app/import` | all memories as one JSON file, and back |
//! | `GET /app/apps`, `POST /app/apps/revoke` | apps that wrote or read memories, their grants at the provider, an activity chart |
//! | `GET /app/login`, `GET /app/callback`, `POST /app/logout` | signing in and out |
//!
//! Security: an `HttpOnly`, `SameSite=Lax` session cookie (`Secure` with the `__Host-`
//! prefix unless the base URL is plain http on loopback); every state-changing form
//! carries the session's CSRF token and must come from the page's own origin (`Origin`,
//! or `Sec-Fetch-Site: same-origin`); a strict Content Security Policy (no inline script or
//! style; scripts only enhance, every action works without them). Apps and grants come
//! from the provider's account API (`GET /account/grants`, `POST /account/grants/revoke`),
//! which the provider opens only to clients its operator marked for it.
//!
//! The page talks to the provider through an [`HttpClient`] the embedding server supplies
//! (mcp-server uses oidc-core's outbound client).
//!
//! Sessions and sign-ins in flight live in this process by default
//! ([`SessionBackend::InProcess`]); several replicas behind a load balancer without sticky
//! routing share them through PostgreSQL instead (feature `postgres`,
//! `SessionBackend::Postgres`, see `PostgresPageSessions`), with their secrets sealed under
//! a key derived from the page's client secret or [`AppConfig::with_session_key`].

mod apps;
mod assets;
mod chart;
mod directory;
mod form;
mod memories;
mod oauth;
mod pages;
mod session;
mod signin;
mod time;
mod transfer;
mod views;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use jwks_verify::Verifier;

use crate::http::{BoxError, ResponseBody};
use crate::store::MemoryStore;

pub use self::directory::SessionBackend;
#[cfg(feature = "postgres")]
pub use self::session::postgres::{PostgresPageSessions, PostgresPageSessionsError};
pub use self::transfer::{EXPORT_FORMAT, EXPORT_VERSION};

/// Where the page lives.
pub const APP_PATH: &str = "/app";

/// The page's settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct AppConfig {
    /// The public base URL of the memory server (`https://memory.example`), without a
    /// trailing slash. The page's own origin and its redirect URI (`{base}/app/callback`)
    /// come from it.
    pub base_url: String,
    /// The OpenID provider (its discovery document names the endpoints).
    pub issuer: String,
    /// The page's client id at the provider.
    pub client_id: String,
    /// The page's client secret (`client_secret_basic`); `None` for a public client.
    pub client_secret: Option<String>,
    /// How long a sign-in lasts at most (12 hours by default); access tokens are renewed
    /// with the refresh token within it.
    pub session_lifetime: Duration,
    /// Most sessions kept at once (10,000 by default); the oldest go first.
    pub max_sessions: usize,
    /// Largest import file, in bytes (32 MiB by default).
    pub max_import_bytes: usize,
    /// The secret the PostgreSQL session backend derives its sealing key from, if not the
    /// client secret.
    session_key: Option<Arc<[u8]>>,
}

impl AppConfig {
    /// The defaults for a page at `base_url`, signing in at `issuer` as `client_id`.
    ///
    /// ```
    /// use mcp_api::app::AppConfig;
    ///
    /// let config = AppConfig::new("https://memory.example", "https://auth.example", "memory-page")
    ///     .with_client_secret("a long random secret");
    /// assert_eq!(config.redirect_uri(), "https://memory.example/app/callback");
    /// ```
    pub fn new(
        base_url: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        AppConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            client_secret: None,
            session_lifetime: Duration::from_secs(12 * 3600),
            max_sessions: 10_000,
            max_import_bytes: 32 * 1024 * 1024,
            session_key: None,
        }
    }

    /// Sets the client secret (a confidential client).
    #[must_use]
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Sets the secret the shared (PostgreSQL) session backend derives its sealing key
    /// from: at least 32 random bytes, the same on every replica. Without it the key is
    /// derived from the client secret; a public client (no client secret) must set one to
    /// use [`SessionBackend::Postgres`](SessionBackend). Setting it also lets the client
    /// secret change without ending everyone's session. The in-process backend ignores it.
    ///
    /// ```
    /// use mcp_api::app::AppConfig;
    ///
    /// let config = AppConfig::new("https://memory.example", "https://auth.example", "memory-page")
    ///     .with_session_key([7u8; 32]);
    /// assert!(format!("{config:?}").contains("has_session_key: true"));
    /// ```
    #[must_use]
    pub fn with_session_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.session_key = Some(Arc::from(key.as_ref()));
        self
    }

    /// The sealing key of the shared session backend: from the session key, else the
    /// client secret.
    #[cfg(feature = "postgres")]
    fn sealer(&self) -> Result<session::sealed::Sealer, AppError> {
        let (secret, short) = match (&self.session_key, &self.client_secret) {
            (Some(key), _) => (&key[..], AppError::ShortSessionKey),
            (None, Some(secret)) => (secret.as_bytes(), AppError::ShortClientSecret),
            (None, None) => return Err(AppError::MissingSessionKey),
        };
        session::sealed::Sealer::derive(secret).ok_or(short)
    }

    /// The page's redirect URI at the provider: `{base_url}/app/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}{APP_PATH}/callback", self.base_url)
    }

    /// Whether cookies may go without `Secure`: plain http to a loopback host only.
    fn insecure_loopback(&self) -> bool {
        let Some(rest) = self.base_url.strip_prefix("http://") else {
            return false;
        };
        let host = rest.split('/').next().unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("base_url", &self.base_url)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("has_client_secret", &self.client_secret.is_some())
            .field("session_lifetime", &self.session_lifetime)
            .field("max_sessions", &self.max_sessions)
            .field("max_import_bytes", &self.max_import_bytes)
            .field("has_session_key", &self.session_key.is_some())
            .finish()
    }
}

/// A future returned by [`HttpClient::send`].
pub type HttpFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpClientError>> + Send + 'a>>;

/// How the page reaches the provider (discovery, token endpoint, account API). The
/// embedding server supplies it, with its own TLS, timeouts and size limits.
pub trait HttpClient: Send + Sync + 'static {
    /// Sends one request and returns the whole response. Redirects must not be followed.
    fn send(&self, request: Request<Bytes>) -> HttpFuture<'_>;
}

/// Why a request to the provider failed (the message never holds a token or secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request to the provider failed: {0}")]
pub struct HttpClientError(pub String);

/// Why the page could not be built with the session backend it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The shared session backend needs a key and the page has neither a client secret
    /// nor a session key.
    #[error(
        "the shared session backend needs a key: the page has no client secret (a public \
         client), so set a session key of at least 32 random bytes (AppConfig::with_session_key)"
    )]
    MissingSessionKey,
    /// The session key is shorter than 32 bytes.
    #[error("the session key is shorter than 32 bytes")]
    ShortSessionKey,
    /// The client secret, which the key would be derived from, is shorter than 32 bytes.
    #[error(
        "the client secret is shorter than 32 bytes, too short to derive the session \
         key from; set a session key of at least 32 random bytes (AppConfig::with_session_key)"
    )]
    ShortClientSecret,
}

/// The memory page. Cheap to clone.
pub struct App<S> {
    inner: Arc<pages::Pages<S>>,
}

impl<S> Clone for App<S> {
    fn clone(&self) -> Self {
        App {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for App<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl<S: MemoryStore> App<S> {
    /// The page over `store`, checking the session's access token with `verifier` (the
    /// memory server's own) and reaching the provider through `http`.
    pub fn new(
        config: AppConfig,
        store: Arc<S>,
        verifier: Verifier,
        http: Arc<dyn HttpClient>,
    ) -> Self {
        let clock = verifier.clock();
        let sessions = directory::SessionDirectory::InProcess(session::Sessions::new(
            config.session_lifetime,
            config.max_sessions,
            clock,
        ));
        App {
            inner: Arc::new(pages::Pages::new(config, store, verifier, http, sessions)),
        }
    }

    /// The page as [`App::new`] makes it, with its sessions and sign-ins in `sessions`.
    ///
    /// ```
    /// # fn page<S: mcp_api::MemoryStore>(
    /// #     store: std::sync::Arc<S>,
    /// #     verifier: jwks_verify::Verifier,
    /// #     http: std::sync::Arc<dyn mcp_api::app::HttpClient>,
    /// # ) -> Result<(), mcp_api::app::AppError> {
    /// use mcp_api::app::{App, AppConfig, SessionBackend};
    ///
    /// let config = AppConfig::new("https://memory.example", "https://auth.example", "memory-page");
    /// let app = App::with_sessions(config, store, verifier, http, SessionBackend::InProcess)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The shared backend needs a key: [`AppError::MissingSessionKey`] for a public client
    /// without [`AppConfig::with_session_key`], [`AppError::ShortSessionKey`] or
    /// [`AppError::ShortClientSecret`] for key material shorter than 32 bytes. The
    /// in-process backend never fails.
    pub fn with_sessions(
        config: AppConfig,
        store: Arc<S>,
        verifier: Verifier,
        http: Arc<dyn HttpClient>,
        sessions: SessionBackend,
    ) -> Result<Self, AppError> {
        let sessions = directory::SessionDirectory::new(&config, sessions, verifier.clock())?;
        Ok(App {
            inner: Arc::new(pages::Pages::new(config, store, verifier, http, sessions)),
        })
    }

    /// Answers a request under [`APP_PATH`].
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.inner.handle(request).await
    }
}

/// Whether `path` belongs to the page.
pub fn is_app_path(path: &str) -> bool {
    path == APP_PATH
        || path
            .strip_prefix(APP_PATH)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The answer under `/app/` when the page is not configured.
pub fn not_configured(method: &Method) -> Response<ResponseBody> {
    let mut response = views::respond(
        StatusCode::NOT_FOUND,
        views::not_configured(),
        &views::Csp::default(),
    );
    if method == Method::HEAD {
        *response.body_mut() = crate::http::empty();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_may_skip_secure_cookies() {
        for base in [
            "http://127.0.0.1:8765",
            "http://localhost:1",
            "http://[::1]:8080",
        ] {
            assert!(AppConfig::new(base, "x", "y").insecure_loopback(), "{base}");
        }
        for base in [
            "https://127.0.0.1",
            "http://example.com",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:80",
        ] {
            assert!(
                !AppConfig::new(base, "x", "y").insecure_loopback(),
                "{base}"
            );
        }
    }

    #[test]
    fn app_paths() {
        assert!(is_app_path("/app"));
        assert!(is_app_path("/app/"));
        assert!(is_app_path("/app/memories/x"));
        assert!(!is_app_path("/application"));
        assert!(!is_app_path("/api/v1"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = AppConfig::new("https://m", "https://i", "c").with_client_secret("hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
