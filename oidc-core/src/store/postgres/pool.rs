//! Connections from the pool, transactions with retries, and how PostgreSQL errors map to
//! store errors.

use std::error::Error as _;

use deadpool_postgres::{Object, PoolError};
use tokio_postgres::error::SqlState;

use crate::store::{StoreError, StoreErrorKind};

/// How many times a transaction is run again after a deadlock or a serialization failure.
pub(super) const RETRIES: u32 = 4;

/// Maps PostgreSQL errors to store errors.
pub(super) trait DbResult<T> {
    /// See [`kind_of`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(db_error)
    }
}

/// A store error for a PostgreSQL error.
pub(super) fn db_error(error: tokio_postgres::Error) -> StoreError {
    StoreError::with_source(kind_of(&error), error)
}

/// [`StoreErrorKind::Conflict`] for a uniqueness violation; [`StoreErrorKind::Busy`] for a
/// deadlock, a serialization failure, a lock or statement timeout;
/// [`StoreErrorKind::Unavailable`] when the server cannot be used (connection lost or
/// refused, shutting down, too many connections, a read-only standby) or the error did
/// not come from the server at all (the connection failed); [`StoreErrorKind::Backend`]
/// for any other server error.
fn kind_of(error: &tokio_postgres::Error) -> StoreErrorKind {
    let Some(code) = error.code() else {
        // Not a server error: the socket, TLS, a timeout, or a closed connection.
        return StoreErrorKind::Unavailable;
    };
    let code = code.code();
    if code == SqlState::UNIQUE_VIOLATION.code() {
        StoreErrorKind::Conflict
    } else if [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::QUERY_CANCELED,
    ]
    .iter()
    .any(|state| state.code() == code)
    {
        StoreErrorKind::Busy
    } else if code.starts_with("08")
        || code.starts_with("57P")
        || [
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .iter()
        .any(|state| state.code() == code)
    {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Backend
    }
}

/// Whether running the transaction again may succeed: a deadlock or a serialization
/// failure, which PostgreSQL resolves by aborting one of the transactions involved.
pub(super) fn is_retryable(error: &StoreError) -> bool {
    error
        .source()
        .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|code| {
            *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        })
}

/// A store error for a failure to get a pooled connection: the pool's timeouts and an
/// unreachable server are [`StoreErrorKind::Unavailable`].
pub(super) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => db_error(error),
        PoolError::Timeout(_) | PoolError::Closed | PoolError::NoRuntimeSpecified => {
            StoreError::with_source(StoreErrorKind::Unavailable, error)
        }
        PoolError::PostCreateHook(_) => StoreError::with_source(StoreErrorKind::Backend, error),
    }
}

/// Gives a connection back to the pool, or closes it when `error` says it is broken, so
/// the next operation connects afresh instead of failing on it too.
pub(super) fn release(connection: Object, error: &StoreError) {
    if error.kind() == StoreErrorKind::Unavailable {
        drop(Object::take(connection));
    }
}

/// Runs `$body` (an expression of type `Result<T, StoreError>` that uses the transaction
/// `$tx`) in a transaction on a pooled connection of `$store`, and commits it if `$body`
/// succeeded (rolls it back otherwise). `read` transactions are `REPEATABLE READ READ ONLY` (one snapshot, never a
/// serialization failure); `write` ones are `READ COMMITTED`, where the compare-and-swap
/// statements lock the rows they test. A deadlock or serialization failure runs the whole
/// transaction again, up to [`RETRIES`] times.
///
/// A macro rather than a function taking a closure: the body borrows the transaction
/// across awaits, which closures returning futures cannot express without boxing.
macro_rules! in_transaction {
    ($store:expr, $mode:ident, |$tx:ident| $body:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            let mut connection = $store.connection().await?;
            let outcome: Result<_, $crate::store::StoreError> = async {
                let $tx = $crate::store::postgres::pool::begin!(connection, $mode);
                let result: Result<_, $crate::store::StoreError> = $body;
                match result {
                    Ok(value) => {
                        $tx.commit()
                            .await
                            .map_err($crate::store::postgres::pool::db_error)?;
                        Ok(value)
                    }
                    Err(error) => {
                        // Now rather than when the transaction is dropped (which only
                        // queues it): its locks go before the error is returned.
                        if let Err(rollback) = $tx.rollback().await {
                            tracing::debug!(error = %rollback, "could not roll back");
                        }
                        Err(error)
                    }
                }
            }
            .await;
            match outcome {
                Ok(value) => break Ok(value),
                Err(error)
                    if attempt < $crate::store::postgres::pool::RETRIES
                        && $crate::store::postgres::pool::is_retryable(&error) =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, "retrying a provider store transaction");
                }
                Err(error) => {
                    $crate::store::postgres::pool::release(connection, &error);
                    break Err(error);
                }
            }
        }
    }};
}

/// Starts a transaction of mode `read` or `write` on `$connection`.
macro_rules! begin {
    ($connection:ident, read) => {
        $connection
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err($crate::store::postgres::pool::db_error)?
    };
    ($connection:ident, write) => {
        $connection
            .transaction()
            .await
            .map_err($crate::store::postgres::pool::db_error)?
    };
}

pub(super) use {begin, in_transaction};
