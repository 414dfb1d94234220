//! [`SessionBackend`]: where the page keeps its sessions and sign-ins, and
//! `SessionDirectory`, the one interface the page uses whichever backend it is.
//!
//! An enum rather than a trait object, as for the MCP sessions: two backends, `async`
//! methods, unboxed futures, and an in-process path free of any database type.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jwks_verify::Clock;

#[cfg(feature = "postgres")]
use super::session::postgres::{PostgresPageSessions, SharedSessions};
use super::session::{AppNames, Login, Session, Sessions, Tokens};
use super::{AppConfig, AppError};
use crate::store::Owner;

/// Where the memory page keeps its sessions and sign-ins in flight; see
/// [`App::with_sessions`](super::App::with_sessions).
///
/// ```
/// use mcp_api::app::SessionBackend;
///
/// assert!(matches!(SessionBackend::default(), SessionBackend::InProcess));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum SessionBackend {
    /// In this process, bounded by [`AppConfig::max_sessions`], aged on the service's
    /// clock. A session is valid only on the replica that started it, so several replicas
    /// need sticky routing.
    #[default]
    InProcess,
    /// In PostgreSQL, shared by every replica using the same tables (feature `postgres`),
    /// their secrets sealed under a key derived from the page's client secret or session
    /// key. Lifetimes are measured on the database's clock.
    #[cfg(feature = "postgres")]
    Postgres(PostgresPageSessions),
}

/// The shared backend could not be asked: the page answers `503`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable;

/// The page's sessions, whichever backend holds them.
pub(super) enum SessionDirectory {
    InProcess(Sessions),
    #[cfg(feature = "postgres")]
    Postgres(SharedSessions),
}

impl SessionDirectory {
    /// The directory `backend` names for a page configured by `config`.
    // Without feature `postgres` the backend is a fieldless enum, consumed all the same.
    #[cfg_attr(not(feature = "postgres"), allow(clippy::needless_pass_by_value))]
    pub(super) fn new(
        config: &AppConfig,
        backend: SessionBackend,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        match backend {
            SessionBackend::InProcess => Ok(SessionDirectory::InProcess(Sessions::new(
                config.session_lifetime,
                config.max_sessions,
                clock,
            ))),
            #[cfg(feature = "postgres")]
            SessionBackend::Postgres(db) => {
                let sealer = config.sealer()?;
                Ok(SessionDirectory::Postgres(SharedSessions::new(
                    db,
                    sealer,
                    config.session_lifetime,
                    config.max_sessions,
                    clock,
                )))
            }
        }
    }

    /// How long a session lasts.
    pub(super) fn lifetime(&self) -> Duration {
        match self {
            SessionDirectory::InProcess(table) => table.lifetime(),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => shared.lifetime(),
        }
    }

    /// Starts a session; returns the cookie value and where the session's app names go.
    pub(super) async fn create(
        &self,
        owner: Owner,
        display_name: String,
        tokens: Tokens,
    ) -> Result<(String, Arc<AppNames>), Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => {
                let cookie = table.create(owner, display_name, tokens);
                let apps = table
                    .get(&cookie)
                    .map(|session| Arc::clone(&session.apps))
                    .unwrap_or_default();
                Ok((cookie, apps))
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => shared.create(&owner, display_name, tokens).await,
        }
    }

    /// The live session named by a cookie value.
    pub(super) async fn get(&self, cookie: &str) -> Result<Option<Arc<Session>>, Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => Ok(table.get(cookie)),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => shared.get(cookie).await,
        }
    }

    /// Ends `session`, on every replica.
    pub(super) async fn end(&self, session: &Session) -> Result<(), Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => {
                table.end_key(&session.key);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => shared.end_key(&session.key).await,
        }
    }

    /// The session's access token, renewed first by `refresh` (given the refresh token)
    /// when `due` says so. Renewals of one session never overlap: in process its lock
    /// serialises them; in PostgreSQL a compare-and-swap on the row's version does, and a
    /// request that loses it uses the winner's tokens. A session without a refresh token,
    /// or whose renewal fails (`refresh` gives `None`), ends: `Ok(None)`.
    pub(super) async fn fresh_access_token<F, Fut>(
        &self,
        session: &Session,
        due: impl Fn(&Tokens) -> bool,
        refresh: F,
    ) -> Result<Option<String>, Unavailable>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Tokens>>,
    {
        match self {
            SessionDirectory::InProcess(table) => {
                let mut tokens = session.tokens.lock().await;
                if due(&tokens) {
                    let renewed = match tokens.refresh_token.clone() {
                        Some(refresh_token) => refresh(refresh_token).await,
                        None => None,
                    };
                    let Some(renewed) = renewed else {
                        table.end_key(&session.key);
                        return Ok(None);
                    };
                    *tokens = renewed;
                }
                Ok(Some(tokens.access_token.clone()))
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => {
                shared.fresh_access_token(session, due, refresh).await
            }
        }
    }

    /// Records a sign-in in flight under its `state`.
    pub(super) async fn start_login(&self, state: &str, login: Login) -> Result<(), Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => {
                table.start_login(state, login);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => shared.start_login(state, login).await,
        }
    }

    /// Takes the sign-in with this `state` (once), if it has not expired.
    pub(super) async fn take_login(&self, state: &str) -> Result<Option<Login>, Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => Ok(table.take_login(state)),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres(shared) => shared.take_login(state).await,
        }
    }
}
