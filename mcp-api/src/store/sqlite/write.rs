//! Write operations, each run by the writer in its own savepoint, so a batch
//! is all or nothing. Every statement names the owner. Each returns the
//! [`IndexChange`]s the search engine applies once the write is committed.
//!
//! The tombstone wipe of categories and access log, and the immutability of a
//! memory's owner are enforced by schema triggers.

use rusqlite::{Connection, params};

use super::pool::{WriteContext, Written};
use super::read::{memory_by_id, memory_by_seq, owner_id};
use super::row::DbResult;
use crate::store::limits::CheckedMemory;
use crate::store::search::{IndexChange, text_key};
use crate::store::{Access, ErrorKind, Memory, MemoryId, MemoryState, Owner, StoreError};

/// The per-owner storage quotas, checked after a write inside its savepoint:
/// a write that goes over is rolled back whole.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quota {
    pub(super) memories: u64,
    pub(super) bytes: u64,
}

impl Quota {
    /// Fails if the owner's usage (kept by schema triggers) is over a quota.
    fn check(self, connection: &Connection, owner_id: i64) -> Result<(), StoreError> {
        let (memories, bytes): (i64, i64) = connection
            .prepare_cached("SELECT memory_count, bytes FROM owners WHERE id = ?1")
            .db()?
            .query_row([owner_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .db()?;
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

/// A memory to add with its analysed terms.
pub(super) struct Analysed {
    pub(super) memory: CheckedMemory,
    pub(super) terms: Vec<String>,
}

/// Adds memories; a memory whose normalised text the owner already has
/// (not deleted) is not stored again: the existing one is returned instead.
pub(super) fn add(
    connection: &Connection,
    context: &mut WriteContext<'_>,
    now: i64,
    owner: &Owner,
    memories: Vec<Analysed>,
    quota: Quota,
) -> Result<Written<Vec<Memory>>, StoreError> {
    let owner_id = ensure_owner(connection, owner)?;
    let mut added = Vec::with_capacity(memories.len());
    let mut changes = Vec::with_capacity(memories.len());
    let mut keys = Vec::with_capacity(memories.len());
    for Analysed { memory, terms } in memories {
        let key = text_key(&memory.text);
        if let Some(existing) = duplicate(
            connection,
            context,
            owner,
            owner_id,
            key,
            &keys,
            &memory.text,
        )? {
            added.push(existing);
            continue;
        }
        let (seq, stored) = insert_memory(
            connection,
            context.ids.next(now),
            now,
            owner,
            owner_id,
            memory,
        )?;
        changes.push(IndexChange::Upsert {
            owner_id,
            seq,
            key,
            terms,
            app: stored.app.clone(),
            state: stored.state,
            created_at: stored.created_at,
            categories: stored.categories.clone(),
        });
        keys.push((key, seq));
        added.push(stored);
    }
    quota.check(connection, owner_id)?;
    // Only now, as the whole batch succeeded: a failed batch leaves no keys behind.
    for (key, seq) in keys {
        context.pending_keys.insert((owner_id, key), seq);
    }
    Ok(Written {
        value: added,
        changes,
    })
}

/// The owner's live memory with the same normalised text, if any: from this
/// batch, from earlier jobs of this commit group, or from the engine.
fn duplicate(
    connection: &Connection,
    context: &WriteContext<'_>,
    owner: &Owner,
    owner_id: i64,
    key: u64,
    batch: &[(u64, i64)],
    text: &str,
) -> Result<Option<Memory>, StoreError> {
    let seq = batch
        .iter()
        .find(|(batch_key, _)| *batch_key == key)
        .map(|(_, seq)| *seq)
        .or_else(|| context.pending_keys.get(&(owner_id, key)).copied())
        .or_else(|| context.engine.seq_of_key(owner_id, key));
    let Some(seq) = seq else {
        return Ok(None);
    };
    // The key is a hash: confirm the texts really are the same.
    Ok(memory_by_seq(connection, owner, owner_id, seq)?
        .filter(|memory| text_key(&memory.text) == key && same_text(&memory.text, text)))
}

/// Whether two texts are the same after normalisation.
fn same_text(a: &str, b: &str) -> bool {
    crate::store::search::normalised_text(a) == crate::store::search::normalised_text(b)
}

/// The owner's row id, created on the owner's first write.
fn ensure_owner(connection: &Connection, owner: &Owner) -> Result<i64, StoreError> {
    connection
        .prepare_cached("INSERT INTO owners (subject) VALUES (?1) ON CONFLICT (subject) DO NOTHING")
        .db()?
        .execute([owner.as_str()])
        .db()?;
    connection
        .prepare_cached("SELECT id FROM owners WHERE subject = ?1")
        .db()?
        .query_row([owner.as_str()], |row| row.get(0))
        .db()
}

fn insert_memory(
    connection: &Connection,
    id: MemoryId,
    now: i64,
    owner: &Owner,
    owner_id: i64,
    memory: CheckedMemory,
) -> Result<(i64, Memory), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO memories (id, owner_id, text, metadata, app, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?6)",
        )
        .db()?
        .execute(params![
            id.as_bytes(),
            owner_id,
            memory.text,
            memory.metadata_json,
            memory.app,
            now
        ])
        .db()?;
    let seq = connection.last_insert_rowid();
    let mut insert_category = connection
        .prepare_cached(
            "INSERT INTO memory_categories (memory_seq, owner_id, category) VALUES (?1, ?2, ?3)",
        )
        .db()?;
    for category in &memory.categories {
        insert_category
            .execute(params![seq, owner_id, category])
            .db()?;
    }
    Ok((
        seq,
        Memory {
            id,
            owner: owner.clone(),
            text: memory.text,
            metadata: memory.metadata,
            categories: memory.categories,
            app: memory.app,
            state: MemoryState::Active,
            created_at: now,
            updated_at: now,
        },
    ))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn update_text(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    id: MemoryId,
    text: &str,
    terms: Vec<String>,
    metadata_json: Option<&str>,
    quota: Quota,
) -> Result<Written<Option<Memory>>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Written::unindexed(None));
    };
    let changed = connection
        .prepare_cached(
            "UPDATE memories SET text = ?3, metadata = COALESCE(?4, metadata), updated_at = ?5
             WHERE id = ?1 AND owner_id = ?2 AND state <> 'deleted'",
        )
        .db()?
        .execute(params![id.as_bytes(), owner_id, text, metadata_json, now])
        .db()?;
    if changed == 0 {
        return Ok(Written::unindexed(None));
    }
    quota.check(connection, owner_id)?;
    let Some((seq, memory)) = memory_by_id(connection, owner, owner_id, id)? else {
        return Ok(Written::unindexed(None));
    };
    let change = IndexChange::Upsert {
        owner_id,
        seq,
        key: text_key(&memory.text),
        terms,
        app: memory.app.clone(),
        state: memory.state,
        created_at: memory.created_at,
        categories: memory.categories.clone(),
    };
    Ok(Written {
        value: Some(memory),
        changes: vec![change],
    })
}

/// Moves memories to a state other than deleted (checked by the caller).
pub(super) fn set_state(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
    state: MemoryState,
) -> Result<Written<u64>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Written::unindexed(0));
    };
    let mut statement = connection
        .prepare_cached(
            "UPDATE memories SET state = ?3, updated_at = ?4
             WHERE id = ?1 AND owner_id = ?2 AND state NOT IN ('deleted', ?3)
             RETURNING seq",
        )
        .db()?;
    let mut changes = Vec::new();
    for id in ids {
        let rows = statement
            .query(params![id.as_bytes(), owner_id, state.as_str(), now])
            .db()?;
        state_changes(rows, owner_id, state, &mut changes)?;
    }
    Ok(Written {
        value: changes.len() as u64,
        changes,
    })
}

pub(super) fn delete(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
) -> Result<Written<u64>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Written::unindexed(0));
    };
    let mut statement = connection
        .prepare_cached(
            "UPDATE memories SET state = 'deleted', text = '', metadata = '{}', updated_at = ?3
             WHERE id = ?1 AND owner_id = ?2 AND state <> 'deleted'
             RETURNING seq",
        )
        .db()?;
    let mut changes = Vec::new();
    for id in ids {
        let rows = statement
            .query(params![id.as_bytes(), owner_id, now])
            .db()?;
        state_changes(rows, owner_id, MemoryState::Deleted, &mut changes)?;
    }
    Ok(Written {
        value: changes.len() as u64,
        changes,
    })
}

/// The state changes of the memories an `UPDATE … RETURNING seq` changed.
fn state_changes(
    mut rows: rusqlite::Rows<'_>,
    owner_id: i64,
    state: MemoryState,
    changes: &mut Vec<IndexChange>,
) -> Result<(), StoreError> {
    while let Some(row) = rows.next().db()? {
        let seq = row.get(0).db()?;
        changes.push(IndexChange::State {
            owner_id,
            seq,
            state,
        });
    }
    Ok(())
}

pub(super) fn delete_all(
    connection: &Connection,
    now: i64,
    owner: &Owner,
) -> Result<Written<u64>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Written::unindexed(0));
    };
    let deleted = connection
        .prepare_cached(
            "UPDATE memories SET state = 'deleted', text = '', metadata = '{}', updated_at = ?2
             WHERE owner_id = ?1 AND state <> 'deleted'",
        )
        .db()?
        .execute(params![owner_id, now])
        .db()?;
    Ok(Written {
        value: deleted as u64,
        changes: vec![IndexChange::Clear { owner_id }],
    })
}

pub(super) fn record_access(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
    access: &Access,
) -> Result<u64, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(0);
    };
    let mut statement = connection
        .prepare_cached(
            "INSERT INTO access_log (memory_seq, owner_id, app, via, accessed_at)
             SELECT seq, owner_id, ?3, ?4, ?5 FROM memories
             WHERE id = ?1 AND owner_id = ?2 AND state <> 'deleted'",
        )
        .db()?;
    let mut recorded = 0;
    for id in ids {
        recorded += statement
            .execute(params![
                id.as_bytes(),
                owner_id,
                access.app,
                access.via,
                now
            ])
            .db()? as u64;
    }
    Ok(recorded)
}
