//! What an environment takes from other environments of the repository: outputs of their
//! stacks (`${env:ENVIRONMENT.stack.Output}`), with where each such stack is deployed, as its
//! own environment says. They make no dependency: the other environment is applied by its own
//! runs, and the outputs are read when planning, with that environment's credentials.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::Loc;

/// A reference to an output of a stack of another environment, where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    pub environment: String,
    pub stack: String,
    pub output: String,
    /// The stack (of this environment) whose parameter takes it.
    pub taken_by: String,
    pub loc: Loc,
}

/// A stack of another environment whose outputs this one takes, as that environment deploys
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteStack {
    pub environment: String,
    pub stack: String,
    pub stack_name: String,
    pub account: String,
    /// Its environment's region (where that environment's session is opened).
    pub region: String,
    /// The stack's own region: its environment's, unless the stack has one of its own.
    pub stack_region: String,
    pub role_arn: Option<String>,
    /// Its outputs that its environment's config makes secret (see [`crate::secrets`]).
    pub secret_outputs: BTreeSet<String>,
}

impl RemoteStack {
    /// Where its environment's stacks live, for an AWS session: the account guard applies to
    /// that environment's account.
    pub fn target(&self) -> crate::aws::Target<'_> {
        crate::aws::Target {
            environment: &self.environment,
            account: &self.account,
            region: &self.region,
            role_arn: self.role_arn.as_deref(),
        }
    }
}

/// The references of an environment to other environments' outputs, and the stacks they name
/// (filled in once the other environments are resolved: `crate::config::link_environments`).
#[derive(Clone, Debug, Default)]
pub struct Remote {
    pub refs: Vec<RemoteRef>,
    /// By environment and stack key; a stack that could not be found is not here.
    pub stacks: BTreeMap<(String, String), RemoteStack>,
}

impl Remote {
    /// The stack `stack` of environment `environment`, when it was found.
    pub fn stack(&self, environment: &str, stack: &str) -> Option<&RemoteStack> {
        self.stacks
            .get(&(environment.to_string(), stack.to_string()))
    }

    /// The environments referred to, each once.
    pub fn environments(&self) -> BTreeSet<&str> {
        self.refs.iter().map(|r| r.environment.as_str()).collect()
    }
}
