//! [`PostgresStore`]: the [`ProviderStore`](super::ProviderStore) over a PostgreSQL
//! database shared by any number of replicas.

mod pool;
mod provider_store;
mod queries;
mod schema;
mod tls;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

use self::pool::{DbResult as _, in_transaction, pool_error};
use self::queries::get;
use crate::authn::{BoxFuture, LoginStateStore, StateStoreError};
use crate::secret::SecretHash;
use crate::store::codec::time;
use crate::store::{PostgresLimitStore, StoreError, StoreErrorKind};

/// How a [`PostgresStore`] connects.
///
/// ```
/// use std::time::Duration;
/// use oidc_core::store::PostgresOptions;
///
/// let options = PostgresOptions::new()
///     .with_max_connections(16)
///     .with_acquire_timeout(Duration::from_secs(2))
///     .with_schema("oidc");
/// assert_eq!(options.max_connections(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    max_connections: usize,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    schema: Option<String>,
    root_certificates: Option<PathBuf>,
}

impl PostgresOptions {
    /// At most 8 connections, 5 s to connect, 5 s to wait for a free connection, 10 s per
    /// statement, the server's default schema, the webpki roots for TLS.
    #[must_use]
    pub fn new() -> Self {
        PostgresOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            schema: None,
            root_certificates: None,
        }
    }

    /// Sets how many connections the pool may open; at least 1.
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Sets how long opening a connection (TCP, TLS, authentication) may take.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long an operation waits for a free pooled connection before failing with
    /// [`StoreErrorKind::Unavailable`].
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets PostgreSQL's `statement_timeout` for the store's sessions (at least 1 ms); a
    /// statement running longer fails with [`StoreErrorKind::Busy`].
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Keeps the tables in schema `schema` (set as the sessions' `search_path`; created at
    /// connect if missing). 1 to 63 characters of `a-z`, `0-9` and `_`, not starting with a
    /// digit; [`PostgresStore::connect`] refuses other names with
    /// [`StoreErrorKind::InvalidConfig`].
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Also trusts the CA certificates in the PEM file at `path` (a private CA), besides
    /// the webpki roots.
    #[must_use]
    pub fn with_root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates = Some(path.into());
        self
    }

    /// The maximum number of pooled connections.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions::new()
    }
}

/// The provider's state in a PostgreSQL database, shared by any number of replicas.
///
/// - **Exactly once across replicas**: every compare-and-swap (redeeming a code, rotating
///   a refresh token, completing a pending authorization, taking login state, allocating
///   a status list entry, saving the signing keys) is one conditional statement or a
///   transaction that first locks the rows it tests (`SELECT … FOR UPDATE`), so one caller
///   wins whichever replica it runs on. Deadlocks and serialization failures are retried.
/// - **Pool**: a bounded [`deadpool_postgres`] pool. Waiting past the acquire timeout, a
///   refused or lost connection, or a server shutting down is
///   [`StoreErrorKind::Unavailable`] (the provider answers 503 with `Retry-After`); a
///   broken connection is dropped, so the store recovers by itself when the server is
///   back.
/// - **TLS**: `sslmode=disable`, `prefer` or `require` from the URL; with TLS the server's
///   certificate is always verified against the webpki roots (and
///   [`PostgresOptions::with_root_certificates`]), with rustls.
/// - **Schema**: versioned in a `schema_migrations` table; [`connect`](Self::connect)
///   migrates under a transaction-level advisory lock, so replicas starting together
///   migrate once, and refuses a database written by a newer version.
///
/// It also stores the state of login methods ([`LoginStateStore`]), keyed by the SHA-256
/// of their keys. `Debug` shows the user, host, port and database, never the password.
///
/// ```no_run
/// # async fn run() -> Result<(), oidc_core::store::StoreError> {
/// use oidc_core::store::{PostgresOptions, PostgresStore, ProviderStore as _};
///
/// let store = PostgresStore::connect(
///     "postgres://oidc@db.internal/oidc?sslmode=require",
///     PostgresOptions::new(),
/// )
/// .await?;
/// store.health().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    /// `user@host:port/database`, for `Debug`.
    target: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.shared.target)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`, with
    /// `sslmode=disable|prefer|require`), creates the schema if
    /// [`PostgresOptions::with_schema`] names a missing one, and migrates it.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::InvalidConfig`] for a malformed URL or options,
    /// [`StoreErrorKind::Unavailable`] if the server cannot be reached,
    /// [`StoreErrorKind::UnsupportedSchema`] if a newer version wrote the database,
    /// [`StoreErrorKind::Backend`] if a migration fails.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut config = parse_url(url)?;
        let session_options = session_options(config.get_options(), &options)?;
        config
            .options(session_options)
            .connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("oidc-core");
        }
        let tls = tls::connector(options.root_certificates.as_deref())?;
        let manager = Manager::from_config(
            config.clone(),
            tls,
            ManagerConfig {
                // `Fast` checks that the connection task is still running; a connection
                // the server closed (terminated, restarted) is detected there, and one
                // that fails a statement is dropped by `pool::release`. `Verified` would
                // add a round trip to every operation.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|error| StoreError::with_source(StoreErrorKind::InvalidConfig, error))?;
        let store = PostgresStore {
            shared: Arc::new(Shared {
                pool,
                target: describe(&config),
            }),
        };
        let mut connection = store.connection().await?;
        let migrated = schema::migrate(&mut connection, options.schema.as_deref()).await;
        if let Err(error) = &migrated {
            pool::release(connection, error);
        }
        migrated?;
        Ok(store)
    }

    /// The lockout counters and rate-limit buckets in this store's database, on its pool
    /// and schema, for replicas to share ([`PostgresLimitStore::new`] creates their tables).
    ///
    /// # Errors
    ///
    /// The database could not be reached or refused the tables.
    pub async fn limit_store(&self) -> Result<PostgresLimitStore, StoreError> {
        PostgresLimitStore::new(self.shared.pool.clone()).await
    }

    /// A pooled connection.
    async fn connection(&self) -> Result<Object, StoreError> {
        self.shared.pool.get().await.map_err(pool_error)
    }
}

/// A connection configuration from a `postgres://` or `postgresql://` URL.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid(
            "the database URL must start with postgres:// or postgresql://",
        ));
    }
    let mode = url::Url::parse(url).ok().and_then(|parsed| {
        parsed
            .query_pairs()
            .find(|(name, _)| name == "sslmode")
            .map(|(_, value)| value.into_owned())
    });
    if let Some(mode) = mode
        && !matches!(mode.as_str(), "disable" | "prefer" | "require")
    {
        return Err(invalid(
            "sslmode must be disable, prefer or require (with TLS the server certificate is always verified)",
        ));
    }
    // The parser's messages may quote parts of the URL: they are not passed on, so a
    // password never reaches a log.
    tokio_postgres::Config::from_str(url).map_err(|_| invalid("the database URL is malformed"))
}

/// The startup `options` of every session: the URL's, then the statement timeout and the
/// search path.
fn session_options(
    from_url: Option<&str>,
    options: &PostgresOptions,
) -> Result<String, StoreError> {
    let millis = options.statement_timeout.as_millis();
    let mut session = from_url.map(str::to_owned).unwrap_or_default();
    if !session.is_empty() {
        session.push(' ');
    }
    session.push_str(&format!("-c statement_timeout={millis}"));
    if let Some(schema) = &options.schema {
        if !is_schema_name(schema) {
            return Err(invalid(
                "the schema name must be 1 to 63 characters of a-z, 0-9 and _, not starting with a digit",
            ));
        }
        session.push_str(&format!(" -c search_path={schema}"));
    }
    Ok(session)
}

/// A name that needs no quoting in SQL nor escaping in startup options.
fn is_schema_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// `user@host:port/database`, without the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// An [`StoreErrorKind::InvalidConfig`] error explained by `message`.
fn invalid(message: &'static str) -> StoreError {
    StoreError::with_source(StoreErrorKind::InvalidConfig, ConfigProblem(message))
}

/// What is wrong with the store's configuration.
#[derive(Debug)]
struct ConfigProblem(&'static str);

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ConfigProblem {}

/// The key a login method's state is stored under.
fn login_state_key(key: &str) -> [u8; 32] {
    *SecretHash::of(key).as_bytes()
}

impl LoginStateStore for PostgresStore {
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StateStoreError>> {
        let key = login_state_key(key);
        Box::pin(async move {
            self.put_login_state(&key, &value, expires_at)
                .await
                .map_err(|error| StateStoreError(error.to_string()))
        })
    }

    fn take(&self, key: &str, now: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StateStoreError>> {
        let key = login_state_key(key);
        Box::pin(async move {
            self.take_login_state(&key, now)
                .await
                .map_err(|error| StateStoreError(error.to_string()))
        })
    }
}

impl PostgresStore {
    async fn put_login_state(
        &self,
        key: &[u8; 32],
        value: &[u8],
        expires_at: u64,
    ) -> Result<(), StoreError> {
        in_transaction!(self, write, |tx| tx
            .execute(
                "INSERT INTO login_states (key, value, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE \
                 SET value = excluded.value, expires_at = excluded.expires_at",
                &[&&key[..], &value, &time(expires_at)],
            )
            .await
            .db())?;
        Ok(())
    }

    /// One statement: of concurrent deletes of a row, exactly one returns it.
    async fn take_login_state(
        &self,
        key: &[u8; 32],
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = in_transaction!(self, write, |tx| tx
            .query_opt(
                "DELETE FROM login_states WHERE key = $1 RETURNING value, expires_at",
                &[&&key[..]],
            )
            .await
            .db())?;
        let Some(row) = row else {
            return Ok(None);
        };
        let value: Vec<u8> = get(&row, 0)?;
        let expires_at: i64 = get(&row, 1)?;
        Ok((expires_at > time(now)).then_some(value))
    }
}
