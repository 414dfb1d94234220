// Hand-written: the writer's group commit (one transaction and fsync per batch, a savepoint per job) and write-behind are not in deadpool-sqlite/r2d2_sqlite, whose 0.14/0.35 also require rusqlite 0.40 (this crate uses 0.43; libsqlite3-sys links once).
//! Running blocking SQLite work off the async runtime: one writer thread with
//! group commit, a few readers on Tokio's blocking pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::row::DbResult;
use crate::store::ids::IdGenerator;
use crate::store::search::{IndexChange, SearchEngine};
use crate::store::{Clock, ErrorKind, StoreError};

/// Runs `work` on Tokio's blocking thread pool and waits for it.
async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match current_runtime()?.spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(panicked = error.is_panic(), "a memory store task failed");
            Err(ErrorKind::Unavailable.into())
        }
    }
}

/// The Tokio runtime this is called on; [`ErrorKind::Unavailable`] outside one.
fn current_runtime() -> Result<tokio::runtime::Handle, StoreError> {
    tokio::runtime::Handle::try_current()
        .map_err(|error| StoreError::with_source(ErrorKind::Unavailable, error))
}

/// The writer is gone (its queue closed, or a job dropped unanswered).
fn writer_gone() -> StoreError {
    StoreError::from(ErrorKind::Unavailable)
}

/// How often the writer deletes access-log entries past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// How long access-log entries are kept.
pub(super) struct Retention {
    /// Entries older than this are deleted; `None` keeps them forever.
    pub(super) keep: Option<Duration>,
    /// The store's clock.
    pub(super) clock: Arc<dyn Clock>,
}

impl Retention {
    /// Deletes access-log entries older than the retention, in a transaction of its own.
    fn prune(&self, connection: &Connection) {
        let Some(keep) = self.keep else {
            return;
        };
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let cutoff = crate::store::now_unix_ms(&*self.clock).saturating_sub(keep_ms);
        match connection.execute("DELETE FROM access_log WHERE accessed_at < ?1", [cutoff]) {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "pruned the access log"),
            Err(error) => tracing::warn!(%error, "cannot prune the access log"),
        }
    }
}

/// Most jobs committed together in one transaction.
const MAX_GROUP: usize = 512;
/// Jobs that may wait for the writer; a write waits for room, an access-log
/// entry that finds no room is dropped (and counted in the log).
const QUEUE_CAPACITY: usize = 4096;

/// What a write job may use besides the connection.
pub(super) struct WriteContext<'a> {
    /// The id generator.
    pub(super) ids: &'a IdGenerator,
    /// The search engine, as of the last commit.
    pub(super) engine: &'a SearchEngine,
    /// Text keys added by earlier jobs of the same group, by owner:
    /// `(owner_id, key)` to memory row id. Not yet in the engine.
    pub(super) pending_keys: &'a mut HashMap<(i64, u64), i64>,
}

/// A job's result and the index changes it makes once committed.
pub(super) struct Written<T> {
    pub(super) value: T,
    pub(super) changes: Vec<IndexChange>,
}

impl<T> Written<T> {
    /// A result that changes nothing the engine indexes.
    pub(super) fn unindexed(value: T) -> Self {
        Self {
            value,
            changes: Vec::new(),
        }
    }
}

/// A job ran: its index changes, and how to tell its caller once the group's
/// commit is known.
struct Outcome {
    succeeded: bool,
    changes: Vec<IndexChange>,
    finish: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

type Work = Box<dyn FnOnce(&Connection, &mut WriteContext<'_>) -> Outcome + Send>;

enum Job {
    /// A write; `durable` ones are committed with `synchronous=FULL`.
    Write { work: Work, durable: bool },
    /// Answered once every job queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// Serialises writes onto the one write connection, owned by a dedicated
/// thread that commits whatever jobs are waiting as one group: one
/// transaction, one fsync, each job in its own savepoint so a failing job
/// rolls back alone. Callers hear back only after the commit, so an
/// acknowledged write is durable.
pub(super) struct WriteQueue {
    sender: Option<mpsc::Sender<Job>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    dropped_entries: AtomicU64,
}

impl WriteQueue {
    /// Starts the writer thread with the write connection.
    pub(super) fn start(
        connection: Connection,
        engine: Arc<SearchEngine>,
        retention: Retention,
    ) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("memory-writer".to_owned())
            .spawn(move || write_loop(connection, &engine, receiver, &retention))
            .map_err(|error| StoreError::with_source(ErrorKind::Unavailable, error))?;
        Ok(Self {
            sender: Some(sender),
            thread: Mutex::new(Some(thread)),
            dropped_entries: AtomicU64::new(0),
        })
    }

    /// Runs `work` in the next group and waits for the group's durable commit.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection, &mut WriteContext<'_>) -> Result<Written<T>, StoreError>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Write {
            work: wrap(work, reply),
            durable: true,
        };
        self.queue_and_wait(job, answer).await?
    }

    /// Queues `work` without waiting for it (write-behind). It is committed
    /// with the next group, without an fsync of its own: a crash can lose it.
    /// If the queue is full the work is dropped and counted.
    pub(super) fn run_behind<F>(&self, work: F)
    where
        F: FnOnce(&Connection, &mut WriteContext<'_>) -> Result<Written<()>, StoreError>
            + Send
            + 'static,
    {
        let (reply, _) = oneshot::channel();
        let job = Job::Write {
            work: wrap(work, reply),
            durable: false,
        };
        let Ok(sender) = self.sender() else {
            return;
        };
        if sender.try_send(job).is_err() {
            let dropped = self.dropped_entries.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "the memory writer queue is full: access-log entries dropped"
                );
            }
        }
    }

    /// Waits until everything queued so far is committed.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue_and_wait(Job::Flush(reply), answer).await
    }

    /// Queues `job` (waiting for room), then waits for the `answer` the writer sends once
    /// the job's group is committed.
    async fn queue_and_wait<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, StoreError> {
        current_runtime()?;
        self.sender()?.send(job).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())
    }

    fn sender(&self) -> Result<&mpsc::Sender<Job>, StoreError> {
        self.sender.as_ref().ok_or_else(writer_gone)
    }
}

impl Drop for WriteQueue {
    /// Closes the queue and waits for the writer to commit what is queued and
    /// close the connection (which checkpoints the WAL).
    fn drop(&mut self) {
        drop(self.sender.take());
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the memory writer thread panicked");
        }
    }
}

/// Wraps typed work into a job that reports through `reply` after the commit.
fn wrap<T, F>(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Work
where
    F: FnOnce(&Connection, &mut WriteContext<'_>) -> Result<Written<T>, StoreError>
        + Send
        + 'static,
    T: Send + 'static,
{
    Box::new(move |connection, context| match work(connection, context) {
        Ok(Written { value, changes }) => Outcome {
            succeeded: true,
            changes,
            finish: Box::new(move |committed| {
                let _ = reply.send(committed.map(|()| value));
            }),
        },
        Err(error) => Outcome {
            succeeded: false,
            changes: Vec::new(),
            finish: Box::new(move |_| {
                let _ = reply.send(Err(error));
            }),
        },
    })
}

/// The writer thread: takes what is waiting, commits it as one group, repeats
/// until every sender is gone and the queue is empty.
fn write_loop(
    mut connection: Connection,
    engine: &SearchEngine,
    mut receiver: mpsc::Receiver<Job>,
    retention: &Retention,
) {
    let ids = IdGenerator::default();
    let mut synchronous_full = true;
    let mut last_prune: Option<Instant> = None;
    while let Some(first) = receiver.blocking_recv() {
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            retention.prune(&connection);
            last_prune = Some(Instant::now());
        }
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let durable = jobs
            .iter()
            .any(|job| matches!(job, Job::Write { durable: true, .. }));
        if durable != synchronous_full {
            let mode = if durable { "FULL" } else { "NORMAL" };
            match connection.pragma_update(None, "synchronous", mode) {
                Ok(()) => synchronous_full = durable,
                Err(error) => tracing::error!(%error, "cannot set the synchronous mode"),
            }
        }
        commit_group(&mut connection, engine, &ids, jobs);
    }
    tracing::debug!("the memory writer stopped");
}

fn commit_group(
    connection: &mut Connection,
    engine: &SearchEngine,
    ids: &IdGenerator,
    jobs: Vec<Job>,
) {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut flushes = Vec::new();
    if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unanswered tells each caller the store is unavailable.
        tracing::error!(%error, "cannot begin a memory write group");
        return;
    }
    let mut pending_keys = HashMap::new();
    for job in jobs {
        match job {
            Job::Flush(reply) => flushes.push(reply),
            Job::Write { work, .. } => {
                outcomes.push(run_job(connection, engine, ids, &mut pending_keys, work));
            }
        }
    }
    let committed = connection.execute_batch("COMMIT").db();
    if let Err(error) = &committed {
        tracing::error!(%error, "a memory write group failed to commit");
        let _ = connection.execute_batch("ROLLBACK");
    }
    let mut changes = Vec::new();
    for outcome in &mut outcomes {
        if outcome.succeeded && committed.is_ok() {
            changes.append(&mut outcome.changes);
        }
    }
    engine.apply(changes);
    for outcome in outcomes {
        let result = match &committed {
            Ok(()) => Ok(()),
            Err(error) => Err(StoreError::from(error.kind().clone())),
        };
        (outcome.finish)(result);
    }
    for flush in flushes {
        let _ = flush.send(());
    }
}

/// Runs one job in its own savepoint: released if it succeeded, rolled back if not.
fn run_job(
    connection: &Connection,
    engine: &SearchEngine,
    ids: &IdGenerator,
    pending_keys: &mut HashMap<(i64, u64), i64>,
    work: Work,
) -> Outcome {
    if let Err(error) = connection.execute_batch("SAVEPOINT job") {
        // Dropping `work` unanswered tells its caller the store is unavailable.
        tracing::error!(%error, "cannot open a memory write savepoint");
        return Outcome {
            succeeded: false,
            changes: Vec::new(),
            finish: Box::new(|_| ()),
        };
    }
    let mut context = WriteContext {
        ids,
        engine,
        pending_keys,
    };
    let outcome = work(connection, &mut context);
    let end = if outcome.succeeded {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if let Err(error) = connection.execute_batch(end) {
        tracing::error!(%error, "cannot end a memory write savepoint");
    }
    outcome
}

/// A fixed set of read-only connections, leased one per operation.
pub(super) struct ReadPool {
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl ReadPool {
    pub(super) fn new(connections: Vec<Connection>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Arc::new(Mutex::new(connections)),
        }
    }

    /// Waits for a free connection (without blocking a thread), then runs
    /// `work` in a read transaction, so it sees one snapshot, on the blocking pool.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|error| StoreError::with_source(ErrorKind::Unavailable, error))?;
        let idle = Arc::clone(&self.idle);
        run_blocking(move || Lease::take(idle, permit)?.in_transaction(work)).await
    }
}

/// A connection taken from the pool; returned to it on drop, before the permit is released.
struct Lease {
    connection: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn take(
        idle: Arc<Mutex<Vec<Connection>>>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Self, StoreError> {
        let connection = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        // There are as many permits as connections, and a lease gives its
        // connection back before its permit, so a permit holder finds one.
        if connection.is_none() {
            tracing::error!("the memory store read pool has a permit but no connection");
            return Err(ErrorKind::Unavailable.into());
        }
        Ok(Self {
            connection,
            idle,
            _permit: permit,
        })
    }

    /// Runs `work` in a deferred (read) transaction.
    fn in_transaction<T>(
        mut self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(ErrorKind::Unavailable.into());
        };
        let transaction = connection.transaction().db()?;
        let output = work(&transaction)?;
        transaction.commit().db()?;
        Ok(output)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
    }
}
