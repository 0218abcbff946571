//! Running statements on the store's one connection: from async code without stalling other
//! tasks, one at a time through its mutex, in an `IMMEDIATE` transaction where a write depends
//! on what is there, with SQLite's errors as the store's.

use std::sync::MutexGuard;

use rusqlite::{Connection, Row, Transaction, TransactionBehavior};

use super::SqliteStore;
use crate::store::StoreError;

/// Runs a SQLite call. Inside a multi-threaded tokio runtime the worker thread first hands its
/// other tasks to the rest of the runtime (`block_in_place`), so a slow disk write does not
/// stall unrelated work such as the agent's webhook intake; elsewhere it simply runs.
pub(super) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Every row a query returns, each read by `row`.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare(sql)?.query_map(params, row)?.collect()
}

/// `limit` as a SQLite `LIMIT` (which is signed).
pub(super) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// The connection, for one call (a panic elsewhere while it was held does not lock it
    /// for good).
    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A SQLite error as the store's, naming the file.
    pub(super) fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Runs `f` in an `IMMEDIATE` transaction, which takes the database's write lock at its
    /// start (so what `f` reads stays true until it commits, across processes), and commits it
    /// when `f` succeeds; when `f` fails, the transaction is rolled back.
    pub(super) fn immediate<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }
}
