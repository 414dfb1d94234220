//! Schema migrations, tracked in SQLite's `user_version` pragma.
//!
//! `MIGRATIONS[n]` takes a database from version `n` to `n + 1`. A new schema
//! version is a new entry; existing entries never change once released.

use rusqlite::{Connection, TransactionBehavior};

use super::row::DbResult;
use crate::store::{ErrorKind, StoreError};

/// Every migration, oldest first.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
];

/// Brings the database to the newest schema version, in one transaction.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let found: i64 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .db()?;
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let Ok(applied) = usize::try_from(found) else {
        return Err(ErrorKind::Corrupt.into());
    };
    if found > supported {
        return Err(ErrorKind::UnsupportedSchema { found, supported }.into());
    }
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction.execute_batch(migration).db()?;
        let new_version = i64::try_from(version + 1).unwrap_or(i64::MAX);
        transaction
            .pragma_update(None, "user_version", new_version)
            .db()?;
        tracing::debug!(version = new_version, "migrated the memory database schema");
    }
    transaction.commit().db()
}

/// The newest schema version.
#[cfg(test)]
pub(super) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        migrate(&mut connection).unwrap();
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let error = migrate(&mut connection).unwrap_err();
        assert_eq!(
            error.kind(),
            &ErrorKind::UnsupportedSchema {
                found: latest_version() + 1,
                supported: latest_version()
            }
        );
    }

    #[test]
    fn deleted_rows_must_be_wiped() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        connection
            .execute("INSERT INTO owners (id, subject) VALUES (1, 'a')", [])
            .unwrap();
        let inserted = connection.execute(
            "INSERT INTO memories (id, owner_id, text, metadata, app, state, created_at, updated_at) \
             VALUES (zeroblob(16), 1, 'secret', '{}', 'app', 'deleted', 0, 0)",
            [],
        );
        assert!(inserted.is_err());
    }

    #[test]
    fn a_memory_cannot_change_owner() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        connection
            .execute_batch(
                "INSERT INTO owners (id, subject) VALUES (1, 'a'), (2, 'b');
                 INSERT INTO memories (id, owner_id, text, metadata, app, state, created_at, updated_at)
                 VALUES (zeroblob(16), 1, 'mine', '{}', 'app', 'active', 0, 0);",
            )
            .unwrap();
        let moved = connection.execute("UPDATE memories SET owner_id = 2", []);
        assert!(moved.is_err());
    }

    #[test]
    fn a_category_cannot_name_another_owners_memory() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .pragma_update(None, "foreign_keys", true)
            .unwrap();
        migrate(&mut connection).unwrap();
        connection
            .execute_batch(
                "INSERT INTO owners (id, subject) VALUES (1, 'a'), (2, 'b');
                 INSERT INTO memories (seq, id, owner_id, text, metadata, app, state, created_at, updated_at)
                 VALUES (10, zeroblob(16), 1, 'mine', '{}', 'app', 'active', 0, 0);",
            )
            .unwrap();
        let foreign = connection.execute(
            "INSERT INTO memory_categories (memory_seq, owner_id, category) VALUES (10, 2, 'x')",
            [],
        );
        assert!(foreign.is_err());
    }
}
