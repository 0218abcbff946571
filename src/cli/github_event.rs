//! `formwork github-event`: the GitHub Actions entry point. Reads the event that started the
//! workflow (`GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`) and does what it calls for:
//!
//! - a pull request opened, pushed to or reopened → plan it (`plan --github-pr N`; offline for
//!   a pull request from a fork, whose workflow gets no AWS credentials);
//! - a push to the default branch → apply every affected environment (`apply --github`);
//! - a `/formwork …` comment on a pull request → the command, if its author may: plan, apply
//!   before merge (when enabled), unlock, help; bad commands get the help text.
//!
//! Each action runs formwork's own `plan` / `apply` in this process, with the same global
//! settings and GitHub flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use formwork::git;
use formwork::github::commands::{self, Command, Parsed};
use formwork::github::webhook::{
    self, Event, IssueCommentEvent, PullRequestAction, PullRequestEvent, PushEvent,
};
use formwork::secrets;
use formwork::store::{Store, now};
use formwork::workflow;

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
    /// are ignored); `apply` pushes and comments (pull requests are ignored).
    #[arg(long, value_enum, default_value_t = Only::Auto)]
    command: Only,
    /// Work on these environments only (repeat, or separate with commas). Default: every
    /// affected one.
    #[arg(long = "env", short = 'e', value_name = "NAME", value_delimiter = ',')]
    envs: Vec<String>,
    /// Let `/formwork apply` apply an open pull request's reviewed plan before it is merged.
    #[arg(long, env = "FORMWORK_GITHUB_APPLY_BEFORE_MERGE")]
    apply_before_merge: bool,
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
}

pub fn run(cli: &crate::Cli, args: &EventArgs) -> Result<u8> {
    // `--env ""` (an empty action input) means every environment.
    let args = &EventArgs {
        envs: args
            .envs
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect(),
        ..args.clone()
    };
    let body = std::fs::read(&args.event_path)
        .with_context(|| format!("reading the event payload {}", args.event_path.display()))?;
    let event = webhook::read_trusted_event(&args.event_name, &body)?;
    match event {
        Event::PullRequest(_) if args.command == Only::Apply => {
            eprintln!("a pull request event, and this step only applies: nothing to do");
            Ok(0)
        }
        Event::Push(_) if args.command == Only::Plan => {
            eprintln!("a push event, and this step only plans: nothing to do");
            Ok(0)
        }
        Event::PullRequest(pr) => pull_request(cli, args, &pr),
        Event::Push(push) => pushed(cli, args, &push),
        Event::IssueComment(c) => comment(cli, args, &c),
        Event::Ping(_) => Ok(0),
        Event::Ignored(i) => {
            eprintln!(
                "nothing to do for {}{}: {}",
                i.event,
                i.action.map(|a| format!(" ({a})")).unwrap_or_default(),
                i.reason
            );
            Ok(0)
        }
    }
}

/// Runs one of formwork's commands in this process, with this run's global settings.
fn sub(cli: &crate::Cli, args: &EventArgs, command: &[String]) -> Result<u8> {
    let mut argv: Vec<String> = vec![
        "formwork".into(),
        "--repo".into(),
        cli.repo.display().to_string(),
        "--store".into(),
        cli.store.clone(),
        "--data-dir".into(),
        cli.data_dir().display().to_string(),
        "--color".into(),
        cli.color
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_else(|| "auto".into()),
    ];
    argv.extend(command.iter().cloned());
    argv.extend(args.github.to_args());
    eprintln!("==> formwork {}", command.join(" "));
    let parsed = crate::Cli::try_parse_from(&argv).context("composing the command")?;
    crate::run(parsed)
}

fn env_flags(envs: &[String]) -> Vec<String> {
    envs.iter()
        .flat_map(|e| ["--env".to_string(), e.clone()])
        .collect()
}

fn pull_request(cli: &crate::Cli, args: &EventArgs, pr: &PullRequestEvent) -> Result<u8> {
    match &pr.action {
        PullRequestAction::Opened
        | PullRequestAction::Synchronize
        | PullRequestAction::Reopened => {
            let mut cmd = vec![
                "plan".to_string(),
                "--github-pr".to_string(),
                pr.number.to_string(),
            ];
            if pr.from_fork {
                eprintln!(
                    "pull request #{} comes from a fork: planned offline, without AWS",
                    pr.number
                );
                cmd.push("--offline".into());
            }
            cmd.extend(env_flags(&args.envs));
            sub(cli, args, &cmd)
        }
        PullRequestAction::Closed { merged: true, .. } => {
            eprintln!(
                "pull request #{} was merged: the push to {} applies it",
                pr.number, pr.base_ref
            );
            Ok(0)
        }
        PullRequestAction::Closed { merged: false, .. } => {
            eprintln!("pull request #{} was closed without merging", pr.number);
            Ok(0)
        }
    }
}

/// The environments a change between two commits affects (those of `wanted` only, when given).
fn affected_environments(
    cli: &crate::Cli,
    base: &str,
    head: &str,
    wanted: &[String],
) -> Result<Vec<String>> {
    let r = git::open(&cli.repo)?;
    let prefix = git::config_prefix(&r, &cli.repo);
    let mut envs = workflow::affected_environments(&r, &prefix, base, head)?;
    envs.retain(|e| wanted.is_empty() || wanted.contains(e));
    Ok(envs)
}

fn pushed(cli: &crate::Cli, args: &EventArgs, push: &PushEvent) -> Result<u8> {
    if !push.is_default_branch() || push.deleted {
        eprintln!(
            "a push to {} is not to the default branch ({}): nothing to apply",
            push.ref_name, push.repository.default_branch
        );
        return Ok(0);
    }
    let envs = if push.before.chars().all(|c| c == '0') {
        // A new branch: every environment.
        let r = git::open(&cli.repo)?;
        let prefix = git::config_prefix(&r, &cli.repo);
        workflow::environments_at(&r, &prefix, &push.after)?
            .into_iter()
            .map(|e| e.name)
            .filter(|e| args.envs.is_empty() || args.envs.contains(e))
            .collect()
    } else {
        affected_environments(cli, &push.before, &push.after, &args.envs)?
    };
    if envs.is_empty() {
        eprintln!("the push changes no environment");
        return Ok(0);
    }
    let mut code = 0;
    for env in envs {
        let mut cmd = vec![
            "apply".to_string(),
            "--github".into(),
            "--env".into(),
            env,
            "--head".into(),
            push.after.clone(),
        ];
        if args.replan {
            cmd.push("--replan".into());
        }
        if args.allow_delete {
            cmd.push("--allow-delete".into());
        }
        code = code.max(sub(cli, args, &cmd)?);
    }
    Ok(code)
}

fn comment(cli: &crate::Cli, args: &EventArgs, c: &IssueCommentEvent) -> Result<u8> {
    let parsed = commands::parse_comment(&c.body);
    if matches!(parsed, Parsed::NotACommand) {
        return Ok(0);
    }
    // The client lives on this runtime: its connection pool's worker runs there.
    let rt = runtime()?;
    let gh = rt.block_on(args.github.connect(secrets::global()))?;
    let reply = |text: &str| -> Result<()> {
        rt.block_on(gh.create_comment(c.pull_request, text))
            .context("replying on the pull request")?;
        Ok(())
    };
    // A failure to react is only logged.
    let react = |content: &str| {
        if let Err(e) = rt.block_on(gh.react(c.comment_id, content)) {
            tracing::warn!(error = %e, "could not react to the comment");
        }
    };
    let command = match parsed {
        Parsed::NotACommand => return Ok(0),
        Parsed::Invalid { message } => {
            reply(&format!("{message}\n\n{}", commands::help_markdown()))?;
            react("confused");
            return Ok(0);
        }
        Parsed::Command(command) => command,
    };
    if matches!(command, Command::Help) {
        reply(&commands::help_markdown())?;
        return Ok(0);
    }
    let permission = rt
        .block_on(gh.permission(&c.author))
        .context("checking the commenter's permission")?;
    if !permission.may_deploy() {
        react("confused");
        reply(&commands::refusal_markdown(
            &c.author,
            command.name(),
            permission.as_str(),
        ))?;
        return Ok(0);
    }
    react("eyes");
    let pr = c.pull_request;
    match command {
        Command::Help => Ok(0),
        Command::Plan {
            environments,
            stacks,
        } => {
            let mut cmd = vec!["plan".to_string(), "--github-pr".into(), pr.to_string()];
            cmd.extend(env_flags(if environments.is_empty() {
                &args.envs
            } else {
                &environments
            }));
            cmd.extend(
                stacks
                    .iter()
                    .flat_map(|s| ["--stack".to_string(), s.clone()]),
            );
            sub(cli, args, &cmd)
        }
        Command::Apply { environments } => {
            if !args.apply_before_merge {
                reply(&commands::apply_before_merge_off_markdown(
                    "`apply-before-merge: true` in the workflow",
                ))?;
                return Ok(0);
            }
            let pull = rt.block_on(gh.pull_request(pr))?;
            let envs = if environments.is_empty() {
                let r = git::open(&cli.repo)?;
                let base = git::merge_base(&r, &pull.base.sha, &pull.head.sha)?;
                affected_environments(cli, &base, &pull.head.sha, &args.envs)?
            } else {
                environments
            };
            if envs.is_empty() {
                reply("This pull request changes no environment: nothing to apply.")?;
                return Ok(0);
            }
            let mut code = 0;
            for env in envs {
                let cmd = vec![
                    "apply".to_string(),
                    "--github-pr".into(),
                    pr.to_string(),
                    "--env".into(),
                    env,
                ];
                code = code.max(sub(cli, args, &cmd)?);
            }
            Ok(code)
        }
        Command::Continue { gate, environments } => {
            let r = git::open(&cli.repo)?;
            let prefix = git::config_prefix(&r, &cli.repo);
            let envs: Vec<String> = workflow::environments_at(&r, &prefix, "HEAD")?
                .into_iter()
                .filter(|e| e.gates.iter().any(|g| g.name == gate))
                .map(|e| e.name)
                .filter(|e| environments.is_empty() || environments.contains(e))
                .collect();
            if envs.is_empty() {
                reply(&format!(
                    "No environment has a gate `{gate}` at the head of the default branch."
                ))?;
                return Ok(0);
            }
            let store = rt.block_on(formwork::store::open(&cli.store, &cli.data_dir()))?;
            let mut code = 0;
            for env in envs {
                rt.block_on(store.record_event(&formwork::store::Event {
                    environment: env.clone(),
                    at: now(),
                    kind: formwork::apply::GATE_EVENT.to_string(),
                    actor: format!("@{} (GitHub)", c.author),
                    detail: gate.clone(),
                }))?;
                reply(&format!(
                    "Gate `{gate}` of `{env}` passed by @{}: applying goes on.",
                    c.author
                ))?;
                code = code.max(sub(
                    cli,
                    args,
                    &["apply".to_string(), "--github".into(), "--env".into(), env],
                )?);
            }
            Ok(code)
        }
        Command::Unlock { environments } => {
            let store = rt.block_on(formwork::store::open(&cli.store, &cli.data_dir()))?;
            let envs = if environments.is_empty() {
                let r = git::open(&cli.repo)?;
                let prefix = git::config_prefix(&r, &cli.repo);
                workflow::environments_at(&r, &prefix, "HEAD")?
                    .into_iter()
                    .map(|e| e.name)
                    .collect()
            } else {
                environments
            };
            let mut lines = Vec::new();
            for env in envs {
                let lock = rt.block_on(store.force_unlock(
                    &env,
                    &format!("@{} (GitHub)", c.author),
                    &format!("/formwork unlock on pull request #{pr}"),
                    now(),
                ))?;
                lines.push(match lock {
                    Some(l) => format!("- `{env}`: unlocked (was held by {})", l.owner),
                    None => format!("- `{env}`: was not locked"),
                });
            }
            reply(&format!(
                "Unlocked by @{}:\n\n{}",
                c.author,
                lines.join("\n")
            ))?;
            Ok(0)
        }
    }
}
