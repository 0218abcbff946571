//! `formwork iam-policy`: the least-privilege IAM policy for the plan or the apply role, scoped
//! to the stacks, SSM parameters, artifact buckets and environment roles of the config.

use std::path::Path;

use anyhow::{Result, bail};

use formwork::config::validate_repository;
use formwork::diag::Color;
use formwork::iam::{Role, policy};

use super::{print_diags, print_json, with_source};

pub fn run(
    repo: &Path,
    rev: Option<&str>,
    role: Role,
    envs: &[String],
    store: &str,
    c: Color,
) -> Result<u8> {
    with_source(repo, rev, |src| {
        let v = validate_repository(src)?;
        print_diags(&v.diags, &v.texts, c);
        if v.diags.has_errors() {
            return Ok(1);
        }
        for e in envs {
            if !v.environments.iter().any(|d| &d.name == e) {
                bail!("there is no environment `{e}` in {}", src.describe());
            }
        }
        let chosen: Vec<_> = v
            .environments
            .into_iter()
            .filter(|e| envs.is_empty() || envs.contains(&e.name))
            .collect();
        let table = store.strip_prefix("dynamodb:");
        print_json(&policy(role, &chosen, table))?;
        Ok(0)
    })
}
