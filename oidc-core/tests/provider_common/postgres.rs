//! PostgreSQL for tests: each test gets a fresh schema in the database named by
//! `OIDC_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), dropped
//! when the test ends, pass or fail. An unreachable server fails the test: it is never
//! skipped.

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use oidc_core::store::{PostgresOptions, PostgresStore};

/// The variable that names the test database.
pub const DATABASE_URL_VARIABLE: &str = "OIDC_TEST_DATABASE_URL";

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL. Without an `sslmode` it gets `sslmode=disable`: the store
/// verifies server certificates whenever it uses TLS, and a local test server usually has
/// a self-signed one (the TLS test names its CA explicitly).
pub fn database_url() -> String {
    let url =
        std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    if url.contains("sslmode=") {
        url
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// A direct connection to the test database (for setting up and inspecting), failing the
/// test with a message naming [`DATABASE_URL_VARIABLE`] when it cannot connect.
pub async fn admin_client() -> tokio_postgres::Client {
    let url = database_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is unreachable at {DATABASE_URL_VARIABLE} (default \
                 {DEFAULT_DATABASE_URL}): {error}. Start PostgreSQL or set \
                 {DATABASE_URL_VARIABLE} to a reachable database."
            )
        });
    tokio::spawn(connection);
    client
}

/// A schema of its own for one test.
pub struct TestSchema {
    name: String,
}

impl TestSchema {
    /// A fresh, empty schema name (`PostgresStore::connect` creates the schema). Checks
    /// that the server is reachable first.
    pub async fn create() -> TestSchema {
        drop(admin_client().await);
        let mut bytes = [0u8; 8];
        SystemRandom::new().fill(&mut bytes).unwrap();
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        TestSchema {
            name: format!("t_{suffix}"),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options of a store in this schema.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions::new().with_schema(&self.name)
    }

    /// A new store (its own pool: another replica) in this schema.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&database_url(), self.options())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "could not connect a PostgresStore to {DATABASE_URL_VARIABLE} \
                     ({}): {error:?}",
                    database_url()
                )
            })
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // On its own thread and runtime: this may run inside a runtime, or while a
        // failed test unwinds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                // A lock left behind fails the test instead of hanging it.
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test schema {}", self.name);
        }
    }
}
