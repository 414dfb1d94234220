//! Schema migrations, tracked in SQLite's `user_version` pragma.
//!
//! `MIGRATIONS[n]` takes a database from version `n` to `n + 1`. A new schema version is a
//! new entry; released entries never change.

use rusqlite::{Connection, TransactionBehavior};

use super::pool::DbResult as _;
use crate::store::{StoreError, StoreErrorKind};

/// Every migration, oldest first.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
];

/// Brings the database to the newest schema version, in one transaction.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let found: i64 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .db()?;
    let Ok(applied) = usize::try_from(found) else {
        return Err(StoreErrorKind::Corrupt.into());
    };
    if applied > MIGRATIONS.len() {
        return Err(StoreErrorKind::UnsupportedSchema.into());
    }
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction.execute_batch(migration).db()?;
        let new_version = i64::try_from(version + 1).unwrap_or(i64::MAX);
        transaction
            .pragma_update(None, "user_version", new_version)
            .db()?;
        tracing::debug!(
            version = new_version,
            "migrated the provider database schema"
        );
    }
    transaction.commit().db()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(connection: &Connection) -> i64 {
        connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(version(&connection), 4);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.pragma_update(None, "user_version", 5).unwrap();
        let error = migrate(&mut connection).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::UnsupportedSchema);
    }
}
