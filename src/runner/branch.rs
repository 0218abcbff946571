//! Bringing environments to the default branch: each from its deployed commit to the branch's
//! head, merge by merge along the first-parent history, each merge with the plan reviewed on its
//! pull request — so that a lost event or a restart never skips a merge, and never applies one
//! merge's plan on behalf of another. One runner at a time works on an environment (a lease in
//! the state store); an environment whose config does not resolve at the head is recorded as
//! failed there, once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{LogObserver, RunError, Runner};
use crate::apply::service::Applied;
use crate::github::flow::{self, ApplyTarget};
use crate::lease::{self, LossSignal, Subject};
use crate::store::{LockError, Run, RunStatus, Store, now};
use crate::workflow::CheckedEnvironments;

/// The lease of a runner's work on one environment; renewed while the work runs.
const WORK_LEASE: Duration = Duration::from_secs(120);

impl Runner {
    /// The default branch's commit: `head` when given, else the branch in the config
    /// repository (a local branch, or the remote's).
    fn branch_head(&self, head: Option<&str>) -> Result<String, RunError> {
        if let Some(h) = head {
            return self.cx.repo.resolve(h).map_err(|e| self.error(e));
        }
        let branch = &self.settings.default_branch;
        [
            format!("refs/heads/{branch}"),
            format!("refs/remotes/origin/{branch}"),
        ]
        .iter()
        .find_map(|r| self.cx.repo.resolve(r).ok())
        .ok_or_else(|| {
            RunError(format!(
                "the default branch `{branch}` is not in the local repository; fetch it first"
            ))
        })
    }

    /// The environments at the default branch's head, resolved or not.
    pub async fn environments_at(&self, head: &str) -> Result<CheckedEnvironments, RunError> {
        let repo = self.cx.repo.clone();
        let head = head.to_string();
        tokio::task::spawn_blocking(move || repo.checked_environments_at(&head))
            .await
            .map_err(|e| self.error(e))?
            .map_err(|e| self.error(e))
    }

    /// The environments that resolve at the default branch's head.
    pub(super) async fn environments_at_head(
        &self,
    ) -> Result<Vec<crate::desired::DesiredEnvironment>, RunError> {
        let head = self.branch_head(None)?;
        Ok(self.environments_at(&head).await?.resolved)
    }

    /// Brings every environment (of those this runner works on) to the default branch at
    /// `head`; the environments are worked on side by side.
    pub(super) async fn apply_branch(&self, head: Option<&str>) -> Result<(), RunError> {
        let head = self.branch_head(head)?;
        let CheckedEnvironments {
            resolved,
            unresolved,
        } = self.environments_at(&head).await?;
        for (env, error) in unresolved.iter().filter(|(e, _)| self.wants(e)) {
            if let Err(e) = self.record_unresolved(env, &head, error).await {
                tracing::error!(environment = %env, error = %e, "could not record the failure");
            }
        }
        let head = head.as_str();
        let work = resolved
            .iter()
            .filter(|e| self.wants(&e.name))
            .map(|env| async move {
                if let Err(e) = self.bring_environment(&env.name, head).await {
                    tracing::error!(environment = %env.name, error = %e, "the environment could not be brought to the branch");
                }
            });
        futures::future::join_all(work).await;
        Ok(())
    }

    /// Brings one environment to `head`, under its work lease (another runner holding it does
    /// the work instead).
    async fn bring_environment(&self, env: &str, head: &str) -> Result<(), RunError> {
        let lock = self.env_lock(env);
        let _guard = lock.lock().await;
        let _permit = self.permits.acquire().await.map_err(|e| self.error(e))?;
        let held = match lease::hold(
            self.cx.store.clone(),
            Subject::Work(env.to_string()),
            &self.settings.identity,
            "bringing it to the default branch",
            WORK_LEASE,
        )
        .await
        {
            Ok(h) => h,
            Err(LockError::Held(l)) => {
                tracing::info!(environment = env, holder = %l.owner, "another runner works on it");
                return Ok(());
            }
            Err(e) => return Err(self.error(e)),
        };
        let result = self.bring_leased(env, head, &held.signal()).await;
        held.release(self.cx.store.as_ref())
            .await
            .map_err(|e| self.error(e))?;
        result
    }

    async fn bring_leased(
        &self,
        env: &str,
        head: &str,
        lease: &LossSignal,
    ) -> Result<(), RunError> {
        let deployed = self
            .cx
            .store
            .deployed(env)
            .await
            .map_err(|e| self.error(e))?
            .map(|d| d.commit);
        if deployed.as_deref() == Some(head) {
            return Ok(());
        }
        let repo = self.cx.repo.clone();
        let (name, to) = (env.to_string(), head.to_string());
        let commits = tokio::task::spawn_blocking(move || {
            repo.commits_changing(&name, deployed.as_deref(), &to)
        })
        .await
        .map_err(|e| self.error(e))?
        .map_err(|e| self.error(e))?;
        for commit in commits {
            if lease.is_lost() {
                // Another runner may have taken the environment over: the rest is its.
                return Err(RunError(format!(
                    "the work on `{env}` stopped before commit {commit}: its lease was lost"
                )));
            }
            if self
                .state()
                .reported
                .contains(&(env.to_string(), commit.clone()))
            {
                return Ok(());
            }
            let started = Instant::now();
            let done = flow::apply_environment(
                &self.cx,
                env,
                &ApplyTarget::Commit(commit.clone()),
                &self.settings.apply,
                Arc::new(LogObserver {
                    environment: env.to_string(),
                }),
                true,
            )
            .await
            .map_err(|e| self.github_error(e))?;
            let ok = done.applied.succeeded();
            self.hooks.applied(env, ok, started.elapsed().as_secs_f64());
            if ok {
                continue;
            }
            if let (Applied::Stopped { message, .. }, None) = (&done.applied, done.pull_request) {
                tracing::warn!(environment = env, commit = %commit, reason = %message, "not applied: no pull request brought the commit and no plan of it is recorded");
            }
            // Said once; tried again when the branch moves or the runner starts again.
            self.state()
                .reported
                .insert((env.to_string(), commit.clone()));
            return Ok(());
        }
        Ok(())
    }

    /// Lets the environments wait at gate passed (`/formwork continue`) be tried again.
    pub(super) fn forget_reported(&self, env: &str) {
        self.state().reported.retain(|(e, _)| e != env);
    }

    /// An environment whose config at `head` does not resolve (a file that does not parse, or
    /// is refused): nothing is applied; its run of `head` is recorded as failed, with the error
    /// in the audit trail, once (also across restarts).
    async fn record_unresolved(&self, env: &str, head: &str, error: &str) -> Result<(), RunError> {
        if !self
            .state()
            .reported
            .insert((env.to_string(), head.to_string()))
        {
            return Ok(());
        }
        let error = self.cx.masker.scrub(error);
        tracing::error!(environment = env, commit = head, error = %error, "the config of the environment does not resolve: nothing is applied");
        let store = &self.cx.store;
        let latest = store.runs(Some(env), 1).await.map_err(|e| self.error(e))?;
        if latest.first().is_some_and(|r| {
            r.commit == head && r.status == RunStatus::Failed && r.plan_id.is_none()
        }) {
            return Ok(());
        }
        let at = now();
        let run = Run {
            id: format!(
                "r{}",
                crate::plan::live::plan_id(head, &crate::plan::live::now_rfc3339())
            ),
            environment: env.to_string(),
            plan_id: None,
            commit: head.to_string(),
            owner: self.settings.identity.clone(),
            started_at: at,
            finished_at: None,
            status: RunStatus::Running,
        };
        store.start_run(&run).await.map_err(|e| self.error(e))?;
        store
            .finish_run(&run.id, RunStatus::Failed, at)
            .await
            .map_err(|e| self.error(e))?;
        store
            .record_event(&crate::store::Event {
                environment: env.to_string(),
                at,
                kind: "invalid_config".into(),
                actor: self.settings.identity.clone(),
                detail: format!("commit {head}: {error}"),
            })
            .await
            .map_err(|e| self.error(e))
    }
}
