//! Outputs of other environments' stacks (`${env:ENVIRONMENT.stack.Output}`), read when
//! planning with each of those environments' own session: its account (the account guard
//! applies to it), region and role. Each stack is described once per run, in a cache of its
//! environment's own (stack names are unique per account and region, not across them).

use std::collections::{BTreeMap, BTreeSet};

use super::inputs::StackCache;
use crate::aws::{Aws, Session};
use crate::desired::DesiredEnvironment;

/// What reads one other environment's stacks: its session (or why there is none) and the
/// stacks described so far.
pub struct RemoteReader {
    pub session: Result<Session, String>,
    pub stacks: StackCache,
}

/// The other environments an environment's stacks take outputs from, by name.
#[derive(Default)]
pub struct RemoteSessions(BTreeMap<String, RemoteReader>);

impl RemoteSessions {
    /// Sessions for the other environments whose outputs the stacks `stacks` of `env` take
    /// (`None`: every stack of it). A session that cannot be had (credentials of another
    /// account, a role that cannot be assumed) fails only the stacks that need it.
    pub async fn open(
        aws: &Aws,
        env: &DesiredEnvironment,
        stacks: Option<&BTreeSet<String>>,
    ) -> RemoteSessions {
        let mut out = BTreeMap::new();
        for r in &env.remote.refs {
            if stacks.is_some_and(|s| !s.contains(&r.taken_by)) || out.contains_key(&r.environment)
            {
                continue;
            }
            let Some(found) = env.remote.stack(&r.environment, &r.stack) else {
                continue;
            };
            let session = aws
                .session(&found.target())
                .await
                .map_err(|e| e.to_string());
            if let Err(e) = &session {
                tracing::warn!(environment = %env.name, other = %r.environment, error = %e, "cannot read the stacks of another environment");
            }
            out.insert(
                r.environment.clone(),
                RemoteReader {
                    session,
                    stacks: StackCache::default(),
                },
            );
        }
        RemoteSessions(out)
    }

    /// The reader of environment `name`, when a session was asked for.
    pub fn get(&self, name: &str) -> Option<&RemoteReader> {
        self.0.get(name)
    }
}
