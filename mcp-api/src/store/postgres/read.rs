//! Read operations. Each takes the owner's row id (resolved by the caller)
//! and names `owner_id` in every statement.

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::error::PgResult;
use crate::store::limits::{CheckedListQuery, CheckedSearchQuery};
use crate::store::search::{Filter, SearchEngine};
use crate::store::{
    AccessLogEntry, ActivityDay, AppStats, ErrorKind, MAX_ACTIVITY_DAYS, Memory, MemoryId,
    MemoryState, Owner, Page, SearchHit, SortColumn, SortDirection, Stats, StoreError,
};

/// The columns [`memory_from_row`] reads, from `memories` aliased as `m`.
macro_rules! memory_columns {
    () => {
        "m.seq, m.id, m.text, m.metadata::text, m.app, m.state::text, m.created_at, \
         m.updated_at, ARRAY(SELECT c.category FROM memory_categories c \
         WHERE c.memory_seq = m.seq AND c.owner_id = m.owner_id)"
    };
}
pub(super) use memory_columns;

/// ASCII upper case to lower case, as `translate` arguments: SQLite's `NOCASE`
/// and `LIKE` fold ASCII only, and so does this store.
macro_rules! ascii_lower {
    ($column:literal) => {
        concat!(
            "translate(",
            $column,
            ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
        )
    };
}

/// Decodes a row of [`memory_columns!`]; the query that read it was scoped to `owner`.
pub(super) fn memory_from_row(row: &Row, owner: &Owner) -> Result<(i64, Memory), StoreError> {
    let id: Uuid = row.try_get(1).pg()?;
    let id = MemoryId::from_uuid(id)
        .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
    let metadata: &str = row.try_get(3).pg()?;
    let metadata = serde_json::from_str(metadata)
        .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
    let state: &str = row.try_get(5).pg()?;
    let state: MemoryState = state
        .parse()
        .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
    let mut categories: Vec<String> = row.try_get(8).pg()?;
    categories.sort_unstable();
    Ok((
        row.try_get(0).pg()?,
        Memory {
            id,
            owner: owner.clone(),
            text: row.try_get(2).pg()?,
            metadata,
            categories,
            app: row.try_get(4).pg()?,
            state,
            created_at: row.try_get(6).pg()?,
            updated_at: row.try_get(7).pg()?,
        },
    ))
}

/// A non-deleted memory of the owner by id, with its row id.
pub(super) async fn memory_by_id(
    client: &impl GenericClient,
    owner: &Owner,
    owner_id: i64,
    id: MemoryId,
) -> Result<Option<(i64, Memory)>, StoreError> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            memory_columns!(),
            " FROM memories m WHERE m.id = $1 AND m.owner_id = $2 AND m.state <> 'deleted'"
        ))
        .await
        .pg()?;
    let row = client
        .query_opt(&statement, &[id.as_uuid(), &owner_id])
        .await
        .pg()?;
    row.map(|row| memory_from_row(&row, owner)).transpose()
}

/// Non-deleted memories of the owner by row id, in the order of `seqs`.
async fn memories_by_seq(
    client: &impl GenericClient,
    owner: &Owner,
    owner_id: i64,
    seqs: &[i64],
) -> Result<Vec<Memory>, StoreError> {
    let mut found = memories_by_seq_map(client, owner, owner_id, seqs).await?;
    Ok(seqs.iter().filter_map(|seq| found.remove(seq)).collect())
}

/// Non-deleted memories of the owner among row ids `seqs`, by row id.
async fn memories_by_seq_map(
    client: &impl GenericClient,
    owner: &Owner,
    owner_id: i64,
    seqs: &[i64],
) -> Result<HashMap<i64, Memory>, StoreError> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            memory_columns!(),
            " FROM memories m WHERE m.owner_id = $1 AND m.seq = ANY($2) AND m.state <> 'deleted'"
        ))
        .await
        .pg()?;
    let mut found = HashMap::with_capacity(seqs.len());
    for row in client.query(&statement, &[&owner_id, &seqs]).await.pg()? {
        let (seq, memory) = memory_from_row(&row, owner)?;
        found.insert(seq, memory);
    }
    Ok(found)
}

/// The ids among `ids` that name the owner's memories that are not deleted,
/// in the order given.
pub(super) async fn live_ids(
    client: &impl GenericClient,
    owner_id: i64,
    ids: &[MemoryId],
) -> Result<Vec<MemoryId>, StoreError> {
    let uuids: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
    let statement = client
        .prepare_cached(
            "SELECT id FROM memories WHERE owner_id = $1 AND id = ANY($2) AND state <> 'deleted'",
        )
        .await
        .pg()?;
    let mut live = std::collections::HashSet::new();
    for row in client.query(&statement, &[&owner_id, &uuids]).await.pg()? {
        live.insert(row.try_get::<_, Uuid>(0).pg()?);
    }
    Ok(ids
        .iter()
        .filter(|id| live.contains(id.as_uuid()))
        .copied()
        .collect())
}

/// The filter every list statement shares; parameters `$1` to `$7`.
const LIST_FILTER: &str = concat!(
    "m.owner_id = $1
    AND m.state <> 'deleted'
    AND m.state::text = ANY($2::text[])
    AND ($3::text IS NULL OR m.app = $3)
    AND ($4::int8 IS NULL OR m.created_at >= $4)
    AND ($5::int8 IS NULL OR m.created_at <= $5)
    AND ($6::text IS NULL OR strpos(",
    ascii_lower!("m.text"),
    ", $6) > 0)
    AND ($7::text[] IS NULL OR EXISTS (
        SELECT 1 FROM memory_categories c
        WHERE c.memory_seq = m.seq AND c.owner_id = $1 AND c.category = ANY($7)))"
);

pub(super) async fn list(
    client: &impl GenericClient,
    owner: &Owner,
    owner_id: i64,
    query: &CheckedListQuery,
) -> Result<Page<Memory>, StoreError> {
    let states: Vec<&str> = query.states.iter().map(|state| state.as_str()).collect();
    let categories = (!query.categories.is_empty()).then_some(&query.categories);
    let needle = query.text_contains.as_deref().map(str::to_ascii_lowercase);
    let filter: [&(dyn ToSql + Sync); 7] = [
        &owner_id,
        &states,
        &query.app,
        &query.from,
        &query.to,
        &needle,
        &categories,
    ];
    let count = client
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM memories m WHERE {LIST_FILTER}"
        ))
        .await
        .pg()?;
    let total: i64 = client
        .query_one(&count, &filter)
        .await
        .pg()?
        .try_get(0)
        .pg()?;
    let page = client
        .prepare_cached(&format!(
            "SELECT {} FROM memories m WHERE {LIST_FILTER} ORDER BY {} LIMIT $8 OFFSET $9",
            memory_columns!(),
            order_by(query.sort, query.direction)
        ))
        .await
        .pg()?;
    let (limit, offset) = limit_offset(query.page, query.size);
    let mut params = filter.to_vec();
    params.push(&limit);
    params.push(&offset);
    let mut items = Vec::new();
    for row in client.query(&page, &params).await.pg()? {
        items.push(memory_from_row(&row, owner)?.1);
    }
    Ok(Page::new(items, count_of(total), query.page, query.size))
}

/// The ORDER BY clause; built from enums only, never from input text. Text
/// compares byte by byte (`"C"`), as SQLite does.
fn order_by(sort: SortColumn, direction: SortDirection) -> String {
    let direction = match direction {
        SortDirection::Ascending => "ASC",
        SortDirection::Descending => "DESC",
    };
    let column = match sort {
        SortColumn::CreatedAt => "m.created_at",
        SortColumn::UpdatedAt => "m.updated_at",
        SortColumn::Text => concat!(ascii_lower!("m.text"), " COLLATE \"C\""),
        SortColumn::App => "m.app COLLATE \"C\"",
    };
    format!("{column} {direction}, m.seq {direction}")
}

/// LIMIT and OFFSET of a 1-based page.
fn limit_offset(page: u32, size: u32) -> (i64, i64) {
    let offset = i64::from(page.saturating_sub(1)) * i64::from(size);
    (i64::from(size), offset)
}

/// A count read from SQL, which is never negative.
pub(super) fn count_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(super) async fn search(
    client: &impl GenericClient,
    engine: &SearchEngine,
    owner: &Owner,
    owner_id: i64,
    query: &CheckedSearchQuery,
) -> Result<Vec<SearchHit>, StoreError> {
    let filter = Filter {
        states: &query.states,
        app: query.app.as_deref(),
        categories: &query.categories,
        exclude: None,
    };
    let (ranked, terms) = engine.search(owner_id, &query.query, &filter, query.limit as usize);
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = ranked.iter().map(|scored| scored.seq).collect();
    // The index may be a moment ahead of or behind the table (a memory deleted
    // through another replica): a memory no longer there is not returned.
    let mut memories = memories_by_seq_map(client, owner, owner_id, &seqs).await?;
    let mut hits = Vec::with_capacity(ranked.len());
    for scored in ranked {
        let Some(memory) = memories.remove(&scored.seq) else {
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

pub(super) async fn categories(
    client: &impl GenericClient,
    owner_id: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    // Deleting a memory deletes its categories, so every row here is of a live memory.
    let statement = client
        .prepare_cached(
            "SELECT category, COUNT(*) AS uses FROM memory_categories
             WHERE owner_id = $1 GROUP BY category ORDER BY uses DESC, category COLLATE \"C\" ASC",
        )
        .await
        .pg()?;
    client
        .query(&statement, &[&owner_id])
        .await
        .pg()?
        .iter()
        .map(|row| Ok((row.try_get(0).pg()?, count_of(row.try_get(1).pg()?))))
        .collect()
}

pub(super) async fn access_log(
    client: &impl GenericClient,
    owner_id: i64,
    id: MemoryId,
    page: u32,
    size: u32,
) -> Result<Option<Page<AccessLogEntry>>, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT seq FROM memories WHERE id = $1 AND owner_id = $2 AND state <> 'deleted'",
        )
        .await
        .pg()?;
    let Some(row) = client
        .query_opt(&statement, &[id.as_uuid(), &owner_id])
        .await
        .pg()?
    else {
        return Ok(None);
    };
    let seq: i64 = row.try_get(0).pg()?;
    let statement = client
        .prepare_cached("SELECT COUNT(*) FROM access_log WHERE memory_seq = $1 AND owner_id = $2")
        .await
        .pg()?;
    let total: i64 = client
        .query_one(&statement, &[&seq, &owner_id])
        .await
        .pg()?
        .try_get(0)
        .pg()?;
    let (limit, offset) = limit_offset(page, size);
    let statement = client
        .prepare_cached(
            "SELECT accessed_at, app, via FROM access_log
             WHERE memory_seq = $1 AND owner_id = $2
             ORDER BY accessed_at DESC, seq DESC LIMIT $3 OFFSET $4",
        )
        .await
        .pg()?;
    let entries = client
        .query(&statement, &[&seq, &owner_id, &limit, &offset])
        .await
        .pg()?
        .iter()
        .map(|row| {
            Ok(AccessLogEntry {
                memory_id: id,
                accessed_at: row.try_get(0).pg()?,
                app: row.try_get(1).pg()?,
                via: row.try_get(2).pg()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Page::new(entries, count_of(total), page, size)))
}

pub(super) async fn related(
    client: &impl GenericClient,
    engine: &SearchEngine,
    owner: &Owner,
    owner_id: i64,
    id: MemoryId,
    limit: u32,
) -> Result<Option<Vec<Memory>>, StoreError> {
    let Some((seq, memory)) = memory_by_id(client, owner, owner_id, id).await? else {
        return Ok(None);
    };
    let seqs: Vec<i64> = if memory.categories.is_empty() {
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
        let statement = client
            .prepare_cached(
                "SELECT c.memory_seq
                 FROM memory_categories c
                 JOIN memories m ON m.seq = c.memory_seq AND m.owner_id = c.owner_id
                 WHERE c.owner_id = $1
                   AND c.category IN (
                       SELECT category FROM memory_categories
                       WHERE memory_seq = $2 AND owner_id = $1)
                   AND c.memory_seq <> $2
                   AND m.state IN ('active', 'paused')
                 GROUP BY c.memory_seq, m.created_at
                 ORDER BY COUNT(*) DESC, m.created_at DESC, c.memory_seq DESC
                 LIMIT $3",
            )
            .await
            .pg()?;
        client
            .query(&statement, &[&owner_id, &seq, &i64::from(limit)])
            .await
            .pg()?
            .iter()
            .map(|row| row.try_get(0).pg())
            .collect::<Result<_, _>>()?
    };
    memories_by_seq(client, owner, owner_id, &seqs)
        .await
        .map(Some)
}

pub(super) async fn stats(client: &impl GenericClient, owner_id: i64) -> Result<Stats, StoreError> {
    let mut per_app: BTreeMap<String, AppStats> = BTreeMap::new();
    let created = grouped_usage(
        client,
        "SELECT app, COUNT(*), MAX(created_at) FROM memories
         WHERE owner_id = $1 AND state <> 'deleted' GROUP BY app",
        owner_id,
    )
    .await?;
    for (app, memories, last) in created {
        let stats = app_stats(&mut per_app, app);
        stats.memories_created = memories;
        stats.last_used_at = stats.last_used_at.max(last);
    }
    // Deleting a memory deletes its access log, so these are live memories.
    let accessed = grouped_usage(
        client,
        "SELECT app, COUNT(DISTINCT memory_seq), MAX(accessed_at) FROM access_log
         WHERE owner_id = $1 GROUP BY app",
        owner_id,
    )
    .await?;
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

/// Stats of an owner that never stored anything.
pub(super) fn empty_stats() -> Stats {
    Stats {
        total_memories: 0,
        total_apps: 0,
        apps: Vec::new(),
    }
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
async fn grouped_usage(
    client: &impl GenericClient,
    sql: &str,
    owner_id: i64,
) -> Result<Vec<(String, u64, Option<i64>)>, StoreError> {
    let statement = client.prepare_cached(sql).await.pg()?;
    client
        .query(&statement, &[&owner_id])
        .await
        .pg()?
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0).pg()?,
                count_of(row.try_get(1).pg()?),
                row.try_get(2).pg()?,
            ))
        })
        .collect()
}

/// Milliseconds in a day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Additions and reads per UTC day and app, from `since` on; parameters `$1`
/// owner id, `$2` since. A day is its UTC midnight (floored, also before 1970).
const ACTIVITY: &str = "
    SELECT day, app, SUM(added)::int8, SUM(reads)::int8 FROM (
        SELECT created_at - (created_at % 86400000 + 86400000) % 86400000 AS day, app,
               COUNT(*) AS added, 0::int8 AS reads
        FROM memories
        WHERE owner_id = $1 AND created_at >= $2 AND state <> 'deleted'
        GROUP BY day, app
        UNION ALL
        SELECT accessed_at - (accessed_at % 86400000 + 86400000) % 86400000 AS day, app,
               0::int8 AS added, COUNT(*) AS reads
        FROM access_log
        WHERE owner_id = $1 AND accessed_at >= $2
        GROUP BY day, app) AS per_kind
    GROUP BY day, app
    ORDER BY day, app COLLATE \"C\"";

/// The owner's activity per UTC day and app from `since` on, `since` raised
/// to at most [`MAX_ACTIVITY_DAYS`] whole days before today's UTC midnight.
pub(super) async fn activity(
    client: &impl GenericClient,
    owner_id: i64,
    since: i64,
    now: i64,
) -> Result<Vec<ActivityDay>, StoreError> {
    let earliest = now
        .saturating_sub(now.rem_euclid(DAY_MS))
        .saturating_sub(i64::from(MAX_ACTIVITY_DAYS).saturating_mul(DAY_MS));
    let since = since.max(earliest);
    let statement = client.prepare_cached(ACTIVITY).await.pg()?;
    client
        .query(&statement, &[&owner_id, &since])
        .await
        .pg()?
        .iter()
        .map(|row| {
            Ok(ActivityDay {
                day: row.try_get(0).pg()?,
                app: row.try_get(1).pg()?,
                added: count_of(row.try_get(2).pg()?),
                read: count_of(row.try_get(3).pg()?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_breaks_ties_in_the_same_direction() {
        assert_eq!(
            order_by(SortColumn::App, SortDirection::Ascending),
            "m.app COLLATE \"C\" ASC, m.seq ASC"
        );
    }

    #[test]
    fn offset_of_later_pages() {
        assert_eq!(limit_offset(1, 20), (20, 0));
        assert_eq!(limit_offset(3, 20), (20, 40));
    }
}
