//! Keeping this replica's search index equal to the `memories` table.
//!
//! The index is built from the table at connect ([`IndexSync::load`]) and then
//! caught up ([`IndexSync::catch_up`]) from the rows changed since: after each
//! write through this replica, before each search (read-your-writes across
//! replicas), on every `NOTIFY mcp_memories` (each write transaction sends one
//! at commit), and on a timer, in case a notification was missed while the
//! listening connection was down.
//!
//! # Why `changed_xid >= xmin`, not `seq > last_seq`
//!
//! Row ids are handed out when a row is inserted, not when its transaction
//! commits. A transaction that inserted row 10 may commit after another that
//! inserted row 11 was already read: "everything after 11" would never see 10.
//! Updates and deletions do not change a row id at all. Instead every write
//! stamps its rows with its transaction id (`changed_xid`, a trigger), and a
//! catch-up reads, in one snapshot, that snapshot's `xmin` (every transaction
//! still running then has an id at or above it) and the rows stamped at or
//! above the previous catch-up's `xmin`. A transaction invisible to the
//! previous snapshot was running then or started later, so its id is at or
//! above that `xmin`, and its rows are read once it has committed, however
//! late. Rows read twice are applied twice harmlessly (an upsert by row id, a
//! tombstone removes), and rows already applied in the same version are
//! skipped. Out-of-order row ids find their place in the index's chain, so
//! every replica's index is the same whatever order the rows arrived in.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use futures_util::TryStreamExt;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::{IsolationLevel, Row};

use super::connect::Target;
use super::error::PgResult;
use crate::store::search::{IndexChange, SearchEngine, text_key};
use crate::store::{ErrorKind, MemoryState, StoreError};

/// The channel every write transaction notifies at commit.
pub(super) const CHANNEL: &str = "mcp_memories";

/// Rows applied to the index at a time (and per progress line when loading).
const BATCH: usize = 10_000;

/// A memory row as the index needs it; `$1` is the xid to read from. No `ORDER BY`: the
/// planner cannot estimate an `xid8` range and, asked for row-id order, walks the whole
/// table in that order (half a second at a million rows) instead of reading the few
/// changed rows through `memories_by_changed_xid`. The index takes rows in any order.
const CHANGED_ROWS: &str = "
    SELECT m.seq, m.owner_id, m.text, m.app, m.state::text, m.created_at,
           m.changed_xid::text,
           ARRAY(SELECT c.category FROM memory_categories c
                 WHERE c.memory_seq = m.seq AND c.owner_id = m.owner_id)
    FROM memories m
    WHERE m.changed_xid >= $1::text::xid8";

/// Every memory that is not deleted, for the initial build.
const LIVE_ROWS: &str = "
    SELECT m.seq, m.owner_id, m.text, m.app, m.state::text, m.created_at,
           m.changed_xid::text,
           ARRAY(SELECT c.category FROM memory_categories c
                 WHERE c.memory_seq = m.seq AND c.owner_id = m.owner_id)
    FROM memories m
    WHERE m.state <> 'deleted'
    ORDER BY m.seq";

/// This replica's index and where its catch-ups stand.
pub(super) struct IndexSync {
    pool: Pool,
    engine: Arc<SearchEngine>,
    state: Mutex<SyncState>,
    /// Catch-ups begun so far (each under `state`'s lock).
    begun: AtomicU64,
}

struct SyncState {
    /// The `xmin` of the last catch-up's snapshot.
    xmin: u64,
    /// The number of the last catch-up that completed.
    completed: u64,
    /// Row versions applied whose transaction is at or above `xmin`: read
    /// again by the next catch-ups, they are skipped.
    applied: HashMap<i64, u64>,
}

impl IndexSync {
    /// Builds the index from every memory that is not deleted, streaming the
    /// rows in one snapshot and logging progress for large stores.
    pub(super) async fn load(pool: Pool, engine: Arc<SearchEngine>) -> Result<Self, StoreError> {
        let mut client = pool.get().await.pg()?;
        let transaction = snapshot(&mut client).await?;
        // Streaming every row is one long statement by design: a million memories take
        // tens of seconds, more on a busy machine. The pool's statement timeout is for the
        // short queries of requests.
        transaction
            .batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .pg()?;
        let xmin = xmin(&transaction).await?;
        let total: i64 = transaction
            .query_one(
                "SELECT COUNT(*) FROM memories WHERE state <> 'deleted'",
                &[],
            )
            .await
            .pg()?
            .try_get(0)
            .pg()?;
        let large = total > BATCH as i64;
        if large {
            tracing::info!(memories = total, "building the search index");
        }
        let no_params: [&str; 0] = [];
        let rows = transaction.query_raw(LIVE_ROWS, no_params).await.pg()?;
        let mut rows = pin!(rows);
        let mut changes = Vec::with_capacity(BATCH);
        let mut loaded = 0_usize;
        while let Some(row) = rows.try_next().await.pg()? {
            changes.push(index_change(&engine, &row)?.0);
            if changes.len() == BATCH {
                engine.apply(std::mem::take(&mut changes));
                loaded += BATCH;
                if large {
                    tracing::info!(loaded, total, "building the search index");
                }
            }
        }
        loaded += changes.len();
        engine.apply(changes);
        transaction.commit().await.pg()?;
        if large {
            tracing::info!(loaded, "search index built");
        }
        Ok(Self {
            pool,
            engine,
            state: Mutex::new(SyncState {
                xmin,
                completed: 0,
                applied: HashMap::new(),
            }),
            begun: AtomicU64::new(0),
        })
    }

    /// Catches up with every transaction committed before this call: runs a
    /// catch-up, or waits for one that began after the call.
    pub(super) async fn catch_up(&self) -> Result<(), StoreError> {
        let needed = self.begun.load(Ordering::SeqCst) + 1;
        let mut state = self.state.lock().await;
        if state.completed >= needed {
            return Ok(());
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        self.read_changes(&mut state).await?;
        state.completed = number;
        Ok(())
    }

    /// Reads and applies the rows changed since the last catch-up's `xmin`.
    async fn read_changes(&self, state: &mut SyncState) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.pg()?;
        let transaction = snapshot(&mut client).await?;
        let xmin = xmin(&transaction).await?;
        let since = state.xmin.to_string();
        let rows = transaction
            .query_raw(CHANGED_ROWS, [since.as_str()])
            .await
            .pg()?;
        let mut rows = pin!(rows);
        let mut changes = Vec::new();
        while let Some(row) = rows.try_next().await.pg()? {
            let seq: i64 = row.try_get(0).pg()?;
            let (change, xid) = index_change(&self.engine, &row)?;
            if state.applied.get(&seq) == Some(&xid) {
                continue;
            }
            state.applied.insert(seq, xid);
            changes.push(change);
            if changes.len() == BATCH {
                self.engine.apply(std::mem::take(&mut changes));
            }
        }
        transaction.commit().await.pg()?;
        self.engine.apply(changes);
        state.applied.retain(|_, xid| *xid >= xmin);
        state.xmin = xmin;
        Ok(())
    }
}

/// A read-only transaction in one snapshot.
async fn snapshot(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .pg()
}

/// The `xmin` of the transaction's snapshot.
async fn xmin(transaction: &Transaction<'_>) -> Result<u64, StoreError> {
    let xmin: String = transaction
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await
        .pg()?
        .try_get(0)
        .pg()?;
    parse_xid(&xmin)
}

fn parse_xid(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))
}

/// The index change a row of [`CHANGED_ROWS`] or [`LIVE_ROWS`] makes, and the
/// transaction that wrote it.
fn index_change(engine: &SearchEngine, row: &Row) -> Result<(IndexChange, u64), StoreError> {
    let seq: i64 = row.try_get(0).pg()?;
    let owner_id: i64 = row.try_get(1).pg()?;
    let state: &str = row.try_get(4).pg()?;
    let state: MemoryState = state
        .parse()
        .map_err(|error| StoreError::with_source(ErrorKind::Corrupt, error))?;
    let xid = parse_xid(row.try_get(6).pg()?)?;
    if state == MemoryState::Deleted {
        return Ok((
            IndexChange::State {
                owner_id,
                seq,
                state,
            },
            xid,
        ));
    }
    let text: &str = row.try_get(2).pg()?;
    let mut categories: Vec<String> = row.try_get(7).pg()?;
    categories.sort_unstable();
    Ok((
        IndexChange::Upsert {
            owner_id,
            seq,
            key: text_key(text),
            terms: engine.terms(text),
            app: row.try_get(3).pg()?,
            state,
            created_at: row.try_get(5).pg()?,
            categories,
        },
        xid,
    ))
}

/// Runs catch-ups until `stop` fires or is dropped: on each notification from
/// a dedicated `LISTEN` connection and every `interval`. The listening
/// connection is reconnected with backoff when it drops, followed by a
/// catch-up; the timer keeps the index current meanwhile.
pub(super) async fn run(
    sync: Arc<IndexSync>,
    target: Target,
    interval: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listener: Option<(tokio_postgres::Client, mpsc::Receiver<()>)> = None;
    let mut backoff = Duration::from_millis(100);
    let mut retry_at = tokio::time::Instant::now();
    let mut failing = false;
    loop {
        if listener.is_none() && tokio::time::Instant::now() >= retry_at {
            match listen(&target).await {
                Ok(connected) => {
                    listener = Some(connected);
                    backoff = Duration::from_millis(100);
                    tracing::debug!("listening for memory changes");
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot listen for memory changes");
                    retry_at = tokio::time::Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let notified = async {
            match &mut listener {
                Some((_, notifications)) => notifications.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        let mut lost = false;
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
            alive = notified => lost = !alive,
        }
        if lost {
            tracing::warn!("the memory change listener disconnected; reconnecting");
            listener = None;
            retry_at = tokio::time::Instant::now();
        }
        match sync.catch_up().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("the search index is catching up again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot catch up the search index");
            }
            Err(_) => {}
        }
    }
    tracing::debug!("stopped following memory changes");
}

/// A connection listening on [`CHANNEL`], and its notifications.
async fn listen(
    target: &Target,
) -> Result<(tokio_postgres::Client, mpsc::Receiver<()>), StoreError> {
    let (sender, receiver) = mpsc::channel(1);
    let client = target.connect(Some(sender)).await?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .pg()?;
    Ok((client, receiver))
}
