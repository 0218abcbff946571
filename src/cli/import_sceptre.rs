//! `formwork import sceptre DIR`: a Sceptre project converted into `pipelines/` and
//! `environments/` (the library's `migrate::sceptre`), and the report of what could not be
//! mapped. Exit code 0 when everything was mapped, 2 when some items were not (the files are
//! written all the same), 1 on errors (nothing written).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde_json::json;

use formwork::migrate::sceptre::{self, Options};

use super::{emit, print_json};
use crate::Output;

/// What `formwork import sceptre` is given.
#[derive(clap::Args)]
pub struct SceptreArgs {
    /// The Sceptre project: the directory holding config/ and templates/.
    pub dir: PathBuf,
    /// Where to write pipelines/ and environments/ (default: --repo, the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// The pipeline's name (default: the project_code of config/config.yaml).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// The AWS account id of every environment (Sceptre does not name it).
    #[arg(long)]
    pub account: Option<String>,
    /// A value for `{{ var.NAME }}` in the Sceptre config, as `NAME=VALUE` (repeat).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(repo: &Path, a: &SceptreArgs) -> Result<u8> {
    let mut vars = BTreeMap::new();
    for v in &a.vars {
        let Some((k, val)) = v.split_once('=') else {
            bail!("--var {v}: write NAME=VALUE");
        };
        vars.insert(k.to_string(), val.to_string());
    }
    let opts = Options {
        pipeline: a.pipeline.clone(),
        account: a.account.clone(),
        vars,
    };
    let conv = sceptre::import(&a.dir, &opts)?;
    let out = a.out.as_deref().unwrap_or(repo);
    let written = sceptre::write(&conv, out, a.force)?;
    let r = &conv.report;
    let code = if r.unmapped.is_empty() { 0 } else { 2 };
    match a.output {
        Output::Json => {
            let mut doc = r.to_json();
            doc["source"] = json!(a.dir.display().to_string());
            doc["out"] = json!(out.display().to_string());
            doc["pipeline"] = json!(conv.pipeline);
            doc["environments"] = json!(conv.environments);
            doc["files"] = json!(written);
            print_json(&doc)?;
        }
        Output::Text => {
            for f in &written {
                eprintln!("wrote    {f}");
            }
            if !r.unmapped.is_empty() {
                eprintln!(
                    "\nnot mapped (paths relative to {}):\n{}",
                    a.dir.display(),
                    r.to_text()
                );
            }
            for n in &r.notes {
                eprintln!("note: {n}");
            }
            eprintln!(
                "\nNext: formwork validate; finish the items above by hand (docs/migrating-from-sceptre.md);\n\
                 tag the stacks as formwork's once from Sceptre (stack_tags formwork:pipeline: {} and\n\
                 formwork:environment: <environment>, then sceptre launch), and `formwork plan` shows no changes.",
                conv.pipeline
            );
            emit(&format!(
                "imported: pipeline {}, environments {}; {} files written into {}; {}\n",
                conv.pipeline,
                conv.environments.join(", "),
                written.len(),
                out.display(),
                match r.unmapped.len() {
                    0 => "everything mapped".to_string(),
                    1 => "1 item not mapped".to_string(),
                    n => format!("{n} items not mapped"),
                }
            ))?;
        }
    }
    Ok(code)
}
