//! The [`Store`] operations on SQLite: each one as the statements it runs.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::rows::{
    EVENT_COLUMNS, LOCK_COLUMNS, RUN_COLUMNS, RawRun, UNIT_COLUMNS, deployed_from, event_from,
    lock_from, stack_deployed_from, stack_seen_from, unit_from,
};
use super::statements::{blocking, query_all, sql_limit};
use crate::plan::model::Plan;
use crate::store::{
    Deployed, Event, Lock, LockError, Millis, Run, RunStatus, StackDeployed, StackSeen, Store,
    StoreError, UnitResult, decode_plan, encode_plan, lease_end, stored_unit_state, unlock_detail,
};

impl Store for SqliteStore {
    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let (created_ms, doc) = encode_plan(plan)?;
        blocking(|| {
            self.immediate(|tx| {
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
                Ok(())
            })
        })
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        blocking(|| self.read_plan("SELECT id, document FROM plans WHERE id = ?1", &[id]))
    }

    async fn latest_plan(&self, environment: &str) -> Result<Option<Plan>, StoreError> {
        blocking(|| {
            self.read_plan(
                "SELECT p.id, p.document FROM plan_environments e JOIN plans p ON p.id = e.plan_id
                 WHERE e.environment = ?1
                 ORDER BY e.created_ms DESC, e.plan_id DESC LIMIT 1",
                &[environment],
            )
        })
    }

    async fn latest_plan_of_commit(
        &self,
        environment: &str,
        commit: &str,
    ) -> Result<Option<Plan>, StoreError> {
        blocking(|| {
            self.read_plan(
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
            self.immediate(|tx| {
                if let Some(held) = lock_of(tx, environment).map_err(|e| self.err(e))?
                    && held.lease_expires_at >= now
                {
                    return Err(LockError::Held(held));
                }
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO locks ({LOCK_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
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
                .map_err(|e| self.err(e))?;
                Ok(lock)
            })
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
        blocking(|| lock_of(&self.conn(), environment).map_err(|e| self.err(e)))
    }

    async fn force_unlock(
        &self,
        environment: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Option<Lock>, StoreError> {
        blocking(|| {
            self.immediate(|tx| {
                let removed = tx
                    .query_row(
                        &format!(
                            "DELETE FROM locks WHERE environment = ?1 RETURNING {LOCK_COLUMNS}"
                        ),
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
                Ok(removed)
            })
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
            let raw = newest(
                &self.conn(),
                &format!("SELECT {RUN_COLUMNS} FROM runs"),
                "started_at DESC, id DESC",
                (environment, limit),
                RawRun::from_row,
            )
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
            self.immediate(|tx| {
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
                Ok::<(), StoreError>(())
            })
        })
    }

    async fn stacks_deployed(&self, environment: &str) -> Result<Vec<StackDeployed>, StoreError> {
        blocking(|| {
            query_all(
                &self.conn(),
                "SELECT environment, stack, commit_id, config_hash, run_id, at
                 FROM stack_deployed WHERE environment = ?1 ORDER BY stack",
                [environment],
                stack_deployed_from,
            )
            .map_err(|e| self.err(e))
        })
    }

    async fn set_stacks_seen(&self, records: &[StackSeen]) -> Result<(), StoreError> {
        blocking(|| {
            self.immediate(|tx| {
                for d in records {
                    tx.execute(
                        "INSERT OR REPLACE INTO stack_seen
                         (environment, stack, fingerprint, stamp, at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![d.environment, d.stack, d.fingerprint, d.stamp, d.at],
                    )
                    .map_err(|e| self.err(e))?;
                }
                Ok::<(), StoreError>(())
            })
        })
    }

    async fn stacks_seen(&self, environment: &str) -> Result<Vec<StackSeen>, StoreError> {
        blocking(|| {
            query_all(
                &self.conn(),
                "SELECT environment, stack, fingerprint, stamp, at
                 FROM stack_seen WHERE environment = ?1 ORDER BY stack",
                [environment],
                stack_seen_from,
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
                    deployed_from,
                )
                .optional()
                .map_err(|e| self.err(e))
        })
    }

    async fn policy_results(&self, keys: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        blocking(|| {
            let conn = self.conn();
            let mut found = Vec::new();
            let mut stmt = conn
                .prepare_cached("SELECT record FROM policy_results WHERE key = ?1")
                .map_err(|e| self.err(e))?;
            for key in keys {
                let record: Option<String> = stmt
                    .query_row([key], |row| row.get(0))
                    .optional()
                    .map_err(|e| self.err(e))?;
                if let Some(record) = record {
                    found.push((key.clone(), record));
                }
            }
            Ok(found)
        })
    }

    async fn put_policy_results(&self, results: &[(String, String)]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let at = crate::store::now();
        blocking(|| {
            self.immediate(|tx| {
                for (key, record) in results {
                    tx.execute(
                        "INSERT OR IGNORE INTO policy_results (key, record, at) VALUES (?1, ?2, ?3)",
                        params![key, record, at],
                    )
                    .map_err(|e| self.err(e))?;
                }
                Ok::<(), StoreError>(())
            })
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
            newest(
                &self.conn(),
                &format!("SELECT {EVENT_COLUMNS} FROM events"),
                "at DESC, seq DESC",
                (environment, limit),
                event_from,
            )
            .map_err(|e| self.err(e))
        })
    }
}

impl SqliteStore {
    /// The plan of the first row of a query that selects `id, document`, if any.
    fn read_plan(&self, sql: &str, keys: &[&str]) -> Result<Option<Plan>, StoreError> {
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

/// The lock of `environment`, if any (expired or not).
fn lock_of(conn: &Connection, environment: &str) -> rusqlite::Result<Option<Lock>> {
    conn.query_row(
        &format!("SELECT {LOCK_COLUMNS} FROM locks WHERE environment = ?1"),
        [environment],
        lock_from,
    )
    .optional()
}

/// The first `limit` rows of `select` (a `SELECT … FROM` a table with an `environment` column)
/// in the order `order_by`, of one environment or of all.
fn newest<T>(
    conn: &Connection,
    select: &str,
    order_by: &str,
    (environment, limit): (Option<&str>, usize),
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    match environment {
        Some(env) => query_all(
            conn,
            &format!("{select} WHERE environment = ?1 ORDER BY {order_by} LIMIT ?2"),
            params![env, sql_limit(limit)],
            row,
        ),
        None => query_all(
            conn,
            &format!("{select} ORDER BY {order_by} LIMIT ?1"),
            params![sql_limit(limit)],
            row,
        ),
    }
}
