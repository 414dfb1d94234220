//! Schema migrations, recorded in a `schema_migrations` table.
//!
//! `MIGRATIONS[n]` takes a database from version `n` to `n + 1`. A new schema version is a
//! new entry; released entries never change.

use deadpool_postgres::Object;
use tokio_postgres::Transaction;

use super::pool::DbResult as _;
use super::queries::get;
use crate::store::{StoreError, StoreErrorKind};

/// Every migration, oldest first.
const MIGRATIONS: &[&str] = &[include_str!("schema_v1.sql")];

/// The advisory lock key that serialises migrations between processes: the first 8 bytes
/// of SHA-256("oidc-core provider schema").
const MIGRATION_LOCK: i64 = 0x74eb_5f33_6654_6b2d;

/// Creates `schema` if it is given and missing, and brings it (or the session's default
/// schema) to the newest version.
///
/// Everything runs in one transaction that first takes a transaction-level advisory lock:
/// replicas starting together queue on the lock, and each one after the first finds the
/// migrations applied. A transaction-level lock (rather than a session-level one) is
/// released by the commit or rollback, and by PostgreSQL if the connection drops, so a
/// failed start never leaves it held on a pooled connection.
pub(super) async fn migrate(
    connection: &mut Object,
    schema: Option<&str>,
) -> Result<(), StoreError> {
    let tx = connection.transaction().await.db()?;
    match apply(&tx, schema).await {
        Ok(()) => tx.commit().await.db(),
        Err(error) => {
            // Roll back now, so that the lock is released before the error is returned
            // (a dropped transaction would only queue the rollback).
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "could not roll back a failed migration");
            }
            Err(error)
        }
    }
}

/// The steps of [`migrate`], inside its transaction.
async fn apply(tx: &Transaction<'_>, schema: Option<&str>) -> Result<(), StoreError> {
    // Waiting for another replica's migration is not a slow statement.
    tx.batch_execute("SET LOCAL statement_timeout = 0")
        .await
        .db()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .db()?;
    if let Some(schema) = schema {
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await
            .db()?;
        if exists.is_none() {
            // `schema` was checked to be a plain lower-case identifier.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .db()?;
        }
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ( \
             version BIGINT PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .db()?;
    let applied: i64 = get(
        &tx.query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .db()?,
        0,
    )?;
    let Ok(applied) = usize::try_from(applied) else {
        return Err(StoreErrorKind::Corrupt.into());
    };
    if applied > MIGRATIONS.len() {
        return Err(StoreErrorKind::UnsupportedSchema.into());
    }
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(migration).await.db()?;
        let new_version = i64::try_from(version + 1).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&new_version],
        )
        .await
        .db()?;
        tracing::debug!(
            version = new_version,
            "migrated the provider database schema"
        );
    }
    Ok(())
}
