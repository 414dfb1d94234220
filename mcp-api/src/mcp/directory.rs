//! [`SessionBackend`]: where an [`McpService`](super::McpService) keeps its sessions, and
//! [`SessionDirectory`], the one interface the transports use whichever backend it is.
//!
//! - [`SessionBackend::InProcess`] (the default): the process's own bounded
//!   [`SessionTable`], on the service's clock. Right for one replica, or several behind a
//!   load balancer with sticky routing.
//! - `SessionBackend::Postgres` (feature `postgres`): the session records live in
//!   PostgreSQL, so a session minted on one replica is served by every other, a `DELETE`
//!   on any replica ends it everywhere, and a legacy SSE `POST` reaches the replica holding
//!   the stream. See `PostgresSessions`.
//!
//! The directory is an enum rather than a trait object: there are two backends, their
//! methods are `async`, and an enum keeps the futures unboxed and the in-process path free
//! of any database type.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::ProtocolVersion;
#[cfg(feature = "postgres")]
use super::session::postgres::{PostgresSessions, RemoteStream};
use super::session::{OpenError, SessionId, SessionLimits, SessionTable, StreamGuard};
use crate::store::Owner;

/// Where an [`McpService`](super::McpService) keeps its Streamable HTTP sessions and
/// legacy SSE streams.
///
/// ```
/// use mcp_api::mcp::SessionBackend;
///
/// assert!(matches!(SessionBackend::default(), SessionBackend::InProcess));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum SessionBackend {
    /// In this process, bounded by [`McpConfig`](super::McpConfig), aged on the service's
    /// clock. Sessions are valid only on the replica that minted them.
    #[default]
    InProcess,
    /// In PostgreSQL, shared by every replica that uses the same tables (feature
    /// `postgres`). The limits of [`McpConfig`](super::McpConfig) apply to all replicas
    /// together and are enforced in SQL; idle times are measured on the database's clock.
    #[cfg(feature = "postgres")]
    Postgres(PostgresSessions),
}

/// The sessions of one service, whichever backend holds them.
#[derive(Debug)]
pub(crate) enum SessionDirectory {
    InProcess(Arc<SessionTable>),
    #[cfg(feature = "postgres")]
    Postgres {
        sessions: PostgresSessions,
        limits: SessionLimits,
    },
}

/// The shared directory could not be asked (the database is unreachable): the request is
/// refused with `503`, never treated as an unknown session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable;

/// Where a legacy SSE session's answers go, and the version negotiated on it.
#[derive(Debug)]
pub(crate) struct LegacyRoute {
    pub(crate) version: Option<ProtocolVersion>,
    pub(crate) target: LegacyTarget,
}

/// The stream of a legacy session.
#[derive(Debug)]
pub(crate) enum LegacyTarget {
    /// Held by this process.
    Local(mpsc::Sender<Bytes>),
    /// Held by another replica: the answer travels through the database.
    #[cfg(feature = "postgres")]
    Remote(RemoteStream),
}

impl SessionDirectory {
    // Without feature `postgres` the backend is a fieldless enum, consumed all the same.
    #[cfg_attr(not(feature = "postgres"), allow(clippy::needless_pass_by_value))]
    pub(crate) fn new(backend: SessionBackend, limits: SessionLimits) -> Self {
        match backend {
            SessionBackend::InProcess => {
                SessionDirectory::InProcess(Arc::new(SessionTable::new(limits)))
            }
            #[cfg(feature = "postgres")]
            SessionBackend::Postgres(sessions) => SessionDirectory::Postgres { sessions, limits },
        }
    }

    /// Opens a Streamable HTTP session for `owner` at the negotiated `version`.
    pub(crate) async fn open_streamable(
        &self,
        owner: &Owner,
        version: ProtocolVersion,
        now: Instant,
    ) -> Result<SessionId, OpenError> {
        match self {
            SessionDirectory::InProcess(table) => table.open_streamable(owner, version, now),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, limits } => {
                sessions.open_streamable(owner, version, limits).await
            }
        }
    }

    /// The negotiated version of `owner`'s live Streamable HTTP session `id`, marking it
    /// used. `Ok(None)` for an unknown, expired, legacy or other subject's session.
    pub(crate) async fn use_streamable(
        &self,
        id: &str,
        owner: &Owner,
        now: Instant,
    ) -> Result<Option<ProtocolVersion>, Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => Ok(table.use_streamable(id, owner, now)),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, limits } => {
                sessions.use_streamable(id, owner, limits).await
            }
        }
    }

    /// Ends `owner`'s Streamable HTTP session `id`; `Ok(false)` if there is no such session.
    pub(crate) async fn close_streamable(
        &self,
        id: &str,
        owner: &Owner,
        now: Instant,
    ) -> Result<bool, Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => Ok(table.close_streamable(id, owner, now)),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, .. } => {
                sessions.close_streamable(id, owner).await
            }
        }
    }

    /// Opens a legacy SSE session for `owner` whose events go to `sender`. The guard
    /// forgets the session when the stream is dropped.
    pub(crate) async fn open_legacy(
        &self,
        owner: &Owner,
        sender: mpsc::Sender<Bytes>,
        now: Instant,
    ) -> Result<(SessionId, StreamGuard), OpenError> {
        match self {
            SessionDirectory::InProcess(table) => {
                let id = table.open_legacy(owner, sender, now)?;
                let guard = StreamGuard::new(Arc::clone(table), id.clone());
                Ok((id, guard))
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, limits } => {
                let (id, held) = sessions.open_legacy(owner, sender, limits).await?;
                Ok((id, StreamGuard::postgres(held)))
            }
        }
    }

    /// Where `owner`'s legacy session `id` is answered; `Ok(None)` for an unknown,
    /// Streamable HTTP or other subject's session, or one whose stream is gone.
    pub(crate) async fn legacy_route(
        &self,
        id: &str,
        owner: &Owner,
        now: Instant,
    ) -> Result<Option<LegacyRoute>, Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => {
                Ok(table.use_legacy(id, owner, now).map(|stream| LegacyRoute {
                    version: stream.version,
                    target: LegacyTarget::Local(stream.sender),
                }))
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, .. } => sessions.legacy_route(id, owner).await,
        }
    }

    /// Records the version `initialize` negotiated on legacy session `id`.
    pub(crate) async fn set_legacy_version(
        &self,
        id: &str,
        owner: &Owner,
        version: ProtocolVersion,
    ) -> Result<(), Unavailable> {
        match self {
            SessionDirectory::InProcess(table) => {
                table.set_legacy_version(id, owner, version);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, .. } => {
                sessions.set_legacy_version(id, owner, version).await
            }
        }
    }

    /// Ends every legacy SSE stream this process holds and refuses new ones. Returns how
    /// many ended.
    pub(crate) fn close_legacy_streams(&self) -> usize {
        match self {
            SessionDirectory::InProcess(table) => table.close_legacy_streams(),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, .. } => sessions.close_local_streams(),
        }
    }

    /// In process: every open session. In PostgreSQL: the legacy streams this process
    /// holds (the shared records are counted in the database).
    pub(crate) fn len(&self) -> usize {
        match self {
            SessionDirectory::InProcess(table) => table.len(),
            #[cfg(feature = "postgres")]
            SessionDirectory::Postgres { sessions, .. } => sessions.local_streams(),
        }
    }
}
