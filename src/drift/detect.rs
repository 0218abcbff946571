//! Running drift detection over environments: per stack, DescribeStacks (a stack that does not
//! exist is not deployed, not an error), DetectStackDrift, DescribeStackDriftDetectionStatus
//! until the detection ends (first after `first_poll`, the wait doubling up to `max_poll`, all
//! before one deadline for the run), then DescribeStackResourceDrifts (modified and deleted
//! resources) for a stack that drifted.
//!
//! CloudFormation limits how many drift detections an account runs at once, so at most
//! `concurrency` detections are in flight per account and region (environments sharing one
//! share the bound): a slot is held from DetectStackDrift until its detection has ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::aws::cfn::{DriftDetectionStatus, ResourceDriftInfo};
use crate::aws::{Aws, AwsError, Cfn, Session};
use crate::desired::{DesiredEnvironment, Unit};
use crate::secrets::Masker;

use super::mask::{mask_stack, note_literal_secrets};
use super::model::{
    DriftReport, DriftState, EnvironmentDrift, JSON_VERSION, PropertyDrift, ResourceDrift,
    StackDrift,
};

/// How drift detection runs.
#[derive(Clone, Debug)]
pub struct DriftOptions {
    /// Detections in flight at once per account and region.
    pub concurrency: usize,
    /// How long the whole run may wait for detections.
    pub timeout: Duration,
    /// The wait before the first status poll of a detection; it doubles after each poll…
    pub first_poll: Duration,
    /// …up to this.
    pub max_poll: Duration,
}

impl Default for DriftOptions {
    fn default() -> DriftOptions {
        DriftOptions {
            concurrency: 5,
            timeout: Duration::from_secs(10 * 60),
            first_poll: Duration::from_secs(2),
            max_poll: Duration::from_secs(10),
        }
    }
}

/// Why one stack's drift could not be found out.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "drift detection {id} did not finish within the time allowed ({seconds} s); it may still be running in CloudFormation"
    )]
    Timeout { id: String, seconds: u64 },
    #[error("the time allowed ({seconds} s) ran out before this stack's drift detection started")]
    NotStarted { seconds: u64 },
}

/// The drift of every stack of `environments`, checked against AWS. Failures are in the
/// report (per environment, per stack), not returned: one stack that cannot be checked does
/// not hide the others.
pub async fn detect(
    aws: &Aws,
    environments: &[DesiredEnvironment],
    revision: &str,
    masker: &Masker,
    opts: &DriftOptions,
) -> DriftReport {
    let deadline = Instant::now() + opts.timeout;
    let slots: Mutex<HashMap<(String, String), Arc<Semaphore>>> = Mutex::default();
    let slots_for = |env: &DesiredEnvironment| {
        slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((env.account.clone(), env.region.clone()))
            .or_insert_with(|| Arc::new(Semaphore::new(opts.concurrency.max(1))))
            .clone()
    };
    let runs = environments.iter().map(|env| {
        let slots = slots_for(env);
        async move {
            match aws.session(&env.target()).await {
                Ok(session) => {
                    detect_environment(&session, env, masker, opts, &slots, deadline).await
                }
                Err(e) => {
                    tracing::warn!(environment = %env.name, error = %e, "cannot check drift");
                    EnvironmentDrift {
                        name: env.name.clone(),
                        account: env.account.clone(),
                        region: env.region.clone(),
                        error: Some(masker.scrub(&e.to_string())),
                        stacks: Vec::new(),
                    }
                }
            }
        }
    });
    DriftReport {
        version: JSON_VERSION,
        revision: revision.to_string(),
        environments: join_all(runs).await,
    }
}

/// The drift of one environment's stacks, with `slots` bounding the detections in flight.
pub async fn detect_environment(
    session: &Session,
    env: &DesiredEnvironment,
    masker: &Masker,
    opts: &DriftOptions,
    slots: &Semaphore,
    deadline: Instant,
) -> EnvironmentDrift {
    note_secrets(session, env, masker).await;
    let sessions: BTreeMap<&str, Session> = env
        .units
        .values()
        .map(|u| (u.region.as_str(), session.in_region(&u.region)))
        .collect();
    let stacks = join_all(env.units.values().map(|u| {
        let cfn = &sessions[u.region.as_str()].cfn;
        detect_stack(cfn, u, masker, opts, slots, deadline)
    }))
    .await;
    EnvironmentDrift {
        name: env.name.clone(),
        account: env.account.clone(),
        region: env.region.clone(),
        error: None,
        stacks,
    }
}

/// Tells the masker the secrets the environment's stacks are given: NoEcho values written in
/// the config, and the SecureStrings of the SSM parameters it reads. Without the latter (no
/// permission, say), secret properties are still masked where the template marks them.
async fn note_secrets(session: &Session, env: &DesiredEnvironment, masker: &Masker) {
    for unit in env.units.values() {
        note_literal_secrets(unit, masker);
    }
    let by_region = crate::plan::inputs::ssm_names_by_region(env.units.values());
    for (region, names) in by_region {
        note_ssm_secrets(&session.in_region(&region), env, &names, masker).await;
    }
}

/// Tells the masker the SecureStrings among the SSM parameters `names` of `session`'s region.
async fn note_ssm_secrets(
    session: &Session,
    env: &DesiredEnvironment,
    names: &[String],
    masker: &Masker,
) {
    match session.ssm.get(names).await {
        Ok(values) => {
            for v in values.found.values().filter(|v| v.secret) {
                masker.add(&v.value);
            }
        }
        Err(e) => tracing::warn!(
            environment = %env.name,
            error = %masker.scrub(&e.to_string()),
            "the SSM parameters the config reads could not be read; secret values are masked \
             only where templates mark them secret"
        ),
    }
}

/// The drift of one stack, masked.
pub async fn detect_stack(
    cfn: &Cfn,
    unit: &Unit,
    masker: &Masker,
    opts: &DriftOptions,
    slots: &Semaphore,
    deadline: Instant,
) -> StackDrift {
    let mut out = StackDrift::bare(&unit.stack, &unit.stack_name, DriftState::Failed);
    if let Err(e) = check(cfn, unit, opts, slots, deadline, &mut out).await {
        tracing::warn!(
            environment = %unit.environment,
            stack = %unit.stack_name,
            error = %masker.scrub(&e.to_string()),
            "drift detection failed"
        );
        out.status = DriftState::Failed;
        out.reason = Some(e.to_string());
    }
    mask_stack(out, unit.template.parsed(), masker)
}

async fn check(
    cfn: &Cfn,
    unit: &Unit,
    opts: &DriftOptions,
    slots: &Semaphore,
    deadline: Instant,
    out: &mut StackDrift,
) -> Result<(), DriftError> {
    let name = unit.stack_name.as_str();
    let Some(info) = cfn.describe_stack(name).await? else {
        out.status = DriftState::NotDeployed;
        return Ok(());
    };
    if info.status == "REVIEW_IN_PROGRESS" {
        out.status = DriftState::NotDeployed;
        out.reason = Some("only created for a change set that was never executed".to_string());
        return Ok(());
    }
    let status = {
        let _slot = slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if Instant::now() >= deadline {
            return Err(DriftError::NotStarted {
                seconds: opts.timeout.as_secs(),
            });
        }
        let id = cfn.detect_stack_drift(name).await?;
        tracing::info!(
            environment = %unit.environment,
            stack = name,
            detection = %id,
            "drift detection started"
        );
        out.detection_id = Some(id.clone());
        wait(cfn, &id, opts, deadline).await?
    };
    tracing::info!(
        environment = %unit.environment,
        stack = name,
        status = %status.detection_status,
        drift = status.stack_drift_status.as_deref().unwrap_or("-"),
        "drift detection ended"
    );
    out.checked_at = status.timestamp.clone();
    let drift = status.stack_drift_status.as_deref();
    (out.status, out.reason) = match (status.detection_status.as_str(), drift) {
        ("DETECTION_FAILED", _) => (
            DriftState::Failed,
            Some(
                status
                    .reason
                    .clone()
                    .unwrap_or_else(|| "CloudFormation gave no reason".to_string()),
            ),
        ),
        (_, Some("DRIFTED")) => (DriftState::Drifted, None),
        (_, Some("IN_SYNC")) => (DriftState::InSync, None),
        (_, other) => (
            DriftState::Unknown,
            Some(status.reason.clone().unwrap_or_else(|| {
                format!(
                    "CloudFormation reported the stack's drift as {}",
                    other.unwrap_or("nothing")
                )
            })),
        ),
    };
    // A failed detection still has results for the resources it checked.
    if drift == Some("DRIFTED") {
        out.resources = cfn
            .resource_drifts(name)
            .await?
            .into_iter()
            .map(resource)
            .collect();
    }
    Ok(())
}

/// Polls a detection until it ends, the wait doubling from `first_poll` to `max_poll`.
async fn wait(
    cfn: &Cfn,
    id: &str,
    opts: &DriftOptions,
    deadline: Instant,
) -> Result<DriftDetectionStatus, DriftError> {
    let mut interval = opts.first_poll;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(interval.min(left)).await;
        let status = cfn.drift_detection_status(id).await?;
        if !status.in_progress() {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(DriftError::Timeout {
                id: id.to_string(),
                seconds: opts.timeout.as_secs(),
            });
        }
        interval = (interval * 2).min(opts.max_poll.max(opts.first_poll));
    }
}

fn resource(r: ResourceDriftInfo) -> ResourceDrift {
    ResourceDrift {
        logical_id: r.logical_id,
        resource_type: r.resource_type,
        physical_id: r.physical_id.filter(|p| !p.is_empty()),
        status: r.status.to_ascii_lowercase(),
        differences: r
            .differences
            .into_iter()
            .map(|d| PropertyDrift {
                path: d.path,
                expected: d.expected,
                actual: d.actual,
                difference_type: d.difference_type.to_ascii_lowercase(),
                masked: false,
            })
            .collect(),
    }
}
