//! The Markdown form of a plan, for pull-request comments on GitHub, and the splitting of a long
//! rendered plan into several comments.
//!
//! [`plan_markdown`] writes one document: a title naming the planned commit, the summary table,
//! callouts for destructive changes and broadened access, then one collapsible `<details>`
//! section per stack with something to show. Text that comes from the config, the templates or
//! AWS is escaped for where it lands (table cells, HTML, code spans); code fences are made longer
//! than any run of backticks in their content, so no content can close them.
//!
//! [`split_markdown`] cuts a document into comments of at most a given number of characters,
//! at block boundaries where it can; a block bigger than one comment is cut inside, its open
//! fences and `<details>` closed at the end of one part and opened again at the start of the
//! next. [`check_well_formed`] says whether a part keeps fences and `<details>` balanced.

use std::fmt::Write as _;
use std::rc::Rc;

use crate::plan::model::{
    Action, Input, InputState, ParameterChange, Plan, Replacement, ResourceAction, ResourceChange,
    SecurityChange, SecurityChangeKind, UnitPlan,
};
use crate::render::markdown::{cell_code, clip, code, fence_for, html, md_text};
use crate::render::plan_text::{
    Totals, action_word, already_gone, changed_properties, destroys, has_details, resource_markers,
    security_kind_word, short_commit, shorten, waits_for,
};
use crate::render::reason_text;

/// The most characters GitHub accepts in one comment.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// The smallest limit [`split_markdown`] works with; smaller limits are raised to it, so that a
/// part always has room for its header and the wrappers it re-opens.
pub const MIN_SPLIT_LIMIT: usize = 1_024;

/// Where the whole plan can be read when the comments had to be cut.
const FULL_PLAN_NOTE: &str = "the full plan is in the check run summary and the job log";

/// Longest value shown in a table cell, in characters.
const CELL_VALUE_MAX: usize = 200;

/// Most names listed per stack in the destructive-changes callout.
const CALLOUT_NAMES_MAX: usize = 10;

/// Most changed properties listed per resource.
const PROPERTIES_MAX: usize = 20;

/// Renders a whole plan as one Markdown document.
pub fn plan_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## formwork plan for {} at {}\n",
        code(&plan.head.rev),
        code(short_commit(&plan.head.commit))
    );
    let mut about = Vec::new();
    if let Some(base) = &plan.base {
        about.push(format!(
            "Compared with {} at {}",
            code(&base.rev),
            code(short_commit(&base.commit))
        ));
    }
    if plan.offline {
        about.push(
            "Offline: made without AWS by comparing the revisions; no change sets were created"
                .to_string(),
        );
    }
    about.push(format!(
        "Plan {}, made {}",
        code(&plan.id),
        md_text(&plan.created_at)
    ));
    let _ = writeln!(out, "{}.\n", about.join(". "));

    summary_table(&mut out, plan);
    let _ = writeln!(out, "{}\n", Totals::of(plan).sentence());
    destructive_callout(&mut out, plan);
    broadening_callout(&mut out, plan);

    for env in &plan.environments {
        for u in env.units.iter().filter(|u| has_details(u)) {
            stack_details(&mut out, plan, &env.name, u);
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn summary_table(out: &mut String, plan: &Plan) {
    if plan.environments.iter().all(|e| e.units.is_empty()) {
        let _ = writeln!(out, "No stacks were planned.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| environment | stack | action | add | modify | remove | replace | status |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|---|");
    for env in &plan.environments {
        for u in &env.units {
            let counts = if u.resources.is_empty() {
                ["-".to_string(), "-".into(), "-".into(), "-".into()]
            } else {
                let c = u.counts();
                [c.add, c.modify, c.remove, c.replace].map(|n| n.to_string())
            };
            let mut action = action_word(u.action).to_string();
            if destroys(plan, u) {
                action.push_str(" ⚠");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                md_text(&env.name),
                md_text(&u.stack),
                action,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                status_cell(plan, u)
            );
        }
    }
    out.push('\n');
}

/// The status cell of the summary table.
fn status_cell(plan: &Plan, u: &UnitPlan) -> String {
    let mut s = match u.action {
        Action::Create | Action::Update => match &u.change_set {
            Some(cs) => format!("change set {}", cell_code(&cs.name)),
            None if plan.offline => "predicted offline".to_string(),
            None => "no change set".to_string(),
        },
        Action::NoChange => "no changes".to_string(),
        Action::Remove if already_gone(plan, u) => "does not exist: nothing to delete".to_string(),
        Action::Remove => "deleted only with `--allow-delete`".to_string(),
        Action::Pending => {
            let waits = waits_for(u);
            if !waits.is_empty() {
                let names: Vec<String> = waits.iter().map(|s| cell_code(s)).collect();
                format!("waits for {}", names.join(", "))
            } else {
                u.message
                    .as_deref()
                    .map(|m| md_text(&shorten(m, 80)))
                    .unwrap_or_else(|| "waits for its inputs".to_string())
            }
        }
        Action::Blocked | Action::Failed => u
            .message
            .as_deref()
            .map(|m| md_text(&shorten(m, 80)))
            .unwrap_or_default(),
    };
    if u.security.iter().any(|s| s.broadens) {
        s.push_str(" · ⚠ access broadens");
    }
    s
}

/// `> [!WARNING]` listing the stacks that replace or remove resources, and removed stacks.
fn destructive_callout(out: &mut String, plan: &Plan) {
    let mut items = Vec::new();
    for env in &plan.environments {
        for u in env.units.iter().filter(|u| destroys(plan, u)) {
            let what = if u.action == Action::Remove {
                format!(
                    "the stack {} is no longer in the config; it will be deleted only with \
                     `--allow-delete`",
                    code(&u.stack_name)
                )
            } else {
                let mut parts = Vec::new();
                let replaced: Vec<&ResourceChange> = u
                    .resources
                    .iter()
                    .filter(|r| {
                        matches!(r.action, ResourceAction::Modify | ResourceAction::Dynamic)
                            && r.replacement == Replacement::True
                    })
                    .collect();
                if !replaced.is_empty() {
                    parts.push(format!("replaces {}", resource_list(&replaced)));
                }
                let removed: Vec<&ResourceChange> = u
                    .resources
                    .iter()
                    .filter(|r| r.action == ResourceAction::Remove)
                    .collect();
                if !removed.is_empty() {
                    parts.push(format!("removes {}", resource_list(&removed)));
                }
                parts.join("; ")
            };
            items.push(format!(
                "> - **{} / {}**: {what}",
                md_text(&env.name),
                md_text(&u.stack)
            ));
        }
    }
    if items.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "> [!WARNING]\n> **Destructive changes**: resources are replaced or deleted.\n>"
    );
    for item in items {
        let _ = writeln!(out, "{item}");
    }
    out.push('\n');
}

/// `` `Vpc` (`AWS::EC2::VPC`), `Subnet` (`AWS::EC2::Subnet`) and 3 more ``.
fn resource_list(resources: &[&ResourceChange]) -> String {
    let mut names: Vec<String> = resources
        .iter()
        .take(CALLOUT_NAMES_MAX)
        .map(|r| format!("{} ({})", code(&r.logical_id), code(&r.resource_type)))
        .collect();
    if resources.len() > CALLOUT_NAMES_MAX {
        names.push(format!("and {} more", resources.len() - CALLOUT_NAMES_MAX));
    }
    names.join(", ")
}

/// `> [!CAUTION]` listing the security changes that widen access.
fn broadening_callout(out: &mut String, plan: &Plan) {
    let mut items = Vec::new();
    for env in &plan.environments {
        for u in &env.units {
            for s in u.security.iter().filter(|s| s.broadens) {
                items.push(format!(
                    "> - **{} / {}**: {} {} on {}: {}",
                    md_text(&env.name),
                    md_text(&u.stack),
                    change_word(s.change),
                    security_kind_word(s.kind),
                    code(&s.resource),
                    code(&clip(&s.description, CELL_VALUE_MAX))
                ));
            }
        }
    }
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "> [!CAUTION]\n> **Access broadens**\n>");
    for item in items {
        let _ = writeln!(out, "{item}");
    }
    out.push('\n');
}

/// One stack's collapsible section.
fn stack_details(out: &mut String, plan: &Plan, env: &str, u: &UnitPlan) {
    let _ = writeln!(
        out,
        "<details><summary>{}</summary>\n",
        summary_html(env, u)
    );

    let mut facts = vec![format!("Stack {}", code(&u.stack_name))];
    if let Some(cs) = &u.change_set {
        facts.push(format!(
            "change set {} ({})",
            code(&cs.name),
            md_text(&cs.change_set_type)
        ));
    } else if plan.offline && matches!(u.action, Action::Create | Action::Update) {
        facts.push("predicted offline".to_string());
    }
    if let Some(status) = &u.stack_status {
        facts.push(format!("status {}", code(status)));
    }
    if let Some(when) = &u.last_updated {
        facts.push(format!("last updated {}", md_text(when)));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));

    if let Some(message) = &u.message {
        let kind = match u.action {
            Action::Blocked | Action::Failed => "CAUTION",
            _ => "NOTE",
        };
        let _ = writeln!(out, "> [!{kind}]");
        for line in message.trim().lines() {
            if line.trim().is_empty() {
                let _ = writeln!(out, ">");
            } else {
                let _ = writeln!(out, "> {}", md_text(line.trim()));
            }
        }
        out.push('\n');
    }

    if !u.reasons.is_empty() {
        let _ = writeln!(out, "**Why**\n");
        for r in &u.reasons {
            let _ = writeln!(out, "- {}", md_text(&reason_text(r)));
        }
        out.push('\n');
    }

    if !u.resources.is_empty() {
        let _ = writeln!(out, "**Resource changes**\n");
        let _ = writeln!(
            out,
            "| action | logical id | type | replacement | changes |\n|---|---|---|---|---|"
        );
        for r in &u.resources {
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
        out.push('\n');
    }

    if !u.security.is_empty() {
        let _ = writeln!(out, "**Security changes**\n");
        let _ = writeln!(
            out,
            "| | resource | kind | change | description |\n|---|---|---|---|---|"
        );
        for s in &u.security {
            let _ = writeln!(out, "{}", security_row(s));
        }
        out.push('\n');
    }

    if !u.parameters.is_empty() {
        let _ = writeln!(out, "**Parameters**\n");
        parameters_table(out, &u.parameters);
        out.push('\n');
    }

    if !u.inputs.is_empty() {
        let _ = writeln!(out, "**Inputs known only after apply**\n");
        let _ = writeln!(
            out,
            "| parameter | reference | from | state |\n|---|---|---|---|"
        );
        for i in &u.inputs {
            let _ = writeln!(out, "{}", input_row(i, &u.parameters));
        }
        out.push('\n');
    }

    if let Some(diff) = &u.template_diff {
        let _ = writeln!(out, "**Template diff**\n");
        let fence = fence_for(diff);
        let _ = writeln!(out, "{fence}diff");
        for line in diff.lines() {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "{fence}\n");
    }

    let _ = writeln!(out, "</details>\n");
}

/// The `<summary>` of a stack: `<b>staging / network</b> — update: 1 to add, 1 replaced ⚠`,
/// escaped for HTML.
fn summary_html(env: &str, u: &UnitPlan) -> String {
    let mut s = format!(
        "<b>{} / {}</b> — {}",
        html(&clip(env, 100)),
        html(&clip(&u.stack, 100)),
        action_word(u.action)
    );
    if !u.resources.is_empty() {
        let c = u.counts();
        let parts: Vec<String> = [
            (c.add, "to add"),
            (c.modify, "to modify"),
            (c.remove, "to remove"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let _ = write!(s, ": {}", parts.join(", "));
        if c.replace > 0 {
            let _ = write!(s, " ({} replaced)", c.replace);
        }
    }
    if u.is_destructive() && u.action != Action::Remove {
        s.push_str(" · ⚠ destructive");
    }
    if u.security.iter().any(|s| s.broadens) {
        s.push_str(" · ⚠ access broadens");
    }
    s
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
    names.join(", ")
}

fn change_word(c: SecurityChangeKind) -> &'static str {
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

fn parameters_table(out: &mut String, parameters: &[ParameterChange]) {
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
    format!(
        "| {} | {} | {} | {state} |",
        cell_code(&i.parameter),
        cell_code(&i.reference),
        cell_code(&i.from_stack)
    )
}

// ---------------------------------------------------------------------------------------------
// Splitting into comments.

/// A document cut into comments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The comments, in order; each at most the limit in characters.
    pub parts: Vec<String>,
    /// More than `max_parts` comments would have been needed: the last part ends with a note
    /// that the rest was cut.
    pub truncated: bool,
}

/// Cuts a rendered document into comments of at most `limit` characters (Unicode scalar
/// values, as GitHub counts), at most `max_parts` of them.
///
/// A document that fits is returned as it is. Otherwise each part starts with a header
/// (`**formwork plan — part 2 of 3**`) and the document is cut between top-level blocks; a
/// block that does not fit in one part is cut inside, at a blank line between its sections if
/// possible, else between two lines: the fences, tables and `<details>` open at the cut are
/// closed at the end of the part and opened again at the start of the next one (a `<details>`
/// with its summary and ` (continued)`). A single line longer than a part is cut into pieces.
/// When more than `max_parts` parts would be needed, the last one ends with a note that the
/// rest was cut and where the full plan is, and `truncated` is set.
///
/// `limit` is raised to [`MIN_SPLIT_LIMIT`] when smaller; `max_parts` of 0 counts as 1.
pub fn split_markdown(doc: &str, limit: usize, max_parts: usize) -> Split {
    split_markdown_pointing(doc, limit, max_parts, FULL_PLAN_NOTE)
}

/// [`split_markdown`] with another pointer to where the whole plan can be read, for the note
/// that ends a cut run of comments (`pointer` is Markdown, e.g. with a link to the job log).
pub fn split_markdown_pointing(doc: &str, limit: usize, max_parts: usize, pointer: &str) -> Split {
    let limit = limit.max(MIN_SPLIT_LIMIT);
    let max_parts = max_parts.max(1);
    let total_chars = doc.chars().count();
    if total_chars <= limit {
        return Split {
            parts: vec![doc.to_string()],
            truncated: false,
        };
    }
    let layout = Layout::new(doc);
    // Room for the header, sized for the largest part count the document could need (each
    // part takes at least one character), so the cuts do not depend on `max_parts`.
    let header_reserve = part_header(total_chars, total_chars).chars().count() + 2;
    let budget = limit - header_reserve;

    let mut bodies: Vec<Vec<String>> = Vec::new();
    let mut cursor = Cursor { line: 0, offset: 0 };
    let mut truncated = false;
    while cursor.line < layout.lines.len() {
        if bodies.len() + 1 == max_parts {
            let (body, next) = layout.pack(cursor, budget);
            if next.line < layout.lines.len() {
                let note = truncation_note(max_parts, pointer);
                let note_len: usize = note.iter().map(|l| l.chars().count() + 1).sum();
                let (mut body, _) = layout.pack(cursor, budget.saturating_sub(note_len));
                body.extend(note);
                bodies.push(body);
                truncated = true;
            } else {
                bodies.push(body);
            }
            break;
        }
        let (body, next) = layout.pack(cursor, budget);
        bodies.push(body);
        cursor = next;
    }
    let n = bodies.len();
    let parts = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut part = part_header(i + 1, n);
            part.push_str("\n\n");
            for line in body {
                part.push_str(&line);
                part.push('\n');
            }
            part
        })
        .collect();
    Split { parts, truncated }
}

fn part_header(i: usize, n: usize) -> String {
    format!("**formwork plan — part {i} of {n}**")
}

fn truncation_note(max_parts: usize, pointer: &str) -> Vec<String> {
    vec![
        String::new(),
        "---".to_string(),
        String::new(),
        "> [!NOTE]".to_string(),
        format!(
            "> The plan does not fit in {max_parts} comments and was cut here: \
             {pointer}."
        ),
    ]
}

/// Checks that a comment is well formed for GitHub: at most [`GITHUB_COMMENT_LIMIT`]
/// characters, every code fence closed, every `<details>` closed and none closed that is not
/// open (a `<details>` line inside a fence is content, so they nest properly).
pub fn check_well_formed(part: &str) -> Result<(), String> {
    check_well_formed_within(part, GITHUB_COMMENT_LIMIT)
}

/// [`check_well_formed`] with another length limit.
pub fn check_well_formed_within(part: &str, limit: usize) -> Result<(), String> {
    let len = part.chars().count();
    if len > limit {
        return Err(format!("{len} characters, more than {limit}"));
    }
    let lines: Vec<&str> = part.lines().collect();
    let mut scanner = Scanner::default();
    let mut opened_at: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let depth = scanner.stack.len();
        scanner
            .feed(line, lines.get(i + 1).copied())
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        // Tables are not checked; keep line numbers of fences and details only.
        if scanner.stack.len() > depth {
            opened_at.push(i + 1);
        } else {
            opened_at.truncate(scanner.stack.len());
        }
    }
    if let Some((block, line)) = scanner
        .stack
        .iter()
        .zip(&opened_at)
        .find(|(b, _)| !matches!(b, Block::Table { .. }))
    {
        let what = match block {
            Block::Fence { .. } => "code fence",
            _ => "`<details>`",
        };
        return Err(format!("{what} opened on line {line} is not closed"));
    }
    Ok(())
}

/// A block open at some point of a document: what must be written to close it, and to open
/// it again.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Block {
    /// `<details>`; `reopen` is its opening line for a continuation.
    Details { reopen: Rc<str> },
    /// A code fence of `len` times `ch`; `open` is its opening line.
    Fence { ch: char, len: usize, open: Rc<str> },
    /// A table; `header` is its header and delimiter rows, when short enough to repeat.
    Table { header: Option<Rc<str>> },
}

impl Block {
    fn reopen_lines(&self) -> Vec<String> {
        match self {
            Block::Details { reopen } => vec![reopen.to_string(), String::new()],
            Block::Fence { open, .. } => vec![open.to_string()],
            Block::Table { header: Some(h) } => h.lines().map(String::from).collect(),
            Block::Table { header: None } => Vec::new(),
        }
    }

    fn close_lines(&self) -> Vec<String> {
        match self {
            Block::Details { .. } => vec![String::new(), "</details>".to_string()],
            Block::Fence { ch, len, .. } => vec![ch.to_string().repeat(*len)],
            Block::Table { .. } => Vec::new(),
        }
    }
}

/// Follows fences, `<details>` and tables line by line.
#[derive(Default)]
struct Scanner {
    stack: Vec<Block>,
}

impl Scanner {
    /// Takes one line (`next` is the one after, to recognise tables).
    fn feed(&mut self, line: &str, next: Option<&str>) -> Result<(), String> {
        if matches!(self.stack.last(), Some(Block::Table { .. })) && !is_table_row(line) {
            self.stack.pop();
        }
        match self.stack.last() {
            Some(Block::Fence { ch, len, .. }) => {
                if is_fence_close(line, *ch, *len) {
                    self.stack.pop();
                }
            }
            Some(Block::Table { .. }) => {}
            _ => {
                if let Some((ch, len)) = fence_open(line) {
                    self.stack.push(Block::Fence {
                        ch,
                        len,
                        open: reopen_fence_line(line, ch, len).into(),
                    });
                } else if let Some(rest) = details_open(line) {
                    if !rest.contains("</details>") {
                        self.stack.push(Block::Details {
                            reopen: continued_details_line(line).into(),
                        });
                    }
                } else if is_details_close(line) {
                    match self.stack.last() {
                        Some(Block::Details { .. }) => {
                            self.stack.pop();
                        }
                        _ => return Err("`</details>` without an open `<details>`".to_string()),
                    }
                } else if is_table_row(line) && next.is_some_and(is_delimiter_row) {
                    let header = format!("{line}\n{}", next.unwrap_or_default());
                    self.stack.push(Block::Table {
                        header: (header.chars().count() <= 1_000).then(|| header.into()),
                    });
                }
            }
        }
        // A table ends before a line that is not a row: do not carry it past its last row.
        if matches!(self.stack.last(), Some(Block::Table { .. })) && !next.is_some_and(is_table_row)
        {
            self.stack.pop();
        }
        Ok(())
    }
}

/// Up to three spaces of indentation stripped, or `None` for an indented code line.
fn unindent(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

/// The character and length of a fence opened by `line`.
fn fence_open(line: &str) -> Option<(char, usize)> {
    let rest = unindent(line)?;
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = &rest[len..];
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((ch, len))
}

fn is_fence_close(line: &str, ch: char, len: usize) -> bool {
    let Some(rest) = unindent(line) else {
        return false;
    };
    let run = rest.chars().take_while(|c| *c == ch).count();
    run >= len && rest[run..].trim().is_empty()
}

/// What follows `<details` when `line` opens a `<details>` element.
fn details_open(line: &str) -> Option<&str> {
    let rest = unindent(line)?.strip_prefix("<details")?;
    (rest.is_empty() || rest.starts_with(['>', ' ', '\t'])).then_some(rest)
}

fn is_details_close(line: &str) -> bool {
    unindent(line).is_some_and(|rest| rest.starts_with("</details>"))
}

fn is_table_row(line: &str) -> bool {
    line.trim_start().starts_with('|')
}

/// `|---|:--:|--:|`
fn is_delimiter_row(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|')
        && t.contains('-')
        && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'))
}

/// The opening line of a fence, shortened to its fence and first word when long.
fn reopen_fence_line(line: &str, ch: char, len: usize) -> String {
    if line.chars().count() <= 200 {
        return line.to_string();
    }
    let info: String = line
        .trim_start()
        .trim_start_matches(ch)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect();
    format!("{}{info}", ch.to_string().repeat(len))
}

/// The opening line of a `<details>` continued in another part: its summary with
/// ` (continued)`, or a plain one when it has no short summary.
fn continued_details_line(line: &str) -> String {
    match line.find("</summary>") {
        Some(end) if line.chars().count() <= 400 && line.contains("<summary>") => {
            format!("{} (continued)</summary>", &line[..end])
        }
        _ => "<details><summary>(continued)</summary>".to_string(),
    }
}

/// Where the next part starts: a line, and a character offset in it when a long line was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    line: usize,
    offset: usize,
}

/// A document read for splitting: its lines, the blocks open after each, and where blocks end.
struct Layout<'a> {
    lines: Vec<&'a str>,
    /// The blocks open after each line.
    after: Vec<Rc<Vec<Block>>>,
    /// `cost[i]`: characters of lines `..i`, newlines included.
    cost: Vec<usize>,
    /// For each line, the next line (at or after it) that ends a top-level block, if any.
    next_top: Vec<Option<usize>>,
    /// Likewise for the next blank line with only `<details>` open.
    next_section: Vec<Option<usize>>,
}

impl<'a> Layout<'a> {
    fn new(doc: &'a str) -> Layout<'a> {
        let lines: Vec<&str> = doc.lines().collect();
        let mut scanner = Scanner::default();
        let mut after: Vec<Rc<Vec<Block>>> = Vec::with_capacity(lines.len());
        let mut current: Rc<Vec<Block>> = Rc::new(Vec::new());
        for (i, line) in lines.iter().enumerate() {
            // Unbalanced `</details>` is content here: splitting does not judge the document.
            let _ = scanner.feed(line, lines.get(i + 1).copied());
            if *current != scanner.stack {
                current = Rc::new(scanner.stack.clone());
            }
            after.push(current.clone());
        }
        let mut cost = Vec::with_capacity(lines.len() + 1);
        cost.push(0);
        for line in &lines {
            cost.push(cost.last().copied().unwrap_or(0) + line.chars().count() + 1);
        }
        let mut layout = Layout {
            next_top: vec![None; lines.len()],
            next_section: vec![None; lines.len()],
            lines,
            after,
            cost,
        };
        let (mut top, mut section) = (None, None);
        for i in (0..layout.lines.len()).rev() {
            if layout.is_top_boundary(i) {
                top = Some(i);
            }
            if layout.is_section_boundary(i) {
                section = Some(i);
            }
            layout.next_top[i] = top;
            layout.next_section[i] = section;
        }
        layout
    }

    /// After line `i` nothing is open and a block has just ended (a blank line, not the one
    /// after a heading).
    fn is_top_boundary(&self, i: usize) -> bool {
        self.after[i].is_empty() && self.is_break(i)
    }

    /// After line `i` only `<details>` are open, at a blank line between sections.
    fn is_section_boundary(&self, i: usize) -> bool {
        self.is_break(i)
            && self.after[i]
                .iter()
                .all(|b| matches!(b, Block::Details { .. }))
    }

    /// Line `i` is blank and does not follow a heading (`## …`, or a line all in bold), which
    /// stays with what it heads.
    fn is_break(&self, i: usize) -> bool {
        self.lines[i].trim().is_empty() && (i == 0 || !is_heading(self.lines[i - 1]))
    }

    fn open_before(&self, line: usize) -> &[Block] {
        if line == 0 {
            &[]
        } else {
            &self.after[line - 1]
        }
    }

    fn reopen_len(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .flat_map(Block::reopen_lines)
            .map(|l| l.chars().count() + 1)
            .sum()
    }

    fn close_len(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .flat_map(Block::close_lines)
            .map(|l| l.chars().count() + 1)
            .sum()
    }

    /// Whether the lines after a cut at line `cut` up to the boundary `end` fit in one part.
    fn fits_fresh(&self, cut: usize, end: Option<usize>, budget: usize) -> bool {
        let end = end.unwrap_or(self.lines.len() - 1);
        let content = self.cost[end + 1] - self.cost[cut + 1];
        Self::reopen_len(&self.after[cut]) + content + Self::close_len(&self.after[end]) <= budget
    }

    /// The body of one part starting at `start`, within `budget` characters, and where the
    /// next part starts.
    fn pack(&self, start: Cursor, budget: usize) -> (Vec<String>, Cursor) {
        let open = self.open_before(start.line);
        let used = Self::reopen_len(open);
        let first_rest: &str = char_tail(self.lines[start.line], start.offset);
        let first_len = first_rest.chars().count() + 1;
        // Size of the part when cut after line `j`.
        let size = |j: usize| {
            used + first_len + self.cost[j + 1] - self.cost[start.line + 1]
                + Self::close_len(&self.after[j])
        };
        let (mut best_top, mut best_section, mut best_any) = (None, None, None);
        let mut nonblank = false;
        let mut end_reached = false;
        for j in start.line..self.lines.len() {
            if used + first_len + self.cost[j + 1] - self.cost[start.line + 1] > budget {
                break;
            }
            nonblank |= !self.lines[j].trim().is_empty();
            if size(j) > budget {
                continue;
            }
            best_any = Some(j);
            if j + 1 == self.lines.len() {
                end_reached = true;
                break;
            }
            if nonblank && self.is_top_boundary(j) {
                best_top = Some(j);
            }
            if nonblank && self.is_section_boundary(j) {
                best_section = Some(j);
            }
        }
        let cut = if end_reached {
            best_any
        } else {
            // A block that fits in the next part whole is not cut. A block too big for one part
            // is cut where the part is full: at a boundary between blocks or sections when that
            // keeps the part three quarters full, else between any two lines.
            let full_enough = |j: &usize| size(*j) * 4 >= budget * 3;
            let top_fits = best_top.filter(|&t| self.fits_fresh(t, self.next_top[t + 1], budget));
            let section_fits =
                best_section.filter(|&s| self.fits_fresh(s, self.next_section[s + 1], budget));
            top_fits
                .or(section_fits)
                .or(best_top.filter(full_enough))
                .or(best_section.filter(full_enough))
                .or(best_any)
        };
        let mut body: Vec<String> = open.iter().flat_map(Block::reopen_lines).collect();
        match cut {
            Some(cut) => {
                body.push(first_rest.to_string());
                body.extend(
                    self.lines[start.line + 1..=cut]
                        .iter()
                        .map(|l| l.to_string()),
                );
                body.extend(self.after[cut].iter().rev().flat_map(Block::close_lines));
                let next = Cursor {
                    line: cut + 1,
                    offset: 0,
                };
                (body, next)
            }
            None => {
                // The line does not fit in a part: cut it, keeping what is open around it. The
                // rest of the line starts the next part.
                let room = budget.saturating_sub(used + Self::close_len(open) + 1);
                let rest_len = first_len - 1;
                let taken = room.clamp(1, rest_len.max(2) - 1);
                body.push(first_rest.chars().take(taken).collect());
                body.extend(open.iter().rev().flat_map(Block::close_lines));
                let next = if taken >= rest_len {
                    Cursor {
                        line: start.line + 1,
                        offset: 0,
                    }
                } else {
                    Cursor {
                        line: start.line,
                        offset: start.offset + taken,
                    }
                };
                (body, next)
            }
        }
    }
}

/// `## Title` or `**Title**`.
fn is_heading(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('#') || (t.len() > 4 && t.starts_with("**") && t.ends_with("**"))
}

/// `s` from its `offset`-th character on.
fn char_tail(s: &str, offset: usize) -> &str {
    match s.char_indices().nth(offset) {
        Some((i, _)) => &s[i..],
        None if offset == 0 => s,
        None => "",
    }
}
