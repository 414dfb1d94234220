//! [`PostgresPageSessions`]: the memory page's sessions and sign-ins in PostgreSQL
//! (feature `postgres`), shared by every replica; the tables are documented on the type.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use deadpool_postgres::{Pool, PoolError};
use jwks_verify::Clock;
use serde::{Deserialize, Serialize};

use super::sealed::{Sealer, Table};
use super::{AppNames, LOGIN_LIFETIME, Login, MAX_LOGINS, Session, Tokens, random_token, sha256};
use crate::app::directory::Unavailable;
use crate::store::Owner;

/// The `pg_advisory_xact_lock` key held while the tables are created: the first 8 bytes
/// of SHA-256("mcp-api page sessions"), big-endian, as a signed integer.
const MIGRATION_LOCK: i64 = 2_017_393_698_720_217_517;

/// The `pg_advisory_xact_lock` key held while a row is inserted (the bounds are counted
/// and enforced under it): the first 8 bytes of SHA-256("mcp-api page sessions insert").
const INSERT_LOCK: i64 = 5_908_238_182_925_743_972;

/// Expired rows are deleted this often (and whenever a table is full).
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// How long a replica may hold a session's renewal before another may take it over (on
/// the database's clock). Longer than the provider's token endpoint takes to answer.
const REFRESH_LEASE: Duration = Duration::from_secs(30);

/// How long a request waits for another replica's renewal of its session: longer than
/// the lease, so that a renewal abandoned by a dead replica is taken over.
const REFRESH_WAIT: Duration = Duration::from_secs(35);

/// The tables and indexes; idempotent.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mcp_page_session (
    key_hash         bytea PRIMARY KEY CHECK (length(key_hash) = 32),
    subject          text NOT NULL,
    sealed           bytea NOT NULL,
    version          bigint NOT NULL DEFAULT 0,
    refreshing_until timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS mcp_page_session_by_expiry ON mcp_page_session (expires_at);
CREATE INDEX IF NOT EXISTS mcp_page_session_by_age ON mcp_page_session (created_at);
CREATE TABLE IF NOT EXISTS mcp_page_login (
    state_hash bytea PRIMARY KEY CHECK (length(state_hash) = 32),
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS mcp_page_login_by_expiry ON mcp_page_login (expires_at);
CREATE INDEX IF NOT EXISTS mcp_page_login_by_age ON mcp_page_login (created_at);
";

/// The memory page's sessions and sign-ins in PostgreSQL, shared by every replica; pass it
/// as [`SessionBackend::Postgres`](crate::app::SessionBackend::Postgres) to
/// [`App::with_sessions`](crate::app::App::with_sessions).
///
/// With the in-process backend a page request that a round-robin load balancer sends to
/// another replica finds no session (and a sign-in started on one replica cannot finish
/// on another); with this one every replica serves every session.
///
/// # Tables
///
/// Created at [`PostgresPageSessions::start`] with `CREATE TABLE IF NOT EXISTS`, inside a
/// transaction holding `pg_advisory_xact_lock(2017393698720217517)` (SHA-256("mcp-api
/// page sessions")), in the first schema of the pool's `search_path`:
///
/// - `mcp_page_session (key_hash, subject, sealed, version, refreshing_until, created_at,
///   expires_at)`: one row per signed-in browser.
/// - `mcp_page_login (state_hash, sealed, created_at, expires_at)`: one row per sign-in
///   in flight, from the redirect to the provider to the callback.
///
/// Only the **SHA-256** of a session cookie or of a sign-in `state` is stored. The
/// secrets — access and refresh tokens, the CSRF token, the display name; the PKCE
/// verifier, nonce and browser binding of a sign-in — are **sealed** with AES-256-GCM
/// under a key derived with HKDF-SHA256 (info `"mcp-api memory page sessions v1"`) from
/// the page's client secret or its session key
/// ([`AppConfig::with_session_key`](crate::app::AppConfig::with_session_key)), a random
/// nonce per write, and the table, the row's hash and (for sessions) the subject as
/// associated data: a backup of the database holds no usable token, and a ciphertext
/// copied into another row does not open. A replica whose key differs (another client
/// secret) finds no session and no sign-in; it never fails otherwise.
///
/// # Rows
///
/// A session expires [`session_lifetime`](crate::app::AppConfig::session_lifetime) after
/// it started, a sign-in after 10 minutes, both on the database's clock. Expired rows are
/// never served and are deleted every minute (by every replica; it is idempotent) and
/// whenever a table is full. Both tables are bounded as in process — at most
/// [`max_sessions`](crate::app::AppConfig::max_sessions) sessions and 10,000 sign-ins for
/// all replicas together, the oldest going first — enforced in SQL under a transaction
/// holding `pg_advisory_xact_lock(5908238182925743972)` (SHA-256("mcp-api page sessions
/// insert")).
///
/// A sign-in is taken once (`DELETE … RETURNING`), whichever replica the callback reaches.
/// Signing out, revoking the page's own access, and a refused or revoked access token
/// delete the session's row, so it ends on every replica at the next request (each page
/// request reads the row: there is no cache to go stale).
///
/// # Renewing tokens
///
/// A session's access token is renewed with its refresh token shortly before it expires.
/// The provider rotates refresh tokens and treats a second use as theft, so only one
/// replica may renew a session at a time: it first takes the renewal with a
/// compare-and-swap on the row's `version` (which also sets a 30-second lease in
/// `refreshing_until`), then asks the provider, then stores the new tokens with another
/// compare-and-swap. A replica that loses the first swap waits for the row's next version
/// and uses the winner's tokens. A lease abandoned by a dead replica is taken over when it
/// ends.
///
/// # Running
///
/// Queries go through the caller's pool (one per page request, a few more to sign in or
/// renew). A background task on the current Tokio runtime deletes expired rows; it ends
/// when the last clone of this value and of the [`App`](crate::app::App)s using it are
/// dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use deadpool_postgres::{Manager, Pool};
/// use mcp_api::app::{AppConfig, PostgresPageSessions, SessionBackend};
///
/// let config: tokio_postgres::Config = "postgres://mcp@db.internal/memories".parse()?;
/// let pool = Pool::builder(Manager::new(config, tokio_postgres::NoTls))
///     .max_size(8)
///     .build()?;
/// let sessions = PostgresPageSessions::start(pool).await?;
/// let page = AppConfig::new("https://memory.example", "https://auth.example", "memory-page")
///     .with_client_secret("the page's client secret, the same on every replica");
/// let backend = SessionBackend::Postgres(sessions);
/// // … App::with_sessions(page, store, verifier, http, backend)? …
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresPageSessions {
    inner: Arc<Inner>,
}

/// Why the page's session tables could not be created: a database or pool failure.
#[derive(Debug, thiserror::Error)]
#[error("postgres page sessions: {source}")]
pub struct PostgresPageSessionsError {
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl From<tokio_postgres::Error> for PostgresPageSessionsError {
    fn from(error: tokio_postgres::Error) -> Self {
        PostgresPageSessionsError {
            source: Box::new(error),
        }
    }
}

impl From<PoolError> for PostgresPageSessionsError {
    fn from(error: PoolError) -> Self {
        PostgresPageSessionsError {
            source: Box::new(error),
        }
    }
}

impl PostgresPageSessions {
    /// Creates the tables if needed (in the first schema of the pool's `search_path`) and
    /// starts deleting expired rows every minute on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// The database could not be reached or refused the schema.
    pub async fn start(pool: Pool) -> Result<Self, PostgresPageSessionsError> {
        {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            transaction.batch_execute(SCHEMA).await?;
            transaction.commit().await?;
        }
        let inner = Arc::new(Inner {
            pool,
            apps: Mutex::new(HashMap::new()),
        });
        tokio::spawn(purge_periodically(Arc::downgrade(&inner)));
        Ok(PostgresPageSessions { inner })
    }

    /// Deletes expired sessions and sign-ins now (the background task does it every
    /// minute).
    ///
    /// # Errors
    ///
    /// The database could not be reached.
    pub async fn purge(&self) -> Result<(), PostgresPageSessionsError> {
        self.inner.purge().await
    }
}

impl fmt::Debug for PostgresPageSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresPageSessions")
            .finish_non_exhaustive()
    }
}

/// The shared tables as one page uses them: the rows, the page's key and its bounds.
pub(crate) struct SharedSessions {
    db: PostgresPageSessions,
    sealer: Sealer,
    lifetime: Duration,
    max_sessions: usize,
    clock: Arc<dyn Clock>,
}

/// The sealed part of a session row.
#[derive(Serialize, Deserialize)]
struct SessionSecrets {
    csrf: String,
    name: String,
    access_token: String,
    refresh_token: Option<String>,
    access_expires_at: u64,
}

/// The sealed part of a sign-in row.
#[derive(Serialize, Deserialize)]
struct LoginSecrets {
    binding: String,
    verifier: String,
    nonce: String,
    next: String,
}

impl SharedSessions {
    pub(crate) fn new(
        db: PostgresPageSessions,
        sealer: Sealer,
        lifetime: Duration,
        max_sessions: usize,
        clock: Arc<dyn Clock>,
    ) -> SharedSessions {
        SharedSessions {
            db,
            sealer,
            lifetime,
            max_sessions: max_sessions.max(1),
            clock,
        }
    }

    /// How long a session lasts.
    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session; returns the cookie value and the session's app names.
    pub(crate) async fn create(
        &self,
        owner: &Owner,
        display_name: String,
        tokens: Tokens,
    ) -> Result<(String, Arc<AppNames>), Unavailable> {
        let cookie = random_token();
        let key = sha256(&cookie);
        let secrets = SessionSecrets {
            csrf: random_token(),
            name: display_name,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_at: tokens.access_expires_at,
        };
        let sealed = self.seal_session(&key, owner, &secrets)?;
        self.db
            .inner
            .insert_session(&key, owner, &sealed, self.lifetime, self.max_sessions)
            .await
            .map_err(unavailable)?;
        Ok((cookie, self.db.inner.apps(key, self.max_sessions)))
    }

    /// The live session named by a cookie value. A row that does not open under this
    /// page's key (another replica's key, a moved or altered ciphertext) is no session.
    pub(crate) async fn get(&self, cookie: &str) -> Result<Option<Arc<Session>>, Unavailable> {
        let key = sha256(cookie);
        let Some(row) = self
            .db
            .inner
            .read_session(&key)
            .await
            .map_err(unavailable)?
        else {
            self.db.inner.forget_apps(&key);
            return Ok(None);
        };
        let Some((owner, secrets)) = self.open_session(&key, &row) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Session {
            key,
            owner,
            display_name: secrets.name,
            csrf: secrets.csrf,
            tokens: tokio::sync::Mutex::new(Tokens {
                access_token: secrets.access_token,
                refresh_token: secrets.refresh_token,
                access_expires_at: secrets.access_expires_at,
            }),
            version: row.version,
            apps: self.db.inner.apps(key, self.max_sessions),
            created: self.clock.now(),
        })))
    }

    /// Ends the session whose cookie hashes to `key`, on every replica.
    pub(crate) async fn end_key(&self, key: &[u8; 32]) -> Result<(), Unavailable> {
        self.db.inner.forget_apps(key);
        self.db.inner.delete_session(key).await.map_err(unavailable)
    }

    /// The session's access token, renewed first with `refresh` if `due` says so; see
    /// [`PostgresPageSessions`] (Renewing tokens). `Ok(None)`: the session ended.
    pub(crate) async fn fresh_access_token<F, Fut>(
        &self,
        session: &Session,
        due: impl Fn(&Tokens) -> bool,
        refresh: F,
    ) -> Result<Option<String>, Unavailable>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Tokens>>,
    {
        let inner = &self.db.inner;
        let mut tokens = session.tokens.lock().await;
        let mut version = session.version;
        let deadline = Instant::now() + REFRESH_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            if !due(&tokens) {
                return Ok(Some(tokens.access_token.clone()));
            }
            let claimed = inner
                .claim_refresh(&session.key, version)
                .await
                .map_err(unavailable)?;
            if let Some(claimed) = claimed {
                let renewed = match tokens.refresh_token.clone() {
                    Some(refresh_token) => refresh(refresh_token).await,
                    None => None,
                };
                let Some(renewed) = renewed else {
                    self.end_key(&session.key).await?;
                    return Ok(None);
                };
                let secrets = SessionSecrets {
                    csrf: session.csrf.clone(),
                    name: session.display_name.clone(),
                    access_token: renewed.access_token.clone(),
                    refresh_token: renewed.refresh_token.clone(),
                    access_expires_at: renewed.access_expires_at,
                };
                let sealed = self.seal_session(&session.key, &session.owner, &secrets)?;
                let stored = inner
                    .store_tokens(&session.key, claimed, &sealed)
                    .await
                    .map_err(unavailable)?;
                if !stored {
                    // The lease ran out and another replica took the renewal over, or the
                    // session ended meanwhile: this request still uses what it got.
                    tracing::warn!("a renewed memory page session could not be stored");
                }
                *tokens = renewed;
                return Ok(Some(tokens.access_token.clone()));
            }
            // Another request is renewing this session, or has: wait for its tokens.
            let Some(row) = inner
                .read_session(&session.key)
                .await
                .map_err(unavailable)?
            else {
                return Ok(None);
            };
            if row.version != version && !row.refreshing {
                let Some((_, secrets)) = self.open_session(&session.key, &row) else {
                    return Ok(None);
                };
                *tokens = Tokens {
                    access_token: secrets.access_token,
                    refresh_token: secrets.refresh_token,
                    access_expires_at: secrets.access_expires_at,
                };
                version = row.version;
                continue;
            }
            if Instant::now() >= deadline {
                tracing::warn!("gave up waiting for another replica to renew a page session");
                return Err(Unavailable);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Records a sign-in in flight under its `state`.
    pub(crate) async fn start_login(&self, state: &str, login: Login) -> Result<(), Unavailable> {
        let key = sha256(state);
        let secrets = LoginSecrets {
            binding: login.binding,
            verifier: login.verifier,
            nonce: login.nonce,
            next: login.next,
        };
        let plaintext = serde_json::to_vec(&secrets).map_err(|_| Unavailable)?;
        let sealed = self
            .sealer
            .seal(Table::Login, &key, &[], &plaintext)
            .ok_or(Unavailable)?;
        self.db
            .inner
            .insert_login(&key, &sealed)
            .await
            .map_err(unavailable)
    }

    /// Takes the sign-in with this `state` (once, whichever replica asks), if it has not
    /// expired and opens under this page's key.
    pub(crate) async fn take_login(&self, state: &str) -> Result<Option<Login>, Unavailable> {
        let key = sha256(state);
        let Some(sealed) = self.db.inner.take_login(&key).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let Some(plaintext) = self.sealer.open(Table::Login, &key, &[], &sealed) else {
            tracing::warn!("a memory page sign-in did not open under this replica's key");
            return Ok(None);
        };
        let Ok(secrets) = serde_json::from_slice::<LoginSecrets>(&plaintext) else {
            return Ok(None);
        };
        Ok(Some(Login::new(
            secrets.binding,
            secrets.verifier,
            secrets.nonce,
            secrets.next,
        )))
    }

    fn seal_session(
        &self,
        key: &[u8; 32],
        owner: &Owner,
        secrets: &SessionSecrets,
    ) -> Result<Vec<u8>, Unavailable> {
        let plaintext = serde_json::to_vec(secrets).map_err(|_| Unavailable)?;
        self.sealer
            .seal(Table::Session, key, owner.as_str().as_bytes(), &plaintext)
            .ok_or(Unavailable)
    }

    fn open_session(&self, key: &[u8; 32], row: &SessionRow) -> Option<(Owner, SessionSecrets)> {
        let opened = self
            .sealer
            .open(Table::Session, key, row.subject.as_bytes(), &row.sealed);
        let Some(plaintext) = opened else {
            tracing::warn!("a memory page session did not open under this replica's key");
            return None;
        };
        let secrets = serde_json::from_slice::<SessionSecrets>(&plaintext).ok()?;
        let owner = Owner::new(row.subject.as_str()).ok()?;
        Some((owner, secrets))
    }
}

impl fmt::Debug for SharedSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSessions")
            .field("lifetime", &self.lifetime)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    /// App names learnt by this process, per session (bounded like the table).
    apps: Mutex<HashMap<[u8; 32], Arc<AppNames>>>,
}

/// A live session row.
struct SessionRow {
    subject: String,
    sealed: Vec<u8>,
    version: i64,
    /// Another request holds the renewal lease.
    refreshing: bool,
}

impl Inner {
    async fn insert_session(
        &self,
        key: &[u8; 32],
        owner: &Owner,
        sealed: &[u8],
        lifetime: Duration,
        max_sessions: usize,
    ) -> Result<(), PostgresPageSessionsError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&INSERT_LOCK])
            .await?;
        make_room(&transaction, "mcp_page_session", count(max_sessions)).await?;
        transaction
            .execute(
                "INSERT INTO mcp_page_session (key_hash, subject, sealed, expires_at)
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
                &[
                    &key.as_slice(),
                    &owner.as_str(),
                    &sealed,
                    &lifetime.as_secs_f64(),
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn insert_login(
        &self,
        key: &[u8; 32],
        sealed: &[u8],
    ) -> Result<(), PostgresPageSessionsError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&INSERT_LOCK])
            .await?;
        make_room(&transaction, "mcp_page_login", count(MAX_LOGINS)).await?;
        transaction
            .execute(
                "INSERT INTO mcp_page_login (state_hash, sealed, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))",
                &[&key.as_slice(), &sealed, &LOGIN_LIFETIME.as_secs_f64()],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn take_login(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, PostgresPageSessionsError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "DELETE FROM mcp_page_login WHERE state_hash = $1
                 RETURNING sealed, expires_at > now()",
                &[&key.as_slice()],
            )
            .await?;
        Ok(row.and_then(|row| row.get::<_, bool>(1).then(|| row.get::<_, Vec<u8>>(0))))
    }

    async fn read_session(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<SessionRow>, PostgresPageSessionsError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT subject, sealed, version,
                        coalesce(refreshing_until > now(), false)
                   FROM mcp_page_session WHERE key_hash = $1 AND expires_at > now()",
            )
            .await?;
        let row = client.query_opt(&statement, &[&key.as_slice()]).await?;
        Ok(row.map(|row| SessionRow {
            subject: row.get(0),
            sealed: row.get(1),
            version: row.get(2),
            refreshing: row.get(3),
        }))
    }

    async fn delete_session(&self, key: &[u8; 32]) -> Result<(), PostgresPageSessionsError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM mcp_page_session WHERE key_hash = $1",
                &[&key.as_slice()],
            )
            .await?;
        Ok(())
    }

    /// Takes the renewal of session `key` if its row is still at `version` and nobody
    /// holds the lease; the row's new version.
    async fn claim_refresh(
        &self,
        key: &[u8; 32],
        version: i64,
    ) -> Result<Option<i64>, PostgresPageSessionsError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE mcp_page_session
                    SET version = version + 1,
                        refreshing_until = now() + make_interval(secs => $3)
                  WHERE key_hash = $1 AND version = $2 AND expires_at > now()
                    AND (refreshing_until IS NULL OR refreshing_until <= now())
                 RETURNING version",
                &[&key.as_slice(), &version, &REFRESH_LEASE.as_secs_f64()],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Stores renewed tokens if the row is still at the `claimed` version; whether it was.
    async fn store_tokens(
        &self,
        key: &[u8; 32],
        claimed: i64,
        sealed: &[u8],
    ) -> Result<bool, PostgresPageSessionsError> {
        let client = self.pool.get().await?;
        let stored = client
            .execute(
                "UPDATE mcp_page_session
                    SET sealed = $3, version = version + 1, refreshing_until = NULL
                  WHERE key_hash = $1 AND version = $2",
                &[&key.as_slice(), &claimed, &sealed],
            )
            .await?;
        Ok(stored == 1)
    }

    async fn purge(&self) -> Result<(), PostgresPageSessionsError> {
        let client = self.pool.get().await?;
        client
            .batch_execute(
                "DELETE FROM mcp_page_session WHERE expires_at <= now();
                 DELETE FROM mcp_page_login WHERE expires_at <= now();",
            )
            .await?;
        Ok(())
    }

    fn apps(&self, key: [u8; 32], max_sessions: usize) -> Arc<AppNames> {
        let mut apps = lock(&self.apps);
        if let Some(known) = apps.get(&key) {
            return Arc::clone(known);
        }
        // A cache, not the truth: when it reaches the table's bound it starts over.
        if apps.len() >= max_sessions.max(1) {
            apps.clear();
        }
        Arc::clone(apps.entry(key).or_default())
    }

    fn forget_apps(&self, key: &[u8; 32]) {
        lock(&self.apps).remove(key);
    }
}

/// Frees a slot in `table` (bounded by `max` rows): expired rows first, then the oldest.
async fn make_room(
    transaction: &tokio_postgres::Transaction<'_>,
    table: &'static str,
    max: i64,
) -> Result<(), PostgresPageSessionsError> {
    let rows: i64 = transaction
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    if rows < max {
        return Ok(());
    }
    let purged = transaction
        .execute(
            &format!("DELETE FROM {table} WHERE expires_at <= now()"),
            &[],
        )
        .await?;
    let rows = rows.saturating_sub(i64::try_from(purged).unwrap_or(i64::MAX));
    if rows < max {
        return Ok(());
    }
    // `table` is one of two fixed names, never input.
    let key = if table == "mcp_page_session" {
        "key_hash"
    } else {
        "state_hash"
    };
    transaction
        .execute(
            &format!(
                "DELETE FROM {table} WHERE {key} IN (
                     SELECT {key} FROM {table} ORDER BY created_at LIMIT $1)"
            ),
            &[&(rows - max + 1)],
        )
        .await?;
    Ok(())
}

/// Deletes expired rows every [`PURGE_EVERY`] while the sessions are in use.
async fn purge_periodically(inner: Weak<Inner>) {
    let mut ticker = tokio::time::interval(PURGE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = inner.purge().await {
            tracing::warn!(%error, "could not delete expired memory page sessions");
        }
    }
}

/// A bound as a SQL `bigint`.
fn count(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn unavailable(error: impl Into<PostgresPageSessionsError>) -> Unavailable {
    let error = error.into();
    tracing::warn!(%error, "the memory page's session tables are unavailable");
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
        assert_eq!(key("mcp-api page sessions"), MIGRATION_LOCK);
        assert_eq!(key("mcp-api page sessions insert"), INSERT_LOCK);
    }
}
