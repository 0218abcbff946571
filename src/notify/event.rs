//! What a notification tells: the event model (an apply of an environment started, succeeded,
//! failed or waits at a gate, with its commit, run, plan and stacks; drift found, with counts),
//! the one-line summary every target shows, and the versioned JSON body the webhook and SNS
//! targets send.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::notifications::NotifyEvent;

/// The version of the JSON body (`version` in it). It grows fields without changing; a
/// change that breaks readers gets a new version.
pub const BODY_VERSION: u32 = 1;

/// One thing to tell.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Event {
    #[serde(rename = "event")]
    pub kind: Option<NotifyEvent>,
    pub environment: String,
    pub account: String,
    pub region: String,
    /// The commit applied, or whose config the drift check read.
    pub commit: Option<String>,
    /// The apply's run in the state store, once it has one.
    pub run_id: Option<String>,
    /// The reviewed plan applied.
    pub plan_id: Option<String>,
    /// Why the apply failed or waits.
    pub message: Option<String>,
    /// Each stack of the apply and where it ended, in the order applied.
    pub stacks: Vec<StackOutcome>,
    /// What a drift check found.
    pub drift: Option<DriftCounts>,
    pub links: Links,
}

/// Where one stack of an apply ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackOutcome {
    /// The stack's key in the pipeline.
    pub stack: String,
    /// The CloudFormation stack name.
    pub stack_name: String,
    /// `applied`, `no_change`, `deleted`, `failed`, `skipped`, `waiting` or `executing`.
    pub state: String,
    /// Why it failed or was skipped.
    pub message: Option<String>,
}

/// What a drift check of one environment found, by stack count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DriftCounts {
    pub checked: usize,
    pub drifted: usize,
    pub in_sync: usize,
    /// Detections without a verdict, or that failed.
    pub unknown: usize,
    pub failed: usize,
    pub not_deployed: usize,
    /// The drifted stacks' keys.
    pub drifted_stacks: Vec<String>,
}

/// Where to read more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Links {
    /// The pull request that brought the commit.
    pub pull_request: Option<String>,
    /// The run that sends this: a GitHub Actions run, or the agent's status page.
    pub run: Option<String>,
}

impl Links {
    /// The GitHub Actions run this process is part of, from the variables Actions sets
    /// (`GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`, `GITHUB_RUN_ID`).
    pub fn actions_run() -> Option<String> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let (server, repo, id) = (
            var("GITHUB_SERVER_URL")?,
            var("GITHUB_REPOSITORY")?,
            var("GITHUB_RUN_ID")?,
        );
        Some(format!(
            "{}/{repo}/actions/runs/{id}",
            server.trim_end_matches('/')
        ))
    }
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &'static str {
        self.kind.map_or("unknown", NotifyEvent::as_str)
    }

    /// The commit, shortened for people.
    pub fn short_commit(&self) -> Option<&str> {
        self.commit.as_deref().map(|c| &c[..c.len().min(12)])
    }

    /// The stacks in `state`.
    fn count(&self, states: &[&str]) -> usize {
        self.stacks
            .iter()
            .filter(|s| states.contains(&s.state.as_str()))
            .count()
    }

    /// One line for people: what happened to which environment at which commit.
    pub fn summary(&self) -> String {
        let env = &self.environment;
        let at = self
            .short_commit()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let changed = self.count(&["applied", "deleted"]);
        let stacks = |n: usize| crate::diag::plural(n, "stack");
        match self.kind {
            Some(NotifyEvent::ApplyStarted) => format!("{env}: applying{at}"),
            Some(NotifyEvent::ApplySucceeded) => format!(
                "{env}: applied{at} ({} changed, {} unchanged)",
                stacks(changed),
                self.count(&["no_change"])
            ),
            Some(NotifyEvent::ApplyFailed) => {
                let failed: Vec<&str> = self
                    .stacks
                    .iter()
                    .filter(|s| s.state == "failed")
                    .map(|s| s.stack.as_str())
                    .collect();
                if failed.is_empty() {
                    format!("{env}: apply{at} failed")
                } else {
                    format!(
                        "{env}: apply{at} failed ({} failed: {})",
                        stacks(failed.len()),
                        failed.join(", ")
                    )
                }
            }
            Some(NotifyEvent::ApplyWaiting) => {
                format!(
                    "{env}: apply{at} waits at a gate ({} changed so far)",
                    stacks(changed)
                )
            }
            Some(NotifyEvent::Drift) => {
                let d = self.drift.clone().unwrap_or_default();
                format!(
                    "{env}: {} of {} drifted ({})",
                    stacks(d.drifted),
                    d.checked,
                    d.drifted_stacks.join(", ")
                )
            }
            None => format!("{env}: formwork"),
        }
    }

    /// The JSON body of the webhook and SNS targets (docs/notifications.md), not yet masked.
    pub fn body(&self, delivery: &str, timestamp: u64) -> Value {
        let mut v = json!({
            "version": BODY_VERSION,
            "event": self.name(),
            "delivery": delivery,
            "timestamp": timestamp,
            "summary": self.summary(),
        });
        if let (Value::Object(out), Ok(Value::Object(fields))) =
            (&mut v, serde_json::to_value(self))
        {
            for (k, x) in fields {
                if k != "event" {
                    out.insert(k, x);
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn failed() -> Event {
        Event {
            kind: Some(NotifyEvent::ApplyFailed),
            environment: "prod".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            commit: Some("0123456789abcdef0123".into()),
            run_id: Some("r1".into()),
            plan_id: Some("p1".into()),
            message: None,
            stacks: vec![
                StackOutcome {
                    stack: "network".into(),
                    stack_name: "prod-network".into(),
                    state: "applied".into(),
                    message: None,
                },
                StackOutcome {
                    stack: "app".into(),
                    stack_name: "prod-app".into(),
                    state: "failed".into(),
                    message: Some("Role: CREATE_FAILED".into()),
                },
            ],
            drift: None,
            links: Links {
                pull_request: Some("https://github.com/o/r/pull/7".into()),
                run: None,
            },
        }
    }

    #[test]
    fn the_body_is_versioned_and_flat() {
        let b = failed().body("d1", 1_767_225_600);
        assert_eq!(b["version"], 1);
        assert_eq!(b["event"], "apply_failed");
        assert_eq!(b["delivery"], "d1");
        assert_eq!(b["timestamp"], 1_767_225_600);
        assert_eq!(b["environment"], "prod");
        assert_eq!(b["commit"], "0123456789abcdef0123");
        assert_eq!(b["stacks"][1]["state"], "failed");
        assert_eq!(b["links"]["pull_request"], "https://github.com/o/r/pull/7");
        assert_eq!(
            b["summary"],
            "prod: apply 0123456789ab failed (1 stack failed: app)"
        );
        let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "version",
                "event",
                "delivery",
                "timestamp",
                "summary",
                "environment",
                "account",
                "region",
                "commit",
                "run_id",
                "plan_id",
                "message",
                "stacks",
                "drift",
                "links"
            ]
        );
    }

    #[test]
    fn summaries() {
        let mut e = failed();
        e.kind = Some(NotifyEvent::ApplySucceeded);
        e.stacks[1].state = "no_change".into();
        assert_eq!(
            e.summary(),
            "prod: applied 0123456789ab (1 stack changed, 1 unchanged)"
        );
        e.kind = Some(NotifyEvent::ApplyStarted);
        assert_eq!(e.summary(), "prod: applying 0123456789ab");
        e.kind = Some(NotifyEvent::Drift);
        e.drift = Some(DriftCounts {
            checked: 3,
            drifted: 2,
            drifted_stacks: vec!["a".into(), "b".into()],
            ..DriftCounts::default()
        });
        assert_eq!(e.summary(), "prod: 2 stacks of 3 drifted (a, b)");
    }
}
