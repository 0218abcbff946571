//! The agent's scheduled drift checks (docs/drift.md): every `drift.interval_seconds`, the
//! deployed stacks of the environments at the default branch's head are checked for drift
//! ([`crate::drift`]); each environment's result is counted in the metrics, kept in its audit
//! trail and, when `drift.issues` is on, in its GitHub issue
//! ([`crate::github::drift_issue`]); drift found is told to the notification targets
//! ([`crate::notify::drift`]).
//!
//! When the last check ran is read from the audit trail, so a restart does not check again
//! early; one replica at a time checks (a lease in the state store).

use std::sync::Arc;
use std::time::Duration;

use super::agent::Agent;
use crate::drift::model::EnvironmentDrift;
use crate::drift::{DriftOptions, DriftState};
use crate::github::drift_issue::{self, IssueChange};
use crate::lease::{self, Subject};
use crate::store::{Event, LockError, Store, now};

/// The kind of audit event a drift check of an environment records.
pub const DRIFT_EVENT: &str = "drift_checked";

/// The lease of one check; renewed while it runs.
const CHECK_LEASE: Duration = Duration::from_secs(120);

/// Audit events read back to find the last check.
const EVENTS_READ: usize = 500;

/// Checks for drift every `drift.interval_seconds` (when it is not 0) until the agent stops.
pub async fn drift_loop(agent: Arc<Agent>) {
    let interval = Duration::from_secs(agent.config.drift.interval_seconds);
    if interval.is_zero() {
        return;
    }
    loop {
        let wait = match last_check(&agent).await {
            Ok(Some(at)) => {
                let due = at + i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
                Duration::from_millis(u64::try_from(due - now()).unwrap_or(0))
            }
            Ok(None) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(error = %e, "could not read when drift was last checked; checking now");
                Duration::ZERO
            }
        };
        tokio::time::sleep(wait).await;
        if agent.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Err(e) = check(&agent).await {
            tracing::error!(error = %agent.cx().masker.scrub(&e), "the drift check failed");
            // Not again at once: the next try is a whole interval away.
            tokio::time::sleep(interval).await;
        }
    }
}

/// When the environments' drift was last checked (ms since the epoch), by any replica.
async fn last_check(agent: &Agent) -> Result<Option<i64>, String> {
    let events = agent
        .cx()
        .store
        .events(None, EVENTS_READ)
        .await
        .map_err(|e| e.to_string())?;
    Ok(events
        .iter()
        .filter(|e| e.kind == DRIFT_EVENT)
        .map(|e| e.at)
        .max())
}

/// One check of every environment the agent works on (of those `drift.environments` names),
/// under the drift lease (another replica holding it does the check instead).
pub async fn check(agent: &Arc<Agent>) -> Result<(), String> {
    let cx = agent.cx();
    let held = match lease::hold(
        cx.store.clone(),
        Subject::Drift,
        &agent.replica,
        "checking the environments for drift",
        CHECK_LEASE,
    )
    .await
    {
        Ok(h) => h,
        Err(LockError::Held(l)) => {
            tracing::info!(holder = %l.owner, "another replica checks for drift");
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    let result = check_leased(agent).await;
    held.release(cx.store.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    result
}

async fn check_leased(agent: &Arc<Agent>) -> Result<(), String> {
    let cfg = &agent.config.drift;
    let cx = agent.cx();
    let head = agent
        .fetch()
        .await?
        .default_branch
        .ok_or("the default branch is not in the repository")?;
    let checked = agent
        .runner
        .environments_at(&head)
        .await
        .map_err(|e| e.to_string())?;
    let wanted = |name: &str| {
        let runner = &agent.runner.settings.environments;
        (runner.is_empty() || runner.iter().any(|e| e == name))
            && (cfg.environments.is_empty() || cfg.environments.iter().any(|e| e == name))
    };
    for (name, error) in checked.unresolved.iter().filter(|(n, _)| wanted(n)) {
        tracing::warn!(environment = %name, error = %cx.masker.scrub(error), "not checked for drift: its config does not resolve");
    }
    let envs: Vec<_> = checked
        .resolved
        .into_iter()
        .filter(|e| wanted(&e.name))
        .collect();
    let opts = DriftOptions {
        concurrency: cfg.concurrency,
        timeout: Duration::from_secs(cfg.timeout_minutes * 60),
        ..DriftOptions::default()
    };
    tracing::info!(environments = envs.len(), commit = %head, "checking for drift");
    let report = crate::drift::detect(&cx.aws, &envs, &head, &cx.masker, &opts).await;
    // Each environment where something drifted tells its targets and the agent's.
    crate::notify::drift::send_drift(&cx.notifier, &cx.aws, &cx.masker, &envs, &report).await;
    // The open drift issues, listed once for every environment of the check.
    let open_issues = match cfg.issues {
        false => None,
        true => match cx.gh.open_issues_labelled(&cfg.issue_label).await {
            Ok(open) => Some(open),
            Err(e) => {
                agent.metrics.github_errors.inc();
                let e = cx.masker.scrub(&e.to_string());
                tracing::warn!(error = %e, "could not list the drift issues: none is kept this time");
                None
            }
        },
    };
    for env in &report.environments {
        let (result, drifted) = outcome(env);
        agent.metrics.drift_checked(&env.name, result, drifted);
        tracing::info!(environment = %env.name, result, drifted, "drift checked");
        let issue = match &open_issues {
            Some(open) => {
                match drift_issue::keep(&cx.gh, env, &head, &cfg.issue_label, open).await {
                    Ok(change) => describe(&change),
                    Err(e) => {
                        agent.metrics.github_errors.inc();
                        let e = cx.masker.scrub(&e.to_string());
                        tracing::warn!(environment = %env.name, error = %e, "could not keep the drift issue");
                        String::new()
                    }
                }
            }
            None => String::new(),
        };
        let event = Event {
            environment: env.name.clone(),
            at: now(),
            kind: DRIFT_EVENT.to_string(),
            actor: agent.replica.clone(),
            detail: format!("commit {head}: {result}, {drifted} stack(s) drifted{issue}"),
        };
        if let Err(e) = cx.store.record_event(&event).await {
            tracing::warn!(environment = %env.name, error = %e, "could not record the drift check");
        }
    }
    Ok(())
}

/// `in_sync`, `drifted` or `failed` (something could not be checked and nothing drifted), and
/// how many stacks drifted.
fn outcome(env: &EnvironmentDrift) -> (&'static str, usize) {
    let drifted = env
        .stacks
        .iter()
        .filter(|s| s.status == DriftState::Drifted || !s.resources.is_empty())
        .count();
    let failed = env.error.is_some() || env.stacks.iter().any(|s| s.status == DriftState::Failed);
    match (drifted, failed) {
        (0, true) => ("failed", 0),
        (0, false) => ("in_sync", 0),
        (n, _) => ("drifted", n),
    }
}

fn describe(change: &IssueChange) -> String {
    match change {
        IssueChange::Opened(n) => format!("; opened issue #{n}"),
        IssueChange::Updated(n) => format!("; updated issue #{n}"),
        IssueChange::Closed(n) => format!("; closed issue #{n}"),
        IssueChange::None => String::new(),
    }
}
