//! Write operations, each one transaction that:
//!
//! 1. locks the owner's row in `owners` (`FOR UPDATE`), so one owner's writes
//!    run one at a time across every replica and a quota or near-duplicate
//!    check cannot race another replica's write;
//! 2. writes, naming the owner in every statement;
//! 3. checks the owner's quotas (usage kept by triggers) and rolls back whole
//!    if a quota is exceeded;
//! 4. notifies `mcp_memories`, delivered to every replica at commit.
//!
//! Tombstone wiping, usage counting, the `changed_xid` stamp and the
//! immutability of a memory's owner are schema triggers.

use deadpool_postgres::{GenericClient, Object, Transaction};
use uuid::Uuid;

use super::error::PgResult;
use super::read::{memory_by_id, memory_columns, memory_from_row};
use super::sync::CHANNEL;
use crate::store::limits::CheckedMemory;
use crate::store::search::normalised_text;
use crate::store::{ErrorKind, Memory, MemoryId, MemoryState, Owner, StoreError};

/// The per-owner storage quotas, checked after a write inside its transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quota {
    pub(super) memories: u64,
    pub(super) bytes: u64,
}

impl Quota {
    /// Fails if the owner's usage (kept by schema triggers) is over a quota.
    async fn check(self, transaction: &Transaction<'_>, owner_id: i64) -> Result<(), StoreError> {
        let statement = transaction
            .prepare_cached("SELECT memory_count, bytes FROM owners WHERE id = $1")
            .await
            .pg()?;
        let row = transaction.query_one(&statement, &[&owner_id]).await.pg()?;
        let memories: i64 = row.try_get(0).pg()?;
        let bytes: i64 = row.try_get(1).pg()?;
        if u64::try_from(memories).unwrap_or(0) > self.memories {
            return Err(ErrorKind::QuotaExceeded {
                quota: "memories",
                limit: self.memories,
            }
            .into());
        }
        if u64::try_from(bytes).unwrap_or(0) > self.bytes {
            return Err(ErrorKind::QuotaExceeded {
                quota: "bytes",
                limit: self.bytes,
            }
            .into());
        }
        Ok(())
    }
}

/// A stable key of [`normalised_text`] (the first 8 bytes of its SHA-256), stored
/// with the row to find near-duplicates; equal keys are confirmed by comparing texts.
pub(super) fn stored_text_key(text: &str) -> i64 {
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, normalised_text(text).as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// Begins a write transaction and locks the owner's row; `create` makes the
/// row on the owner's first write. `None`: the owner has no row (and nothing
/// to change).
async fn begin<'a>(
    client: &'a mut Object,
    owner: &Owner,
    create: bool,
) -> Result<Option<(Transaction<'a>, i64)>, StoreError> {
    let transaction = client.transaction().await.pg()?;
    if create {
        let statement = transaction
            .prepare_cached(
                "INSERT INTO owners (subject) VALUES ($1) ON CONFLICT (subject) DO NOTHING",
            )
            .await
            .pg()?;
        transaction
            .execute(&statement, &[&owner.as_str()])
            .await
            .pg()?;
    }
    let statement = transaction
        .prepare_cached("SELECT id FROM owners WHERE subject = $1 FOR UPDATE")
        .await
        .pg()?;
    let row = transaction
        .query_opt(&statement, &[&owner.as_str()])
        .await
        .pg()?;
    match row {
        Some(row) => Ok(Some((transaction, row.try_get(0).pg()?))),
        None => Ok(None),
    }
}

/// Notifies the other replicas and commits.
async fn commit(transaction: Transaction<'_>) -> Result<(), StoreError> {
    transaction
        .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
        .await
        .pg()?;
    transaction.commit().await.pg()
}

/// Adds memories; a memory whose normalised text the owner already has (not
/// deleted, also earlier in the batch) is not stored again: the existing one
/// is returned instead. `ids` are the new memories' ids, one per memory.
/// Returns the memories and the owner's row id.
pub(super) async fn add(
    client: &mut Object,
    ids: &[MemoryId],
    now: i64,
    owner: &Owner,
    memories: &[CheckedMemory],
    quota: Quota,
) -> Result<(Vec<Memory>, i64), StoreError> {
    let Some((transaction, owner_id)) = begin(client, owner, true).await? else {
        return Err(ErrorKind::Backend.into());
    };
    let mut added = Vec::with_capacity(memories.len());
    for (memory, &id) in memories.iter().zip(ids) {
        let key = stored_text_key(&memory.text);
        if let Some(existing) = duplicate(&transaction, owner, owner_id, key, &memory.text).await? {
            added.push(existing);
            continue;
        }
        added.push(insert(&transaction, id, now, owner, owner_id, key, memory).await?);
    }
    quota.check(&transaction, owner_id).await?;
    commit(transaction).await?;
    Ok((added, owner_id))
}

/// The owner's live memory with the same normalised text, if any.
async fn duplicate(
    transaction: &Transaction<'_>,
    owner: &Owner,
    owner_id: i64,
    key: i64,
    text: &str,
) -> Result<Option<Memory>, StoreError> {
    let statement = transaction
        .prepare_cached(concat!(
            "SELECT ",
            memory_columns!(),
            " FROM memories m WHERE m.owner_id = $1 AND m.text_key = $2 AND m.state <> 'deleted'",
            " ORDER BY m.seq"
        ))
        .await
        .pg()?;
    let normalised = normalised_text(text);
    for row in transaction
        .query(&statement, &[&owner_id, &key])
        .await
        .pg()?
    {
        let (_, memory) = memory_from_row(&row, owner)?;
        if normalised_text(&memory.text) == normalised {
            return Ok(Some(memory));
        }
    }
    Ok(None)
}

async fn insert(
    transaction: &Transaction<'_>,
    id: MemoryId,
    now: i64,
    owner: &Owner,
    owner_id: i64,
    key: i64,
    memory: &CheckedMemory,
) -> Result<Memory, StoreError> {
    let statement = transaction
        .prepare_cached(
            "INSERT INTO memories
                 (id, owner_id, text, metadata, app, state, created_at, updated_at, text_key)
             VALUES ($1, $2, $3, $4::text::json, $5, 'active', $6, $6, $7)
             RETURNING seq",
        )
        .await
        .pg()?;
    let row = transaction
        .query_one(
            &statement,
            &[
                id.as_uuid(),
                &owner_id,
                &memory.text,
                &memory.metadata_json,
                &memory.app,
                &now,
                &key,
            ],
        )
        .await
        .pg()?;
    let seq: i64 = row.try_get(0).pg()?;
    if !memory.categories.is_empty() {
        let statement = transaction
            .prepare_cached(
                "INSERT INTO memory_categories (memory_seq, owner_id, category)
                 SELECT $1, $2, unnest($3::text[])",
            )
            .await
            .pg()?;
        transaction
            .execute(&statement, &[&seq, &owner_id, &memory.categories])
            .await
            .pg()?;
    }
    Ok(Memory {
        id,
        owner: owner.clone(),
        text: memory.text.clone(),
        metadata: memory.metadata.clone(),
        categories: memory.categories.clone(),
        app: memory.app.clone(),
        state: MemoryState::Active,
        created_at: now,
        updated_at: now,
    })
}

pub(super) async fn update_text(
    client: &mut Object,
    now: i64,
    owner: &Owner,
    id: MemoryId,
    text: &str,
    metadata_json: Option<&str>,
    quota: Quota,
) -> Result<Option<Memory>, StoreError> {
    let Some((transaction, owner_id)) = begin(client, owner, false).await? else {
        return Ok(None);
    };
    let statement = transaction
        .prepare_cached(
            "UPDATE memories
             SET text = $3, metadata = COALESCE($4::text::json, metadata), updated_at = $5,
                 text_key = $6
             WHERE id = $1 AND owner_id = $2 AND state <> 'deleted'",
        )
        .await
        .pg()?;
    let changed = transaction
        .execute(
            &statement,
            &[
                id.as_uuid(),
                &owner_id,
                &text,
                &metadata_json,
                &now,
                &stored_text_key(text),
            ],
        )
        .await
        .pg()?;
    if changed == 0 {
        return Ok(None);
    }
    quota.check(&transaction, owner_id).await?;
    let memory = memory_by_id(&transaction, owner, owner_id, id).await?;
    commit(transaction).await?;
    Ok(memory.map(|(_, memory)| memory))
}

/// Moves memories to a state other than deleted (checked by the caller).
pub(super) async fn set_state(
    client: &mut Object,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
    state: MemoryState,
) -> Result<u64, StoreError> {
    let Some((transaction, owner_id)) = begin(client, owner, false).await? else {
        return Ok(0);
    };
    let statement = transaction
        .prepare_cached(
            "UPDATE memories SET state = $3::text::memory_state, updated_at = $4
             WHERE id = ANY($1) AND owner_id = $2
               AND state NOT IN ('deleted', $3::text::memory_state)",
        )
        .await
        .pg()?;
    let changed = transaction
        .execute(&statement, &[&uuids(ids), &owner_id, &state.as_str(), &now])
        .await
        .pg()?;
    finish(transaction, changed).await
}

pub(super) async fn delete(
    client: &mut Object,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
) -> Result<u64, StoreError> {
    let Some((transaction, owner_id)) = begin(client, owner, false).await? else {
        return Ok(0);
    };
    let statement = transaction
        .prepare_cached(
            "UPDATE memories SET state = 'deleted', text = '', metadata = '{}', updated_at = $3
             WHERE id = ANY($1) AND owner_id = $2 AND state <> 'deleted'",
        )
        .await
        .pg()?;
    let deleted = transaction
        .execute(&statement, &[&uuids(ids), &owner_id, &now])
        .await
        .pg()?;
    finish(transaction, deleted).await
}

pub(super) async fn delete_all(
    client: &mut Object,
    now: i64,
    owner: &Owner,
) -> Result<u64, StoreError> {
    let Some((transaction, owner_id)) = begin(client, owner, false).await? else {
        return Ok(0);
    };
    let statement = transaction
        .prepare_cached(
            "UPDATE memories SET state = 'deleted', text = '', metadata = '{}', updated_at = $2
             WHERE owner_id = $1 AND state <> 'deleted'",
        )
        .await
        .pg()?;
    let deleted = transaction
        .execute(&statement, &[&owner_id, &now])
        .await
        .pg()?;
    finish(transaction, deleted).await
}

/// Commits a write that changed `changed` rows (notifying only if it changed any).
async fn finish(transaction: Transaction<'_>, changed: u64) -> Result<u64, StoreError> {
    if changed == 0 {
        transaction.rollback().await.pg()?;
    } else {
        commit(transaction).await?;
    }
    Ok(changed)
}

fn uuids(ids: &[MemoryId]) -> Vec<Uuid> {
    ids.iter().map(|id| *id.as_uuid()).collect()
}

/// The owner's row id, if the owner ever stored anything.
pub(super) async fn owner_id(
    client: &impl GenericClient,
    owner: &Owner,
) -> Result<Option<i64>, StoreError> {
    let statement = client
        .prepare_cached("SELECT id FROM owners WHERE subject = $1")
        .await
        .pg()?;
    client
        .query_opt(&statement, &[&owner.as_str()])
        .await
        .pg()?
        .map(|row| row.try_get(0).pg())
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_text_key_ignores_case_spacing_and_punctuation() {
        assert_eq!(
            stored_text_key("I take my coffee black."),
            stored_text_key("  i take my COFFEE black ")
        );
        assert_ne!(stored_text_key("coffee"), stored_text_key("tea"));
        // Stable across builds: it is stored.
        assert_eq!(stored_text_key(""), {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"");
            i64::from_be_bytes(digest.as_ref()[..8].try_into().unwrap())
        });
    }
}
