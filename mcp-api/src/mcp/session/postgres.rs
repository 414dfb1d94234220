//! [`PostgresSessions`]: MCP sessions and legacy SSE streams shared by every replica
//! through PostgreSQL (feature `postgres`); the tables and the protocol between replicas
//! are documented on the type.

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_postgres::{Pool, PoolError};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::AbortHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Config, NoTls, Notification, Socket};

use super::{OpenError, SessionId, SessionLimits, new_session_id, random_hex};
use crate::mcp::ProtocolVersion;
use crate::mcp::directory::{LegacyRoute, LegacyTarget, Unavailable};
use crate::mcp::sse;
use crate::store::Owner;

/// The `pg_advisory_xact_lock` key held while the tables are created: the first 8 bytes of
/// SHA-256("mcp-api sessions"), big-endian, as a signed integer.
pub const MIGRATION_LOCK: i64 = 6_945_128_836_994_080_709;

/// The `pg_advisory_xact_lock` key held while a session or stream is opened (the bounds
/// are counted and enforced under it): the first 8 bytes of SHA-256("mcp-api sessions
/// open").
pub const OPEN_LOCK: i64 = 4_533_105_348_612_688_411;

/// The channel announcing ended sessions (payload: the hex SHA-256 of the id).
const END_CHANNEL: &str = "mcp_api_session_end";

/// Undelivered answers one stream may have waiting in the outbox.
const OUTBOX_PER_STREAM: i64 = 32;

/// How long an undelivered answer is kept.
const OUTBOX_TTL: Duration = Duration::from_secs(60);

/// A sweep (dead replicas, expired sessions, old outbox rows) runs every this many
/// heartbeats.
const SWEEP_EVERY: u32 = 6;

/// How long the holder waits for room on a stream whose client reads slowly before it
/// drops an answer.
const SLOW_STREAM_GRACE: Duration = Duration::from_secs(10);

/// The tables, indexes and constraints; idempotent.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mcp_replica (
    replica_id   text PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS mcp_session (
    id_hash    bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    subject    text NOT NULL,
    kind       smallint NOT NULL CHECK (kind IN (0, 1)),
    version    text,
    holder     text REFERENCES mcp_replica (replica_id) ON DELETE CASCADE,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 0 AND holder IS NULL AND expires_at IS NOT NULL)
        OR (kind = 1 AND holder IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS mcp_session_by_subject ON mcp_session (subject, kind, expires_at);
CREATE INDEX IF NOT EXISTS mcp_session_by_expiry ON mcp_session (kind, expires_at);
CREATE INDEX IF NOT EXISTS mcp_session_by_holder ON mcp_session (holder);
CREATE TABLE IF NOT EXISTS mcp_outbox (
    id           bigserial PRIMARY KEY,
    holder       text NOT NULL REFERENCES mcp_replica (replica_id) ON DELETE CASCADE,
    session_hash bytea NOT NULL REFERENCES mcp_session (id_hash) ON DELETE CASCADE,
    message      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mcp_outbox_by_holder ON mcp_outbox (holder);
CREATE INDEX IF NOT EXISTS mcp_outbox_by_session ON mcp_outbox (session_hash);
";

/// MCP sessions and legacy SSE streams in PostgreSQL, shared by every replica; pass it as
/// [`SessionBackend::Postgres`](crate::mcp::SessionBackend::Postgres).
///
/// # Tables
///
/// Created at [`PostgresSessionsBuilder::start`] with `CREATE TABLE IF NOT EXISTS`, inside
/// a transaction holding `pg_advisory_xact_lock(`[`MIGRATION_LOCK`]`)`, in the first schema
/// of the pool's `search_path`:
///
/// - `mcp_replica (replica_id, heartbeat_at)`: one row per running replica (a random id
///   per process), refreshed every heartbeat. A replica whose heartbeat is older than the
///   replica timeout is dead: its streams count as gone, and a later sweep deletes its row
///   (and, by cascade, its streams and their undelivered messages).
/// - `mcp_session (id_hash, subject, kind, version, holder, expires_at)`: one row per
///   Streamable HTTP session (`kind = 0`, idle expiry in `expires_at`) or legacy SSE stream
///   (`kind = 1`, `holder` = the replica whose process holds the connection). Only the
///   **SHA-256 of the session id** is stored: an id read from a backup or a replica of the
///   database opens nothing.
/// - `mcp_outbox (id, holder, session_hash, message)`: JSON-RPC answers on their way to
///   the replica holding a legacy stream.
///
/// # Streamable HTTP
///
/// `initialize` inserts the row, under a transaction-scoped advisory lock
/// ([`OPEN_LOCK`]) so that the per-subject and total bounds of
/// [`McpConfig`](crate::mcp::McpConfig) hold across replicas, with today's eviction order
/// (the subject's least recently used session; then expired sessions and dead replicas'
/// streams; then the least recently used session of anyone; never a live stream).
///
/// Each replica keeps a small cache of the sessions it has seen (hash → subject, version,
/// when last checked). A request whose session was checked less than the cache TTL ago
/// (default 5 s) is served from the cache; otherwise one `UPDATE … RETURNING` both checks
/// the record (subject, kind, not expired) and pushes its idle expiry, so the shared record
/// is written at most once per TTL per replica, not per request.
///
/// A `DELETE` (or an eviction) on any replica deletes the row and sends `NOTIFY
/// mcp_api_session_end, '<hash>'`; every replica LISTENs on it and drops that cache entry
/// at once. Notifications are lost only while a replica's LISTEN connection is down, so
/// the cache is cleared whenever it reconnects; the TTL bounds what a replica can serve
/// from a stale entry in the meantime. A session never authenticates anything (every
/// request carries its own verified token and the subject must match), so that bound is
/// about protocol state, not access.
///
/// # Legacy SSE
///
/// `GET /mcp/sse` inserts a `kind = 1` row held by this replica and keeps the stream's
/// channel in process memory. A `POST` for it on any replica checks the row (same
/// subject, holder alive) — otherwise the usual unknown-session `404` — and is answered
/// there (that replica has the store and the verified token). If another replica holds
/// the stream, the answer goes into `mcp_outbox` and only its row id is sent with `NOTIFY
/// mcp_api_r_<holder>` (payloads are limited to 8000 bytes; answers are not). The holder
/// deletes the rows addressed to it (`DELETE … RETURNING`) and writes them to the stream;
/// it also polls every heartbeat and after each LISTEN reconnect, since notifications are
/// not stored. At most 32 undelivered answers wait per stream (one more is refused with
/// `503`, as a full local stream is); rows older than 60 s are deleted undelivered.
/// When a stream ends its row goes; on graceful shutdown
/// ([`PostgresSessions::shutdown`]) the replica deletes its own row and with it all of
/// its streams.
///
/// # Connections
///
/// The caller's pool serves every query (a few per `initialize`, one per cache miss or
/// legacy `POST`). Notifications need one extra, dedicated connection per replica, opened
/// from a `tokio_postgres::Config` (it cannot come from the pool: a pooled connection is
/// recycled, and `LISTEN` does not work through PgBouncer's transaction pooling). Plan for
/// `replicas × (pool size + 1)` connections.
///
/// # Running
///
/// It runs two background tasks on the current Tokio runtime (heartbeat and sweeps; the
/// LISTEN connection) until [`PostgresSessions::shutdown`]. Cloning is cheap and clones
/// are the same replica.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use deadpool_postgres::{Manager, Pool};
/// use mcp_api::mcp::{PostgresSessions, SessionBackend};
///
/// let config: tokio_postgres::Config = "postgres://mcp@db.internal/memories".parse()?;
/// // The memory store's pool, in the server; any pool on the same database will do.
/// let pool = Pool::builder(Manager::new(config.clone(), tokio_postgres::NoTls))
///     .max_size(8)
///     .build()?;
/// let sessions = PostgresSessions::builder(pool, config).start().await?;
/// let backend = SessionBackend::Postgres(sessions.clone());
/// // … McpService::with_sessions(store, resource, mcp_config, clock, backend) …
/// // On graceful shutdown, after closing the streams:
/// sessions.shutdown().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresSessions {
    inner: Arc<Inner>,
}

/// Builds [`PostgresSessions`]: [`PostgresSessions::builder`].
#[must_use]
pub struct PostgresSessionsBuilder<T = NoTls> {
    pool: Pool,
    listen: Config,
    tls: T,
    settings: Settings,
}

/// Why the session directory could not start or shut down: a database or pool failure.
#[derive(Debug, thiserror::Error)]
#[error("postgres session directory: {source}")]
pub struct PostgresSessionsError {
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl From<tokio_postgres::Error> for PostgresSessionsError {
    fn from(error: tokio_postgres::Error) -> Self {
        PostgresSessionsError {
            source: Box::new(error),
        }
    }
}

impl From<PoolError> for PostgresSessionsError {
    fn from(error: PoolError) -> Self {
        PostgresSessionsError {
            source: Box::new(error),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    heartbeat: Duration,
    replica_timeout: Duration,
    cache_ttl: Duration,
}

impl PostgresSessions {
    /// A builder over `pool` (its connections' `search_path` decides the schema), opening
    /// its LISTEN connection from `listen` without TLS; see
    /// [`PostgresSessionsBuilder::tls`].
    pub fn builder(pool: Pool, listen: Config) -> PostgresSessionsBuilder<NoTls> {
        PostgresSessionsBuilder {
            pool,
            listen,
            tls: NoTls,
            settings: Settings {
                heartbeat: Duration::from_secs(5),
                replica_timeout: Duration::from_secs(20),
                cache_ttl: Duration::from_secs(5),
            },
        }
    }

    /// This replica's random id (as in `mcp_replica.replica_id`; fit for logs).
    #[must_use]
    pub fn replica_id(&self) -> &str {
        &self.inner.replica
    }

    /// Graceful shutdown: ends the streams this replica holds, stops the background tasks
    /// and deletes the replica's row, and with it its streams and their undelivered
    /// answers. Streamable HTTP sessions are not the replica's and stay valid.
    ///
    /// # Errors
    ///
    /// The row could not be deleted; the other replicas then treat this one as dead after
    /// the replica timeout.
    pub async fn shutdown(&self) -> Result<(), PostgresSessionsError> {
        self.close_local_streams();
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        let client = self.inner.pool.get().await?;
        client
            .execute(
                "DELETE FROM mcp_replica WHERE replica_id = $1",
                &[&self.inner.replica],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn open_streamable(
        &self,
        owner: &Owner,
        version: ProtocolVersion,
        limits: &SessionLimits,
    ) -> Result<SessionId, OpenError> {
        if limits.max_per_subject == 0 {
            return Err(OpenError::SubjectLimit);
        }
        let id = new_session_id();
        let hash = hash_id(id.as_str());
        self.inner
            .insert_streamable(&hash, owner, version, limits)
            .await
            .map_err(OpenFailure::into_open_error)?;
        self.inner.remember(hash, owner, version, limits);
        Ok(id)
    }

    pub(crate) async fn use_streamable(
        &self,
        id: &str,
        owner: &Owner,
        limits: &SessionLimits,
    ) -> Result<Option<ProtocolVersion>, Unavailable> {
        let hash = hash_id(id);
        if let Some(cached) = lock(&self.inner.cache).get(&hash) {
            if cached.owner != *owner {
                return Ok(None);
            }
            if cached.checked.elapsed() < self.inner.settings.cache_ttl {
                return Ok(Some(cached.version));
            }
        }
        let touched = self
            .inner
            .touch_streamable(&hash, owner, limits)
            .await
            .map_err(unavailable)?;
        match touched {
            Some(version) => {
                self.inner.remember(hash, owner, version, limits);
                Ok(Some(version))
            }
            None => {
                lock(&self.inner.cache).remove(&hash);
                Ok(None)
            }
        }
    }

    pub(crate) async fn close_streamable(
        &self,
        id: &str,
        owner: &Owner,
    ) -> Result<bool, Unavailable> {
        let hash = hash_id(id);
        let client = self.inner.pool.get().await.map_err(unavailable)?;
        let ended = client
            .execute(
                "WITH gone AS (
                     DELETE FROM mcp_session
                      WHERE id_hash = $1 AND subject = $2 AND kind = 0 AND expires_at > now()
                     RETURNING id_hash)
                 SELECT pg_notify('mcp_api_session_end', encode(id_hash, 'hex')) FROM gone",
                &[&hash.as_slice(), &owner.as_str()],
            )
            .await
            .map_err(unavailable)?;
        if ended == 0 {
            return Ok(false);
        }
        lock(&self.inner.cache).remove(&hash);
        Ok(true)
    }

    pub(crate) async fn open_legacy(
        &self,
        owner: &Owner,
        sender: mpsc::Sender<Bytes>,
        limits: &SessionLimits,
    ) -> Result<(SessionId, HeldStream), OpenError> {
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(OpenError::Closing);
        }
        let id = new_session_id();
        let hash = hash_id(id.as_str());
        // Registered before the row exists, so an answer delivered right away finds it.
        lock(&self.inner.streams).insert(hash, sender);
        let held = HeldStream {
            inner: Arc::clone(&self.inner),
            hash,
            released: AtomicBool::new(false),
        };
        if let Err(failure) = self.inner.insert_legacy(&hash, owner, limits).await {
            held.release();
            return Err(failure.into_open_error());
        }
        Ok((id, held))
    }

    pub(crate) async fn legacy_route(
        &self,
        id: &str,
        owner: &Owner,
    ) -> Result<Option<LegacyRoute>, Unavailable> {
        let hash = hash_id(id);
        let client = self.inner.pool.get().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached(
                "SELECT s.version, s.holder FROM mcp_session s
                   JOIN mcp_replica r ON r.replica_id = s.holder
                  WHERE s.id_hash = $1 AND s.subject = $2 AND s.kind = 1
                    AND r.heartbeat_at > now() - make_interval(secs => $3)",
            )
            .await
            .map_err(unavailable)?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &hash.as_slice(),
                    &owner.as_str(),
                    &self.inner.settings.replica_timeout.as_secs_f64(),
                ],
            )
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version = row
            .get::<_, Option<&str>>(0)
            .and_then(ProtocolVersion::parse);
        let holder: String = row.get(1);
        let target = if holder == self.inner.replica {
            let sender = lock(&self.inner.streams).get(&hash).cloned();
            let Some(sender) = sender else {
                // Our row, but the stream is gone: its removal is on the way.
                return Ok(None);
            };
            LegacyTarget::Local(sender)
        } else {
            LegacyTarget::Remote(RemoteStream {
                inner: Arc::clone(&self.inner),
                hash,
                holder,
            })
        };
        Ok(Some(LegacyRoute { version, target }))
    }

    pub(crate) async fn set_legacy_version(
        &self,
        id: &str,
        owner: &Owner,
        version: ProtocolVersion,
    ) -> Result<(), Unavailable> {
        let hash = hash_id(id);
        let client = self.inner.pool.get().await.map_err(unavailable)?;
        client
            .execute(
                "UPDATE mcp_session SET version = $3
                  WHERE id_hash = $1 AND subject = $2 AND kind = 1",
                &[&hash.as_slice(), &owner.as_str(), &version.as_str()],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Ends the streams this process holds (their senders are dropped) and refuses new
    /// ones; their rows go as the streams drop.
    pub(crate) fn close_local_streams(&self) -> usize {
        self.inner.closing.store(true, Ordering::Release);
        lock(&self.inner.streams).drain().count()
    }

    pub(crate) fn local_streams(&self) -> usize {
        lock(&self.inner.streams).len()
    }
}

impl fmt::Debug for PostgresSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSessions")
            .field("replica_id", &self.inner.replica)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl<T> PostgresSessionsBuilder<T> {
    /// Opens the LISTEN connection through `tls` (for example a
    /// `tokio_postgres_rustls::MakeRustlsConnect`) instead of in plain text. The pool has
    /// its own TLS setting.
    pub fn tls<U>(self, tls: U) -> PostgresSessionsBuilder<U> {
        PostgresSessionsBuilder {
            pool: self.pool,
            listen: self.listen,
            tls,
            settings: self.settings,
        }
    }

    /// How often the replica refreshes its heartbeat and polls for answers whose
    /// notification was lost. Default: 5 s.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.settings.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// How old a replica's heartbeat may be before its streams count as gone (a `POST` for
    /// them gets `404`, and the client reconnects). Keep it several heartbeats long, and
    /// the same on every replica. Default: 20 s.
    pub fn replica_timeout(mut self, timeout: Duration) -> Self {
        self.settings.replica_timeout = timeout;
        self
    }

    /// How long a replica serves a Streamable HTTP session from its cache before checking
    /// (and touching) the shared record again: the bound on staleness when an end-of-session
    /// notification is lost, and on how often a busy session's record is written.
    /// Default: 5 s.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.settings.cache_ttl = ttl;
        self
    }
}

impl<T> PostgresSessionsBuilder<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    /// Creates the tables if needed, registers this replica, opens the LISTEN connection
    /// and starts the background tasks on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// The database could not be reached or refused the schema.
    pub async fn start(self) -> Result<PostgresSessions, PostgresSessionsError> {
        let replica = random_hex::<16>();
        let channel = format!("mcp_api_r_{replica}");
        {
            let mut client = self.pool.get().await?;
            let transaction = client.transaction().await?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            transaction.batch_execute(SCHEMA).await?;
            transaction
                .execute(
                    "INSERT INTO mcp_replica (replica_id) VALUES ($1)",
                    &[&replica],
                )
                .await?;
            transaction.commit().await?;
        }
        let listener = Listener::open(&self.listen, self.tls.clone(), &channel).await?;
        let (removals, removed) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            pool: self.pool,
            replica,
            channel,
            settings: self.settings,
            cache: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            removals,
            tasks: Mutex::new(Vec::new()),
        });
        let listening = tokio::spawn(listen(Arc::clone(&inner), self.listen, self.tls, listener));
        let maintaining = tokio::spawn(maintain(Arc::clone(&inner), removed));
        lock(&inner.tasks).extend([listening.abort_handle(), maintaining.abort_handle()]);
        Ok(PostgresSessions { inner })
    }
}

/// A legacy stream held by this process; its [`StreamGuard`](super::StreamGuard) calls
/// [`HeldStream::release`] when the stream ends.
/// Dropping it releases it too, so a stream whose opening was cancelled half-way leaves
/// nothing behind.
pub(crate) struct HeldStream {
    inner: Arc<Inner>,
    hash: [u8; 32],
    released: AtomicBool,
}

impl HeldStream {
    /// Forgets the stream's channel and has its row deleted (once).
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.inner.streams).remove(&self.hash);
        // The maintenance task deletes the row; it is gone anyway once this replica stops.
        let _ = self.inner.removals.send(self.hash);
    }
}

impl Drop for HeldStream {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for HeldStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeldStream(..)")
    }
}

/// A legacy stream held by another replica.
pub(crate) struct RemoteStream {
    inner: Arc<Inner>,
    hash: [u8; 32],
    holder: String,
}

/// What became of an answer sent to a [`RemoteStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// In the outbox, and the holder notified.
    Queued,
    /// Too many answers already wait for this stream.
    Full,
    /// The stream or its holder went away.
    Gone,
    /// The database could not be reached.
    Unavailable,
}

impl RemoteStream {
    /// Queues `message` (one JSON-RPC message) for the holder and notifies it.
    pub(crate) async fn deliver(&self, message: &[u8]) -> Delivery {
        let Ok(client) = self.inner.pool.get().await else {
            return Delivery::Unavailable;
        };
        let channel = format!("mcp_api_r_{}", self.holder);
        let queued = client
            .execute(
                "WITH queued AS (
                     INSERT INTO mcp_outbox (holder, session_hash, message)
                     SELECT $1::text, $2::bytea, $3::bytea
                      WHERE (SELECT count(*) FROM mcp_outbox WHERE session_hash = $2::bytea)
                            < $4::bigint
                     RETURNING id)
                 SELECT pg_notify($5::text, id::text) FROM queued",
                &[
                    &self.holder,
                    &self.hash.as_slice(),
                    &message,
                    &OUTBOX_PER_STREAM,
                    &channel,
                ],
            )
            .await;
        match queued {
            Ok(0) => Delivery::Full,
            Ok(_) => Delivery::Queued,
            Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Delivery::Gone,
            Err(error) => {
                tracing::warn!(%error, "could not queue an SSE answer for another replica");
                Delivery::Unavailable
            }
        }
    }
}

impl fmt::Debug for RemoteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStream")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    /// 32 hex digits.
    replica: String,
    /// `mcp_api_r_<replica>`: where answers for this replica's streams are announced.
    channel: String,
    settings: Settings,
    /// Streamable HTTP sessions seen lately, by id hash.
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// The legacy streams this process holds, by id hash.
    streams: Mutex<HashMap<[u8; 32], mpsc::Sender<Bytes>>>,
    closing: AtomicBool,
    /// Rows of ended streams, for the maintenance task to delete.
    removals: mpsc::UnboundedSender<[u8; 32]>,
    tasks: Mutex<Vec<AbortHandle>>,
}

struct Cached {
    owner: Owner,
    version: ProtocolVersion,
    checked: Instant,
}

/// Why opening failed: a refusal by the rules, or the database.
enum OpenFailure {
    Refused(OpenError),
    Database(PostgresSessionsError),
}

impl OpenFailure {
    fn into_open_error(self) -> OpenError {
        match self {
            OpenFailure::Refused(error) => error,
            OpenFailure::Database(error) => {
                tracing::warn!(%error, "could not open a session");
                OpenError::Unavailable
            }
        }
    }
}

impl From<tokio_postgres::Error> for OpenFailure {
    fn from(error: tokio_postgres::Error) -> Self {
        OpenFailure::Database(error.into())
    }
}

impl From<PoolError> for OpenFailure {
    fn from(error: PoolError) -> Self {
        OpenFailure::Database(error.into())
    }
}

impl Inner {
    async fn insert_streamable(
        &self,
        hash: &[u8; 32],
        owner: &Owner,
        version: ProtocolVersion,
        limits: &SessionLimits,
    ) -> Result<(), OpenFailure> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&OPEN_LOCK])
            .await?;
        // The subject's least recently used sessions beyond its quota go first.
        let keep = count(limits.max_per_subject.saturating_sub(1));
        transaction
            .execute(
                "WITH gone AS (
                     DELETE FROM mcp_session WHERE id_hash IN (
                         SELECT id_hash FROM mcp_session WHERE subject = $1 AND kind = 0
                          ORDER BY expires_at DESC OFFSET $2)
                     RETURNING id_hash)
                 SELECT pg_notify('mcp_api_session_end', encode(id_hash, 'hex')) FROM gone",
                &[&owner.as_str(), &keep],
            )
            .await?;
        self.make_room(&transaction, limits).await?;
        transaction
            .execute(
                "INSERT INTO mcp_session (id_hash, subject, kind, version, expires_at)
                 VALUES ($1, $2, 0, $3, now() + make_interval(secs => $4))",
                &[
                    &hash.as_slice(),
                    &owner.as_str(),
                    &version.as_str(),
                    &limits.idle_timeout.as_secs_f64(),
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn insert_legacy(
        &self,
        hash: &[u8; 32],
        owner: &Owner,
        limits: &SessionLimits,
    ) -> Result<(), OpenFailure> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&OPEN_LOCK])
            .await?;
        let row = transaction
            .query_one(
                "SELECT count(*) FILTER (WHERE s.subject = $1), count(*)
                   FROM mcp_session s JOIN mcp_replica r ON r.replica_id = s.holder
                  WHERE s.kind = 1 AND r.heartbeat_at > now() - make_interval(secs => $2)",
                &[
                    &owner.as_str(),
                    &self.settings.replica_timeout.as_secs_f64(),
                ],
            )
            .await?;
        let (of_subject, open): (i64, i64) = (row.get(0), row.get(1));
        if of_subject >= count(limits.max_streams_per_subject) {
            return Err(OpenFailure::Refused(OpenError::SubjectLimit));
        }
        if open >= count(limits.max_streams) {
            return Err(OpenFailure::Refused(OpenError::Full));
        }
        self.make_room(&transaction, limits).await?;
        transaction
            .execute(
                "INSERT INTO mcp_session (id_hash, subject, kind, holder) VALUES ($1, $2, 1, $3)",
                &[&hash.as_slice(), &owner.as_str(), &self.replica],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Frees a slot under [`SessionLimits::max_sessions`], as the in-process table does:
    /// expired sessions and dead replicas' streams first, then the least recently used
    /// Streamable HTTP sessions; never a live stream.
    async fn make_room(
        &self,
        client: &tokio_postgres::Transaction<'_>,
        limits: &SessionLimits,
    ) -> Result<(), OpenFailure> {
        let max = count(limits.max_sessions);
        let open: i64 = client
            .query_one("SELECT count(*) FROM mcp_session", &[])
            .await?
            .get(0);
        if open < max {
            return Ok(());
        }
        let swept = client
            .execute(
                "DELETE FROM mcp_session s
                  WHERE (s.kind = 0 AND s.expires_at <= now())
                     OR (s.kind = 1 AND NOT EXISTS (
                         SELECT 1 FROM mcp_replica r
                          WHERE r.replica_id = s.holder
                            AND r.heartbeat_at > now() - make_interval(secs => $1)))",
                &[&self.settings.replica_timeout.as_secs_f64()],
            )
            .await?;
        let open = open.saturating_sub(i64::try_from(swept).unwrap_or(i64::MAX));
        if open < max {
            return Ok(());
        }
        let excess = open - max + 1;
        let evicted = client
            .execute(
                "WITH gone AS (
                     DELETE FROM mcp_session WHERE id_hash IN (
                         SELECT id_hash FROM mcp_session WHERE kind = 0
                          ORDER BY expires_at LIMIT $1)
                     RETURNING id_hash)
                 SELECT pg_notify('mcp_api_session_end', encode(id_hash, 'hex')) FROM gone",
                &[&excess],
            )
            .await?;
        if i64::try_from(evicted).unwrap_or(i64::MAX) < excess {
            return Err(OpenFailure::Refused(OpenError::Full));
        }
        Ok(())
    }

    /// Checks `owner`'s live session `hash` and pushes its idle expiry; its version.
    async fn touch_streamable(
        &self,
        hash: &[u8; 32],
        owner: &Owner,
        limits: &SessionLimits,
    ) -> Result<Option<ProtocolVersion>, PostgresSessionsError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE mcp_session SET expires_at = now() + make_interval(secs => $3)
                  WHERE id_hash = $1 AND subject = $2 AND kind = 0 AND expires_at > now()
                 RETURNING version",
            )
            .await?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &hash.as_slice(),
                    &owner.as_str(),
                    &limits.idle_timeout.as_secs_f64(),
                ],
            )
            .await?;
        Ok(row.and_then(|row| {
            row.get::<_, Option<&str>>(0)
                .and_then(ProtocolVersion::parse)
        }))
    }

    fn remember(
        &self,
        hash: [u8; 32],
        owner: &Owner,
        version: ProtocolVersion,
        limits: &SessionLimits,
    ) {
        let mut cache = lock(&self.cache);
        // A cache, not the truth: when it reaches the table's bound it starts over.
        if cache.len() >= limits.max_sessions.max(1) {
            cache.clear();
        }
        cache.insert(
            hash,
            Cached {
                owner: owner.clone(),
                version,
                checked: Instant::now(),
            },
        );
    }

    /// Takes every answer waiting for this replica's streams and writes it to its stream.
    async fn drain_outbox(&self) -> Result<(), PostgresSessionsError> {
        let client = self.pool.get().await?;
        let mut rows = client
            .query(
                "DELETE FROM mcp_outbox WHERE holder = $1
                 RETURNING id, session_hash, message,
                           created_at > now() - make_interval(secs => $2)",
                &[&self.replica, &OUTBOX_TTL.as_secs_f64()],
            )
            .await?;
        rows.sort_by_key(|row| row.get::<_, i64>(0));
        for row in rows {
            let fresh: bool = row.get(3);
            let Ok(hash) = <[u8; 32]>::try_from(row.get::<_, &[u8]>(1)) else {
                continue;
            };
            if fresh {
                self.write_to_stream(hash, row.get(2));
            }
        }
        Ok(())
    }

    fn write_to_stream(&self, hash: [u8; 32], message: &[u8]) {
        let sender = lock(&self.streams).get(&hash).cloned();
        let Some(sender) = sender else {
            // The stream ended; its row should go too (idempotent if it already has).
            let _ = self.removals.send(hash);
            return;
        };
        let event = sse::event("message", message);
        match sender.try_send(event) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(event)) => {
                // A client reading slowly: wait a little, off the notification path.
                tokio::spawn(async move {
                    let _ = sender.send_timeout(event, SLOW_STREAM_GRACE).await;
                });
            }
        }
    }

    async fn heartbeat(&self) -> Result<(), PostgresSessionsError> {
        let client = self.pool.get().await?;
        let refreshed = client
            .execute(
                "UPDATE mcp_replica SET heartbeat_at = now() WHERE replica_id = $1",
                &[&self.replica],
            )
            .await?;
        if refreshed == 0 {
            // Another replica found us dead (a long pause) and deleted our streams' rows:
            // end the streams so their clients reconnect, and come back.
            tracing::warn!("this replica was presumed dead; closing its SSE streams");
            lock(&self.streams).clear();
            client
                .execute(
                    "INSERT INTO mcp_replica (replica_id) VALUES ($1)
                     ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = now()",
                    &[&self.replica],
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes dead replicas (with their streams and answers), expired sessions and old
    /// outbox rows. Any replica may run it; it is idempotent.
    async fn sweep(&self) -> Result<(), PostgresSessionsError> {
        let client = self.pool.get().await?;
        let dead_after = self.settings.replica_timeout.as_secs_f64() * 2.0;
        client
            .execute(
                "DELETE FROM mcp_replica
                  WHERE heartbeat_at < now() - make_interval(secs => $1)",
                &[&dead_after],
            )
            .await?;
        client
            .execute(
                "DELETE FROM mcp_session WHERE kind = 0 AND expires_at <= now()",
                &[],
            )
            .await?;
        client
            .execute(
                "DELETE FROM mcp_outbox WHERE created_at < now() - make_interval(secs => $1)",
                &[&OUTBOX_TTL.as_secs_f64()],
            )
            .await?;
        Ok(())
    }

    async fn forget_stream(&self, hash: &[u8; 32]) -> Result<(), PostgresSessionsError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM mcp_session WHERE id_hash = $1 AND holder = $2",
                &[&hash.as_slice(), &self.replica],
            )
            .await?;
        Ok(())
    }

    async fn on_notification(&self, notification: &Notification) {
        if notification.channel() == END_CHANNEL {
            if let Some(hash) = parse_hash(notification.payload()) {
                lock(&self.cache).remove(&hash);
            }
        } else if notification.channel() == self.channel
            && let Err(error) = self.drain_outbox().await
        {
            tracing::warn!(%error, "could not fetch SSE answers from the outbox");
        }
    }
}

/// The dedicated LISTEN connection: notifications arrive on `notifications` until the
/// connection ends.
struct Listener {
    /// Kept alive: dropping the client closes the connection.
    _client: tokio_postgres::Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
}

impl Listener {
    async fn open<T>(config: &Config, tls: T, channel: &str) -> Result<Self, tokio_postgres::Error>
    where
        T: MakeTlsConnect<Socket> + Send + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let (client, mut connection) = config.connect(tls).await?;
        let (sender, notifications) = mpsc::unbounded_channel();
        // tokio-postgres hands notifications only to `poll_message`; this task drives the
        // connection and forwards them.
        tokio::spawn(async move {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(notification)) => {
                        if sender.send(notification).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "the session LISTEN connection failed");
                        return;
                    }
                }
            }
        });
        // Both channel names are ours: fixed text and hex digits.
        client
            .batch_execute(&format!("LISTEN {channel}; LISTEN {END_CHANNEL};"))
            .await?;
        Ok(Listener {
            _client: client,
            notifications,
        })
    }
}

/// Handles notifications; reconnects (with backoff) when the connection ends, then
/// catches up: notifications sent meanwhile are lost, so the cache is cleared and the
/// outbox drained.
async fn listen<T>(inner: Arc<Inner>, config: Config, tls: T, mut listener: Listener)
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    loop {
        while let Some(notification) = listener.notifications.recv().await {
            inner.on_notification(&notification).await;
        }
        let mut backoff = Duration::from_millis(100);
        listener = loop {
            tokio::time::sleep(backoff).await;
            match Listener::open(&config, tls.clone(), &inner.channel).await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(%error, "could not reopen the session LISTEN connection");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        lock(&inner.cache).clear();
        if let Err(error) = inner.drain_outbox().await {
            tracing::warn!(%error, "could not fetch SSE answers from the outbox");
        }
    }
}

/// Heartbeats, polls the outbox, sweeps, and deletes the rows of ended streams.
async fn maintain(inner: Arc<Inner>, mut removed: mpsc::UnboundedReceiver<[u8; 32]>) {
    let mut ticker = tokio::time::interval(inner.settings.heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                ticks = ticks.wrapping_add(1);
                if let Err(error) = inner.heartbeat().await {
                    tracing::warn!(%error, "session heartbeat failed");
                }
                if let Err(error) = inner.drain_outbox().await {
                    tracing::warn!(%error, "could not fetch SSE answers from the outbox");
                }
                if ticks.is_multiple_of(SWEEP_EVERY) && let Err(error) = inner.sweep().await {
                    tracing::warn!(%error, "session sweep failed");
                }
            }
            Some(hash) = removed.recv() => {
                if let Err(error) = inner.forget_stream(&hash).await {
                    tracing::warn!(%error, "could not delete an ended SSE stream's row");
                }
            }
        }
    }
}

/// SHA-256 of a session id: all the database ever sees of it.
fn hash_id(id: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// The hash in an end-of-session notification (64 hex digits).
fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(hash)
}

/// A limit as a SQL `bigint`.
fn count(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn unavailable(error: impl Into<PostgresSessionsError>) -> Unavailable {
    let error = error.into();
    tracing::warn!(%error, "the session directory is unavailable");
    Unavailable
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a single map operation: a poisoned lock still
    // guards a consistent map.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_derived_from_their_names() {
        let key = |name: &str| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest.as_ref()[..8]);
            i64::from_be_bytes(first)
        };
        assert_eq!(key("mcp-api sessions"), MIGRATION_LOCK);
        assert_eq!(key("mcp-api sessions open"), OPEN_LOCK);
    }

    #[test]
    fn notification_hashes_round_trip_and_junk_is_ignored() {
        let hash = hash_id("abc");
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_hash(&hex), Some(hash));
        assert_eq!(parse_hash("zz"), None);
        assert_eq!(parse_hash(&"g".repeat(64)), None);
        assert_ne!(hash_id("abc"), hash_id("abd"));
    }
}
