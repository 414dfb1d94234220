//! Reading SQLite rows into records; the column encodings are shared with the PostgreSQL
//! store ([`crate::store::codec`]).

use rusqlite::Row;

pub(super) use crate::store::codec::*;
use crate::store::{AuthorizationCodeRecord, GrantRecord, PendingAuthorization, StoreError};

/// A count from SQLite's `changes()`.
pub(super) fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The columns `request, status, user, consent_csrf, expires_at` of a pending row.
pub(super) const PENDING_COLUMNS: &str = "request, status, user, consent_csrf, expires_at";

/// Decodes a row read with [`PENDING_COLUMNS`].
pub(super) fn decode_pending_row(row: &Row<'_>) -> Result<PendingAuthorization, StoreError> {
    let request: String = row.get(0).map_err(corrupt_because)?;
    let status: String = row.get(1).map_err(corrupt_because)?;
    let user: Option<String> = row.get(2).map_err(corrupt_because)?;
    let csrf: Option<Vec<u8>> = row.get(3).map_err(corrupt_because)?;
    let expires_at: i64 = row.get(4).map_err(corrupt_because)?;
    decode_pending(
        &request,
        &status,
        user.as_deref(),
        csrf.as_deref(),
        expires_at,
    )
}

/// The columns `data, expires_at, redeemed_at, grant_id` of a code row.
pub(super) const CODE_COLUMNS: &str = "data, expires_at, redeemed_at, grant_id";

/// Decodes a row read with [`CODE_COLUMNS`].
pub(super) fn decode_code_row(row: &Row<'_>) -> Result<AuthorizationCodeRecord, StoreError> {
    let data: String = row.get(0).map_err(corrupt_because)?;
    let expires_at: i64 = row.get(1).map_err(corrupt_because)?;
    let redeemed_at: Option<i64> = row.get(2).map_err(corrupt_because)?;
    let grant_id: Option<String> = row.get(3).map_err(corrupt_because)?;
    decode_code(&data, expires_at, redeemed_at, grant_id.as_deref())
}

/// The columns of a grant row, from `grants` aliased as `g`.
pub(super) const GRANT_COLUMNS: &str = "g.id, g.client_id, g.subject, g.scope, g.resources, \
     g.auth_time, g.claims, g.created_at, g.refresh_expires_at, g.revoked_at, g.status_list, \
     g.status_idx, g.login, g.login_email";

/// Decodes the [`GRANT_COLUMNS`] of a row, starting at column `first`.
pub(super) fn decode_grant_row(row: &Row<'_>, first: usize) -> Result<GrantRecord, StoreError> {
    let text = |i: usize| row.get::<_, String>(first + i).map_err(corrupt_because);
    let int = |i: usize| row.get::<_, i64>(first + i).map_err(corrupt_because);
    let opt_int = |i: usize| {
        row.get::<_, Option<i64>>(first + i)
            .map_err(corrupt_because)
    };
    let opt_text = |i: usize| {
        row.get::<_, Option<String>>(first + i)
            .map_err(corrupt_because)
    };
    decode_grant(GrantRow {
        id: text(0)?,
        client_id: text(1)?,
        subject: text(2)?,
        scope: text(3)?,
        resources: text(4)?,
        auth_time: int(5)?,
        claims: text(6)?,
        created_at: int(7)?,
        refresh_expires_at: opt_int(8)?,
        revoked_at: opt_int(9)?,
        status_list: opt_int(10)?,
        status_idx: opt_int(11)?,
        login: opt_text(12)?,
        login_email: opt_text(13)?,
    })
}
