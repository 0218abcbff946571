//! What a GitHub event means: the work it calls for, decided the same way whichever door it came
//! in by (the Action's step, the daemon's webhook).
//!
//! | event | work |
//! |---|---|
//! | pull request opened, pushed to, reopened | plan it — offline (no AWS) when its head is in a fork whose owner is not trusted |
//! | pull request closed (merged or not) | release its claims, delete its change sets (unmerged); merged: bring the environments to the default branch |
//! | comment on a pull request | run it as a command, if it is one (authorization is checked when it runs) |
//! | push to the default branch | bring the environments to the default branch |
//! | anything else, or a repository not allowed | nothing (the decision says why) |

use super::Work;
use crate::github::commands::{Parsed, parse_comment};
use crate::github::flow::PlanSelection;
use crate::github::webhook::{Event, PullRequestAction, PullRequestEvent};

/// Which events a door acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Acts {
    /// Every event.
    #[default]
    All,
    /// Pull requests and comments only (a step that plans).
    Plans,
    /// Pushes and comments only (a step that applies).
    Applies,
}

/// The rules of the decision.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The config repository, `OWNER/NAME` (its events are acted on).
    pub repository: String,
    /// Other repositories whose events are acted on.
    pub allowed_repositories: Vec<String>,
    /// Owners whose forks' pull requests are planned with AWS.
    pub trusted_fork_owners: Vec<String>,
    /// Which events to act on.
    pub acts: Acts,
}

impl Policy {
    /// Whether events of repository `full_name` are acted on (the config repository, or one
    /// allowed; with no repository configured, any).
    pub fn allows_repository(&self, full_name: &str) -> bool {
        self.repository.is_empty()
            || self.repository.eq_ignore_ascii_case(full_name)
            || self
                .allowed_repositories
                .iter()
                .any(|r| r.eq_ignore_ascii_case(full_name))
    }

    /// Whether a fork's owner is trusted with AWS.
    pub fn trusts_fork_owner(&self, owner: &str) -> bool {
        self.trusted_fork_owners
            .iter()
            .any(|o| o.eq_ignore_ascii_case(owner))
    }

    /// Whether a pull request's head may be planned with AWS: it is not in a fork, or in the
    /// fork of a trusted owner.
    pub fn trusts_head(&self, p: &PullRequestEvent) -> bool {
        !p.from_fork || self.trusts_fork(p.head_repo.as_deref())
    }

    /// Whether a pull request whose head is in repository `head_repo` (`OWNER/NAME`) may be
    /// planned with AWS: the config repository itself, or the fork of a trusted owner.
    pub fn trusts_head_repo(&self, head_repo: Option<&str>) -> bool {
        head_repo.is_some_and(|r| r.eq_ignore_ascii_case(&self.repository))
            || self.trusts_fork(head_repo)
    }

    /// Whether `head_repo` is the fork of a trusted owner.
    fn trusts_fork(&self, head_repo: Option<&str>) -> bool {
        head_repo
            .and_then(|r| r.split('/').next())
            .is_some_and(|owner| self.trusts_fork_owner(owner))
    }
}

/// What an event calls for: the work, or why there is none.
#[derive(Clone, Debug)]
pub struct Decision {
    pub work: Vec<Work>,
    /// Why nothing is done (for logs), when `work` is empty.
    pub nothing_because: Option<String>,
}

impl Decision {
    fn nothing(why: impl Into<String>) -> Decision {
        Decision {
            work: Vec::new(),
            nothing_because: Some(why.into()),
        }
    }

    fn work(work: Vec<Work>) -> Decision {
        Decision {
            work,
            nothing_because: None,
        }
    }
}

/// What `event` calls for under `policy`.
pub fn decide(event: &Event, policy: &Policy) -> Decision {
    let repo = event.repository();
    if let Some(r) = repo
        && !policy.allows_repository(&r.full_name)
    {
        return Decision::nothing(format!(
            "an event of repository {}, which is not the config repository nor allowed",
            r.full_name
        ));
    }
    match event {
        Event::PullRequest(_) if policy.acts == Acts::Applies => {
            Decision::nothing("a pull request event, and this step only applies")
        }
        Event::Push(_) if policy.acts == Acts::Plans => {
            Decision::nothing("a push event, and this step only plans")
        }
        Event::PullRequest(p) => pull_request(p, policy),
        Event::IssueComment(c) if matches!(parse_comment(&c.body), Parsed::NotACommand) => {
            Decision::nothing("a comment that is not a /formwork command")
        }
        Event::IssueComment(c) => Decision::work(vec![Work::Command(Box::new(c.clone()))]),
        Event::Push(p) if p.deleted => Decision::nothing(format!("{} was deleted", p.ref_name)),
        Event::Push(p) if !p.is_default_branch() => Decision::nothing(format!(
            "a push to {}, not to the default branch ({})",
            p.ref_name, p.repository.default_branch
        )),
        Event::Push(p) => Decision::work(vec![Work::Apply {
            head: Some(p.after.clone()),
            why: format!("push to {}", p.ref_name),
        }]),
        Event::Ping(_) => Decision::nothing("a ping"),
        Event::Ignored(i) => Decision::nothing(format!(
            "{}{}: {}",
            i.event,
            i.action
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default(),
            i.reason
        )),
    }
}

fn pull_request(p: &PullRequestEvent, policy: &Policy) -> Decision {
    match &p.action {
        PullRequestAction::Opened
        | PullRequestAction::Synchronize
        | PullRequestAction::Reopened => Decision::work(vec![Work::PlanPull {
            number: p.number,
            head: Some(p.head_sha.clone()),
            offline: !policy.trusts_head(p),
            selection: PlanSelection::default(),
            why: format!("pull request {}", action_word(&p.action)),
        }]),
        PullRequestAction::Closed { merged, .. } => {
            let mut work = vec![Work::PullClosed {
                number: p.number,
                merged: *merged,
            }];
            if *merged && policy.acts != Acts::Plans {
                work.push(Work::Apply {
                    head: None,
                    why: format!("pull request #{} merged", p.number),
                });
            }
            Decision::work(work)
        }
    }
}

fn action_word(a: &PullRequestAction) -> &'static str {
    match a {
        PullRequestAction::Opened => "opened",
        PullRequestAction::Synchronize => "updated",
        PullRequestAction::Reopened => "reopened",
        PullRequestAction::Closed { .. } => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::webhook::read_trusted_event;

    fn event(name: &str, json: serde_json::Value) -> Event {
        read_trusted_event(name, json.to_string().as_bytes()).unwrap()
    }

    fn pull(action: &str, fork: bool) -> Event {
        let repo = |full: &str, id: u64| {
            let (owner, name) = full.split_once('/').unwrap();
            serde_json::json!({
                "id": id, "name": name, "full_name": full, "owner": {"login": owner},
                "default_branch": "main", "clone_url": format!("https://github.com/{full}.git")
            })
        };
        let head_repo = if fork {
            repo("mallory/config", 2)
        } else {
            repo("o/config", 1)
        };
        event(
            "pull_request",
            serde_json::json!({
                "action": action,
                "number": 7,
                "pull_request": {
                    "number": 7, "title": "t", "draft": false, "merged": action == "closed",
                    "merge_commit_sha": "m", "user": {"login": "a"},
                    "head": {"sha": "h", "ref": "b", "repo": head_repo},
                    "base": {"sha": "s", "ref": "main", "repo": repo("o/config", 1)}
                },
                "repository": repo("o/config", 1),
                "sender": {"login": "a"}
            }),
        )
    }

    fn comment(body: &str) -> Event {
        Event::IssueComment(crate::github::webhook::IssueCommentEvent {
            comment_id: 1,
            body: body.into(),
            author: "a".into(),
            author_type: crate::github::webhook::AccountType::User,
            author_association: crate::github::webhook::AuthorAssociation::Owner,
            pull_request: 7,
            repository: crate::github::webhook::Repository {
                owner: "o".into(),
                name: "config".into(),
                full_name: "o/config".into(),
                default_branch: "main".into(),
                clone_url: "https://github.com/o/config.git".into(),
                private: false,
            },
            installation_id: None,
            sender: "a".into(),
        })
    }

    #[test]
    fn only_comments_meant_as_commands_are_work() {
        let d = decide(&comment("looks good to me"), &policy());
        assert!(d.work.is_empty() && d.nothing_because.is_some(), "{d:?}");
        for body in ["/formwork plan", "/formwork plna"] {
            let d = decide(&comment(body), &policy());
            assert!(matches!(&d.work[..], [Work::Command(_)]), "{body}: {d:?}");
        }
    }

    fn policy() -> Policy {
        Policy {
            repository: "o/config".into(),
            ..Policy::default()
        }
    }

    #[test]
    fn forks_are_planned_offline_unless_their_owner_is_trusted() {
        let d = decide(&pull("opened", true), &policy());
        assert!(
            matches!(&d.work[..], [Work::PlanPull { offline: true, .. }]),
            "{d:?}"
        );
        let trusting = Policy {
            trusted_fork_owners: vec!["Mallory".into()],
            ..policy()
        };
        let d = decide(&pull("opened", true), &trusting);
        assert!(
            matches!(&d.work[..], [Work::PlanPull { offline: false, .. }]),
            "{d:?}"
        );
        let d = decide(&pull("synchronize", false), &policy());
        assert!(
            matches!(&d.work[..], [Work::PlanPull { offline: false, head: Some(h), .. }] if h == "h"),
            "{d:?}"
        );
    }

    #[test]
    fn a_merge_releases_and_applies_and_steps_act_on_their_events() {
        let d = decide(&pull("closed", false), &policy());
        assert!(
            matches!(
                &d.work[..],
                [
                    Work::PullClosed { merged: true, .. },
                    Work::Apply { head: None, .. }
                ]
            ),
            "{d:?}"
        );
        let planning = Policy {
            acts: Acts::Plans,
            ..policy()
        };
        let d = decide(&pull("closed", false), &planning);
        assert!(matches!(&d.work[..], [Work::PullClosed { .. }]), "{d:?}");
        let applying = Policy {
            acts: Acts::Applies,
            ..policy()
        };
        let d = decide(&pull("opened", false), &applying);
        assert!(d.work.is_empty() && d.nothing_because.is_some());
        let other = Policy {
            repository: "o/other".into(),
            ..policy()
        };
        let d = decide(&pull("opened", false), &other);
        assert!(
            d.work.is_empty()
                && d.nothing_because
                    .as_deref()
                    .is_some_and(|w| w.contains("not the config repository")),
            "{d:?}"
        );
    }
}
