//! Which targets an environment's events go to, and where it lives: its `notifications:` and
//! its account, region and role, read from its `environment.yml` at one revision alone (not
//! the whole config: the notice that an apply starts must not wait for the config to resolve,
//! nor be lost when it does not).

use crate::config::notifications::{self, Notification};
use crate::config::{Loader, ParseCache};
use crate::desired::DesiredEnvironment;
use crate::diag::{Color, Diagnostics, render_all};
use crate::git::Revision;
use crate::workflow::{ConfigRepo, WorkflowError};

/// Where an environment lives: what its session is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub environment: String,
    pub account: String,
    pub region: String,
    pub role_arn: Option<String>,
}

impl Place {
    /// The place of a resolved environment.
    pub fn of(env: &DesiredEnvironment) -> Place {
        Place {
            environment: env.name.clone(),
            account: env.account.clone(),
            region: env.region.clone(),
            role_arn: env.role_arn.clone(),
        }
    }
}

/// The environment `env` at revision `rev`: where it lives and its notification targets.
pub fn at_revision(
    repo: &ConfigRepo,
    rev: &str,
    env: &str,
) -> Result<(Place, Vec<Notification>), WorkflowError> {
    repo.with(|r, prefix| {
        let revision = Revision::resolve(r, rev)?;
        let src = revision.source(r, prefix)?;
        let cache = ParseCache::default();
        let mut loader = Loader::new(&src, &cache);
        let Some(e) = loader.environment(env)? else {
            return Err(WorkflowError::Config {
                message: format!("environment `{env}` cannot be read at {rev}"),
                diags: Box::new(std::mem::take(&mut loader.diags)),
                texts: Box::new(std::mem::take(&mut loader.texts)),
            });
        };
        let mut d = Diagnostics::new();
        let targets = notifications::check(&e.file, &e.def.notifications, &mut d);
        if d.has_errors() {
            return Err(WorkflowError::Usage(format!(
                "the notifications of environment `{env}` at {rev} have errors:\n{}",
                render_all(&d, &loader.texts, Color::Never)
            )));
        }
        let place = Place {
            environment: env.to_string(),
            account: e.def.account.value.clone(),
            region: e.def.region.value.clone(),
            role_arn: e.def.role_arn.as_ref().map(|r| r.value.clone()),
        };
        Ok((place, targets))
    })
}
