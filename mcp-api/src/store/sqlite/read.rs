//! Read operations. Each one resolves the owner first and names its
//! `owner_id` in every statement; an owner without a row has no data.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::fts;
use super::row::{DbResult, MemoryRow, count, memory_columns};
use crate::store::limits::{CheckedListQuery, CheckedSearchQuery};
use crate::store::{
    AccessLogEntry, AppStats, ErrorKind, Memory, MemoryId, MemoryState, Owner, Page, SearchHit,
    SortColumn, SortDirection, Stats, StoreError,
};

/// Memory states that [`related`] considers.
const RELATED_STATES: &str = r#"["active","paused"]"#;

/// The owner's row id, if the owner ever stored anything.
pub(super) fn owner_id(connection: &Connection, owner: &Owner) -> Result<Option<i64>, StoreError> {
    connection
        .prepare_cached("SELECT id FROM owners WHERE subject = ?1")
        .db()?
        .query_row([owner.as_str()], |row| row.get(0))
        .optional()
        .db()
}

/// A non-deleted memory of the owner by id.
pub(super) fn memory_by_id(
    connection: &Connection,
    owner: &Owner,
    owner_id: i64,
    id: MemoryId,
) -> Result<Option<(i64, Memory)>, StoreError> {
    let row = connection
        .prepare_cached(concat!(
            "SELECT ",
            memory_columns!(),
            " FROM memories m WHERE m.id = ?1 AND m.owner_id = ?2 AND m.state <> 'deleted'"
        ))
        .db()?
        .query_row(params![id.as_bytes(), owner_id], MemoryRow::from_row)
        .optional()
        .db()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let seq = row.seq;
    Ok(Some((seq, row.into_memory(owner)?)))
}

/// A memory of the owner by its row id (found by an owner-scoped query).
fn memory_by_seq(
    connection: &Connection,
    owner: &Owner,
    owner_id: i64,
    seq: i64,
) -> Result<Option<Memory>, StoreError> {
    connection
        .prepare_cached(concat!(
            "SELECT ",
            memory_columns!(),
            " FROM memories m WHERE m.seq = ?1 AND m.owner_id = ?2 AND m.state <> 'deleted'"
        ))
        .db()?
        .query_row(params![seq, owner_id], MemoryRow::from_row)
        .optional()
        .db()?
        .map(|row| row.into_memory(owner))
        .transpose()
}

/// Memories by row ids, in that order.
fn memories_by_seq(
    connection: &Connection,
    owner: &Owner,
    owner_id: i64,
    seqs: &[i64],
) -> Result<Vec<Memory>, StoreError> {
    let mut memories = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if let Some(memory) = memory_by_seq(connection, owner, owner_id, seq)? {
            memories.push(memory);
        }
    }
    Ok(memories)
}

/// The filter every list statement shares; parameters ?1 to ?7.
const LIST_FILTER: &str = "
    m.owner_id = ?1
    AND m.state <> 'deleted'
    AND m.state IN (SELECT value FROM json_each(?2))
    AND (?3 IS NULL OR m.app = ?3)
    AND (?4 IS NULL OR m.created_at >= ?4)
    AND (?5 IS NULL OR m.created_at <= ?5)
    AND (?6 IS NULL OR m.text LIKE ?6 ESCAPE '\\')
    AND (?7 IS NULL OR EXISTS (
        SELECT 1 FROM memory_categories c
        WHERE c.memory_seq = m.seq AND c.owner_id = ?1
          AND c.category IN (SELECT value FROM json_each(?7))))";

pub(super) fn list(
    connection: &Connection,
    owner: &Owner,
    query: &CheckedListQuery,
) -> Result<Page<Memory>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Page::new(Vec::new(), 0, query.page, query.size));
    };
    let states = states_json(&query.states)?;
    let categories = categories_json(&query.categories)?;
    let pattern = query.text_contains.as_deref().map(like_pattern);
    let filter = params![
        owner_id, states, query.app, query.from, query.to, pattern, categories
    ];

    let total: i64 = connection
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM memories m WHERE {LIST_FILTER}"
        ))
        .db()?
        .query_row(filter, |row| row.get(0))
        .db()?;

    let sql = format!(
        "SELECT {} FROM memories m WHERE {LIST_FILTER} ORDER BY {} LIMIT ?8 OFFSET ?9",
        memory_columns!(),
        order_by(query.sort, query.direction)
    );
    let (limit, offset) = limit_offset(query.page, query.size);
    let mut statement = connection.prepare_cached(&sql).db()?;
    let rows = statement
        .query_map(
            params![
                owner_id, states, query.app, query.from, query.to, pattern, categories, limit,
                offset
            ],
            MemoryRow::from_row,
        )
        .db()?;
    let mut items = Vec::new();
    for row in rows {
        items.push(row.db()?.into_memory(owner)?);
    }
    Ok(Page::new(items, count(total), query.page, query.size))
}

/// The ORDER BY clause; built from enums only, never from input text.
fn order_by(sort: SortColumn, direction: SortDirection) -> String {
    let direction = match direction {
        SortDirection::Ascending => "ASC",
        SortDirection::Descending => "DESC",
    };
    let column = match sort {
        SortColumn::CreatedAt => "m.created_at",
        SortColumn::UpdatedAt => "m.updated_at",
        SortColumn::Text => "m.text COLLATE NOCASE",
        SortColumn::App => "m.app",
    };
    format!("{column} {direction}, m.seq {direction}")
}

/// A LIKE pattern matching text that contains `needle` literally.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for character in needle.chars() {
        if matches!(character, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

fn states_json(states: &[MemoryState]) -> Result<String, StoreError> {
    json_array(states)
}

/// `None` for no category filter.
fn categories_json(categories: &[String]) -> Result<Option<String>, StoreError> {
    if categories.is_empty() {
        return Ok(None);
    }
    json_array(categories).map(Some)
}

/// A JSON array for `json_each(?)`, so a list is one bound parameter.
fn json_array<T: Serialize>(values: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(values)
        .map_err(|error| StoreError::with_source(ErrorKind::Backend, error))
}

/// LIMIT and OFFSET of a 1-based page.
fn limit_offset(page: u32, size: u32) -> (i64, i64) {
    let offset = i64::from(page.saturating_sub(1)) * i64::from(size);
    (i64::from(size), offset)
}

pub(super) fn search(
    connection: &Connection,
    owner: &Owner,
    query: &CheckedSearchQuery,
) -> Result<Vec<SearchHit>, StoreError> {
    let words = fts::words(&query.query);
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Vec::new());
    };
    let Some(expression) = fts::match_any_word(owner_id, &words) else {
        return Ok(Vec::new());
    };
    // Rank first on row ids only, so the sort does not carry whole memories;
    // then load the few winners.
    let mut statement = connection
        .prepare_cached(
            "SELECT m.seq, -memories_fts.rank
             FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid
             WHERE memories_fts MATCH ?1
               AND m.owner_id = ?2
               AND m.state IN (SELECT value FROM json_each(?3))
               AND (?4 IS NULL OR m.app = ?4)
               AND (?5 IS NULL OR EXISTS (
                   SELECT 1 FROM memory_categories c
                   WHERE c.memory_seq = m.seq AND c.owner_id = ?2
                     AND c.category IN (SELECT value FROM json_each(?5))))
             ORDER BY memories_fts.rank, m.seq DESC
             LIMIT ?6",
        )
        .db()?;
    let ranked = statement
        .query_map(
            params![
                expression,
                owner_id,
                states_json(&query.states)?,
                query.app,
                categories_json(&query.categories)?,
                query.limit
            ],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, f64>(1)?)),
        )
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;

    let mut hits = Vec::with_capacity(ranked.len());
    for (seq, score) in ranked {
        let Some(memory) = memory_by_seq(connection, owner, owner_id, seq)? else {
            continue;
        };
        let snippet = snippet(connection, &expression, seq)?;
        hits.push(SearchHit {
            memory,
            score,
            snippet,
        });
    }
    Ok(hits)
}

/// The highlighted excerpt of one matched memory's text.
fn snippet(connection: &Connection, expression: &str, seq: i64) -> Result<String, StoreError> {
    let snippet: Option<String> = connection
        .prepare_cached(
            "SELECT snippet(memories_fts, 1, '**', '**', '…', 24)
             FROM memories_fts WHERE memories_fts MATCH ?1 AND rowid = ?2",
        )
        .db()?
        .query_row(params![expression, seq], |row| row.get(0))
        .optional()
        .db()?;
    Ok(snippet.unwrap_or_default())
}

pub(super) fn categories(
    connection: &Connection,
    owner: &Owner,
) -> Result<Vec<(String, u64)>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Vec::new());
    };
    // Deleting a memory deletes its categories, so every row here is of a live memory.
    let mut statement = connection
        .prepare_cached(
            "SELECT category, COUNT(*) AS uses FROM memory_categories
             WHERE owner_id = ?1 GROUP BY category ORDER BY uses DESC, category ASC",
        )
        .db()?;
    let rows = statement
        .query_map([owner_id], |row| {
            Ok((row.get::<_, String>(0)?, count(row.get(1)?)))
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(super) fn access_log(
    connection: &Connection,
    owner: &Owner,
    id: MemoryId,
    page: u32,
    size: u32,
) -> Result<Option<Page<AccessLogEntry>>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(None);
    };
    let seq: Option<i64> = connection
        .prepare_cached(
            "SELECT seq FROM memories WHERE id = ?1 AND owner_id = ?2 AND state <> 'deleted'",
        )
        .db()?
        .query_row(params![id.as_bytes(), owner_id], |row| row.get(0))
        .optional()
        .db()?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let total: i64 = connection
        .prepare_cached("SELECT COUNT(*) FROM access_log WHERE memory_seq = ?1 AND owner_id = ?2")
        .db()?
        .query_row(params![seq, owner_id], |row| row.get(0))
        .db()?;
    let (limit, offset) = limit_offset(page, size);
    let mut statement = connection
        .prepare_cached(
            "SELECT accessed_at, app, via FROM access_log
             WHERE memory_seq = ?1 AND owner_id = ?2
             ORDER BY accessed_at DESC, seq DESC LIMIT ?3 OFFSET ?4",
        )
        .db()?;
    let entries = statement
        .query_map(params![seq, owner_id, limit, offset], |row| {
            Ok(AccessLogEntry {
                memory_id: id,
                accessed_at: row.get(0)?,
                app: row.get(1)?,
                via: row.get(2)?,
            })
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    Ok(Some(Page::new(entries, count(total), page, size)))
}

pub(super) fn related(
    connection: &Connection,
    owner: &Owner,
    id: MemoryId,
    limit: u32,
) -> Result<Option<Vec<Memory>>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(None);
    };
    let Some((seq, memory)) = memory_by_id(connection, owner, owner_id, id)? else {
        return Ok(None);
    };
    let seqs = if memory.categories.is_empty() {
        similar_text(connection, owner_id, seq, &memory.text, limit)?
    } else {
        sharing_categories(connection, owner_id, seq, limit)?
    };
    memories_by_seq(connection, owner, owner_id, &seqs).map(Some)
}

/// Row ids of the owner's memories sharing categories with memory `seq`,
/// most shared first, then newest.
fn sharing_categories(
    connection: &Connection,
    owner_id: i64,
    seq: i64,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT c.memory_seq, COUNT(*) AS shared
             FROM memory_categories c JOIN memories m ON m.seq = c.memory_seq
             WHERE c.owner_id = ?1
               AND c.category IN (
                   SELECT category FROM memory_categories WHERE memory_seq = ?2 AND owner_id = ?1)
               AND c.memory_seq <> ?2
               AND m.owner_id = ?1
               AND m.state IN (SELECT value FROM json_each(?3))
             GROUP BY c.memory_seq
             ORDER BY shared DESC, m.created_at DESC, c.memory_seq DESC
             LIMIT ?4",
        )
        .db()?;
    statement
        .query_map(params![owner_id, seq, RELATED_STATES, limit], |row| {
            row.get(0)
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()
}

/// Row ids of the owner's memories whose text best matches the words of `text`.
fn similar_text(
    connection: &Connection,
    owner_id: i64,
    seq: i64,
    text: &str,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    let Some(expression) = fts::match_any_word(owner_id, &fts::words(text)) else {
        return Ok(Vec::new());
    };
    let mut statement = connection
        .prepare_cached(
            "SELECT m.seq FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid
             WHERE memories_fts MATCH ?1
               AND m.owner_id = ?2
               AND m.seq <> ?3
               AND m.state IN (SELECT value FROM json_each(?4))
             ORDER BY memories_fts.rank, m.seq DESC
             LIMIT ?5",
        )
        .db()?;
    statement
        .query_map(
            params![expression, owner_id, seq, RELATED_STATES, limit],
            |row| row.get(0),
        )
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()
}

pub(super) fn stats(connection: &Connection, owner: &Owner) -> Result<Stats, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Stats {
            total_memories: 0,
            total_apps: 0,
            apps: Vec::new(),
        });
    };
    let mut per_app: BTreeMap<String, AppStats> = BTreeMap::new();
    let created = grouped_counts(
        connection,
        "SELECT app, COUNT(*) FROM memories
         WHERE owner_id = ?1 AND state <> 'deleted' GROUP BY app",
        owner_id,
    )?;
    for (app, memories) in created {
        app_stats(&mut per_app, app).memories_created = memories;
    }
    // Deleting a memory deletes its access log, so these are live memories.
    let accessed = grouped_counts(
        connection,
        "SELECT app, COUNT(DISTINCT memory_seq) FROM access_log WHERE owner_id = ?1 GROUP BY app",
        owner_id,
    )?;
    for (app, memories) in accessed {
        app_stats(&mut per_app, app).memories_accessed = memories;
    }
    let apps: Vec<AppStats> = per_app.into_values().collect();
    Ok(Stats {
        total_memories: apps.iter().map(|app| app.memories_created).sum(),
        total_apps: apps.len() as u64,
        apps,
    })
}

fn app_stats(per_app: &mut BTreeMap<String, AppStats>, app: String) -> &mut AppStats {
    per_app.entry(app.clone()).or_insert_with(|| AppStats {
        app,
        memories_created: 0,
        memories_accessed: 0,
    })
}

/// `(text, count)` rows of an owner-scoped `GROUP BY` statement.
fn grouped_counts(
    connection: &Connection,
    sql: &str,
    owner_id: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut statement = connection.prepare_cached(sql).db()?;
    statement
        .query_map([owner_id], |row| {
            Ok((row.get::<_, String>(0)?, count(row.get(1)?)))
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards_and_the_escape() {
        assert_eq!(like_pattern(r"100%_a\b"), r"%100\%\_a\\b%");
    }

    #[test]
    fn order_by_breaks_ties_in_the_same_direction() {
        assert_eq!(
            order_by(SortColumn::Text, SortDirection::Ascending),
            "m.text COLLATE NOCASE ASC, m.seq ASC"
        );
    }

    #[test]
    fn offset_of_later_pages() {
        assert_eq!(limit_offset(1, 20), (20, 0));
        assert_eq!(limit_offset(3, 20), (20, 40));
    }
}
