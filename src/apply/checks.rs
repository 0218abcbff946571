//! Before anything is touched: each stack of the plan checked against what is deployed and
//! configured now (its change set still there and unexecuted, the stack unchanged since the
//! plan, its config digest the current one), and what a fresh change set destroys that the
//! reviewed plan did not show.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{ApplyError, Request};
use crate::aws::Session;
use crate::plan::model::{Action, Replacement, ResourceAction, UnitPlan};
use crate::store::UnitResult;

/// Checks each unit of the plan against what is deployed and configured now; returns the
/// units that no longer match, with why.
pub(super) async fn check(
    session: &Session,
    req: &Request,
    units: &[UnitPlan],
    done_before: &HashMap<String, UnitResult>,
    allow_delete: bool,
) -> Result<BTreeMap<String, String>, ApplyError> {
    let mut problems = BTreeMap::new();
    let mut refusals = Vec::new();
    for u in units {
        if done_before.contains_key(&u.stack) {
            continue;
        }
        match u.action {
            Action::Blocked | Action::Failed => refusals.push(format!(
                "{}: the plan could not plan it ({}); plan again",
                u.stack,
                u.message.as_deref().unwrap_or("no reason recorded")
            )),
            Action::Remove if !allow_delete => refusals.push(format!(
                "{}: the plan deletes stack {}, and deleting is not allowed; pass --allow-delete or set `allow_delete: true` in the environment",
                u.stack, u.stack_name
            )),
            _ => {}
        }
        for f in u.policy.iter().filter(|f| f.blocks()) {
            refusals.push(format!(
                "{}: policy rule `{}` ({}) fails{} at {}: {}; change the template, or the rule on the default branch",
                u.stack,
                f.rule,
                f.file,
                f.resource
                    .as_deref()
                    .map(|r| format!(" on {r}"))
                    .unwrap_or_default(),
                f.location(),
                f.message
            ));
        }
        if u.action == Action::Remove {
            continue;
        }
        let Some(now_unit) = req.desired.units.get(&u.stack) else {
            refusals.push(format!(
                "{}: the stack is no longer in the config of environment `{}`",
                u.stack, req.environment
            ));
            continue;
        };
        if now_unit.config_hash() != u.config_hash {
            problems.insert(
                u.stack.clone(),
                format!("{}: its config changed since the plan", u.stack),
            );
            continue;
        }
        let session = &super::session_of(session, u);
        let stack = session.cfn.describe_stack(&u.stack_name).await?;
        let last_updated = stack.as_ref().and_then(|s| s.last_updated.clone());
        // A new stack's change set made the stack (REVIEW_IN_PROGRESS); it has not changed when
        // it is still in review.
        let unchanged = match (&u.stack_status, &stack) {
            (None, None) => true,
            (None, Some(s)) => s.status == "REVIEW_IN_PROGRESS",
            (Some(_), Some(_)) => last_updated == u.last_updated,
            (Some(_), None) => false,
        };
        if !unchanged {
            problems.insert(
                u.stack.clone(),
                format!(
                    "{}: stack {} changed since the plan (then {}, now {})",
                    u.stack,
                    u.stack_name,
                    u.last_updated.as_deref().unwrap_or("absent"),
                    stack
                        .as_ref()
                        .map(|s| format!(
                            "{} at {}",
                            s.status,
                            s.last_updated.as_deref().unwrap_or("?")
                        ))
                        .unwrap_or_else(|| "absent".into())
                ),
            );
            continue;
        }
        if let (Some(then), Some(s)) = (&u.last_event, &stack) {
            let newest = session.cfn.newest_event_id(&s.stack_id).await?;
            if newest.as_deref() != Some(then.as_str()) {
                problems.insert(
                    u.stack.clone(),
                    format!(
                        "{}: stack {} had operations since the plan",
                        u.stack, u.stack_name
                    ),
                );
                continue;
            }
        }
        if let Some(cs) = &u.change_set {
            let usable = match session.cfn.describe_change_set(&cs.id).await {
                Ok(info) => {
                    info.status == "CREATE_COMPLETE"
                        && info.execution_status.as_deref() == Some("AVAILABLE")
                }
                Err(_) => false,
            };
            if !usable {
                problems.insert(
                    u.stack.clone(),
                    format!(
                        "{}: change set {} is no longer available to execute",
                        u.stack, cs.name
                    ),
                );
            }
        }
    }
    if !refusals.is_empty() {
        refusals.extend(problems.into_values());
        return Err(ApplyError::Refused {
            plan: req.plan.id.clone(),
            reasons: refusals,
        });
    }
    Ok(problems)
}

/// What a fresh plan of a unit destroys that its reviewed plan did not show: removed resources
/// and replacements.
pub fn new_destruction(reviewed: &UnitPlan, fresh: &UnitPlan) -> Vec<String> {
    let shown: BTreeSet<(String, bool)> = reviewed
        .resources
        .iter()
        .filter_map(|r| match (r.action, r.replacement) {
            (ResourceAction::Remove, _) => Some((r.logical_id.clone(), false)),
            (_, Replacement::True) => Some((r.logical_id.clone(), true)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for r in &fresh.resources {
        match (r.action, r.replacement) {
            (ResourceAction::Remove, _) if !shown.contains(&(r.logical_id.clone(), false)) => {
                out.push(format!("removes {} ({})", r.logical_id, r.resource_type));
            }
            (ResourceAction::Modify, Replacement::True)
                if !shown.contains(&(r.logical_id.clone(), true)) =>
            {
                out.push(format!("replaces {} ({})", r.logical_id, r.resource_type));
            }
            _ => {}
        }
    }
    out
}
