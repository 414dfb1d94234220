//! The [`ProviderStore`] methods of [`SqliteStore`], one transaction each.

use rusqlite::{OptionalExtension as _, params};

use super::SqliteStore;
use super::codec::{
    CODE_COLUMNS, GRANT_COLUMNS, corrupt, count, decode_client, decode_code_row, decode_grant_row,
    encode_claims, encode_client, encode_code, encode_pending_request, encode_user, hash_blob,
    login_email, login_name, read_grant_id, read_login, read_time, resources_json, status_name,
    time,
};
use super::pool::DbResult as _;
use super::queries::{
    insert_tokens, revoke, revoke_selected, select_pending, select_refresh_token,
};
use crate::authn::{AuthenticatedUser, BoxFuture};
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

/// The condition that grant `g` is live at `?1`: not revoked, with an unexpired access
/// token or a refresh token that may still be used.
const LIVE_GRANT: &str = "g.revoked_at IS NULL AND ( \
     EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id AND a.expires_at > ?1) \
     OR (g.refresh_expires_at > ?1 AND EXISTS ( \
           SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id \
           AND r.used_at IS NULL AND r.idle_expires_at > ?1)))";

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
                    Some(row) => decode_code_row(row).map(Some),
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
                    grant: decode_grant_row(row, 1)?,
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
                revoke_selected(
                    tx,
                    "SELECT id FROM grants WHERE subject = ?1 AND revoked_at IS NULL",
                    params![subject.as_str()],
                    now,
                )
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
                    grants.push(decode_grant_row(row, 0)?);
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
                revoke_selected(
                    tx,
                    &sql,
                    params![time(now), subject.as_str(), client_id.as_str()],
                    now,
                )
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
