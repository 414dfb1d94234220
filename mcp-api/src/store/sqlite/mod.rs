//! [`SqliteStore`]: the [`MemoryStore`] over an embedded SQLite file.
//!
//! The design notes are on [`SqliteStore`]; the schema is in `schema_v1.sql`.

mod pool;
mod read;
mod row;
mod schema;
mod write;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

use self::pool::{ReadPool, Retention, WriteQueue, Written};
use self::row::{DbResult, SetupError};
use self::write::Analysed;
use super::limits::check_access;
use super::search::{SearchEngine, SearchParams};
use super::{
    Access, AccessLogEntry, ActivityDay, Clock, ErrorKind, Limits, ListQuery, Memory, MemoryId,
    MemoryState, MemoryStore, NewMemory, Owner, Page, SearchHit, SearchQuery, Stats, StoreError,
    SystemClock, now_unix_ms,
};

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// How a [`SqliteStore`] is opened: limits, clock, pool size, busy timeout.
///
/// ```
/// use std::time::Duration;
///
/// use mcp_api::store::{Limits, SqliteOptions};
///
/// let options = SqliteOptions::new()
///     .with_limits(Limits::default())
///     .with_clock(jwks_verify::ManualClock::at_unix_ms(1_700_000_000_000))
///     .with_read_connections(2)
///     .with_busy_timeout(Duration::from_secs(2));
/// assert_eq!(options.read_connections(), 2);
/// ```
#[derive(Clone)]
pub struct SqliteOptions {
    limits: Limits,
    clock: Arc<dyn Clock>,
    read_connections: usize,
    busy_timeout: Duration,
    search: SearchParams,
    access_log_retention: Option<Duration>,
}

impl SqliteOptions {
    /// Default limits, the system clock, 4 read connections, a 5 s busy timeout.
    #[must_use]
    pub fn new() -> Self {
        Self {
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            search: SearchParams::default(),
            access_log_retention: Some(Duration::from_secs(90 * 24 * 60 * 60)),
        }
    }

    /// Sets how long access-log entries are kept (default 90 days); `None`
    /// keeps them forever. The writer deletes older entries with its first
    /// write after opening and then every ten minutes.
    #[must_use]
    pub fn with_access_log_retention(mut self, retention: Option<Duration>) -> Self {
        self.access_log_retention = retention;
        self
    }

    /// Sets the search engine's ranking parameters (the defaults are tuned).
    #[must_use]
    pub fn with_search_params(mut self, search: SearchParams) -> Self {
        self.search = search;
        self
    }

    /// Sets the input limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets where timestamps (and the time part of ids) come from.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets how many read-only connections to keep; at least 1.
    #[must_use]
    pub fn with_read_connections(mut self, read_connections: usize) -> Self {
        self.read_connections = read_connections.max(1);
        self
    }

    /// Sets how long a statement waits for a lock held by another process
    /// before failing with [`ErrorKind::Busy`].
    #[must_use]
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// The input limits.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many read-only connections the store keeps.
    #[must_use]
    pub fn read_connections(&self) -> usize {
        self.read_connections
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("limits", &self.limits)
            .field("read_connections", &self.read_connections)
            .field("busy_timeout", &self.busy_timeout)
            .field("search", &self.search)
            .field("access_log_retention", &self.access_log_retention)
            .finish_non_exhaustive()
    }
}

/// A [`MemoryStore`] in one SQLite database file.
///
/// Cloning is cheap and shares the connections. The connections close when
/// the last clone is dropped. Methods must be awaited inside a Tokio runtime
/// (any flavour); outside one they fail with [`ErrorKind::Unavailable`]. A
/// write whose future is dropped mid-way still completes or rolls back as a
/// whole.
///
/// # Design
///
/// - **Durability**: WAL journal with `synchronous=FULL`, so a write that
///   returned `Ok` survives `kill -9` and power loss. SQLite's
///   `secure_delete` is on, so a deleted memory's text is overwritten in the
///   file instead of lingering in free pages.
/// - **Group commit**: one writer thread owns the write connection and
///   commits whatever writes are waiting as one transaction, each in its own
///   savepoint (a failing write rolls back alone). Concurrent writers thus
///   share an fsync; each hears back only after the commit.
/// - **Access log, written behind**: reads (`get`, `record_access`) never
///   wait for a write. Their log entries go to a bounded queue that the
///   writer commits with its next group, without an fsync of their own
///   (`synchronous=NORMAL` for groups holding only such entries), and that is
///   flushed when the store closes. A crash or power loss can lose the entries
///   of the last moments, never a memory. [`access_log`](MemoryStore::access_log)
///   and [`stats`](MemoryStore::stats) flush first, so they see every entry
///   recorded before them. If the queue is full, entries are dropped (and
///   counted in the log) rather than slowing reads.
/// - **Concurrency**: WAL lets a small pool of read-only connections read
///   while the writer writes; SQLite work runs on Tokio's blocking pool and
///   waiting for a connection never blocks a thread.
/// - **Owner scoping**: each owner gets a row id; every table carries it,
///   every index a query uses starts with it, and every statement names it.
///   Composite foreign keys and triggers make it impossible to attach a
///   category or access-log row to another owner's memory or to move a memory
///   to another owner.
/// - **Search**: an in-process engine with one index per owner (own term
///   statistics, so no owner's ranking depends on another's data, and a
///   query's cost grows only with the owner's memories): BM25F over a memory's
///   text and, at lower weight, the memories written just before and after it
///   in the same burst of writes; stop words, possessives, British/American
///   spellings, irregular forms and stemming; a relevance floor. The index
///   is derived: built from the database when the store opens (progress in
///   the log for large databases) and kept current by the writer, which
///   applies each commit's changes in order, so it cannot drift from the
///   database across crashes.
/// - **Near-duplicates**: adding a memory whose text the owner already has
///   (ignoring case, spacing and punctuation; not deleted) returns the
///   existing memory instead of storing a copy.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

/// Fields drop in order: the readers close before the writer, so the writer
/// is the last connection and checkpoints and removes the WAL file on close.
struct Shared {
    reads: ReadPool,
    writes: WriteQueue,
    engine: Arc<SearchEngine>,
    limits: Limits,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with the given
    /// limits and default [`SqliteOptions`], and migrates its schema.
    ///
    /// This does blocking file I/O; call it at startup or from
    /// `spawn_blocking`.
    ///
    /// ```
    /// use mcp_api::store::{Limits, MemoryStore, NewMemory, Owner, SqliteStore};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("memories.db"), Limits::default())?;
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let owner = Owner::new("user-1")?;
    /// let added = runtime.block_on(store.add(
    ///     &owner,
    ///     vec![NewMemory::new("Likes green tea", "client-a")],
    /// ))?;
    /// assert_eq!(added[0].text, "Likes green tea");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Backend`] if the file cannot be opened or switched to WAL
    /// mode, [`ErrorKind::UnsupportedSchema`] if a newer version wrote it.
    pub fn open(path: impl AsRef<Path>, limits: Limits) -> Result<Self, StoreError> {
        Self::open_with_options(path, SqliteOptions::new().with_limits(limits))
    }

    /// Opens (creating if needed) the database at `path` with `options`, and
    /// migrates its schema.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_options(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut writer = open_writer(path, options.busy_timeout)?;
        schema::migrate(&mut writer)?;
        let engine = Arc::new(SearchEngine::new(options.search));
        read::load_engine(&mut writer, &engine)?;
        let readers = (0..options.read_connections)
            .map(|_| open_reader(path, options.busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(
            read_connections = readers.len(),
            "opened the memory database"
        );
        Ok(Self {
            shared: Arc::new(Shared {
                reads: ReadPool::new(readers),
                writes: WriteQueue::start(
                    writer,
                    Arc::clone(&engine),
                    Retention {
                        keep: options.access_log_retention,
                        clock: Arc::clone(&options.clock),
                    },
                )?,
                engine,
                limits: options.limits,
                clock: options.clock,
            }),
        })
    }

    /// The limits this store enforces.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Waits until every write and access-log entry queued so far is
    /// committed. Access-log entries are written behind the reads that make
    /// them; reading the access log or the stats flushes first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] outside a Tokio runtime or once closed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.shared.writes.flush().await
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    fn quota(&self) -> write::Quota {
        write::Quota {
            memories: self.shared.limits.max_memories_per_owner,
            bytes: self.shared.limits.max_bytes_per_owner,
        }
    }

    fn engine(&self) -> Arc<SearchEngine> {
        Arc::clone(&self.shared.engine)
    }
}

impl SqliteStore {
    /// Queues access-log entries behind the read that made them.
    fn record_behind(&self, owner: &Owner, ids: Vec<MemoryId>, access: Access) {
        // The time of the read, not of the later write.
        let (owner, now) = (owner.clone(), now_unix_ms(&*self.shared.clock));
        self.shared.writes.run_behind(move |connection, _| {
            write::record_access(connection, now, &owner, &ids, &access)
                .map(|_| Written::unindexed(()))
        });
    }
}

/// The read-write connection: WAL, full sync, foreign keys, secure delete.
fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).db()?;
    configure(&connection, busy_timeout)?;
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .db()?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::with_source(
            ErrorKind::Backend,
            SetupError("the database cannot use write-ahead logging"),
        ));
    }
    connection.pragma_update(None, "synchronous", "FULL").db()?;
    connection.pragma_update(None, "secure_delete", true).db()?;
    Ok(connection)
}

/// A read-only connection; `query_only` on top, so a bug cannot write through it.
fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).db()?;
    configure(&connection, busy_timeout)?;
    connection.pragma_update(None, "query_only", true).db()?;
    Ok(connection)
}

/// Settings every connection needs.
fn configure(connection: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    connection.busy_timeout(busy_timeout).db()?;
    connection.pragma_update(None, "foreign_keys", true).db()?;
    connection
        .pragma_update(None, "trusted_schema", false)
        .db()?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(())
}

impl MemoryStore for SqliteStore {
    async fn add(
        &self,
        owner: &Owner,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<Memory>, StoreError> {
        let memories = self.shared.limits.check_new_memories(memories)?;
        if memories.is_empty() {
            return Ok(Vec::new());
        }
        let analysed: Vec<Analysed> = memories
            .into_iter()
            .map(|memory| Analysed {
                terms: self.shared.engine.terms(&memory.text),
                memory,
            })
            .collect();
        let (owner, clock, quota) = (owner.clone(), self.clock(), self.quota());
        let added = self
            .shared
            .writes
            .run(move |connection, context| {
                write::add(
                    connection,
                    context,
                    now_unix_ms(&*clock),
                    &owner,
                    analysed,
                    quota,
                )
            })
            .await?;
        tracing::debug!(count = added.len(), "added memories");
        Ok(added)
    }

    async fn get(
        &self,
        owner: &Owner,
        id: MemoryId,
        access: &Access,
    ) -> Result<Option<Memory>, StoreError> {
        let access = check_access(access)?;
        let reader = owner.clone();
        let memory = self
            .shared
            .reads
            .run(move |transaction| read::get(transaction, &reader, id))
            .await?;
        if memory.is_some() {
            self.record_behind(owner, vec![id], access);
        }
        Ok(memory)
    }

    async fn memory(&self, owner: &Owner, id: MemoryId) -> Result<Option<Memory>, StoreError> {
        let reader = owner.clone();
        self.shared
            .reads
            .run(move |transaction| read::get(transaction, &reader, id))
            .await
    }

    async fn update_text(
        &self,
        owner: &Owner,
        id: MemoryId,
        text: String,
        metadata: Option<Map<String, Value>>,
    ) -> Result<Option<Memory>, StoreError> {
        let limits = &self.shared.limits;
        limits.check_text(&text)?;
        let metadata_json = metadata
            .as_ref()
            .map(|metadata| limits.check_metadata(metadata))
            .transpose()?;
        let terms = self.shared.engine.terms(&text);
        let (owner, clock, quota) = (owner.clone(), self.clock(), self.quota());
        self.shared
            .writes
            .run(move |connection, _| {
                write::update_text(
                    connection,
                    now_unix_ms(&*clock),
                    &owner,
                    id,
                    &text,
                    terms,
                    metadata_json.as_deref(),
                    quota,
                )
            })
            .await
    }

    async fn set_state(
        &self,
        owner: &Owner,
        ids: &[MemoryId],
        state: MemoryState,
    ) -> Result<u64, StoreError> {
        if state == MemoryState::Deleted {
            return Err(StoreError::invalid_input(
                "state",
                "use delete to delete memories",
            ));
        }
        self.shared.limits.check_ids(ids)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let (owner, ids, clock) = (owner.clone(), ids.to_vec(), self.clock());
        let changed = self
            .shared
            .writes
            .run(move |connection, _| {
                write::set_state(connection, now_unix_ms(&*clock), &owner, &ids, state)
            })
            .await?;
        tracing::debug!(count = changed, %state, "changed memory states");
        Ok(changed)
    }

    async fn delete(&self, owner: &Owner, ids: &[MemoryId]) -> Result<u64, StoreError> {
        self.shared.limits.check_ids(ids)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let (owner, ids, clock) = (owner.clone(), ids.to_vec(), self.clock());
        let deleted = self
            .shared
            .writes
            .run(move |connection, _| write::delete(connection, now_unix_ms(&*clock), &owner, &ids))
            .await?;
        tracing::debug!(count = deleted, "deleted memories");
        Ok(deleted)
    }

    async fn delete_all(&self, owner: &Owner) -> Result<u64, StoreError> {
        let (owner, clock) = (owner.clone(), self.clock());
        let deleted = self
            .shared
            .writes
            .run(move |connection, _| write::delete_all(connection, now_unix_ms(&*clock), &owner))
            .await?;
        tracing::debug!(count = deleted, "deleted all memories of an owner");
        Ok(deleted)
    }

    async fn list(&self, owner: &Owner, query: &ListQuery) -> Result<Page<Memory>, StoreError> {
        let query = self.shared.limits.check_list_query(query)?;
        let owner = owner.clone();
        self.shared
            .reads
            .run(move |transaction| read::list(transaction, &owner, &query))
            .await
    }

    async fn search(
        &self,
        owner: &Owner,
        query: &SearchQuery,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let query = self.shared.limits.check_search_query(query)?;
        let (owner, engine) = (owner.clone(), self.engine());
        let hits = self
            .shared
            .reads
            .run(move |transaction| read::search(transaction, &engine, &owner, &query))
            .await?;
        tracing::debug!(count = hits.len(), "searched memories");
        Ok(hits)
    }

    async fn categories(&self, owner: &Owner) -> Result<Vec<(String, u64)>, StoreError> {
        let owner = owner.clone();
        self.shared
            .reads
            .run(move |transaction| read::categories(transaction, &owner))
            .await
    }

    async fn access_log(
        &self,
        owner: &Owner,
        id: MemoryId,
        page: u32,
        size: u32,
    ) -> Result<Option<Page<AccessLogEntry>>, StoreError> {
        self.shared.limits.check_page(page, size)?;
        self.flush().await?;
        let owner = owner.clone();
        self.shared
            .reads
            .run(move |transaction| read::access_log(transaction, &owner, id, page, size))
            .await
    }

    async fn record_access(
        &self,
        owner: &Owner,
        ids: &[MemoryId],
        access: &Access,
    ) -> Result<u64, StoreError> {
        let access = check_access(access)?;
        self.shared.limits.check_ids(ids)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let (reader, ids) = (owner.clone(), ids.to_vec());
        let live = self
            .shared
            .reads
            .run(move |transaction| read::live_ids(transaction, &reader, &ids))
            .await?;
        let recorded = live.len() as u64;
        if !live.is_empty() {
            self.record_behind(owner, live, access);
        }
        Ok(recorded)
    }

    async fn search_recorded(
        &self,
        owner: &Owner,
        query: &SearchQuery,
        access: &Access,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let access = check_access(access)?;
        let hits = self.search(owner, query).await?;
        // The hits were live in the search's snapshot; the writer checks again.
        let ids: Vec<MemoryId> = hits.iter().map(|hit| hit.memory.id).collect();
        if !ids.is_empty() {
            self.record_behind(owner, ids, access);
        }
        Ok(hits)
    }

    async fn related(
        &self,
        owner: &Owner,
        id: MemoryId,
        limit: u32,
    ) -> Result<Option<Vec<Memory>>, StoreError> {
        self.shared.limits.check_search_limit(limit)?;
        let (owner, engine) = (owner.clone(), self.engine());
        self.shared
            .reads
            .run(move |transaction| read::related(transaction, &engine, &owner, id, limit))
            .await
    }

    async fn stats(&self, owner: &Owner) -> Result<Stats, StoreError> {
        self.flush().await?;
        let owner = owner.clone();
        self.shared
            .reads
            .run(move |transaction| read::stats(transaction, &owner))
            .await
    }

    async fn activity(&self, owner: &Owner, since: i64) -> Result<Vec<ActivityDay>, StoreError> {
        self.flush().await?;
        let (owner, now) = (owner.clone(), now_unix_ms(&*self.shared.clock));
        self.shared
            .reads
            .run(move |transaction| read::activity(transaction, &owner, since, now))
            .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.shared
            .reads
            .run(|transaction| {
                transaction
                    .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                    .db()
                    .map(drop)
            })
            .await
    }
}
