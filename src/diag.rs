//! Diagnostics: positions in config files, error and warning records, and their rendering for
//! people (with the offending line underlined) and for machines (JSON).
//!
//! Everything formwork finds wrong with a config repository becomes a [`Diagnostic`] carrying the
//! file, line and column it is about and a hint of what to do. Checks collect them into
//! [`Diagnostics`] so that one run reports every problem at once.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

/// A position in a text file: line and column, both counted from 1, columns in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A range of a text file, `start` inclusive, `end` exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    /// A span covering `len` characters of one line from `start`.
    pub fn on_line(start: Pos, len: u32) -> Span {
        Span {
            start,
            end: Pos {
                line: start.line,
                col: start.col + len,
            },
        }
    }
}

/// A span in a named file of the config repository (path relative to the repository root).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub file: Arc<str>,
    pub span: Span,
}

impl Loc {
    pub fn new(file: &Arc<str>, span: Span) -> Loc {
        Loc {
            file: Arc::clone(file),
            span,
        }
    }

    /// The start of a file, for problems that concern a file as a whole.
    pub fn file_start(file: &Arc<str>) -> Loc {
        Loc::new(
            file,
            Span {
                start: Pos { line: 1, col: 1 },
                end: Pos { line: 1, col: 1 },
            },
        )
    }
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file, self.span.start.line, self.span.start.col
        )
    }
}

/// How bad a diagnostic is: errors fail `validate` (exit code 1), warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the config repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where; `None` for problems without a place (an unreadable revision, say).
    pub loc: Option<Loc>,
    /// A short note printed under the underlined text.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            loc: None,
            label: None,
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, loc: Loc) -> Diagnostic {
        self.loc = Some(loc);
        self
    }

    pub fn at_opt(mut self, loc: Option<Loc>) -> Diagnostic {
        self.loc = loc;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn label_opt(mut self, label: Option<String>) -> Diagnostic {
        self.label = label;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    /// `file:line:col: error: message` — the one-line form used in logs and tests.
    pub fn short(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.loc {
            Some(loc) => format!("{loc}: {sev}: {}", self.message),
            None => format!("{sev}: {}", self.message),
        }
    }
}

/// A collection of diagnostics, kept in the order found and free of exact repeats (the same
/// pipeline problem seen through several environments is reported once).
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    seen: std::collections::HashSet<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        if self.seen.insert(d.clone()) {
            self.items.push(d);
        }
    }

    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Diagnostics sorted by file and position, errors and warnings interleaved as they stand.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.items.iter().collect();
        v.sort_by(|a, b| a.loc.cmp(&b.loc));
        v
    }
}

/// The texts of the files that diagnostics point into, so that they can be quoted.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: HashMap<Arc<str>, Arc<str>>,
}

impl SourceMap {
    pub fn insert(&mut self, file: &Arc<str>, text: &Arc<str>) {
        self.files.insert(Arc::clone(file), Arc::clone(text));
    }

    pub fn merge(&mut self, other: &SourceMap) {
        for (k, v) in &other.files {
            self.files
                .entry(Arc::clone(k))
                .or_insert_with(|| Arc::clone(v));
        }
    }

    fn line(&self, file: &str, line: u32) -> Option<&str> {
        let text = self.files.get(file)?;
        text.lines().nth(line.checked_sub(1)? as usize)
    }
}

/// Terminal styling for rendered diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Never,
    Always,
}

/// Renders one diagnostic for people, quoting the line it points at (annotate-snippets, in
/// the style of rustc):
///
/// ```text
/// error: unknown field `tempalte` in stack `vpc`
///  --> pipelines/placeos/pipeline.yml:4:5
///   |
/// 4 |     tempalte: templates/vpc.yml
///   |     ^^^^^^^^ did you mean `template`?
///   |
///   = help: …
/// ```
pub fn render(d: &Diagnostic, sources: &SourceMap, color: Color) -> String {
    use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};

    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = Group::with_title(level.primary_title(d.message.as_str()));
    if let Some(loc) = &d.loc {
        let path = loc.file.to_string();
        match sources.line(&loc.file, loc.span.start.line) {
            Some(text) => {
                let range = underline(text, loc.span);
                let mut mark = AnnotationKind::Primary.span(range);
                if let Some(l) = &d.label {
                    mark = mark.label(l.as_str());
                }
                group = group.element(
                    Snippet::source(text)
                        .line_start(loc.span.start.line as usize)
                        .path(path)
                        .annotation(mark),
                );
            }
            None => {
                group = group.element(
                    Origin::path(path)
                        .line(loc.span.start.line as usize)
                        .char_column(loc.span.start.col as usize),
                );
                if let Some(l) = &d.label {
                    group = group.element(Level::NOTE.message(l.as_str()));
                }
            }
        }
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let renderer = match color {
        Color::Always => Renderer::styled(),
        Color::Never => Renderer::plain(),
    };
    let mut out = renderer.render(&[group]);
    out.push('\n');
    out
}

/// The bytes of `line` that `span` underlines: from its start column to its end on the same
/// line, else to the end of the line (at least one character).
fn underline(line: &str, span: Span) -> std::ops::Range<usize> {
    let byte = |col: u32| {
        line.char_indices()
            .nth(col.saturating_sub(1) as usize)
            .map_or(line.len(), |(i, _)| i)
    };
    let start = byte(span.start.col.max(1));
    let end = if span.end.line == span.start.line && span.end.col > span.start.col {
        byte(span.end.col)
    } else {
        line.len()
    };
    start..end.max(start)
}

/// Renders every diagnostic followed by a count line (`2 errors, 1 warning`).
pub fn render_all(diags: &Diagnostics, sources: &SourceMap, color: Color) -> String {
    let mut out = String::new();
    for d in diags.sorted() {
        out.push_str(&render(d, sources, color));
        out.push('\n');
    }
    out
}

/// The machine-readable form of a diagnostic, as printed by `--output json`.
#[derive(Serialize)]
pub struct DiagnosticJson<'a> {
    pub severity: Severity,
    pub message: &'a str,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub end_line: Option<u32>,
    pub end_column: Option<u32>,
    pub label: Option<&'a str>,
    pub help: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for DiagnosticJson<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        DiagnosticJson {
            severity: d.severity,
            message: &d.message,
            file: d.loc.as_ref().map(|l| &*l.file),
            line: d.loc.as_ref().map(|l| l.span.start.line),
            column: d.loc.as_ref().map(|l| l.span.start.col),
            end_line: d.loc.as_ref().map(|l| l.span.end.line),
            end_column: d.loc.as_ref().map(|l| l.span.end.col),
            label: d.label.as_deref(),
            help: d.help.as_deref(),
        }
    }
}

/// Pluralises a count: `plural(1, "error")` is `1 error`, `plural(2, "error")` is `2 errors`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_line_with_carets_and_help() {
        let file: Arc<str> = Arc::from("pipelines/p/pipeline.yml");
        let mut sources = SourceMap::default();
        sources.insert(&file, &Arc::from("stacks:\n  vpc:\n    tempalte: x.yml\n"));
        let d = Diagnostic::error("unknown field `tempalte`")
            .at(Loc::new(&file, Span::on_line(Pos { line: 3, col: 5 }, 8)))
            .label("did you mean `template`?")
            .help("see docs/config.md");
        let text = render(&d, &sources, Color::Never);
        assert_eq!(
            text,
            "error: unknown field `tempalte`\n --> pipelines/p/pipeline.yml:3:5\n  |\n3 |     tempalte: x.yml\n  |     ^^^^^^^^ did you mean `template`?\n  |\n  = help: see docs/config.md\n"
        );
    }

    #[test]
    fn duplicates_are_reported_once() {
        let mut ds = Diagnostics::new();
        ds.push(Diagnostic::error("x"));
        ds.push(Diagnostic::error("x"));
        ds.push(Diagnostic::warning("x"));
        assert_eq!(ds.error_count(), 1);
        assert_eq!(ds.warning_count(), 1);
    }
}
