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

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    Deployed, Event, Lock, LockError, Millis, Run, RunStatus, StackDeployed, Store, StoreError,
    UnitResult, UnitState, decode_plan, encode_plan, lease_end, stored_run_status,
    stored_unit_state, unlock_detail,
};
use crate::plan::model::Plan;

/// How long a statement waits for another process's write to finish before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema migrations, in order: applying the first `n` gives schema version `n`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE plans (
        id          TEXT PRIMARY KEY NOT NULL,
        created_at  TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        head_commit TEXT NOT NULL,
        document    TEXT NOT NULL
    );
    CREATE TABLE plan_environments (
        plan_id     TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        environment TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (plan_id, environment)
    );
    CREATE INDEX plan_environments_newest
        ON plan_environments(environment, created_ms DESC, plan_id DESC);

    CREATE TABLE locks (
        environment      TEXT PRIMARY KEY NOT NULL,
        owner            TEXT NOT NULL,
        reason           TEXT NOT NULL,
        acquired_at      INTEGER NOT NULL,
        lease_expires_at INTEGER NOT NULL,
        token            TEXT NOT NULL
    );

    CREATE TABLE runs (
        id          TEXT PRIMARY KEY NOT NULL,
        environment TEXT NOT NULL,
        plan_id     TEXT,
        commit_id   TEXT NOT NULL,
        owner       TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        status      TEXT NOT NULL
    );
    CREATE INDEX runs_newest ON runs(started_at DESC, id DESC);
    CREATE INDEX runs_by_environment ON runs(environment, started_at DESC, id DESC);
    CREATE INDEX runs_by_status ON runs(environment, status);

    CREATE TABLE units (
        seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id               TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stack                TEXT NOT NULL,
        stack_name           TEXT NOT NULL,
        state                TEXT NOT NULL,
        change_set_id        TEXT,
        client_request_token TEXT,
        replanned            INTEGER NOT NULL,
        message              TEXT,
        started_at           INTEGER,
        finished_at          INTEGER,
        UNIQUE (run_id, stack)
    );

    CREATE TABLE deployed (
        environment TEXT PRIMARY KEY NOT NULL,
        commit_id   TEXT NOT NULL,
        plan_id     TEXT,
        run_id      TEXT NOT NULL,
        at          INTEGER NOT NULL
    );

    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL,
        at          INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        actor       TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE INDEX events_newest ON events(at DESC, seq DESC);
    CREATE INDEX events_by_environment ON events(environment, at DESC, seq DESC);
    "#,
    // 2: where each stack of an environment stands.
    r#"
    CREATE TABLE stack_deployed (
        environment TEXT NOT NULL,
        stack       TEXT NOT NULL,
        commit_id   TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        run_id      TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (environment, stack)
    );
    "#,
];

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The state store in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const LOCK_COLUMNS: &str = "environment, owner, reason, acquired_at, lease_expires_at, token";
const RUN_COLUMNS: &str =
    "id, environment, plan_id, commit_id, owner, started_at, finished_at, status";
const UNIT_COLUMNS: &str = "run_id, stack, stack_name, state, change_set_id, \
     client_request_token, replanned, message, started_at, finished_at";
const EVENT_COLUMNS: &str = "environment, at, kind, actor, detail";

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
        let conn = open_and_migrate(path).map_err(|e| err(e.to_string()))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn read_plan(&self, sql: &str, key: &str) -> Result<Option<Plan>, StoreError> {
        self.read_plan_with(sql, &[key])
    }

    fn read_plan_with(&self, sql: &str, keys: &[&str]) -> Result<Option<Plan>, StoreError> {
        let doc: Option<(String, String)> = self
            .conn()
            .query_row(sql, rusqlite::params_from_iter(keys), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        doc.map(|(id, doc)| decode_plan(&id, &doc)).transpose()
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
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
fn open_and_migrate(path: &Path) -> Result<Connection, OpenError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match try_open(path) {
            Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
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

fn lock_from(r: &Row<'_>) -> rusqlite::Result<Lock> {
    Ok(Lock {
        environment: r.get(0)?,
        owner: r.get(1)?,
        reason: r.get(2)?,
        acquired_at: r.get(3)?,
        lease_expires_at: r.get(4)?,
        token: r.get(5)?,
    })
}

/// A row of `runs`; the status is checked by [`RawRun::check`].
struct RawRun(Run, String);

impl RawRun {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawRun> {
        let status: String = r.get(7)?;
        Ok(RawRun(
            Run {
                id: r.get(0)?,
                environment: r.get(1)?,
                plan_id: r.get(2)?,
                commit: r.get(3)?,
                owner: r.get(4)?,
                started_at: r.get(5)?,
                finished_at: r.get(6)?,
                status: RunStatus::Running,
            },
            status,
        ))
    }

    fn check(self) -> Result<Run, StoreError> {
        let RawRun(mut run, status) = self;
        run.status = stored_run_status(&run.id, &status)?;
        Ok(run)
    }
}

fn unit_from(r: &Row<'_>) -> rusqlite::Result<(UnitResult, String)> {
    let state: String = r.get(3)?;
    Ok((
        UnitResult {
            run_id: r.get(0)?,
            stack: r.get(1)?,
            stack_name: r.get(2)?,
            state: UnitState::Waiting,
            change_set_id: r.get(4)?,
            client_request_token: r.get(5)?,
            replanned: r.get(6)?,
            message: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
        },
        state,
    ))
}

fn event_from(r: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        environment: r.get(0)?,
        at: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        detail: r.get(4)?,
    })
}

/// Runs a SQLite call. Inside a multi-threaded tokio runtime the worker thread first hands its
/// other tasks to the rest of the runtime (`block_in_place`), so a slow disk write does not
/// stall unrelated work such as the agent's webhook intake; elsewhere it simply runs.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Every row a query returns, each read by `row`.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare(sql)?.query_map(params, row)?.collect()
}

/// `limit` as a SQLite `LIMIT` (which is signed).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        blocking(|| {
            let (created_ms, doc) = encode_plan(plan)?;
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM plans WHERE id = ?1", [&plan.id])
                .and_then(|_| {
                    tx.execute(
                        "INSERT INTO plans (id, created_at, created_ms, head_commit, document)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![plan.id, plan.created_at, created_ms, plan.head.commit, doc],
                    )
                })
                .map_err(|e| self.err(e))?;
            for env in &plan.environments {
                tx.execute(
                    "INSERT OR IGNORE INTO plan_environments (plan_id, environment, created_ms)
                     VALUES (?1, ?2, ?3)",
                    params![plan.id, env.name, created_ms],
                )
                .map_err(|e| self.err(e))?;
            }
            tx.commit().map_err(|e| self.err(e))
        })
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        blocking(|| self.read_plan("SELECT id, document FROM plans WHERE id = ?1", id))
    }

    async fn latest_plan(&self, environment: &str) -> Result<Option<Plan>, StoreError> {
        blocking(|| {
            self.read_plan(
                "SELECT p.id, p.document FROM plan_environments e JOIN plans p ON p.id = e.plan_id
                 WHERE e.environment = ?1
                 ORDER BY e.created_ms DESC, e.plan_id DESC LIMIT 1",
                environment,
            )
        })
    }

    async fn latest_plan_of_commit(
        &self,
        environment: &str,
        commit: &str,
    ) -> Result<Option<Plan>, StoreError> {
        blocking(|| {
            self.read_plan_with(
                "SELECT p.id, p.document FROM plan_environments e JOIN plans p ON p.id = e.plan_id
                 WHERE e.environment = ?1 AND p.head_commit = ?2
                 ORDER BY e.created_ms DESC, e.plan_id DESC LIMIT 1",
                &[environment, commit],
            )
        })
    }

    async fn try_lock(
        &self,
        environment: &str,
        owner: &str,
        reason: &str,
        lease: Duration,
        now: Millis,
    ) -> Result<Lock, LockError> {
        blocking(|| {
            let lock = Lock::new(environment, owner, reason, lease, now);
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            let held = tx
                .query_row(
                    &format!("SELECT {LOCK_COLUMNS} FROM locks WHERE environment = ?1"),
                    [environment],
                    lock_from,
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(held) = held
                && held.lease_expires_at >= now
            {
                return Err(LockError::Held(held));
            }
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO locks ({LOCK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    lock.environment,
                    lock.owner,
                    lock.reason,
                    lock.acquired_at,
                    lock.lease_expires_at,
                    lock.token
                ],
            )
            .and_then(|_| tx.commit())
            .map_err(|e| self.err(e))?;
            Ok(lock)
        })
    }

    async fn renew_lock(
        &self,
        lock: &Lock,
        lease: Duration,
        now: Millis,
    ) -> Result<Lock, LockError> {
        blocking(|| {
            let renewed = self
                .conn()
                .query_row(
                    &format!(
                        "UPDATE locks SET lease_expires_at = ?1 WHERE environment = ?2 AND token = ?3
                         RETURNING {LOCK_COLUMNS}"
                    ),
                    params![lease_end(now, lease), lock.environment, lock.token],
                    lock_from,
                )
                .optional()
                .map_err(|e| self.err(e))?;
            renewed.ok_or_else(|| LockError::Lost(lock.environment.clone()))
        })
    }

    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        blocking(|| {
            self.conn()
                .execute(
                    "DELETE FROM locks WHERE environment = ?1 AND token = ?2",
                    params![lock.environment, lock.token],
                )
                .map(drop)
                .map_err(|e| self.err(e))
        })
    }

    async fn lock(&self, environment: &str) -> Result<Option<Lock>, StoreError> {
        blocking(|| {
            self.conn()
                .query_row(
                    &format!("SELECT {LOCK_COLUMNS} FROM locks WHERE environment = ?1"),
                    [environment],
                    lock_from,
                )
                .optional()
                .map_err(|e| self.err(e))
        })
    }

    async fn force_unlock(
        &self,
        environment: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Option<Lock>, StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            let removed = tx
                .query_row(
                    &format!("DELETE FROM locks WHERE environment = ?1 RETURNING {LOCK_COLUMNS}"),
                    [environment],
                    lock_from,
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(lock) = &removed {
                tx.execute(
                    &format!(
                        "INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, 'unlock', ?3, ?4)"
                    ),
                    params![environment, now, actor, unlock_detail(lock, reason)],
                )
                .map_err(|e| self.err(e))?;
            }
            tx.commit().map_err(|e| self.err(e))?;
            Ok(removed)
        })
    }

    async fn start_run(&self, run: &Run) -> Result<(), StoreError> {
        blocking(|| {
            self.conn()
                .execute(
                    &format!(
                        "INSERT INTO runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        run.id,
                        run.environment,
                        run.plan_id,
                        run.commit,
                        run.owner,
                        run.started_at,
                        run.finished_at,
                        run.status.as_str()
                    ],
                )
                .map(drop)
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StoreError::Data(format!("a run `{}` was already recorded", run.id))
                    }
                    _ => self.err(e),
                })
        })
    }

    async fn put_unit(&self, unit: &UnitResult) -> Result<(), StoreError> {
        blocking(|| {
            self.conn()
                .execute(
                    &format!(
                        "INSERT INTO units ({UNIT_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (run_id, stack) DO UPDATE SET
                            stack_name = excluded.stack_name,
                            state = excluded.state,
                            change_set_id = excluded.change_set_id,
                            client_request_token = excluded.client_request_token,
                            replanned = excluded.replanned,
                            message = excluded.message,
                            started_at = excluded.started_at,
                            finished_at = excluded.finished_at"
                    ),
                    params![
                        unit.run_id,
                        unit.stack,
                        unit.stack_name,
                        unit.state.as_str(),
                        unit.change_set_id,
                        unit.client_request_token,
                        unit.replanned,
                        unit.message,
                        unit.started_at,
                        unit.finished_at
                    ],
                )
                .map(drop)
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StoreError::Data(format!("there is no run `{}`", unit.run_id))
                    }
                    _ => self.err(e),
                })
        })
    }

    async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        now: Millis,
    ) -> Result<(), StoreError> {
        blocking(|| {
            let changed = self
                .conn()
                .execute(
                    "UPDATE runs SET status = ?1, finished_at = ?2 WHERE id = ?3",
                    params![status.as_str(), now, run_id],
                )
                .map_err(|e| self.err(e))?;
            if changed == 0 {
                return Err(StoreError::Data(format!("there is no run `{run_id}`")));
            }
            Ok(())
        })
    }

    async fn run(&self, id: &str) -> Result<Option<(Run, Vec<UnitResult>)>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let run = conn
                .query_row(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                    [id],
                    RawRun::from_row,
                )
                .optional()
                .map_err(|e| self.err(e))?;
            let Some(run) = run else {
                return Ok(None);
            };
            let run = run.check()?;
            let raw = query_all(
                &conn,
                &format!("SELECT {UNIT_COLUMNS} FROM units WHERE run_id = ?1 ORDER BY seq"),
                [id],
                unit_from,
            )
            .map_err(|e| self.err(e))?;
            let units = raw
                .into_iter()
                .map(|(mut unit, state)| {
                    unit.state = stored_unit_state(id, &unit.stack, &state)?;
                    Ok(unit)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some((run, units)))
        })
    }

    async fn runs(&self, environment: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let raw = match environment {
                Some(env) => query_all(
                    &conn,
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE environment = ?1
                         ORDER BY started_at DESC, id DESC LIMIT ?2"
                    ),
                    params![env, sql_limit(limit)],
                    RawRun::from_row,
                ),
                None => query_all(
                    &conn,
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1"
                    ),
                    params![sql_limit(limit)],
                    RawRun::from_row,
                ),
            }
            .map_err(|e| self.err(e))?;
            raw.into_iter().map(RawRun::check).collect()
        })
    }

    async fn unfinished_runs(&self, environment: &str) -> Result<Vec<Run>, StoreError> {
        blocking(|| {
            let raw = query_all(
                &self.conn(),
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE environment = ?1 AND status = 'running'
                     ORDER BY started_at DESC, id DESC"
                ),
                [environment],
                RawRun::from_row,
            )
            .map_err(|e| self.err(e))?;
            raw.into_iter().map(RawRun::check).collect()
        })
    }

    async fn set_deployed(&self, d: &Deployed) -> Result<(), StoreError> {
        blocking(|| {
            self.conn()
                .execute(
                    "INSERT OR REPLACE INTO deployed (environment, commit_id, plan_id, run_id, at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![d.environment, d.commit, d.plan_id, d.run_id, d.at],
                )
                .map(drop)
                .map_err(|e| self.err(e))
        })
    }

    async fn set_stacks_deployed(&self, records: &[StackDeployed]) -> Result<(), StoreError> {
        blocking(|| {
            let mut conn = self.conn();
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            for d in records {
                tx.execute(
                    "INSERT OR REPLACE INTO stack_deployed
                     (environment, stack, commit_id, config_hash, run_id, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        d.environment,
                        d.stack,
                        d.commit,
                        d.config_hash,
                        d.run_id,
                        d.at
                    ],
                )
                .map_err(|e| self.err(e))?;
            }
            tx.commit().map_err(|e| self.err(e))
        })
    }

    async fn stacks_deployed(&self, environment: &str) -> Result<Vec<StackDeployed>, StoreError> {
        blocking(|| {
            query_all(
                &self.conn(),
                "SELECT environment, stack, commit_id, config_hash, run_id, at
                 FROM stack_deployed WHERE environment = ?1 ORDER BY stack",
                [environment],
                |r| {
                    Ok(StackDeployed {
                        environment: r.get(0)?,
                        stack: r.get(1)?,
                        commit: r.get(2)?,
                        config_hash: r.get(3)?,
                        run_id: r.get(4)?,
                        at: r.get(5)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
        })
    }

    async fn deployed(&self, environment: &str) -> Result<Option<Deployed>, StoreError> {
        blocking(|| {
            self.conn()
                .query_row(
                    "SELECT environment, commit_id, plan_id, run_id, at FROM deployed
                     WHERE environment = ?1",
                    [environment],
                    |r| {
                        Ok(Deployed {
                            environment: r.get(0)?,
                            commit: r.get(1)?,
                            plan_id: r.get(2)?,
                            run_id: r.get(3)?,
                            at: r.get(4)?,
                        })
                    },
                )
                .optional()
                .map_err(|e| self.err(e))
        })
    }

    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        blocking(|| {
            self.conn()
                .execute(
                    &format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                    params![
                        event.environment,
                        event.at,
                        event.kind,
                        event.actor,
                        event.detail
                    ],
                )
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    async fn prune_locks(&self, prefix: &str, before: Millis) -> Result<usize, StoreError> {
        blocking(|| {
            let pattern = format!(
                "{}%",
                prefix
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            self.conn()
                .execute(
                    "DELETE FROM locks WHERE environment LIKE ?1 ESCAPE '\\' AND lease_expires_at < ?2",
                    params![pattern, before],
                )
                .map_err(|e| self.err(e))
        })
    }

    async fn events(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            match environment {
                Some(env) => query_all(
                    &conn,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE environment = ?1
                         ORDER BY at DESC, seq DESC LIMIT ?2"
                    ),
                    params![env, sql_limit(limit)],
                    event_from,
                ),
                None => query_all(
                    &conn,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events ORDER BY at DESC, seq DESC LIMIT ?1"
                    ),
                    params![sql_limit(limit)],
                    event_from,
                ),
            }
            .map_err(|e| self.err(e))
        })
    }
}
