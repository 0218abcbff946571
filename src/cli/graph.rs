//! `formwork graph`: an environment's stacks in dependency order.

use std::path::Path;

use anyhow::{Result, bail};

use formwork::config::{Loader, ParseCache, check_pipeline, resolve_environment};
use formwork::diag::Color;
use formwork::render;

use super::{emit, print_diags, print_json, with_source};
use crate::GraphOutput;

pub fn run(repo: &Path, env: &str, rev: Option<&str>, output: GraphOutput, c: Color) -> Result<u8> {
    with_source(repo, rev, |src| {
        let cache = ParseCache::default();
        let mut loader = Loader::new(src, &cache);
        let envs = loader.environment_names()?;
        let Some(e) = loader.environment(env)? else {
            print_diags(&loader.diags, &loader.texts, c);
            if envs.iter().any(|n| n == env) {
                return Ok(1);
            }
            let near = formwork::suggest::nearest(env, envs.iter().map(String::as_str))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            bail!(
                "there is no environment `{env}`{near} in {}; environments: {}",
                src.describe(),
                envs.join(", ")
            );
        };
        let pipelines = loader.pipeline_names()?;
        let p = loader.pipeline(&e.def.pipeline)?;
        let mut diags = std::mem::take(&mut loader.diags);
        if let Some(p) = &p {
            diags.extend(check_pipeline(p));
        }
        let (desired, d) = resolve_environment(&e, p.as_deref(), &pipelines);
        diags.extend(d);
        print_diags(&diags, &loader.texts, c);
        let Some(desired) = desired.filter(|_| !diags.has_errors()) else {
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
