//! The [`ProviderStore`] methods of [`PostgresStore`], one transaction each.
//!
//! Writes run at `READ COMMITTED`. Every compare-and-swap either is one conditional
//! statement (`UPDATE … WHERE <expected state>`, which locks the row: a concurrent
//! statement waits for the first transaction to end, then re-checks its condition on the
//! row as that transaction left it), or starts with `SELECT … FOR UPDATE` of the rows it
//! tests. Either way exactly one of any number of concurrent callers, in any number of
//! processes, sees the expected state.

use tokio_postgres::Transaction;

use super::PostgresStore;
use super::pool::{DbResult as _, in_transaction};
use super::queries::{
    CODE_COLUMNS, GRANT_COLUMNS, decode_code_row, decode_grant_row, get, insert_tokens, revoke,
    revoke_selected, select_pending, select_refresh_token,
};
use crate::authn::{AuthenticatedUser, BoxFuture};
use crate::client::Client;
use crate::keys::{KeyRecord, Pkcs8Secret};
use crate::secret::SecretHash;
use crate::status_list::StatusIndex;
use crate::store::codec::{
    corrupt, decode_client, encode_claims, encode_client, encode_code, encode_pending_request,
    encode_user, login_email, login_name, read_grant_id, read_login, read_time, resources_json,
    status_name, time,
};
use crate::store::{
    AccessTokenRecord, AuthorizationCodeRecord, GrantId, GrantRecord, LiveGrantLogin, NewTokens,
    PendingAuthorization, PendingKey, PendingStatus, ProviderStore, PurgeReport, RedeemOutcome,
    RefreshTokenRecord, RotateOutcome, StoreError, StoreErrorKind, StoredKeys, StoredStatusList,
};
use crate::types::{ClientId, Subject};

/// The condition that grant `g` is live at `$1`: not revoked, with an unexpired access
/// token or a refresh token that may still be used.
const LIVE_GRANT: &str = "g.revoked_at IS NULL AND ( \
     EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id AND a.expires_at > $1) \
     OR (g.refresh_expires_at > $1 AND EXISTS ( \
           SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id \
           AND r.used_at IS NULL AND r.idle_expires_at > $1)))";

/// How many times [`allocate_status_index`](ProviderStore::allocate_status_index) looks
/// again after another process created the next list first.
const NEW_LIST_ATTEMPTS: u32 = 8;

impl ProviderStore for PostgresStore {
    fn insert_client(&self, client: Client) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (data, secret_hash, created_at) = encode_client(&client)?;
            let secret_hash = secret_hash.as_ref().map(<[u8; 32]>::as_slice);
            let client_id = client.client_id.as_str();
            in_transaction!(self, write, |tx| tx
                .execute(
                    "INSERT INTO clients (client_id, data, secret_hash, created_at) \
                     VALUES ($1, $2::text::jsonb, $3, $4)",
                    &[&client_id, &data, &secret_hash, &created_at],
                )
                .await
                .db())?;
            Ok(())
        })
    }

    fn client(&self, client_id: &ClientId) -> BoxFuture<'_, Result<Option<Client>, StoreError>> {
        let client_id = client_id.clone();
        Box::pin(async move {
            let row = in_transaction!(self, read, |tx| tx
                .query_opt(
                    "SELECT data::text, secret_hash, created_at FROM clients WHERE client_id = $1",
                    &[&client_id.as_str()],
                )
                .await
                .db())?;
            let Some(row) = row else {
                return Ok(None);
            };
            let secret: Option<&[u8]> = get(&row, 1)?;
            decode_client(client_id, get(&row, 0)?, secret, get(&row, 2)?).map(Some)
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
                    (Some(encode_user(user)?), Some(*consent_csrf.as_bytes()))
                }
                _ => (None, None),
            };
            let csrf = csrf.as_ref().map(<[u8; 32]>::as_slice);
            let status = status_name(&pending.status);
            let expires_at = time(pending.expires_at);
            in_transaction!(self, write, |tx| tx
                .execute(
                    "INSERT INTO pending_authorizations \
                     (key, request, status, \"user\", consent_csrf, expires_at) \
                     VALUES ($1, $2::text::jsonb, $3, $4::text::jsonb, $5, $6)",
                    &[
                        &&key.hash().as_bytes()[..],
                        &request,
                        &status,
                        &user,
                        &csrf,
                        &expires_at
                    ],
                )
                .await
                .db())?;
            Ok(())
        })
    }

    fn pending(
        &self,
        key: PendingKey,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<PendingAuthorization>, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, read, |tx| select_pending(&tx, key, now, None, false)
                .await)
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
            let moved = in_transaction!(self, write, |tx| complete_login(
                &tx,
                key,
                &user_json,
                &consent_csrf,
                now
            )
            .await)?;
            Ok(moved.map(|mut pending| {
                pending.status = PendingStatus::AwaitingConsent { user, consent_csrf };
                pending
            }))
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
            in_transaction!(self, write, |tx| complete_consent(
                &tx,
                key,
                code.as_ref(),
                now
            )
            .await)
        })
    }

    fn code(
        &self,
        code: SecretHash,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<AuthorizationCodeRecord>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {CODE_COLUMNS} FROM authorization_codes \
                 WHERE hash = $1 AND (expires_at > $2 OR redeemed_at IS NOT NULL)"
            );
            let row = in_transaction!(self, read, |tx| tx
                .query_opt(&sql, &[&&code.as_bytes()[..], &time(now)])
                .await
                .db())?;
            row.as_ref().map(decode_code_row).transpose()
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
            let encoded = EncodedGrant {
                grant: &grant,
                resources: &resources,
                claims: &claims,
            };
            in_transaction!(self, write, |tx| redeem_code(
                &tx, &code, &encoded, &tokens, now
            )
            .await)
        })
    }

    fn refresh_token(
        &self,
        token: SecretHash,
    ) -> BoxFuture<'_, Result<Option<RefreshTokenRecord>, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, read, |tx| select_refresh_token(
                &tx,
                token.as_bytes(),
                false
            )
            .await)
        })
    }

    fn rotate_refresh_token(
        &self,
        token: SecretHash,
        tokens: NewTokens,
        now: u64,
    ) -> BoxFuture<'_, Result<RotateOutcome, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, write, |tx| rotate_refresh_token(
                &tx, &token, &tokens, now
            )
            .await)
        })
    }

    fn access_token(
        &self,
        jti: &str,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<AccessTokenRecord>, StoreError>> {
        let jti = jti.to_owned();
        Box::pin(async move {
            let sql = format!(
                "SELECT a.expires_at, {GRANT_COLUMNS} FROM access_tokens a \
                 JOIN grants g ON g.id = a.grant_id WHERE a.jti = $1 AND a.expires_at > $2"
            );
            let row = in_transaction!(self, read, |tx| tx
                .query_opt(&sql, &[&jti, &time(now)])
                .await
                .db())?;
            let Some(row) = row else {
                return Ok(None);
            };
            Ok(Some(AccessTokenRecord {
                grant: decode_grant_row(&row, 1)?,
                expires_at: read_time(get(&row, 0)?)?,
                jti,
            }))
        })
    }

    fn revoke_grant(&self, grant: GrantId, now: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { in_transaction!(self, write, |tx| revoke(&tx, &grant, now).await) })
    }

    fn live_grant_logins(
        &self,
        now: u64,
    ) -> BoxFuture<'_, Result<Vec<LiveGrantLogin>, StoreError>> {
        Box::pin(async move {
            let rows = in_transaction!(self, read, |tx| tx
                .query(
                    "SELECT id, subject, login, login_email FROM grants \
                     WHERE revoked_at IS NULL AND login IS NOT NULL AND expires_at > $1",
                    &[&time(now)],
                )
                .await
                .db())?;
            let mut grants = Vec::with_capacity(rows.len());
            for row in &rows {
                let Some(login) = read_login(get(row, 2)?, get(row, 3)?)? else {
                    continue;
                };
                let subject: &str = get(row, 1)?;
                grants.push(LiveGrantLogin {
                    id: read_grant_id(get(row, 0)?)?,
                    subject: Subject::parse(subject).map_err(|_| corrupt())?,
                    login,
                });
            }
            Ok(grants)
        })
    }

    fn revoke_subject_grants(
        &self,
        subject: Subject,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, write, |tx| revoke_selected(
                &tx,
                "SELECT id FROM grants WHERE subject = $1 AND revoked_at IS NULL \
                 ORDER BY id FOR UPDATE",
                &[&subject.as_str()],
                now,
            )
            .await)
        })
    }

    fn subject_grants(
        &self,
        subject: Subject,
        now: u64,
    ) -> BoxFuture<'_, Result<Vec<GrantRecord>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {GRANT_COLUMNS} FROM grants g \
                 WHERE g.subject = $2 AND {LIVE_GRANT} ORDER BY g.created_at, g.id"
            );
            let rows = in_transaction!(self, read, |tx| tx
                .query(&sql, &[&time(now), &subject.as_str()])
                .await
                .db())?;
            rows.iter().map(|row| decode_grant_row(row, 0)).collect()
        })
    }

    fn revoke_subject_client_grants(
        &self,
        subject: Subject,
        client_id: ClientId,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT g.id FROM grants g \
                 WHERE g.subject = $2 AND g.client_id = $3 AND {LIVE_GRANT} \
                 ORDER BY g.id FOR UPDATE"
            );
            in_transaction!(self, write, |tx| revoke_selected(
                &tx,
                &sql,
                &[&time(now), &subject.as_str(), &client_id.as_str()],
                now,
            )
            .await)
        })
    }

    fn allocate_status_index(
        &self,
        list_size: u64,
        now: u64,
    ) -> BoxFuture<'_, Result<StatusIndex, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, write, |tx| allocate_status_index(&tx, list_size, now)
                .await)
        })
    }

    fn status_list_revision(&self, list: u64) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let row = in_transaction!(self, read, |tx| tx
                .query_opt(
                    "SELECT revision FROM status_lists WHERE list = $1",
                    &[&time(list)],
                )
                .await
                .db())?;
            row.map(|row| read_time(get(&row, 0)?)).transpose()
        })
    }

    fn status_list(
        &self,
        list: u64,
    ) -> BoxFuture<'_, Result<Option<StoredStatusList>, StoreError>> {
        Box::pin(async move { in_transaction!(self, read, |tx| status_list(&tx, list).await) })
    }

    fn status_lists(&self) -> BoxFuture<'_, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            let rows = in_transaction!(self, read, |tx| tx
                .query("SELECT list FROM status_lists ORDER BY list", &[])
                .await
                .db())?;
            rows.iter().map(|row| read_time(get(row, 0)?)).collect()
        })
    }

    fn load_keys(&self) -> BoxFuture<'_, Result<StoredKeys, StoreError>> {
        Box::pin(async move { in_transaction!(self, read, |tx| load_keys(&tx).await) })
    }

    fn save_keys(
        &self,
        records: Vec<KeyRecord>,
        expected_version: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, write, |tx| save_keys(&tx, &records, expected_version)
                .await)
        })
    }

    fn purge_expired(&self, now: u64) -> BoxFuture<'_, Result<PurgeReport, StoreError>> {
        Box::pin(async move { in_transaction!(self, write, |tx| purge_expired(&tx, now).await) })
    }

    fn purge_unused_clients(
        &self,
        unused_since: u64,
        now: u64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            in_transaction!(self, write, |tx| tx
                .execute(
                    "DELETE FROM clients \
                     WHERE COALESCE(last_used_at, created_at) <= $1 AND NOT EXISTS ( \
                       SELECT 1 FROM grants g WHERE g.client_id = clients.client_id \
                       AND g.revoked_at IS NULL AND ( \
                         EXISTS (SELECT 1 FROM access_tokens a \
                                 WHERE a.grant_id = g.id AND a.expires_at > $2) \
                         OR (g.refresh_expires_at > $2 AND EXISTS ( \
                               SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id \
                               AND r.used_at IS NULL AND r.idle_expires_at > $2))))",
                    &[&time(unused_since), &time(now)],
                )
                .await
                .db())
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let one: i32 = in_transaction!(self, read, |tx| tx
                .query_one("SELECT 1", &[])
                .await
                .db()
                .and_then(|row| get(&row, 0)))?;
            if one == 1 {
                Ok(())
            } else {
                Err(StoreErrorKind::Backend.into())
            }
        })
    }
}

/// A grant with its JSON columns encoded.
struct EncodedGrant<'a> {
    grant: &'a GrantRecord,
    resources: &'a str,
    claims: &'a str,
}

/// The compare-and-swap of [`ProviderStore::complete_login`]: the row is locked while it
/// is checked and moved. Returns the authorization (its status still as read) if this call
/// moved it.
async fn complete_login(
    tx: &Transaction<'_>,
    key: PendingKey,
    user_json: &str,
    consent_csrf: &SecretHash,
    now: u64,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let Some(pending) = select_pending(tx, key, now, Some("awaiting_login"), true).await? else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE pending_authorizations \
         SET status = 'awaiting_consent', \"user\" = $2::text::jsonb, consent_csrf = $3 \
         WHERE key = $1 AND status = 'awaiting_login'",
        &[
            &&key.hash().as_bytes()[..],
            &user_json,
            &&consent_csrf.as_bytes()[..],
        ],
    )
    .await
    .db()?;
    Ok(Some(pending))
}

/// The compare-and-swap of [`ProviderStore::complete_consent`]: the row is locked while
/// it is checked, moved to `done`, and the code stored.
async fn complete_consent(
    tx: &Transaction<'_>,
    key: PendingKey,
    code: Option<&(SecretHash, String, u64)>,
    now: u64,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let Some(pending) = select_pending(tx, key, now, Some("awaiting_consent"), true).await? else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE pending_authorizations SET status = 'done', \"user\" = NULL, consent_csrf = NULL \
         WHERE key = $1 AND status = 'awaiting_consent'",
        &[&&key.hash().as_bytes()[..]],
    )
    .await
    .db()?;
    if let Some((hash, data, expires_at)) = code {
        tx.execute(
            "INSERT INTO authorization_codes (hash, data, expires_at) \
             VALUES ($1, $2::text::jsonb, $3)",
            &[&&hash.as_bytes()[..], data, &time(*expires_at)],
        )
        .await
        .db()?;
    }
    Ok(Some(pending))
}

/// The compare-and-swap of [`ProviderStore::redeem_code`]. The conditional update locks
/// the code row: a concurrent redemption waits until this transaction ends, then finds the
/// code redeemed (with its grant id committed) and revokes that grant.
async fn redeem_code(
    tx: &Transaction<'_>,
    code: &SecretHash,
    encoded: &EncodedGrant<'_>,
    tokens: &NewTokens,
    now: u64,
) -> Result<RedeemOutcome, StoreError> {
    let code = &code.as_bytes()[..];
    let grant = encoded.grant;
    let won = tx
        .execute(
            "UPDATE authorization_codes SET redeemed_at = $2 \
             WHERE hash = $1 AND redeemed_at IS NULL AND expires_at > $2",
            &[&code, &time(now)],
        )
        .await
        .db()?;
    if won == 0 {
        let earlier = tx
            .query_opt(
                "SELECT redeemed_at, grant_id FROM authorization_codes WHERE hash = $1",
                &[&code],
            )
            .await
            .db()?;
        let Some(earlier) = earlier else {
            return Ok(RedeemOutcome::NotFound);
        };
        let redeemed_at: Option<i64> = get(&earlier, 0)?;
        if redeemed_at.is_none() {
            return Ok(RedeemOutcome::NotFound);
        }
        let grant_id: Option<&str> = get(&earlier, 1)?;
        let grant_id = grant_id.map(read_grant_id).transpose()?;
        if let Some(id) = &grant_id {
            revoke(tx, id, now).await?;
        }
        return Ok(RedeemOutcome::AlreadyRedeemed { grant_id });
    }
    let keep_until = tokens
        .access_expires_at
        .max(grant.refresh_expires_at.unwrap_or(0))
        .max(now);
    tx.execute(
        "INSERT INTO grants (id, client_id, subject, scope, resources, auth_time, claims, \
         created_at, refresh_expires_at, expires_at, revoked_at, status_list, status_idx, \
         login, login_email) \
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7::text::jsonb, $8, $9, $10, NULL, \
         $11, $12, $13, $14)",
        &[
            &grant.id.as_str(),
            &grant.client_id.as_str(),
            &grant.subject.as_str(),
            &grant.scope.as_str(),
            &encoded.resources,
            &time(grant.auth_time),
            &encoded.claims,
            &time(grant.created_at),
            &grant.refresh_expires_at.map(time),
            &time(keep_until),
            &grant.status.map(|s| time(s.list)),
            &grant.status.map(|s| time(s.index)),
            &grant.login.as_ref().map(login_name),
            &grant.login.as_ref().and_then(login_email),
        ],
    )
    .await
    .db()?;
    insert_tokens(tx, &grant.id, &grant.client_id, tokens, now).await?;
    tx.execute(
        "UPDATE authorization_codes SET grant_id = $2 WHERE hash = $1",
        &[&code, &grant.id.as_str()],
    )
    .await
    .db()?;
    Ok(RedeemOutcome::Redeemed)
}

/// The compare-and-swap of [`ProviderStore::rotate_refresh_token`]: the token and its
/// grant are locked while the token is checked, so of concurrent rotations one sees it
/// unused and rotates it; the others wait, see it used, and revoke the family.
async fn rotate_refresh_token(
    tx: &Transaction<'_>,
    token: &SecretHash,
    tokens: &NewTokens,
    now: u64,
) -> Result<RotateOutcome, StoreError> {
    let token = &token.as_bytes()[..];
    let Some(record) = select_refresh_token(tx, token, true).await? else {
        return Ok(RotateOutcome::Inactive);
    };
    if record.used_at.is_some() {
        revoke(tx, &record.grant.id, now).await?;
        return Ok(RotateOutcome::Reused {
            grant_id: record.grant.id,
        });
    }
    if !record.is_active(now) {
        return Ok(RotateOutcome::Inactive);
    }
    let grant_id = record.grant.id.as_str();
    if let Some(status) = tokens.grant_status {
        // The caller minted with this entry: it must become the grant's.
        if record.grant.status.is_some() {
            return Ok(RotateOutcome::Inactive);
        }
        tx.execute(
            "UPDATE grants SET status_list = $2, status_idx = $3 \
             WHERE id = $1 AND status_idx IS NULL",
            &[&grant_id, &time(status.list), &time(status.index)],
        )
        .await
        .db()?;
    }
    tx.execute(
        "UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL",
        &[&token, &time(now)],
    )
    .await
    .db()?;
    insert_tokens(tx, &record.grant.id, &record.client_id, tokens, now).await?;
    tx.execute(
        "UPDATE grants SET expires_at = GREATEST(expires_at, $2) WHERE id = $1",
        &[&grant_id, &time(tokens.access_expires_at)],
    )
    .await
    .db()?;
    Ok(RotateOutcome::Rotated)
}

/// The next status list entry. The newest list's row is locked while its counter moves,
/// so concurrent allocations are serialised; when two processes both find it full, one
/// creates the next list and the other, whose insert conflicts, looks again.
async fn allocate_status_index(
    tx: &Transaction<'_>,
    list_size: u64,
    now: u64,
) -> Result<StatusIndex, StoreError> {
    for _ in 0..NEW_LIST_ATTEMPTS {
        let newest = tx
            .query_opt(
                "SELECT list, size, allocated FROM status_lists \
                 ORDER BY list DESC LIMIT 1 FOR UPDATE",
                &[],
            )
            .await
            .db()?;
        let newest: Option<(i64, i64, i64)> = match &newest {
            Some(row) => Some((get(row, 0)?, get(row, 1)?, get(row, 2)?)),
            None => None,
        };
        if let Some((list, size, allocated)) = newest
            && allocated < size
        {
            tx.execute(
                "UPDATE status_lists SET allocated = allocated + 1 WHERE list = $1",
                &[&list],
            )
            .await
            .db()?;
            return Ok(StatusIndex::new(read_time(list)?, read_time(allocated)?));
        }
        let list = newest.map_or(1, |(list, _, _)| list.saturating_add(1));
        let created = tx
            .execute(
                "INSERT INTO status_lists (list, size, allocated, revision, created_at) \
                 VALUES ($1, $2, 1, 0, $3) ON CONFLICT (list) DO NOTHING",
                &[&list, &time(list_size), &time(now)],
            )
            .await
            .db()?;
        if created == 1 {
            return Ok(StatusIndex::new(read_time(list)?, 0));
        }
    }
    Err(StoreErrorKind::Busy.into())
}

/// Status list `list` and its set entries, from one snapshot.
async fn status_list(
    tx: &Transaction<'_>,
    list: u64,
) -> Result<Option<StoredStatusList>, StoreError> {
    let Some(row) = tx
        .query_opt(
            "SELECT size, revision FROM status_lists WHERE list = $1",
            &[&time(list)],
        )
        .await
        .db()?
    else {
        return Ok(None);
    };
    let revoked = tx
        .query(
            "SELECT idx FROM status_revocations WHERE list = $1",
            &[&time(list)],
        )
        .await
        .db()?
        .iter()
        .map(|row| read_time(get(row, 0)?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(StoredStatusList::new(
        list,
        read_time(get(&row, 0)?)?,
        read_time(get(&row, 1)?)?,
        revoked,
    )))
}

/// The signing keys and their version, from one snapshot.
async fn load_keys(tx: &Transaction<'_>) -> Result<StoredKeys, StoreError> {
    let version: i64 = get(
        &tx.query_one("SELECT version FROM key_ring WHERE id = 1", &[])
            .await
            .db()?,
        0,
    )?;
    let rows = tx
        .query(
            "SELECT kid, pkcs8, created_at, activates_at, retires_at, drop_after \
             FROM signing_keys ORDER BY activates_at",
            &[],
        )
        .await
        .db()?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let kid: String = get(row, 0)?;
        let pkcs8: Vec<u8> = get(row, 1)?;
        records.push(KeyRecord::new(
            kid,
            Pkcs8Secret::from_der(pkcs8),
            read_time(get(row, 2)?)?,
            read_time(get(row, 3)?)?,
            read_time(get(row, 4)?)?,
            read_time(get(row, 5)?)?,
        ));
    }
    Ok(StoredKeys::new(records, read_time(version)?))
}

/// The compare-and-swap of [`ProviderStore::save_keys`]: the version moves by one
/// conditional update, which locks the row, so one writer of a version wins.
async fn save_keys(
    tx: &Transaction<'_>,
    records: &[KeyRecord],
    expected_version: u64,
) -> Result<Option<u64>, StoreError> {
    let next = expected_version.saturating_add(1);
    let moved = tx
        .execute(
            "UPDATE key_ring SET version = $2 WHERE id = 1 AND version = $1",
            &[&time(expected_version), &time(next)],
        )
        .await
        .db()?;
    if moved == 0 {
        return Ok(None);
    }
    tx.execute("DELETE FROM signing_keys", &[]).await.db()?;
    for record in records {
        tx.execute(
            "INSERT INTO signing_keys (kid, pkcs8, created_at, activates_at, retires_at, drop_after) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &record.kid,
                &record.pkcs8.secret_der(),
                &time(record.created_at),
                &time(record.activates_at),
                &time(record.retires_at),
                &time(record.drop_after),
            ],
        )
        .await
        .db()?;
    }
    Ok(Some(next))
}

/// Deletes what expired before `now`, in one transaction.
async fn purge_expired(tx: &Transaction<'_>, now: u64) -> Result<PurgeReport, StoreError> {
    let now = time(now);
    let delete = async |sql: &str| tx.execute(sql, &[&now]).await.db();
    Ok(PurgeReport {
        pending: delete("DELETE FROM pending_authorizations WHERE expires_at <= $1").await?,
        codes: delete("DELETE FROM authorization_codes WHERE expires_at <= $1").await?,
        access_tokens: delete("DELETE FROM access_tokens WHERE expires_at <= $1").await?,
        refresh_tokens: delete(
            "DELETE FROM refresh_tokens WHERE idle_expires_at <= $1 OR grant_id IN \
             (SELECT id FROM grants WHERE refresh_expires_at IS NULL OR refresh_expires_at <= $1)",
        )
        .await?,
        grants: delete("DELETE FROM grants WHERE expires_at <= $1").await?,
        login_states: delete("DELETE FROM login_states WHERE expires_at <= $1").await?,
        clients: 0,
    })
}
