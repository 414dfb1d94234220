//! Read operations. Each one resolves the owner first and names its
//! `owner_id` in every statement; an owner without a row has no data.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::row::{DbResult, MemoryRow, count, memory_columns};
use crate::store::limits::{CheckedListQuery, CheckedSearchQuery};
use crate::store::search::{Filter, IndexChange, SearchEngine, text_key};
use crate::store::{
    AccessLogEntry, ActivityDay, AppStats, ErrorKind, MAX_ACTIVITY_DAYS, Memory, MemoryId,
    MemoryState, Owner, Page, SearchHit, SortColumn, SortDirection, Stats, StoreError,
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

/// A non-deleted memory of the owner by id, without recording an access.
pub(super) fn get(
    connection: &Connection,
    owner: &Owner,
    id: MemoryId,
) -> Result<Option<Memory>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(None);
    };
    Ok(memory_by_id(connection, owner, owner_id, id)?.map(|(_, memory)| memory))
}

/// The ids among `ids` that name the owner's memories that are not deleted.
pub(super) fn live_ids(
    connection: &Connection,
    owner: &Owner,
    ids: &[MemoryId],
) -> Result<Vec<MemoryId>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Vec::new());
    };
    let mut statement = connection
        .prepare_cached(
            "SELECT 1 FROM memories WHERE id = ?1 AND owner_id = ?2 AND state <> 'deleted'",
        )
        .db()?;
    let mut live = Vec::with_capacity(ids.len());
    for &id in ids {
        if statement.exists(params![id.as_bytes(), owner_id]).db()? {
            live.push(id);
        }
    }
    Ok(live)
}

/// A memory of the owner by its row id (found by an owner-scoped query).
pub(super) fn memory_by_seq(
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
    engine: &SearchEngine,
    owner: &Owner,
    query: &CheckedSearchQuery,
) -> Result<Vec<SearchHit>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Vec::new());
    };
    let filter = Filter {
        states: &query.states,
        app: query.app.as_deref(),
        categories: &query.categories,
        exclude: None,
    };
    let (ranked, terms) = engine.search(owner_id, &query.query, &filter, query.limit as usize);
    let mut hits = Vec::with_capacity(ranked.len());
    for scored in ranked {
        // The engine may be a moment ahead of this snapshot (a memory deleted
        // since): such a memory is simply not returned.
        let Some(memory) = memory_by_seq(connection, owner, owner_id, scored.seq)? else {
            continue;
        };
        let snippet = engine.snippet(&memory.text, &terms);
        hits.push(SearchHit {
            memory,
            score: f64::from(scored.score),
            snippet,
        });
    }
    Ok(hits)
}

/// Builds the search engine from every memory that is not deleted, oldest
/// first, logging progress for large databases.
pub(super) fn load_engine(
    connection: &mut Connection,
    engine: &SearchEngine,
) -> Result<(), StoreError> {
    /// Memories per batch of index changes (and per progress line).
    const BATCH: usize = 100_000;
    let transaction = connection.transaction().db()?;
    let total: i64 = transaction
        .query_row(
            "SELECT COUNT(*) FROM memories WHERE state <> 'deleted'",
            [],
            |row| row.get(0),
        )
        .db()?;
    if total > BATCH as i64 {
        tracing::info!(memories = total, "building the search index");
    }
    let mut statement = transaction
        .prepare(
            "SELECT m.seq, m.owner_id, m.text, m.app, m.state, m.created_at,
                    (SELECT json_group_array(c.category) FROM memory_categories c
                     WHERE c.memory_seq = m.seq AND c.owner_id = m.owner_id)
             FROM memories m WHERE m.state <> 'deleted' ORDER BY m.seq",
        )
        .db()?;
    let mut rows = statement.query([]).db()?;
    let mut changes =
        Vec::with_capacity(usize::try_from(count(total)).map_or(BATCH, |n| n.min(BATCH)));
    let mut loaded = 0_usize;
    while let Some(row) = rows.next().db()? {
        let text: String = row.get(2).db()?;
        let state: String = row.get(4).db()?;
        let categories: String = row.get(6).db()?;
        let state: MemoryState = state
            .parse()
            .map_err(|_| StoreError::from(ErrorKind::Corrupt))?;
        let categories: Vec<String> = serde_json::from_str(&categories)
            .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
        changes.push(IndexChange::Upsert {
            owner_id: row.get(1).db()?,
            seq: row.get(0).db()?,
            key: text_key(&text),
            terms: engine.terms(&text),
            app: row.get(3).db()?,
            state,
            created_at: row.get(5).db()?,
            categories,
        });
        if changes.len() == BATCH {
            engine.apply(std::mem::take(&mut changes));
            loaded += BATCH;
            tracing::info!(loaded, total, "building the search index");
        }
    }
    loaded += changes.len();
    engine.apply(changes);
    if total > BATCH as i64 {
        tracing::info!(loaded, "search index built");
    }
    Ok(())
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
    engine: &SearchEngine,
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
        let filter = Filter {
            states: &[MemoryState::Active, MemoryState::Paused],
            exclude: Some(seq),
            ..Filter::default()
        };
        engine
            .similar(owner_id, seq, &filter, limit as usize)
            .into_iter()
            .map(|scored| scored.seq)
            .collect()
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

pub(super) fn stats(connection: &Connection, owner: &Owner) -> Result<Stats, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Stats {
            total_memories: 0,
            total_apps: 0,
            apps: Vec::new(),
        });
    };
    let mut per_app: BTreeMap<String, AppStats> = BTreeMap::new();
    let created = grouped_usage(
        connection,
        "SELECT app, COUNT(*), MAX(created_at) FROM memories
         WHERE owner_id = ?1 AND state <> 'deleted' GROUP BY app",
        owner_id,
    )?;
    for (app, memories, last) in created {
        let stats = app_stats(&mut per_app, app);
        stats.memories_created = memories;
        stats.last_used_at = stats.last_used_at.max(last);
    }
    // Deleting a memory deletes its access log, so these are live memories.
    let accessed = grouped_usage(
        connection,
        "SELECT app, COUNT(DISTINCT memory_seq), MAX(accessed_at) FROM access_log
         WHERE owner_id = ?1 GROUP BY app",
        owner_id,
    )?;
    for (app, memories, last) in accessed {
        let stats = app_stats(&mut per_app, app);
        stats.memories_accessed = memories;
        stats.last_used_at = stats.last_used_at.max(last);
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
        last_used_at: None,
    })
}

/// `(app, count, latest time)` rows of an owner-scoped `GROUP BY app` statement.
fn grouped_usage(
    connection: &Connection,
    sql: &str,
    owner_id: i64,
) -> Result<Vec<(String, u64, Option<i64>)>, StoreError> {
    let mut statement = connection.prepare_cached(sql).db()?;
    statement
        .query_map([owner_id], |row| {
            Ok((row.get::<_, String>(0)?, count(row.get(1)?), row.get(2)?))
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()
}

/// Milliseconds in a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Additions and reads per UTC day and app, from `since` on; parameters
/// `?1` owner id, `?2` since. Each half is a range over the owner's rows
/// only: `memories_by_owner_created` for additions, `access_log_by_owner_app`
/// for reads (the owner's entries, kept for the retention period); the unary
/// `+` keeps the planner off `access_log_by_time`, which would walk every
/// owner's recent reads. A day is its UTC midnight (floored, also before 1970).
const ACTIVITY: &str = "
    SELECT day, app, SUM(added), SUM(reads) FROM (
        SELECT created_at - (created_at % 86400000 + 86400000) % 86400000 AS day, app,
               COUNT(*) AS added, 0 AS reads
        FROM memories
        WHERE owner_id = ?1 AND created_at >= ?2 AND state <> 'deleted'
        GROUP BY day, app
        UNION ALL
        SELECT accessed_at - (accessed_at % 86400000 + 86400000) % 86400000 AS day, app,
               0 AS added, COUNT(*) AS reads
        FROM access_log
        WHERE owner_id = ?1 AND +accessed_at >= ?2
        GROUP BY day, app)
    GROUP BY day, app
    ORDER BY day, app";

/// The owner's activity per UTC day and app from `since` on, `since` raised
/// to at most [`MAX_ACTIVITY_DAYS`] whole days before today's UTC midnight.
pub(super) fn activity(
    connection: &Connection,
    owner: &Owner,
    since: i64,
    now: i64,
) -> Result<Vec<ActivityDay>, StoreError> {
    let Some(owner_id) = owner_id(connection, owner)? else {
        return Ok(Vec::new());
    };
    let earliest = now
        .saturating_sub(now.rem_euclid(DAY_MS))
        .saturating_sub(i64::from(MAX_ACTIVITY_DAYS).saturating_mul(DAY_MS));
    let since = since.max(earliest);
    let mut statement = connection.prepare_cached(ACTIVITY).db()?;
    statement
        .query_map(params![owner_id, since], |row| {
            Ok(ActivityDay {
                day: row.get(0)?,
                app: row.get(1)?,
                added: count(row.get(2)?),
                read: count(row.get(3)?),
            })
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

    /// The activity statement reads only the owner's rows, through indexes
    /// that start with the owner, and never walks every owner's reads.
    #[test]
    fn activity_reads_only_the_owners_rows_through_owner_indexes() {
        let mut connection = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut connection).unwrap();
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {ACTIVITY}"))
            .unwrap();
        let steps: Vec<String> = statement
            .query_map(params![1, 0], |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let tables: Vec<&String> = steps
            .iter()
            .filter(|step| step.contains("memories") || step.contains("access_log"))
            .collect();
        assert_eq!(tables.len(), 2, "{steps:?}");
        assert!(
            tables.iter().all(|step| step.starts_with("SEARCH")
                && (step.contains("USING INDEX memories_by_owner_")
                    || step.contains("USING INDEX access_log_by_owner_"))
                && step.contains("owner_id=?")),
            "{steps:?}"
        );
    }

    #[test]
    fn offset_of_later_pages() {
        assert_eq!(limit_offset(1, 20), (20, 0));
        assert_eq!(limit_offset(3, 20), (20, 40));
    }
}
