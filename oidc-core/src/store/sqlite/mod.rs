//! [`SqliteStore`]: the [`ProviderStore`] over one embedded SQLite file.

mod codec;
mod pool;
mod schema;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Transaction, params};

use self::codec::{
    CODE_COLUMNS, GRANT_COLUMNS, PENDING_COLUMNS, corrupt, count, decode_client, decode_code,
    decode_grant, decode_pending, encode_claims, encode_client, encode_code,
    encode_pending_request, encode_user, hash_blob, login_email, login_name, read_client_id,
    read_grant_id, read_login, read_scope, read_time, resources_json, status_name, time,
};
use self::pool::{DbResult as _, ReadPool, WriteQueue};
use crate::authn::{AuthenticatedUser, BoxFuture, LoginStateStore, StateStoreError};
use crate::client::Client;
use crate::keys::{KeyRecord, Pkcs8Secret};
use crate::secret::SecretHash;
use crate::status_list::StatusIndex;
use crate::store::{
    AccessTokenRecord, AuthorizationCodeRecord, GrantId, GrantRecord, LiveGrantLogin, NewTokens,
    PendingAuthorization, PendingKey, PendingStatus, ProviderStore, PurgeReport, RedeemOutcome,
    RefreshTokenRecord, RotateOutcome, StoreError, StoreErrorKind, StoredKeys, StoredStatusList,
};
use crate::types::{ClientId, Subject};

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// The condition that grant `g` is live at `?1`: not revoked, with an unexpired access
/// token or a refresh token that may still be used.
const LIVE_GRANT: &str = "g.revoked_at IS NULL AND ( \
     EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id AND a.expires_at > ?1) \
     OR (g.refresh_expires_at > ?1 AND EXISTS ( \
           SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id \
           AND r.used_at IS NULL AND r.idle_expires_at > ?1)))";

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

impl ProviderStore for SqliteStore {
    fn insert_client(&self, client: Client) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (data, secret_hash, created_at) = encode_client(&client)?;
            let client_id = client.client_id.as_str().to_owned();
            self.write(move |tx| {
                tx.execute(
                    "INSERT INTO clients (client_id, data, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![client_id, data, secret_hash, created_at],
                )
                .db()?;
                Ok(())
            })
            .await
        })
    }

    fn client(&self, client_id: &ClientId) -> BoxFuture<'_, Result<Option<Client>, StoreError>> {
        let client_id = client_id.clone();
        Box::pin(async move {
            self.read(move |tx| {
                let row: Option<(String, Option<Vec<u8>>, i64)> = tx
                    .query_row(
                        "SELECT data, secret_hash, created_at FROM clients WHERE client_id = ?1",
                        params![client_id.as_str()],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                    .db()?;
                row.map(|(data, secret, created_at)| {
                    decode_client(client_id, &data, secret.as_deref(), created_at)
                })
                .transpose()
            })
            .await
        })
    }

    fn insert_pending(
        &self,
        key: PendingKey,
        pending: PendingAuthorization,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let request = encode_pending_request(&pending)?;
            let (user, csrf) = match &pending.status {
                PendingStatus::AwaitingConsent { user, consent_csrf } => {
                    (Some(encode_user(user)?), Some(hash_blob(consent_csrf)))
                }
                _ => (None, None),
            };
            let status = status_name(&pending.status);
            let expires_at = time(pending.expires_at);
            self.write(move |tx| {
                tx.execute(
                    "INSERT INTO pending_authorizations (key, request, status, user, consent_csrf, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![hash_blob(key.hash()), request, status, user, csrf, expires_at],
                )
                .db()?;
                Ok(())
            })
            .await
        })
    }

    fn pending(
        &self,
        key: PendingKey,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| select_pending(tx, key, now, None))
                .await
        })
    }

    fn complete_login(
        &self,
        key: PendingKey,
        user: AuthenticatedUser,
        consent_csrf: SecretHash,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>> {
        Box::pin(async move {
            let user_json = encode_user(&user)?;
            self.write(move |tx| {
                let Some(mut pending) = select_pending(tx, key, now, Some("awaiting_login"))?
                else {
                    return Ok(None);
                };
                tx.execute(
                    "UPDATE pending_authorizations SET status = 'awaiting_consent', user = ?2, consent_csrf = ?3 \
                     WHERE key = ?1 AND status = 'awaiting_login'",
                    params![hash_blob(key.hash()), user_json, hash_blob(&consent_csrf)],
                )
                .db()?;
                pending.status = PendingStatus::AwaitingConsent { user, consent_csrf };
                Ok(Some(pending))
            })
            .await
        })
    }

    fn complete_consent(
        &self,
        key: PendingKey,
        code: Option<(SecretHash, AuthorizationCodeRecord)>,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>> {
        Box::pin(async move {
            let code = match code {
                Some((hash, record)) => Some((hash, encode_code(&record)?, record.expires_at)),
                None => None,
            };
            self.write(move |tx| {
                let Some(pending) = select_pending(tx, key, now, Some("awaiting_consent"))? else {
                    return Ok(None);
                };
                tx.execute(
                    "UPDATE pending_authorizations SET status = 'done', user = NULL, consent_csrf = NULL \
                     WHERE key = ?1 AND status = 'awaiting_consent'",
                    params![hash_blob(key.hash())],
                )
                .db()?;
                if let Some((hash, data, expires_at)) = code {
                    tx.execute(
                        "INSERT INTO authorization_codes (hash, data, expires_at) VALUES (?1, ?2, ?3)",
                        params![hash_blob(&hash), data, time(expires_at)],
                    )
                    .db()?;
                }
                Ok(Some(pending))
            })
            .await
        })
    }

    fn code(
        &self,
        code: SecretHash,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<AuthorizationCodeRecord>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| {
                let sql = format!(
                    "SELECT {CODE_COLUMNS} FROM authorization_codes \
                     WHERE hash = ?1 AND (expires_at > ?2 OR redeemed_at IS NOT NULL)"
                );
                let mut statement = tx.prepare_cached(&sql).db()?;
                let mut rows = statement.query(params![hash_blob(&code), time(now)]).db()?;
                match rows.next().db()? {
                    Some(row) => decode_code(row).map(Some),
                    None => Ok(None),
                }
            })
            .await
        })
    }

    fn redeem_code(
        &self,
        code: SecretHash,
        grant: GrantRecord,
        tokens: NewTokens,
        now: u64,
    ) -> BoxFuture<'_, Result<RedeemOutcome, StoreError>> {
        Box::pin(async move {
            let resources = resources_json(&grant.resources)?;
            let claims = encode_claims(&grant.claims)?;
            self.write(move |tx| {
                let code = hash_blob(&code);
                let won = tx
                    .execute(
                        "UPDATE authorization_codes SET redeemed_at = ?2 \
                         WHERE hash = ?1 AND redeemed_at IS NULL AND expires_at > ?2",
                        params![code, time(now)],
                    )
                    .db()?;
                if won == 0 {
                    let earlier: Option<(Option<i64>, Option<String>)> = tx
                        .query_row(
                            "SELECT redeemed_at, grant_id FROM authorization_codes WHERE hash = ?1",
                            params![code],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .optional()
                        .db()?;
                    return match earlier {
                        Some((Some(_), grant_id)) => {
                            let grant_id = grant_id.as_deref().map(read_grant_id).transpose()?;
                            if let Some(id) = &grant_id {
                                revoke(tx, id, now)?;
                            }
                            Ok(RedeemOutcome::AlreadyRedeemed { grant_id })
                        }
                        _ => Ok(RedeemOutcome::NotFound),
                    };
                }
                let keep_until = tokens
                    .access_expires_at
                    .max(grant.refresh_expires_at.unwrap_or(0))
                    .max(now);
                tx.execute(
                    "INSERT INTO grants (id, client_id, subject, scope, resources, auth_time, claims, \
                     created_at, refresh_expires_at, expires_at, revoked_at, status_list, status_idx, \
                     login, login_email) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, ?12, ?13, ?14)",
                    params![
                        grant.id.as_str(),
                        grant.client_id.as_str(),
                        grant.subject.as_str(),
                        grant.scope.as_str(),
                        resources,
                        time(grant.auth_time),
                        claims,
                        time(grant.created_at),
                        grant.refresh_expires_at.map(time),
                        time(keep_until),
                        grant.status.map(|s| time(s.list)),
                        grant.status.map(|s| time(s.index)),
                        grant.login.as_ref().map(login_name),
                        grant.login.as_ref().and_then(login_email),
                    ],
                )
                .db()?;
                insert_tokens(tx, &grant.id, &grant.client_id, &tokens, now)?;
                tx.execute(
                    "UPDATE authorization_codes SET grant_id = ?2 WHERE hash = ?1",
                    params![code, grant.id.as_str()],
                )
                .db()?;
                Ok(RedeemOutcome::Redeemed)
            })
            .await
        })
    }

    fn refresh_token(
        &self,
        token: SecretHash,
    ) -> BoxFuture<'_, Result<Option<RefreshTokenRecord>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| select_refresh_token(tx, &hash_blob(&token)))
                .await
        })
    }

    fn rotate_refresh_token(
        &self,
        token: SecretHash,
        tokens: NewTokens,
        now: u64,
    ) -> BoxFuture<'_, Result<RotateOutcome, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                let token = hash_blob(&token);
                let Some(record) = select_refresh_token(tx, &token)? else {
                    return Ok(RotateOutcome::Inactive);
                };
                if record.used_at.is_some() {
                    revoke(tx, &record.grant.id, now)?;
                    return Ok(RotateOutcome::Reused {
                        grant_id: record.grant.id,
                    });
                }
                if !record.is_active(now) {
                    return Ok(RotateOutcome::Inactive);
                }
                if let Some(status) = tokens.grant_status {
                    // The caller minted with this entry: it must become the grant's.
                    if record.grant.status.is_some() {
                        return Ok(RotateOutcome::Inactive);
                    }
                    tx.execute(
                        "UPDATE grants SET status_list = ?2, status_idx = ?3 \
                         WHERE id = ?1 AND status_idx IS NULL",
                        params![
                            record.grant.id.as_str(),
                            time(status.list),
                            time(status.index)
                        ],
                    )
                    .db()?;
                }
                let now_db = time(now);
                tx.execute(
                    "UPDATE refresh_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
                    params![token, now_db],
                )
                .db()?;
                insert_tokens(tx, &record.grant.id, &record.client_id, &tokens, now)?;
                tx.execute(
                    "UPDATE grants SET expires_at = MAX(expires_at, ?2) WHERE id = ?1",
                    params![record.grant.id.as_str(), time(tokens.access_expires_at)],
                )
                .db()?;
                Ok(RotateOutcome::Rotated)
            })
            .await
        })
    }

    fn access_token(
        &self,
        jti: &str,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<AccessTokenRecord>, StoreError>> {
        let jti = jti.to_owned();
        Box::pin(async move {
            self.read(move |tx| {
                let sql = format!(
                    "SELECT a.expires_at, {GRANT_COLUMNS} FROM access_tokens a \
                     JOIN grants g ON g.id = a.grant_id WHERE a.jti = ?1 AND a.expires_at > ?2"
                );
                let mut statement = tx.prepare_cached(&sql).db()?;
                let mut rows = statement.query(params![jti, time(now)]).db()?;
                let Some(row) = rows.next().db()? else {
                    return Ok(None);
                };
                let expires_at: i64 = row.get(0).db()?;
                Ok(Some(AccessTokenRecord {
                    jti,
                    grant: decode_grant(row, 1)?,
                    expires_at: read_time(expires_at)?,
                }))
            })
            .await
        })
    }

    fn revoke_grant(&self, grant: GrantId, now: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { self.write(move |tx| revoke(tx, &grant, now)).await })
    }

    fn live_grant_logins(
        &self,
        now: u64,
    ) -> BoxFuture<'_, Result<Vec<LiveGrantLogin>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| {
                let mut statement = tx
                    .prepare_cached(
                        "SELECT id, subject, login, login_email FROM grants \
                         WHERE revoked_at IS NULL AND login IS NOT NULL AND expires_at > ?1",
                    )
                    .db()?;
                let mut rows = statement.query(params![time(now)]).db()?;
                let mut grants = Vec::new();
                while let Some(row) = rows.next().db()? {
                    let id: String = row.get(0).db()?;
                    let subject: String = row.get(1).db()?;
                    let name: Option<String> = row.get(2).db()?;
                    let Some(login) = read_login(name.as_deref(), row.get(3).db()?)? else {
                        continue;
                    };
                    let subject = Subject::parse(&subject).map_err(|_| corrupt())?;
                    grants.push(LiveGrantLogin {
                        id: read_grant_id(&id)?,
                        subject,
                        login,
                    });
                }
                Ok(grants)
            })
            .await
        })
    }

    fn revoke_subject_grants(
        &self,
        subject: Subject,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                let mut statement = tx
                    .prepare_cached(
                        "SELECT id FROM grants WHERE subject = ?1 AND revoked_at IS NULL",
                    )
                    .db()?;
                let ids = statement
                    .query_map(params![subject.as_str()], |row| row.get::<_, String>(0))
                    .db()?
                    .collect::<Result<Vec<_>, _>>()
                    .db()?;
                let mut revoked = 0;
                for id in ids {
                    if revoke(tx, &read_grant_id(&id)?, now)? {
                        revoked += 1;
                    }
                }
                Ok(revoked)
            })
            .await
        })
    }

    fn subject_grants(
        &self,
        subject: Subject,
        now: u64,
    ) -> BoxFuture<'_, Result<Vec<GrantRecord>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| {
                let sql = format!(
                    "SELECT {GRANT_COLUMNS} FROM grants g \
                     WHERE g.subject = ?2 AND {LIVE_GRANT} ORDER BY g.created_at, g.id"
                );
                let mut statement = tx.prepare_cached(&sql).db()?;
                let mut rows = statement.query(params![time(now), subject.as_str()]).db()?;
                let mut grants = Vec::new();
                while let Some(row) = rows.next().db()? {
                    grants.push(decode_grant(row, 0)?);
                }
                Ok(grants)
            })
            .await
        })
    }

    fn revoke_subject_client_grants(
        &self,
        subject: Subject,
        client_id: ClientId,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                let sql = format!(
                    "SELECT g.id FROM grants g \
                     WHERE g.subject = ?2 AND g.client_id = ?3 AND {LIVE_GRANT}"
                );
                let mut statement = tx.prepare_cached(&sql).db()?;
                let ids = statement
                    .query_map(
                        params![time(now), subject.as_str(), client_id.as_str()],
                        |row| row.get::<_, String>(0),
                    )
                    .db()?
                    .collect::<Result<Vec<_>, _>>()
                    .db()?;
                let mut revoked = 0;
                for id in ids {
                    if revoke(tx, &read_grant_id(&id)?, now)? {
                        revoked += 1;
                    }
                }
                Ok(revoked)
            })
            .await
        })
    }

    fn allocate_status_index(
        &self,
        list_size: u64,
        now: u64,
    ) -> BoxFuture<'_, Result<StatusIndex, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                let newest: Option<(i64, i64, i64)> = tx
                    .query_row(
                        "SELECT list, size, allocated FROM status_lists ORDER BY list DESC LIMIT 1",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                    .db()?;
                if let Some((list, size, allocated)) = newest
                    && allocated < size
                {
                    tx.execute(
                        "UPDATE status_lists SET allocated = allocated + 1 WHERE list = ?1",
                        params![list],
                    )
                    .db()?;
                    return Ok(StatusIndex::new(read_time(list)?, read_time(allocated)?));
                }
                let list = newest.map_or(1, |(list, _, _)| list.saturating_add(1));
                tx.execute(
                    "INSERT INTO status_lists (list, size, allocated, revision, created_at) \
                     VALUES (?1, ?2, 1, 0, ?3)",
                    params![list, time(list_size), time(now)],
                )
                .db()?;
                Ok(StatusIndex::new(read_time(list)?, 0))
            })
            .await
        })
    }

    fn status_list_revision(&self, list: u64) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| {
                let revision: Option<i64> = tx
                    .query_row(
                        "SELECT revision FROM status_lists WHERE list = ?1",
                        params![time(list)],
                        |row| row.get(0),
                    )
                    .optional()
                    .db()?;
                revision.map(read_time).transpose()
            })
            .await
        })
    }

    fn status_list(
        &self,
        list: u64,
    ) -> BoxFuture<'_, Result<Option<StoredStatusList>, StoreError>> {
        Box::pin(async move {
            self.read(move |tx| {
                let row: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT size, revision FROM status_lists WHERE list = ?1",
                        params![time(list)],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .db()?;
                let Some((size, revision)) = row else {
                    return Ok(None);
                };
                let mut statement = tx
                    .prepare_cached("SELECT idx FROM status_revocations WHERE list = ?1")
                    .db()?;
                let mut rows = statement.query(params![time(list)]).db()?;
                let mut revoked = Vec::new();
                while let Some(row) = rows.next().db()? {
                    revoked.push(read_time(row.get(0).db()?)?);
                }
                Ok(Some(StoredStatusList::new(
                    list,
                    read_time(size)?,
                    read_time(revision)?,
                    revoked,
                )))
            })
            .await
        })
    }

    fn status_lists(&self) -> BoxFuture<'_, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            self.read(|tx| {
                let mut statement = tx
                    .prepare_cached("SELECT list FROM status_lists ORDER BY list")
                    .db()?;
                let mut rows = statement.query([]).db()?;
                let mut lists = Vec::new();
                while let Some(row) = rows.next().db()? {
                    lists.push(read_time(row.get(0).db()?)?);
                }
                Ok(lists)
            })
            .await
        })
    }

    fn load_keys(&self) -> BoxFuture<'_, Result<StoredKeys, StoreError>> {
        Box::pin(async move {
            self.read(|tx| {
                let version: i64 = tx
                    .query_row("SELECT version FROM key_ring WHERE id = 1", [], |row| {
                        row.get(0)
                    })
                    .db()?;
                let mut statement = tx
                    .prepare_cached(
                        "SELECT kid, pkcs8, created_at, activates_at, retires_at, drop_after \
                         FROM signing_keys ORDER BY activates_at",
                    )
                    .db()?;
                let mut rows = statement.query([]).db()?;
                let mut records = Vec::new();
                while let Some(row) = rows.next().db()? {
                    let kid: String = row.get(0).db()?;
                    let pkcs8: Vec<u8> = row.get(1).db()?;
                    records.push(KeyRecord::new(
                        kid,
                        Pkcs8Secret::from_der(pkcs8),
                        read_time(row.get(2).db()?)?,
                        read_time(row.get(3).db()?)?,
                        read_time(row.get(4).db()?)?,
                        read_time(row.get(5).db()?)?,
                    ));
                }
                Ok(StoredKeys::new(records, read_time(version)?))
            })
            .await
        })
    }

    fn save_keys(
        &self,
        records: Vec<KeyRecord>,
        expected_version: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                let version: i64 = tx
                    .query_row("SELECT version FROM key_ring WHERE id = 1", [], |row| {
                        row.get(0)
                    })
                    .db()?;
                if read_time(version)? != expected_version {
                    return Ok(None);
                }
                tx.execute("DELETE FROM signing_keys", []).db()?;
                for record in &records {
                    tx.execute(
                        "INSERT INTO signing_keys (kid, pkcs8, created_at, activates_at, retires_at, drop_after) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            record.kid,
                            record.pkcs8.secret_der(),
                            time(record.created_at),
                            time(record.activates_at),
                            time(record.retires_at),
                            time(record.drop_after),
                        ],
                    )
                    .db()?;
                }
                let next = expected_version.saturating_add(1);
                tx.execute(
                    "UPDATE key_ring SET version = ?1 WHERE id = 1",
                    params![time(next)],
                )
                .db()?;
                Ok(Some(next))
            })
            .await
        })
    }

    fn purge_expired(&self, now: u64) -> BoxFuture<'_, Result<PurgeReport, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                let now = time(now);
                let delete = |sql: &str| tx.execute(sql, params![now]).db().map(count);
                Ok(PurgeReport {
                    pending: delete("DELETE FROM pending_authorizations WHERE expires_at <= ?1")?,
                    codes: delete("DELETE FROM authorization_codes WHERE expires_at <= ?1")?,
                    access_tokens: delete("DELETE FROM access_tokens WHERE expires_at <= ?1")?,
                    refresh_tokens: delete(
                        "DELETE FROM refresh_tokens WHERE idle_expires_at <= ?1 OR grant_id IN \
                         (SELECT id FROM grants WHERE refresh_expires_at IS NULL OR refresh_expires_at <= ?1)",
                    )?,
                    grants: delete("DELETE FROM grants WHERE expires_at <= ?1")?,
                    login_states: delete("DELETE FROM login_states WHERE expires_at <= ?1")?,
                    clients: 0,
                })
            })
            .await
        })
    }

    fn purge_unused_clients(
        &self,
        unused_since: u64,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            self.write(move |tx| {
                tx.execute(
                    "DELETE FROM clients \
                     WHERE COALESCE(last_used_at, created_at) <= ?1 AND NOT EXISTS ( \
                       SELECT 1 FROM grants g WHERE g.client_id = clients.client_id \
                       AND g.revoked_at IS NULL AND ( \
                         EXISTS (SELECT 1 FROM access_tokens a \
                                 WHERE a.grant_id = g.id AND a.expires_at > ?2) \
                         OR (g.refresh_expires_at > ?2 AND EXISTS ( \
                               SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id \
                               AND r.used_at IS NULL AND r.idle_expires_at > ?2))))",
                    params![time(unused_since), time(now)],
                )
                .db()
                .map(count)
            })
            .await
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.read(|tx| {
                let one: i64 = tx.query_row("SELECT 1", [], |row| row.get(0)).db()?;
                if one == 1 {
                    Ok(())
                } else {
                    Err(StoreErrorKind::Backend.into())
                }
            })
            .await
        })
    }
}

/// Reads a pending authorization that has not expired (and has `status`, if given).
fn select_pending(
    tx: &Transaction<'_>,
    key: PendingKey,
    now: u64,
    status: Option<&str>,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let sql = format!(
        "SELECT {PENDING_COLUMNS} FROM pending_authorizations \
         WHERE key = ?1 AND expires_at > ?2 AND (?3 IS NULL OR status = ?3)"
    );
    let mut statement = tx.prepare_cached(&sql).db()?;
    let mut rows = statement
        .query(params![hash_blob(key.hash()), time(now), status])
        .db()?;
    match rows.next().db()? {
        Some(row) => decode_pending(row).map(Some),
        None => Ok(None),
    }
}

/// Reads the refresh token whose hash is `token`, with its grant.
fn select_refresh_token(
    tx: &Transaction<'_>,
    token: &[u8; 32],
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    let sql = format!(
        "SELECT r.client_id, r.scope, r.issued_at, r.idle_expires_at, r.used_at, {GRANT_COLUMNS} \
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = ?1"
    );
    let mut statement = tx.prepare_cached(&sql).db()?;
    let mut rows = statement.query(params![token]).db()?;
    let Some(row) = rows.next().db()? else {
        return Ok(None);
    };
    let client_id: String = row.get(0).db()?;
    let scope: String = row.get(1).db()?;
    let issued_at: i64 = row.get(2).db()?;
    let idle_expires_at: i64 = row.get(3).db()?;
    let used_at: Option<i64> = row.get(4).db()?;
    Ok(Some(RefreshTokenRecord {
        grant: decode_grant(row, 5)?,
        client_id: read_client_id(&client_id)?,
        scope: read_scope(&scope)?,
        issued_at: read_time(issued_at)?,
        idle_expires_at: read_time(idle_expires_at)?,
        used_at: used_at.map(read_time).transpose()?,
    }))
}

/// Stores the access token id and the refresh token (if any) of `tokens` under `grant`.
fn insert_tokens(
    tx: &Transaction<'_>,
    grant: &GrantId,
    client_id: &ClientId,
    tokens: &NewTokens,
    now: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO access_tokens (jti, grant_id, expires_at) VALUES (?1, ?2, ?3)",
        params![
            tokens.access_jti,
            grant.as_str(),
            time(tokens.access_expires_at)
        ],
    )
    .db()?;
    if let Some(refresh) = &tokens.refresh {
        tx.execute(
            "INSERT INTO refresh_tokens (hash, grant_id, client_id, scope, issued_at, idle_expires_at, used_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
            params![
                hash_blob(&refresh.hash),
                grant.as_str(),
                client_id.as_str(),
                refresh.scope.as_str(),
                time(now),
                time(refresh.idle_expires_at),
            ],
        )
        .db()?;
    }
    // The client's last use, for expiring unused dynamic clients (other clients have no
    // row here).
    tx.execute(
        "UPDATE clients SET last_used_at = ?2 WHERE client_id = ?1",
        params![client_id.as_str(), time(now)],
    )
    .db()?;
    Ok(())
}

/// Marks a grant revoked and sets its status list entry; whether it was active.
fn revoke(tx: &Transaction<'_>, grant: &GrantId, now: u64) -> Result<bool, StoreError> {
    let status: Option<(Option<i64>, Option<i64>)> = tx
        .query_row(
            "UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL \
             RETURNING status_list, status_idx",
            params![grant.as_str(), time(now)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .db()?;
    let Some(status) = status else {
        return Ok(false);
    };
    if let (Some(list), Some(idx)) = status {
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO status_revocations (list, idx, revoked_at) VALUES (?1, ?2, ?3)",
                params![list, idx, time(now)],
            )
            .db()?;
        if inserted > 0 {
            tx.execute(
                "UPDATE status_lists SET revision = revision + 1 WHERE list = ?1",
                params![list],
            )
            .db()?;
        }
    }
    Ok(true)
}
