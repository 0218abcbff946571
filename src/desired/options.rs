//! A stack's options as the config asks for them (`options:`), filled in: the settings
//! CloudFormation keeps on a stack beside its template, parameters and tags. `None` for an
//! option means formwork does not manage it and leaves what the stack has.

use serde::Serialize;

pub use crate::config::OnFailure;

/// The stack policy that lets every update through: what "no stack policy" amounts to, since
/// CloudFormation cannot remove one.
pub const ALLOW_ALL_POLICY: &str =
    r#"{"Statement":[{"Action":"Update:*","Effect":"Allow","Principal":"*","Resource":"*"}]}"#;

/// The stack options of one unit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackOptions {
    /// The role CloudFormation assumes (`RoleARN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_protection: Option<bool>,
    /// The stack policy as canonical JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_policy: Option<String>,
    /// The policy set while apply executes an update, as canonical JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_policy_during_update: Option<String>,
    /// SNS topic ARNs, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_arns: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// What a failed creation leaves (creations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

/// Rollback triggers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rollback {
    /// CloudWatch alarm ARNs, sorted.
    pub alarms: Vec<String>,
    pub monitoring_minutes: u32,
}

impl Rollback {
    /// As shown in a plan: `2 alarms (a, b), 10 minutes`.
    pub fn describe(&self) -> String {
        let alarms = if self.alarms.is_empty() {
            "no alarms".to_string()
        } else {
            self.alarms.join(", ")
        };
        format!(
            "{alarms}; monitoring {} minute{}",
            self.monitoring_minutes,
            if self.monitoring_minutes == 1 {
                ""
            } else {
                "s"
            }
        )
    }
}

/// The options a deployed stack has, as DescribeStacks and GetStackPolicy tell them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployedOptions {
    pub service_role: Option<String>,
    pub termination_protection: bool,
    /// Canonical JSON; `None` when the stack has no policy (or it was not read).
    pub stack_policy: Option<String>,
    pub notification_arns: Vec<String>,
    pub rollback: Rollback,
}

/// Which options travel with a change set and which formwork sets itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    /// Given with the change set (service role, notification topics, rollback triggers,
    /// what a failed creation leaves).
    ChangeSet,
    /// Set by formwork with its own call (termination protection, stack policy).
    Direct,
}

/// One option whose value changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OptionChange {
    /// The option's name as written in the config (`termination_protection`).
    pub option: String,
    /// What the stack has (`None`: nothing, or the stack is new).
    pub before: Option<String>,
    /// What the config asks for.
    pub after: String,
    pub kind: OptionKind,
}

impl StackOptions {
    /// The options that differ between `deployed` (`None`: the stack is new) and what is asked
    /// for, in a fixed order. A new stack lists every option that is set.
    pub fn changes(&self, deployed: Option<&DeployedOptions>) -> Vec<OptionChange> {
        let mut out = Vec::new();
        let mut push = |option: &str, before: Option<String>, after: String, kind| {
            if before.as_deref() != Some(after.as_str()) {
                out.push(OptionChange {
                    option: option.into(),
                    before,
                    after,
                    kind,
                });
            }
        };
        use OptionKind::{ChangeSet, Direct};
        if let Some(r) = &self.service_role {
            push(
                "service_role",
                deployed.and_then(|d| d.service_role.clone()),
                r.clone(),
                ChangeSet,
            );
        }
        if let Some(t) = self.termination_protection {
            // A new stack is created unprotected; only turning it on is a change.
            let before = deployed.map(|d| d.termination_protection).unwrap_or(false);
            if before != t {
                push(
                    "termination_protection",
                    deployed.map(|d| d.termination_protection.to_string()),
                    t.to_string(),
                    Direct,
                );
            }
        }
        if let Some(p) = &self.stack_policy {
            let before = deployed.and_then(|d| d.stack_policy.clone());
            // No policy and one that allows everything are the same.
            let same_as_none = before.is_none() && p == ALLOW_ALL_POLICY;
            if !same_as_none {
                push("stack_policy", before, p.clone(), Direct);
            }
        }
        if let Some(n) = &self.notification_arns {
            let before = deployed.map(|d| list(&d.notification_arns));
            if !(deployed.is_none() && n.is_empty()) {
                push("notification_arns", before, list(n), ChangeSet);
            }
        }
        if let Some(r) = &self.rollback {
            let before = deployed.map(|d| d.rollback.describe());
            if !(deployed.is_none() && *r == Rollback::default()) {
                push("rollback", before, r.describe(), ChangeSet);
            }
        }
        if let (Some(f), None) = (self.on_failure, deployed) {
            push("on_failure", None, f.as_cfn().to_lowercase(), ChangeSet);
        }
        out
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_a_change() {
        let want = StackOptions {
            service_role: Some("arn:aws:iam::1:role/cfn".into()),
            termination_protection: Some(true),
            stack_policy: Some(ALLOW_ALL_POLICY.into()),
            notification_arns: Some(vec!["arn:t".into()]),
            rollback: Some(Rollback {
                alarms: vec!["arn:a".into()],
                monitoring_minutes: 5,
            }),
            on_failure: Some(OnFailure::Delete),
            ..Default::default()
        };
        let same = DeployedOptions {
            service_role: Some("arn:aws:iam::1:role/cfn".into()),
            termination_protection: true,
            stack_policy: None,
            notification_arns: vec!["arn:t".into()],
            rollback: Rollback {
                alarms: vec!["arn:a".into()],
                monitoring_minutes: 5,
            },
        };
        assert_eq!(want.changes(Some(&same)), vec![]);
        let other = DeployedOptions {
            termination_protection: false,
            notification_arns: vec![],
            ..same.clone()
        };
        let names: Vec<_> = want
            .changes(Some(&other))
            .into_iter()
            .map(|c| (c.option, c.before, c.after, c.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "termination_protection".into(),
                    Some("false".into()),
                    "true".into(),
                    OptionKind::Direct
                ),
                (
                    "notification_arns".into(),
                    Some("none".into()),
                    "arn:t".into(),
                    OptionKind::ChangeSet
                ),
            ]
        );
    }

    #[test]
    fn a_new_stack_lists_what_is_set() {
        let want = StackOptions {
            termination_protection: Some(false),
            notification_arns: Some(vec![]),
            on_failure: Some(OnFailure::DoNothing),
            ..Default::default()
        };
        let changes = want.changes(None);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].option, "on_failure");
        assert_eq!(changes[0].after, "do_nothing");
    }
}
