//! `formwork policy test`: the policy rules' own unit tests.

use std::path::Path;

use anyhow::Result;

use formwork::policy::POLICIES_DIR;
use formwork::policy::tests_run;

use super::emit;
use crate::Output;

pub fn test(repo: &Path, output: Output) -> Result<u8> {
    let dir = repo.join(POLICIES_DIR);
    let run = tests_run::run(&dir, output == Output::Json).map_err(|e| match e {
        tests_run::TestRunError::NoDirectory(d) => anyhow::anyhow!(
            "there is no directory {d}: policy rules live in policies/<name>.guard, their tests in policies/tests/<name>_tests.yaml (see docs/policy.md)"
        ),
        other => other.into(),
    })?;
    emit(&run.report)?;
    if output == Output::Text {
        eprintln!(
            "{}",
            if run.passed {
                "every rule test passed"
            } else {
                "a rule test failed or a rule file does not parse"
            }
        );
    }
    Ok(if run.passed { 0 } else { 1 })
}
