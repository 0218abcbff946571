//! The terminal form of a plan (`formwork plan`).
//!
//! Layout: a header line saying what was planned; per environment a table of its stacks (action,
//! resource counts, status), warnings about destructive changes and removed stacks, then the
//! details of every stack that has something to show (reasons, resource changes, parameters,
//! inputs, security changes, template diff, message); last, what the policy rules found
//! (`policy_text`) and one line of totals (`plan_totals`).
//!
//! Values of secret parameters are shown as `****` whatever the plan holds. ANSI colours are
//! written only when asked for; widths are counted in characters.

use crate::plan::model::{OptionChange, OptionKind};
use std::fmt::Write as _;

use crate::desired::MASK;
use crate::plan::model::{
    Action, Input, InputState, ParameterChange, Plan, Replacement, ReplacementSource,
    RequiresRecreation, ResourceAction, ResourceChange, SecurityChange, SecurityChangeKind,
    SecurityKind, UnitPlan,
};
use crate::render::plan_totals::Totals;
use crate::render::policy_text::{policy_findings, policy_line};
use crate::render::reason_text;
use crate::render::terminal::{Style, printable};

/// Longest status note in the summary table, in characters.
const STATUS_WIDTH: usize = 60;

/// Renders a plan for a terminal. `color` adds ANSI colours.
pub fn plan_text(plan: &Plan, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let _ = writeln!(out, "{}", st.bold(&header_line(plan)));
    for env in &plan.environments {
        let _ = writeln!(
            out,
            "\n{}",
            st.bold(&format!(
                "{} (pipeline {}, account {}, region {})",
                env.name, env.pipeline, env.account, env.region
            ))
        );
        if env.units.is_empty() {
            let _ = writeln!(out, "  no stacks planned");
            continue;
        }
        summary_table(&mut out, plan, &env.units, st);
        warnings(&mut out, plan, &env.units, st);
        policy_findings(&mut out, &env.units, st);
        for u in env.units.iter().filter(|u| has_details(u)) {
            details(&mut out, plan, u, st);
        }
    }
    out.push('\n');
    if let Some(line) = policy_line(plan) {
        let blocked = !plan.blocking_findings().is_empty();
        let _ = writeln!(out, "{}", if blocked { st.red(&line) } else { line });
    }
    let _ = writeln!(out, "{}", st.bold(&Totals::of(plan).sentence()));
    out
}

/// `Plan of feature (a91e7f3), compared with main (5d0c1e2) (offline) — plan <id>`.
fn header_line(plan: &Plan) -> String {
    let mut line = format!(
        "Plan of {} ({})",
        plan.head.rev,
        short_commit(&plan.head.commit)
    );
    if let Some(base) = &plan.base {
        let _ = write!(
            line,
            ", compared with {} ({})",
            base.rev,
            short_commit(&base.commit)
        );
    }
    if plan.offline {
        line.push_str(" (offline)");
    }
    let _ = write!(line, " — plan {}", plan.id);
    line
}

/// The per-environment table: stack, action, counts, status.
fn summary_table(out: &mut String, plan: &Plan, units: &[UnitPlan], st: Style) {
    let rows: Vec<[String; 7]> = units
        .iter()
        .map(|u| {
            let [add, modify, remove, replace] = count_cells(u);
            [
                printable(&u.stack),
                action_word(u.action).to_string(),
                add,
                modify,
                remove,
                replace,
                printable(&status_text(plan, u)),
            ]
        })
        .collect();
    let head = [
        "stack", "action", "add", "modify", "remove", "replace", "status",
    ];
    let mut widths = head.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let head_line = format!(
        "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {:>w5$}  {}",
        head[0],
        head[1],
        head[2],
        head[3],
        head[4],
        head[5],
        head[6],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2],
        w3 = widths[3],
        w4 = widths[4],
        w5 = widths[5],
    );
    let _ = writeln!(out, "{}", st.dim(head_line.trim_end()));
    for (row, u) in rows.iter().zip(units) {
        // Pad first, then colour: escape codes must not count towards the width.
        let action = format!("{:<w$}", row[1], w = widths[1]);
        let line = format!(
            "  {:<w0$}  {}  {:>w2$}  {:>w3$}  {:>w4$}  {:>w5$}  {}",
            row[0],
            st.action(u.action, &action),
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            w0 = widths[0],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5],
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The warning lines of an environment: destructive changes, then stacks that left the config.
fn warnings(out: &mut String, plan: &Plan, units: &[UnitPlan], st: Style) {
    let destructive: Vec<String> = units
        .iter()
        .filter(|u| destroys(plan, u))
        .map(|u| format!("{} ({})", u.stack, destruction(u)))
        .collect();
    let removed: Vec<&UnitPlan> = units
        .iter()
        .filter(|u| u.action == Action::Remove && !already_gone(plan, u))
        .collect();
    if destructive.is_empty() && removed.is_empty() {
        return;
    }
    out.push('\n');
    if !destructive.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            st.yellow(&format!(
                "warning: destructive changes: {}",
                destructive.join(", ")
            ))
        );
    }
    for u in removed {
        let _ = writeln!(
            out,
            "  {}",
            st.yellow(&format!(
                "warning: {} ({}) is no longer in the config; it will be deleted only with \
                 --allow-delete",
                u.stack,
                place(u)
            ))
        );
    }
}

/// A stack's CloudFormation name, with its region when it has one of its own.
fn place(u: &UnitPlan) -> String {
    match &u.region {
        Some(region) => format!("{} in {region}", u.stack_name),
        None => u.stack_name.clone(),
    }
}

/// The details of one stack.
fn details(out: &mut String, plan: &Plan, u: &UnitPlan, st: Style) {
    let mut title = format!("{} ({}): {}", u.stack, place(u), action_word(u.action));
    if let Some(cs) = &u.change_set {
        let _ = write!(title, ", change set {}", cs.name);
    } else if plan.offline && matches!(u.action, Action::Create | Action::Update) {
        title.push_str(", predicted offline");
    }
    let _ = writeln!(out, "\n  {}", st.bold(&title));
    if matches!(u.action, Action::Blocked | Action::Failed)
        && let Some(status) = &u.stack_status
    {
        let mut line = format!("stack status: {status}");
        if let Some(when) = &u.last_updated {
            let _ = write!(line, ", last updated {when}");
        }
        let _ = writeln!(out, "    {}", printable(&line));
    }
    if !u.reasons.is_empty() {
        let _ = writeln!(out, "    why:");
        for r in &u.reasons {
            let _ = writeln!(out, "      {}", printable(&reason_text(r)));
        }
    }
    if !u.resources.is_empty() {
        let _ = writeln!(out, "    resources:");
        resource_lines(out, &u.resources, st);
    }
    if !u.parameters.is_empty() {
        let _ = writeln!(out, "    parameters:");
        parameter_lines(out, &u.parameters);
    }
    if !u.options.is_empty() {
        let _ = writeln!(out, "    stack options:");
        option_lines(out, &u.options);
    }
    if !u.hooks.is_empty() {
        let _ = writeln!(out, "    hooks apply runs:");
        for h in &u.hooks {
            let _ = writeln!(
                out,
                "      {}",
                printable(&format!("{}: {}", h.phase, h.run))
            );
        }
    }
    if !u.inputs.is_empty() {
        let _ = writeln!(out, "    inputs:");
        for i in &u.inputs {
            let _ = writeln!(out, "      {}", printable(&input_line(i, &u.parameters)));
        }
    }
    if !u.security.is_empty() {
        let _ = writeln!(out, "    security:");
        for s in &u.security {
            let line = security_line(s);
            if s.broadens {
                let _ = writeln!(out, "    {}", st.red(&format!("! {line}")));
            } else {
                let _ = writeln!(out, "      {}", printable(&line));
            }
        }
    }
    if let Some(diff) = &u.template_diff {
        let _ = writeln!(out, "    template diff:");
        for line in diff.lines() {
            let _ = writeln!(out, "      {}", st.diff_line(line));
        }
    }
    if let Some(message) = &u.message {
        let _ = writeln!(out, "    message:");
        for line in message.lines() {
            let _ = writeln!(out, "      {}", printable(line.trim_end()));
        }
    }
}

/// One aligned line per resource: symbol, logical id, type, markers, changed properties.
fn resource_lines(out: &mut String, resources: &[ResourceChange], st: Style) {
    let rows: Vec<[String; 5]> = resources
        .iter()
        .map(|r| {
            let props: Vec<String> = changed_properties(r)
                .into_iter()
                .map(|(name, replaces)| {
                    if replaces {
                        format!("{name} (replaces)")
                    } else {
                        name
                    }
                })
                .collect();
            [
                resource_symbol(r).to_string(),
                printable(&r.logical_id),
                printable(&r.resource_type),
                markers_with_condition(r).join(", "),
                printable(&props.join(", ")),
            ]
        })
        .collect();
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    for row in &rows {
        // Pad first, then colour the symbol; columns empty on every line take no room.
        let mut line = format!(
            "      {}",
            st.symbol(&format!("{:<w$}", row[0], w = widths[0]))
        );
        for (cell, w) in row.iter().zip(widths).skip(1) {
            if w > 0 {
                let _ = write!(line, "  {cell:<w$}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// One aligned line per parameter: `Name  "before" → "after"  (notes)`.
fn parameter_lines(out: &mut String, parameters: &[ParameterChange]) {
    let w = parameters.iter().map(|p| width(&p.name)).max().unwrap_or(0);
    for p in parameters {
        let before = shown_value(&p.before, p.secret);
        let after = shown_value(&p.after, p.secret);
        let mut notes = Vec::new();
        let change = if p.known_after_apply {
            let mut note = Vec::new();
            if let Some(expr) = &p.expression {
                note.push(format!("from {expr}"));
            }
            if let Some(today) = &after {
                note.push(format!("value today {today}"));
            }
            if !note.is_empty() {
                notes.push(note.join(", "));
            }
            match &before {
                Some(b) => format!("{b} → (known after apply)"),
                None => "(known after apply)".to_string(),
            }
        } else {
            match (&before, &after) {
                (None, Some(a)) => a.clone(),
                (Some(b), None) => format!("{b} → (unset)"),
                (Some(b), Some(a)) => format!("{b} → {a}"),
                (None, None) => "(unset)".to_string(),
            }
        };
        if p.secret {
            notes.push("secret".to_string());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        let line = format!("{:<w$}  {change}{notes}", p.name);
        let _ = writeln!(out, "      {}", printable(&line));
    }
}

/// One aligned line per stack option: `termination_protection  false → true  (set by formwork)`.
fn option_lines(out: &mut String, options: &[OptionChange]) {
    let w = options.iter().map(|o| width(&o.option)).max().unwrap_or(0);
    for o in options {
        let change = match &o.before {
            Some(b) => format!("{b} → {}", o.after),
            None => o.after.clone(),
        };
        let line = format!("{:<w$}  {change}  ({})", o.option, option_how(o.kind));
        let _ = writeln!(out, "      {}", printable(&line));
    }
}

/// How a stack option is applied, as plans say it.
pub(crate) fn option_how(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::ChangeSet => "with the change set",
        OptionKind::Direct => "set by formwork after the change set",
    }
}

/// `VpcId ← ${vpc.VpcId}: known after apply, value today "vpc-1" (Vpc is replaced)`.
fn input_line(i: &Input, parameters: &[ParameterChange]) -> String {
    let secret = parameters.iter().any(|p| p.name == i.parameter && p.secret);
    let state = match &i.state {
        InputState::KnownAfterApply { current } => match shown_value(current, secret) {
            Some(today) => format!("known after apply, value today {today}"),
            None => "known after apply".to_string(),
        },
        InputState::Pending => format!("pending: {} does not exist yet", i.from_stack),
    };
    match (&i.state, &i.because) {
        (InputState::KnownAfterApply { .. }, Some(why)) => {
            format!("{} ← {}: {state} ({why})", i.parameter, i.reference)
        }
        _ => format!("{} ← {}: {state}", i.parameter, i.reference),
    }
}

/// `added IAM statement on AppRole (AWS::IAM::Role): Allow s3:* on * — broadens access`.
fn security_line(s: &SecurityChange) -> String {
    let change = match s.change {
        SecurityChangeKind::Added => "added",
        SecurityChangeKind::Removed => "removed",
    };
    let mut line = format!(
        "{change} {} on {} ({}): {}",
        security_kind_word(s.kind),
        s.resource,
        s.resource_type,
        s.description
    );
    if s.broadens {
        line.push_str(" — broadens access");
    }
    line
}

/// Whether a stack gets a details section: it has changes to list, or a message to read (a
/// removed stack's message only repeats what its status says).
pub(crate) fn has_details(u: &UnitPlan) -> bool {
    !u.resources.is_empty()
        || !u.parameters.is_empty()
        || !u.options.is_empty()
        || !u.hooks.is_empty()
        || !u.security.is_empty()
        || u.template_diff.is_some()
        || !u.inputs.is_empty()
        || (u.message.is_some() && u.action != Action::Remove)
}

/// The status note of the summary table.
fn status_text(plan: &Plan, u: &UnitPlan) -> String {
    let mut s = match u.action {
        Action::Create | Action::Update => match &u.change_set {
            Some(cs) => format!("change set {}", cs.name),
            None if plan.offline => "predicted offline".to_string(),
            None if u.options_only() => "stack options only".to_string(),
            None => "no change set".to_string(),
        },
        Action::NoChange => match &u.unchanged_by {
            Some(e) => format!("no changes: {}", e.describe()),
            None => "no changes".to_string(),
        },
        Action::Remove if already_gone(plan, u) => "does not exist: nothing to delete".to_string(),
        Action::Remove => "deleted only with --allow-delete".to_string(),
        Action::Pending => {
            let waits = waits_for(u);
            if !waits.is_empty() {
                format!("waits for {}", waits.join(", "))
            } else {
                u.message
                    .as_deref()
                    .map(|m| shorten(m, STATUS_WIDTH))
                    .unwrap_or_else(|| "waits for its inputs".to_string())
            }
        }
        Action::Blocked | Action::Failed => u
            .message
            .as_deref()
            .map(|m| shorten(m, STATUS_WIDTH))
            .unwrap_or_default(),
    };
    if u.security.iter().any(|s| s.broadens) {
        s.push_str("; access broadens");
    }
    s
}

/// A stack that left the config and, as AWS says, does not exist: removing it deletes nothing.
pub(crate) fn already_gone(plan: &Plan, u: &UnitPlan) -> bool {
    u.action == Action::Remove && !plan.offline && u.stack_status.is_none()
}

/// Whether applying destroys something of this stack: resources removed or replaced, or the
/// whole stack deleted (when it exists).
pub(crate) fn destroys(plan: &Plan, u: &UnitPlan) -> bool {
    u.is_destructive() && !already_gone(plan, u)
}

/// The four count cells of a stack: `-` when no resource changes are listed.
fn count_cells(u: &UnitPlan) -> [String; 4] {
    if u.resources.is_empty() {
        return ["-", "-", "-", "-"].map(String::from);
    }
    let c = u.counts();
    [c.add, c.modify, c.remove, c.replace].map(|n| n.to_string())
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// The word for an action, as in tables: `create`, `update`, `no change`, …
pub(crate) fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::NoChange => "no change",
        Action::Remove => "remove",
        Action::Pending => "pending",
        Action::Blocked => "blocked",
        Action::Failed => "failed",
    }
}

/// The first seven characters of a commit id.
pub(crate) fn short_commit(commit: &str) -> &str {
    match commit.char_indices().nth(7) {
        Some((i, _)) => &commit[..i],
        None => commit,
    }
}

/// The first line of `s`, cut to `max` characters (with `…`).
pub(crate) fn shorten(s: &str, max: usize) -> String {
    let first = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let more_lines = s.trim().lines().count() > 1;
    if first.chars().count() > max {
        let cut: String = first.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    } else if more_lines {
        format!("{first} …")
    } else {
        first.to_string()
    }
}

/// The stacks a pending stack waits for: the sources of its pending inputs, each once.
pub(crate) fn waits_for(u: &UnitPlan) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for i in &u.inputs {
        if i.state == InputState::Pending && !out.contains(&i.from_stack.as_str()) {
            out.push(&i.from_stack);
        }
    }
    out
}

/// A value as shown: quoted, newlines escaped; `****` for secrets whatever the value.
pub(crate) fn shown_value(v: &Option<String>, secret: bool) -> Option<String> {
    v.as_ref().map(|v| {
        if secret || v == MASK {
            MASK.to_string()
        } else {
            format!("\"{}\"", v.replace('\n', "\\n"))
        }
    })
}

/// What a destructive stack destroys: `1 replaced, 2 removed` or `the whole stack`.
pub(crate) fn destruction(u: &UnitPlan) -> String {
    if u.action == Action::Remove {
        return "the whole stack".to_string();
    }
    let c = u.counts();
    let mut parts = Vec::new();
    if c.replace > 0 {
        parts.push(format!("{} replaced", c.replace));
    }
    if c.remove > 0 {
        parts.push(format!("{} removed", c.remove));
    }
    parts.join(", ")
}

/// The symbol of a resource change: `+`, `~`, `-`, `-/+` (replaced).
pub(crate) fn resource_symbol(r: &ResourceChange) -> &'static str {
    match r.action {
        ResourceAction::Add | ResourceAction::Import => "+",
        ResourceAction::Remove => "-",
        ResourceAction::Modify | ResourceAction::Dynamic if r.replacement == Replacement::True => {
            "-/+"
        }
        ResourceAction::Modify | ResourceAction::Dynamic => "~",
    }
}

/// Notes on a resource change: `import`, `replace`, `may replace`, `predicted`, `decided at
/// apply`.
/// The resource's markers, then the condition it depends on when that is not known.
fn markers_with_condition(r: &ResourceChange) -> Vec<String> {
    let mut out: Vec<String> = resource_markers(r).into_iter().map(String::from).collect();
    if let Some(c) = &r.condition {
        out.push(format!("only if {} holds", printable(c)));
    }
    out
}

pub(crate) fn resource_markers(r: &ResourceChange) -> Vec<&'static str> {
    let mut out = Vec::new();
    match r.action {
        ResourceAction::Import => out.push("import"),
        ResourceAction::Dynamic => out.push("decided at apply"),
        _ => {}
    }
    if matches!(r.action, ResourceAction::Modify | ResourceAction::Dynamic) {
        match r.replacement {
            Replacement::True => out.push("replace"),
            Replacement::Conditional => out.push("may replace"),
            Replacement::False | Replacement::Unknown => {}
        }
        if matches!(r.replacement, Replacement::True | Replacement::Conditional)
            && r.replacement_source == ReplacementSource::Predicted
        {
            out.push("predicted");
        }
    }
    out
}

/// The names of what changes in a resource, each once, in order, with whether changing it
/// replaces the resource: property paths, or the attribute (`Tags`, `Metadata`) when no path is
/// given, or the scope when there are no details.
pub(crate) fn changed_properties(r: &ResourceChange) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for d in &r.details {
        let name = d.name.clone().unwrap_or_else(|| d.attribute.clone());
        let replaces = d.requires_recreation == Some(RequiresRecreation::Always);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 |= replaces,
            None => out.push((name, replaces)),
        }
    }
    if out.is_empty() && r.action == ResourceAction::Modify {
        out.extend(r.scope.iter().map(|s| (s.clone(), false)));
    }
    out
}

/// How a security item is named: `IAM statement`, `security group rule`, …
pub(crate) fn security_kind_word(k: SecurityKind) -> &'static str {
    match k {
        SecurityKind::IamStatement => "IAM statement",
        SecurityKind::IamPolicy => "IAM managed policy",
        SecurityKind::ResourcePolicy => "resource policy statement",
        SecurityKind::SecurityGroupRule => "security group rule",
    }
}

impl Style {
    fn action(self, a: Action, s: &str) -> String {
        match a {
            Action::Create => self.paint("32", s),
            Action::Update => self.paint("33", s),
            Action::NoChange => self.paint("2", s),
            Action::Remove => self.paint("31", s),
            Action::Pending => self.paint("36", s),
            Action::Blocked | Action::Failed => self.paint("1;31", s),
        }
    }

    fn symbol(self, s: &str) -> String {
        match s.trim_end() {
            "+" => self.paint("32", s),
            "~" => self.paint("33", s),
            "-" => self.paint("31", s),
            _ => self.paint("1;31", s),
        }
    }

    fn diff_line(self, line: &str) -> String {
        if line.starts_with("+++") || line.starts_with("---") {
            self.bold(line)
        } else if line.starts_with('+') {
            self.paint("32", line)
        } else if line.starts_with('-') {
            self.paint("31", line)
        } else if line.starts_with("@@") {
            self.paint("36", line)
        } else {
            printable(line)
        }
    }
}
