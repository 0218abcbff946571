//! `formwork import sceptre`: a Sceptre project converted into a formwork config repository.
//!
//! - [`read`]: the `config/` tree with Sceptre's inheritance and Jinja filled in;
//! - [`resolvers`]: `!stack_output`, `!ssm`, `!sub`, … as formwork expressions;
//! - [`convert`]: stack groups to environments, stacks to one pipeline, Sceptre's stack names
//!   kept;
//! - [`options`]: the stack options Sceptre sets (service role, protection, stack policy,
//!   notification topics, what a failed creation leaves) as formwork `options:`;
//! - [`emit`]: the YAML text written;
//! - [`report`]: what could not be mapped, at `file:line:col`.
//!
//! [`import`] does the conversion in memory; [`write`] puts the files in place, refusing to
//! overwrite unless told to.

pub mod convert;
pub mod emit;
pub mod hooks;
pub mod options;
pub mod read;
pub mod report;
pub mod resolvers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use report::{Item, Report};

/// Why an import failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Read(#[from] read::Error),
    #[error("the Sceptre project has no stacks (no config/**/*.yaml besides config.yaml)")]
    NoStacks,
    #[error("`{0}` is not an AWS account id (12 digits)")]
    Account(String),
    #[error("`{0}` is not a pipeline name (letters, digits, `-` and `_`)")]
    Pipeline(String),
    #[error("{} exist{}; use --force to overwrite: {}", if .0.len() == 1 { "a file" } else { "files" }, if .0.len() == 1 { "s" } else { "" }, .0.join(", "))]
    Exists(Vec<String>),
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the import is given besides the project directory.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The pipeline's name (default: the project_code).
    pub pipeline: Option<String>,
    /// The AWS account of every environment (Sceptre does not name it).
    pub account: Option<String>,
    /// Values of `{{ var.X }}` (Sceptre's `--var`).
    pub vars: BTreeMap<String, String>,
}

/// A conversion done in memory.
#[derive(Debug)]
pub struct Conversion {
    pub pipeline: String,
    pub environments: Vec<String>,
    /// Each file to write: path relative to the output directory, content.
    pub files: Vec<(String, Vec<u8>)>,
    pub report: Report,
}

/// Converts the Sceptre project at `dir`.
pub fn import(dir: &Path, opts: &Options) -> Result<Conversion, Error> {
    if let Some(a) = &opts.account
        && !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::Account(a.clone()));
    }
    if let Some(p) = &opts.pipeline
        && (p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(Error::Pipeline(p.clone()));
    }
    let mut report = Report::default();
    let project = read::read(dir, &opts.vars, &mut report)?;
    if project.stacks.is_empty() {
        return Err(Error::NoStacks);
    }
    let out = convert::convert(
        &project,
        &convert::Settings {
            dir,
            pipeline: opts.pipeline.as_deref(),
            account: opts.account.as_deref(),
        },
        &mut report,
    );
    let mut files: Vec<(String, Vec<u8>)> = out
        .texts
        .into_iter()
        .map(|(p, t)| (p, t.into_bytes()))
        .collect();
    for (to, from) in out.templates {
        let path = dir.join(&from);
        match std::fs::read(&path) {
            Ok(bytes) => files.push((to, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.add(
                    &from,
                    (1, 1),
                    "template",
                    format!("template {from} does not exist"),
                    "add it to the pipeline's templates/ by hand",
                );
            }
            Err(source) => return Err(Error::ReadFile { path, source }),
        }
    }
    report.finish();
    Ok(Conversion {
        pipeline: out.pipeline,
        environments: out.environments,
        files,
        report,
    })
}

/// Writes the conversion's files under `out`; refuses (writing nothing) when one exists,
/// unless `force`. Returns the paths written.
pub fn write(c: &Conversion, out: &Path, force: bool) -> Result<Vec<String>, Error> {
    if !force {
        let exists: Vec<String> = c
            .files
            .iter()
            .filter(|(p, _)| out.join(p).exists())
            .map(|(p, _)| p.clone())
            .collect();
        if !exists.is_empty() {
            return Err(Error::Exists(exists));
        }
    }
    let mut written = Vec::new();
    for (rel, bytes) in &c.files {
        let path = out.join(rel);
        let err = |source| Error::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::write(&path, bytes).map_err(err)?;
        written.push(rel.clone());
    }
    Ok(written)
}
