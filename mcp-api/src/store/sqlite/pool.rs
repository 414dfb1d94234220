//! Running blocking SQLite work off the async runtime: one writer, a few readers.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::{ContextV7, Timestamp};

use super::row::DbResult;
use crate::store::{ErrorKind, MemoryId, StoreError};

/// Runs `work` on Tokio's blocking thread pool and waits for it.
async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|error| StoreError::with_source(ErrorKind::Unavailable, error))?;
    match runtime.spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(panicked = error.is_panic(), "a memory store task failed");
            Err(ErrorKind::Unavailable.into())
        }
    }
}

/// The single write connection and the id generator it serialises.
pub(super) struct Writer {
    connection: Connection,
    ids: IdGenerator,
}

impl Writer {
    pub(super) fn new(connection: Connection) -> Self {
        Self {
            connection,
            ids: IdGenerator::default(),
        }
    }

    /// Runs `work` in an immediate transaction, committed only if it succeeds.
    fn in_transaction<T>(
        &mut self,
        work: impl FnOnce(&Transaction<'_>, &IdGenerator) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let output = work(&transaction, &self.ids)?;
        transaction.commit().db()?;
        Ok(output)
    }
}

/// Serialises writes onto the one write connection.
pub(super) struct WriteQueue {
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

impl WriteQueue {
    pub(super) fn new(writer: Writer) -> Self {
        Self {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
        }
    }

    /// Waits for the writer (without blocking a thread), then runs `work` in
    /// a transaction on the blocking pool.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>, &IdGenerator) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        run_blocking(move || writer.in_transaction(work)).await
    }
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

/// Generates monotonic UUIDv7 memory ids from the store's clock.
#[derive(Default)]
pub(super) struct IdGenerator {
    context: ContextV7,
}

impl IdGenerator {
    /// A new id for a memory created at `now_unix_ms`. Ids generated in the
    /// same millisecond still sort in generation order.
    pub(super) fn next(&self, now_unix_ms: i64) -> MemoryId {
        let millis = u64::try_from(now_unix_ms).unwrap_or(0);
        let seconds = millis / 1000;
        // Below 1_000_000_000, so it fits: (millis % 1000) * 1_000_000 < 10^9 < u32::MAX.
        let nanos = u32::try_from((millis % 1000) * 1_000_000).unwrap_or(0);
        MemoryId::new_v7(Timestamp::from_unix(&self.context, seconds, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase_within_one_millisecond() {
        let ids = IdGenerator::default();
        let generated: Vec<MemoryId> = (0..1000).map(|_| ids.next(1_700_000_000_123)).collect();
        assert!(
            generated
                .iter()
                .all(|id| id.as_uuid().get_version_num() == 7)
        );
        assert!(generated.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn ids_carry_the_clock_time() {
        let id = IdGenerator::default().next(1_700_000_000_123);
        let (seconds, nanos) = id.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!((seconds, nanos), (1_700_000_000, 123_000_000));
    }

    #[test]
    fn ids_stay_monotonic_when_the_clock_goes_back() {
        let ids = IdGenerator::default();
        let later = ids.next(1_700_000_001_000);
        let earlier_clock = ids.next(1_700_000_000_000);
        assert!(earlier_clock > later);
    }

    #[test]
    fn a_clock_before_1970_reads_as_the_epoch() {
        let id = IdGenerator::default().next(-5);
        assert_eq!(id.as_uuid().get_timestamp().unwrap().to_unix().0, 0);
    }
}
