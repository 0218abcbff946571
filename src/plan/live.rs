//! The live planner: a CloudFormation change set for every stack to plan, created in
//! dependency order (a stack waits only for the stacks whose outputs it takes) with a bounded
//! number of calls in flight, and read back into a [`Plan`].
//!
//! Per stack: describe it (its state decides CREATE, UPDATE or blocked); fill in its inputs; if
//! it exists, fetch the deployed template and compare — when template, parameters and tags are
//! what is deployed, there is nothing to plan and no change set is made; otherwise create a
//! change set under a name derived from the commit and the stack's config hash (a re-run finds
//! it), wait for it, and read it, filling in replacement and details that the endpoint leaves
//! out from formwork's own analysis. Empty change sets are deleted; older change sets of the
//! same origin are cleaned up.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, join_all};

pub use super::change_sets::{
    CHANGE_SET_PREFIX, change_set_description, change_set_name, delete_change_sets_of_origin,
    merge_changes, origin_of,
};
pub use super::tags::{COMMIT_TAG, stack_tags};

use super::inputs::{self, StackCache};
use super::model::*;
use super::unit::plan_unit;
use crate::aws::cfn::StackInfo;
use crate::aws::ssm::SsmValues;
use crate::aws::{Aws, AwsError, Session};
use crate::desired::{DesiredEnvironment, Unit};
use crate::secrets::Masker;
use crate::store::StackSeen;
use crate::template::sha256_hex;

/// How a planning run behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Written into change set descriptions; older change sets of the same origin (the same
    /// branch or pull request) are deleted when a stack is planned again.
    pub origin: String,
    /// How long to wait for one change set.
    pub change_set_timeout: Duration,
    /// Lines of context in template diffs.
    pub diff_context: usize,
    /// Judge no stack unchanged by its record or by comparing it: every stack gets a change set.
    pub refresh: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            origin: "cli".into(),
            change_set_timeout: Duration::from_secs(900),
            diff_context: 3,
            refresh: false,
        }
    }
}

/// One environment to plan.
pub struct EnvRequest {
    pub desired: DesiredEnvironment,
    /// The stacks to plan, with why (no reasons when every stack is planned).
    pub units: Vec<(String, Vec<Reason>)>,
    /// Stacks that left the config.
    pub removed: Vec<RemovedUnit>,
    /// Stacks the request would hold but for a choice of stacks.
    pub left_out: Vec<String>,
    /// What formwork last saw of the environment's stacks, by key (see [`super::evidence`]).
    pub seen: BTreeMap<String, StackSeen>,
}

/// A plan of at least this many stacks of an environment reads them all with one listing of the
/// account and region, instead of describing each.
pub const BULK_LIST_MIN: usize = 3;

/// A stack that left the config.
#[derive(Clone, Debug)]
pub struct RemovedUnit {
    pub stack: String,
    pub stack_name: String,
    /// The region the stack was deployed to.
    pub region: String,
    pub reasons: Vec<Reason>,
    /// The stacks it came after while it was in the config.
    pub depends_on: Vec<String>,
}

/// Progress of a planning run, for a display.
pub trait Progress: Send + Sync {
    fn started(&self, environment: &str, stack: &str);
    fn finished(&self, environment: &str, stack: &str, action: Action);
}

/// No progress display.
pub struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &str, _: &str, _: Action) {}
}

/// Why a run could not plan at all.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Aws(#[from] AwsError),
}

pub(super) fn empty_unit(unit: &Unit, env_region: &str, reasons: Vec<Reason>) -> UnitPlan {
    super::unit_plan(unit, env_region, Action::Failed, reasons)
}

/// The stacks a unit comes after, by key, each once.
pub fn dependency_names(unit: &Unit) -> Vec<String> {
    unit.dependencies
        .iter()
        .map(|d| d.stack.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The planner of one environment: what every stack of it shares while it is planned (the
/// session, the stacks described so far, the SSM values read). Apply uses one too, to plan stacks
/// whose inputs are known only once the stacks before them are applied.
pub struct Planner {
    pub(super) env: DesiredEnvironment,
    pub(super) session: Session,
    pub(super) stacks: StackCache,
    /// The SSM values read so far, by region; read again for a stack whose inputs another
    /// stack creates.
    ssm: std::sync::Mutex<BTreeMap<String, Arc<SsmValues>>>,
    /// The Secrets Manager secrets read so far (each once), by region.
    secrets: std::sync::Mutex<BTreeMap<String, Arc<crate::aws::secrets::SecretCache>>>,
    pub(super) masker: Arc<Masker>,
    /// The outputs the config makes secret, by stack key.
    pub(super) secret_outputs: BTreeMap<String, BTreeSet<String>>,
    pub(super) options: Options,
    pub(super) plan_id: String,
    pub(super) commit: String,
    pub(super) progress: Arc<dyn Progress>,
    /// What formwork last saw of the stacks, by key.
    pub(super) seen: BTreeMap<String, StackSeen>,
    /// The other environments whose stacks' outputs its stacks take.
    pub(super) remote: super::remote::RemoteSessions,
}

impl Planner {
    /// A planner for `env`, having read (decrypted, in batches of ten) the SSM parameters named,
    /// by region.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        env: DesiredEnvironment,
        session: Session,
        ssm_names: &BTreeMap<String, Vec<String>>,
        masker: Arc<Masker>,
        options: Options,
        plan_id: String,
        commit: String,
        progress: Arc<dyn Progress>,
    ) -> Result<Planner, AwsError> {
        let mut ssm = BTreeMap::new();
        for (region, names) in ssm_names {
            let values = read_ssm(&session.in_region(region), names).await?;
            ssm.insert(region.clone(), values);
        }
        Ok(Planner::with_ssm(
            env, session, ssm, masker, options, plan_id, commit, progress,
        ))
    }

    /// A planner for `env` with the SSM values it reads, read already.
    #[allow(clippy::too_many_arguments)]
    fn with_ssm(
        env: DesiredEnvironment,
        session: Session,
        ssm: BTreeMap<String, SsmValues>,
        masker: Arc<Masker>,
        options: Options,
        plan_id: String,
        commit: String,
        progress: Arc<dyn Progress>,
    ) -> Planner {
        for v in ssm.values().flat_map(|values| values.found.values()) {
            if v.secret {
                masker.add(&v.value);
            }
        }
        Planner {
            secret_outputs: crate::secrets::secret_outputs(&env),
            env,
            secrets: Default::default(),
            session,
            stacks: StackCache::default(),
            ssm: std::sync::Mutex::new(ssm.into_iter().map(|(r, v)| (r, Arc::new(v))).collect()),
            masker,
            options,
            plan_id,
            commit,
            progress,
            seen: BTreeMap::new(),
            remote: Default::default(),
        }
    }

    /// The planner with sessions for the other environments whose outputs its stacks take.
    pub fn with_remote(mut self, remote: super::remote::RemoteSessions) -> Planner {
        self.remote = remote;
        self
    }

    /// Plans one stack. `upstream` holds the plans of the stacks of this run it takes outputs
    /// from; a stack not in it is read as deployed.
    pub async fn plan_unit(
        &self,
        unit: &Unit,
        reasons: Vec<Reason>,
        upstream: &BTreeMap<String, Arc<UnitPlan>>,
    ) -> UnitPlan {
        plan_unit(self, unit, reasons, upstream).await
    }

    /// The clients for the stacks of `region`: the environment's session in that region.
    pub(super) fn session_in(&self, region: &str) -> Session {
        self.session.in_region(region)
    }

    /// The SSM values of `region` read so far.
    pub(super) fn ssm(&self, region: &str) -> Arc<SsmValues> {
        self.ssm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(region)
            .cloned()
            .unwrap_or_default()
    }

    /// The Secrets Manager secrets of `region`, each read once.
    pub(super) fn secrets(&self, region: &str) -> Arc<crate::aws::secrets::SecretCache> {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_insert_with(|| {
                Arc::new(crate::aws::secrets::SecretCache::new(
                    self.session_in(region).secrets,
                ))
            })
            .clone()
    }

    /// Reads the SSM parameters `names` of `region` again (after the stacks creating them were
    /// applied).
    pub async fn reread_ssm(&self, region: &str, names: &[String]) -> Result<(), AwsError> {
        if names.is_empty() {
            return Ok(());
        }
        let fresh = self.session_in(region).ssm.get(names).await?;
        let mut values = (*self.ssm(region)).clone();
        for (name, v) in fresh.found {
            if v.secret {
                self.masker.add(&v.value);
            }
            values.found.insert(name, v);
        }
        values.missing.retain(|m| !names.contains(m));
        values.missing.extend(fresh.missing);
        self.ssm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(region.to_string(), Arc::new(values));
        Ok(())
    }

    /// Forgets what was read of a stack, so that it is described again (after it changed).
    pub fn forget_stack(&self, stack_name: &str) {
        self.stacks.forget(stack_name);
    }

    /// The environment planned.
    pub fn environment(&self) -> &DesiredEnvironment {
        &self.env
    }
}

/// Plans every requested stack of every environment.
pub async fn plan(
    aws: &Aws,
    masker: Arc<Masker>,
    envs: Vec<EnvRequest>,
    head: RevisionInfo,
    base: Option<RevisionInfo>,
    options: &Options,
    progress: Arc<dyn Progress>,
) -> Result<Plan, PlanError> {
    let created_at = now_rfc3339();
    let id = plan_id(&head.commit, &created_at);
    // The account guard comes first, for every environment, before any other call.
    let mut sessions = Vec::new();
    for e in &envs {
        sessions.push(aws.session(&e.desired.target()).await?);
    }
    // The other environments whose outputs the stacks planned take, each with its own session.
    let mut remotes = Vec::new();
    for e in &envs {
        let planned = e.units.iter().map(|(k, _)| k.clone()).collect();
        remotes.push(super::remote::RemoteSessions::open(aws, &e.desired, Some(&planned)).await);
    }
    let mut listings = Listings::default();
    listings.read_ssm(&envs, &sessions).await;
    let listings = listings;
    let futures = envs
        .into_iter()
        .zip(sessions)
        .zip(remotes)
        .map(|((req, session), remote)| {
            plan_environment(
                req,
                session,
                remote,
                &listings,
                masker.clone(),
                options.clone(),
                id.clone(),
                head.commit.clone(),
                progress.clone(),
            )
        });
    let mut environments = join_all(futures).await;
    environments.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Plan {
        version: PLAN_JSON_VERSION,
        id,
        created_at,
        offline: false,
        base,
        head,
        environments,
        policy: None,
    })
}

/// A plan id: unique per run, readable (`YYYYMMDD-HHMMSS-<hash>`).
pub fn plan_id(commit: &str, created_at: &str) -> String {
    let stamp: String = created_at
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    let h = sha256_hex(format!("{commit} {created_at} {}", std::process::id()).as_bytes());
    format!(
        "{}-{}-{}",
        &stamp[..8.min(stamp.len())],
        &stamp[8.min(stamp.len())..],
        &h[..8]
    )
}

/// The current time, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

type SharedPlan = Shared<BoxFuture<'static, Arc<UnitPlan>>>;

/// The SSM parameters `names` (each once), decrypted, in batches of ten.
async fn read_ssm(session: &Session, names: &[String]) -> Result<SsmValues, AwsError> {
    let mut names = names.to_vec();
    names.sort();
    names.dedup();
    if names.is_empty() {
        Ok(SsmValues::default())
    } else {
        session.ssm.get(&names).await
    }
}

/// The SSM parameters the planned stacks of an environment read, by the region they are read
/// in (each stack's).
fn ssm_names_of(req: &EnvRequest) -> BTreeMap<String, Vec<String>> {
    inputs::ssm_names_by_region(
        req.units
            .iter()
            .filter_map(|(k, _)| req.desired.units.get(k)),
    )
}

/// What the environments planned with one session (account, region and role) share in a
/// planning run: their SSM parameters, read together (batches of ten fill across
/// environments), and the listing of the account's stacks, made at most once.
#[derive(Default)]
struct Listings {
    cells: tokio::sync::Mutex<HashMap<SessionKey, Arc<ListedStacks>>>,
    ssm: HashMap<SessionKey, Result<SsmValues, String>>,
}

type ListedStacks = tokio::sync::OnceCell<Result<Arc<Vec<StackInfo>>, String>>;

/// Which account and region a session acts in, and as whom: what it may read.
fn key_of(session: &Session) -> SessionKey {
    (
        session.account.clone(),
        session.region.clone(),
        session.role.clone(),
    )
}

type SessionKey = (String, String, Option<String>);

impl Listings {
    /// Reads the SSM parameters of every environment, once per account and region.
    async fn read_ssm(&mut self, envs: &[EnvRequest], sessions: &[Session]) {
        let mut names: HashMap<SessionKey, (Session, Vec<String>)> = HashMap::new();
        for (req, session) in envs.iter().zip(sessions) {
            for (region, in_region) in ssm_names_of(req) {
                let session = session.in_region(&region);
                names
                    .entry(key_of(&session))
                    .or_insert_with(|| (session, Vec::new()))
                    .1
                    .extend(in_region);
            }
        }
        for (key, (session, names)) in names {
            let read = read_ssm(&session, &names).await.map_err(|e| e.to_string());
            self.ssm.insert(key, read);
        }
    }

    /// The SSM values `names` of every region, read with `session`'s identity.
    fn ssm_for(
        &self,
        session: &Session,
        names: &BTreeMap<String, Vec<String>>,
    ) -> Result<BTreeMap<String, SsmValues>, String> {
        names
            .iter()
            .map(|(region, names)| {
                let values = self.ssm_in(&session.in_region(region), names)?;
                Ok((region.clone(), values))
            })
            .collect()
    }

    /// The SSM values `names` of the account and region of `session`.
    fn ssm_in(&self, session: &Session, names: &[String]) -> Result<SsmValues, String> {
        let all = self
            .ssm
            .get(&key_of(session))
            .cloned()
            .unwrap_or_else(|| Ok(SsmValues::default()))?;
        Ok(SsmValues {
            found: all
                .found
                .into_iter()
                .filter(|(n, _)| names.contains(n))
                .collect(),
            missing: all
                .missing
                .into_iter()
                .filter(|n| names.contains(n))
                .collect(),
        })
    }

    async fn of(&self, session: &Session) -> Result<Arc<Vec<StackInfo>>, String> {
        let cell = self
            .cells
            .lock()
            .await
            .entry(key_of(session))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            session
                .cfn
                .list_stacks()
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }
}

#[allow(clippy::too_many_arguments)]
async fn plan_environment(
    req: EnvRequest,
    session: Session,
    remote: super::remote::RemoteSessions,
    listings: &Listings,
    masker: Arc<Masker>,
    options: Options,
    plan_id: String,
    commit: String,
    progress: Arc<dyn Progress>,
) -> EnvironmentPlan {
    let names = ssm_names_of(&req);
    let env = req.desired;
    let left_out = req.left_out;
    let selected: BTreeMap<String, Vec<Reason>> = req.units.into_iter().collect();
    // Many stacks: one listing of the account and region stands in for describing each (a
    // listing that fails leaves each to be described).
    let listed = if selected.len() + req.removed.len() >= BULK_LIST_MIN {
        match listings.of(&session).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(environment = %env.name, error = %masker.scrub(&e), "listing the stacks failed; describing each instead");
                None
            }
        }
    } else {
        None
    };
    let ctx = match listings.ssm_for(&session, &names).map(|ssm| {
        Planner::with_ssm(
            env.clone(),
            session,
            ssm,
            masker.clone(),
            options,
            plan_id,
            commit,
            progress,
        )
    }) {
        Ok(mut p) => {
            if let Some(listed) = &listed {
                // The listing is of the environment's region: stacks of other regions are
                // described on their own.
                let names = env
                    .units
                    .values()
                    .filter(|u| u.region == env.region)
                    .map(|u| u.stack_name.clone());
                let removed = req
                    .removed
                    .iter()
                    .filter(|r| r.region == env.region)
                    .map(|r| r.stack_name.clone());
                p.stacks.seed(listed, names.chain(removed));
            }
            p.seen = req.seen;
            p.remote = remote;
            Arc::new(p)
        }
        Err(e) => {
            // Without the SSM values no stack of this environment can be planned.
            let message = masker.scrub(&e);
            let units = selected
                .iter()
                .filter_map(|(k, reasons)| env.units.get(k).map(|u| (u, reasons.clone())))
                .map(|(u, reasons)| UnitPlan {
                    message: Some(message.clone()),
                    ..empty_unit(u, &env.region, reasons)
                })
                .collect();
            return EnvironmentPlan {
                name: env.name.clone(),
                pipeline: env.pipeline.clone(),
                account: env.account.clone(),
                region: env.region.clone(),
                units,
                left_out,
            };
        }
    };
    // Each stack waits for the planned stacks it depends on, and for nothing else.
    let mut futures: HashMap<String, SharedPlan> = HashMap::new();
    for wave in env.graph.waves() {
        for i in wave {
            let key = env.graph.name(i).to_string();
            let Some(reasons) = selected.get(&key) else {
                continue;
            };
            let unit = env.units[&key].clone();
            let deps: Vec<(String, SharedPlan)> = unit
                .dependencies
                .iter()
                .filter_map(|d| futures.get(&d.stack).map(|f| (d.stack.clone(), f.clone())))
                .collect();
            let ctx = ctx.clone();
            let reasons = reasons.clone();
            let fut = async move {
                let mut upstream = BTreeMap::new();
                for (name, f) in deps {
                    upstream.insert(name, f.await);
                }
                ctx.progress.started(&ctx.env.name, &unit.stack);
                let p = plan_unit(&ctx, &unit, reasons, &upstream).await;
                ctx.progress.finished(&ctx.env.name, &unit.stack, p.action);
                Arc::new(p)
            }
            .boxed()
            .shared();
            futures.insert(key, fut);
        }
    }
    // Stacks on a dependency cycle have no wave; validation reports them, and they are not
    // planned.
    let keys: Vec<String> = env
        .graph
        .waves()
        .into_iter()
        .flatten()
        .map(|i| env.graph.name(i).to_string())
        .filter(|k| futures.contains_key(k))
        .collect();
    let results = join_all(keys.iter().map(|k| futures[k].clone())).await;
    let mut units: Vec<UnitPlan> = results.into_iter().map(|p| (*p).clone()).collect();
    for r in req.removed {
        units.push(plan_removal(&ctx, r).await);
    }
    EnvironmentPlan {
        name: env.name.clone(),
        pipeline: env.pipeline.clone(),
        account: env.account.clone(),
        region: env.region.clone(),
        units,
        left_out,
    }
}

async fn plan_removal(ctx: &Planner, r: RemovedUnit) -> UnitPlan {
    let stack = ctx
        .stacks
        .get(&ctx.session_in(&r.region).cfn, &r.stack_name)
        .await;
    let (action, status, last_updated, message) = match stack {
        Ok(Some(s)) if s.settings.termination_protection => (
            Action::Blocked,
            Some(s.status.clone()),
            s.last_updated.clone(),
            format!(
                "left the config, but stack {} has termination protection, so CloudFormation refuses to delete it: put it back with `termination_protection: false` in its options and apply, then remove it",
                s.name
            ),
        ),
        Ok(Some(s)) => (
            Action::Remove,
            Some(s.status.clone()),
            s.last_updated.clone(),
            "left the config; the stack is deleted only when apply is allowed to delete"
                .to_string(),
        ),
        Ok(None) => (
            Action::NoChange,
            None,
            None,
            "left the config; the stack does not exist, so there is nothing to delete".to_string(),
        ),
        Err(e) => (Action::Failed, None, None, ctx.masker.scrub(&e)),
    };
    UnitPlan {
        region: super::own_region(&r.region, &ctx.env.region),
        stack_status: status,
        last_updated,
        message: Some(message),
        depends_on: r.depends_on,
        ..UnitPlan::bare(&r.stack, &r.stack_name, action, r.reasons)
    }
}
