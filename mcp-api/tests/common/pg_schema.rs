//! A fresh PostgreSQL schema per test, for the session tests of two replicas
//! (`pg_sessions.rs`, `pg_page.rs`): an admin connection to look into it, the
//! server's configuration with `search_path` set to it, and one `SqliteStore` the
//! replicas share for memories. A test that fails still leaves no schema behind.

use std::sync::Arc;

use deadpool_postgres::{Manager, Pool};
use mcp_api::{Limits, SqliteStore};
use tempfile::TempDir;
use tokio_postgres::{Client, Config, NoTls};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema on the test database, and an admin connection to look into it.
pub(crate) struct Database {
    pub(crate) admin: Client,
    /// The test server's configuration with `search_path` set to the schema.
    pub(crate) scoped: Config,
    pub(crate) schema: String,
    pub(crate) url: String,
    _store_dir: TempDir,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) dropped: bool,
}

impl Drop for Database {
    /// A test that failed before [`Database::drop_schema`] still leaves no schema behind.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let config: Config = url.parse().unwrap();
                let (client, connection) = config.connect(NoTls).await.unwrap();
                tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            });
        })
        .join();
    }
}

impl Database {
    /// A fresh schema named `<prefix>_<uuid>`.
    pub(crate) async fn new(prefix: &str) -> Self {
        let url = std::env::var("MCP_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let config: Config = url.parse().unwrap_or_else(|error| {
            panic!("MCP_TEST_DATABASE_URL={url:?} is not a PostgreSQL URL: {error}")
        });
        let (admin, connection) = config.connect(NoTls).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is unreachable at MCP_TEST_DATABASE_URL={url:?}: {error} \
                 (start it, e.g. `service postgresql start`, or point MCP_TEST_DATABASE_URL \
                 at a server)"
            )
        });
        tokio::spawn(connection);
        let schema = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path = {schema}"
            ))
            .await
            .unwrap();
        let mut scoped = config.clone();
        scoped.options(format!("-c search_path={schema}"));
        let store_dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(store_dir.path().join("memories.db"), Limits::default()).unwrap(),
        );
        Database {
            admin,
            scoped,
            schema,
            url,
            _store_dir: store_dir,
            store,
            dropped: false,
        }
    }

    /// A new pool on the schema, as each replica has its own.
    pub(crate) fn pool(&self) -> Pool {
        Pool::builder(Manager::new(self.scoped.clone(), NoTls))
            .max_size(4)
            .build()
            .unwrap()
    }
}
