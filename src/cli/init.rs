//! `formwork init`: a new config repository to start from — one pipeline of two stacks, one
//! environment, the JSON Schemas its files point editors at, the workflows that plan pull
//! requests and apply merges, and `.formwork/` (local state) kept out of git. Files that exist
//! are left as they are.

use std::path::Path;

use anyhow::{Context, Result, bail};

use formwork::schema;

/// The files of a new repository: path, content (placeholders filled in by [`fill`]).
const FILES: &[(&str, &str)] = &[
    (
        "pipelines/{{PIPELINE}}/pipeline.yml",
        include_str!("../../data/init/pipeline.yml"),
    ),
    (
        "pipelines/{{PIPELINE}}/templates/queue.yml",
        include_str!("../../data/init/queue.yml"),
    ),
    (
        "pipelines/{{PIPELINE}}/templates/topic.yml",
        include_str!("../../data/init/topic.yml"),
    ),
    (
        "environments/{{ENV}}/environment.yml",
        include_str!("../../data/init/environment.yml"),
    ),
    (
        ".github/workflows/formwork-plan.yml",
        include_str!("../../data/init/formwork-plan.yml"),
    ),
    (
        ".github/workflows/formwork-apply.yml",
        include_str!("../../data/init/formwork-apply.yml"),
    ),
];

/// What `init` is asked to make.
pub struct InitArgs<'a> {
    pub dir: &'a Path,
    pub pipeline: &'a str,
    pub env: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

pub fn run(a: &InitArgs<'_>) -> Result<u8> {
    for (what, name) in [("pipeline", a.pipeline), ("environment", a.env)] {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("the {what} name `{name}` must be letters, digits, `-` and `_`");
        }
    }
    if a.account.len() != 12 || !a.account.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "`{}` is not an AWS account id: give the 12 digits with --account",
            a.account
        );
    }
    let fill = |s: &str| {
        s.replace("{{PIPELINE}}", a.pipeline)
            .replace("{{ENV}}", a.env)
            .replace("{{ACCOUNT}}", a.account)
            .replace("{{REGION}}", a.region)
    };
    let mut files: Vec<(String, String)> = FILES.iter().map(|(p, t)| (fill(p), fill(t))).collect();
    for (file, text) in schema::files() {
        files.push((format!("schemas/{file}"), text));
    }
    let (mut written, mut kept) = (0, 0);
    for (rel, text) in &files {
        let path = a.dir.join(rel);
        if path.exists() {
            eprintln!("kept     {rel} (it exists)");
            kept += 1;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote    {rel}");
        written += 1;
    }
    let gitignore = a.dir.join(".gitignore");
    let current = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if !current.lines().any(|l| l.trim() == ".formwork/") {
        let sep = if current.is_empty() || current.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        std::fs::write(
            &gitignore,
            format!("{current}{sep}# formwork's local state (plans, runs, locks)\n.formwork/\n"),
        )
        .with_context(|| format!("writing {}", gitignore.display()))?;
        eprintln!("updated  .gitignore (.formwork/)");
    }
    eprintln!(
        "\n{written} files written, {kept} kept. Next:\n  formwork validate\n  formwork plan --offline --base {} --env {}   # what the first apply creates\n  formwork iam-policy --plan   # the policy of the role the plan workflow assumes\nthen commit, set the repository variables the workflows name, and open a pull request.",
        formwork::git::EMPTY_TREE,
        a.env
    );
    Ok(0)
}
