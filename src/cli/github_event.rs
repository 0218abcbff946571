//! `formwork github-event`: the GitHub Actions door. Reads the event that started the workflow
//! (`GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`), decides what it calls for exactly as the daemon
//! decides a webhook ([`formwork::runner::decide`]), and has the same runner do the work inline:
//! plan a pull request (offline from an untrusted fork), release a closed one, bring the
//! environments to the default branch after a push, run a `/formwork …` comment.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use formwork::github::webhook;
use formwork::runner::{Acts, Policy, Runner, Settings, Work, decide};

use super::action_report::ActionReport;
use super::github::GitHubArgs;
use super::plan::runtime;

#[derive(clap::Args, Clone)]
pub struct EventArgs {
    /// The event's name.
    #[arg(long, env = "GITHUB_EVENT_NAME")]
    event_name: String,
    /// The file holding the event's payload.
    #[arg(long, env = "GITHUB_EVENT_PATH")]
    event_path: PathBuf,
    /// Which events to act on: `auto` all of them; `plan` pull requests and comments (pushes
    /// are ignored); `apply` pushes and comments (pull requests are ignored). `affected` only
    /// works out which environments the push or pull request changes (the step output
    /// `environments`, for a matrix of apply jobs), without GitHub or AWS.
    #[arg(long, value_enum, default_value_t = Only::Auto)]
    command: Only,
    /// Work on these environments only (repeat, or separate with commas). Default: all.
    #[arg(long = "env", short = 'e', value_name = "NAME", value_delimiter = ',')]
    envs: Vec<String>,
    /// Let `/formwork apply` apply an open pull request's reviewed plan before it is merged.
    #[arg(long, env = "FORMWORK_GITHUB_APPLY_BEFORE_MERGE")]
    apply_before_merge: bool,
    /// Owners (users or organisations) whose forks' pull requests are planned with AWS; any
    /// other fork is planned offline (repeat, or separate with commas).
    #[arg(
        long = "trusted-fork-owner",
        value_name = "OWNER",
        env = "FORMWORK_TRUSTED_FORK_OWNERS",
        value_delimiter = ','
    )]
    trusted_fork_owners: Vec<String>,
    /// Passed on to apply: make fresh change sets for stacks whose reviewed one no longer
    /// matches.
    #[arg(long)]
    replan: bool,
    /// Passed on to apply: delete stacks that left the config.
    #[arg(long)]
    allow_delete: bool,
    #[command(flatten, next_help_heading = "GitHub")]
    github: GitHubArgs,
}

/// Which events `github-event` acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Auto,
    Plan,
    Apply,
    Affected,
}

/// Who runs the work: this step's process.
fn identity() -> String {
    let run = std::env::var("GITHUB_RUN_ID").unwrap_or_default();
    format!(
        "formwork github-event {} (run {run})",
        formwork::lease::process_owner()
    )
}

pub fn run(cli: &crate::Cli, args: &EventArgs) -> Result<u8> {
    let nonempty = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect()
    };
    let body = std::fs::read(&args.event_path)
        .with_context(|| format!("reading the event payload {}", args.event_path.display()))?;
    let event = webhook::read_trusted_event(&args.event_name, &body)?;
    if args.command == Only::Affected {
        return affected(cli, &event);
    }
    let repository = event.repository();
    let policy = Policy {
        // The workflow's repository (GITHUB_REPOSITORY); the event's own when not given.
        repository: args
            .github
            .repository()
            .map(str::to_string)
            .or_else(|| repository.map(|r| r.full_name.clone()))
            .unwrap_or_default(),
        allowed_repositories: Vec::new(),
        trusted_fork_owners: nonempty(&args.trusted_fork_owners),
        acts: match args.command {
            Only::Auto | Only::Affected => Acts::All,
            Only::Plan => Acts::Plans,
            Only::Apply => Acts::Applies,
        },
    };
    let decision = decide(&event, &policy);
    if decision.work.is_empty() {
        eprintln!(
            "nothing to do: {}",
            decision.nothing_because.as_deref().unwrap_or("no work")
        );
        return Ok(0);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let cx = args
            .github
            .context(cli, formwork::aws::DEFAULT_MAX_IN_FLIGHT)
            .await?;
        let identity = identity();
        let settings = Settings {
            default_branch: repository
                .map(|r| r.default_branch.clone())
                .unwrap_or_else(|| "main".into()),
            environments: nonempty(&args.envs),
            apply_before_merge: args.apply_before_merge,
            apply: formwork::apply::Options {
                allow_delete: args.allow_delete,
                replan: args.replan,
                owner: identity.clone(),
                ..formwork::apply::Options::default()
            },
            identity,
            parallel_environments: 4,
            replans_when_freed: false,
        };
        let report = Arc::new(ActionReport::default());
        let runner = Runner::new(cx, settings, report.clone());
        let mut queue: Vec<Work> = decision.work;
        queue.reverse();
        let mut failed = false;
        while let Some(work) = queue.pop() {
            eprintln!("==> {} ({})", work.kind(), describe(&work));
            match runner.run(work).await {
                Ok(next) => queue.extend(next.into_iter().rev()),
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
        report.finish(&cli.data_dir(), &workspace_prefix(&cli.repo))?;
        anyhow::Ok(u8::from(failed || report.failed()))
    })
}

/// The environments a push (from `before` to `after`) or a pull request (from where it
/// branched off to its head) changes, as the step output `environments` (a JSON array) and on
/// standard output. Exit 0 with or without environments: the output decides what follows.
fn affected(cli: &crate::Cli, event: &webhook::Event) -> Result<u8> {
    const NONE: &str = "0000000000000000000000000000000000000000";
    let repo = formwork::workflow::ConfigRepo::discover(&cli.repo)?;
    let (base, head) = match event {
        webhook::Event::Push(p) if !p.deleted => {
            let base = if p.created || p.before == NONE {
                formwork::git::EMPTY_TREE.to_string()
            } else {
                p.before.clone()
            };
            (base, p.after.clone())
        }
        webhook::Event::PullRequest(p) => (
            repo.merge_base(&p.base_sha, &p.head_sha)?,
            p.head_sha.clone(),
        ),
        _ => (String::new(), String::new()),
    };
    let environments = if head.is_empty() {
        Vec::new()
    } else {
        repo.affected_environments(&base, &head)?
    };
    let json = serde_json::to_string(&environments)?;
    super::action_report::step_outputs(&[("environments", json.clone())])?;
    println!("{json}");
    Ok(0)
}

/// Where the config repository sits in the workflow's checkout (`GITHUB_WORKSPACE`), for the
/// paths of annotations: empty when it is the checkout itself or cannot be told.
fn workspace_prefix(repo: &std::path::Path) -> String {
    let (Some(ws), Ok(repo)) = (std::env::var_os("GITHUB_WORKSPACE"), repo.canonicalize()) else {
        return String::new();
    };
    let Ok(ws) = PathBuf::from(ws).canonicalize() else {
        return String::new();
    };
    formwork::git::relative_path(&repo, &ws)
}

/// What a piece of work is about, for the log.
fn describe(work: &Work) -> String {
    match work {
        Work::PlanPull {
            number,
            why,
            offline,
            ..
        } => format!(
            "pull request #{number}: {why}{}",
            if *offline {
                "; planned offline, without AWS: its head is in a fork whose owner is not trusted"
            } else {
                ""
            }
        ),
        Work::Command(c) => format!("a comment on pull request #{}", c.pull_request),
        Work::PullClosed { number, merged } => format!(
            "pull request #{number} {}",
            if *merged { "merged" } else { "closed" }
        ),
        Work::Apply { why, .. } => why.clone(),
    }
}
