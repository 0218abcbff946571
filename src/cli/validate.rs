//! `formwork validate`: check a whole revision of the config repository.

use std::path::Path;

use anyhow::{Context, Result};

use formwork::diag::Color;
use formwork::render;

use super::{emit, print_diags, print_json, with_source};
use crate::Output;

pub fn run(repo: &Path, rev: Option<&str>, output: Output, c: Color) -> Result<u8> {
    with_source(repo, rev, |src| {
        let v = formwork::config::validate_repository(src)
            .with_context(|| format!("reading {}", src.describe()))?;
        match output {
            Output::Json => print_json(&render::validate_json(&v, &src.describe()))?,
            Output::Text => {
                print_diags(&v.diags, &v.texts, c);
                emit(&format!("{}\n", render::validate_summary(&v)))?;
            }
        }
        Ok(if v.diags.has_errors() { 1 } else { 0 })
    })
}
