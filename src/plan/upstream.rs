//! What a stack waits for from the stacks of the same plan that it depends on other than by
//! taking their outputs or the SSM parameters they create as parameters (those are
//! [`super::inputs`]): a stack it `needs:`, whose
//! name it takes, or whose export it imports. Until such a stack exists (or, for an import, has
//! the exported output), a change set for this one would fail on what is missing, so it is
//! pending and planned again during apply, once its upstream is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::live::Planner;
use super::model::{Action, UnitPlan};
use crate::desired::{DependencyKind, Unit};

/// Why `unit` must wait, one line per upstream stack (empty: it need not). `upstream` holds the
/// plans of the stacks of this run that it depends on; during apply it is empty, as they are
/// applied by then.
pub(super) async fn waits(
    ctx: &Planner,
    unit: &Unit,
    upstream: &BTreeMap<String, Arc<UnitPlan>>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for dep in &unit.dependencies {
        let Some(plan) = upstream.get(&dep.stack) else {
            continue;
        };
        let created = match plan.action {
            Action::Create => true,
            Action::Pending => plan.stack_status.is_none(),
            _ => false,
        };
        let why = match &dep.kind {
            DependencyKind::Output { .. } | DependencyKind::SsmParameter { .. } => continue,
            DependencyKind::Needs if created => format!("`{}` (needs) to be created", dep.stack),
            DependencyKind::StackName if created => {
                format!("`{}` (whose name it takes) to be created", dep.stack)
            }
            DependencyKind::Import { export, .. } if created => {
                format!("`{}` to be created and export `{export}`", dep.stack)
            }
            DependencyKind::Import { export, output } if changes(plan.action) => {
                // Exported by a stack this plan updates: pending when the output is new.
                let Some(source) = ctx.env.units.get(&dep.stack) else {
                    continue;
                };
                let cfn = ctx.session_in(&source.region).cfn;
                let info = ctx.stacks.get(&cfn, &source.stack_name).await?;
                if info.is_some_and(|i| i.outputs.contains_key(output)) {
                    continue;
                }
                format!("`{}` to be updated and export `{export}`", dep.stack)
            }
            _ => continue,
        };
        if !out.contains(&why) {
            out.push(why);
        }
    }
    Ok(out)
}

/// Whether a plan action changes the stack.
fn changes(action: Action) -> bool {
    matches!(action, Action::Update | Action::Pending)
}
