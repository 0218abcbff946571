//! `formwork drift`: drift detection for the deployed stacks of the environments, as text,
//! Markdown or JSON (docs/drift.md); environments where stacks drifted tell their
//! notification targets (docs/notifications.md).

use std::time::Duration;

use anyhow::{Context, Result};

use formwork::aws::{Aws, DEFAULT_MAX_IN_FLIGHT};
use formwork::diag::Color;
use formwork::drift::model::EnvironmentDrift;
use formwork::drift::{DriftOptions, DriftReport};
use formwork::git::{self, Revision};
use formwork::render::drift::{drift_markdown, drift_text};
use formwork::secrets;
use formwork::workflow::{check_names, checked_environments_at};

use super::emit;
use super::plan::{config_error, runtime};
use crate::PlanOutput;

#[derive(clap::Args)]
pub struct DriftArgs {
    /// Check only this environment (repeat for several). Default: every environment.
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    envs: Vec<String>,
    /// The revision whose config says which stacks there are.
    #[arg(long, default_value = "HEAD")]
    rev: String,
    #[arg(long, value_enum, default_value_t = PlanOutput::Text)]
    output: PlanOutput,
    /// Drift detections in flight at once per account and region (CloudFormation limits
    /// concurrent detections per account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Minutes to wait for all detections; a stack whose detection has not ended by then is
    /// reported as failed.
    #[arg(long, value_name = "MINUTES", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// AWS calls in flight at once per account and region.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, env = "FORMWORK_MAX_IN_FLIGHT")]
    max_in_flight: usize,
    /// The first wait before polling a detection, in milliseconds (it doubles, up to five
    /// times this); for tests.
    #[arg(long, hide = true, default_value_t = 2000)]
    poll_interval_ms: u64,
}

/// Exit code 0 when nothing drifted, 2 when something did, 1 when a stack or environment
/// could not be checked (the report is printed all the same).
pub fn run(cli: &crate::Cli, args: &DriftArgs, c: Color) -> Result<u8> {
    let repo = cli.repo.as_path();
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    let commit = Revision::resolve(&r, &args.rev)?.id();
    let checked = checked_environments_at(&r, &prefix, &commit).map_err(|e| config_error(e, c))?;
    let known = checked
        .resolved
        .iter()
        .map(|e| &e.name)
        .chain(checked.unresolved.iter().map(|(n, _)| n));
    check_names(&args.envs, known, |w, near| {
        format!("there is no environment `{w}` at {}{near}", args.rev)
    })?;
    let wanted = |name: &str| args.envs.is_empty() || args.envs.iter().any(|e| e == name);
    // An environment whose config has errors is reported as not checked; the others are.
    let unresolved: Vec<EnvironmentDrift> = checked
        .unresolved
        .iter()
        .filter(|(n, _)| wanted(n))
        .map(|(name, error)| {
            tracing::warn!(environment = %name, %error, "the environment does not resolve");
            EnvironmentDrift {
                name: name.clone(),
                error: Some(format!(
                    "its config does not resolve at {}: {error}",
                    args.rev
                )),
                ..EnvironmentDrift::default()
            }
        })
        .collect();
    let envs: Vec<_> = checked
        .resolved
        .into_iter()
        .filter(|e| wanted(&e.name))
        .collect();
    let opts = DriftOptions {
        concurrency: usize::from(args.concurrency),
        timeout: Duration::from_secs(args.timeout * 60),
        first_poll: Duration::from_millis(args.poll_interval_ms),
        max_poll: Duration::from_millis(args.poll_interval_ms * 5),
    };
    let masker = secrets::global();
    let (mut report, calls) = runtime()?.block_on(async {
        let aws = Aws::load(args.max_in_flight).await;
        let report = formwork::drift::detect(&aws, &envs, &commit, &masker, &opts).await;
        let notifier = formwork::notify::Notifier::default();
        formwork::notify::drift::send_drift(&notifier, &aws, &masker, &envs, &report).await;
        (report, aws.calls().snapshot())
    });
    tracing::info!(?calls, "AWS API calls");
    report.environments.extend(unresolved);
    report.environments.sort_by(|a, b| a.name.cmp(&b.name));
    let text = render(&report, args.output, c)?;
    emit(&masker.scrub(&text))?;
    Ok(report.exit_code())
}

fn render(report: &DriftReport, output: PlanOutput, c: Color) -> Result<String> {
    Ok(match output {
        PlanOutput::Text => drift_text(report, c == Color::Always),
        PlanOutput::Markdown => drift_markdown(report),
        PlanOutput::Json => {
            let v = secrets::global().scrub_json(&serde_json::to_value(report)?);
            let mut s = serde_json::to_string_pretty(&v).context("writing the report")?;
            s.push('\n');
            s
        }
    })
}
