//! Planning: what applying a revision of the config would do to each affected stack.
//!
//! [`model`] is the plan itself, as rendered and recorded in the state store. [`live`] plans
//! against AWS with change sets, filling in inputs with [`inputs`] (outputs of other
//! environments' stacks with their own sessions: [`remote`]) and waiting for the stacks
//! it depends on otherwise with [`upstream`]; [`nested`] says what nested templates change;
//! [`offline`] plans from two
//! revisions of the config alone. What two versions of a template differ in (resources,
//! security, text, replacement) is asked of [`crate::template`]; secrets are kept out of every
//! output by [`crate::secrets`].

pub mod change_sets;
pub mod evidence;
pub mod inputs;
pub mod live;
pub mod model;
mod nested;
pub mod offline;
pub mod options;
mod parameters;
pub mod remote;
pub mod tags;
mod unit;
mod upstream;

use crate::desired::Unit;
use model::{Action, Reason, UnitPlan};

/// The plan of `unit`, of an environment in `env_region`, with only its action said, its
/// config digest, its own region (when not the environment's) and the stacks it comes after
/// filled in.
pub(crate) fn unit_plan(
    unit: &Unit,
    env_region: &str,
    action: Action,
    reasons: Vec<Reason>,
) -> UnitPlan {
    UnitPlan {
        config_hash: unit.config_hash(),
        region: own_region(&unit.region, env_region),
        depends_on: live::dependency_names(unit),
        ..UnitPlan::bare(&unit.stack, &unit.stack_name, action, reasons)
    }
}

/// A stack's region for its plan: `None` when it is its environment's.
pub(crate) fn own_region(region: &str, env_region: &str) -> Option<String> {
    (region != env_region).then(|| region.to_string())
}
