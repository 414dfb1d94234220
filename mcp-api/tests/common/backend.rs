//! The store backends the behaviour suites run against: SQLite in a temporary
//! directory, and PostgreSQL in a fresh schema of its own, dropped at the end.
//!
//! PostgreSQL is found at `MCP_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). If it cannot be reached the
//! PostgreSQL tests fail, naming the variable; they are never skipped.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
#[cfg(feature = "postgres")]
use std::sync::atomic::{AtomicU64, Ordering};

use jwks_verify::ManualClock;
use mcp_api::store::{Limits, MemoryId, MemoryStore, Owner, SqliteOptions, SqliteStore};
#[cfg(feature = "postgres")]
use mcp_api::store::{PostgresOptions, PostgresStore};
use tempfile::TempDir;

/// A database a test owns, and how to open its store.
pub trait Backend: Sized + Send + Sync + 'static {
    /// The store over it.
    type Store: MemoryStore + Clone + std::fmt::Debug;

    /// A fresh, empty database.
    fn create() -> impl Future<Output = Self>;

    /// Opens (connects) a store on it.
    fn open(&self, limits: Limits, clock: ManualClock) -> impl Future<Output = Self::Store>;

    /// Closes a store, its queued access-log entries written.
    fn close(store: Self::Store) -> impl Future<Output = ()>;

    /// The limits the store enforces.
    fn limits(store: &Self::Store) -> &Limits;

    /// The database's own consistency checks pass.
    fn assert_consistent(&self) -> impl Future<Output = ()>;

    /// A memory row as stored, however deleted: `(text, metadata, state)`,
    /// and how many category and access-log rows still name it.
    fn raw_memory(&self, id: MemoryId) -> impl Future<Output = ((String, String, String), i64)>;

    /// The owner's usage counters: `(memory_count, bytes)`.
    fn usage(&self, owner: &Owner) -> impl Future<Output = (i64, i64)>;
}

/// SQLite in a temporary directory.
pub struct Sqlite {
    pub dir: TempDir,
}

impl Sqlite {
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("memories.db")
    }

    fn connection(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path()).unwrap()
    }
}

impl Backend for Sqlite {
    type Store = SqliteStore;

    async fn create() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn open(&self, limits: Limits, clock: ManualClock) -> SqliteStore {
        let options = SqliteOptions::new()
            .with_limits(limits)
            .with_clock(clock)
            .with_read_connections(2);
        SqliteStore::open_with_options(self.path(), options).unwrap()
    }

    async fn close(store: SqliteStore) {
        drop(store);
    }

    fn limits(store: &SqliteStore) -> &Limits {
        store.limits()
    }

    /// SQLite's own checks: integrity and foreign keys.
    async fn assert_consistent(&self) {
        let connection = self.connection();
        let integrity: String = connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let violations = connection
            .prepare("PRAGMA foreign_key_check")
            .unwrap()
            .query_map([], |_| Ok(()))
            .unwrap()
            .count();
        assert_eq!(violations, 0);
    }

    async fn raw_memory(&self, id: MemoryId) -> ((String, String, String), i64) {
        let connection = self.connection();
        let row = connection
            .query_row(
                "SELECT text, metadata, state FROM memories WHERE id = ?1",
                [id.as_bytes()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        let leftovers = connection
            .query_row(
                "SELECT (SELECT COUNT(*) FROM memory_categories c JOIN memories m ON m.seq = c.memory_seq WHERE m.id = ?1)
                      + (SELECT COUNT(*) FROM access_log a JOIN memories m ON m.seq = a.memory_seq WHERE m.id = ?1)",
                [id.as_bytes()],
                |row| row.get(0),
            )
            .unwrap();
        (row, leftovers)
    }

    async fn usage(&self, owner: &Owner) -> (i64, i64) {
        self.connection()
            .query_row(
                "SELECT memory_count, bytes FROM owners WHERE subject = ?1",
                [owner.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap()
    }
}

/// The PostgreSQL server the tests use. Without an `sslmode` in the URL the
/// tests connect without TLS: the store verifies certificates whenever it uses
/// TLS, and a local test server's is usually self-signed.
#[cfg(feature = "postgres")]
pub fn database_url() -> String {
    let url = std::env::var("MCP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if url.contains("sslmode=") {
        url
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// A plain client on the test database (for checks a store does not offer).
#[cfg(feature = "postgres")]
pub async fn raw_client(schema: Option<&str>) -> tokio_postgres::Client {
    let url = database_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is unreachable at MCP_TEST_DATABASE_URL ({url}): {error}; \
                 start it (service postgresql start) or set MCP_TEST_DATABASE_URL"
            )
        });
    tokio::spawn(connection);
    if let Some(schema) = schema {
        client
            .batch_execute(&format!("SET search_path = {schema}"))
            .await
            .unwrap();
    }
    client
}

/// PostgreSQL, in a schema of the test's own, dropped when this is dropped.
#[cfg(feature = "postgres")]
pub struct Postgres {
    pub schema: String,
}

#[cfg(feature = "postgres")]
impl Postgres {
    /// Options for a store in this schema.
    pub fn options(&self, limits: Limits, clock: ManualClock) -> PostgresOptions {
        PostgresOptions::new()
            .with_limits(limits)
            .with_clock(clock)
            .with_pool_size(4)
            .with_schema(self.schema.clone())
    }

    /// A plain client whose `search_path` is this schema.
    pub async fn client(&self) -> tokio_postgres::Client {
        raw_client(Some(&self.schema)).await
    }
}

#[cfg(feature = "postgres")]
impl Backend for Postgres {
    type Store = PostgresStore;

    async fn create() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // Reachable, or fail now naming the variable.
        raw_client(None).await;
        Self { schema }
    }

    async fn open(&self, limits: Limits, clock: ManualClock) -> PostgresStore {
        PostgresStore::connect(&database_url(), self.options(limits, clock))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect at MCP_TEST_DATABASE_URL ({}): {error}: {:?}",
                    database_url(),
                    std::error::Error::source(&error)
                )
            })
    }

    async fn close(store: PostgresStore) {
        store.flush().await.unwrap();
        drop(store);
    }

    fn limits(store: &PostgresStore) -> &Limits {
        store.limits()
    }

    /// Usage counters equal what they count, tombstones are empty, and no
    /// category or access-log row names another owner's memory.
    async fn assert_consistent(&self) {
        let client = self.client().await;
        let drift: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM owners o WHERE (o.memory_count, o.bytes) <> (
                     SELECT COUNT(*), COALESCE(SUM(octet_length(m.text) + octet_length(m.metadata::text)), 0)
                     FROM memories m WHERE m.owner_id = o.id AND m.state <> 'deleted')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(drift, 0, "usage counters drifted");
        let strays: i64 = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM memory_categories c JOIN memories m ON m.seq = c.memory_seq
                         WHERE m.owner_id <> c.owner_id OR m.state = 'deleted')
                      + (SELECT COUNT(*) FROM access_log a JOIN memories m ON m.seq = a.memory_seq
                         WHERE m.owner_id <> a.owner_id OR m.state = 'deleted')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(strays, 0, "rows naming deleted or foreign memories");
    }

    async fn raw_memory(&self, id: MemoryId) -> ((String, String, String), i64) {
        let client = self.client().await;
        let row = client
            .query_one(
                "SELECT text, metadata::text, state::text FROM memories WHERE id = $1",
                &[id.as_uuid()],
            )
            .await
            .unwrap();
        let leftovers: i64 = client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM memory_categories c JOIN memories m ON m.seq = c.memory_seq WHERE m.id = $1)
                      + (SELECT COUNT(*) FROM access_log a JOIN memories m ON m.seq = a.memory_seq WHERE m.id = $1)",
                &[id.as_uuid()],
            )
            .await
            .unwrap()
            .get(0);
        ((row.get(0), row.get(1), row.get(2)), leftovers)
    }

    async fn usage(&self, owner: &Owner) -> (i64, i64) {
        let row = self
            .client()
            .await
            .query_one(
                "SELECT memory_count, bytes FROM owners WHERE subject = $1",
                &[&owner.as_str()],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }
}

#[cfg(feature = "postgres")]
impl Drop for Postgres {
    /// Drops the schema, on a thread of its own (this may run inside a runtime).
    fn drop(&mut self) {
        let schema = self.schema.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = raw_client(None).await;
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("cannot drop test schema {}", self.schema);
        }
    }
}

/// Instantiates generic test functions `name::<B: Backend>()` for every
/// backend: `mod sqlite` and (with the `postgres` feature) `mod postgres`.
#[allow(unused_macros)]
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<crate::backend::Sqlite>().await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<crate::backend::Postgres>().await;
                }
            )*
        }
    };
}
