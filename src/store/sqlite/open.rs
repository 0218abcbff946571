//! Opening a database file: the connection's settings (busy timeout, WAL, pragmas), the schema
//! brought up to [`SCHEMA_VERSION`] by the [`MIGRATIONS`] it has not had yet, a database of a
//! newer version refused, and the whole tried again while another process holds the file.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::schema::{MIGRATIONS, SCHEMA_VERSION};

/// How long a statement waits for another process's write to finish before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    #[error("cannot open it: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migrating the schema to version {version} failed: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Version(String),
}

impl OpenError {
    /// Whether another connection held the database: worth trying again.
    fn is_busy(&self) -> bool {
        let e = match self {
            OpenError::Sqlite(e) | OpenError::Migration { source: e, .. } => e,
            OpenError::Version(_) => return false,
        };
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// Opens the database, sets it up (busy timeout, WAL, pragmas) and migrates it, trying again
/// for up to [`BUSY_TIMEOUT`] while another connection holds it. The busy timeout covers most
/// waits, but SQLite answers "database is locked" at once, without waiting, in a few cases that
/// concurrent starts meet: while the last connection of another process closes (it takes an
/// exclusive lock to clean the WAL up), and while a connection switches the file to WAL.
pub(super) fn open_and_migrate(path: &Path) -> Result<Connection, OpenError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match try_open(path) {
            Err(e) if e.is_busy() && Instant::now() < deadline => {
                tracing::debug!(path = %path.display(), error = %e, "the database is busy; trying again");
                // Spread the retries of processes that started together.
                let jitter = Duration::from_micros(rand::random::<u64>() % 2000);
                std::thread::sleep(pause + jitter);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn try_open(path: &Path) -> Result<Connection, OpenError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::debug!(path = %path.display(), mode, "SQLite did not switch to WAL mode");
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the migrations `conn` has not had yet, each with its version bump in one
/// transaction. Checks the version again inside the transaction, so two processes opening a new
/// database at once do not both migrate it.
fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let version = user_version(conn)?;
    check_version(version).map_err(OpenError::Version)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = user_version(&tx)?;
        check_version(version).map_err(OpenError::Version)?;
        let Some(script) = MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        let next = version + 1;
        tx.execute_batch(script)
            .and_then(|()| tx.pragma_update(None, "user_version", next))
            .and_then(|()| tx.commit())
            .map_err(|source| OpenError::Migration {
                version: next,
                source,
            })?;
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn check_version(version: u32) -> Result<(), String> {
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {version}, but this formwork only knows versions up \
             to {SCHEMA_VERSION}: it was written by a newer formwork; upgrade formwork, or use \
             another state file"
        ));
    }
    Ok(())
}
