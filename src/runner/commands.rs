//! `/formwork …` comments: parsed (see [`crate::github::commands`]), authorized (the author
//! must be allowed to push to the repository), acknowledged with a reaction, and run. Each
//! command means the same whichever door it came in by (docs/comment-commands.md):
//!
//! - `plan` plans the pull request (the environments and stacks named, or all it affects);
//! - `apply` applies the pull request's reviewed plan before it is merged, when allowed;
//! - `unlock` releases the environments' claims by pull requests (recorded), so that waiting
//!   pull requests can be planned; it never touches the apply lock of a running apply;
//! - `continue GATE` lets applies go on past a gate;
//! - `override RULE` lets the pull request's plan through a blocking policy rule (maintain or
//!   admin permission; recorded), and plans the pull request again to show it;
//! - `help`, and a malformed command, reply with the help.

use std::sync::Arc;

use super::{LogObserver, RunError, Runner, Work};
use crate::github::client::Permission;
use crate::github::commands::{self, Command, Parsed};
use crate::github::flow::{self, ApplyTarget, PlanSelection};
use crate::github::overrides;
use crate::github::webhook::IssueCommentEvent;
use crate::lease::{self, Subject};
use crate::store::{Store, now};

impl Runner {
    /// Runs the command in comment `c` (nothing when it is not one); returns the work it calls
    /// for next.
    pub(super) async fn command(&self, c: &IssueCommentEvent) -> Result<Vec<Work>, RunError> {
        let command = match commands::parse_comment(&c.body) {
            Parsed::NotACommand => return Ok(Vec::new()),
            Parsed::Invalid { message } => {
                self.react(c, "confused").await;
                self.reply(c, &format!("{message}\n\n{}", commands::help_markdown()))
                    .await?;
                return Ok(Vec::new());
            }
            Parsed::Command(Command::Help) => {
                self.reply(c, &commands::help_markdown()).await?;
                return Ok(Vec::new());
            }
            Parsed::Command(command) => command,
        };
        let permission = self
            .cx
            .gh
            .permission(&c.author)
            .await
            .map_err(|e| self.github_error(e))?;
        if !permission.may_deploy() {
            self.react(c, "confused").await;
            self.reply(
                c,
                &commands::refusal_markdown(&c.author, command.name(), permission.as_str()),
            )
            .await?;
            return Ok(Vec::new());
        }
        self.react(c, "eyes").await;
        match command {
            Command::Help => Ok(Vec::new()),
            Command::Plan {
                environments,
                stacks,
            } => Ok(vec![Work::PlanPull {
                number: c.pull_request,
                head: None,
                offline: false,
                selection: PlanSelection {
                    environments,
                    stacks,
                    ..PlanSelection::default()
                },
                why: format!("/formwork plan by @{}", c.author),
            }]),
            Command::Apply { environments } => {
                self.apply_open_pull(c, environments).await?;
                Ok(Vec::new())
            }
            Command::Continue { gate, environments } => {
                self.continue_past(c, &gate, &environments).await
            }
            Command::Unlock { environments } => self.unlock(c, environments).await,
            Command::Override { rule, environments } => {
                self.override_policy(c, &rule, environments, permission)
                    .await
            }
        }
    }

    async fn reply(&self, c: &IssueCommentEvent, text: &str) -> Result<(), RunError> {
        self.cx
            .gh
            .create_comment(c.pull_request, text)
            .await
            .map(|_| ())
            .map_err(|e| self.github_error(e))
    }

    /// A reaction to the comment; a failure is only logged.
    async fn react(&self, c: &IssueCommentEvent, content: &str) {
        if let Err(e) = self.cx.gh.react(c.comment_id, content).await {
            tracing::warn!(error = %self.cx.masker.scrub(&e.to_string()), "could not react to the comment");
        }
    }

    /// `/formwork apply`: the reviewed plan of the open pull request, environment by
    /// environment, when applying before merging is allowed.
    async fn apply_open_pull(
        &self,
        c: &IssueCommentEvent,
        environments: Vec<String>,
    ) -> Result<(), RunError> {
        if !self.settings.apply_before_merge {
            return self
                .reply(c, &commands::apply_before_merge_off_markdown())
                .await;
        }
        let envs = if environments.is_empty() {
            let pull = self.pull(c.pull_request).await?;
            self.affected_by(&pull)
                .await?
                .into_iter()
                .filter(|e| self.wants(e))
                .collect()
        } else {
            environments
        };
        if envs.is_empty() {
            return self
                .reply(
                    c,
                    "This pull request changes no environment: nothing to apply.",
                )
                .await;
        }
        for env in envs {
            let lock = self.env_lock(&env);
            let _guard = lock.lock().await;
            flow::apply_environment(
                &self.cx,
                &env,
                &ApplyTarget::OpenPullRequest(c.pull_request),
                &self.settings.apply,
                Arc::new(LogObserver {
                    environment: env.clone(),
                }),
                false,
            )
            .await
            .map_err(|e| self.github_error(e))?;
        }
        Ok(())
    }

    /// `/formwork continue GATE`: recorded for every environment (of those named) that has the
    /// gate at the default branch's head; applying goes on.
    async fn continue_past(
        &self,
        c: &IssueCommentEvent,
        gate: &str,
        environments: &[String],
    ) -> Result<Vec<Work>, RunError> {
        let with_gate: Vec<String> = self
            .environments_at_head()
            .await?
            .into_iter()
            .filter(|e| e.gates.iter().any(|g| g.name == gate))
            .map(|e| e.name)
            .filter(|e| self.wants(e))
            .filter(|e| environments.is_empty() || environments.contains(e))
            .collect();
        if with_gate.is_empty() {
            let of = if environments.is_empty() {
                String::new()
            } else {
                format!(" of {}", environments.join(", "))
            };
            self.reply(
                c,
                &format!(
                    "No environment{of} has a gate `{gate}` at the head of `{}`.",
                    self.settings.default_branch
                ),
            )
            .await?;
            return Ok(Vec::new());
        }
        for env in &with_gate {
            self.cx
                .store
                .record_event(&crate::store::Event {
                    environment: env.clone(),
                    at: now(),
                    kind: crate::apply::GATE_EVENT.to_string(),
                    actor: format!("@{} (GitHub)", c.author),
                    detail: gate.to_string(),
                })
                .await
                .map_err(|e| self.error(e))?;
            self.forget_reported(env);
        }
        self.reply(
            c,
            &format!(
                "Gate `{gate}` passed by @{} for {}: applying goes on.",
                c.author,
                with_gate
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await?;
        Ok(vec![Work::Apply {
            head: None,
            why: format!("gate `{gate}` passed by @{}", c.author),
        }])
    }

    /// `/formwork override RULE`: for users with maintain or admin permission, records an
    /// override of `rule` for the pull request's head in each environment (of those named)
    /// whose plan of that head the rule blocks, and plans the pull request again so that its
    /// comment and check show it.
    async fn override_policy(
        &self,
        c: &IssueCommentEvent,
        rule: &str,
        environments: Vec<String>,
        permission: Permission,
    ) -> Result<Vec<Work>, RunError> {
        if permission < Permission::Maintain {
            self.reply(
                c,
                &format!(
                    "Sorry @{}, overriding a policy rule needs maintain or admin permission on this repository, and yours is {}.",
                    c.author,
                    permission.as_str()
                ),
            )
            .await?;
            return Ok(Vec::new());
        }
        let pull = self.pull(c.pull_request).await?;
        let head = pull.head.sha.clone();
        let envs = if environments.is_empty() {
            self.affected_by(&pull).await?
        } else {
            environments
        };
        let mut overridden = Vec::new();
        for env in envs.iter().filter(|e| self.wants(e)) {
            let plan = self
                .cx
                .store
                .latest_plan_of_commit(env, &head)
                .await
                .map_err(|e| self.error(e))?;
            let blocks = plan.is_some_and(|p| {
                p.blocking_findings()
                    .iter()
                    .any(|(e, _, f)| e == env && f.rule == rule)
            });
            if !blocks {
                continue;
            }
            overrides::record(
                self.cx.store.as_ref(),
                env,
                rule,
                c.pull_request,
                &head,
                &format!("@{} (GitHub)", c.author),
            )
            .await
            .map_err(|e| self.error(e))?;
            overridden.push(format!("`{env}`"));
        }
        let short = &head[..head.len().min(7)];
        if overridden.is_empty() {
            self.reply(
                c,
                &format!(
                    "No plan of this pull request's head {short} is blocked by policy rule `{rule}`{}: nothing to override.",
                    if envs.is_empty() {
                        String::new()
                    } else {
                        format!(" in {}", envs.join(", "))
                    }
                ),
            )
            .await?;
            return Ok(Vec::new());
        }
        self.reply(
            c,
            &format!(
                "Policy rule `{rule}` overridden by @{} for {} at {short}, recorded in the audit trail. Planning again to show it; a new push is checked against the rule again.",
                c.author,
                overridden.join(", ")
            ),
        )
        .await?;
        // The pull request's head as it is when planned (as `/formwork plan` has it): a push
        // meanwhile is planned without the override.
        Ok(vec![Work::PlanPull {
            number: c.pull_request,
            head: None,
            offline: false,
            selection: PlanSelection::default(),
            why: format!("policy rule `{rule}` overridden by @{}", c.author),
        }])
    }

    /// `/formwork unlock`: releases the environments' claims by pull requests (all the
    /// environments at the default branch's head, or those named), recorded in the audit trail.
    async fn unlock(
        &self,
        c: &IssueCommentEvent,
        environments: Vec<String>,
    ) -> Result<Vec<Work>, RunError> {
        let envs: Vec<String> = if environments.is_empty() {
            self.environments_at_head()
                .await?
                .into_iter()
                .map(|e| e.name)
                .filter(|e| self.wants(e))
                .collect()
        } else {
            environments
        };
        let mut lines = Vec::new();
        let mut freed = Vec::new();
        for env in envs {
            let removed = lease::force_release(
                self.cx.store.as_ref(),
                &Subject::Claim(env.clone()),
                &format!("@{} (GitHub)", c.author),
                &format!("/formwork unlock on pull request #{}", c.pull_request),
            )
            .await
            .map_err(|e| self.error(e))?;
            lines.push(match &removed {
                Some(l) => format!("- `{env}`: unlocked (was held by {})", l.owner),
                None => format!("- `{env}`: was not locked"),
            });
            if removed.is_some() {
                freed.push(env);
            }
        }
        self.reply(
            c,
            &format!("Unlocked by @{}:\n\n{}", c.author, lines.join("\n")),
        )
        .await?;
        Ok(self.freed(&freed, &format!("@{} unlocked", c.author)))
    }
}
