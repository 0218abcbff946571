//! A stack's Sceptre settings that CloudFormation keeps beside its template, as formwork stack
//! options (`options:` in pipeline.yml and environment.yml):
//!
//! - `cloudformation_service_role` (or its deprecated alias `role_arn`) → `service_role`;
//! - `protect: true` → `termination_protection: true` (CloudFormation refuses deletion; Sceptre
//!   refused every action on the stack, which formwork does not: noted);
//! - `stack_policy: FILE` → `stack_policy`, the JSON file (relative to the project directory)
//!   written inline as YAML. Sceptre itself reads no such key: it sets policies only with
//!   `sceptre set-policy STACK FILE`; the key says which file that is;
//! - `notifications` → `notification_arns`;
//! - `on_failure: DO_NOTHING|ROLLBACK|DELETE` → `on_failure: do_nothing|rollback|delete`, and
//!   `disable_rollback: true` → `on_failure: do_nothing` (creations; noted that a failed update
//!   still rolls back).
//!
//! Option values take fixed text, `${var.…}` and `${env.…}` only: a value from a stack output
//! or a parameter store resolver is reported where it is written.

use std::path::{Component, Path};

use super::emit::Y;
use super::read::{Entry, StackFile};
use super::report::Report;
use super::resolvers::{self, Ctx, Value};
use crate::yaml::{Kind, Style};

/// Policy files larger than this are not read (CloudFormation takes 16 KB).
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// The stack's options as `(field, value)` pairs, in formwork's field order; what cannot be
/// mapped is reported and left out.
pub fn options(st: &StackFile, ctx: &Ctx<'_>, dir: &Path, report: &mut Report) -> Vec<(String, Y)> {
    let c = &st.config;
    let mut out = Vec::new();

    let preferred = c
        .fields
        .get("cloudformation_service_role")
        .filter(|e| !e.node.is_null());
    let alias = c.fields.get("role_arn").filter(|e| !e.node.is_null());
    if let (Some(_), Some(a)) = (preferred, alias) {
        report.add(
            &a.file,
            a.pos(),
            "stack-field",
            format!(
                "{} sets both `cloudformation_service_role` and its deprecated alias `role_arn` (Sceptre refuses that)",
                st.file
            ),
            "the converted stack uses cloudformation_service_role; remove role_arn",
        );
    }
    if let Some(e) = preferred.or(alias)
        && let Some(v) = text(e, "the CloudFormation service role", st, ctx, report)
    {
        out.push(("service_role".into(), Y::Str(v)));
    }

    if let Some(e) = c.fields.get("protect") {
        match boolean(e) {
            Some(true) => {
                out.push(("termination_protection".into(), Y::Bool(true)));
                let (l, col) = e.pos();
                report.note(format!(
                    "{}:{l}:{col}: `protect: true` became `termination_protection: true`: CloudFormation refuses to delete the stack. Sceptre refused every action on it, updates included; formwork updates it (guard updates with a stack_policy or a policy rule, docs/policy.md). Sceptre never set termination protection, so the first apply turns it on.",
                    e.file
                ));
            }
            Some(false) => {}
            None => report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!("`protect` of {} is neither true nor false", st.file),
                "write `termination_protection: true` in the stack's options by hand if the stack is protected",
            ),
        }
    }

    if let Some(e) = c.fields.get("stack_policy").filter(|e| !e.node.is_null())
        && let Some(p) = policy(e, st, dir, report)
    {
        out.push(("stack_policy".into(), Y::Json(p)));
    }

    if c.fields.contains_key("notifications$written") {
        let mut arns = Vec::new();
        let mut ok = true;
        for e in &c.notifications {
            match text(e, "a notification topic", st, ctx, report) {
                Some(v) => arns.push(v),
                None => ok = false,
            }
        }
        if ok {
            out.push(("notification_arns".into(), Y::List(arns)));
        }
    }

    if let Some(v) = on_failure(st, report) {
        out.push(("on_failure".into(), Y::Str(v.into())));
    }
    out
}

/// `on_failure` from `disable_rollback: true` (which wins in Sceptre) or `on_failure`.
fn on_failure(st: &StackFile, report: &mut Report) -> Option<&'static str> {
    let c = &st.config;
    let given = c.fields.get("on_failure").filter(|e| !e.node.is_null());
    if let Some(e) = c
        .fields
        .get("disable_rollback")
        .filter(|e| !e.node.is_null())
    {
        match boolean(e) {
            Some(true) => {
                let (l, col) = e.pos();
                report.note(format!(
                    "{}:{l}:{col}: `disable_rollback: true` became `on_failure: do_nothing`: a failed creation keeps what it made. Sceptre also left a failed update as it failed (UPDATE_FAILED); with formwork a failed update rolls back.",
                    e.file
                ));
                if let Some(o) = given {
                    let (l, col) = o.pos();
                    report.note(format!(
                        "{}:{l}:{col}: `on_failure` is ignored, as Sceptre ignores it beside `disable_rollback: true`",
                        o.file
                    ));
                }
                return Some("do_nothing");
            }
            Some(false) => {}
            None => {
                report.add(
                    &e.file,
                    e.pos(),
                    "stack-field",
                    format!("`disable_rollback` of {} is neither true nor false (Sceptre refuses it)", st.file),
                    "write `on_failure: do_nothing` in the stack's options by hand if a failed creation should keep its resources",
                );
                return None;
            }
        }
    }
    let e = given?;
    let v = e
        .plain_str()
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_default();
    match v.as_str() {
        "DO_NOTHING" => Some("do_nothing"),
        "ROLLBACK" => Some("rollback"),
        "DELETE" => Some("delete"),
        _ => {
            report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!("`on_failure` of {} is none of DO_NOTHING, ROLLBACK, DELETE", st.file),
                "write `on_failure: do_nothing`, `rollback` or `delete` in the stack's options by hand",
            );
            None
        }
    }
}

/// A YAML boolean written plainly (`true`, `False`, …); `None` for anything else.
fn boolean(e: &Entry) -> Option<bool> {
    if e.node.tag.is_some() {
        return None;
    }
    match &e.node.kind {
        Kind::Scalar(s) if s.style == Style::Plain => match s.text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An option's text: plain text (a `${` kept literal), or what a resolver gives when it is
/// fixed text or `${var.…}`/`${env.…}`; `None` when it cannot be (reported).
fn text(
    e: &Entry,
    what: &str,
    st: &StackFile,
    ctx: &Ctx<'_>,
    report: &mut Report,
) -> Option<String> {
    if let Some(s) = e.plain_str() {
        return Some(resolvers::literal(s));
    }
    let conv = resolvers::convert(e, ctx, report)?;
    match conv.value {
        Value::Scalar(s) if conv.refs.is_empty() && fixed(&s) => Some(s),
        _ => {
            report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!(
                    "{what} of {} takes a value formwork cannot put in a stack option (a stack output, a parameter store value or a list)",
                    st.file
                ),
                "stack options take fixed text, ${var.…} and ${env.…}: write the value in the stack's options by hand (the option was left out)",
            );
            None
        }
    }
}

/// Whether every expression in `s` is a `${var.…}` or `${env.…}` (`$${` being literal).
fn fixed(s: &str) -> bool {
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest[..i].ends_with('$') {
            rest = &rest[i + 2..];
            continue;
        }
        let expr = &rest[i + 2..];
        if !(expr.starts_with("var.") || expr.starts_with("env.")) {
            return false;
        }
        rest = expr;
    }
    true
}

/// The policy document of the JSON file `stack_policy` names, relative to the project
/// directory; `None` when it cannot be read (reported).
fn policy(e: &Entry, st: &StackFile, dir: &Path, report: &mut Report) -> Option<serde_json::Value> {
    let help_by_hand = "write the policy under the stack's `options: stack_policy:` by hand (the option was left out)";
    let Some(path) = e.plain_str().map(str::trim) else {
        report.add(
            &e.file,
            e.pos(),
            "stack-field",
            format!(
                "`stack_policy` of {} is not the path of a JSON file",
                st.file
            ),
            help_by_hand,
        );
        return None;
    };
    let rel = Path::new(path);
    if path.is_empty()
        || path.contains('\\')
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        report.add(
            &e.file,
            e.pos(),
            "stack-field",
            format!("stack policy {path} lies outside the project directory"),
            "move it into the project, name it relative to the project directory and import again",
        );
        return None;
    }
    let full = dir.join(rel);
    let shown = path.trim_start_matches("./");
    let bytes = match std::fs::metadata(&full) {
        Ok(m) if m.is_file() && m.len() <= MAX_POLICY_BYTES => std::fs::read(&full).ok(),
        Ok(m) if m.is_file() => {
            report.add(
                &e.file,
                e.pos(),
                "stack-field",
                format!("stack policy {shown} is larger than {MAX_POLICY_BYTES} bytes"),
                help_by_hand,
            );
            return None;
        }
        _ => None,
    };
    let Some(bytes) = bytes else {
        report.add(
            &e.file,
            e.pos(),
            "stack-field",
            format!("stack policy {shown} is not a file of the project (paths are relative to the project directory)"),
            "fix the path and import again, or write the policy in the stack's options by hand",
        );
        return None;
    };
    let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(err) => {
            report.add(
                shown,
                (err.line() as u32, err.column() as u32),
                "stack-policy",
                format!("stack policy {shown} is not valid JSON: {err}"),
                "fix the file (CloudFormation refuses it too) and import again",
            );
            return None;
        }
    };
    if !doc.get("Statement").is_some_and(|s| s.is_array()) {
        report.add(
            shown,
            (1, 1),
            "stack-policy",
            format!("stack policy {shown} has no `Statement` list"),
            "make it a stack policy ({\"Statement\": [...]}) and import again",
        );
        return None;
    }
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_text_allows_variables_and_the_environment_only() {
        assert!(fixed("arn:aws:iam::1:role/x"));
        assert!(fixed("arn:aws:iam::${env.account}:role/${var.Role}"));
        assert!(fixed("a $${literal}"));
        assert!(!fixed("${ssm:/x}"));
        assert!(!fixed("${net.Arn}"));
        assert!(!fixed("${env:prod.net.Arn}"));
    }
}
