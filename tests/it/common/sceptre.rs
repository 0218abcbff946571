//! Sceptre 4.7.0 (pinned with hashes in tools/bench/sceptre.txt) from the project's venv
//! `.venv/sceptre`, which `scripts/test` makes when it is missing, run against a local endpoint.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Run;
use super::aws::Endpoint;

/// The `sceptre` executable of `.venv/sceptre`; a test that needs it fails, saying how to make
/// it, when it is missing.
pub fn sceptre_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/sceptre/bin/sceptre");
    assert!(
        bin.is_file(),
        "{} is missing: make the Sceptre venv with `scripts/test` (it creates .venv/sceptre), or \
         `bash -c 'source tools/emulators/lib.sh; source tools/bench/sceptre.sh; setup_sceptre'` \
         in the repository's root",
        bin.display()
    );
    bin
}

/// Runs `sceptre ARGS` in the project `dir` against `endpoint`.
pub fn sceptre(endpoint: &Endpoint, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(sceptre_bin());
    endpoint.configure(&mut cmd);
    let out = cmd
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sceptre");
    Run::from(out)
}
