//! [`SqliteStore`]: the [`ProviderStore`] over one embedded SQLite file.

mod codec;
mod pool;
mod provider_store;
mod queries;
mod schema;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Transaction, params};

use self::codec::{hash_blob, time};
use self::pool::{DbResult as _, ReadPool, WriteQueue};
use crate::authn::{BoxFuture, LoginStateStore, StateStoreError};
use crate::secret::SecretHash;
use crate::store::{StoreError, StoreErrorKind};

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// How a [`SqliteStore`] is opened.
///
/// ```
/// use std::time::Duration;
/// use oidc_core::store::SqliteOptions;
///
/// let options = SqliteOptions::new()
///     .with_read_connections(2)
///     .with_busy_timeout(Duration::from_secs(2));
/// assert_eq!(options.read_connections(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    read_connections: usize,
    busy_timeout: Duration,
}

impl SqliteOptions {
    /// Two read connections and a 5 s busy timeout.
    #[must_use]
    pub fn new() -> Self {
        SqliteOptions {
            read_connections: 2,
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// Sets how many read-only connections to keep; at least 1.
    #[must_use]
    pub fn with_read_connections(mut self, connections: usize) -> Self {
        self.read_connections = connections.max(1);
        self
    }

    /// Sets how long a statement waits for a lock held by another connection or process.
    #[must_use]
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The number of read-only connections.
    pub fn read_connections(&self) -> usize {
        self.read_connections
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions::new()
    }
}

/// The provider's state in one SQLite file.
///
/// - **Durability**: write-ahead logging with `synchronous=FULL`, so a transaction that
///   returned (an issued code, grant or refresh token) survives `kill -9` and power loss.
/// - **Atomicity**: every method runs in one transaction; writes take the write lock up
///   front (`BEGIN IMMEDIATE`), so the compare-and-swap steps have exactly one winner,
///   also between processes sharing the file.
/// - **Integrity**: foreign keys on, `secure_delete` on (deleted rows are overwritten),
///   the file is created with mode 0600 on Unix (it holds the signing keys), and every
///   value is parsed again when read.
/// - **Concurrency**: one write connection and a small pool of read connections; all
///   blocking work runs on Tokio's blocking pool, so callers never block a runtime thread.
/// - **Schema**: versioned with `user_version`; opening migrates, and a file written by a
///   newer version is refused.
///
/// It also stores the state of login methods ([`LoginStateStore`]), keyed by the SHA-256
/// of their keys.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use oidc_core::store::{ProviderStore, SqliteStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("provider.db"))?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(async {
///     store.health().await?;
///     assert_eq!(store.load_keys().await?.version, 0);
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    reads: ReadPool,
    writes: WriteQueue,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default [`SqliteOptions`],
    /// and migrates its schema. This does blocking file I/O: call it at start-up or from
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Backend`] if the file cannot be opened or switched to WAL mode,
    /// [`StoreErrorKind::UnsupportedSchema`] if a newer version wrote it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteStore::open_with_options(path, &SqliteOptions::new())
    }

    /// Opens the database at `path` with `options`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_options(
        path: impl AsRef<Path>,
        options: &SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut writer = open_writer(path, options.busy_timeout)?;
        restrict_permissions(path);
        schema::migrate(&mut writer)?;
        let readers = (0..options.read_connections)
            .map(|_| open_reader(path, options.busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                reads: ReadPool::new(readers),
                writes: WriteQueue::new(writer),
            }),
        })
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.shared.reads.run(work).await
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.shared.writes.run(work).await
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
        return Err(StoreErrorKind::Backend.into());
    }
    connection.pragma_update(None, "synchronous", "FULL").db()?;
    Ok(connection)
}

/// A read-only connection (`query_only`, so a bug cannot write through it).
fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).db()?;
    configure(&connection, busy_timeout)?;
    connection.pragma_update(None, "query_only", true).db()?;
    Ok(connection)
}

/// Settings every connection needs.
fn configure(connection: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    connection.busy_timeout(busy_timeout).db()?;
    connection.pragma_update(None, "foreign_keys", true).db()?;
    connection.pragma_update(None, "secure_delete", true).db()?;
    connection
        .pragma_update(None, "trusted_schema", false)
        .db()?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(())
}

/// The database holds private keys: readable by its owner only.
#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(%error, "could not restrict the provider database's permissions");
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

/// The key a login method's state is stored under.
fn login_state_key(key: &str) -> [u8; 32] {
    hash_blob(&SecretHash::of(key))
}

impl LoginStateStore for SqliteStore {
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StateStoreError>> {
        let key = login_state_key(key);
        Box::pin(async move {
            self.write(move |tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO login_states (key, value, expires_at) VALUES (?1, ?2, ?3)",
                    params![key, value, time(expires_at)],
                )
                .db()?;
                Ok(())
            })
            .await
            .map_err(|error| StateStoreError(error.to_string()))
        })
    }

    fn take(&self, key: &str, now: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>> {
        let key = login_state_key(key);
        Box::pin(async move {
            self.write(move |tx| {
                let row: Option<(Vec<u8>, i64)> = tx
                    .query_row(
                        "DELETE FROM login_states WHERE key = ?1 RETURNING value, expires_at",
                        params![key],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .db()?;
                Ok(row.and_then(|(value, expires_at)| (expires_at > time(now)).then_some(value)))
            })
            .await
            .map_err(|error| StateStoreError(error.to_string()))
        })
    }
}
