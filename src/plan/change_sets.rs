//! formwork's change sets: their names (derived from the commit and the stack's config digest,
//! so that a re-run finds its own), their descriptions (which say the plan and the origin that
//! made them), making one or using again one a re-run of the same plan made, reading one into
//! the plan's resource changes, and cleaning up those of older plans or of a closed pull
//! request.

use std::collections::BTreeMap;

use super::inputs::Resolved;
use super::live::Planner;
use super::model::*;
use crate::aws::Aws;
use crate::aws::cfn::{
    Cfn, ChangeSetInfo, ChangeSetRequest, ChangeSetSummary, ResourceChangeInfo, StackInfo,
};
use crate::desired::DesiredEnvironment;
use crate::secrets::Masker;

/// Makes the change set `request` asks for and waits for it. One of the same name (an earlier
/// run of the same commit and config made it) is used again when it was made with the same
/// inputs after the stack last changed; NoEcho values cannot be compared, so then it is made
/// anew.
pub(super) async fn create_or_reuse(
    ctx: &Planner,
    region: &str,
    request: &ChangeSetRequest,
    resolved: &Resolved,
    stack: Option<&StackInfo>,
) -> Result<ChangeSetInfo, String> {
    let cfn = &ctx.session_in(region).cfn;
    let create_and_wait = || async {
        let (id, _) = cfn.create_change_set(request).await?;
        cfn.wait_change_set(&id, ctx.options.change_set_timeout)
            .await
    };
    match create_and_wait().await {
        Ok(info) => Ok(info),
        Err(e)
            if e.code_and_message()
                .is_some_and(|(c, _)| c == Some("AlreadyExistsException")) =>
        {
            let existing = cfn
                .describe_change_set_named(&request.stack_name, &request.change_set_name)
                .await
                .map_err(|e| e.to_string())?;
            let parameters: BTreeMap<String, String> = request.parameters.iter().cloned().collect();
            let reusable = !resolved.has_no_echo()
                && existing.status == "CREATE_COMPLETE"
                && existing.execution_status.as_deref() == Some("AVAILABLE")
                && existing.parameters == parameters
                && !is_later(
                    stack.and_then(|s| s.last_updated.as_deref()),
                    existing.creation_time.as_deref(),
                );
            if reusable {
                return Ok(existing);
            }
            cfn.delete_change_set_and_wait(&existing.id)
                .await
                .map_err(|e| e.to_string())?;
            create_and_wait().await.map_err(|e| e.to_string())
        }
        // moto refuses an empty change set at once, as UpdateStack would ("No updates are to be
        // performed."), where CloudFormation makes one and fails it: the same answer, with no
        // change set to delete.
        Err(e)
            if e.code_and_message().is_some_and(|(c, m)| {
                c == Some("ValidationError") && m.contains("No updates are to be performed")
            }) =>
        {
            Ok(ChangeSetInfo {
                name: request.change_set_name.clone(),
                status: "FAILED".into(),
                status_reason: Some("No updates are to be performed.".into()),
                ..ChangeSetInfo::default()
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Prefix of the names of change sets formwork creates.
pub const CHANGE_SET_PREFIX: &str = "formwork-";

/// The change set name for a commit and a stack's config hash.
pub fn change_set_name(commit: &str, config_hash: &str) -> String {
    let c = &commit[..commit.len().min(12)];
    let h = &config_hash[..config_hash.len().min(12)];
    format!("{CHANGE_SET_PREFIX}{c}-{h}")
}

/// The description formwork gives its change sets; [`origin_of`] reads the origin back.
pub fn change_set_description(plan_id: &str, commit: &str, origin: &str) -> String {
    format!("formwork plan {plan_id}; commit {commit}; origin {origin}")
}

/// The origin written into a formwork change set description.
pub fn origin_of(description: &str) -> Option<&str> {
    description
        .strip_prefix("formwork plan ")?
        .split("; ")
        .find_map(|part| part.strip_prefix("origin "))
}

/// Whether a change set was made by a formwork plan of `origin`.
fn made_by(cs: &ChangeSetSummary, origin: &str) -> bool {
    cs.name.starts_with(CHANGE_SET_PREFIX)
        && cs.description.as_deref().and_then(origin_of) == Some(origin)
}

/// Deletes every change set that plans of `origin` (a pull request: `pr-N`) made for the stacks
/// of `env` and that was never executed; returns how many were deleted. For a pull request
/// closed without merging.
pub async fn delete_change_sets_of_origin(
    aws: &Aws,
    env: &DesiredEnvironment,
    origin: &str,
) -> Result<usize, crate::aws::AwsError> {
    let session = aws.session(&env.target()).await?;
    let mut deleted = 0;
    for unit in env.units.values() {
        let cfn = &session.in_region(&unit.region).cfn;
        let Some(stack) = cfn.describe_stack(&unit.stack_name).await? else {
            continue;
        };
        for cs in cfn.list_change_sets(&stack).await? {
            // (The listing holds only the stack's own, by its id or its name.)
            let ours =
                made_by(&cs, origin) && cs.execution_status.as_deref() != Some("EXECUTE_COMPLETE");
            if ours {
                cfn.delete_change_set(&cs.id).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

/// Deletes the stack's change sets left by older plans of `origin`, keeping `keep`.
pub(super) async fn clean_stale(cfn: &Cfn, origin: &str, stack: &StackInfo, keep: &str) {
    let list = match cfn.list_change_sets(stack).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(stack = %stack.name, error = %e, "could not list change sets to clean up");
            return;
        }
    };
    for cs in list {
        if cs.name != keep && made_by(&cs, origin) {
            tracing::info!(stack = %stack.name, change_set = %cs.name, "deleting a change set of an older plan");
            if let Err(e) = cfn.delete_change_set(&cs.id).await {
                tracing::warn!(stack = %stack.name, change_set = %cs.name, error = %e, "could not delete an older change set");
            }
        }
    }
}

fn resource_action(a: &str) -> ResourceAction {
    match a {
        "Add" => ResourceAction::Add,
        "Remove" => ResourceAction::Remove,
        "Import" => ResourceAction::Import,
        "Dynamic" => ResourceAction::Dynamic,
        _ => ResourceAction::Modify,
    }
}

fn recreation(r: Option<&str>) -> Option<RequiresRecreation> {
    match r? {
        "Always" => Some(RequiresRecreation::Always),
        "Conditionally" => Some(RequiresRecreation::Conditionally),
        "Never" => Some(RequiresRecreation::Never),
        _ => None,
    }
}

/// The resource changes of a change set, with replacement and details filled in from formwork's
/// own analysis where the endpoint leaves them out, every value scrubbed of secrets.
pub fn merge_changes(
    changes: &[ResourceChangeInfo],
    offline: &[ResourceChange],
    masker: &Masker,
) -> Vec<ResourceChange> {
    let mut out = Vec::new();
    for c in changes {
        let ours = offline.iter().find(|o| o.logical_id == c.logical_id);
        let action = resource_action(&c.action);
        let from_cfn = match c.replacement.as_deref() {
            Some("True") => Some(Replacement::True),
            Some("False") => Some(Replacement::False),
            Some("Conditional") => Some(Replacement::Conditional),
            _ => None,
        };
        let (replacement, replacement_source) = match (from_cfn, ours) {
            (Some(r), _) => (r, ReplacementSource::Cloudformation),
            (None, Some(o)) if action == ResourceAction::Modify => {
                (o.replacement, ReplacementSource::Predicted)
            }
            (None, _) => (Replacement::Unknown, ReplacementSource::Cloudformation),
        };
        let details: Vec<ChangeDetail> = if c.details.is_empty() {
            ours.map(|o| o.details.clone()).unwrap_or_default()
        } else {
            c.details
                .iter()
                .map(|d| ChangeDetail {
                    attribute: d.attribute.clone().unwrap_or_default(),
                    name: d.name.clone(),
                    requires_recreation: recreation(d.requires_recreation.as_deref()),
                    evaluation: d.evaluation.clone(),
                    change_source: d.change_source.clone(),
                    causing_entity: d.causing_entity.clone(),
                    before: masker.scrub_opt(d.before_value.as_deref()),
                    after: masker.scrub_opt(d.after_value.as_deref()),
                })
                .collect()
        };
        let scope = if c.scope.is_empty() {
            ours.map(|o| o.scope.clone()).unwrap_or_default()
        } else {
            c.scope.clone()
        };
        out.push(ResourceChange {
            logical_id: c.logical_id.clone(),
            physical_id: c.physical_id.clone(),
            resource_type: c.resource_type.clone(),
            action,
            replacement,
            replacement_source,
            scope,
            details,
            // CloudFormation evaluated the conditions: the change set holds what happens.
            condition: None,
        });
    }
    out.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    out
}

/// Whether time `a` is after time `b` (both RFC 3339); unknown times are not.
fn is_later(a: Option<&str>, b: Option<&str>) -> bool {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    match (a, b) {
        (Some(a), Some(b)) => match (
            DateTime::from_str(a, Format::DateTime),
            DateTime::from_str(b, Format::DateTime),
        ) {
            (Ok(a), Ok(b)) => a > b,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_set_names_and_descriptions_round_trip() {
        let n = change_set_name("0123456789abcdef0123", "fedcba9876543210");
        assert_eq!(n, "formwork-0123456789ab-fedcba987654");
        assert!(n.len() <= 128 && n.chars().next().unwrap().is_ascii_alphabetic());
        let d = change_set_description("p1", "abc", "pr-42");
        assert_eq!(origin_of(&d), Some("pr-42"));
        assert_eq!(origin_of("made by hand"), None);
    }
}
