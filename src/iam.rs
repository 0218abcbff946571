//! The least-privilege IAM policies formwork's own calls need, scoped to what a config deploys:
//! for the plan role (read stacks, make and delete change sets, read the SSM parameters the
//! config reads, upload templates to the artifact buckets) and for the apply role (the same,
//! and execute change sets, delete stacks). The resources a template creates need permissions
//! of their own: on the apply role, or better on a CloudFormation service role.
//!
//! The actions are those formwork calls (see `aws/`): CloudFormation DescribeStacks,
//! DescribeStackEvents, GetTemplate, CreateChangeSet, DescribeChangeSet, ListChangeSets,
//! DeleteChangeSet, ExecuteChangeSet, DeleteStack; for `formwork drift`, DetectStackDrift,
//! DetectStackResourceDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts;
//! DescribeStacks on the stacks of other environments whose outputs parameters take
//! (`${env:…}`), with AssumeRole on those environments' roles;
//! SSM GetParameters; Secrets Manager GetSecretValue on the secrets parameters take; S3 PutObject and GetObject; STS GetCallerIdentity; SNS Publish on the
//! topics of the environments' `notifications:` (the apply role; the plan role for those told
//! of drift), and GetParameters on the parameters they read secrets from; and, with a DynamoDB
//! state store, the item calls on its table.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::config::expr::Reference;
use crate::config::notifications::{NotificationKind, NotifyEvent};
use crate::desired::{DesiredEnvironment, TemplateRef};

/// Which role the policy is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Pull requests: read and make change sets, never execute one.
    Plan,
    /// Merges: also execute change sets and delete stacks that left the config.
    Apply,
}

/// The policy document for `role` over `environments`; `state_table` is the DynamoDB table of
/// the state store, when there is one.
pub fn policy(role: Role, environments: &[DesiredEnvironment], state_table: Option<&str>) -> Value {
    let mut stacks = BTreeSet::new();
    let mut change_sets = BTreeSet::new();
    let mut parameters = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    let mut buckets = BTreeSet::new();
    let mut roles = BTreeSet::new();
    let mut topics = BTreeSet::new();
    let mut service_roles = BTreeSet::new();
    let (mut policies, mut protection, mut options_update) = (false, false, false);
    let mut remote_stacks = BTreeSet::new();
    for env in environments {
        // Outputs of other environments' stacks, read with those environments' sessions.
        for r in env.remote.stacks.values() {
            remote_stacks.insert(format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/*",
                r.stack_region, r.account, r.stack_name
            ));
            if let Some(role) = &r.role_arn {
                roles.insert(role.clone());
            }
        }
        let (region, account) = (&env.region, &env.account);
        for n in &env.notifications {
            // Notifications of applies go out as the apply role; of drift, as either role.
            if let NotificationKind::Sns { topic_arn } = &n.kind
                && (role == Role::Apply || n.wants(NotifyEvent::Drift))
            {
                topics.insert(topic_arn.clone());
            }
            for p in n.ssm_parameters() {
                parameters.insert(format!(
                    "arn:aws:ssm:{region}:{account}:parameter/{}",
                    p.trim_start_matches('/')
                ));
            }
        }
        for u in env.units.values() {
            // Every region the environment's stacks live in.
            change_sets.insert(format!(
                "arn:aws:cloudformation:{}:{account}:changeSet/formwork-*/*",
                u.region
            ));
            if u.capabilities
                .contains(&crate::template::Capability::AutoExpand)
            {
                // Change sets of templates with transforms are authorised on the transform too.
                change_sets.insert(format!(
                    "arn:aws:cloudformation:{}:aws:transform/*",
                    u.region
                ));
            }
            // Values are read in the stack's region.
            let region = &u.region;
            let o = &u.options;
            service_roles.extend(o.service_role.clone());
            policies |= o.stack_policy.is_some();
            protection |= o.termination_protection.is_some();
            // Options that travel with a change set are updated alone by UpdateStack.
            options_update |=
                o.service_role.is_some() || o.notification_arns.is_some() || o.rollback.is_some();
            stacks.insert(format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/*",
                u.region, u.account, u.stack_name
            ));
            if let TemplateRef::Local { nested, .. } = &u.template {
                // Nested stacks are named after their parent.
                if !nested.is_empty() {
                    stacks.insert(format!(
                        "arn:aws:cloudformation:{}:{}:stack/{}-*/*",
                        u.region, u.account, u.stack_name
                    ));
                }
            }
            for p in u.parameters.values() {
                for r in p.value.references() {
                    if let Reference::Secret { name, .. } = r {
                        // Secrets Manager ends a secret's ARN with `-` and six random
                        // characters; a name with variables left: everything under its
                        // literal start.
                        let arn_name = match name.as_literal() {
                            Some(n) => format!("{n}-??????"),
                            None => format!(
                                "{}*",
                                name.to_string().split("${").next().unwrap_or_default()
                            ),
                        };
                        secrets.insert(format!(
                            "arn:aws:secretsmanager:{region}:{account}:secret:{arn_name}"
                        ));
                    }
                    if let Reference::Ssm(path) = r {
                        let name = path.as_literal().unwrap_or_else(|| {
                            // A path with variables left: everything under its literal start.
                            let text = path.to_string();
                            let start = text.split("${").next().unwrap_or_default();
                            format!("{start}*")
                        });
                        parameters.insert(format!(
                            "arn:aws:ssm:{region}:{account}:parameter/{}",
                            name.trim_start_matches('/')
                        ));
                    }
                }
            }
        }
        if let Some(b) = &env.artifact_bucket {
            buckets.insert(format!(
                "arn:aws:s3:::{b}/{}/*",
                crate::aws::s3::TEMPLATE_PREFIX
            ));
        }
        if let Some(r) = &env.role_arn {
            roles.insert(r.clone());
        }
    }
    let mut cfn_actions = vec![
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplate",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ListChangeSets",
        "cloudformation:DeleteChangeSet",
        // `formwork drift` (read-only: a detection records its result, changes no resource).
        "cloudformation:DetectStackDrift",
        "cloudformation:DetectStackResourceDrift",
        "cloudformation:DescribeStackResourceDrifts",
    ];
    if policies {
        cfn_actions.push("cloudformation:GetStackPolicy");
    }
    if role == Role::Apply {
        cfn_actions.extend([
            "cloudformation:ExecuteChangeSet",
            "cloudformation:DeleteStack",
        ]);
        // Stack options: the ones no change set carries, and an update of options alone.
        if policies {
            cfn_actions.push("cloudformation:SetStackPolicy");
        }
        if protection {
            cfn_actions.push("cloudformation:UpdateTerminationProtection");
        }
        if options_update {
            cfn_actions.push("cloudformation:UpdateStack");
        }
    }
    let list = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
    let mut statements = vec![
        json!({
            "Sid": "Stacks",
            "Effect": "Allow",
            "Action": cfn_actions,
            "Resource": list(stacks.union(&change_sets).cloned().collect()),
        }),
        // DescribeStacks without a stack name (one listing of the account's stacks, which a
        // plan of many stacks makes instead of describing each) is allowed on `*` only.
        json!({
            "Sid": "ListStacks",
            "Effect": "Allow",
            "Action": ["cloudformation:DescribeStacks"],
            "Resource": "*",
        }),
        // A drift detection's status is asked for by its id, which IAM authorizes on `*` only.
        json!({
            "Sid": "DriftDetectionStatus",
            "Effect": "Allow",
            "Action": ["cloudformation:DescribeStackDriftDetectionStatus"],
            "Resource": "*",
        }),
        json!({
            "Sid": "WhoAmI",
            "Effect": "Allow",
            "Action": ["sts:GetCallerIdentity"],
            "Resource": "*",
        }),
    ];
    let remote_stacks: BTreeSet<String> = remote_stacks.difference(&stacks).cloned().collect();
    if !remote_stacks.is_empty() {
        statements.push(json!({
            "Sid": "OtherEnvironmentsOutputs",
            "Effect": "Allow",
            "Action": ["cloudformation:DescribeStacks"],
            "Resource": list(remote_stacks),
        }));
    }
    if !parameters.is_empty() {
        statements.push(json!({
            "Sid": "ReadParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": list(parameters),
        }));
        statements.push(json!({
            "Sid": "DecryptSecureStrings",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},
        }));
    }
    if !secrets.is_empty() {
        statements.push(json!({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": list(secrets),
        }));
        statements.push(json!({
            "Sid": "DecryptSecrets",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
        }));
    }
    if !buckets.is_empty() {
        statements.push(json!({
            "Sid": "Templates",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": list(buckets),
        }));
    }
    if !topics.is_empty() {
        statements.push(json!({
            "Sid": "Notifications",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": list(topics),
        }));
    }
    if !service_roles.is_empty() {
        // A change set (and an update) naming a service role passes it to CloudFormation.
        statements.push(json!({
            "Sid": "ServiceRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": list(service_roles),
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        }));
    }
    if !roles.is_empty() {
        statements.push(json!({
            "Sid": "EnvironmentRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": list(roles),
        }));
    }
    if let Some(table) = state_table {
        statements.push(json!({
            "Sid": "StateStore",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:TransactWriteItems",
            ],
            "Resource": [
                format!("arn:aws:dynamodb:*:*:table/{table}"),
                format!("arn:aws:dynamodb:*:*:table/{table}/index/*"),
            ],
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_policy_allows_drift_detection() {
        let p = policy(Role::Plan, &[], None);
        let statements = p["Statement"].as_array().unwrap();
        let allows = |action: &str, resource: Option<&str>| {
            statements.iter().any(|s| {
                s["Action"].as_array().unwrap().iter().any(|a| a == action)
                    && resource.is_none_or(|r| s["Resource"] == r)
            })
        };
        for action in [
            "cloudformation:DetectStackDrift",
            "cloudformation:DetectStackResourceDrift",
            "cloudformation:DescribeStackResourceDrifts",
        ] {
            assert!(allows(action, None), "{action}");
        }
        assert!(allows(
            "cloudformation:DescribeStackDriftDetectionStatus",
            Some("*")
        ));
    }
}
