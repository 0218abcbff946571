//! `formwork graph`: an environment's stacks in dependency order.

use std::path::Path;

use anyhow::{Result, bail};

use formwork::config::check_environment;
use formwork::diag::Color;
use formwork::render;

use super::{emit, print_diags, print_json, with_source};
use crate::GraphOutput;

pub fn run(repo: &Path, env: &str, rev: Option<&str>, output: GraphOutput, c: Color) -> Result<u8> {
    with_source(repo, rev, |src| {
        let checked = check_environment(src, env)?;
        if !checked.exists(env) {
            print_diags(&checked.diags, &checked.texts, c);
            let names = &checked.names;
            let near = formwork::suggest::nearest(env, names.iter().map(String::as_str))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            bail!(
                "there is no environment `{env}`{near} in {}; environments: {}",
                src.describe(),
                names.join(", ")
            );
        }
        print_diags(&checked.diags, &checked.texts, c);
        let Some(desired) = checked.desired.filter(|_| !checked.diags.has_errors()) else {
            return Ok(1);
        };
        match output {
            GraphOutput::Text => emit(&render::graph_text(&desired))?,
            GraphOutput::Json => print_json(&render::graph_json(&desired))?,
            GraphOutput::Dot => emit(&render::graph_dot(&desired))?,
        }
        Ok(0)
    })
}
