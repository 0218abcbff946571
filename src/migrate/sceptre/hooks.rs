//! Sceptre's `hooks` as formwork hooks: `!cmd` hooks around `create`, `update` and `launch`
//! become `before_apply` and `after_apply` commands (those of `create` or `update` alone run
//! only for that action, through `$FORMWORK_ACTION`); every other hook — other events, other
//! hook types — is reported.

use super::emit::Y;
use super::read::StackFile;
use super::report::Report;
use crate::yaml::{Kind, Node};

/// The stack's hooks as formwork's `hooks:` fields (`before_apply`, `after_apply`), each a list
/// of `{run: …}`; what cannot be mapped is reported.
pub fn hooks(st: &StackFile, report: &mut Report) -> Vec<(String, Y)> {
    let Some(h) = st.config.fields.get("hooks") else {
        return Vec::new();
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    for (event, list) in h.node.entries() {
        let event = event.as_str().unwrap_or("?");
        let items: Vec<&Node> = match &list.kind {
            Kind::Seq(v) => v.iter().collect(),
            _ => vec![list],
        };
        // Whether it runs before, and for which action alone.
        let phase = match event {
            "before_launch" => Some((true, None)),
            "before_create" => Some((true, Some("create"))),
            "before_update" => Some((true, Some("update"))),
            "after_launch" => Some((false, None)),
            "after_create" => Some((false, Some("create"))),
            "after_update" => Some((false, Some("update"))),
            _ => None,
        };
        for i in items {
            let pos = (i.span.start.line, i.span.start.col);
            let shown = format!(
                "{event} hook `{} {}` of {}",
                i.tag.as_deref().unwrap_or("?"),
                i.as_str().unwrap_or("…"),
                st.file
            );
            let Some((is_before, only)) = phase else {
                report.add(
                    &h.file,
                    pos,
                    "hook",
                    shown,
                    "formwork runs hooks before and after a stack's apply only (before_apply, after_apply): do this in the CI workflow, or as a gate (pipeline.yml gates:) for a manual step",
                );
                continue;
            };
            match command(i) {
                Ok(run) => {
                    let run = match only {
                        Some(action) => {
                            format!("if [ \"$FORMWORK_ACTION\" = {action} ]; then {run}; fi")
                        }
                        None => run,
                    };
                    let target = if is_before { &mut before } else { &mut after };
                    target.push(serde_json::json!({ "run": run }));
                }
                Err(why) => report.add(&h.file, pos, "hook", shown, why),
            }
        }
    }
    let mut out = Vec::new();
    if !before.is_empty() {
        out.push((
            "before_apply".to_string(),
            Y::Json(serde_json::Value::Array(before)),
        ));
    }
    if !after.is_empty() {
        out.push((
            "after_apply".to_string(),
            Y::Json(serde_json::Value::Array(after)),
        ));
    }
    out
}

/// The command line of a `!cmd` hook (`!cmd "…"` or `!cmd {run: …, shell: …}`), with `${`
/// kept literal for formwork; why not, for anything else.
fn command(i: &Node) -> Result<String, &'static str> {
    if i.tag.as_deref() != Some("!cmd") {
        return Err(
            "only `!cmd` hooks have a formwork equivalent: run this in the CI workflow, or rewrite it as a command (hooks: in pipeline.yml)",
        );
    }
    let (run, shell) = match &i.kind {
        Kind::Map(_) => (
            i.get("run").and_then(Node::as_str),
            i.get("shell").and_then(Node::as_str),
        ),
        _ => (i.as_str(), None),
    };
    let Some(run) = run.filter(|r| !r.trim().is_empty()) else {
        return Err("a `!cmd` hook without a command: write the command in hooks: of pipeline.yml");
    };
    let run = match shell {
        None | Some("sh" | "/bin/sh") => run.to_string(),
        Some(shell) => format!("{shell} -c '{}'", run.replace('\'', "'\\''")),
    };
    Ok(run.replace("${", "$${"))
}
