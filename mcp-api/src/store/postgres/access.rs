//! The access log, written behind the reads that make it.
//!
//! Reads queue their entries on a bounded channel and return; one task per
//! store takes whatever is queued and writes it with a single multi-row
//! `INSERT`, which re-checks each memory is the owner's and not deleted. A
//! flush request is answered once everything queued before it is written.
//! The same task deletes entries past the retention when it starts writing
//! and then every ten minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::error::{PgResult, retry};
use crate::store::{Access, Clock, ErrorKind, MemoryId, Owner, StoreError, now_unix_ms};

/// Entries (or flushes) that may wait; an entry that finds no room is dropped
/// and counted, rather than slowing the read.
const QUEUE_CAPACITY: usize = 4096;
/// Most queued requests written by one `INSERT`.
const MAX_GROUP: usize = 512;
/// How often entries past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Writes one group: parameters are parallel arrays of memory id, owner,
/// app, via and time. Owner-scoped by the joins. `FOR SHARE` orders it with a
/// concurrent deletion of the same memory: whichever comes second sees the
/// other committed, so a deleted memory never keeps an entry (the deletion's
/// trigger removes earlier ones; this skips it once deleted).
const INSERT: &str = "
    INSERT INTO access_log (memory_seq, owner_id, app, via, accessed_at)
    SELECT m.seq, m.owner_id, e.app, e.via, e.accessed_at
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[])
         AS e(id, subject, app, via, accessed_at)
    JOIN owners o ON o.subject = e.subject
    JOIN memories m ON m.id = e.id AND m.owner_id = o.id AND m.state <> 'deleted'
    ORDER BY m.seq
    FOR SHARE OF m";

/// The queue's sending side, held by the store.
pub(super) struct AccessQueue {
    sender: mpsc::Sender<Job>,
    dropped: AtomicU64,
}

/// How long entries are kept.
pub(super) struct Retention {
    /// Entries older than this are deleted; `None` keeps them forever.
    pub(super) keep: Option<Duration>,
    /// The store's clock.
    pub(super) clock: Arc<dyn Clock>,
}

enum Job {
    Record {
        owner: Owner,
        ids: Vec<MemoryId>,
        access: Access,
        at: i64,
    },
    Flush(oneshot::Sender<()>),
}

impl AccessQueue {
    /// Starts the writing task; it ends once the queue is dropped and drained.
    pub(super) fn start(pool: Pool, retention: Retention) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_loop(pool, receiver, retention));
        Self {
            sender,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues entries read at `at` without waiting for them to be written.
    pub(super) fn record(&self, owner: &Owner, ids: Vec<MemoryId>, access: Access, at: i64) {
        let job = Job::Record {
            owner: owner.clone(),
            ids,
            access,
            at,
        };
        if self.sender.try_send(job).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "the access-log queue is full: access-log entries dropped"
                );
            }
        }
    }

    /// Waits until every entry queued so far is written.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = |_| StoreError::from(ErrorKind::Unavailable);
        self.sender.send(Job::Flush(reply)).await.map_err(gone)?;
        answer
            .await
            .map_err(|_| StoreError::from(ErrorKind::Unavailable))
    }
}

async fn write_loop(pool: Pool, mut receiver: mpsc::Receiver<Job>, retention: Retention) {
    let mut last_prune: Option<Instant> = None;
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            if let Err(error) = prune(&pool, &retention).await {
                tracing::warn!(%error, "cannot prune the access log");
            }
        }
        let mut flushes = Vec::new();
        let mut group = Group::default();
        for job in jobs.drain(..) {
            match job {
                Job::Record {
                    owner,
                    ids,
                    access,
                    at,
                } => group.push(&owner, &ids, &access, at),
                Job::Flush(reply) => flushes.push(reply),
            }
        }
        if !group.ids.is_empty() {
            let entries = group.ids.len();
            if let Err(error) = retry(|| group.write(&pool)).await {
                tracing::warn!(%error, entries, "cannot write access-log entries; dropped");
            }
        }
        for reply in flushes {
            let _ = reply.send(());
        }
    }
    tracing::debug!("the access-log writer stopped");
}

/// Entries as the parallel arrays of [`INSERT`].
#[derive(Default)]
struct Group {
    ids: Vec<Uuid>,
    subjects: Vec<String>,
    apps: Vec<String>,
    vias: Vec<String>,
    times: Vec<i64>,
}

impl Group {
    fn push(&mut self, owner: &Owner, ids: &[MemoryId], access: &Access, at: i64) {
        for id in ids {
            self.ids.push(*id.as_uuid());
            self.subjects.push(owner.as_str().to_owned());
            self.apps.push(access.app.clone());
            self.vias.push(access.via.clone());
            self.times.push(at);
        }
    }

    async fn write(&self, pool: &Pool) -> Result<(), StoreError> {
        let client = pool.get().await.pg()?;
        let statement = client.prepare_cached(INSERT).await.pg()?;
        client
            .execute(
                &statement,
                &[
                    &self.ids,
                    &self.subjects,
                    &self.apps,
                    &self.vias,
                    &self.times,
                ],
            )
            .await
            .pg()?;
        Ok(())
    }
}

/// Deletes entries older than the retention.
async fn prune(pool: &Pool, retention: &Retention) -> Result<(), StoreError> {
    let Some(keep) = retention.keep else {
        return Ok(());
    };
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_unix_ms(&*retention.clock).saturating_sub(keep_ms);
    let client = pool.get().await.pg()?;
    let deleted = client
        .execute("DELETE FROM access_log WHERE accessed_at < $1", &[&cutoff])
        .await
        .pg()?;
    if deleted > 0 {
        tracing::debug!(deleted, "pruned the access log");
    }
    Ok(())
}
