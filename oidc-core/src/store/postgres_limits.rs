//! [`PostgresLimitStore`]: the password lockout counters and the rate limit buckets in
//! PostgreSQL, shared by every replica of a provider.

use std::net::IpAddr;

use deadpool_postgres::{Pool, PoolError};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::error::{StoreError, StoreErrorKind};
use crate::authn::BoxFuture;
use crate::login::{FailureRecord, LockoutAnswer, LockoutOp, LockoutStore};
use crate::provider::rate_limit;
use crate::provider::{LimitedEndpoint, RateDecision, RateLimit, RateLimitStore};

/// Rows for keys that have none yet, with no failures (the same, to the policy, as no
/// row), so that every key of an operation has a row to lock. Sorted, so that concurrent
/// operations take their locks in one order.
const INSERT_PLACEHOLDERS: &str = "
INSERT INTO oidc_login_failures (kind, key, failures, last_failure, locked_until)
SELECT k.kind, k.key, 0, 0, 0 FROM unnest($1::smallint[], $2::text[]) AS k(kind, key)
ORDER BY k.kind, k.key
ON CONFLICT (kind, key) DO NOTHING";

const SELECT_FOR_UPDATE: &str = "
SELECT f.kind, f.key, f.failures, f.last_failure, f.locked_until
FROM oidc_login_failures f
JOIN unnest($1::smallint[], $2::text[]) AS k(kind, key) ON f.kind = k.kind AND f.key = k.key
ORDER BY f.kind, f.key
FOR UPDATE OF f";

const UPDATE_RECORDS: &str = "
UPDATE oidc_login_failures f
SET failures = u.failures, last_failure = u.last_failure, locked_until = u.locked_until
FROM unnest($1::smallint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
    AS u(kind, key, failures, last_failure, locked_until)
WHERE f.kind = u.kind AND f.key = u.key";

const DELETE_RECORDS: &str = "
DELETE FROM oidc_login_failures f
USING unnest($1::smallint[], $2::text[]) AS d(kind, key)
WHERE f.kind = d.kind AND f.key = d.key";

/// Skips rows an operation holds, so that a purge never waits for (or deadlocks with)
/// a login; it gets them next time.
const PURGE_RECORDS: &str = "
DELETE FROM oidc_login_failures
WHERE (kind, key) IN (
    SELECT kind, key FROM oidc_login_failures
    WHERE greatest(last_failure, locked_until) <= $1::bigint
    FOR UPDATE SKIP LOCKED)";

/// One take from a bucket, in one statement: the refill is computed from the stored
/// bucket and the `now` passed in, as [`MemoryRateLimitStore`](crate::provider::MemoryRateLimitStore)
/// computes it (integers, units of 1/60 000 request, elapsed time capped at a full refill
/// so nothing overflows). `$1` endpoint, `$2` client, `$3` capacity, `$4` units per
/// second, `$5` now, `$6` seconds to refill completely, `$7` one request. A refused take
/// still stores the refill, as the memory store does; `taken` says which it was.
const TAKE: &str = "
INSERT INTO oidc_rate_buckets AS b (endpoint, client, tokens, updated_at, taken)
VALUES ($1::text, $2::text, $3::bigint - $7::bigint, $5::bigint, true)
ON CONFLICT (endpoint, client) DO UPDATE SET
    tokens = least($3, b.tokens + least(greatest($5 - b.updated_at, 0), $6::bigint) * $4::bigint)
        - CASE WHEN least($3, b.tokens + least(greatest($5 - b.updated_at, 0), $6) * $4) >= $7
               THEN $7 ELSE 0 END,
    updated_at = greatest(b.updated_at, $5),
    taken = least($3, b.tokens + least(greatest($5 - b.updated_at, 0), $6) * $4) >= $7
RETURNING tokens, taken";

/// The buckets of an endpoint that are full again at `$2`.
const PURGE_BUCKETS: &str = "
DELETE FROM oidc_rate_buckets
WHERE endpoint = $1::text
  AND tokens + least(greatest($2::bigint - updated_at, 0), $3::bigint) * $4::bigint >= $5::bigint";

/// The password lockout counters ([`LockoutStore`]) and the rate limit buckets
/// ([`RateLimitStore`]) in PostgreSQL, over a [`deadpool_postgres::Pool`] the caller
/// builds (TLS, size and credentials are the caller's). Give the same store (or stores
/// on the same database) to every replica: they then count together, and decide exactly
/// as one replica with the memory stores would for the same sequence of requests.
///
/// - A lockout operation is one short transaction: `INSERT … ON CONFLICT DO NOTHING`
///   placeholder rows, `SELECT … FOR UPDATE` of its (at most three) rows in key order,
///   the policy applied in Rust ([`LockoutOp::apply`]), the changed rows written back.
///   Concurrent attempts on a common key wait for each other, so only one can take the
///   last allowed attempt, whichever replica they reach.
/// - A rate limit take is a single `INSERT … ON CONFLICT DO UPDATE … RETURNING`
///   (a prepared statement: one round trip) computing the refill in SQL.
/// - Time is always the `now` passed in (the provider's clock), never the database's.
/// - Rows are bounded by purging: lockout counters quiet for a window (the password login
///   does it about once per window), buckets full again (provider maintenance).
/// - Usernames (case-folded, at most 64 characters) and client addresses are stored as
///   they are: neither is a secret, and an operator can see who is locked.
///
/// Use [`RecyclingMethod::Fast`](deadpool_postgres::RecyclingMethod::Fast) (deadpool's
/// default) so that taking a connection from the pool costs no round trip.
///
/// ```no_run
/// use std::sync::Arc;
/// use deadpool_postgres::{Config, Runtime};
/// use oidc_core::store::PostgresLimitStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = Config::new();
/// config.url = Some("postgres://oidc@db.internal/oidc".into());
/// let pool = config.create_pool(Some(Runtime::Tokio1), tokio_postgres::NoTls)?;
/// let limits = Arc::new(PostgresLimitStore::new(pool).await?);
/// // Provider::builder(config, store).rate_limit_store(limits.clone())
/// // Passwords::new(users, &issuer, state).with_lockout_store(limits)
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresLimitStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresLimitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLimitStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PostgresLimitStore {
    /// The key of the transaction-scoped advisory lock held while the tables are created
    /// (`"oidclimt"` in ASCII), so that replicas starting together do not race on
    /// `CREATE TABLE IF NOT EXISTS`. Distinct from any other lock key of this crate.
    pub const SCHEMA_LOCK_KEY: i64 = 0x6f69_6463_6c69_6d74;

    /// The tables, created by [`new`](Self::new) (or run by the operator).
    ///
    /// `oidc_login_failures` is logged: a lock must survive a failover. `oidc_rate_buckets`
    /// is `UNLOGGED` (no WAL; emptied after a crash, not replicated): losing buckets only
    /// refills them, and every token request writes one; `fillfactor` leaves room for HOT
    /// updates. Neither has a secondary index: purges scan, a few times an hour, while every
    /// request would pay for an index.
    pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS oidc_login_failures (
    kind smallint NOT NULL,
    key text NOT NULL,
    failures bigint NOT NULL,
    last_failure bigint NOT NULL,
    locked_until bigint NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE UNLOGGED TABLE IF NOT EXISTS oidc_rate_buckets (
    endpoint text NOT NULL,
    client text NOT NULL,
    tokens bigint NOT NULL,
    updated_at bigint NOT NULL,
    taken boolean NOT NULL,
    PRIMARY KEY (endpoint, client)
) WITH (fillfactor = 70);
";

    /// The store over `pool`, creating its tables ([`SCHEMA`](Self::SCHEMA)) if they do not exist,
    /// under a transaction-scoped advisory lock ([`SCHEMA_LOCK_KEY`](Self::SCHEMA_LOCK_KEY)) so that replicas
    /// starting together do not race.
    ///
    /// # Errors
    ///
    /// The database could not be reached or refused the statements.
    pub async fn new(pool: Pool) -> Result<PostgresLimitStore, StoreError> {
        let store = PostgresLimitStore::with_existing_tables(pool);
        store.create_tables().await?;
        Ok(store)
    }

    /// The store over `pool`, whose database already has the tables (the operator ran
    /// [`SCHEMA`](Self::SCHEMA)). Does no I/O.
    pub fn with_existing_tables(pool: Pool) -> PostgresLimitStore {
        PostgresLimitStore { pool }
    }

    async fn create_tables(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&Self::SCHEMA_LOCK_KEY],
        )
        .await
        .map_err(backend)?;
        tx.batch_execute(Self::SCHEMA).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn apply_op(&self, op: LockoutOp) -> Result<LockoutAnswer, StoreError> {
        let kinds: Vec<i16> = op
            .keys()
            .iter()
            .map(|k| i16::from(k.kind.number()))
            .collect();
        let keys: Vec<&str> = op.keys().iter().map(|k| k.key.as_str()).collect();
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(backend)?;
        let insert = tx
            .prepare_cached(INSERT_PLACEHOLDERS)
            .await
            .map_err(backend)?;
        let select = tx
            .prepare_cached(SELECT_FOR_UPDATE)
            .await
            .map_err(backend)?;
        let mut rows = Vec::new();
        // A purge may delete a quiet row between the insert (which does not lock an
        // existing row) and the lock: then insert again, until every key's row is ours.
        for _ in 0..3 {
            tx.execute(&insert, &[&kinds, &keys])
                .await
                .map_err(backend)?;
            rows = tx.query(&select, &[&kinds, &keys]).await.map_err(backend)?;
            if rows.len() == keys.len() {
                break;
            }
        }
        if rows.len() != keys.len() {
            return Err(StoreErrorKind::Busy.into());
        }
        let mut records: Vec<Option<FailureRecord>> = vec![None; keys.len()];
        for row in &rows {
            let kind: i16 = row.try_get(0).map_err(corrupt)?;
            let key: &str = row.try_get(1).map_err(corrupt)?;
            if let Some(i) = (0..keys.len()).find(|&i| kinds[i] == kind && keys[i] == key) {
                records[i] = record_of(row)?;
            }
        }
        let before = records.clone();
        let answer = op.apply(&mut records);

        let mut deleted = (Vec::new(), Vec::new());
        let mut updated = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (before, after)) in before.iter().zip(&records).enumerate() {
            match after {
                // A placeholder left empty goes too.
                None => {
                    deleted.0.push(kinds[i]);
                    deleted.1.push(keys[i]);
                }
                Some(after) if before.as_ref() != Some(after) => {
                    updated.0.push(kinds[i]);
                    updated.1.push(keys[i]);
                    updated.2.push(i64::from(after.failures));
                    updated.3.push(to_sql(after.last_failure));
                    updated.4.push(to_sql(after.locked_until));
                }
                Some(_) => {}
            }
        }
        if !deleted.0.is_empty() {
            let delete = tx.prepare_cached(DELETE_RECORDS).await.map_err(backend)?;
            tx.execute(&delete, &[&deleted.0, &deleted.1])
                .await
                .map_err(backend)?;
        }
        if !updated.0.is_empty() {
            let update = tx.prepare_cached(UPDATE_RECORDS).await.map_err(backend)?;
            tx.execute(
                &update,
                &[&updated.0, &updated.1, &updated.2, &updated.3, &updated.4],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(answer)
    }

    async fn take_one(
        &self,
        endpoint: LimitedEndpoint,
        client: Option<IpAddr>,
        limit: RateLimit,
        now: u64,
    ) -> Result<RateDecision, StoreError> {
        let client_key = client.map_or_else(|| "*".to_owned(), |ip| ip.to_string());
        let db = self.pool.get().await.map_err(pool_error)?;
        let take = db.prepare_cached(TAKE).await.map_err(backend)?;
        let row = db
            .query_one(
                &take,
                &[
                    &endpoint.name(),
                    &client_key,
                    &to_sql(limit.capacity()),
                    &to_sql(limit.rate()),
                    &to_sql(now),
                    &to_sql(limit.refill_secs()),
                    &to_sql(rate_limit::UNIT),
                ],
            )
            .await
            .map_err(backend)?;
        let tokens: i64 = row.try_get(0).map_err(corrupt)?;
        let taken: bool = row.try_get(1).map_err(corrupt)?;
        if taken {
            return Ok(RateDecision::Allowed);
        }
        let tokens =
            u64::try_from(tokens).map_err(|_| StoreError::from(StoreErrorKind::Corrupt))?;
        Ok(RateDecision::Limited {
            retry_after: rate_limit::retry_after(limit, tokens),
        })
    }

    async fn purge_buckets(
        &self,
        endpoint: LimitedEndpoint,
        limit: RateLimit,
        now: u64,
    ) -> Result<u64, StoreError> {
        let db = self.pool.get().await.map_err(pool_error)?;
        db.execute(
            PURGE_BUCKETS,
            &[
                &endpoint.name(),
                &to_sql(now),
                &to_sql(limit.refill_secs()),
                &to_sql(limit.rate()),
                &to_sql(limit.capacity()),
            ],
        )
        .await
        .map_err(backend)
    }

    async fn purge_records(&self, quiet_since: u64) -> Result<u64, StoreError> {
        let db = self.pool.get().await.map_err(pool_error)?;
        db.execute(PURGE_RECORDS, &[&to_sql(quiet_since)])
            .await
            .map_err(backend)
    }
}

impl LockoutStore for PostgresLimitStore {
    fn apply(&self, op: LockoutOp) -> BoxFuture<'_, Result<LockoutAnswer, StoreError>> {
        Box::pin(self.apply_op(op))
    }

    fn purge(&self, quiet_since: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.purge_records(quiet_since))
    }
}

impl RateLimitStore for PostgresLimitStore {
    fn take(
        &self,
        endpoint: LimitedEndpoint,
        client: Option<IpAddr>,
        limit: RateLimit,
        now: u64,
    ) -> BoxFuture<'_, Result<RateDecision, StoreError>> {
        Box::pin(self.take_one(endpoint, client, limit, now))
    }

    fn purge(
        &self,
        endpoint: LimitedEndpoint,
        limit: RateLimit,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.purge_buckets(endpoint, limit, now))
    }
}

/// A row of `oidc_login_failures`; a placeholder (no failures, no lock) is no record.
fn record_of(row: &Row) -> Result<Option<FailureRecord>, StoreError> {
    let failures: i64 = row.try_get(2).map_err(corrupt)?;
    let last_failure: i64 = row.try_get(3).map_err(corrupt)?;
    let locked_until: i64 = row.try_get(4).map_err(corrupt)?;
    let bad = |_| StoreError::from(StoreErrorKind::Corrupt);
    let record = FailureRecord {
        failures: u32::try_from(failures).map_err(bad)?,
        last_failure: u64::try_from(last_failure).map_err(bad)?,
        locked_until: u64::try_from(locked_until).map_err(bad)?,
    };
    Ok(Some(record).filter(|r| r.failures != 0 || r.locked_until != 0))
}

/// Unix seconds and bucket units as `bigint` (saturating; none comes near).
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn backend(error: tokio_postgres::Error) -> StoreError {
    let kind = match error.code() {
        Some(code)
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            StoreErrorKind::Busy
        }
        _ if error.is_closed() => StoreErrorKind::Unavailable,
        _ => StoreErrorKind::Backend,
    };
    StoreError::with_source(kind, error)
}

fn corrupt(error: tokio_postgres::Error) -> StoreError {
    StoreError::with_source(StoreErrorKind::Corrupt, error)
}

/// The pool could not hand out a connection: the database is unreachable, or every
/// connection is busy past the pool's timeout.
fn pool_error(error: PoolError) -> StoreError {
    StoreError::with_source(StoreErrorKind::Unavailable, error)
}
