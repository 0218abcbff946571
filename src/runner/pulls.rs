//! Pull requests: planning one into its sticky comment, with the environments it plans claimed
//! for it (a second pull request touching a claimed environment waits); releasing a closed one;
//! finding open pull requests whose head was never planned.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{RunError, Runner, Work};
use crate::github::client::PullRequest;
use crate::github::flow::{self, PlanSelection};
use crate::github::sticky::{self, Kind, Sticky};
use crate::lease::{self, Subject};
use crate::plan::live::{self, Quiet};
use crate::store::{LockError, Store};

/// How long a pull request's claim on an environment lasts without activity; it is renewed at
/// every plan and released when the pull request is merged or closed.
const CLAIM_LEASE: Duration = Duration::from_secs(30 * 24 * 3600);

impl Runner {
    /// Plans pull request `number` into its comment: the environments it affects (or those
    /// `sel` names), each claimed for it; those another pull request holds are named in a note
    /// instead. A closed pull request is not planned.
    pub(super) async fn plan_pull(
        &self,
        number: u64,
        offline: bool,
        mut sel: PlanSelection,
    ) -> Result<(), RunError> {
        let pull = self.pull(number).await?;
        if pull.state != "open" || self.state().closed.contains(&number) {
            tracing::info!(
                pull_request = number,
                "the pull request is closed: not planned"
            );
            return Ok(());
        }
        let wanted: Vec<String> = self
            .affected_by(&pull)
            .await?
            .into_iter()
            .filter(|e| self.wants(e))
            .filter(|e| sel.environments.is_empty() || sel.environments.contains(e))
            .collect();
        let mut mine = Vec::new();
        let mut notes = Vec::new();
        for env in &wanted {
            match self.claim(env, number).await {
                Ok(()) => mine.push(env.clone()),
                Err(holder) => {
                    notes.push(self.waiting_note(env, &holder));
                    self.state()
                        .waiting
                        .entry(env.clone())
                        .or_default()
                        .insert(number);
                }
            }
        }
        if wanted.is_empty() && !self.settings.environments.is_empty() {
            // This runner works on some environments only (a matrix leg) and the pull request
            // changes none of them: another leg reports it.
            tracing::info!(
                pull_request = number,
                environments = ?self.settings.environments,
                "the pull request changes none of this runner's environments"
            );
            return Ok(());
        }
        if self.state().closed.contains(&number) {
            // Closed while its claims were taken: they go again.
            for env in &mine {
                self.release_claim(env, number).await?;
            }
            return Ok(());
        }
        if !notes.is_empty() {
            sel.comment_scope = Some(sel.environments.clone());
            sel.note = Some(notes.join("\n"));
            if mine.is_empty() {
                return self.post_waiting_note(number, &sel).await;
            }
            sel.environments = mine.clone();
        }
        sel.offline = offline;
        // One piece of work per environment at a time, taken in name order (no deadlock).
        let locks: Vec<_> = mine.iter().map(|e| self.env_lock(e)).collect();
        let mut guards = Vec::new();
        for l in &locks {
            guards.push(l.lock().await);
        }
        let _permit = self.permits.acquire().await.map_err(|e| self.error(e))?;
        let done = flow::plan_pull_request_as(&self.cx, &pull, &sel, Arc::new(Quiet))
            .await
            .map_err(|e| self.github_error(e))?;
        self.hooks.planned(number, &done);
        Ok(())
    }

    /// The note on a pull request that waits for `env`, held by `holder`.
    fn waiting_note(&self, env: &str, holder: &str) -> String {
        if self.settings.replans_when_freed {
            format!(
                "Environment `{env}` is locked by {holder}: this pull request is planned for it automatically when that one is merged or closed."
            )
        } else {
            format!(
                "Environment `{env}` is locked by {holder}: comment `/formwork plan` on this pull request when that one is merged or closed."
            )
        }
    }

    /// Every environment the pull request touches is claimed by another: say so.
    async fn post_waiting_note(&self, number: u64, sel: &PlanSelection) -> Result<(), RunError> {
        let sticky = Sticky::new(Kind::Plan, sel.comment_scope.as_deref().unwrap_or(&[]));
        let text = format!(
            "## formwork plan\n\n> [!NOTE]\n{}",
            sel.note
                .as_deref()
                .unwrap_or_default()
                .lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        sticky::publish(&self.cx.gh, number, &sticky, &[text])
            .await
            .map_err(|e| self.github_error(e))?;
        Ok(())
    }

    /// Claims `env` for pull request `number`; `Err(holder)` when another pull request holds it.
    async fn claim(&self, env: &str, number: u64) -> Result<(), String> {
        match lease::take_or_renew(
            self.cx.store.as_ref(),
            &Subject::Claim(env.to_string()),
            &lease::pull_request_owner(number),
            "planned by the pull request",
            CLAIM_LEASE,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(LockError::Held(l)) => Err(l.owner),
            Err(e) => {
                tracing::warn!(error = %e, env, "could not claim the environment; planning anyway");
                Ok(())
            }
        }
    }

    /// Releases pull request `number`'s claim on `env`; whether it held one.
    async fn release_claim(&self, env: &str, number: u64) -> Result<bool, RunError> {
        lease::release_if_owner(
            self.cx.store.as_ref(),
            &Subject::Claim(env.to_string()),
            &lease::pull_request_owner(number),
        )
        .await
        .map_err(|e| self.error(e))
    }

    /// A pull request was closed: the change sets of an unmerged one are deleted first, then
    /// its claims released; the pull requests that waited for a released environment are
    /// planned next (where the door can), or told how.
    pub(super) async fn pull_closed(
        &self,
        number: u64,
        merged: bool,
    ) -> Result<Vec<Work>, RunError> {
        self.state().closed.insert(number);
        let envs = self.environments_at_head().await?;
        for env in envs.iter().filter(|e| self.wants(&e.name)) {
            if merged {
                continue;
            }
            match live::delete_change_sets_of_origin(&self.cx.aws, env, &format!("pr-{number}"))
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(pull_request = number, environment = %env.name, deleted = n, "deleted the change sets of a closed pull request")
                }
                Err(e) => {
                    tracing::warn!(pull_request = number, environment = %env.name, error = %self.cx.masker.scrub(&e.to_string()), "could not delete the change sets of a closed pull request")
                }
            }
        }
        let mut freed = Vec::new();
        for env in envs.iter().filter(|e| self.wants(&e.name)) {
            if self.release_claim(&env.name, number).await? {
                freed.push(env.name.clone());
            }
        }
        Ok(self.freed(&freed, &format!("pull request #{number} released")))
    }

    /// The plans of the pull requests that waited for the environments `freed`.
    pub(super) fn freed(&self, freed: &[String], how: &str) -> Vec<Work> {
        let waiting: BTreeSet<u64> = {
            let mut st = self.state();
            let released: BTreeSet<u64> = freed
                .iter()
                .filter_map(|e| st.waiting.remove(e))
                .flatten()
                .collect();
            let closed = st.closed.clone();
            released
                .into_iter()
                .filter(|n| !closed.contains(n))
                .collect()
        };
        if !self.settings.replans_when_freed {
            return Vec::new();
        }
        waiting
            .into_iter()
            .map(|n| Work::PlanPull {
                number: n,
                head: None,
                offline: false,
                selection: PlanSelection::default(),
                why: format!("{how} an environment it waited for"),
            })
            .collect()
    }

    /// The environments `pull` affects at its head.
    pub(super) async fn affected_by(&self, pull: &PullRequest) -> Result<Vec<String>, RunError> {
        let repo = self.cx.repo.clone();
        let (base, head) = (pull.base.sha.clone(), pull.head.sha.clone());
        tokio::task::spawn_blocking(move || {
            let from = repo.merge_base(&base, &head)?;
            repo.affected_environments(&from, &head)
        })
        .await
        .map_err(|e| self.error(e))?
        .map_err(|e| self.error(e))
    }

    /// The plans of the open pull requests whose head has no plan: opened or pushed to while
    /// nothing listened. `trusted` says whether a pull request's head may be planned with AWS.
    pub async fn unplanned_pulls(
        &self,
        trusted: impl Fn(&PullRequest) -> bool,
    ) -> Result<Vec<Work>, RunError> {
        let pulls = self
            .cx
            .gh
            .open_pull_requests()
            .await
            .map_err(|e| self.github_error(e))?;
        let mut work = Vec::new();
        for p in pulls {
            if self.head_has_plan(&p).await {
                continue;
            }
            work.push(Work::PlanPull {
                number: p.number,
                head: Some(p.head.sha.clone()),
                offline: !trusted(&p),
                selection: PlanSelection::default(),
                why: "open, with no plan of its head".into(),
            });
        }
        Ok(work)
    }

    /// Whether pull request `p`'s head has been planned: the state store holds a plan of it
    /// for every environment it affects, or its plan comment names it (plans made offline, and
    /// plans that failed, are not recorded). When in doubt (a store or GitHub error), no.
    async fn head_has_plan(&self, p: &PullRequest) -> bool {
        let head = p.head.sha.as_str();
        if let Ok(envs) = self.affected_by(p).await
            && !envs.is_empty()
        {
            let mut all = true;
            for env in &envs {
                match self.cx.store.latest_plan_of_commit(env, head).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        all = false;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(pull_request = p.number, error = %e, "could not read the recorded plans");
                        all = false;
                        break;
                    }
                }
            }
            if all {
                return true;
            }
        }
        match self.cx.gh.comments(p.number).await {
            Ok(comments) => comments.iter().any(|c| {
                c.body
                    .as_deref()
                    .is_some_and(|b| plan_comment_names(b, head))
            }),
            Err(e) => {
                tracing::warn!(pull_request = p.number, error = %self.github_error(e), "could not read the pull request's comments");
                false
            }
        }
    }
}

/// Whether `body` is a formwork plan comment (the first part of its sticky run) of commit
/// `head`: its title, `## formwork plan for …`, names the commit by its first seven characters
/// or more, whether the plan succeeded or failed.
fn plan_comment_names(body: &str, head: &str) -> bool {
    let Some(short) = head.get(..7) else {
        return false;
    };
    if sticky::kind_of(body) != Some(Kind::Plan) {
        return false;
    }
    let at = format!(" at `{short}");
    body.lines()
        .any(|l| l.starts_with("## formwork plan for ") && l.contains(&at))
}

#[cfg(test)]
mod tests {
    use super::plan_comment_names;

    #[test]
    fn a_plan_comment_names_the_head_it_planned() {
        let head = "0123456789abcdef0123456789abcdef01234567";
        let marker = "<!-- formwork:plan scope=* part=1 -->";
        let planned = format!("{marker}\n## formwork plan for `#7` at `0123456`\n\nNo stacks.");
        assert!(plan_comment_names(&planned, head));
        let failed = format!(
            "{marker}\n> [!NOTE]\n> a note\n\n## formwork plan for `#7` at `0123456789ab`: failed\n"
        );
        assert!(plan_comment_names(&failed, head));
        // Another head, a note without a plan, a quote, an apply comment: no.
        let other = format!("{marker}\n## formwork plan for `#7` at `fedcba9`\n");
        assert!(!plan_comment_names(&other, head));
        let waiting = format!("{marker}\n## formwork plan\n\n> [!NOTE]\n> locked by #3");
        assert!(!plan_comment_names(&waiting, head));
        assert!(!plan_comment_names(&format!("> {planned}"), head));
        let apply = planned.replace("formwork:plan", "formwork:apply");
        assert!(!plan_comment_names(&apply, head));
    }
}
