//! A unit's stack options (`options:`): the pipeline's defaults, the stack's, the
//! environment's and the environment's for the stack, the later winning field by field; text
//! filled in and each value held to CloudFormation's rules before anything is planned.

use std::sync::Arc;

use super::scope::{Scope, static_value};
use super::unit::StackInEnv;
use crate::config::{RollbackDef, StackOptionsDef};
use crate::desired::{Rollback, StackOptions};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::Spanned;

/// CloudFormation's limits. Source: AWS CloudFormation API reference, `CreateChangeSet`
/// (NotificationARNs: 5 items), `RollbackConfiguration` (RollbackTriggers: 5 items,
/// MonitoringTimeInMinutes: 0–180) and `SetStackPolicy` (StackPolicyBody: 16,384 bytes).
const MAX_TOPICS: usize = 5;
const MAX_TRIGGERS: usize = 5;
const MAX_MONITORING_MINUTES: u32 = 180;
const MAX_POLICY_BYTES: usize = 16_384;

/// Checks the text of options written in `file` (which may only use `${var.…}` and
/// `${env.…}`), for a pipeline check or a stack an environment does not deploy.
pub(super) fn check_option_texts(
    p: &crate::config::Pipeline,
    file: &Arc<str>,
    o: &StackOptionsDef,
    d: &mut Diagnostics,
) {
    use super::references::check_static_in;
    if let Some(r) = &o.service_role {
        check_static_in(p, file, d, r, "a service role");
    }
    for arn in o.notification_arns.iter().flatten() {
        check_static_in(p, file, d, arn, "an SNS topic");
    }
    for arn in o.rollback.iter().flat_map(|r| &r.alarms) {
        check_static_in(p, file, d, arn, "a CloudWatch alarm");
    }
}

/// The levels options are written at, in the order they apply, each with its file.
fn levels<'a>(s: &StackInEnv<'a>) -> Vec<(&'a Arc<str>, &'a StackOptionsDef)> {
    let (pf, ef) = (&s.p.file, &s.env.file);
    let mut out = vec![
        (pf, &s.p.def.defaults.options),
        (pf, &s.stack.options),
        (ef, &s.env.def.options),
    ];
    if let Some(o) = s.over {
        out.push((ef, &o.options));
    }
    out
}

/// The value of one option: the last level that sets it, with its file.
fn pick<'a, T>(
    levels: &[(&'a Arc<str>, &'a StackOptionsDef)],
    field: impl Fn(&'a StackOptionsDef) -> Option<&'a T>,
) -> Option<(&'a Arc<str>, &'a T)> {
    levels
        .iter()
        .rev()
        .find_map(|(file, o)| field(o).map(|v| (*file, v)))
}

/// The stack options of `s`; an option with a problem is left out (reported).
pub(super) fn resolve_options(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> StackOptions {
    let levels = levels(s);
    let text = |file: &Arc<str>, v: &Spanned<String>, what: &str, d: &mut Diagnostics| {
        static_value(s.p, file, v, scope, what, d)
    };
    let mut out = StackOptions::default();
    if let Some((file, v)) = pick(&levels, |o| o.service_role.as_ref()) {
        out.service_role = text(file, v, "a service role", d)
            .filter(|arn| check_arn(file, v, arn, "iam", ":role/", "an IAM role", d));
    }
    out.termination_protection =
        pick(&levels, |o| o.termination_protection.as_ref()).map(|(_, v)| v.value);
    let policy = pick(&levels, |o| o.stack_policy.as_ref());
    if let Some((file, v)) = policy {
        out.stack_policy = policy_text(file, v, "stack_policy", d);
    }
    if let Some((file, v)) = pick(&levels, |o| o.stack_policy_during_update.as_ref()) {
        if policy.is_none() {
            d.push(
                Diagnostic::error(format!(
                    "stack `{}` has `stack_policy_during_update` but no `stack_policy` to set again after the update",
                    s.key.value
                ))
                .at(Loc::new(file, v.span))
                .help("add `stack_policy:` (at any level of the stack's options): formwork sets it back when the update ends"),
            );
        } else {
            out.stack_policy_during_update = policy_text(file, v, "stack_policy_during_update", d);
        }
    }
    if let Some((file, arns)) = pick(&levels, |o| o.notification_arns.as_ref()) {
        out.notification_arns = arn_list(
            file,
            arns,
            MAX_TOPICS,
            ("sns", ":", "an SNS topic", "notification topics"),
            &text,
            d,
        );
    }
    if let Some((file, r)) = pick(&levels, |o| o.rollback.as_ref()) {
        out.rollback = rollback(file, r, &text, d);
    }
    out.on_failure = pick(&levels, |o| o.on_failure.as_ref()).map(|(_, v)| v.value);
    out
}

/// Text filled in with the environment, for one option value.
type FillText<'f> =
    dyn Fn(&Arc<str>, &Spanned<String>, &str, &mut Diagnostics) -> Option<String> + 'f;

/// A list of ARNs of one service, filled in, sorted; `None` when one is wrong (reported).
fn arn_list(
    file: &Arc<str>,
    arns: &[Spanned<String>],
    max: usize,
    (service, marker, what, plural): (&str, &str, &str, &str),
    text: &FillText<'_>,
    d: &mut Diagnostics,
) -> Option<Vec<String>> {
    if arns.len() > max
        && let Some(first) = arns.get(max)
    {
        d.push(
            Diagnostic::error(format!(
                "{} {plural} given; CloudFormation takes at most {max}",
                arns.len()
            ))
            .at(Loc::new(file, first.span)),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for v in arns {
        match text(file, v, what, d) {
            Some(arn) if check_arn(file, v, &arn, service, marker, what, d) => out.push(arn),
            _ => ok = false,
        }
    }
    out.sort();
    out.dedup();
    ok.then_some(out)
}

/// Rollback triggers, checked; `None` when something is wrong (reported).
fn rollback(
    file: &Arc<str>,
    r: &RollbackDef,
    text: &FillText<'_>,
    d: &mut Diagnostics,
) -> Option<Rollback> {
    let alarms = arn_list(
        file,
        &r.alarms,
        MAX_TRIGGERS,
        (
            "cloudwatch",
            ":alarm:",
            "a CloudWatch alarm",
            "rollback alarms",
        ),
        text,
        d,
    );
    let minutes = r.monitoring_minutes.as_ref().map_or(0, |m| m.value);
    if let Some(m) = &r.monitoring_minutes
        && m.value > MAX_MONITORING_MINUTES
    {
        d.push(
            Diagnostic::error(format!(
                "monitoring_minutes is {}; CloudFormation allows 0 to {MAX_MONITORING_MINUTES}",
                m.value
            ))
            .at(Loc::new(file, m.span)),
        );
        return None;
    }
    Some(Rollback {
        alarms: alarms?,
        monitoring_minutes: minutes,
    })
}

/// Whether `arn` is an ARN of `service` whose resource part holds `marker`; reported if not.
fn check_arn(
    file: &Arc<str>,
    v: &Spanned<String>,
    arn: &str,
    service: &str,
    marker: &str,
    what: &str,
    d: &mut Diagnostics,
) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && (parts[4].is_empty()
            || parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()))
        && format!(":{}", parts[5]).contains(marker);
    if !ok {
        let example = match service {
            "iam" => "arn:aws:iam::111122223333:role/cloudformation-deploy",
            "sns" => "arn:aws:sns:us-east-1:111122223333:stack-events",
            _ => "arn:aws:cloudwatch:us-east-1:111122223333:alarm:api-errors",
        };
        d.push(
            Diagnostic::error(format!("`{arn}` is not the ARN of {what}"))
                .at(Loc::new(file, v.span))
                .help(format!("write it as `{example}`")),
        );
    }
    ok
}

/// A stack policy written in YAML, checked and as canonical JSON; `None` when it is not a
/// policy CloudFormation takes (reported).
fn policy_text(
    file: &Arc<str>,
    v: &Spanned<serde_json::Value>,
    field: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let loc = Loc::new(file, v.span);
    let problem = policy_problem(&v.value);
    if let Some(p) = problem {
        d.push(
            Diagnostic::error(format!("`{field}` is not a stack policy: {p}"))
                .at(loc)
                .help("write the policy document in YAML: `Statement:` with items of `Effect` (Allow or Deny), `Action` (`Update:*`, `Update:Modify`, `Update:Replace`, `Update:Delete`), `Principal: \"*\"` and `Resource` (`LogicalResourceId/NAME` or `*`)"),
        );
        return None;
    }
    let text = crate::template::canonical_json(&v.value);
    if text.len() > MAX_POLICY_BYTES {
        d.push(
            Diagnostic::error(format!(
                "`{field}` is {} bytes as JSON; CloudFormation takes at most {MAX_POLICY_BYTES}",
                text.len()
            ))
            .at(loc),
        );
        return None;
    }
    Some(text)
}

/// What is wrong with a stack policy document, if anything.
fn policy_problem(v: &serde_json::Value) -> Option<String> {
    let Some(statements) = v.get("Statement") else {
        return Some("it has no `Statement`".into());
    };
    let list = match statements {
        serde_json::Value::Array(items) if !items.is_empty() => items.as_slice(),
        serde_json::Value::Object(_) => std::slice::from_ref(statements),
        _ => return Some("`Statement` must be a statement or a non-empty list of them".into()),
    };
    for (i, st) in list.iter().enumerate() {
        let n = i + 1;
        match st.get("Effect").and_then(|e| e.as_str()) {
            Some("Allow" | "Deny") => {}
            _ => {
                return Some(format!(
                    "statement {n} needs `Effect: Allow` or `Effect: Deny`"
                ));
            }
        }
        if st.get("Action").is_none() && st.get("NotAction").is_none() {
            return Some(format!("statement {n} needs `Action` or `NotAction`"));
        }
        if st.get("Resource").is_none() && st.get("NotResource").is_none() {
            return Some(format!("statement {n} needs `Resource` or `NotResource`"));
        }
        if st.get("Principal").is_none() {
            return Some(format!("statement {n} needs `Principal: \"*\"`"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_are_checked() {
        assert!(policy_problem(&json!({"Statement": [{"Effect": "Deny", "Action": "Update:Replace", "Principal": "*", "Resource": "LogicalResourceId/Db"}]})).is_none());
        assert_eq!(
            policy_problem(&json!({"Statements": []})).unwrap(),
            "it has no `Statement`"
        );
        assert!(
            policy_problem(&json!({"Statement": [{"Effect": "Maybe"}]}))
                .unwrap()
                .contains("statement 1 needs `Effect")
        );
        assert!(
            policy_problem(
                &json!({"Statement": [{"Effect": "Allow", "Action": "Update:*", "Resource": "*"}]})
            )
            .unwrap()
            .contains("Principal")
        );
    }
}
