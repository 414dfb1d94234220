//! [`McpState`]: what every request of one [`McpService`](super::McpService) shares. The
//! service owns it and passes it down to the transports; nothing below the service names
//! the service.

use std::sync::Arc;

use jwks_verify::{Challenge, Clock};

use super::directory::SessionDirectory;
use super::handler::Handler;
use super::session::SessionLimits;
use super::{McpConfig, SessionBackend};
use crate::resource::{MetadataLocation, ProtectedResource};
use crate::store::MemoryStore;

/// What every request of one service shares.
pub(crate) struct McpState<S> {
    /// Answers one JSON-RPC request once its era is settled.
    pub(crate) handler: Handler<S>,
    pub(crate) config: McpConfig,
    pub(crate) sessions: SessionDirectory,
    pub(crate) resource: ProtectedResource,
    /// The one clock: session idle times are measured on its monotonic reading.
    pub(crate) clock: Arc<dyn Clock>,
    /// The `WWW-Authenticate` challenges of `resource` pointing at the well-known
    /// metadata, built once.
    challenge: Challenge,
    /// The same, pointing at the metadata under `/mcp/sse` (the legacy transport).
    sse_challenge: Challenge,
}

impl<S: MemoryStore> McpState<S> {
    pub(crate) fn new(
        store: Arc<S>,
        resource: ProtectedResource,
        config: McpConfig,
        clock: Arc<dyn Clock>,
        backend: SessionBackend,
    ) -> Self {
        let sessions = SessionDirectory::new(
            backend,
            SessionLimits {
                max_sessions: config.max_sessions,
                max_per_subject: config.max_sessions_per_subject,
                max_streams: config.max_sse_streams,
                max_streams_per_subject: config.max_sse_streams_per_subject,
                idle_timeout: config.session_idle_timeout,
            },
        );
        McpState {
            handler: Handler::new(store, &resource),
            config,
            sessions,
            challenge: resource.challenge_at(MetadataLocation::WellKnown),
            sse_challenge: resource.challenge_at(MetadataLocation::UnderSse),
            resource,
            clock,
        }
    }
}

impl<S> McpState<S> {
    /// The challenge of a `401` for a request to `path`.
    pub(crate) fn challenge_for(&self, path: &str) -> &Challenge {
        match MetadataLocation::for_path(path) {
            MetadataLocation::UnderSse => &self.sse_challenge,
            _ => &self.challenge,
        }
    }
}
