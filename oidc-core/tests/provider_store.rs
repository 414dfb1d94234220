//! The stores on their own: the behaviour every `ProviderStore` must have (the suite in
//! `store_suite/`) on SQLite and on PostgreSQL (feature `postgres`), then what is
//! SQLite's own: schema versions, file permissions, and that bearer values never reach
//! the file.

// Helpers outside `#[test]` functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod provider_common;
#[macro_use]
mod store_suite;

use std::sync::Arc;

use oidc_core::store::{ProviderStore, SqliteStore, StoreErrorKind};
use oidc_core::types::ClientId;
use provider_common::*;

mod sqlite {
    use super::*;

    /// A fresh store in a temporary directory.
    async fn open() -> (tempfile::TempDir, Arc<dyn ProviderStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("provider.db")).unwrap();
        (dir, Arc::new(store))
    }

    store_suite!(open);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use provider_common::postgres::TestSchema;

    /// A fresh store in a schema of its own.
    async fn open() -> (TestSchema, Arc<dyn ProviderStore>) {
        let schema = TestSchema::create().await;
        let store = schema.store().await;
        (schema, Arc::new(store))
    }

    store_suite!(open);
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provider.db");
    drop(SqliteStore::open(&path).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let error = SqliteStore::open(&path).unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::UnsupportedSchema);
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_and_its_clients_expire_from_registration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provider.db");
    // A database as version 1 left it, with one registered client.
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch(include_str!("../src/store/sqlite/schema_v1.sql"))
        .unwrap();
    connection.pragma_update(None, "user_version", 1).unwrap();
    connection
        .execute(
            "INSERT INTO clients (client_id, data, secret_hash, created_at) VALUES (?1, ?2, NULL, ?3)",
            rusqlite::params![
                "old-client",
                r#"{"name":"Old","redirect_uris":["https://old.example/cb"],"auth_method":"none","refresh_tokens":false}"#,
                T0 as i64,
            ],
        )
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(&path).unwrap();
    let id = ClientId::parse("old-client").unwrap();
    assert!(
        store.client(&id).await.unwrap().is_some(),
        "kept by the upgrade"
    );
    // Never used: its registration time counts.
    assert_eq!(store.purge_unused_clients(T0 - 1, T0).await.unwrap(), 0);
    assert_eq!(store.purge_unused_clients(T0, T0).await.unwrap(), 1);
    assert!(store.client(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_database_uses_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provider.db");
    let _store = SqliteStore::open(&path).unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provider.db");
    let _store = SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn bearer_values_never_reach_the_database_file() {
    let p = start().await;
    let pkce = pkce();
    let location = p
        .authorize_and_approve(&TestProvider::authorize_params(
            PUBLIC,
            PUBLIC_REDIRECT,
            &pkce,
        ))
        .await;
    let code = location["code"].clone();
    let tokens = tokens_of(&p.redeem(&code, &pkce.verifier).await);
    let registered = p
        .post_json(
            "/register",
            &serde_json::json!({"redirect_uris": ["https://app.example/cb"]}),
        )
        .await
        .json();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let refresh = tokens.refresh_token.unwrap();

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(p.dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(SUBJECT), "the scan sees the data");
    for (what, value) in [
        ("code", code.as_str()),
        ("refresh token", refresh.as_str()),
        ("client secret", secret.as_str()),
        ("access token", tokens.access_token.as_str()),
    ] {
        assert!(!contains(value), "the {what} is stored in plain text");
    }
}
