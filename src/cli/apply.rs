//! `formwork apply`: execute a reviewed plan's change sets in one environment.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use formwork::apply::{self, ApplyError, Observer, Options, Request};
use formwork::aws::cfn::StackEvent;
use formwork::aws::{Aws, DEFAULT_MAX_IN_FLIGHT};
use formwork::config::{Loader, ParseCache, check_pipeline, resolve_environment};
use formwork::desired::DesiredEnvironment;
use formwork::diag::Color;
use formwork::git::{self, Revision};
use formwork::plan::model::UnitPlan;
use formwork::plan::secrets;
use formwork::render::apply_text;
use formwork::store::{Store, UnitState};

use super::plan::{Selection, live_plan, runtime};
use super::{emit, print_diags, print_json};
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

/// The desired state of one environment at a revision, checked.
pub fn desired_at(
    r: &git2::Repository,
    prefix: &str,
    rev: &str,
    env: &str,
    c: Color,
) -> Result<(DesiredEnvironment, String)> {
    let revision = Revision::resolve(r, rev)?;
    let src = revision.source(r, prefix)?;
    let cache = ParseCache::default();
    let mut loader = Loader::new(&src, &cache);
    let pipelines = loader.pipeline_names()?;
    let Some(e) = loader.environment(env)? else {
        print_diags(&loader.diags, &loader.texts, c);
        bail!("there is no environment `{env}` at {rev}");
    };
    let p = loader.pipeline(&e.def.pipeline)?;
    let mut diags = std::mem::take(&mut loader.diags);
    if let Some(p) = &p {
        diags.extend(check_pipeline(p));
    }
    let (desired, d) = resolve_environment(&e, p.as_deref(), &pipelines);
    diags.extend(d);
    if diags.has_errors() {
        print_diags(&diags, &loader.texts, c);
        bail!("the config of environment `{env}` at {rev} has errors; fix them first");
    }
    let desired = desired.context("the environment could not be resolved")?;
    Ok((desired, revision.id()))
}

pub fn run(cli: &crate::Cli, args: &ApplyArgs, c: Color) -> Result<u8> {
    let repo = cli.repo.as_path();
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    let runtime = runtime()?;
    let store = Arc::new(runtime.block_on(formwork::store::open(&cli.store, &cli.data_dir()))?);

    let plan = if let Some(base) = &args.base {
        let cache: &'static ParseCache = Box::leak(Box::default());
        let (plan, _) = live_plan(
            &runtime,
            &r,
            &prefix,
            Selection {
                envs: std::slice::from_ref(&args.env),
                base: Some(base),
                head: &args.head,
            },
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
    let (desired, commit) = desired_at(&r, &prefix, &args.head, &args.env, c)?;

    let options = Options {
        allow_delete: args.allow_delete,
        replan: args.replan,
        assume_yes: args.yes,
        stack_timeout: Duration::from_secs(args.timeout),
        parallel: args.parallel,
        ..Options::default()
    };
    let observer = Arc::new(TermObserver {
        environment: args.env.clone(),
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    });
    let masker = secrets::global();
    let result = runtime.block_on(async {
        let aws = Aws::load(args.max_in_flight).await;
        apply::apply(
            &aws,
            store.clone(),
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
    let report = match result {
        Ok(r) => r,
        Err(ApplyError::Refused { plan, reasons }) => {
            eprintln!("error: refusing to apply plan {plan}:");
            for r in reasons {
                eprintln!("  - {}", masker.scrub(&r));
            }
            eprintln!(
                "plan again (`formwork plan --env {}`), or pass --replan to make fresh change sets for the stacks that changed",
                args.env
            );
            return Ok(1);
        }
        Err(e) => bail!("{}", masker.scrub(&e.to_string())),
    };
    match args.output {
        Output::Json => print_json(&serde_json::to_value(&report)?)?,
        Output::Text => emit(&apply_text::apply_text(&report))?,
    }
    Ok(if report.succeeded() { 0 } else { 1 })
}
