//! What the GitHub Actions step leaves for the rest of the workflow: step outputs
//! (`$GITHUB_OUTPUT`: `has-changes`, `plan-id`, `environments`, `markdown-file`), the plan in
//! the job summary (`$GITHUB_STEP_SUMMARY`, which a fork's pull request gets even when its
//! token cannot comment), and config errors and policy findings as annotations on the pull
//! request's diff (`::error file=…,line=…,col=…::`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use formwork::diag::{Diagnostic, Loc, Pos, Severity, Span};
use formwork::github::flow::PlannedPullRequest;
use formwork::plan::model::{Finding, RuleSeverity};
use formwork::runner::Hooks;

/// GitHub's limit on one step's summary (GitHub Actions documentation, "Adding a job
/// summary": 1 MiB per step).
const SUMMARY_LIMIT: usize = 1024 * 1024;

/// What the step's plans came to.
#[derive(Default)]
struct Collected {
    planned: bool,
    has_changes: bool,
    failed: bool,
    plan_ids: Vec<String>,
    environments: BTreeSet<String>,
    markdown: Vec<String>,
    diagnostics: Vec<Diagnostic>,
}

/// Collects what each plan of the step came to, as the runner reports it.
#[derive(Default)]
pub struct ActionReport(Mutex<Collected>);

impl Hooks for ActionReport {
    fn planned(&self, _number: u64, done: &PlannedPullRequest) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.planned = true;
        match &done.plan {
            Ok(plan) => {
                c.has_changes |= plan.has_changes();
                c.failed |= plan.fails_check();
                c.plan_ids.push(plan.id.clone());
                let findings: Vec<Diagnostic> = plan
                    .findings()
                    .map(|(e, u, f)| finding_diagnostic(e, &u.stack, f))
                    .collect();
                c.diagnostics.extend(findings);
                for e in &plan.environments {
                    if e.units.iter().any(|u| u.action.is_change()) {
                        c.environments.insert(e.name.clone());
                    }
                }
            }
            Err(_) => c.failed = true,
        }
        c.markdown.push(done.reported.markdown.clone());
        c.diagnostics.extend(done.diagnostics.iter().cloned());
    }
}

impl ActionReport {
    /// Whether a plan failed or some stack could not be planned: the step fails.
    pub fn failed(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).failed
    }

    /// Writes the outputs, the summary and the annotations, where GitHub Actions asks for
    /// them (nothing outside a workflow). `scratch` holds the Markdown file when the runner
    /// gives no temporary directory; `repo_prefix` is the config repository's path inside the
    /// workspace, for annotation paths.
    pub fn finish(&self, scratch: &Path, repo_prefix: &str) -> Result<()> {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !c.planned {
            // Nothing planned (an event with nothing to plan, or environments the pull
            // request does not change): say so to later steps.
            return step_outputs(&[
                ("has-changes", "false".into()),
                ("plan-id", String::new()),
                ("environments", "[]".into()),
                ("markdown-file", String::new()),
            ]);
        }
        for d in &c.diagnostics {
            println!("{}", annotation(d, repo_prefix));
        }
        let markdown = c.markdown.join("\n\n---\n\n");
        let dir = std::env::var_os("RUNNER_TEMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| scratch.to_path_buf());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let md_file = dir.join("formwork-plan.md");
        std::fs::write(&md_file, &markdown)
            .with_context(|| format!("writing {}", md_file.display()))?;
        let environments: Vec<&String> = c.environments.iter().collect();
        step_outputs(&[
            ("has-changes", c.has_changes.to_string()),
            ("plan-id", c.plan_ids.join(",")),
            ("environments", serde_json::to_string(&environments)?),
            ("markdown-file", md_file.display().to_string()),
        ])?;
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            append(Path::new(&path), &summary(&markdown))?;
        }
        Ok(())
    }
}

/// Sets the step's outputs (`name=value` lines appended to `$GITHUB_OUTPUT`); nothing outside
/// a workflow.
pub fn step_outputs(outputs: &[(&str, String)]) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_OUTPUT") else {
        return Ok(());
    };
    let text: String = outputs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    append(Path::new(&path), &text)
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The plan's Markdown as a job summary, cut to GitHub's limit with a note.
fn summary(markdown: &str) -> String {
    const NOTE: &str = "\n\n> [!NOTE]\n> The plan is longer than a job summary may be; the whole plan is in the job log and the file named by the step's `markdown-file` output.\n";
    if markdown.len() < SUMMARY_LIMIT {
        return format!("{markdown}\n");
    }
    let mut end = SUMMARY_LIMIT - NOTE.len();
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{NOTE}", &markdown[..end])
}

/// A policy finding as a diagnostic at the template line it names: an error when it blocks, a
/// warning when it only warns or was overridden.
fn finding_diagnostic(environment: &str, stack: &str, f: &Finding) -> Diagnostic {
    let on = f
        .resource
        .as_deref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    let message = format!(
        "policy rule `{}` ({}) fails in {environment}/{stack}{on}: {}",
        f.rule, f.file, f.message
    );
    let d = match (f.severity, &f.overridden_by) {
        (RuleSeverity::Block, None) => Diagnostic::error(message),
        (RuleSeverity::Block, Some(by)) => {
            Diagnostic::warning(format!("{message} (overridden by {by})"))
        }
        (RuleSeverity::Warn, _) => Diagnostic::warning(message),
    };
    let file: std::sync::Arc<str> = std::sync::Arc::from(f.template.as_str());
    match (f.line, f.column) {
        (Some(line), Some(col)) => d.at(Loc::new(&file, Span::on_line(Pos { line, col }, 1))),
        _ => d.at(Loc::file_start(&file)),
    }
}

/// A diagnostic as a workflow command GitHub shows on the file's line in the pull request.
fn annotation(d: &Diagnostic, repo_prefix: &str) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        _ => "warning",
    };
    let mut props = vec!["title=formwork".to_string()];
    if let Some(loc) = &d.loc {
        let file = if repo_prefix.is_empty() {
            loc.file.to_string()
        } else {
            format!("{}/{}", repo_prefix.trim_end_matches('/'), loc.file)
        };
        props.push(format!("file={}", escape_property(&file)));
        props.push(format!("line={}", loc.span.start.line));
        props.push(format!("col={}", loc.span.start.col));
        if loc.span.end.line >= loc.span.start.line {
            props.push(format!("endLine={}", loc.span.end.line));
        }
        if loc.span.end.line == loc.span.start.line && loc.span.end.col > loc.span.start.col {
            props.push(format!("endColumn={}", loc.span.end.col));
        }
    }
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str(&format!("\n{help}"));
    }
    format!("::{kind} {}::{}", props.join(","), escape_data(&message))
}

/// Workflow command data: `%`, CR and LF escaped (GitHub Actions documentation, "Workflow
/// commands").
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow command properties: as data, and `:` and `,` too.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use formwork::diag::{Loc, Pos, Span};
    use std::sync::Arc;

    #[test]
    fn an_error_becomes_an_annotation_on_its_line() {
        let file: Arc<str> = Arc::from("environments/dev/environment.yml");
        let span = Span {
            start: Pos { line: 4, col: 3 },
            end: Pos { line: 4, col: 9 },
        };
        let d = Diagnostic::error("unknown field `stackz`, 50% sure: check")
            .at(Loc::new(&file, span))
            .help("did you mean `stacks`?");
        assert_eq!(
            annotation(&d, "config"),
            "::error title=formwork,file=config/environments/dev/environment.yml,line=4,col=3,endLine=4,endColumn=9::unknown field `stackz`, 50%25 sure: check%0Adid you mean `stacks`?"
        );
    }

    #[test]
    fn a_summary_over_the_limit_is_cut_with_a_note() {
        let long = "é".repeat(SUMMARY_LIMIT);
        let s = summary(&long);
        assert!(s.len() <= SUMMARY_LIMIT, "{}", s.len());
        assert!(s.ends_with("output.\n"));
        assert_eq!(summary("# plan"), "# plan\n");
    }
}
