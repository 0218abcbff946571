//! The operations of one run on its stacks: executing a stack's reviewed change set (or a
//! fresh one, when its inputs were known only now or it no longer matches), waiting for it with
//! its events, deleting a stack that left the config, and recording each step durably before
//! and after it happens, so that a crash never runs an operation twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::checks::new_destruction;
use super::recover::ended_outcome;
use super::{Observer, Options, wait};
use crate::aws::Session;
use crate::desired::{DependencyKind, Phase};
use crate::lease::LossSignal;
use crate::plan::evidence;
use crate::plan::live::Planner;
use crate::plan::model::{Action, UnitPlan};
use crate::secrets::Masker;
use crate::store::{Run, StackSeen, Store, UnitResult, UnitState, now};

/// What one stack came to.
#[derive(Clone, Debug)]
pub(super) struct Outcome {
    pub(super) state: UnitState,
    pub(super) message: Option<String>,
    /// For a failed stack, itself; for a skipped one, the failed stack it waited on.
    pub(super) failed_stack: Option<String>,
    /// For a stack held back by a gate (or waiting for one that is), the gate.
    pub(super) gate: Option<String>,
}

impl Outcome {
    pub(super) fn new(state: UnitState, message: Option<String>) -> Outcome {
        Outcome {
            state,
            message,
            failed_stack: None,
            gate: None,
        }
    }
}

/// What every stack of one run shares.
pub(super) struct RunContext<S: Store> {
    pub(super) session: Session,
    pub(super) store: Arc<S>,
    pub(super) run: Run,
    pub(super) planner: Arc<Planner>,
    pub(super) observer: Arc<dyn Observer>,
    pub(super) options: Options,
    /// Units whose reviewed change set no longer matches (re-planned: `options.replan`).
    pub(super) stale: BTreeSet<String>,
    /// Units an earlier run of the same plan applied.
    pub(super) done_before: HashMap<String, UnitResult>,
    pub(super) slots: Arc<Semaphore>,
    pub(super) lost: LossSignal,
    pub(super) replanned: std::sync::Mutex<Vec<UnitPlan>>,
    /// The record of each unit as last written in this run (what `record` builds on).
    pub(super) written: std::sync::Mutex<HashMap<String, UnitResult>>,
    pub(super) masker: Arc<Masker>,
    /// Where hooks run: a checkout of the commit applied.
    pub(super) workdir: Option<std::path::PathBuf>,
    /// The commit applied.
    pub(super) commit: String,
}

impl<S: Store> RunContext<S> {
    /// The clients for a planned stack, in its region.
    pub(super) fn session_of(&self, u: &UnitPlan) -> Session {
        super::session_of(&self.session, u)
    }

    fn timeout(&self, stack: &str) -> Duration {
        self.planner
            .environment()
            .units
            .get(stack)
            .and_then(|u| u.timeout_minutes)
            .map(|m| Duration::from_secs(m * 60))
            .unwrap_or(self.options.stack_timeout)
    }

    pub(super) async fn put(
        &self,
        u: &UnitPlan,
        state: UnitState,
        f: impl FnOnce(&mut UnitResult),
    ) {
        let mut r = UnitResult {
            run_id: self.run.id.clone(),
            stack: u.stack.clone(),
            stack_name: u.stack_name.clone(),
            state,
            change_set_id: u.change_set.as_ref().map(|c| c.id.clone()),
            client_request_token: None,
            replanned: false,
            message: None,
            started_at: Some(now()),
            finished_at: None,
        };
        f(&mut r);
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.stack.clone(), r.clone());
        if let Err(e) = self.store.put_unit(&r).await {
            tracing::error!(stack = %u.stack, error = %e, "could not record the stack's state");
        }
    }

    /// Records how a unit ended.
    pub(super) async fn record(&self, u: &UnitPlan, o: &Outcome) {
        let message = o.message.as_deref().map(|m| self.masker.scrub(m));
        self.observer.unit(&u.stack, o.state, message.as_deref());
        let replanned = self.replanned_of(&u.stack);
        let prior = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&u.stack)
            .cloned();
        self.put(u, o.state, |r| {
            if let Some(p) = prior {
                r.client_request_token = p.client_request_token;
                r.started_at = p.started_at;
                r.change_set_id = p.change_set_id;
            }
            if let Some(p) = replanned {
                r.replanned = true;
                r.change_set_id = p.change_set.map(|c| c.id);
            }
            r.message = message;
            r.finished_at = Some(now());
        })
        .await;
    }

    /// Applies one create or update.
    pub(super) async fn run_unit(&self, u: &UnitPlan) -> Outcome {
        if let Some(prev) = self.done_before.get(&u.stack) {
            return Outcome::new(
                UnitState::Applied,
                Some(format!("applied by run {} of this plan", prev.run_id)),
            );
        }
        if self.lost.is_lost() {
            return Outcome::new(
                UnitState::Skipped,
                Some("not started: the environment's lock was lost".into()),
            );
        }
        let needs_fresh = u.action == Action::Pending
            || !u.inputs.is_empty()
            || self.stale.contains(&u.stack)
            || self.upstream_applied(&u.stack);
        let change_set = if needs_fresh {
            match self.replan(u).await {
                Ok(Some(cs)) => cs,
                Ok(None) if self.replanned_options_only(u) => {
                    return self.options_only(u).await;
                }
                Ok(None) => {
                    return Outcome::new(
                        UnitState::NoChange,
                        (!u.inputs.is_empty() || u.action == Action::Pending)
                            .then(|| "no changes once its inputs were known".to_string()),
                    );
                }
                Err(message) => {
                    return Outcome::new(UnitState::Failed, Some(message));
                }
            }
        } else {
            match (&u.action, &u.change_set) {
                (Action::NoChange, _) => {
                    return Outcome::new(UnitState::NoChange, None);
                }
                (Action::Update, None) if u.options_only() => {
                    return self.options_only(u).await;
                }
                (_, Some(cs)) => cs.id.clone(),
                (a, None) => {
                    return Outcome::new(
                        UnitState::Failed,
                        Some(format!("the plan has no change set for it ({a:?})")),
                    );
                }
            }
        };
        self.execute(u, &change_set).await
    }

    /// The fresh plan of `stack` made during this run, if any.
    pub(super) fn replanned_of(&self, stack: &str) -> Option<UnitPlan> {
        self.replanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|p| p.stack == stack)
            .cloned()
    }

    /// Whether the fresh plan of `u` made during this run changes its options alone.
    fn replanned_options_only(&self, u: &UnitPlan) -> bool {
        self.replanned_of(&u.stack)
            .is_some_and(|p| p.options_only())
    }

    /// Applies an update of the stack's options alone.
    async fn options_only(&self, u: &UnitPlan) -> Outcome {
        match self.planner.environment().units.get(&u.stack) {
            Some(unit) => self.apply_options_only(u, unit).await,
            None => Outcome::new(
                UnitState::Failed,
                Some("the stack is no longer in the config".into()),
            ),
        }
    }

    /// Whether a stack this one takes values from (outputs, exports, SSM parameters) was applied
    /// in this run. The plan judged which of its outputs may change; the values are read again
    /// rather than trusting the judgement.
    fn upstream_applied(&self, stack: &str) -> bool {
        let Some(unit) = self.planner.environment().units.get(stack) else {
            return false;
        };
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        unit.dependencies.iter().any(|d| {
            matches!(
                d.kind,
                DependencyKind::Output { .. }
                    | DependencyKind::Import { .. }
                    | DependencyKind::SsmParameter { .. }
            ) && written
                .get(&d.stack)
                .is_some_and(|r| r.state == UnitState::Applied)
        })
    }

    /// Makes a fresh change set for a unit now that its inputs are known (or its reviewed one
    /// went stale). `Ok(None)`: nothing to change.
    async fn replan(&self, u: &UnitPlan) -> Result<Option<String>, String> {
        let env = self.planner.environment();
        let Some(unit) = env.units.get(&u.stack) else {
            return Err("the stack is no longer in the config".into());
        };
        // The stacks it takes outputs from may have just changed.
        for d in &unit.dependencies {
            if let Some(src) = env.units.get(&d.stack) {
                self.planner.forget_stack(&src.stack_name);
            }
        }
        self.planner.forget_stack(&u.stack_name);
        // And the SSM parameters it reads that they create.
        let created: Vec<String> = unit
            .dependencies
            .iter()
            .filter_map(|d| match &d.kind {
                DependencyKind::SsmParameter { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        if let Err(e) = self.planner.reread_ssm(&unit.region, &created).await {
            return Err(format!("reading its SSM parameters again: {e}"));
        }
        let fresh = self
            .planner
            .plan_unit(unit, u.reasons.clone(), &BTreeMap::new())
            .await;
        self.observer.replanned(&fresh);
        let result = match fresh.action {
            Action::NoChange => Ok(None),
            Action::Create | Action::Update => {
                let destructive = new_destruction(u, &fresh);
                if !destructive.is_empty() {
                    let question = format!(
                        "the change set made now for `{}` {} — which the reviewed plan did not show. Go ahead?",
                        u.stack,
                        destructive.join(", ")
                    );
                    if !(self.options.assume_yes || self.observer.confirm(&question)) {
                        return Err(format!(
                            "not applied: the change set made now {}, which the reviewed plan did not show; review a new plan, or confirm with --yes",
                            destructive.join(", ")
                        ));
                    }
                }
                Ok(fresh.change_set.as_ref().map(|c| c.id.clone()))
            }
            Action::Pending => Err(format!(
                "its inputs are still not known: {}",
                fresh.message.clone().unwrap_or_default()
            )),
            _ => Err(fresh
                .message
                .clone()
                .unwrap_or_else(|| "it could not be planned".into())),
        };
        self.replanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fresh);
        result
    }

    /// Executes a change set and waits for the stack.
    async fn execute(&self, u: &UnitPlan, change_set: &str) -> Outcome {
        let _slot = self.slots.acquire().await.expect("never closed");
        if let Err(m) = self.run_hooks(u, Phase::BeforeApply).await {
            return Outcome::new(UnitState::Failed, Some(m));
        }
        let token = request_token(&self.run.id, &u.stack);
        // Recorded before it is sent: after a crash, the next run waits for this operation
        // instead of starting another.
        self.put(u, UnitState::Executing, |r| {
            r.change_set_id = Some(change_set.to_string());
            r.client_request_token = Some(token.clone());
        })
        .await;
        self.observer.unit(&u.stack, UnitState::Executing, None);
        let stand_in = match self.begin_update_policy(u).await {
            Ok(set) => set,
            Err(m) => return Outcome::new(UnitState::Failed, Some(m)),
        };
        let mut outcome = match self
            .session_of(u)
            .cfn
            .execute_change_set(change_set, &token)
            .await
        {
            Err(e) => Outcome::new(UnitState::Failed, Some(self.masker.scrub(&e.to_string()))),
            Ok(()) => self.wait(u, &token, false).await,
        };
        if stand_in {
            self.end_update_policy(u, &mut outcome).await;
        }
        outcome
    }

    pub(super) async fn wait(&self, u: &UnitPlan, token: &str, deleting: bool) -> Outcome {
        let observer = self.observer.clone();
        let stack = u.stack.clone();
        // The stack the change set belongs to, by its id where known: a name can stand for
        // another stack by the time the operation runs (one deleted and made anew).
        let target = match (&u.change_set, deleting) {
            (Some(c), false) => c.stack_id.as_deref().unwrap_or(&u.stack_name),
            _ => &u.stack_name,
        };
        let ended = wait::wait_for_stack(
            &self.session_of(u).cfn,
            target,
            token,
            self.timeout(&u.stack),
            &move |e| observer.event(&stack, e),
        )
        .await;
        self.planner.forget_stack(&u.stack_name);
        let outcome = match ended {
            Ok(e) => ended_outcome(&e, &u.stack_name, deleting),
            Err(e) => Outcome::new(UnitState::Failed, Some(self.masker.scrub(&e.to_string()))),
        };
        if outcome.state == UnitState::Applied && !deleting {
            if let Err(m) = self.set_direct_options(u).await {
                return Outcome::new(UnitState::Failed, Some(m));
            }
            self.remember_applied(u).await;
            if let Err(m) = self.run_hooks(u, Phase::AfterApply).await {
                return Outcome::new(
                    UnitState::Failed,
                    Some(format!("the stack was applied, but {m}")),
                );
            }
        }
        outcome
    }

    /// Records what the stack now is, with the desired state it was brought to, so that a plan
    /// finding both unchanged makes no call for it. Best effort: without the record the next
    /// plan reads the stack.
    pub(super) async fn remember_applied(&self, u: &UnitPlan) {
        let fingerprint = self
            .replanned_of(&u.stack)
            .map_or_else(|| u.fingerprint.clone(), |p| p.fingerprint);
        let Some(fingerprint) = fingerprint else {
            return;
        };
        let stack = match self.session_of(u).cfn.describe_stack(&u.stack_name).await {
            Ok(Some(s)) if evidence::at_rest(&s.status) => s,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(stack = %u.stack, error = %e, "could not describe the applied stack to record it");
                return;
            }
        };
        let record = StackSeen {
            environment: self.run.environment.clone(),
            stack: u.stack.clone(),
            fingerprint,
            stamp: evidence::stamp(&stack),
            at: now(),
        };
        if let Err(e) = self.store.set_stacks_seen(&[record]).await {
            tracing::warn!(stack = %u.stack, error = %e, "could not record the applied stack");
        }
    }

    /// Deletes a stack that left the config.
    pub(super) async fn delete_unit(&self, u: &UnitPlan) -> Outcome {
        if let Some(prev) = self.done_before.get(&u.stack) {
            return Outcome::new(
                UnitState::Deleted,
                Some(format!("deleted by run {} of this plan", prev.run_id)),
            );
        }
        match self.session_of(u).cfn.describe_stack(&u.stack_name).await {
            Ok(None) => {
                return Outcome::new(UnitState::NoChange, Some("the stack does not exist".into()));
            }
            Ok(Some(_)) => {}
            Err(e) => {
                return Outcome::new(UnitState::Failed, Some(e.to_string()));
            }
        }
        let _slot = self.slots.acquire().await.expect("never closed");
        let token = request_token(&self.run.id, &u.stack);
        self.put(u, UnitState::Executing, |r| {
            r.client_request_token = Some(token.clone());
            r.change_set_id = None;
            r.message = Some("deleting".into());
        })
        .await;
        self.observer
            .unit(&u.stack, UnitState::Executing, Some("deleting"));
        if let Err(e) = self
            .session_of(u)
            .cfn
            .delete_stack(&u.stack_name, &token)
            .await
        {
            return Outcome::new(UnitState::Failed, Some(e.to_string()));
        }
        self.wait(u, &token, true).await
    }
}

/// A client request token for an operation on a stack in a run: CloudFormation's limit is 128
/// characters of letters, digits and hyphens.
pub(super) fn request_token(run_id: &str, stack: &str) -> String {
    let raw = format!("formwork-{run_id}-{stack}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_cloudformation_safe() {
        let t = request_token("r20261122-010203-abcd", "db_main");
        assert_eq!(t, "formwork-r20261122-010203-abcd-db-main");
        assert!(request_token(&"x".repeat(200), "s").len() <= 128);
    }
}
