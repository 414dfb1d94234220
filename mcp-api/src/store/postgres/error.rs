//! Mapping PostgreSQL and pool errors to [`StoreError`]s.
//!
//! Connection trouble (refused, dropped, terminated, the server shutting down
//! or out of connections, no connection free in time) is
//! [`ErrorKind::Unavailable`]: the pool replaces broken connections by itself,
//! so the same call succeeds once PostgreSQL is back. A statement timeout is
//! [`ErrorKind::Busy`]; serialization failures and deadlocks are retried
//! ([`retry`]) and are `Busy` if they persist.

use std::future::Future;

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::store::{ErrorKind, StoreError};

/// How many times a write is attempted when PostgreSQL aborts it as a
/// serialization failure or a deadlock.
const ATTEMPTS: usize = 4;

/// Converts PostgreSQL results into store results.
pub(super) trait PgResult<T> {
    /// Maps the error to its [`ErrorKind`], keeping it as the source.
    fn pg(self) -> Result<T, StoreError>;
}

impl<T> PgResult<T> for Result<T, tokio_postgres::Error> {
    fn pg(self) -> Result<T, StoreError> {
        self.map_err(from_pg)
    }
}

impl<T> PgResult<T> for Result<T, PoolError> {
    fn pg(self) -> Result<T, StoreError> {
        self.map_err(|error| match error {
            PoolError::Backend(error) => from_pg(error),
            other => StoreError::with_source(ErrorKind::Unavailable, other),
        })
    }
}

/// The kind of a PostgreSQL error.
pub(super) fn from_pg(error: tokio_postgres::Error) -> StoreError {
    let kind = match error.code() {
        Some(code) if is_retryable(code) || *code == SqlState::QUERY_CANCELED => ErrorKind::Busy,
        Some(code) if is_unavailable(code) => ErrorKind::Unavailable,
        Some(_) => ErrorKind::Backend,
        // No SQLSTATE: the connection failed, closed or timed out.
        None => ErrorKind::Unavailable,
    };
    StoreError::with_source(kind, error)
}

/// Serialization failures and deadlocks: the transaction may simply be run again.
fn is_retryable(code: &SqlState) -> bool {
    *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// Connection exceptions (class 08), the server shutting down or starting
/// (57P01–57P03), too many connections, read-only standby after a failover.
fn is_unavailable(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
}

/// Whether `error` came from a transaction PostgreSQL aborted to resolve a
/// conflict, so running it again may succeed.
fn should_retry(error: &StoreError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::code)
        .is_some_and(is_retryable)
}

/// Runs `attempt` until it succeeds, fails for another reason, or was aborted
/// as a conflict [`ATTEMPTS`] times. Each attempt is a whole transaction.
pub(super) async fn retry<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(error) if tries < ATTEMPTS && should_retry(&error) => {
                tracing::debug!(tries, "memory write aborted by a conflict; retrying");
                tries += 1;
            }
            result => return result,
        }
    }
}
