//! Schema migrations, tracked in a `schema_migrations` table.
//!
//! `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`. A new schema
//! version is a new entry; existing entries never change once released. Every
//! replica migrates at connect; a session advisory lock makes them take turns,
//! so exactly one applies each migration and the others find it done.

use tokio_postgres::Client;

use super::error::PgResult;
use crate::store::{ErrorKind, StoreError};

/// Every migration, oldest first.
const MIGRATIONS: &[&str] = &[include_str!("schema_v1.sql")];

/// The advisory lock key of the memory store's migrations: `"mcp_mems"` in
/// ASCII, apart from the keys of other services sharing the database.
const MIGRATION_LOCK: i64 = 0x6D63_705F_6D65_6D73;

/// Brings the schema to the newest version. `schema`, if given, is created
/// first and is where every table goes (the connections' `search_path`).
pub(super) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .pg()?;
    let migrated = migrate_locked(client, schema).await;
    // Unlocked also if migrating failed; a closed connection releases it anyway.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .pg();
    migrated.and(unlocked.map(drop))
}

async fn migrate_locked(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    if let Some(schema) = schema {
        // The name is a checked identifier (`SchemaName`), safe to quote into SQL.
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .pg()?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .pg()?;
    let found: i32 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .pg()?
        .try_get(0)
        .pg()?;
    let supported = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if found > supported {
        return Err(ErrorKind::UnsupportedSchema {
            found: i64::from(found),
            supported: i64::from(supported),
        }
        .into());
    }
    let Ok(applied) = usize::try_from(found) else {
        return Err(ErrorKind::Corrupt.into());
    };
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = i32::try_from(version + 1).unwrap_or(i32::MAX);
        let transaction = client.transaction().await.pg()?;
        transaction.batch_execute(migration).await.pg()?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .pg()?;
        transaction.commit().await.pg()?;
        tracing::info!(version, "migrated the memory database schema");
    }
    Ok(())
}
