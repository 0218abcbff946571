//! `formwork plan`: change sets for the stacks to deploy, rendered and recorded.

use std::io::IsTerminal;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use formwork::aws::{Aws, DEFAULT_MAX_IN_FLIGHT};
use formwork::config::ParseCache;
use formwork::diag::Color;
use formwork::git;
use formwork::github::flow;
use formwork::plan::live::{Progress, Quiet};
use formwork::plan::model::{Action, Plan};
use formwork::render::{plan_markdown, plan_text};
use formwork::secrets;
use formwork::store::{AnyStore, Store};
use formwork::workflow::{
    PlanRequests, Selection, WorkflowError, offline_plan_keeping, plan_requests,
};

use super::emit;
use super::github::GitHubArgs;
use crate::PlanOutput;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Plan only this environment (repeat for several). Default: every environment (with
    /// --base: every affected one).
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    envs: Vec<String>,
    /// Plan only this stack (by its key in the pipeline; repeat for several). Default: every
    /// stack (with --base: every affected one).
    #[arg(long = "stack", short = 's', value_name = "KEY")]
    stacks: Vec<String>,
    /// Plan only the stacks that the change from this revision to --head affects.
    #[arg(long)]
    base: Option<String>,
    /// The revision to plan.
    #[arg(long, default_value = "HEAD")]
    head: String,
    #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
    output: PlanOutput,
    /// Plan without AWS, by comparing --base with --head (without --base: with nothing, so every
    /// stack is to be created).
    #[arg(long)]
    offline: bool,
    /// Where the plan comes from (a branch or pull request); older change sets of the same
    /// origin are cleaned up. Default: the --head revision's name.
    #[arg(long)]
    origin: Option<String>,
    /// AWS calls in flight at once per account and region.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, env = "FORMWORK_MAX_IN_FLIGHT")]
    max_in_flight: usize,
    /// Do not record the plan in the state store (what it found of unchanged stacks is still
    /// recorded, for later plans).
    #[arg(long)]
    no_record: bool,
    /// Give every stack a change set: judge none unchanged by what formwork last saw of it or
    /// by reading its template.
    #[arg(long)]
    refresh: bool,
    /// Print the AWS API calls made, by operation, as JSON on standard error at the end.
    #[arg(long, hide = true)]
    report_calls: bool,
    /// Plan this pull request (its head against where it branched off, unless --base says
    /// otherwise), post the plan as its comment and mark its head commit.
    #[arg(long, value_name = "NUMBER", conflicts_with = "head")]
    github_pr: Option<u64>,
    #[command(flatten, next_help_heading = "GitHub")]
    github: GitHubArgs,
}

/// A one-line progress display on standard error, when it is a terminal.
struct TermProgress {
    state: Mutex<(usize, usize)>,
}

impl Progress for TermProgress {
    fn started(&self, environment: &str, stack: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        eprint!(
            "\r\x1b[2Kplanning {environment}/{stack} ({} started, {} done)",
            s.0, s.1
        );
    }

    fn finished(&self, environment: &str, stack: &str, action: Action) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 += 1;
        eprint!(
            "\r\x1b[2K{environment}/{stack}: {action:?} ({} of {} done)",
            s.1, s.0
        );
    }
}

pub fn run(cli: &crate::Cli, args: &PlanArgs, c: Color) -> Result<u8> {
    if let Some(pr) = args.github_pr {
        return run_for_pull_request(cli, args, pr, c);
    }
    let repo = cli.repo.as_path();
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    let cache: &'static ParseCache = Box::leak(Box::default());
    let sel = Selection {
        stacks: &args.stacks,
        ..Selection::new(&args.envs, args.base.as_deref(), &args.head)
    };
    let plan = if args.offline {
        // Policy results kept in a local store (never a remote one: an offline plan calls
        // nothing), so that an unchanged stack is not evaluated again.
        let kept = cli.store.starts_with("sqlite").then(|| StoreKeep {
            cli,
            opened: std::sync::OnceLock::new(),
        });
        offline_plan_keeping(
            &r,
            &prefix,
            sel,
            cache,
            3,
            kept.as_ref().map(|k| k as &dyn formwork::policy::Keep),
        )
        .map_err(|e| config_error(e, c))?
    } else {
        let runtime = runtime()?;
        let mut requests =
            plan_requests(&r, &prefix, sel, cache).map_err(|e| config_error(e, c))?;
        requests.refresh = args.refresh;
        let origin = args.origin.clone().unwrap_or_else(|| args.head.clone());
        let store = open_store(&runtime, cli);
        let plan = plan_live(
            &runtime,
            requests,
            origin,
            (args.max_in_flight, store.as_ref()),
            args.report_calls,
        )?;
        if !args.no_record {
            record(&runtime, cli, store.as_ref(), &plan)?;
        }
        plan
    };
    emit(&render(&plan, args.output, c)?)?;
    Ok(exit_code(&plan))
}

fn render(plan: &Plan, output: PlanOutput, c: Color) -> Result<String> {
    Ok(match output {
        PlanOutput::Text => plan_text::plan_text(plan, c == Color::Always),
        PlanOutput::Markdown => plan_markdown::plan_markdown(plan),
        PlanOutput::Json => {
            let mut s = serde_json::to_string_pretty(plan)?;
            s.push('\n');
            s
        }
    })
}

fn record(
    runtime: &tokio::runtime::Runtime,
    cli: &crate::Cli,
    store: Option<&AnyStore>,
    plan: &Plan,
) -> Result<()> {
    runtime.block_on(async {
        match store {
            Some(store) => store.save_plan(plan).await?,
            None => {
                let store = formwork::store::open(&cli.store, &cli.data_dir()).await?;
                store.save_plan(plan).await?
            }
        }
        anyhow::Ok(())
    })?;
    eprintln!("plan {} recorded", plan.id);
    Ok(())
}

/// `plan --github-pr N`: plans the pull request's head against where it branched off, posts
/// the plan as the pull request's sticky comment and marks the head commit.
fn run_for_pull_request(cli: &crate::Cli, args: &PlanArgs, pr: u64, c: Color) -> Result<u8> {
    let runtime = runtime()?;
    let done = runtime.block_on(async {
        let cx = args.github.context(cli, args.max_in_flight).await?;
        let sel = flow::PlanSelection {
            environments: args.envs.clone(),
            stacks: args.stacks.clone(),
            base: args.base.clone(),
            offline: args.offline,
            no_record: args.no_record,
            ..Default::default()
        };
        anyhow::Ok(flow::plan_pull_request(&cx, pr, &sel, progress()).await?)
    })?;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
    let posted = &done.reported;
    let c2 = &posted.comments;
    eprintln!(
        "pull request #{pr}: plan comment {} ({} created, {} updated, {} unchanged, {} removed)",
        c2.comments
            .iter()
            .map(|(id, url)| url.clone().unwrap_or_else(|| format!("#{id}")))
            .collect::<Vec<_>>()
            .join(", "),
        c2.created,
        c2.updated,
        c2.unchanged,
        c2.deleted
    );
    if posted.truncated {
        eprintln!("the plan did not fit in the comments; the whole of it follows\n");
        eprintln!("{}", posted.markdown);
    }
    match done.plan {
        Ok(plan) => {
            if !plan.offline && !args.no_record {
                eprintln!("plan {} recorded", plan.id);
            }
            emit(&render(&plan, args.output, c)?)?;
            Ok(exit_code(&plan))
        }
        Err((message, diagnostics)) => {
            if let Some(d) = diagnostics {
                eprint!("{d}");
            }
            bail!("{message}")
        }
    }
}

/// The progress display: a line on standard error when it is a terminal.
fn progress() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(TermProgress {
            state: Mutex::new((0, 0)),
        })
    } else {
        Arc::new(Quiet)
    }
}

/// The async runtime of a command that talks to AWS.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Plans against AWS: the affected stacks of a change (with a base), or every stack of the
/// chosen environments. Returns the plan and the AWS calls made.
#[allow(clippy::too_many_arguments)]
pub fn live_plan(
    runtime: &tokio::runtime::Runtime,
    r: &git2::Repository,
    prefix: &str,
    sel: Selection<'_>,
    origin: String,
    aws: (usize, Option<&AnyStore>),
    cache: &ParseCache,
    c: Color,
) -> Result<Plan> {
    let requests = plan_requests(r, prefix, sel, cache).map_err(|e| config_error(e, c))?;
    plan_live(runtime, requests, origin, aws, false)
}

/// Policy results recalled from and kept in the state store, for an offline plan; the store is
/// opened when first needed (a plan without rules never opens it).
struct StoreKeep<'a> {
    cli: &'a crate::Cli,
    opened: std::sync::OnceLock<Option<(tokio::runtime::Runtime, AnyStore)>>,
}

impl StoreKeep<'_> {
    fn store(&self) -> Option<&(tokio::runtime::Runtime, AnyStore)> {
        self.opened
            .get_or_init(|| {
                // A local store's calls run on this thread: no worker threads to start.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                let store = open_store(&runtime, self.cli)?;
                Some((runtime, store))
            })
            .as_ref()
    }
}

impl formwork::policy::Keep for StoreKeep<'_> {
    fn recall(&self, keys: &[String]) -> Vec<(String, String)> {
        use formwork::store::Store;
        let Some((runtime, store)) = self.store() else {
            return Vec::new();
        };
        match runtime.block_on(store.policy_results(keys)) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the policy results kept; evaluating them");
                Vec::new()
            }
        }
    }

    fn keep(&self, results: &[(String, String)]) {
        use formwork::store::Store;
        if results.is_empty() {
            return;
        }
        let Some((runtime, store)) = self.store() else {
            return;
        };
        if let Err(e) = runtime.block_on(store.put_policy_results(results)) {
            tracing::warn!(error = %e, "could not keep the policy results");
        }
    }
}

/// The state store, for what was last seen of the stacks; `None` (with a warning) when it
/// cannot be opened, which only costs calls.
fn open_store(runtime: &tokio::runtime::Runtime, cli: &crate::Cli) -> Option<AnyStore> {
    match runtime.block_on(formwork::store::open(&cli.store, &cli.data_dir())) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "the state store cannot be opened: every stack is read to plan it");
            None
        }
    }
}

/// Makes the change sets of planned requests.
fn plan_live(
    runtime: &tokio::runtime::Runtime,
    requests: PlanRequests,
    origin: String,
    (max_in_flight, store): (usize, Option<&AnyStore>),
    report_calls: bool,
) -> Result<Plan> {
    let masker = secrets::global();
    let progress = progress();
    let (plan, calls) = runtime.block_on(async {
        let aws = Aws::load(max_in_flight).await;
        let plan = requests
            .plan(&aws, masker.clone(), origin, progress, store)
            .await;
        (plan, aws.calls().snapshot())
    });
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
    tracing::info!(?calls, "AWS API calls");
    if report_calls {
        eprintln!("{}", serde_json::to_string(&calls)?);
    }
    plan.map_err(|e| anyhow::anyhow!(masker.scrub(&e.to_string())))
}

/// 1 when a stack could not be planned or a blocking policy rule fails, 2 when there are
/// changes, else 0.
fn exit_code(plan: &Plan) -> u8 {
    if plan.fails_check() {
        1
    } else if plan.has_changes() {
        2
    } else {
        0
    }
}

/// A workflow error for the terminal: its diagnostics printed, the rest as the error.
pub fn config_error(e: WorkflowError, c: Color) -> anyhow::Error {
    if let Some(text) = e.rendered_diagnostics(c) {
        eprint!("{text}");
    }
    anyhow::Error::new(e)
}
