//! The state store: what formwork must remember between runs and share between replicas —
//! plans, apply runs and the result of each stack, the commit each environment runs, locks, an
//! audit trail of forced unlocks, and policy results already evaluated.
//!
//! [`Store`] is the interface; [`sqlite`] keeps everything in one file in a data directory (the
//! default), [`dynamo`] in a DynamoDB table with conditional writes, for several replicas of
//! `formwork serve`. [`AnyStore`] is whichever one a run was configured with.
//!
//! Times are milliseconds since the Unix epoch, passed in by the caller, so that leases can be
//! tested without waiting.

pub mod dynamo;
pub mod sqlite;

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::model::Plan;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A failure of the store itself (not a refused lock).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store (SQLite {path}): {message}")]
    Sqlite { path: String, message: String },
    #[error("state store (DynamoDB table {table}): {message}")]
    Dynamo { table: String, message: String },
    #[error("state store: {0}")]
    Data(String),
    #[error("state store location `{0}` is not understood: use sqlite:PATH or dynamodb:TABLE")]
    Location(String),
}

/// Why a lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it, with a lease that has not run out.
    #[error(
        "environment `{}` is locked by {} since {} ({}); the lease runs until {}",
        .0.environment, .0.owner, format_millis(.0.acquired_at), .0.reason, format_millis(.0.lease_expires_at)
    )]
    Held(Lock),
    /// The lock was taken over (its lease ran out, or it was forced open) by someone else.
    #[error("the lock of environment `{0}` was lost: its lease ran out or it was forced open")]
    Lost(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A time for messages: RFC 3339 in UTC.
pub fn format_millis(ms: Millis) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| ms.to_string())
}

/// A lock on one environment: while held, only its holder plans against or applies to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub environment: String,
    /// Who holds it: `user@host (pid N)`, or a pull request, or a replica.
    pub owner: String,
    /// Why: `apply of plan X`, `plan of pull request 42` …
    pub reason: String,
    pub acquired_at: Millis,
    /// When the lock may be taken over if not renewed.
    pub lease_expires_at: Millis,
    /// A secret of the holder, needed to renew or release it.
    pub token: String,
}

/// The state of an apply run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped at a gate: what comes after it waits for `formwork continue`.
    Waiting,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Waiting => "waiting",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "waiting" => RunStatus::Waiting,
            _ => return None,
        })
    }
}

/// One apply of one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub environment: String,
    /// The plan applied (none when applying straight from revisions).
    pub plan_id: Option<String>,
    /// The commit applied.
    pub commit: String,
    pub owner: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub status: RunStatus,
}

/// Where one stack of a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    /// Not started: waits for the stacks it needs.
    Waiting,
    /// Its change set (or deletion) has been sent to CloudFormation.
    Executing,
    Applied,
    NoChange,
    Deleted,
    Failed,
    Skipped,
}

impl UnitState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Waiting => "waiting",
            UnitState::Executing => "executing",
            UnitState::Applied => "applied",
            UnitState::NoChange => "no_change",
            UnitState::Deleted => "deleted",
            UnitState::Failed => "failed",
            UnitState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<UnitState> {
        Some(match s {
            "waiting" => UnitState::Waiting,
            "executing" => UnitState::Executing,
            "applied" => UnitState::Applied,
            "no_change" => UnitState::NoChange,
            "deleted" => UnitState::Deleted,
            "failed" => UnitState::Failed,
            "skipped" => UnitState::Skipped,
            _ => return None,
        })
    }
}

/// The result (so far) of one stack in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitResult {
    pub run_id: String,
    /// The stack's key in the pipeline.
    pub stack: String,
    pub stack_name: String,
    pub state: UnitState,
    /// The change set executed (or to execute).
    pub change_set_id: Option<String>,
    /// The token the operation was sent with, to find its events and to retry it safely.
    pub client_request_token: Option<String>,
    /// The change set was made at apply time (inputs known only then, or re-planned).
    pub replanned: bool,
    /// Why it failed or was skipped, or what happened.
    pub message: Option<String>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
}

/// The commit an environment runs: the newest one every stack of it was brought to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    pub environment: String,
    pub commit: String,
    pub plan_id: Option<String>,
    pub run_id: String,
    pub at: Millis,
}

/// Where one stack of an environment stands: the commit whose config it was last brought to
/// (applied, found unchanged, or untouched by the commits since), with the digest of its
/// desired state there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackDeployed {
    pub environment: String,
    /// The stack's key in the pipeline.
    pub stack: String,
    pub commit: String,
    pub config_hash: String,
    pub run_id: String,
    pub at: Millis,
}

/// What formwork last saw of one stack: it applied it, or found it unchanged, with the desired
/// state of `fingerprint`, and the stack as listed then had `stamp` (see
/// [`crate::plan::evidence`]). A plan judges a stack with the same two now unchanged without a
/// call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSeen {
    pub environment: String,
    /// The stack's key in the pipeline.
    pub stack: String,
    pub fingerprint: String,
    pub stamp: String,
    pub at: Millis,
}

/// An entry of the audit trail: forced unlocks, gates passed, policy overrides, refusals by
/// apply requirements, drift checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub environment: String,
    pub at: Millis,
    /// `unlock`, `gate` (a gate passed), `policy_override`, `apply_requirements_unmet`,
    /// `drift_checked`, `invalid_config`, …
    pub kind: String,
    /// Who did it.
    pub actor: String,
    pub detail: String,
}

/// Declares the [`Store`] trait from the one list of its methods, and implements it for
/// [`AnyStore`] from the same list, each method handing the call to the store inside. A method
/// is listed as `fn name(&self, arg: Type, …) -> Output;`; in the trait it returns a `Send`
/// future of `Output`, which implementations write as `async fn`.
macro_rules! store_trait {
    (
        $(#[$attr:meta])*
        pub trait Store: Send + Sync {
            $(
                $(#[$method_attr:meta])*
                fn $name:ident(&self $(, $arg:ident: $arg_ty:ty)* $(,)?) -> $output:ty;
            )*
        }
    ) => {
        $(#[$attr])*
        pub trait Store: Send + Sync {
            $(
                $(#[$method_attr])*
                fn $name(&self $(, $arg: $arg_ty)*) -> impl Future<Output = $output> + Send;
            )*
        }

        impl Store for AnyStore {
            $(
                async fn $name(&self $(, $arg: $arg_ty)*) -> $output {
                    match self {
                        AnyStore::Sqlite(s) => s.$name($($arg),*).await,
                        AnyStore::Dynamo(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

store_trait! {
    /// What formwork keeps between runs. Every method is safe to call from several processes at
    /// once: locks are taken with conditional writes (or a transaction), so two callers never both
    /// hold one.
    pub trait Store: Send + Sync {
        /// Keeps a plan (replacing one of the same id).
        fn save_plan(&self, plan: &Plan) -> Result<(), StoreError>;

        /// A plan by id.
        fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError>;

        /// The newest plan that covers `environment`.
        fn latest_plan(&self, environment: &str) -> Result<Option<Plan>, StoreError>;

        /// The newest plan that covers `environment` and plans `commit` (a pull request's head).
        fn latest_plan_of_commit(
            &self,
            environment: &str,
            commit: &str,
        ) -> Result<Option<Plan>, StoreError>;

        /// Takes the lock of `environment` for `lease`, unless someone else holds it with a lease
        /// that has not run out at `now` (then [`LockError::Held`] says who).
        fn try_lock(
            &self,
            environment: &str,
            owner: &str,
            reason: &str,
            lease: Duration,
            now: Millis,
        ) -> Result<Lock, LockError>;

        /// Extends a lock held with `lock.token` by `lease` from `now`; [`LockError::Lost`] when it
        /// is no longer held with that token.
        fn renew_lock(&self, lock: &Lock, lease: Duration, now: Millis) -> Result<Lock, LockError>;

        /// Releases a lock held with `lock.token` (no effect when it is no longer held with it).
        fn release_lock(&self, lock: &Lock) -> Result<(), StoreError>;

        /// The lock of an environment, if any (expired ones included: check `lease_expires_at`).
        fn lock(&self, environment: &str) -> Result<Option<Lock>, StoreError>;

        /// Removes the lock of an environment whoever holds it, and records who did it and why as
        /// an `unlock` event. Returns the lock that was removed.
        fn force_unlock(
            &self,
            environment: &str,
            actor: &str,
            reason: &str,
            now: Millis,
        ) -> Result<Option<Lock>, StoreError>;

        /// Records a new run.
        fn start_run(&self, run: &Run) -> Result<(), StoreError>;

        /// Records (or replaces) the result of one stack of a run.
        fn put_unit(&self, unit: &UnitResult) -> Result<(), StoreError>;

        /// Marks a run finished.
        fn finish_run(
            &self,
            run_id: &str,
            status: RunStatus,
            now: Millis,
        ) -> Result<(), StoreError>;

        /// A run and the results of its stacks (in the order they were first recorded).
        fn run(&self, id: &str) -> Result<Option<(Run, Vec<UnitResult>)>, StoreError>;

        /// Runs, newest first, of one environment or all, at most `limit`.
        fn runs(&self, environment: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError>;

        /// Runs of an environment still marked running (their process may have died).
        fn unfinished_runs(&self, environment: &str) -> Result<Vec<Run>, StoreError>;

        /// Records the commit an environment now runs.
        fn set_deployed(&self, d: &Deployed) -> Result<(), StoreError>;

        /// Records where stacks of an environment stand (replacing their earlier records).
        fn set_stacks_deployed(&self, records: &[StackDeployed]) -> Result<(), StoreError>;

        /// Where each stack of an environment stands, by stack key order.
        fn stacks_deployed(&self, environment: &str) -> Result<Vec<StackDeployed>, StoreError>;

        /// Records what was last seen of stacks (replacing their earlier records).
        fn set_stacks_seen(&self, records: &[StackSeen]) -> Result<(), StoreError>;

        /// What was last seen of each stack of an environment, by stack key order.
        fn stacks_seen(&self, environment: &str) -> Result<Vec<StackSeen>, StoreError>;

        /// The commit an environment runs, if any was applied.
        fn deployed(&self, environment: &str) -> Result<Option<Deployed>, StoreError>;

        /// Removes the locks whose key starts with `prefix` and whose lease ran out before `before`
        /// (the agent's memory of delivery ids); returns how many went. Stores that expire items by
        /// themselves (DynamoDB's time to live) answer 0.
        fn prune_locks(&self, prefix: &str, before: Millis) -> Result<usize, StoreError>;

        /// Records an audit event (`kind` `gate`: a gate was passed, its name in `detail`).
        fn record_event(&self, event: &Event) -> Result<(), StoreError>;

        /// Audit events of one environment or all, newest first, at most `limit`.
        fn events(&self, environment: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError>;

        /// The policy results known among `keys`, as (key, Guard's record): see
        /// [`crate::policy::cache`].
        fn policy_results(&self, keys: &[String]) -> Result<Vec<(String, String)>, StoreError>;

        /// Keeps policy results (key, Guard's record); a result already kept is kept as it is
        /// (the key names its content).
        fn put_policy_results(&self, results: &[(String, String)]) -> Result<(), StoreError>;
    }
}

/// The store a run was configured with: one of the implementations, chosen at run time by
/// [`open`].
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(sqlite::SqliteStore),
    Dynamo(dynamo::DynamoStore),
}

impl AnyStore {
    /// Where the store is, as `open` takes it (`sqlite:PATH`, `dynamodb:TABLE`).
    pub fn describe(&self) -> String {
        match self {
            AnyStore::Sqlite(s) => format!("sqlite:{}", s.path().display()),
            AnyStore::Dynamo(s) => format!("dynamodb:{}", s.table()),
        }
    }
}

/// Opens the state store at `location`:
///
/// - `sqlite`: the SQLite file `formwork.db` in `data_dir`;
/// - `sqlite:PATH`: the SQLite file at `PATH` (a relative path is relative to the current
///   directory); the file and its directory are created when missing;
/// - `dynamodb:TABLE`: the DynamoDB table `TABLE`, created (on-demand billing) when missing. The
///   client comes from the standard AWS configuration: credential chain, the region of
///   `AWS_REGION` (else `us-east-1`), and `AWS_ENDPOINT_URL` when set.
///
/// Anything else is [`StoreError::Location`].
pub async fn open(location: &str, data_dir: &std::path::Path) -> Result<AnyStore, StoreError> {
    let location = location.trim();
    if location == "sqlite" {
        return Ok(AnyStore::Sqlite(sqlite::SqliteStore::open(
            &data_dir.join("formwork.db"),
        )?));
    }
    if let Some(path) = location.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err(StoreError::Location(location.to_string()));
        }
        return Ok(AnyStore::Sqlite(sqlite::SqliteStore::open(
            std::path::Path::new(path),
        )?));
    }
    if let Some(table) = location.strip_prefix("dynamodb:") {
        if !dynamo::is_valid_table_name(table) {
            return Err(StoreError::Location(location.to_string()));
        }
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(
                aws_config::meta::region::RegionProviderChain::first_try(
                    aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(aws_types::region::Region::new("us-east-1")),
            )
            .load()
            .await;
        let store =
            dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.to_string());
        store.ensure_table().await?;
        return Ok(AnyStore::Dynamo(store));
    }
    Err(StoreError::Location(location.to_string()))
}

/// Where the lease of a lock taken or renewed at `now` for `lease` ends. A lease is in force up
/// to and including this instant; the lock may be taken over once `now` is past it.
pub(crate) fn lease_end(now: Millis, lease: Duration) -> Millis {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

impl Lock {
    /// A new lock of `environment`, taken at `now` for `lease`, with a fresh token.
    pub(crate) fn new(
        environment: &str,
        owner: &str,
        reason: &str,
        lease: Duration,
        now: Millis,
    ) -> Lock {
        Lock {
            environment: environment.to_string(),
            owner: owner.to_string(),
            reason: reason.to_string(),
            acquired_at: now,
            lease_expires_at: lease_end(now, lease),
            token: new_token(),
        }
    }
}

/// A fresh random secret: 128 bits, in hex.
pub(crate) fn new_token() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A run's status as a store kept it.
pub(crate) fn stored_run_status(run_id: &str, status: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(status)
        .ok_or_else(|| StoreError::Data(format!("run `{run_id}` has an unknown status `{status}`")))
}

/// A stack's state in a run as a store kept it.
pub(crate) fn stored_unit_state(
    run_id: &str,
    stack: &str,
    state: &str,
) -> Result<UnitState, StoreError> {
    UnitState::parse(state).ok_or_else(|| {
        StoreError::Data(format!(
            "stack `{stack}` of run `{run_id}` has an unknown state `{state}`"
        ))
    })
}

/// A plan as the stores keep it: its creation time (to order plans by) and its JSON document.
pub(crate) fn encode_plan(plan: &Plan) -> Result<(Millis, String), StoreError> {
    let created_ms = plan_created_ms(plan)?;
    let doc = serde_json::to_string(plan)
        .map_err(|e| StoreError::Data(format!("plan `{}` cannot be written: {e}", plan.id)))?;
    Ok((created_ms, doc))
}

/// A plan from the JSON document a store kept of plan `id`.
pub(crate) fn decode_plan(id: &str, doc: &str) -> Result<Plan, StoreError> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Data(format!("plan `{id}` cannot be read back: {e}")))
}

/// A plan's `created_at` in [`Millis`], to order plans by.
pub(crate) fn plan_created_ms(plan: &Plan) -> Result<Millis, StoreError> {
    aws_smithy_types::DateTime::from_str(
        &plan.created_at,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .ok()
    .and_then(|t| t.to_millis().ok())
    .ok_or_else(|| {
        StoreError::Data(format!(
            "plan `{}` has a creation time that is not RFC 3339: `{}`",
            plan.id, plan.created_at
        ))
    })
}

/// The detail of the `unlock` event recorded when `lock` is forced open for `reason`.
pub(crate) fn unlock_detail(lock: &Lock, reason: &str) -> String {
    format!(
        "{reason} (removed the lock of {}, taken {} for {}, lease until {})",
        lock.owner,
        format_millis(lock.acquired_at),
        lock.reason,
        format_millis(lock.lease_expires_at)
    )
}
