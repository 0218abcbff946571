//! Where each stack stands after a run, and whether the environment as a whole is at the run's
//! commit.
//!
//! A stack is at commit C when the run at C applied it (or found it unchanged), or when it was
//! not in the plan and its desired state at C is the one it was last brought to: its own record
//! says so (same config digest), or — for a stack with no record yet, in an environment applied
//! before stacks were recorded one by one — its desired state at the environment's deployed
//! commit ([`Baseline`]) is the same. A stack with neither (an environment formwork has not
//! applied before, whose stacks outside the change were deployed by other means) counts as at C
//! unless the plan left it out by a choice of stacks. A stack in the plan that did not get there
//! (failed, skipped, waiting at a gate) is not at C. The environment is at C when every stack of
//! it is.

use std::collections::{BTreeMap, HashMap};

use crate::desired::DesiredEnvironment;
use crate::store::{StackDeployed, Store, StoreError, UnitResult, UnitState, now};

/// The config digests of an environment's stacks at its deployed commit, for stacks with no
/// record of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    pub commit: String,
    /// By stack key.
    pub hashes: BTreeMap<String, String>,
}

impl Baseline {
    /// The digests of `desired` (the environment at its deployed commit `commit`).
    pub fn of(commit: &str, desired: &DesiredEnvironment) -> Baseline {
        Baseline {
            commit: commit.to_string(),
            hashes: desired
                .units
                .iter()
                .map(|(k, u)| (k.clone(), u.config_hash()))
                .collect(),
        }
    }
}

/// Records where each stack of `desired` stands after run `run_id` at `commit`, given the
/// results of the run's stacks; returns the stacks that are not at `commit`, in key order (none:
/// the environment as a whole is at `commit`).
pub async fn record<S: Store>(
    store: &S,
    desired: &DesiredEnvironment,
    commit: &str,
    run: (&str, &[UnitResult]),
    left_out: &[String],
    baseline: Option<&Baseline>,
) -> Result<Vec<String>, StoreError> {
    let (run_id, results) = run;
    let env = &desired.name;
    let previous: HashMap<String, StackDeployed> = store
        .stacks_deployed(env)
        .await?
        .into_iter()
        .map(|d| (d.stack.clone(), d))
        .collect();
    let in_run: HashMap<&str, UnitState> = results
        .iter()
        .map(|r| (r.stack.as_str(), r.state))
        .collect();
    let at = now();
    let mut records = Vec::new();
    let mut behind = Vec::new();
    for (stack, unit) in &desired.units {
        let hash = unit.config_hash();
        let there = match in_run.get(stack.as_str()) {
            Some(state) => matches!(state, UnitState::Applied | UnitState::NoChange),
            None => match (previous.get(stack), baseline) {
                (Some(p), _) => p.config_hash == hash,
                (None, Some(b)) => b.hashes.get(stack).is_some_and(|h| *h == hash),
                (None, None) => !left_out.contains(stack),
            },
        };
        if there {
            records.push(StackDeployed {
                environment: env.clone(),
                stack: stack.clone(),
                commit: commit.to_string(),
                config_hash: hash,
                run_id: run_id.to_string(),
                at,
            });
        } else {
            behind.push(stack.clone());
        }
    }
    store.set_stacks_deployed(&records).await?;
    Ok(behind)
}
