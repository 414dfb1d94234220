//! [`PostgresStore`]: the [`MemoryStore`] over PostgreSQL, for several
//! replicas of the memory server on one database.
//!
//! The design notes are on [`PostgresStore`]; the schema is in
//! `schema_v1.sql`; how each replica's search index follows the others'
//! writes (and why it reads `changed_xid >= xmin` rather than the rows after
//! the last row id) is in `sync.rs`.

mod access;
mod connect;
mod error;
mod read;
mod schema;
mod sync;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use self::access::{AccessQueue, Retention};
use self::connect::Target;
use self::error::{PgResult, retry};
use self::sync::IndexSync;
use self::write::Quota;
use super::ids::IdGenerator;
use super::limits::check_access;
use super::search::{SearchEngine, SearchParams};
use super::{
    Access, AccessLogEntry, ActivityDay, Clock, ErrorKind, Limits, ListQuery, Memory, MemoryId,
    MemoryState, MemoryStore, NewMemory, Owner, Page, SearchHit, SearchQuery, Stats, StoreError,
    SystemClock, now_unix_ms,
};
use crate::mcp::{PostgresSessions, PostgresSessionsError};

/// How a [`PostgresStore`] connects and behaves: limits, clock, pool, timeouts,
/// search parameters, access-log retention, schema, extra root CA.
///
/// ```
/// use std::time::Duration;
///
/// use mcp_api::store::{Limits, PostgresOptions};
///
/// let options = PostgresOptions::new()
///     .with_limits(Limits::default())
///     .with_pool_size(16)
///     .with_statement_timeout(Duration::from_secs(10))
///     .with_schema("memories");
/// assert_eq!(options.pool_size(), 16);
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    limits: Limits,
    clock: Arc<dyn Clock>,
    pool_size: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    statement_timeout: Duration,
    search: SearchParams,
    access_log_retention: Option<Duration>,
    schema: Option<SchemaName>,
    invalid_schema: bool,
    root_ca_file: Option<PathBuf>,
    sync_interval: Duration,
    application_name: String,
}

impl PostgresOptions {
    /// Default limits, the system clock, 8 connections, 5 s to get a
    /// connection and 5 s to open one, a 30 s statement timeout, 90 days of
    /// access log, the connection's own `search_path`, the webpki roots, a
    /// catch-up of the search index at least every 250 ms.
    #[must_use]
    pub fn new() -> Self {
        Self {
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            pool_size: 8,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            search: SearchParams::default(),
            access_log_retention: Some(Duration::from_secs(90 * 24 * 60 * 60)),
            schema: None,
            invalid_schema: false,
            root_ca_file: None,
            sync_interval: Duration::from_millis(250),
            application_name: "mcp-api".to_owned(),
        }
    }

    /// Sets the input limits and quotas.
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

    /// Sets how many connections the pool keeps at most; at least 1. Each
    /// replica opens one more, to listen for changes.
    #[must_use]
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }

    /// Sets how long a call waits for a free connection before failing with
    /// [`ErrorKind::Unavailable`].
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets how long opening a connection may take.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets PostgreSQL's `statement_timeout` for every connection; a statement
    /// running longer fails with [`ErrorKind::Busy`].
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Sets the search engine's ranking parameters (the defaults are tuned).
    #[must_use]
    pub fn with_search_params(mut self, search: SearchParams) -> Self {
        self.search = search;
        self
    }

    /// Sets how long access-log entries are kept (default 90 days); `None`
    /// keeps them forever.
    #[must_use]
    pub fn with_access_log_retention(mut self, retention: Option<Duration>) -> Self {
        self.access_log_retention = retention;
        self
    }

    /// Puts the tables in this schema (created if needed) through every
    /// connection's `search_path`. A name is lowercase ASCII letters, digits
    /// and `_`, starting with a letter or `_`, at most 63 bytes;
    /// [`PostgresStore::connect`] refuses any other.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        match SchemaName::new(schema.into()) {
            Some(schema) => {
                self.schema = Some(schema);
                self.invalid_schema = false;
            }
            None => {
                self.schema = None;
                self.invalid_schema = true;
            }
        }
        self
    }

    /// Trusts the CA certificates in this PEM file too, besides the webpki
    /// roots (for a database with a private CA).
    #[must_use]
    pub fn with_root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_ca_file = Some(path.into());
        self
    }

    /// Sets how often the search index catches up with other replicas' writes
    /// when no notification arrives (default 250 ms).
    #[must_use]
    pub fn with_sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets the `application_name` of the connections (default `mcp-api`);
    /// the listening connection's is this followed by ` listener`.
    #[must_use]
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// The input limits.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The most connections the pool keeps.
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("limits", &self.limits)
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("search", &self.search)
            .field("access_log_retention", &self.access_log_retention)
            .field("schema", &self.schema)
            .field("root_ca_file", &self.root_ca_file)
            .field("sync_interval", &self.sync_interval)
            .field("application_name", &self.application_name)
            .finish_non_exhaustive()
    }
}

/// A schema name that is safe to put into SQL and connection options unquoted.
#[derive(Debug, Clone)]
struct SchemaName(String);

impl SchemaName {
    fn new(name: String) -> Option<Self> {
        let mut bytes = name.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == b'_');
        let rest_ok =
            bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        (first_ok && rest_ok && name.len() <= 63).then_some(Self(name))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// A [`MemoryStore`] on PostgreSQL, for one or many replicas of the server.
///
/// Cloning is cheap and shares the pool. The background tasks (access-log
/// writer, index follower) stop when the last clone is dropped; call
/// [`flush`](Self::flush) first to be sure queued access-log entries are
/// written. Methods must be awaited inside a Tokio runtime; outside one they
/// fail with [`ErrorKind::Unavailable`].
///
/// # Design
///
/// - **Stateless replicas**: PostgreSQL holds every memory, category, usage
///   counter and access-log entry; a replica's memory holds only its search
///   index and caches derived from the database. Any request can reach any
///   replica.
/// - **Owner scoping**: as in the SQLite store, each owner gets a row id;
///   every table carries it, every index a query uses starts with it, every
///   statement names it, and composite foreign keys and triggers keep rows of
///   one owner from pointing at another's.
/// - **Writes**: one transaction each, which first locks the owner's row
///   (`SELECT … FOR UPDATE`), so one owner's writes are serialised across all
///   replicas: the per-owner quotas and the near-duplicate check hold however
///   many replicas write at once. Serialization failures and deadlocks are
///   retried a few times.
/// - **Search on every replica**: each replica runs the same in-process engine
///   as the SQLite store (per-owner BM25F with neighbour context), built from
///   the table at connect (streamed, with progress in the log) and caught up
///   with the rows changed since: right after each write through this replica
///   (so a replica reads its own writes), on each `NOTIFY` that every write
///   sends at commit (a dedicated `LISTEN` connection, reconnected with
///   backoff), at least every 250 ms, and before each search: a search on any
///   replica sees every write committed before it began, through any replica
///   (a client that adds a memory and searches at once, each request landing on
///   another replica, finds it). Concurrent searches share one catch-up, which
///   costs a few round trips when nothing changed.
/// - **Access log, written behind**: reads queue their entries; a background
///   task writes whatever is queued with one multi-row `INSERT`.
///   [`access_log`](MemoryStore::access_log), [`stats`](MemoryStore::stats)
///   and [`activity`](MemoryStore::activity) flush this replica's queue first.
///   Entries past the retention are deleted every ten minutes.
/// - **Failures**: a refused, dropped or terminated connection is
///   [`ErrorKind::Unavailable`] (the REST API answers 503 with `Retry-After`);
///   the pool opens new connections once PostgreSQL is back, with no restart.
/// - **TLS**: `sslmode=disable`, `prefer` (default) or `require` in the
///   connection string; with TLS, rustls verifies the server against the
///   webpki roots and [`PostgresOptions::with_root_ca_file`]. The password is
///   never logged or put in an error.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    /// Where the pool connects, for the connections the MCP sessions open themselves.
    target: Target,
    application_name: String,
    sync: Arc<IndexSync>,
    engine: Arc<SearchEngine>,
    access: AccessQueue,
    /// Not `Sync` by itself; held only to draw a batch's ids.
    ids: Mutex<IdGenerator>,
    /// Owner row ids by subject; a subject's row id never changes.
    owners: RwLock<HashMap<String, i64>>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    /// Dropped with the store: stops the index follower.
    _stop: oneshot::Sender<()>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or `key=value`
    /// string, with `sslmode=disable|prefer|require`), migrates its schema
    /// (one replica at a time, under an advisory lock), builds the search index
    /// from it and starts following other replicas' writes.
    ///
    /// ```no_run
    /// use mcp_api::store::{MemoryStore, NewMemory, Owner, PostgresOptions, PostgresStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect(
    ///     "postgres://mcp@db.internal/memories?sslmode=require",
    ///     PostgresOptions::new(),
    /// )
    /// .await?;
    /// let owner = Owner::new("user-1")?;
    /// store.add(&owner, vec![NewMemory::new("Likes green tea", "client-a")]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a malformed connection string, schema
    /// name or CA file; [`ErrorKind::Unavailable`] if PostgreSQL cannot be
    /// reached; [`ErrorKind::UnsupportedSchema`] if a newer version migrated
    /// the database; [`ErrorKind::Backend`] if a migration fails.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        if options.invalid_schema {
            return Err(StoreError::invalid_input(
                "schema",
                "must be lowercase ASCII letters, digits and underscores, at most 63 bytes",
            ));
        }
        let target = Target::new(url, &options)?;
        let mut migrator = tokio::time::timeout(options.connect_timeout, target.connect(None))
            .await
            .map_err(|elapsed| StoreError::with_source(ErrorKind::Unavailable, elapsed))??;
        schema::migrate(
            &mut migrator,
            options.schema.as_ref().map(SchemaName::as_str),
        )
        .await?;
        drop(migrator);
        let pool = target.pool(
            options.pool_size,
            options.acquire_timeout,
            options.connect_timeout,
        )?;
        let engine = Arc::new(SearchEngine::new(options.search));
        let sync = Arc::new(IndexSync::load(pool.clone(), Arc::clone(&engine)).await?);
        let (stop, stopped) = oneshot::channel();
        let listener = target.named(&format!("{} listener", options.application_name));
        tokio::spawn(sync::run(
            Arc::clone(&sync),
            listener,
            options.sync_interval,
            stopped,
        ));
        let access = AccessQueue::start(
            pool.clone(),
            Retention {
                keep: options.access_log_retention,
                clock: Arc::clone(&options.clock),
            },
        );
        tracing::debug!(pool_size = options.pool_size, "connected the memory store");
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                target,
                application_name: options.application_name,
                sync,
                engine,
                access,
                ids: Mutex::new(IdGenerator::default()),
                owners: RwLock::new(HashMap::new()),
                limits: options.limits,
                clock: options.clock,
                _stop: stop,
            }),
        })
    }

    /// Starts the MCP session directory on this store's database, with its pool, TLS
    /// setting and schema, for [`MemoryServer::with_sessions`](crate::MemoryServer::with_sessions):
    /// Streamable HTTP sessions and legacy SSE streams served by every replica. Its LISTEN
    /// connection is one more connection besides the pool.
    ///
    /// # Errors
    ///
    /// The database could not be reached or refused the sessions' tables.
    pub async fn start_sessions(&self) -> Result<PostgresSessions, PostgresSessionsError> {
        let listen = self
            .shared
            .target
            .named(&format!("{} sessions", self.shared.application_name));
        listen.start_sessions(self.shared.pool.clone()).await
    }

    /// Starts the memory page's shared sessions on this store's pool and schema, for
    /// [`App::with_sessions`](crate::app::App::with_sessions): a person signed in through
    /// one replica is signed in on every replica.
    ///
    /// # Errors
    ///
    /// The database could not be reached or refused the page's tables.
    #[cfg(feature = "app")]
    pub async fn start_page_sessions(
        &self,
    ) -> Result<crate::app::PostgresPageSessions, crate::app::PostgresPageSessionsError> {
        crate::app::PostgresPageSessions::start(self.shared.pool.clone()).await
    }

    /// The limits this store enforces.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Waits until every access-log entry queued so far through this store is
    /// written. Reading the access log, stats or activity flushes first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] outside a Tokio runtime.
    pub async fn flush(&self) -> Result<(), StoreError> {
        runtime()?;
        self.shared.access.flush().await
    }

    /// Brings this replica's search index up to date with every write
    /// committed so far, through any replica. Writes through this store do so
    /// by themselves; other replicas' writes are caught up within a second.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] if PostgreSQL cannot be reached.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        runtime()?;
        self.shared.sync.catch_up().await
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object, StoreError> {
        runtime()?;
        self.shared.pool.get().await.pg()
    }

    fn now(&self) -> i64 {
        now_unix_ms(&*self.shared.clock)
    }

    fn quota(&self) -> Quota {
        Quota {
            memories: self.shared.limits.max_memories_per_owner,
            bytes: self.shared.limits.max_bytes_per_owner,
        }
    }

    /// The owner's row id, if the owner ever stored anything.
    async fn owner_id(&self, client: &Object, owner: &Owner) -> Result<Option<i64>, StoreError> {
        if let Some(&id) = self
            .shared
            .owners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(owner.as_str())
        {
            return Ok(Some(id));
        }
        let id = write::owner_id(client, owner).await?;
        if let Some(id) = id {
            self.remember_owner(owner, id);
        }
        Ok(id)
    }

    fn remember_owner(&self, owner: &Owner, id: i64) {
        self.shared
            .owners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(owner.as_str().to_owned(), id);
    }

    /// After a committed write: this replica's index catches up with it. The
    /// write stands either way; if PostgreSQL went away just now, the
    /// follower catches up once it is back.
    async fn indexed(&self) {
        if let Err(error) = self.shared.sync.catch_up().await {
            tracing::warn!(%error, "cannot index a committed memory write yet");
        }
    }

    /// `count` new memory ids created at `now`, in increasing order.
    fn new_ids(&self, now: i64, count: usize) -> Vec<MemoryId> {
        let ids = self
            .shared
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (0..count).map(|_| ids.next(now)).collect()
    }

    fn record_behind(&self, owner: &Owner, ids: Vec<MemoryId>, access: Access) {
        self.shared.access.record(owner, ids, access, self.now());
    }
}

/// The Tokio runtime; [`ErrorKind::Unavailable`] outside one.
fn runtime() -> Result<(), StoreError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|error| StoreError::with_source(ErrorKind::Unavailable, error))
}

impl MemoryStore for PostgresStore {
    async fn add(
        &self,
        owner: &Owner,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<Memory>, StoreError> {
        let memories = self.shared.limits.check_new_memories(memories)?;
        if memories.is_empty() {
            return Ok(Vec::new());
        }
        let (memories, quota) = (&memories, self.quota());
        let (added, owner_id) = retry(move || async move {
            let mut client = self.client().await?;
            let now = self.now();
            let ids = self.new_ids(now, memories.len());
            write::add(&mut client, &ids, now, owner, memories, quota).await
        })
        .await?;
        self.remember_owner(owner, owner_id);
        self.indexed().await;
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
        let memory = self.memory(owner, id).await?;
        if memory.is_some() {
            self.record_behind(owner, vec![id], access);
        }
        Ok(memory)
    }

    async fn memory(&self, owner: &Owner, id: MemoryId) -> Result<Option<Memory>, StoreError> {
        let client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(None);
        };
        Ok(read::memory_by_id(&client, owner, owner_id, id)
            .await?
            .map(|(_, memory)| memory))
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
        let (text, metadata_json, quota) = (&text, metadata_json.as_deref(), self.quota());
        let updated = retry(move || async move {
            let mut client = self.client().await?;
            write::update_text(
                &mut client,
                self.now(),
                owner,
                id,
                text,
                metadata_json,
                quota,
            )
            .await
        })
        .await?;
        if updated.is_some() {
            self.indexed().await;
        }
        Ok(updated)
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
        let changed = retry(move || async move {
            let mut client = self.client().await?;
            write::set_state(&mut client, self.now(), owner, ids, state).await
        })
        .await?;
        if changed > 0 {
            self.indexed().await;
        }
        tracing::debug!(count = changed, %state, "changed memory states");
        Ok(changed)
    }

    async fn delete(&self, owner: &Owner, ids: &[MemoryId]) -> Result<u64, StoreError> {
        self.shared.limits.check_ids(ids)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let deleted = retry(move || async move {
            let mut client = self.client().await?;
            write::delete(&mut client, self.now(), owner, ids).await
        })
        .await?;
        if deleted > 0 {
            self.indexed().await;
        }
        tracing::debug!(count = deleted, "deleted memories");
        Ok(deleted)
    }

    async fn delete_all(&self, owner: &Owner) -> Result<u64, StoreError> {
        let deleted = retry(move || async move {
            let mut client = self.client().await?;
            write::delete_all(&mut client, self.now(), owner).await
        })
        .await?;
        if deleted > 0 {
            self.indexed().await;
        }
        tracing::debug!(count = deleted, "deleted all memories of an owner");
        Ok(deleted)
    }

    async fn list(&self, owner: &Owner, query: &ListQuery) -> Result<Page<Memory>, StoreError> {
        let query = self.shared.limits.check_list_query(query)?;
        let mut client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(Page::new(Vec::new(), 0, query.page, query.size));
        };
        let transaction = read_snapshot(&mut client).await?;
        let page = read::list(&transaction, owner, owner_id, &query).await?;
        transaction.commit().await.pg()?;
        Ok(page)
    }

    async fn search(
        &self,
        owner: &Owner,
        query: &SearchQuery,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let query = self.shared.limits.check_search_query(query)?;
        // Read-your-writes across replicas: every write committed before this search,
        // through any replica, is in the index first (one catch-up, shared by the
        // searches waiting for it).
        self.shared.sync.catch_up().await?;
        let client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(Vec::new());
        };
        let hits = read::search(&client, &self.shared.engine, owner, owner_id, &query).await?;
        tracing::debug!(count = hits.len(), "searched memories");
        Ok(hits)
    }

    async fn categories(&self, owner: &Owner) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(Vec::new());
        };
        read::categories(&client, owner_id).await
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
        let mut client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(None);
        };
        let transaction = read_snapshot(&mut client).await?;
        let log = read::access_log(&transaction, owner_id, id, page, size).await?;
        transaction.commit().await.pg()?;
        Ok(log)
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
        let client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(0);
        };
        let live = read::live_ids(&client, owner_id, ids).await?;
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
        // The hits were live when read; the writer checks again.
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
        self.shared.sync.catch_up().await?;
        let mut client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(None);
        };
        let transaction = read_snapshot(&mut client).await?;
        let related = read::related(
            &transaction,
            &self.shared.engine,
            owner,
            owner_id,
            id,
            limit,
        )
        .await?;
        transaction.commit().await.pg()?;
        Ok(related)
    }

    async fn stats(&self, owner: &Owner) -> Result<Stats, StoreError> {
        self.flush().await?;
        let mut client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(read::empty_stats());
        };
        let transaction = read_snapshot(&mut client).await?;
        let stats = read::stats(&transaction, owner_id).await?;
        transaction.commit().await.pg()?;
        Ok(stats)
    }

    async fn activity(&self, owner: &Owner, since: i64) -> Result<Vec<ActivityDay>, StoreError> {
        self.flush().await?;
        let client = self.client().await?;
        let Some(owner_id) = self.owner_id(&client, owner).await? else {
            return Ok(Vec::new());
        };
        read::activity(&client, owner_id, since, self.now()).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.pg().map(drop)
    }
}

/// A read-only transaction in one snapshot, for reads of several statements.
async fn read_snapshot(
    client: &mut Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .pg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["memories", "_t1", "t_123_abc"] {
            assert!(SchemaName::new(good.to_owned()).is_some(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "Memories",
            "a-b",
            "a\"b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(SchemaName::new(bad.to_owned()).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_invalid_schema_name_is_refused_before_connecting() {
        let options = PostgresOptions::new().with_schema("x; DROP TABLE owners");
        let error = PostgresStore::connect("postgres://127.0.0.1:1/none", options)
            .await
            .unwrap_err();
        assert!(matches!(
            error.kind(),
            ErrorKind::InvalidInput {
                field: "schema",
                ..
            }
        ));
    }
}
