//! The commands of the `formwork` binary, one module each, and what they share: colour,
//! writing to standard output, printing diagnostics, choosing where config files are read from.

mod action_report;
pub mod affected;
pub mod apply;
pub mod drift;
pub mod github;
pub mod github_event;
pub mod graph;
pub mod iam_policy;
pub mod import_sceptre;
pub mod init;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod serve;
pub mod status;
pub mod validate;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Result, bail};

use formwork::diag::{Color, Diagnostics, SourceMap, render_all};
use formwork::git::{self, Revision};
use formwork::source::{Directory, Source};

use crate::ColorChoice;

pub fn color(choice: ColorChoice) -> Color {
    match choice {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto => {
            if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
                Color::Always
            } else {
                Color::Never
            }
        }
    }
}

/// Writes to standard output; a closed pipe (`formwork … | head`) ends the output quietly and
/// the command keeps its exit code.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

pub fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    emit(&text)
}

pub fn print_diags(diags: &Diagnostics, texts: &SourceMap, c: Color) {
    if !diags.is_empty() {
        eprint!("{}", render_all(diags, texts, c));
    }
}

/// Runs `f` on the files of `rev`, or of the working tree of `repo` when there is no `rev`.
pub fn with_source<T>(
    repo: &Path,
    rev: Option<&str>,
    f: impl FnOnce(&dyn Source) -> Result<T>,
) -> Result<T> {
    match rev {
        Some(rev) => {
            let r = git::open(repo)?;
            let prefix = git::config_prefix(&r, repo);
            let revision = Revision::resolve(&r, rev)?;
            let src = revision.source(&r, &prefix)?;
            f(&src)
        }
        None => {
            if !repo.is_dir() {
                bail!("{} is not a directory", repo.display());
            }
            f(&Directory::new(repo))
        }
    }
}
