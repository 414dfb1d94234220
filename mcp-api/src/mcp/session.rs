//! Sessions: Streamable HTTP sessions (minted by `initialize`) and legacy HTTP+SSE
//! streams, each bound to the subject (token `sub`) that opened it.
//!
//! A session routes messages and remembers the negotiated protocol version; it never
//! authenticates anything. Every request still carries a verified token, and a session id
//! presented with another subject's token behaves exactly like an unknown id, so an id that
//! leaks is useless to anyone else. The table is bounded (per subject and in total) and
//! takes the current time as an argument, so its rules are tested on a virtual clock.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::ProtocolVersion;
use crate::store::Owner;

/// A session id: 40 lowercase hex digits (160 random bits), visible ASCII as the
/// specification requires.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(String);

impl SessionId {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The id is a bearer of routing, not of identity, but keep it out of logs anyway.
        f.write_str("SessionId(..)")
    }
}

/// A new unguessable session id: 160 bits from the operating system's CSPRNG, as 40
/// lowercase hex characters (visible ASCII, as the transport requires).
pub(crate) fn new_session_id() -> SessionId {
    SessionId(random_hex::<20>())
}

/// A random SSE event id (80 bits, 20 hex digits).
pub(crate) fn new_event_id() -> String {
    random_hex::<10>()
}

/// `N` random bytes from the operating system's CSPRNG, as `2 * N` lowercase hex digits.
pub(crate) fn random_hex<const N: usize>() -> String {
    use std::fmt::Write as _;
    let mut bytes = [0u8; N];
    // Invariant: the OS CSPRNG does not fail on a running system; if it ever did, minting a
    // guessable id would be worse than failing the request.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes)
        .expect("operating system random number generator");
    bytes
        .iter()
        .fold(String::with_capacity(2 * N), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The bounds of a [`SessionTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    /// Sessions of both kinds, in total.
    pub(crate) max_sessions: usize,
    /// Streamable HTTP sessions per subject (the subject's least recently used one makes
    /// room for a new one).
    pub(crate) max_per_subject: usize,
    /// Open legacy SSE streams, in total.
    pub(crate) max_streams: usize,
    /// Open legacy SSE streams per subject.
    pub(crate) max_streams_per_subject: usize,
    pub(crate) idle_timeout: Duration,
}

/// Why a session could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The table is full of live sessions, or every stream the server allows is open.
    Full,
    /// The subject already holds as many open streams as one subject may.
    SubjectLimit,
    /// [`SessionTable::close_legacy_streams`] was called: the server is shutting down.
    Closing,
    /// The shared session directory (PostgreSQL) could not be reached.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Unavailable,
}

/// What a legacy SSE session offers a POST to `/mcp/sse/messages`.
#[derive(Debug, Clone)]
pub(crate) struct LegacyStream {
    /// Where the stream's events go.
    pub(crate) sender: mpsc::Sender<Bytes>,
    /// The version negotiated by `initialize` on this stream, if it happened yet.
    pub(crate) version: Option<ProtocolVersion>,
}

/// Every open session.
#[derive(Debug)]
pub(crate) struct SessionTable {
    state: Mutex<Sessions>,
    limits: SessionLimits,
    closing: AtomicBool,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<SessionId, Session>,
    per_owner: HashMap<Owner, Counts>,
    /// Open legacy streams, in total.
    streams: usize,
}

/// One subject's sessions, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    streamable: usize,
    streams: usize,
}

impl Counts {
    fn of(&mut self, kind: &Kind) -> &mut usize {
        match kind {
            Kind::Streamable { .. } => &mut self.streamable,
            Kind::Legacy(_) => &mut self.streams,
        }
    }
}

#[derive(Debug)]
struct Session {
    owner: Owner,
    last_used: Instant,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Streamable { version: ProtocolVersion },
    Legacy(LegacyStream),
}

impl SessionTable {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        SessionTable {
            state: Mutex::new(Sessions::default()),
            limits,
            closing: AtomicBool::new(false),
        }
    }

    /// Opens a Streamable HTTP session for `owner` at the negotiated `version`.
    pub(crate) fn open_streamable(
        &self,
        owner: &Owner,
        version: ProtocolVersion,
        now: Instant,
    ) -> Result<SessionId, OpenError> {
        self.open(owner, Kind::Streamable { version }, now)
    }

    /// Opens a legacy SSE session for `owner` whose events go to `sender`.
    pub(crate) fn open_legacy(
        &self,
        owner: &Owner,
        sender: mpsc::Sender<Bytes>,
        now: Instant,
    ) -> Result<SessionId, OpenError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(OpenError::Closing);
        }
        let stream = LegacyStream {
            sender,
            version: None,
        };
        self.open(owner, Kind::Legacy(stream), now)
    }

    fn open(&self, owner: &Owner, kind: Kind, now: Instant) -> Result<SessionId, OpenError> {
        let mut sessions = self.lock();
        sessions.make_room_for(owner, &kind, &self.limits, now)?;
        let id = new_session_id();
        sessions.insert(
            id.clone(),
            Session {
                owner: owner.clone(),
                last_used: now,
                kind,
            },
        );
        Ok(id)
    }

    /// The negotiated version of `owner`'s live Streamable HTTP session `id`, marking it
    /// used. `None` for an unknown, expired, legacy or other subject's session.
    pub(crate) fn use_streamable(
        &self,
        id: &str,
        owner: &Owner,
        now: Instant,
    ) -> Option<ProtocolVersion> {
        self.lock().use_streamable(id, owner, &self.limits, now)
    }

    /// `owner`'s legacy SSE session `id`, marking it used. `None` for an unknown,
    /// Streamable HTTP or other subject's session.
    pub(crate) fn use_legacy(&self, id: &str, owner: &Owner, now: Instant) -> Option<LegacyStream> {
        let mut sessions = self.lock();
        let session = sessions.owned_mut(id, owner)?;
        let Kind::Legacy(stream) = &session.kind else {
            return None;
        };
        let stream = stream.clone();
        session.last_used = now;
        Some(stream)
    }

    /// Records the version `initialize` negotiated on legacy session `id`.
    pub(crate) fn set_legacy_version(&self, id: &str, owner: &Owner, version: ProtocolVersion) {
        let mut sessions = self.lock();
        if let Some(Session {
            kind: Kind::Legacy(stream),
            ..
        }) = sessions.owned_mut(id, owner)
        {
            stream.version = Some(version);
        }
    }

    /// Ends `owner`'s Streamable HTTP session `id`. `false` if there is no such session
    /// (unknown, expired, legacy, or another subject's).
    pub(crate) fn close_streamable(&self, id: &str, owner: &Owner, now: Instant) -> bool {
        let mut sessions = self.lock();
        if sessions
            .use_streamable(id, owner, &self.limits, now)
            .is_none()
        {
            return false;
        }
        sessions.remove(id).is_some()
    }

    /// Forgets legacy session `id` (its stream ended).
    pub(crate) fn remove_legacy(&self, id: &str) {
        let mut sessions = self.lock();
        if matches!(
            sessions.by_id.get(id),
            Some(Session {
                kind: Kind::Legacy(_),
                ..
            })
        ) {
            sessions.remove(id);
        }
    }

    /// Ends every legacy SSE stream (their senders are dropped, so each stream finishes
    /// after the events already queued) and refuses new ones. Returns how many ended.
    pub(crate) fn close_legacy_streams(&self) -> usize {
        self.closing.store(true, Ordering::Release);
        let mut sessions = self.lock();
        let legacy: Vec<SessionId> = sessions
            .by_id
            .iter()
            .filter(|(_, session)| matches!(session.kind, Kind::Legacy(_)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &legacy {
            sessions.remove(id.as_str());
        }
        legacy.len()
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// How many legacy SSE streams are open.
    #[cfg(test)]
    pub(crate) fn streams(&self) -> usize {
        self.lock().streams
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // No code panics while holding the lock, and every update keeps both maps
        // consistent, so a poisoned lock still guards a valid table.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sessions {
    fn insert(&mut self, id: SessionId, session: Session) {
        let counts = self.per_owner.entry(session.owner.clone()).or_default();
        *counts.of(&session.kind) += 1;
        if matches!(session.kind, Kind::Legacy(_)) {
            self.streams += 1;
        }
        self.by_id.insert(id, session);
    }

    fn remove(&mut self, id: &str) -> Option<Session> {
        let session = self.by_id.remove(id)?;
        if matches!(session.kind, Kind::Legacy(_)) {
            self.streams = self.streams.saturating_sub(1);
        }
        if let Some(counts) = self.per_owner.get_mut(&session.owner) {
            let count = counts.of(&session.kind);
            *count = count.saturating_sub(1);
            if counts.streamable == 0 && counts.streams == 0 {
                self.per_owner.remove(&session.owner);
            }
        }
        Some(session)
    }

    fn counts(&self, owner: &Owner) -> Counts {
        self.per_owner.get(owner).copied().unwrap_or_default()
    }

    /// See [`SessionTable::use_streamable`]; an expired session is removed.
    fn use_streamable(
        &mut self,
        id: &str,
        owner: &Owner,
        limits: &SessionLimits,
        now: Instant,
    ) -> Option<ProtocolVersion> {
        if self.is_expired(id, limits, now) {
            self.remove(id);
            return None;
        }
        let session = self.owned_mut(id, owner)?;
        let Kind::Streamable { version } = session.kind else {
            return None;
        };
        session.last_used = now;
        Some(version)
    }

    fn owned_mut(&mut self, id: &str, owner: &Owner) -> Option<&mut Session> {
        self.by_id
            .get_mut(id)
            .filter(|session| session.owner == *owner)
    }

    /// Streamable HTTP sessions expire after the idle timeout; legacy ones live as long
    /// as their stream.
    fn is_expired(&self, id: &str, limits: &SessionLimits, now: Instant) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|session| session.is_expired(limits, now))
    }

    /// Frees a slot for one more session of `owner` of this `kind`, or says why not.
    ///
    /// A legacy stream holds a connection (a file descriptor) for as long as it is open, so
    /// streams are refused rather than made room for: [`OpenError::SubjectLimit`] when the
    /// subject holds [`SessionLimits::max_streams_per_subject`], [`OpenError::Full`] when
    /// [`SessionLimits::max_streams`] are open. A Streamable HTTP session is only a table
    /// entry: a subject at its quota loses its own least recently used one.
    ///
    /// Then, if the table is full: every expired session goes, then the least recently used
    /// Streamable HTTP sessions (their clients get `404` and initialize again). Live legacy
    /// streams are never closed to make room for others: a table full of them is
    /// [`OpenError::Full`].
    fn make_room_for(
        &mut self,
        owner: &Owner,
        kind: &Kind,
        limits: &SessionLimits,
        now: Instant,
    ) -> Result<(), OpenError> {
        match kind {
            Kind::Legacy(_) => {
                if self.counts(owner).streams >= limits.max_streams_per_subject {
                    return Err(OpenError::SubjectLimit);
                }
                if self.streams >= limits.max_streams {
                    return Err(OpenError::Full);
                }
            }
            Kind::Streamable { .. } => {
                while self.counts(owner).streamable >= limits.max_per_subject {
                    let Some(oldest) = self.least_recently_used_of(owner) else {
                        return Err(OpenError::SubjectLimit);
                    };
                    self.remove(oldest.as_str());
                }
            }
        }
        if self.by_id.len() >= limits.max_sessions {
            self.remove_expired(limits, now);
        }
        while self.by_id.len() >= limits.max_sessions {
            let Some(idle) = self.least_recently_used_streamable() else {
                return Err(OpenError::Full);
            };
            self.remove(idle.as_str());
        }
        Ok(())
    }

    fn least_recently_used_of(&self, owner: &Owner) -> Option<SessionId> {
        self.by_id
            .iter()
            .filter(|(_, session)| {
                session.owner == *owner && matches!(session.kind, Kind::Streamable { .. })
            })
            .min_by_key(|(_, session)| session.last_used)
            .map(|(id, _)| id.clone())
    }

    fn least_recently_used_streamable(&self) -> Option<SessionId> {
        self.by_id
            .iter()
            .filter(|(_, session)| matches!(session.kind, Kind::Streamable { .. }))
            .min_by_key(|(_, session)| session.last_used)
            .map(|(id, _)| id.clone())
    }

    fn remove_expired(&mut self, limits: &SessionLimits, now: Instant) {
        let expired: Vec<SessionId> = self
            .by_id
            .iter()
            .filter(|(_, session)| session.is_expired(limits, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(id.as_str());
        }
    }
}

impl Session {
    fn is_expired(&self, limits: &SessionLimits, now: Instant) -> bool {
        matches!(self.kind, Kind::Streamable { .. })
            && now.saturating_duration_since(self.last_used) > limits.idle_timeout
    }
}

/// Removes a legacy session from its directory when its SSE stream is dropped (the client
/// went away, or the server closed the stream).
#[derive(Debug)]
pub(crate) struct StreamGuard {
    release: Release,
}

#[derive(Debug)]
enum Release {
    Table(Arc<SessionTable>, SessionId),
    #[cfg(feature = "postgres")]
    Postgres(postgres::HeldStream),
}

impl StreamGuard {
    pub(crate) fn new(table: Arc<SessionTable>, id: SessionId) -> Self {
        StreamGuard {
            release: Release::Table(table, id),
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(held: postgres::HeldStream) -> Self {
        StreamGuard {
            release: Release::Postgres(held),
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        match &self.release {
            Release::Table(table, id) => table.remove_legacy(id.as_str()),
            #[cfg(feature = "postgres")]
            Release::Postgres(held) => held.release(),
        }
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres;

#[cfg(test)]
mod tests;
