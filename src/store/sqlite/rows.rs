//! Records as rows: the columns the store selects of each table, in order, and each record read
//! back from a row of them. A status or state kept as text is checked apart, as a
//! [`StoreError`] that names the run.

use rusqlite::Row;

use crate::store::{
    Deployed, Event, Lock, Run, RunStatus, StackDeployed, StackSeen, StoreError, UnitResult,
    UnitState, stored_run_status,
};

pub(super) const LOCK_COLUMNS: &str =
    "environment, owner, reason, acquired_at, lease_expires_at, token";
pub(super) const RUN_COLUMNS: &str =
    "id, environment, plan_id, commit_id, owner, started_at, finished_at, status";
pub(super) const UNIT_COLUMNS: &str = "run_id, stack, stack_name, state, change_set_id, \
     client_request_token, replanned, message, started_at, finished_at";
pub(super) const EVENT_COLUMNS: &str = "environment, at, kind, actor, detail";

/// A lock, from a row of [`LOCK_COLUMNS`].
pub(super) fn lock_from(r: &Row<'_>) -> rusqlite::Result<Lock> {
    Ok(Lock {
        environment: r.get(0)?,
        owner: r.get(1)?,
        reason: r.get(2)?,
        acquired_at: r.get(3)?,
        lease_expires_at: r.get(4)?,
        token: r.get(5)?,
    })
}

/// A row of `runs` (of [`RUN_COLUMNS`]); the status is checked by [`RawRun::check`].
pub(super) struct RawRun(Run, String);

impl RawRun {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<RawRun> {
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

    pub(super) fn check(self) -> Result<Run, StoreError> {
        let RawRun(mut run, status) = self;
        run.status = stored_run_status(&run.id, &status)?;
        Ok(run)
    }
}

/// A stack's result, from a row of [`UNIT_COLUMNS`], and its state as kept (to check).
pub(super) fn unit_from(r: &Row<'_>) -> rusqlite::Result<(UnitResult, String)> {
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

/// An event, from a row of [`EVENT_COLUMNS`].
pub(super) fn event_from(r: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        environment: r.get(0)?,
        at: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        detail: r.get(4)?,
    })
}

/// An environment's deployment record, from a row of `environment, commit_id, plan_id, run_id,
/// at`.
pub(super) fn deployed_from(r: &Row<'_>) -> rusqlite::Result<Deployed> {
    Ok(Deployed {
        environment: r.get(0)?,
        commit: r.get(1)?,
        plan_id: r.get(2)?,
        run_id: r.get(3)?,
        at: r.get(4)?,
    })
}

/// A stack's deployment record, from a row of `environment, stack, commit_id, config_hash,
/// run_id, at`.
pub(super) fn stack_deployed_from(r: &Row<'_>) -> rusqlite::Result<StackDeployed> {
    Ok(StackDeployed {
        environment: r.get(0)?,
        stack: r.get(1)?,
        commit: r.get(2)?,
        config_hash: r.get(3)?,
        run_id: r.get(4)?,
        at: r.get(5)?,
    })
}

pub(super) fn stack_seen_from(r: &Row<'_>) -> rusqlite::Result<StackSeen> {
    Ok(StackSeen {
        environment: r.get(0)?,
        stack: r.get(1)?,
        fingerprint: r.get(2)?,
        stamp: r.get(3)?,
        at: r.get(4)?,
    })
}
