//! `formwork apply`: execute a reviewed plan's change sets in one environment.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use formwork::apply::{self, ApplyError, Observer, Options, Request};
use formwork::aws::cfn::StackEvent;
use formwork::aws::{Aws, DEFAULT_MAX_IN_FLIGHT};
use formwork::config::ParseCache;
use formwork::diag::Color;
use formwork::git;
use formwork::github::flow;
use formwork::plan::model::Plan;
use formwork::plan::model::UnitPlan;
use formwork::render::apply_text;
use formwork::secrets;
use formwork::store::{Store, UnitState};
use formwork::workflow::{Selection, WorkflowError, desired_at};

use super::github::GitHubArgs;
use super::plan::{live_plan, runtime};
use super::{emit, print_json};
use crate::Output;

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The environment to apply.
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    env: String,
    /// The reviewed plan to apply. Default: the newest recorded plan of the environment.
    #[arg(long, conflicts_with = "base")]
    plan: Option<String>,
    /// Plan the change from this revision to --head, and apply it at once.
    #[arg(long)]
    base: Option<String>,
    /// The revision whose config the plan must match (and which is recorded as deployed).
    #[arg(long, default_value = "HEAD")]
    head: String,
    /// Delete the stacks that left the config.
    #[arg(long)]
    allow_delete: bool,
    /// Make a fresh change set for a stack whose reviewed one no longer matches, instead of
    /// refusing (destruction the reviewed plan did not show still needs confirmation).
    #[arg(long)]
    replan: bool,
    /// Confirm, without asking, fresh change sets that replace or remove what the reviewed plan
    /// did not show.
    #[arg(long)]
    yes: bool,
    /// How long to wait for one stack operation, in seconds (stacks may set their own
    /// `timeout_minutes`).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Stack operations at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// AWS calls in flight at once per account and region.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, env = "FORMWORK_MAX_IN_FLIGHT")]
    max_in_flight: usize,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Report on GitHub: the results on the merged pull request that brought --head (or on the
    /// commit), and a `formwork/apply` status or check run on it. Without --plan, applies the
    /// plan recorded for that pull request's head.
    #[arg(long)]
    github: bool,
    /// Apply this open pull request's reviewed plan before it is merged (its head; the plan
    /// recorded for it), and report on it.
    #[arg(long, value_name = "NUMBER", conflicts_with_all = ["github", "base", "head"])]
    github_pr: Option<u64>,
    #[command(flatten, next_help_heading = "GitHub")]
    github_args: GitHubArgs,
}

/// Progress on standard error: a line per stack state and per resource event.
struct TermObserver {
    environment: String,
    interactive: bool,
}

impl Observer for TermObserver {
    fn unit(&self, stack: &str, state: UnitState, message: Option<&str>) {
        let note = message.map(|m| format!(": {m}")).unwrap_or_default();
        eprintln!("{}/{stack}: {}{note}", self.environment, state.as_str());
        tracing::info!(environment = %self.environment, stack, state = state.as_str(), "stack");
    }

    fn event(&self, stack: &str, e: &StackEvent) {
        let reason = e
            .reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default();
        eprintln!(
            "{}/{stack}:   {} {} {}{reason}",
            self.environment, e.logical_id, e.resource_type, e.status
        );
    }

    fn replanned(&self, plan: &UnitPlan) {
        eprintln!(
            "{}/{}: fresh change set: {:?}{}",
            self.environment,
            plan.stack,
            plan.action,
            plan.change_set
                .as_ref()
                .map(|c| format!(" ({})", c.name))
                .unwrap_or_default()
        );
    }

    fn confirm(&self, question: &str) -> bool {
        if !self.interactive {
            eprintln!("{question} (not a terminal: not confirmed)");
            return false;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    }
}

/// How an apply ended, for the report.
enum Ended {
    Applied(Box<formwork::apply::Report>),
    /// Refused, locked, or it could not start: why, and config diagnostics when they were it.
    Stopped {
        message: String,
        diagnostics: Option<String>,
    },
}

pub fn run(cli: &crate::Cli, args: &ApplyArgs, c: Color) -> Result<u8> {
    if args.github || args.github_pr.is_some() {
        return run_github(cli, args);
    }
    let repo = cli.repo.as_path();
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    let runtime = runtime()?;
    let masker = secrets::global();
    let store = Arc::new(runtime.block_on(formwork::store::open(&cli.store, &cli.data_dir()))?);
    let ended = match select_plan(&runtime, &r, &prefix, &store, args, c) {
        Err(e) => stopped(e, c, &masker),
        Ok(plan) => match desired_at(&r, &prefix, &args.head, &args.env) {
            Err(e) => stopped(anyhow::Error::new(e), c, &masker),
            Ok((desired, commit)) => execute(&runtime, store.clone(), args, plan, desired, commit),
        },
    };
    finish(args, ended)
}

fn finish(args: &ApplyArgs, ended: Ended) -> Result<u8> {
    match ended {
        Ended::Applied(report) => {
            match args.output {
                Output::Json => print_json(&serde_json::to_value(&*report)?)?,
                Output::Text => emit(&apply_text::apply_text(&report))?,
            }
            Ok(if report.succeeded() {
                0
            } else if report.waiting() {
                3
            } else {
                1
            })
        }
        Ended::Stopped {
            message,
            diagnostics,
        } => {
            if let Some(d) = diagnostics {
                eprint!("{d}");
            }
            eprintln!("error: {message}");
            Ok(1)
        }
    }
}

/// `apply --github` / `--github-pr N`: the reviewed plan of the pull request, applied and
/// reported on GitHub.
fn run_github(cli: &crate::Cli, args: &ApplyArgs) -> Result<u8> {
    if args.plan.is_some() || args.base.is_some() {
        bail!(
            "with --github, apply takes the plan reviewed on the pull request; --plan and --base are for runs without GitHub"
        );
    }
    let runtime = runtime()?;
    let done = runtime.block_on(async {
        let cx = args.github_args.context(cli, args.max_in_flight).await?;
        let target = match args.github_pr {
            Some(n) => flow::ApplyTarget::OpenPullRequest(n),
            None => flow::ApplyTarget::Commit(args.head.clone()),
        };
        anyhow::Ok(
            flow::apply_environment(
                &cx,
                &args.env,
                &target,
                &options(args),
                observer(args),
                false,
            )
            .await?,
        )
    })?;
    match (done.pull_request, args.github_pr) {
        (Some(n), Some(_)) => eprintln!(
            "pull request #{n}, at its head {}, before merging",
            &done.commit[..12]
        ),
        (Some(n), None) => eprintln!("commit {} came from pull request #{n}", &done.commit[..12]),
        (None, _) => eprintln!(
            "commit {} came from no merged pull request",
            &done.commit[..12]
        ),
    }
    let ended = match done.applied {
        flow::Applied::Done(r) => Ended::Applied(r),
        flow::Applied::Stopped {
            message,
            diagnostics,
        } => Ended::Stopped {
            message,
            diagnostics,
        },
    };
    finish(args, ended)
}

fn options(args: &ApplyArgs) -> Options {
    Options {
        allow_delete: args.allow_delete,
        replan: args.replan,
        assume_yes: args.yes,
        stack_timeout: Duration::from_secs(args.timeout),
        parallel: args.parallel,
        ..Options::default()
    }
}

fn observer(args: &ApplyArgs) -> Arc<TermObserver> {
    Arc::new(TermObserver {
        environment: args.env.clone(),
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    })
}

fn stopped(e: anyhow::Error, c: Color, masker: &secrets::Masker) -> Ended {
    let w = e.downcast_ref::<WorkflowError>();
    if let Some(text) = w.and_then(|w| w.rendered_diagnostics(c)) {
        eprint!("{text}");
    }
    Ended::Stopped {
        message: masker.scrub(&format!("{e:#}")),
        diagnostics: w
            .and_then(|w| w.rendered_diagnostics(Color::Never))
            .map(|d| masker.scrub(&d)),
    }
}

/// The plan to apply: the one named, a fresh one (--base), the reviewed plan of the pull
/// request's head, or the environment's newest.
fn select_plan(
    runtime: &tokio::runtime::Runtime,
    r: &git2::Repository,
    prefix: &str,
    store: &Arc<formwork::store::AnyStore>,
    args: &ApplyArgs,
    c: Color,
) -> Result<Plan> {
    let plan = if let Some(base) = &args.base {
        let cache: &'static ParseCache = Box::leak(Box::default());
        let plan = live_plan(
            runtime,
            r,
            prefix,
            Selection::new(std::slice::from_ref(&args.env), Some(base), &args.head),
            args.head.clone(),
            args.max_in_flight,
            cache,
            c,
        )?;
        runtime.block_on(store.save_plan(&plan))?;
        eprintln!("plan {} made and recorded", plan.id);
        plan
    } else {
        let found = runtime.block_on(async {
            match &args.plan {
                Some(id) => store.plan(id).await,
                None => store.latest_plan(&args.env).await,
            }
        })?;
        match (found, &args.plan) {
            (Some(p), _) => p,
            (None, Some(id)) => bail!("no plan {id} is recorded in the state store"),
            (None, None) => bail!(
                "no plan of environment `{}` is recorded; run `formwork plan --env {}` first, or pass --base",
                args.env,
                args.env
            ),
        }
    };
    if !plan.environments.iter().any(|e| e.name == args.env) {
        bail!("plan {} does not cover environment `{}`", plan.id, args.env);
    }
    if plan.offline {
        bail!(
            "plan {} was made offline and has no change sets to apply",
            plan.id
        );
    }
    Ok(plan)
}

fn execute(
    runtime: &tokio::runtime::Runtime,
    store: Arc<formwork::store::AnyStore>,
    args: &ApplyArgs,
    plan: Plan,
    desired: formwork::desired::DesiredEnvironment,
    commit: String,
) -> Ended {
    let options = options(args);
    let observer = observer(args);
    let masker = secrets::global();
    let result = runtime.block_on(async {
        let aws = Aws::load(args.max_in_flight).await;
        apply::apply(
            &aws,
            store,
            Request {
                plan,
                environment: args.env.clone(),
                desired,
                commit,
            },
            &options,
            observer,
            masker.clone(),
        )
        .await
    });
    match result {
        Ok(r) => Ended::Applied(Box::new(r)),
        Err(ApplyError::Refused { plan, reasons }) => {
            let mut message = format!("refusing to apply plan {plan}:");
            for r in reasons {
                message.push_str(&format!("\n  - {}", masker.scrub(&r)));
            }
            message.push_str(&format!(
                "\nplan again (`formwork plan --env {}`), or pass --replan to make fresh change sets for the stacks that changed",
                args.env
            ));
            Ended::Stopped {
                message,
                diagnostics: None,
            }
        }
        Err(e) => Ended::Stopped {
            message: masker.scrub(&e.to_string()),
            diagnostics: None,
        },
    }
}
