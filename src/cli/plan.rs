//! `formwork plan`: change sets for the stacks to deploy, rendered and recorded.

use std::io::IsTerminal;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use formwork::affected::{Change, compare};
use formwork::aws::{Aws, DEFAULT_MAX_IN_FLIGHT};
use formwork::config::{ParseCache, validate_repository};
use formwork::diag::Color;
use formwork::git::{self, Revision};
use formwork::plan::live::{self, EnvRequest, Options, Progress, Quiet, RemovedUnit};
use formwork::plan::model::{Action, Plan, RevisionInfo};
use formwork::plan::offline;
use formwork::plan::secrets;
use formwork::render::{plan_markdown, plan_text};
use formwork::store::Store;

use super::{emit, print_diags};
use crate::PlanOutput;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Plan only this environment (repeat for several). Default: every environment (with
    /// --base: every affected one).
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    envs: Vec<String>,
    /// Plan only the stacks that the change from this revision to --head affects.
    #[arg(long)]
    base: Option<String>,
    /// The revision to plan.
    #[arg(long, default_value = "HEAD")]
    head: String,
    #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
    output: PlanOutput,
    /// Plan without AWS, by comparing --base and --head.
    #[arg(long)]
    offline: bool,
    /// Where the plan comes from (a branch or pull request); older change sets of the same
    /// origin are cleaned up. Default: the --head revision's name.
    #[arg(long)]
    origin: Option<String>,
    /// AWS calls in flight at once per account and region.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, env = "FORMWORK_MAX_IN_FLIGHT")]
    max_in_flight: usize,
    /// Do not record the plan in the state store.
    #[arg(long)]
    no_record: bool,
    /// Print the AWS API calls made, by operation, as JSON on standard error at the end.
    #[arg(long, hide = true)]
    report_calls: bool,
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
    let repo = cli.repo.as_path();
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    let cache: &'static ParseCache = Box::leak(Box::default());

    let plan = if args.offline {
        let Some(base) = &args.base else {
            bail!("--offline compares two revisions: give --base (and --head)");
        };
        let cmp = compare(&r, &prefix, base, &args.head, cache)?;
        if cmp.report.diags.has_errors() {
            print_diags(&cmp.report.diags, &cmp.report.texts, c);
            bail!("the config at {} has errors; fix them first", args.head);
        }
        check_envs(&args.envs, cmp.after.keys().chain(cmp.before.keys()))?;
        offline::plan_offline(&cmp, &args.envs, 3)
    } else {
        let runtime = runtime()?;
        let (plan, calls) = live_plan(
            &runtime,
            &r,
            &prefix,
            Selection {
                envs: &args.envs,
                base: args.base.as_deref(),
                head: &args.head,
            },
            args.origin.clone().unwrap_or_else(|| args.head.clone()),
            args.max_in_flight,
            cache,
            c,
        )?;
        if args.report_calls {
            eprintln!("{}", serde_json::to_string(&calls)?);
        }
        if !args.no_record {
            runtime.block_on(async {
                let store = formwork::store::open(&cli.store, &cli.data_dir()).await?;
                store.save_plan(&plan).await?;
                anyhow::Ok(())
            })?;
            eprintln!("plan {} recorded", plan.id);
        }
        plan
    };

    let text = match args.output {
        PlanOutput::Text => plan_text::plan_text(&plan, c == Color::Always),
        PlanOutput::Markdown => plan_markdown::plan_markdown(&plan),
        PlanOutput::Json => {
            let mut s = serde_json::to_string_pretty(&plan)?;
            s.push('\n');
            s
        }
    };
    emit(&text)?;
    Ok(exit_code(&plan))
}

/// The async runtime of a command that talks to AWS.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Which environments and revisions to plan.
pub struct Selection<'a> {
    pub envs: &'a [String],
    pub base: Option<&'a str>,
    pub head: &'a str,
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
    max_in_flight: usize,
    cache: &ParseCache,
    c: Color,
) -> Result<(Plan, std::collections::BTreeMap<String, usize>)> {
    let (requests, head, base) = requests(r, prefix, &sel, cache, c)?;
    let masker = secrets::global();
    let progress: Arc<dyn Progress> = if std::io::stderr().is_terminal() {
        Arc::new(TermProgress {
            state: Mutex::new((0, 0)),
        })
    } else {
        Arc::new(Quiet)
    };
    let (plan, calls) = runtime.block_on(async {
        let aws = Aws::load(max_in_flight).await;
        let options = Options {
            origin,
            ..Options::default()
        };
        let plan = live::plan(
            &aws,
            masker.clone(),
            requests,
            head,
            base,
            &options,
            progress,
        )
        .await;
        (plan, aws.calls().snapshot())
    });
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
    tracing::info!(?calls, "AWS API calls");
    let plan = plan.map_err(|e| anyhow::anyhow!(masker.scrub(&e.to_string())))?;
    Ok((plan, calls))
}

/// 1 when a stack could not be planned, 2 when there are changes, else 0.
fn exit_code(plan: &Plan) -> u8 {
    if plan.has_errors() {
        1
    } else if plan.has_changes() {
        2
    } else {
        0
    }
}

fn check_envs<'a>(wanted: &[String], known: impl Iterator<Item = &'a String>) -> Result<()> {
    let known: Vec<&String> = known.collect();
    for w in wanted {
        if !known.contains(&w) {
            let near = formwork::suggest::nearest(w, known.iter().map(|s| s.as_str()))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            bail!("environment `{w}` is not among those to plan{near}");
        }
    }
    Ok(())
}

type Requests = (Vec<EnvRequest>, RevisionInfo, Option<RevisionInfo>);

/// What to plan: the affected stacks of a change (with --base), or every stack of the chosen
/// environments at --head.
fn requests(
    r: &git2::Repository,
    prefix: &str,
    args: &Selection<'_>,
    cache: &ParseCache,
    c: Color,
) -> Result<Requests> {
    if let Some(base) = args.base {
        let cmp = compare(r, prefix, base, args.head, cache)?;
        if cmp.report.diags.has_errors() {
            print_diags(&cmp.report.diags, &cmp.report.texts, c);
            bail!("the config at {} has errors; fix them first", args.head);
        }
        check_envs(args.envs, cmp.after.keys().chain(cmp.before.keys()))?;
        let mut out = Vec::new();
        for (name, desired) in &cmp.after {
            if !args.envs.is_empty() && !args.envs.contains(name) {
                continue;
            }
            let rows = cmp.report.units.iter().filter(|u| &u.environment == name);
            let mut units = Vec::new();
            let mut removed = Vec::new();
            for row in rows {
                if row.change == Change::Removed {
                    let depends_on = cmp
                        .before
                        .get(name)
                        .and_then(|b| b.units.get(&row.stack))
                        .map(live::dependency_names)
                        .unwrap_or_default();
                    removed.push(RemovedUnit {
                        stack: row.stack.clone(),
                        stack_name: row.stack_name.clone(),
                        reasons: row.reasons.clone(),
                        depends_on,
                    });
                } else {
                    units.push((row.stack.clone(), row.reasons.clone()));
                }
            }
            if units.is_empty() && removed.is_empty() {
                continue;
            }
            out.push(EnvRequest {
                desired: desired.clone(),
                units,
                removed,
            });
        }
        return Ok((out, cmp.report.head.clone(), Some(cmp.report.base.clone())));
    }
    let head = Revision::resolve(r, args.head)?;
    let src = head.source(r, prefix)?;
    let v = validate_repository(&src)?;
    if v.diags.has_errors() {
        print_diags(&v.diags, &v.texts, c);
        bail!("the config at {} has errors; fix them first", args.head);
    }
    check_envs(args.envs, v.environments.iter().map(|e| &e.name))?;
    let out = v
        .environments
        .into_iter()
        .filter(|e| args.envs.is_empty() || args.envs.contains(&e.name))
        .map(|desired| EnvRequest {
            units: desired
                .units
                .keys()
                .map(|k| (k.clone(), Vec::new()))
                .collect(),
            desired,
            removed: Vec::new(),
        })
        .collect();
    Ok((
        out,
        RevisionInfo {
            rev: head.name.clone(),
            commit: head.id(),
        },
        None,
    ))
}
