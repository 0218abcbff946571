//! `formwork apply`: execute a reviewed plan's change sets in one environment.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures::future::BoxFuture;

use formwork::apply::service::{self, Applied, PlanChoice, ReportError, Reporter, Services};
use formwork::apply::{Observer, Options};
use formwork::aws::cfn::StackEvent;
use formwork::aws::{Aws, DEFAULT_MAX_IN_FLIGHT};
use formwork::config::ParseCache;
use formwork::diag::Color;
use formwork::plan::model::UnitPlan;
use formwork::render::apply_text;
use formwork::secrets;
use formwork::store::{AnyStore, Store, UnitState};
use formwork::workflow::{ConfigRepo, Selection, WorkflowError};

use super::github::GitHubArgs;
use super::plan::{live_plan, runtime};
use super::{emit, print_json};
use crate::Output;

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The environment to apply.
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    pub env: String,
    /// The reviewed plan to apply. Default: the newest recorded plan of the environment.
    #[arg(long, conflicts_with = "base")]
    pub plan: Option<String>,
    /// Plan the change from this revision to --head, and apply it at once.
    #[arg(long)]
    pub base: Option<String>,
    /// The revision whose config the plan must match (and which is recorded as deployed).
    #[arg(long, default_value = "HEAD")]
    pub head: String,
    /// Delete the stacks that left the config.
    #[arg(long)]
    pub allow_delete: bool,
    /// Make a fresh change set for a stack whose reviewed one no longer matches, instead of
    /// refusing (destruction the reviewed plan did not show still needs confirmation).
    #[arg(long)]
    pub replan: bool,
    /// Confirm, without asking, fresh change sets that replace or remove what the reviewed plan
    /// did not show.
    #[arg(long)]
    pub yes: bool,
    /// How long to wait for one stack operation, in seconds (stacks may set their own
    /// `timeout_minutes`).
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Stack operations at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// AWS calls in flight at once per account and region.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, env = "FORMWORK_MAX_IN_FLIGHT")]
    pub max_in_flight: usize,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Report on GitHub: the results on the merged pull request that brought --head (or on the
    /// commit), and a `formwork/apply` status or check run on it. Without --plan, applies the
    /// plan recorded for that pull request's head.
    #[arg(long)]
    pub github: bool,
    /// Apply this open pull request's reviewed plan before it is merged (its head; the plan
    /// recorded for it), and report on it.
    #[arg(long, value_name = "NUMBER", conflicts_with_all = ["github", "base", "head"])]
    pub github_pr: Option<u64>,
    #[command(flatten, next_help_heading = "GitHub")]
    pub github_args: GitHubArgs,
}

/// Progress on standard error: a line per stack state and per resource event.
pub struct TermObserver {
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

    fn hook_output(&self, stack: &str, line: &str) {
        eprintln!("{}/{stack}: | {line}", self.environment);
        tracing::info!(environment = %self.environment, stack, "hook: {line}");
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

pub fn run(cli: &crate::Cli, args: &ApplyArgs, c: Color) -> Result<u8> {
    if args.github || args.github_pr.is_some() {
        return super::github::apply(cli, args);
    }
    let runtime = runtime()?;
    let repo = ConfigRepo::discover(&cli.repo)?;
    let store = Arc::new(runtime.block_on(formwork::store::open(&cli.store, &cli.data_dir()))?);
    let choice = match select_plan(&runtime, store.as_ref(), &repo, args, c) {
        Ok(choice) => choice,
        Err(e) => return Ok(stopped(&e, c)),
    };
    let applied = runtime.block_on(async {
        let svc = Services {
            repo,
            store,
            aws: Arc::new(Aws::load(args.max_in_flight).await),
            masker: secrets::global(),
            notifier: formwork::notify::Notifier::default(),
        };
        let reporter = Arc::new(TermReporter {
            observer: observer(args),
            output: args.output,
        });
        anyhow::Ok(
            service::apply_commit(
                &svc,
                &args.env,
                &args.head,
                choice,
                &options(args),
                reporter,
            )
            .await?,
        )
    })?;
    Ok(exit_code(&applied))
}

/// 0 applied, 3 waiting at a gate, 1 anything else.
pub fn exit_code(applied: &Applied) -> u8 {
    match applied {
        Applied::Done(r) if r.succeeded() => 0,
        Applied::Done(r) if r.waiting() => 3,
        _ => 1,
    }
}

/// The terminal as the apply's reporter: progress on standard error as it runs, the report on
/// standard output (text or JSON) when it ends, and why when it could not.
pub struct TermReporter {
    pub observer: Arc<TermObserver>,
    pub output: Output,
}

impl Observer for TermReporter {
    fn unit(&self, stack: &str, state: UnitState, message: Option<&str>) {
        self.observer.unit(stack, state, message)
    }
    fn hook_output(&self, stack: &str, line: &str) {
        self.observer.hook_output(stack, line)
    }
    fn event(&self, stack: &str, e: &StackEvent) {
        self.observer.event(stack, e)
    }
    fn replanned(&self, plan: &UnitPlan) {
        self.observer.replanned(plan)
    }
    fn confirm(&self, question: &str) -> bool {
        self.observer.confirm(question)
    }
}

impl Reporter for TermReporter {
    fn started<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), ReportError>> {
        Box::pin(async { Ok(()) })
    }

    fn finished<'a>(
        &'a self,
        _environment: &'a str,
        _commit: &'a str,
        applied: &'a Applied,
    ) -> BoxFuture<'a, Result<(), ReportError>> {
        Box::pin(async move {
            let shown = match applied {
                Applied::Done(report) => match self.output {
                    Output::Json => serde_json::to_value(&**report)
                        .map_err(anyhow::Error::from)
                        .and_then(|v| print_json(&v)),
                    Output::Text => emit(&apply_text::apply_text(report)),
                },
                Applied::Stopped {
                    message,
                    diagnostics,
                } => {
                    let masker = secrets::global();
                    if let Some(d) = diagnostics {
                        eprint!("{}", masker.scrub(d));
                    }
                    eprintln!("error: {}", masker.scrub(message));
                    Ok(())
                }
            };
            shown.map_err(|e| ReportError(e.to_string()))
        })
    }
}

pub fn options(args: &ApplyArgs) -> Options {
    Options {
        allow_delete: args.allow_delete,
        replan: args.replan,
        assume_yes: args.yes,
        stack_timeout: Duration::from_secs(args.timeout),
        parallel: args.parallel,
        ..Options::default()
    }
}

pub fn observer(args: &ApplyArgs) -> Arc<TermObserver> {
    Arc::new(TermObserver {
        environment: args.env.clone(),
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    })
}

/// A plan that could not be made or found: why (with config diagnostics), exit code 1.
fn stopped(e: &anyhow::Error, c: Color) -> u8 {
    let masker = secrets::global();
    if let Some(text) = e
        .downcast_ref::<WorkflowError>()
        .and_then(|w| w.rendered_diagnostics(c))
    {
        eprint!("{}", masker.scrub(&text));
    }
    eprintln!("error: {}", masker.scrub(&format!("{e:#}")));
    1
}

/// The plan to apply: the one named, a fresh one (--base, made and recorded now), or the
/// environment's newest.
fn select_plan(
    runtime: &tokio::runtime::Runtime,
    store: &AnyStore,
    repo: &ConfigRepo,
    args: &ApplyArgs,
    c: Color,
) -> Result<PlanChoice> {
    if let Some(id) = &args.plan {
        return Ok(PlanChoice::Named(id.clone()));
    }
    let Some(base) = &args.base else {
        return Ok(PlanChoice::Newest);
    };
    let cache = ParseCache::default();
    let plan = repo
        .with(|r, prefix| {
            Ok(live_plan(
                runtime,
                r,
                prefix,
                Selection::new(std::slice::from_ref(&args.env), Some(base), &args.head),
                args.head.clone(),
                (args.max_in_flight, Some(store)),
                &cache,
                c,
            ))
        })
        .map_err(anyhow::Error::new)??;
    runtime.block_on(store.save_plan(&plan))?;
    eprintln!("plan {} made and recorded", plan.id);
    Ok(PlanChoice::Given(Box::new(plan)))
}
