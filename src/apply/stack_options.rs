//! Stack options at apply: termination protection and the stack policy, which no change set
//! carries, set after the stack's operation; the stack policy's stand-in while an update runs,
//! and the policy set back whatever the update came to; and an update of the options alone
//! (UpdateStack keeping the template and parameter values) when only they change.

use super::stack_ops::{Outcome, RunContext, request_token};
use crate::aws::cfn::OptionsUpdate;
use crate::desired::{OptionKind, Phase, StackOptions, Unit};
use crate::plan::model::{OptionChange, UnitPlan};
use crate::store::{Store, UnitState};

impl<S: Store> RunContext<S> {
    /// The desired options of the plan's stack, from the config being applied.
    fn desired_options(&self, u: &UnitPlan) -> Option<StackOptions> {
        self.planner
            .environment()
            .units
            .get(&u.stack)
            .map(|unit| unit.options.clone())
    }

    /// The option changes being applied to `u`: its re-planned version's, else the plan's.
    fn option_changes(&self, u: &UnitPlan) -> Vec<OptionChange> {
        self.replanned_of(&u.stack)
            .map_or_else(|| u.options.clone(), |p| p.options)
    }

    /// Sets the options no change set carries (termination protection, stack policy) as the
    /// plan's changes say, once the stack's operation succeeded.
    pub(super) async fn set_direct_options(&self, u: &UnitPlan) -> Result<(), String> {
        let Some(wanted) = self.desired_options(u) else {
            return Ok(());
        };
        let cfn = &self.session_of(u).cfn;
        for c in self.option_changes(u) {
            if c.kind != OptionKind::Direct {
                continue;
            }
            let done = match c.option.as_str() {
                "termination_protection" => {
                    let on = wanted.termination_protection.unwrap_or(false);
                    cfn.update_termination_protection(&u.stack_name, on).await
                }
                "stack_policy" => match &wanted.stack_policy {
                    Some(p) => cfn.set_stack_policy(&u.stack_name, p).await,
                    None => Ok(()),
                },
                _ => Ok(()),
            };
            done.map_err(|e| {
                format!(
                    "the stack's operation succeeded but setting its {} failed: {}",
                    c.option,
                    self.masker.scrub(&e.to_string())
                )
            })?;
        }
        Ok(())
    }

    /// Before an update: sets the policy that stands in for the stack policy while it runs,
    /// when the config has one. `Ok(true)` when it was set (the stack policy must be set back).
    pub(super) async fn begin_update_policy(&self, u: &UnitPlan) -> Result<bool, String> {
        // A new stack (created, or made by importing) has no policy to stand in for.
        let creates = u.action == crate::plan::model::Action::Create;
        let Some(during) = self
            .desired_options(u)
            .and_then(|o| o.stack_policy_during_update)
        else {
            return Ok(false);
        };
        if creates {
            return Ok(false);
        }
        self.session_of(u)
            .cfn
            .set_stack_policy(&u.stack_name, &during)
            .await
            .map_err(|e| {
                format!(
                    "not executed: setting the stack policy for the update failed: {}",
                    self.masker.scrub(&e.to_string())
                )
            })?;
        Ok(true)
    }

    /// After an update that ran under a stand-in policy: the stack policy set back, whatever
    /// the update came to. A failure is added to the outcome's message (the next plan shows the
    /// policy to set).
    pub(super) async fn end_update_policy(&self, u: &UnitPlan, outcome: &mut Outcome) {
        let Some(policy) = self.desired_options(u).and_then(|o| o.stack_policy) else {
            return;
        };
        if let Err(e) = self
            .session_of(u)
            .cfn
            .set_stack_policy(&u.stack_name, &policy)
            .await
        {
            let note = format!(
                "setting the stack policy back after the update failed ({}); the next plan shows it to set",
                self.masker.scrub(&e.to_string())
            );
            tracing::error!(stack = %u.stack, "{note}");
            outcome.message = Some(match outcome.message.take() {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
    }

    /// Applies a plan that changes the stack's options alone.
    pub(super) async fn apply_options_only(&self, u: &UnitPlan, unit: &Unit) -> Outcome {
        let changes = self.option_changes(u);
        let carried = changes.iter().any(|c| c.kind == OptionKind::ChangeSet);
        if let Err(m) = self.run_hooks(u, Phase::BeforeApply).await {
            return Outcome::new(UnitState::Failed, Some(m));
        }
        if !carried {
            return match self.set_direct_options(u).await {
                Ok(()) => {
                    self.remember_applied(u).await;
                    self.after_hooks(u, describe(&changes)).await
                }
                Err(m) => Outcome::new(UnitState::Failed, Some(m)),
            };
        }
        let parameters = match self.session_of(u).cfn.describe_stack(&u.stack_name).await {
            Ok(Some(s)) => s.parameters.into_keys().collect(),
            Ok(None) => {
                return Outcome::new(
                    UnitState::Failed,
                    Some("the stack no longer exists; plan again".into()),
                );
            }
            Err(e) => return Outcome::new(UnitState::Failed, Some(e.to_string())),
        };
        let o = &unit.options;
        let update = OptionsUpdate {
            stack_name: u.stack_name.clone(),
            parameters,
            capabilities: unit.capabilities.iter().copied().collect(),
            role_arn: o.service_role.clone(),
            notification_arns: o.notification_arns.clone(),
            rollback: o
                .rollback
                .as_ref()
                .map(|r| (r.alarms.clone(), r.monitoring_minutes)),
        };
        let _slot = self.slots.acquire().await.expect("never closed");
        let token = request_token(&self.run.id, &u.stack);
        self.put(u, UnitState::Executing, |r| {
            r.client_request_token = Some(token.clone());
            r.message = Some("updating its stack options".into());
        })
        .await;
        self.observer.unit(
            &u.stack,
            UnitState::Executing,
            Some("updating its stack options"),
        );
        match self
            .session_of(u)
            .cfn
            .update_stack_options(&update, &token)
            .await
        {
            Ok(true) => {
                let mut outcome = self.wait(u, &token, false).await;
                if outcome.state == UnitState::Applied && outcome.message.is_none() {
                    outcome.message = Some(describe(&changes));
                }
                outcome
            }
            Ok(false) => match self.set_direct_options(u).await {
                Ok(()) => self.after_hooks(u, describe(&changes)).await,
                Err(m) => Outcome::new(UnitState::Failed, Some(m)),
            },
            Err(e) => Outcome::new(UnitState::Failed, Some(self.masker.scrub(&e.to_string()))),
        }
    }
}

impl<S: Store> RunContext<S> {
    /// The outcome of an applied stack once its `after_apply` hooks ran.
    async fn after_hooks(&self, u: &UnitPlan, done: String) -> Outcome {
        match self.run_hooks(u, Phase::AfterApply).await {
            Ok(()) => Outcome::new(UnitState::Applied, Some(done)),
            Err(m) => Outcome::new(
                UnitState::Failed,
                Some(format!("the stack was applied, but {m}")),
            ),
        }
    }
}

/// What an update of options alone did: `stack options set: termination_protection, …`.
fn describe(changes: &[OptionChange]) -> String {
    let names: Vec<&str> = changes.iter().map(|c| c.option.as_str()).collect();
    format!("stack options set: {}", names.join(", "))
}
