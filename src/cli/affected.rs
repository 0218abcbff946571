//! `formwork affected`: the stacks a change between two revisions affects.

use std::path::Path;

use anyhow::Result;

use formwork::config::ParseCache;
use formwork::diag::Color;
use formwork::{affected, git, render};

use super::{emit, print_diags, print_json};
use crate::Output;

pub fn run(repo: &Path, base: &str, head: &str, output: Output, c: Color) -> Result<u8> {
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    // The parsed files live as long as the process; freeing them one by one on the way out
    // would only cost time.
    let cache: &'static ParseCache = Box::leak(Box::default());
    let report = affected::affected(&r, &prefix, base, head, cache)?;
    let invalid = report.diags.has_errors();
    match output {
        Output::Json => print_json(&render::affected_json(&report))?,
        Output::Text => {
            print_diags(&report.diags, &report.texts, c);
            if invalid {
                eprintln!(
                    "error: the config at {head} has errors in the environments this change touches; fix them first"
                );
            } else {
                emit(&render::affected_text(&report))?;
            }
        }
    }
    Ok(if invalid {
        1
    } else if report.is_empty() {
        0
    } else {
        2
    })
}
