//! Test support for the PostgreSQL tests: a fresh schema per test on the server named by
//! `OIDC_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), reached
//! through pools whose `search_path` is that schema only, and dropped when the test ends.
//! An unreachable server fails the test (it is never skipped).
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use oidc_core::store::PostgresLimitStore;
use tokio_postgres::NoTls;

pub const URL_VARIABLE: &str = "OIDC_TEST_DATABASE_URL";
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own for one test.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    pub async fn create() -> TestSchema {
        let url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let client = connect(&url).await;
        let mut suffix = [0u8; 8];
        SystemRandom::new().fill(&mut suffix).unwrap();
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("oidc_limits_test_{suffix}");
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        TestSchema { url, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool of its own (one replica's), every connection confined to the schema.
    pub fn pool(&self) -> Pool {
        let mut config: tokio_postgres::Config = self.url.parse().unwrap();
        config.options(format!("-c search_path={}", self.name));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager).max_size(8).build().unwrap()
    }

    /// A store on a pool of its own: one replica.
    pub async fn replica(&self) -> PostgresLimitStore {
        PostgresLimitStore::new(self.pool()).await.unwrap()
    }

    /// A client on the schema, for looking at rows.
    pub async fn client(&self) -> deadpool_postgres::Object {
        self.pool().get().await.unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: clean up on a thread with one of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = connect(&url).await;
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .unwrap();
            });
        });
        if cleanup.join().is_err() && !std::thread::panicking() {
            panic!("could not drop test schema {}", self.name);
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is unreachable at {url} ({error}): start it (`service postgresql start`) or set {URL_VARIABLE} to a reachable server"
            )
        });
    tokio::spawn(connection);
    client
}
