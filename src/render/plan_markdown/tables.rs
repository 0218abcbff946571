//! The tables of a stack's section: resource changes, security changes, parameters and inputs
//! known only after apply, and the cells they are made of.

use crate::plan::model::OptionChange;
use std::fmt::Write as _;

use crate::plan::model::{
    Input, InputState, ParameterChange, ResourceAction, ResourceChange, SecurityChange,
    SecurityChangeKind,
};
use crate::render::markdown::{cell_code, clip, md_text};
use crate::render::plan_text::{changed_properties, resource_markers, security_kind_word};

/// Longest value shown in a table cell, in characters.
pub(super) const CELL_VALUE_MAX: usize = 200;

/// Most changed properties listed per resource.
const PROPERTIES_MAX: usize = 20;

/// One row per resource change: its action, logical id, type, replacement and the properties
/// it changes.
pub(super) fn resources_table(out: &mut String, resources: &[ResourceChange]) {
    let _ = writeln!(
        out,
        "| action | logical id | type | replacement | changes |\n|---|---|---|---|---|"
    );
    for r in resources {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            resource_action_word(r.action),
            cell_code(&r.logical_id),
            cell_code(&r.resource_type),
            replacement_cell(r),
            properties_cell(r)
        );
    }
}

/// One row per security change, those that broaden access marked.
pub(super) fn security_table(out: &mut String, security: &[SecurityChange]) {
    let _ = writeln!(
        out,
        "| | resource | kind | change | description |\n|---|---|---|---|---|"
    );
    for s in security {
        let _ = writeln!(out, "{}", security_row(s));
    }
}

/// One row per input known only after apply, with the value it has today when there is one.
pub(super) fn inputs_table(out: &mut String, inputs: &[Input], parameters: &[ParameterChange]) {
    let _ = writeln!(
        out,
        "| parameter | reference | from | state |\n|---|---|---|---|"
    );
    for i in inputs {
        let _ = writeln!(out, "{}", input_row(i, parameters));
    }
}

fn resource_action_word(a: ResourceAction) -> &'static str {
    match a {
        ResourceAction::Add => "add",
        ResourceAction::Modify => "modify",
        ResourceAction::Remove => "remove",
        ResourceAction::Import => "import",
        ResourceAction::Dynamic => "dynamic",
    }
}

fn replacement_cell(r: &ResourceChange) -> String {
    let markers: Vec<&str> = resource_markers(r)
        .into_iter()
        .filter(|m| !matches!(*m, "import" | "decided at apply"))
        .collect();
    match markers.first() {
        Some(&"replace") => {
            let rest = &markers[1..];
            if rest.is_empty() {
                "**yes**".to_string()
            } else {
                format!("**yes** ({})", rest.join(", "))
            }
        }
        Some(_) => markers.join(", "),
        None => String::new(),
    }
}

fn properties_cell(r: &ResourceChange) -> String {
    let props = changed_properties(r);
    let mut names: Vec<String> = props
        .iter()
        .take(PROPERTIES_MAX)
        .map(|(name, replaces)| {
            if *replaces {
                format!("{} (replaces)", cell_code(name))
            } else {
                cell_code(name)
            }
        })
        .collect();
    if props.len() > PROPERTIES_MAX {
        names.push(format!("and {} more", props.len() - PROPERTIES_MAX));
    }
    match &r.condition {
        Some(c) if names.is_empty() => format!("only if {} holds", cell_code(c)),
        Some(c) => format!("only if {} holds: {}", cell_code(c), names.join(", ")),
        None => names.join(", "),
    }
}

pub(super) fn change_word(c: SecurityChangeKind) -> &'static str {
    match c {
        SecurityChangeKind::Added => "added",
        SecurityChangeKind::Removed => "removed",
    }
}

fn security_row(s: &SecurityChange) -> String {
    let mut description = cell_code(&clip(&s.description, CELL_VALUE_MAX));
    if s.broadens {
        description.push_str(" — **broadens access**");
    }
    format!(
        "| {} | {} ({}) | {} | {} | {} |",
        if s.broadens { "⚠" } else { "" },
        cell_code(&s.resource),
        cell_code(&s.resource_type),
        security_kind_word(s.kind),
        change_word(s.change),
        description
    )
}

/// A value in a table cell: a code span, `****` for secrets, *unset* when absent.
fn value_cell(v: &Option<String>, secret: bool) -> String {
    match v {
        Some(_) if secret => "`****`".to_string(),
        Some(v) => cell_code(&clip(v, CELL_VALUE_MAX)),
        None => "*unset*".to_string(),
    }
}

/// The parameters with their values before and after (or only after, when none was set
/// before), secrets masked.
pub(super) fn parameters_table(out: &mut String, parameters: &[ParameterChange]) {
    let all_new = parameters.iter().all(|p| p.before.is_none());
    if all_new {
        let _ = writeln!(out, "| parameter | value | note |\n|---|---|---|");
    } else {
        let _ = writeln!(
            out,
            "| parameter | before | after | note |\n|---|---|---|---|"
        );
    }
    for p in parameters {
        let mut notes = Vec::new();
        let after = if p.known_after_apply {
            let mut note = Vec::new();
            if let Some(expr) = &p.expression {
                note.push(format!("from {}", cell_code(expr)));
            }
            if p.after.is_some() {
                note.push(format!("value today {}", value_cell(&p.after, p.secret)));
            }
            if !note.is_empty() {
                notes.push(note.join(", "));
            }
            "*known after apply*".to_string()
        } else {
            value_cell(&p.after, p.secret)
        };
        if p.secret {
            notes.push("secret".to_string());
        }
        if all_new {
            let _ = writeln!(
                out,
                "| {} | {after} | {} |",
                cell_code(&p.name),
                notes.join("; ")
            );
        } else {
            let _ = writeln!(
                out,
                "| {} | {} | {after} | {} |",
                cell_code(&p.name),
                value_cell(&p.before, p.secret),
                notes.join("; ")
            );
        }
    }
}

/// The stack options that change, before and after, and how each is applied.
pub(super) fn options_table(out: &mut String, options: &[OptionChange]) {
    let _ = writeln!(
        out,
        "| option | before | after | applied |\n|---|---|---|---|"
    );
    for o in options {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell_code(&o.option),
            value_cell(&o.before, false),
            cell_code(&clip(&o.after, CELL_VALUE_MAX)),
            crate::render::plan_text::option_how(o.kind)
        );
    }
}

fn input_row(i: &Input, parameters: &[ParameterChange]) -> String {
    let secret = parameters.iter().any(|p| p.name == i.parameter && p.secret);
    let state = match &i.state {
        InputState::KnownAfterApply { current: Some(v) } => {
            format!(
                "known after apply; value today {}",
                value_cell(&Some(v.clone()), secret)
            )
        }
        InputState::KnownAfterApply { current: None } => "known after apply".to_string(),
        InputState::Pending => "pending: the stack does not exist yet".to_string(),
    };
    let state = match (&i.state, &i.because) {
        (InputState::KnownAfterApply { .. }, Some(why)) => format!("{state} ({})", md_text(why)),
        _ => state,
    };
    format!(
        "| {} | {} | {} | {state} |",
        cell_code(&i.parameter),
        cell_code(&i.reference),
        cell_code(&i.from_stack)
    )
}
