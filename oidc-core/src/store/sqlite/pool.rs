// Hand-written, not deadpool-sqlite 0.14 / r2d2_sqlite 0.35: both require rusqlite 0.40, this crate uses 0.43, and only one libsqlite3-sys (`links = "sqlite3"`) may be in a build.
//! Running blocking SQLite work off the async runtime: one writer, a few readers.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{StoreError, StoreErrorKind};

/// Maps SQLite errors to store errors.
pub(super) trait DbResult<T> {
    /// [`StoreErrorKind::Busy`], [`StoreErrorKind::Conflict`] (a uniqueness violation) or
    /// [`StoreErrorKind::Backend`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|error| {
            let kind = match error.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreErrorKind::Busy,
                Some(ErrorCode::ConstraintViolation) => StoreErrorKind::Conflict,
                _ => StoreErrorKind::Backend,
            };
            StoreError::with_source(kind, error)
        })
    }
}

/// Runs `work` on Tokio's blocking thread pool and waits for it.
async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|error| StoreError::with_source(StoreErrorKind::Unavailable, error))?;
    match runtime.spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(panicked = error.is_panic(), "a provider store task failed");
            Err(StoreErrorKind::Unavailable.into())
        }
    }
}

/// Serialises writes onto the one write connection.
pub(super) struct WriteQueue {
    writer: Arc<tokio::sync::Mutex<Connection>>,
}

impl WriteQueue {
    pub(super) fn new(connection: Connection) -> Self {
        WriteQueue {
            writer: Arc::new(tokio::sync::Mutex::new(connection)),
        }
    }

    /// Waits for the writer (without blocking a thread), then runs `work` in an immediate
    /// transaction on the blocking pool, committed only if `work` succeeds.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let mut connection = Arc::clone(&self.writer).lock_owned().await;
        run_blocking(move || in_transaction(&mut connection, TransactionBehavior::Immediate, work))
            .await
    }
}

/// A fixed set of read-only connections, leased one per operation.
pub(super) struct ReadPool {
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl ReadPool {
    pub(super) fn new(connections: Vec<Connection>) -> Self {
        ReadPool {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Arc::new(Mutex::new(connections)),
        }
    }

    /// Waits for a free connection (without blocking a thread), then runs `work` in a read
    /// transaction, so it sees one snapshot, on the blocking pool.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|error| StoreError::with_source(StoreErrorKind::Unavailable, error))?;
        let idle = Arc::clone(&self.idle);
        run_blocking(move || {
            let mut lease = Lease::take(idle, permit)?;
            let Some(connection) = lease.connection.as_mut() else {
                return Err(StoreErrorKind::Unavailable.into());
            };
            in_transaction(connection, TransactionBehavior::Deferred, work)
        })
        .await
    }
}

/// Runs `work` in a transaction that begins with `behavior`, committed only if `work`
/// succeeds (dropping an uncommitted transaction rolls it back).
fn in_transaction<T>(
    connection: &mut Connection,
    behavior: TransactionBehavior,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let transaction = connection.transaction_with_behavior(behavior).db()?;
    let output = work(&transaction)?;
    transaction.commit().db()?;
    Ok(output)
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
        // There are as many permits as connections, and a lease gives its connection back
        // before its permit, so a permit holder finds one.
        if connection.is_none() {
            tracing::error!("the provider store read pool has a permit but no connection");
            return Err(StoreErrorKind::Unavailable.into());
        }
        Ok(Lease {
            connection,
            idle,
            _permit: permit,
        })
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
