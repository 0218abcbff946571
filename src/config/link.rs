//! Linking environments to the other environments whose stacks' outputs they take
//! (`${env:ENVIRONMENT.stack.Output}`): the other environments resolved at the same revision,
//! each reference checked against them, and the stacks found recorded in the desired state.

use std::collections::HashMap;

use super::load::Loader;
use super::resolve::{link_remote, resolve_environment};
use crate::desired::DesiredEnvironment;
use crate::diag::Diagnostics;
use crate::source::SourceError;

/// Links every environment of `envs` (all those of the revision that resolved) with the
/// others; `names` are every environment of the revision.
pub(super) fn link_all(envs: &mut [DesiredEnvironment], names: &[String]) -> Diagnostics {
    let mut d = Diagnostics::new();
    let linked: Vec<_> = envs
        .iter()
        .map(|env| {
            let by_name = |n: &str| envs.iter().find(|e| e.name == n);
            link_remote(env, names, &by_name)
        })
        .collect();
    for (env, (stacks, diags)) in envs.iter_mut().zip(linked) {
        env.remote.stacks = stacks;
        d.extend(diags);
    }
    d
}

/// The environments resolved so far for linking, by name (`None`: it does not resolve).
pub type Resolved = HashMap<String, Option<DesiredEnvironment>>;

/// Links `env` with the environments it refers to, resolving each through `loader` once (kept
/// in `resolved`); `names` are every environment of the revision, `pipelines` every pipeline.
/// The problems of the other environments themselves are theirs, not reported here.
pub fn link_through(
    env: &mut DesiredEnvironment,
    loader: &mut Loader<'_>,
    names: &[String],
    pipelines: &[String],
    resolved: &mut Resolved,
) -> Result<Diagnostics, SourceError> {
    let wanted: Vec<String> = env
        .remote
        .environments()
        .into_iter()
        .filter(|n| *n != env.name && names.iter().any(|x| x == n))
        .map(str::to_string)
        .collect();
    for name in wanted {
        if resolved.contains_key(&name) {
            continue;
        }
        let desired = match loader.environment(&name)? {
            Some(e) => {
                let p = loader.pipeline(&e.def.pipeline)?;
                resolve_environment(&e, p.as_deref(), pipelines).0
            }
            None => None,
        };
        resolved.insert(name, desired);
    }
    let lookup = |n: &str| resolved.get(n).and_then(Option::as_ref);
    let (stacks, d) = link_remote(env, names, &lookup);
    env.remote.stacks = stacks;
    Ok(d)
}
