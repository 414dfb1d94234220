//! Statements shared by several [`ProviderStore`](crate::store::ProviderStore) methods, and
//! reading rows into records.

use tokio_postgres::types::FromSql;
use tokio_postgres::{Row, Transaction};

use super::pool::DbResult as _;
use crate::store::codec::{
    GrantRow, corrupt_because, decode_code, decode_grant, decode_pending, read_client_id,
    read_grant_id, read_scope, read_time, time,
};
use crate::store::{
    AuthorizationCodeRecord, GrantId, GrantRecord, NewTokens, PendingAuthorization, PendingKey,
    RefreshTokenRecord, StoreError,
};
use crate::types::ClientId;

/// The columns of a pending authorization, JSON as text.
pub(super) const PENDING_COLUMNS: &str =
    "request::text, status, \"user\"::text, consent_csrf, expires_at";

/// The columns of a code, JSON as text.
pub(super) const CODE_COLUMNS: &str = "data::text, expires_at, redeemed_at, grant_id";

/// The columns of a grant row, from `grants` aliased as `g`, JSON as text.
pub(super) const GRANT_COLUMNS: &str = "g.id, g.client_id, g.subject, g.scope, \
     g.resources::text, g.auth_time, g.claims::text, g.created_at, g.refresh_expires_at, \
     g.revoked_at, g.status_list, g.status_idx, g.login, g.login_email";

/// Column `index` of `row`; a value of the wrong type is corrupt data.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(corrupt_because)
}

/// Decodes a row read with [`PENDING_COLUMNS`].
pub(super) fn decode_pending_row(row: &Row) -> Result<PendingAuthorization, StoreError> {
    decode_pending(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
    )
}

/// Decodes a row read with [`CODE_COLUMNS`].
pub(super) fn decode_code_row(row: &Row) -> Result<AuthorizationCodeRecord, StoreError> {
    decode_code(get(row, 0)?, get(row, 1)?, get(row, 2)?, get(row, 3)?)
}

/// Decodes the [`GRANT_COLUMNS`] of a row, starting at column `first`.
pub(super) fn decode_grant_row(row: &Row, first: usize) -> Result<GrantRecord, StoreError> {
    decode_grant(GrantRow {
        id: get(row, first)?,
        client_id: get(row, first + 1)?,
        subject: get(row, first + 2)?,
        scope: get(row, first + 3)?,
        resources: get(row, first + 4)?,
        auth_time: get(row, first + 5)?,
        claims: get(row, first + 6)?,
        created_at: get(row, first + 7)?,
        refresh_expires_at: get(row, first + 8)?,
        revoked_at: get(row, first + 9)?,
        status_list: get(row, first + 10)?,
        status_idx: get(row, first + 11)?,
        login: get(row, first + 12)?,
        login_email: get(row, first + 13)?,
    })
}

/// Reads a pending authorization that has not expired (and has `status`, if given). With
/// `lock`, the row is locked until the transaction ends (`FOR UPDATE`): a concurrent
/// caller waits, then sees the row as this transaction left it.
pub(super) async fn select_pending(
    tx: &Transaction<'_>,
    key: PendingKey,
    now: u64,
    status: Option<&str>,
    lock: bool,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let sql = format!(
        "SELECT {PENDING_COLUMNS} FROM pending_authorizations \
         WHERE key = $1 AND expires_at > $2 AND ($3::text IS NULL OR status = $3){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = tx
        .query_opt(&sql, &[&&key.hash().as_bytes()[..], &time(now), &status])
        .await
        .db()?;
    row.as_ref().map(decode_pending_row).transpose()
}

/// Reads the refresh token whose hash is `token`, with its grant. With `lock`, both rows
/// are locked until the transaction ends.
pub(super) async fn select_refresh_token(
    tx: &Transaction<'_>,
    token: &[u8],
    lock: bool,
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    let sql = format!(
        "SELECT r.client_id, r.scope, r.issued_at, r.idle_expires_at, r.used_at, {GRANT_COLUMNS} \
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = $1{}",
        if lock { " FOR UPDATE OF r, g" } else { "" }
    );
    let Some(row) = tx.query_opt(&sql, &[&token]).await.db()? else {
        return Ok(None);
    };
    let client_id: String = get(&row, 0)?;
    let scope: String = get(&row, 1)?;
    let used_at: Option<i64> = get(&row, 4)?;
    Ok(Some(RefreshTokenRecord {
        grant: decode_grant_row(&row, 5)?,
        client_id: read_client_id(&client_id)?,
        scope: read_scope(&scope)?,
        issued_at: read_time(get(&row, 2)?)?,
        idle_expires_at: read_time(get(&row, 3)?)?,
        used_at: used_at.map(read_time).transpose()?,
    }))
}

/// Stores the access token id and the refresh token (if any) of `tokens` under `grant`,
/// and records `now` as the client's last use.
pub(super) async fn insert_tokens(
    tx: &Transaction<'_>,
    grant: &GrantId,
    client_id: &ClientId,
    tokens: &NewTokens,
    now: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)",
        &[
            &tokens.access_jti,
            &grant.as_str(),
            &time(tokens.access_expires_at),
        ],
    )
    .await
    .db()?;
    if let Some(refresh) = &tokens.refresh {
        tx.execute(
            "INSERT INTO refresh_tokens (hash, grant_id, client_id, scope, issued_at, idle_expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
            &[
                &&refresh.hash.as_bytes()[..],
                &grant.as_str(),
                &client_id.as_str(),
                &refresh.scope.as_str(),
                &time(now),
                &time(refresh.idle_expires_at),
            ],
        )
        .await
        .db()?;
    }
    // The client's last use, for expiring unused dynamic clients (other clients have no
    // row here).
    tx.execute(
        "UPDATE clients SET last_used_at = $2 WHERE client_id = $1",
        &[&client_id.as_str(), &time(now)],
    )
    .await
    .db()?;
    Ok(())
}

/// Marks a grant revoked and sets its status list entry; whether it was active. The
/// conditional update locks the grant row, so of two concurrent revocations one sees it
/// active.
pub(super) async fn revoke(
    tx: &Transaction<'_>,
    grant: &GrantId,
    now: u64,
) -> Result<bool, StoreError> {
    let Some(row) = tx
        .query_opt(
            "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING status_list, status_idx",
            &[&grant.as_str(), &time(now)],
        )
        .await
        .db()?
    else {
        return Ok(false);
    };
    let list: Option<i64> = get(&row, 0)?;
    let idx: Option<i64> = get(&row, 1)?;
    if let (Some(list), Some(idx)) = (list, idx) {
        let inserted = tx
            .execute(
                "INSERT INTO status_revocations (list, idx, revoked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&list, &idx, &time(now)],
            )
            .await
            .db()?;
        if inserted > 0 {
            tx.execute(
                "UPDATE status_lists SET revision = revision + 1 WHERE list = $1",
                &[&list],
            )
            .await
            .db()?;
        }
    }
    Ok(true)
}

/// Revokes each grant whose id `select` (with `params`) returns, as [`revoke`] does; how
/// many were active. `select` should lock the rows it returns in a fixed order
/// (`ORDER BY id FOR UPDATE`), so two such calls cannot deadlock.
pub(super) async fn revoke_selected(
    tx: &Transaction<'_>,
    select: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    now: u64,
) -> Result<u64, StoreError> {
    let rows = tx.query(select, params).await.db()?;
    let mut revoked = 0;
    for row in rows {
        let id: String = get(&row, 0)?;
        if revoke(tx, &read_grant_id(&id)?, now).await? {
            revoked += 1;
        }
    }
    Ok(revoked)
}
