//! Judging a stack unchanged without asking CloudFormation about it: what formwork last saw of
//! the stack (its desired state's fingerprint, and a stamp of the stack as listed) against the
//! same two now.
//!
//! The fingerprint digests everything a change set is made from: the stack's desired config
//! (template, parameter expressions, options, through its config digest), the parameter values
//! it resolves to and the tags. The stamp digests what one listing of the account's stacks says
//! of the stack: status, creation and last update times, parameters, tags, outputs and options, so an
//! update made outside formwork changes it. A record is made when formwork applied the stack
//! or saw, by comparison or by an empty change set, that it is what the fingerprint asks for.
//! When both agree with the record, the stack is unchanged and costs no call.
//!
//! The state store holds only the two digests, never a value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Plan;
use crate::aws::cfn::StackInfo;
use crate::store::{Millis, StackSeen};
use crate::template::sha256_hex;

/// Why a stack was judged unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Evidence {
    /// Its desired state and the stack as listed are those formwork recorded `at` (Unix
    /// milliseconds), when it applied the stack or last saw it unchanged: no call was made for it.
    Record { at: i64 },
    /// Its deployed template, parameters and tags were read and are the desired ones.
    Compared,
    /// CloudFormation's change set for it had no changes.
    ChangeSet,
}

impl Evidence {
    /// How a plan says it, after "no changes": `as last seen 2026-12-03 17:41 UTC`.
    pub fn describe(&self) -> String {
        match self {
            Evidence::Record { at } => {
                let when = aws_smithy_types::DateTime::from_millis(*at)
                    .fmt(aws_smithy_types::date_time::Format::DateTime)
                    .map(|t| t.chars().take(16).collect::<String>().replace('T', " "))
                    .unwrap_or_default();
                format!("as last seen {when} UTC")
            }
            Evidence::Compared => "template, parameters and tags compared".into(),
            Evidence::ChangeSet => "empty change set".into(),
        }
    }
}

/// The fingerprint of a stack's desired state: its config digest, the digest of the template it
/// submits (which, for a template read by URL, the config digest does not cover), resolved
/// parameter values (template defaults included) and tags without the commit tag.
pub fn fingerprint(
    config_hash: &str,
    template: &str,
    parameters: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> String {
    let doc = serde_json::json!({
        "config": config_hash,
        "template": template,
        "parameters": parameters,
        "tags": tags,
    });
    sha256_hex(doc.to_string().as_bytes())
}

/// The stamp of a stack as DescribeStacks shows it (its options too: termination protection,
/// service role, notification topics, rollback triggers, which an update outside formwork may
/// change without updating the stack).
pub fn stamp(stack: &StackInfo) -> String {
    let mut doc = serde_json::json!({
        "id": stack.stack_id,
        "status": stack.status,
        "updated": stack.last_updated,
        "parameters": stack.parameters,
        "tags": stack.tags,
        "outputs": stack.outputs,
    });
    let o = &stack.settings;
    // Left out when the stack has none, so stamps of stacks without options stay as they were.
    if *o != Default::default() {
        doc["settings"] = serde_json::json!({
            "termination_protection": o.termination_protection,
            "role": o.role_arn,
            "topics": o.notification_arns,
            "alarms": o.rollback_alarms,
            "monitoring": o.rollback_monitoring_minutes,
        });
    }
    sha256_hex(doc.to_string().as_bytes())
}

/// Whether a stack may be recorded or judged by a record at all: one at rest after a
/// successful operation.
pub fn at_rest(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE"
    )
}

/// Whether `record` shows the stack unchanged: same fingerprint, and the stack as listed now is
/// the one recorded.
pub fn unchanged_by_record(record: &StackSeen, fingerprint: &str, now: &StackInfo) -> bool {
    at_rest(&now.status) && record.fingerprint == fingerprint && record.stamp == stamp(now)
}

/// The records a live plan makes: the stacks it found unchanged by reading them (by comparison
/// or an empty change set), which later plans may then judge by record.
pub fn seen_in(plan: &Plan, at: Millis) -> Vec<StackSeen> {
    plan.environments
        .iter()
        .flat_map(|e| {
            e.units.iter().filter_map(move |u| {
                let read = matches!(
                    u.unchanged_by,
                    Some(Evidence::Compared | Evidence::ChangeSet)
                );
                let at_rest = u.stack_status.as_deref().is_some_and(at_rest);
                (read && at_rest).then_some(())?;
                Some(StackSeen {
                    environment: e.name.clone(),
                    stack: u.stack.clone(),
                    fingerprint: u.fingerprint.clone()?,
                    stamp: u.stamp.clone()?,
                    at,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> StackInfo {
        StackInfo {
            stack_id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/1".into(),
            name: "app".into(),
            status: "UPDATE_COMPLETE".into(),
            status_reason: None,
            outputs: BTreeMap::from([("Url".into(), "https://x".into())]),
            parameters: BTreeMap::from([("Size".into(), "2".into())]),
            tags: BTreeMap::from([("team".into(), "web".into())]),
            last_updated: Some("2026-11-30T10:00:00Z".into()),
            settings: Default::default(),
        }
    }

    fn record(fp: &str, s: &StackInfo) -> StackSeen {
        StackSeen {
            environment: "prod".into(),
            stack: "app".into(),
            fingerprint: fp.into(),
            stamp: stamp(s),
            at: 1,
        }
    }

    #[test]
    fn evidence_is_said_in_words() {
        assert_eq!(
            Evidence::Record {
                at: 1_796_147_260_000
            }
            .describe(),
            "as last seen 2026-12-01 17:47 UTC"
        );
        assert_eq!(Evidence::ChangeSet.describe(), "empty change set");
    }

    #[test]
    fn a_stack_as_recorded_is_unchanged_and_any_difference_is_not() {
        let fp = fingerprint(
            "cfg",
            "t",
            &BTreeMap::from([("Size".into(), "2".into())]),
            &BTreeMap::new(),
        );
        let s = stack();
        let r = record(&fp, &s);
        assert!(unchanged_by_record(&r, &fp, &s));

        // Updated outside formwork: only the time says so (same parameters, tags, outputs).
        let mut later = s.clone();
        later.last_updated = Some("2026-12-01T08:00:00Z".into());
        assert!(!unchanged_by_record(&r, &fp, &later));
        let mut other = s.clone();
        other.parameters.insert("Size".into(), "3".into());
        assert!(!unchanged_by_record(&r, &fp, &other));
        let mut other = s.clone();
        other.outputs.clear();
        assert!(!unchanged_by_record(&r, &fp, &other));
        // Deleted and created again under the same name.
        let mut other = s.clone();
        other.stack_id.push('0');
        assert!(!unchanged_by_record(&r, &fp, &other));
        // A failed update rolled back: not at rest as recorded.
        let mut other = s.clone();
        other.status = "UPDATE_ROLLBACK_COMPLETE".into();
        assert!(!unchanged_by_record(&record(&fp, &other), &fp, &other));

        // The desired state changed: a parameter value, the config, or a tag.
        let changed = fingerprint(
            "cfg",
            "t",
            &BTreeMap::from([("Size".into(), "3".into())]),
            &BTreeMap::new(),
        );
        assert!(!unchanged_by_record(&r, &changed, &s));
        assert_ne!(
            fp,
            fingerprint(
                "cfg2",
                "t",
                &BTreeMap::from([("Size".into(), "2".into())]),
                &BTreeMap::new()
            )
        );
        assert_ne!(
            fp,
            fingerprint(
                "cfg",
                "t",
                &BTreeMap::from([("Size".into(), "2".into())]),
                &BTreeMap::from([("team".into(), "web".into())])
            )
        );
    }
}
