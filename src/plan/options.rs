//! A stack's options in a plan: what the deployed stack has (DescribeStacks, and its stack
//! policy when the config manages one), which of them the config changes, and those that
//! travel with the change set.

use super::live::Planner;
use crate::aws::cfn::{ChangeSetRequest, StackInfo};
use crate::desired::{DeployedOptions, OptionChange, Rollback, StackOptions, Unit};

/// The options of `stack` as deployed; its stack policy is read only when `wanted` manages
/// one.
pub(super) async fn deployed(
    ctx: &Planner,
    region: &str,
    stack: &StackInfo,
    wanted: &StackOptions,
) -> Result<DeployedOptions, String> {
    let s = &stack.settings;
    let stack_policy = if wanted.stack_policy.is_some() {
        ctx.session_in(region)
            .cfn
            .get_stack_policy(&stack.stack_id)
            .await
            .map_err(|e| e.to_string())?
            .map(|body| canonical_policy(&body))
    } else {
        None
    };
    Ok(DeployedOptions {
        service_role: s.role_arn.clone(),
        termination_protection: s.termination_protection,
        stack_policy,
        notification_arns: s.notification_arns.clone(),
        rollback: Rollback {
            alarms: s.rollback_alarms.clone(),
            monitoring_minutes: s.rollback_monitoring_minutes,
        },
    })
}

/// A stack policy as CloudFormation returns it, in the canonical form the config's is kept in
/// (as returned when it is not JSON).
pub fn canonical_policy(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| crate::template::canonical_json(&v))
        .unwrap_or_else(|_| body.to_string())
}

/// The option changes of `unit` against the stack as deployed (`None`: it is created).
pub(super) async fn changes(
    ctx: &Planner,
    unit: &Unit,
    stack: Option<&StackInfo>,
) -> Result<Vec<OptionChange>, String> {
    let deployed = match stack {
        Some(s) => Some(deployed(ctx, &unit.region, s, &unit.options).await?),
        None => None,
    };
    Ok(unit.options.changes(deployed.as_ref()))
}

/// The unit's options that travel with its change set.
pub(super) fn add_to_request(unit: &Unit, r: &mut ChangeSetRequest) {
    let o = &unit.options;
    r.role_arn = o.service_role.clone();
    r.notification_arns = o.notification_arns.clone();
    r.rollback = o
        .rollback
        .as_ref()
        .map(|r| (r.alarms.clone(), r.monitoring_minutes));
    r.on_failure = o.on_failure.map(|f| f.as_cfn());
}
