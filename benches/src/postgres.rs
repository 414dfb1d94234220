//! A PostgreSQL schema of a benchmark's own, on the server at `BENCH_DATABASE_URL`.
//!
//! Each run works in a fresh schema that it drops afterwards ([`Schema::fresh`]), except a
//! large dataset a benchmark chooses to keep between runs ([`Schema::cached`]).

use tokio_postgres::{Client, NoTls};

/// The variable naming the database.
pub const URL_VARIABLE: &str = "BENCH_DATABASE_URL";
/// The database when [`URL_VARIABLE`] is unset: the local server, trust authentication.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

/// The database URL: [`URL_VARIABLE`], or [`DEFAULT_URL`].
pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema in the database, and a connection to it for the benchmark's own queries.
pub struct Schema {
    name: String,
    client: Client,
    keep: bool,
}

impl Schema {
    /// A fresh schema named `{prefix}_{process id}` (an old one of that name is dropped
    /// first); [`finish`](Self::finish) drops it. The stores create it when they connect.
    ///
    /// # Panics
    ///
    /// If the database cannot be reached: the benchmark cannot run without it.
    pub async fn fresh(prefix: &str) -> Schema {
        let schema = Schema {
            name: format!("{prefix}_{}", std::process::id()),
            client: connect().await,
            keep: false,
        };
        schema.reset().await;
        schema
    }

    /// The schema `name`, kept after the run: a dataset cached between runs.
    ///
    /// # Panics
    ///
    /// If the database cannot be reached.
    pub async fn cached(name: &str) -> Schema {
        Schema {
            name: name.to_owned(),
            client: connect().await,
            keep: true,
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The single `bigint` that `sql` selects (its tables named without the schema), or
    /// `None` if the query fails (a table that does not exist yet).
    pub async fn count(&self, sql: &str) -> Option<i64> {
        let set_path = format!("SET search_path TO {}", self.name);
        self.client.batch_execute(&set_path).await.ok()?;
        let row = self.client.query_one(sql, &[]).await.ok()?;
        row.try_get(0).ok()
    }

    /// Drops the schema and everything in it, if it exists.
    ///
    /// # Panics
    ///
    /// If the database refuses.
    pub async fn reset(&self) {
        #[allow(clippy::expect_used)] // documented under Panics
        self.client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await
            .expect("drop the schema");
    }

    /// Drops a fresh schema; keeps a cached one.
    ///
    /// # Panics
    ///
    /// If the database refuses.
    pub async fn finish(self) {
        if !self.keep {
            self.reset().await;
        }
    }
}

/// A connection for the benchmark's own statements, its task spawned on the runtime.
async fn connect() -> Client {
    let url = url();
    let (client, connection) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(connected) => connected,
        Err(error) => panic!(
            "PostgreSQL is unreachable at {URL_VARIABLE} ({url}): {error}; \
             start it (service postgresql start) or set {URL_VARIABLE}"
        ),
    };
    tokio::spawn(connection);
    client
}
