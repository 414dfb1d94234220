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

fn random_hex<const N: usize>() -> String {
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

/// Removes a legacy session from the table when its SSE stream is dropped (the client
/// went away, or the server closed the stream).
#[derive(Debug)]
pub(crate) struct StreamGuard {
    table: Arc<SessionTable>,
    id: SessionId,
}

impl StreamGuard {
    pub(crate) fn new(table: Arc<SessionTable>, id: SessionId) -> Self {
        StreamGuard { table, id }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.table.remove_legacy(self.id.as_str());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    fn table(max_sessions: usize, max_per_subject: usize) -> SessionTable {
        SessionTable::new(SessionLimits {
            max_sessions,
            max_per_subject,
            max_streams: max_sessions,
            max_streams_per_subject: max_per_subject,
            idle_timeout: IDLE,
        })
    }

    fn owner(name: &str) -> Owner {
        Owner::new(name).unwrap()
    }

    const V: ProtocolVersion = ProtocolVersion::V2025_06_18;

    #[test]
    fn ids_are_visible_ascii_and_distinct() {
        let ids: HashSet<String> = (0..256).map(|_| new_session_id().0).collect();
        assert_eq!(ids.len(), 256);
        for id in &ids {
            assert_eq!(id.len(), 40);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }

    #[test]
    fn every_bit_of_an_id_varies() {
        // With 32 draws, every bit is set at least once except with probability 160 * 2^-32.
        let union = (0..32).fold([0u8; 20], |mut acc, _| {
            let id = new_session_id().0;
            for (i, a) in acc.iter_mut().enumerate() {
                *a |= u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap();
            }
            acc
        });
        assert_eq!(union, [0xFF; 20]);
    }

    #[test]
    fn a_session_belongs_to_its_subject() {
        let sessions = table(10, 10);
        let now = Instant::now();
        let id = sessions.open_streamable(&owner("alice"), V, now).unwrap();
        assert_eq!(
            sessions.use_streamable(id.as_str(), &owner("alice"), now),
            Some(V)
        );
        assert_eq!(
            sessions.use_streamable(id.as_str(), &owner("mallory"), now),
            None
        );
        assert!(!sessions.close_streamable(id.as_str(), &owner("mallory"), now));
        assert!(sessions.close_streamable(id.as_str(), &owner("alice"), now));
        assert_eq!(
            sessions.use_streamable(id.as_str(), &owner("alice"), now),
            None
        );
    }

    #[test]
    fn closing_an_expired_or_legacy_session_fails_and_drops_only_the_expired_one() {
        let sessions = table(10, 10);
        let t0 = Instant::now();
        let idle = sessions.open_streamable(&owner("alice"), V, t0).unwrap();
        let (sender, _receiver) = mpsc::channel(1);
        let legacy = sessions.open_legacy(&owner("alice"), sender, t0).unwrap();
        let later = t0 + IDLE + Duration::from_millis(1);
        assert!(!sessions.close_streamable(idle.as_str(), &owner("alice"), later));
        assert!(!sessions.close_streamable(legacy.as_str(), &owner("alice"), later));
        assert_eq!(sessions.len(), 1);
        assert!(
            sessions
                .use_legacy(legacy.as_str(), &owner("alice"), later)
                .is_some()
        );
    }

    #[test]
    fn idle_sessions_expire_and_use_extends_them() {
        let sessions = table(10, 10);
        let t0 = Instant::now();
        let id = sessions.open_streamable(&owner("alice"), V, t0).unwrap();
        let t1 = t0 + IDLE;
        assert!(
            sessions
                .use_streamable(id.as_str(), &owner("alice"), t1)
                .is_some()
        );
        let t2 = t1 + IDLE + Duration::from_millis(1);
        assert!(
            sessions
                .use_streamable(id.as_str(), &owner("alice"), t2)
                .is_none()
        );
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn a_full_table_drops_expired_sessions_first() {
        let sessions = table(2, 10);
        let t0 = Instant::now();
        let expired = sessions.open_streamable(&owner("a"), V, t0).unwrap();
        let b = sessions
            .open_streamable(&owner("b"), V, t0 + Duration::from_secs(2))
            .unwrap();
        let later = t0 + IDLE + Duration::from_secs(1);
        let c = sessions.open_streamable(&owner("c"), V, later).unwrap();
        assert_eq!(sessions.len(), 2);
        assert!(
            sessions
                .use_streamable(expired.as_str(), &owner("a"), later)
                .is_none()
        );
        assert!(
            sessions
                .use_streamable(b.as_str(), &owner("b"), later)
                .is_some()
        );
        assert!(
            sessions
                .use_streamable(c.as_str(), &owner("c"), later)
                .is_some()
        );
    }

    #[test]
    fn a_full_table_then_closes_the_least_recently_used_streamable_session() {
        let sessions = table(2, 10);
        let t0 = Instant::now();
        let oldest = sessions.open_streamable(&owner("a"), V, t0).unwrap();
        let newer = sessions
            .open_streamable(&owner("b"), V, t0 + Duration::from_secs(1))
            .unwrap();
        let t2 = t0 + Duration::from_secs(2);
        let newest = sessions.open_streamable(&owner("c"), V, t2).unwrap();
        assert!(
            sessions
                .use_streamable(oldest.as_str(), &owner("a"), t2)
                .is_none()
        );
        assert!(
            sessions
                .use_streamable(newer.as_str(), &owner("b"), t2)
                .is_some()
        );
        assert!(
            sessions
                .use_streamable(newest.as_str(), &owner("c"), t2)
                .is_some()
        );
    }

    #[test]
    fn a_table_full_of_live_streams_refuses() {
        let sessions = table(1, 10);
        let now = Instant::now();
        let (sender, _receiver) = mpsc::channel(1);
        sessions.open_legacy(&owner("a"), sender, now).unwrap();
        assert_eq!(
            sessions.open_streamable(&owner("b"), V, now + IDLE * 10),
            Err(OpenError::Full)
        );
        let (sender, _receiver) = mpsc::channel(1);
        assert_eq!(
            sessions.open_legacy(&owner("b"), sender, now),
            Err(OpenError::Full)
        );
        assert_eq!(
            table(0, 10).open_streamable(&owner("a"), V, now),
            Err(OpenError::Full)
        );
    }

    #[test]
    fn a_subject_at_its_quota_loses_its_own_oldest_session() {
        let sessions = table(10, 2);
        let t0 = Instant::now();
        let first = sessions.open_streamable(&owner("a"), V, t0).unwrap();
        let second = sessions
            .open_streamable(&owner("a"), V, t0 + Duration::from_secs(1))
            .unwrap();
        let other = sessions.open_streamable(&owner("b"), V, t0).unwrap();
        let t3 = t0 + Duration::from_secs(3);
        sessions.open_streamable(&owner("a"), V, t3).unwrap();
        assert!(
            sessions
                .use_streamable(first.as_str(), &owner("a"), t3)
                .is_none()
        );
        assert!(
            sessions
                .use_streamable(second.as_str(), &owner("a"), t3)
                .is_some()
        );
        assert!(
            sessions
                .use_streamable(other.as_str(), &owner("b"), t3)
                .is_some()
        );
    }

    #[test]
    fn legacy_and_streamable_ids_do_not_mix() {
        let sessions = table(10, 10);
        let now = Instant::now();
        let (sender, _receiver) = mpsc::channel(1);
        let legacy = sessions.open_legacy(&owner("a"), sender, now).unwrap();
        let streamable = sessions.open_streamable(&owner("a"), V, now).unwrap();
        assert!(
            sessions
                .use_streamable(legacy.as_str(), &owner("a"), now)
                .is_none()
        );
        assert!(
            sessions
                .use_legacy(streamable.as_str(), &owner("a"), now)
                .is_none()
        );
        assert!(
            sessions
                .use_legacy(legacy.as_str(), &owner("b"), now)
                .is_none()
        );
        sessions.set_legacy_version(legacy.as_str(), &owner("a"), V);
        let stream = sessions
            .use_legacy(legacy.as_str(), &owner("a"), now)
            .unwrap();
        assert_eq!(stream.version, Some(V));
        // Legacy sessions do not idle out while their stream is open.
        let much_later = now + IDLE * 10;
        assert!(
            sessions
                .use_legacy(legacy.as_str(), &owner("a"), much_later)
                .is_some()
        );
    }

    #[test]
    fn closing_ends_legacy_streams_and_refuses_new_ones() {
        let sessions = Arc::new(table(10, 10));
        let now = Instant::now();
        let (sender, mut receiver) = mpsc::channel(1);
        sessions.open_legacy(&owner("a"), sender, now).unwrap();
        sessions.open_streamable(&owner("a"), V, now).unwrap();
        assert_eq!(sessions.close_legacy_streams(), 1);
        assert!(receiver.try_recv().is_err());
        assert!(receiver.is_closed());
        assert_eq!(sessions.len(), 1);
        let (sender, _receiver) = mpsc::channel(1);
        assert_eq!(
            sessions.open_legacy(&owner("a"), sender, now),
            Err(OpenError::Closing)
        );
    }

    #[test]
    fn dropping_the_guard_forgets_the_stream() {
        let sessions = Arc::new(table(10, 10));
        let (sender, _receiver) = mpsc::channel(1);
        let id = sessions
            .open_legacy(&owner("a"), sender, Instant::now())
            .unwrap();
        let guard = StreamGuard::new(Arc::clone(&sessions), id);
        assert_eq!(sessions.len(), 1);
        drop(guard);
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn streams_beyond_a_subjects_cap_are_refused_and_never_evicted() {
        let sessions = SessionTable::new(SessionLimits {
            max_sessions: 100,
            max_per_subject: 1,
            max_streams: 10,
            max_streams_per_subject: 2,
            idle_timeout: IDLE,
        });
        let now = Instant::now();
        let mut receivers = Vec::new();
        let mut open = |name: &str| {
            let (sender, receiver) = mpsc::channel(1);
            receivers.push(receiver);
            sessions.open_legacy(&owner(name), sender, now)
        };
        let first = open("alice").unwrap();
        open("alice").unwrap();
        assert_eq!(open("alice"), Err(OpenError::SubjectLimit));
        // The refusal closed nothing: both streams are still alice's.
        assert!(
            sessions
                .use_legacy(first.as_str(), &owner("alice"), now)
                .is_some()
        );
        assert_eq!(sessions.streams(), 2);
        // Streams and Streamable HTTP sessions have separate per-subject quotas.
        sessions.open_streamable(&owner("alice"), V, now).unwrap();
        sessions.open_streamable(&owner("alice"), V, now).unwrap();
        assert_eq!(sessions.streams(), 2);
        assert_eq!(sessions.len(), 3);
        // Another subject is not affected.
        open("bob").unwrap();
        // A closed stream frees its slot.
        sessions.remove_legacy(first.as_str());
        open("alice").unwrap();
    }

    #[test]
    fn streams_beyond_the_total_cap_are_refused_with_full() {
        let sessions = SessionTable::new(SessionLimits {
            max_sessions: 100,
            max_per_subject: 10,
            max_streams: 2,
            max_streams_per_subject: 10,
            idle_timeout: IDLE,
        });
        let now = Instant::now();
        let mut receivers = Vec::new();
        for name in ["a", "b", "c"] {
            let (sender, receiver) = mpsc::channel(1);
            receivers.push(receiver);
            let opened = sessions.open_legacy(&owner(name), sender, now);
            assert_eq!(opened.is_ok(), name != "c", "{name}");
            if name == "c" {
                assert_eq!(opened, Err(OpenError::Full));
            }
        }
        // Streamable HTTP sessions are still possible.
        assert!(sessions.open_streamable(&owner("c"), V, now).is_ok());
    }
}
