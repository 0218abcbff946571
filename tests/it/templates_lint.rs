//! Every template of the example config repository passes cfn-lint (pinned in
//! tools/emulators/cfn-lint.txt, installed by `scripts/emulators setup`) with no errors.
//! Warnings are printed, not failed on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn templates() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut out = Vec::new();
    for p in std::fs::read_dir(&root).unwrap() {
        let dir = p.unwrap().path().join("templates");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let f = e.unwrap().path();
            if matches!(
                f.extension().and_then(|x| x.to_str()),
                Some("yml" | "yaml" | "json" | "template")
            ) {
                out.push(f);
            }
        }
    }
    // The templates `formwork init` starts a repository with.
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/init");
    out.extend(["queue.yml", "topic.yml"].map(|f| init.join(f)));
    out.sort();
    out
}

#[test]
fn every_example_template_passes_cfn_lint() {
    let lint = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/cfn-lint/bin/cfn-lint");
    assert!(
        lint.exists(),
        "cfn-lint is not installed: run `scripts/emulators setup cfn-lint` (scripts/test does)"
    );
    let files = templates();
    assert!(files.len() >= 18, "only {} templates found", files.len());
    let out = Command::new(&lint)
        .args(["--format", "parseable", "--regions", "us-east-1", "--"])
        .args(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(":E")).collect();
    if !text.trim().is_empty() {
        eprintln!("cfn-lint says:\n{text}");
    }
    // cfn-lint's exit code: 0 clean, bit 2 errors, bit 4 warnings, bit 8 informational; 1 is a
    // failure of cfn-lint itself.
    let code = out.status.code().unwrap_or(1);
    assert!(
        code != 1,
        "cfn-lint failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        errors.is_empty() && code & 2 == 0,
        "cfn-lint errors:\n{}",
        errors.join("\n")
    );
}
