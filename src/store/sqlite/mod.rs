//! The state store in one SQLite file: the default, for a single machine (a CI job, a laptop, one
//! `formwork serve`). Several formwork processes may share the file: it is opened in WAL mode
//! with a busy timeout, and every write that depends on what is there (taking a lock, forcing
//! one open) runs in an `IMMEDIATE` transaction, which SQLite serialises across processes.
//!
//! # Schema
//!
//! The schema is versioned with `PRAGMA user_version`: [`MIGRATIONS`] is an ordered list of SQL
//! scripts, and opening a database applies those it has not had yet, each in a transaction with
//! the version bump. A database of a newer version than this code knows ([`SCHEMA_VERSION`]) is
//! refused rather than misread.
//!
//! Version 1:
//! - `plans(id PK, created_at, created_ms, head_commit, document)`: `document` is the plan's
//!   JSON; `created_ms` is `created_at` in milliseconds, for ordering.
//! - `plan_environments(plan_id, environment, created_ms)`: the environments a plan covers, to
//!   find the newest plan of one ([`Store::latest_plan`]: highest `created_ms`, then highest id).
//! - `locks(environment PK, owner, reason, acquired_at, lease_expires_at, token)`.
//! - `runs(id PK, environment, plan_id, commit_id, owner, started_at, finished_at, status)`.
//! - `units(seq, run_id → runs, stack, …)`, unique on `(run_id, stack)`: `seq` keeps the order
//!   in which a run's stacks were first recorded; later writes update the row in place.
//! - `deployed(environment PK, commit_id, plan_id, run_id, at)`.
//! - `events(seq, environment, at, kind, actor, detail)`: the audit trail.
//!
//! Version 2:
//! - `stack_deployed(environment, stack, commit_id, config_hash, run_id, at)`, primary key
//!   `(environment, stack)`: where each stack stands.
//!
//! Times are [`Millis`]. Queries are short, so they run directly on the calling task, one at a
//! time through a mutex around the connection.
//!
//! # Modules
//!
//! `schema` is the list of migrations above and `open` opens a file and applies them;
//! `operations` implements each [`Store`] operation as the statements it runs, reading records
//! back with `rows` and running statements through `statements`.

mod open;
mod operations;
mod rows;
mod schema;
mod statements;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use super::StoreError;
pub use open::BUSY_TIMEOUT;
pub use schema::{MIGRATIONS, SCHEMA_VERSION};

#[cfg(doc)]
use super::{Millis, Store};

/// The state store in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at `path`, and brings its
    /// schema up to [`SCHEMA_VERSION`]. Fails when the database was written by a newer formwork
    /// (a higher schema version) or is not a SQLite database.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let err = |message: String| StoreError::Sqlite {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let conn = open::open_and_migrate(path).map_err(|e| err(e.to_string()))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
