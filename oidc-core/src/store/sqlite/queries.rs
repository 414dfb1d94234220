//! Statements shared by several [`ProviderStore`](crate::store::ProviderStore) methods.

use rusqlite::{OptionalExtension as _, Transaction, params};

use super::codec::{
    GRANT_COLUMNS, PENDING_COLUMNS, decode_grant_row, decode_pending_row, hash_blob,
    read_client_id, read_grant_id, read_scope, read_time, time,
};
use super::pool::DbResult as _;
use crate::store::{
    GrantId, NewTokens, PendingAuthorization, PendingKey, RefreshTokenRecord, StoreError,
};
use crate::types::ClientId;

/// Reads a pending authorization that has not expired (and has `status`, if given).
pub(super) fn select_pending(
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
        Some(row) => decode_pending_row(row).map(Some),
        None => Ok(None),
    }
}

/// Reads the refresh token whose hash is `token`, with its grant.
pub(super) fn select_refresh_token(
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
        grant: decode_grant_row(row, 5)?,
        client_id: read_client_id(&client_id)?,
        scope: read_scope(&scope)?,
        issued_at: read_time(issued_at)?,
        idle_expires_at: read_time(idle_expires_at)?,
        used_at: used_at.map(read_time).transpose()?,
    }))
}

/// Stores the access token id and the refresh token (if any) of `tokens` under `grant`.
pub(super) fn insert_tokens(
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
pub(super) fn revoke(tx: &Transaction<'_>, grant: &GrantId, now: u64) -> Result<bool, StoreError> {
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

/// Revokes each grant whose id `select` (with `params`) returns, as [`revoke`] does; how
/// many were active.
pub(super) fn revoke_selected(
    tx: &Transaction<'_>,
    select: &str,
    params: impl rusqlite::Params,
    now: u64,
) -> Result<u64, StoreError> {
    let ids = tx
        .prepare_cached(select)
        .db()?
        .query_map(params, |row| row.get::<_, String>(0))
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
}
