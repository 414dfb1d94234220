//! Write operations, each run inside one immediate transaction by the caller,
//! so a batch is all or nothing. Every statement names the owner.
//!
//! The full-text index, the tombstone wipe of categories and access log, and
//! the immutability of a memory's owner are enforced by schema triggers.

use rusqlite::{Connection, params};

use super::pool::IdGenerator;
use super::read::{memory_by_id, owner_id};
use super::row::DbResult;
use crate::store::limits::CheckedMemory;
use crate::store::{Access, Memory, MemoryId, MemoryState, Owner, StoreError};

pub(super) fn add(
    connection: &Connection,
    ids: &IdGenerator,
    now: i64,
    owner: &Owner,
    memories: Vec<CheckedMemory>,
) -> Result<Vec<Memory>, StoreError> {
    let owner_id = ensure_owner(connection, owner)?;
    let mut added = Vec::with_capacity(memories.len());
    for memory in memories {
        added.push(insert_memory(
            connection,
            ids.next(now),
            now,
            owner,
            owner_id,
            memory,
        )?);
    }
    Ok(added)
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
) -> Result<Memory, StoreError> {
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
    Ok(Memory {
        id,
        owner: owner.clone(),
        text: memory.text,
        metadata: memory.metadata,
        categories: memory.categories,
        app: memory.app,
        state: MemoryState::Active,
        created_at: now,
        updated_at: now,
    })
}

/// Reads a memory and records the access in the same transaction.
pub(super) fn get(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    id: MemoryId,
    access: &Access,
) -> Result<Option<Memory>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(None);
    };
    let Some((seq, memory)) = memory_by_id(connection, owner, owner_id, id)? else {
        return Ok(None);
    };
    connection
        .prepare_cached(
            "INSERT INTO access_log (memory_seq, owner_id, app, via, accessed_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .db()?
        .execute(params![seq, owner_id, access.app, access.via, now])
        .db()?;
    Ok(Some(memory))
}

pub(super) fn update_text(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    id: MemoryId,
    text: &str,
    metadata_json: Option<&str>,
) -> Result<Option<Memory>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(None);
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
        return Ok(None);
    }
    Ok(memory_by_id(connection, owner, owner_id, id)?.map(|(_, memory)| memory))
}

/// Moves memories to a state other than deleted (checked by the caller).
pub(super) fn set_state(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
    state: MemoryState,
) -> Result<u64, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(0);
    };
    let mut statement = connection
        .prepare_cached(
            "UPDATE memories SET state = ?3, updated_at = ?4
             WHERE id = ?1 AND owner_id = ?2 AND state NOT IN ('deleted', ?3)",
        )
        .db()?;
    let mut changed = 0;
    for id in ids {
        changed += statement
            .execute(params![id.as_bytes(), owner_id, state.as_str(), now])
            .db()? as u64;
    }
    Ok(changed)
}

pub(super) fn delete(
    connection: &Connection,
    now: i64,
    owner: &Owner,
    ids: &[MemoryId],
) -> Result<u64, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(0);
    };
    let mut statement = connection
        .prepare_cached(
            "UPDATE memories SET state = 'deleted', text = '', metadata = '{}', updated_at = ?3
             WHERE id = ?1 AND owner_id = ?2 AND state <> 'deleted'",
        )
        .db()?;
    let mut deleted = 0;
    for id in ids {
        deleted += statement
            .execute(params![id.as_bytes(), owner_id, now])
            .db()? as u64;
    }
    Ok(deleted)
}

pub(super) fn delete_all(
    connection: &Connection,
    now: i64,
    owner: &Owner,
) -> Result<u64, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(0);
    };
    let deleted = connection
        .prepare_cached(
            "UPDATE memories SET state = 'deleted', text = '', metadata = '{}', updated_at = ?2
             WHERE owner_id = ?1 AND state <> 'deleted'",
        )
        .db()?
        .execute(params![owner_id, now])
        .db()?;
    Ok(deleted as u64)
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
