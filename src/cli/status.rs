//! `formwork status` (what each environment runs, its lock, runs and audit trail),
//! `formwork unlock` and `formwork continue` (pass a gate).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use serde_json::json;

use formwork::store::{Store, format_millis, now};

use super::plan::runtime;
use super::{emit, print_json};
use crate::Output;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Only this environment. Default: every environment with a record.
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    env: Option<String>,
    /// Show a recorded plan instead.
    #[arg(long)]
    plan: Option<String>,
    /// How many recent runs to list.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// How many recent entries of the audit trail to list (forced unlocks, gates passed,
    /// policy overrides, refusals by apply requirements, drift checks).
    #[arg(long, default_value_t = 5)]
    events: usize,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(clap::Args)]
pub struct UnlockArgs {
    /// The environment whose lock to force open.
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    env: String,
    /// Why: recorded with the unlock.
    #[arg(long, default_value = "forced open with formwork unlock")]
    reason: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

#[derive(clap::Args)]
pub struct ContinueArgs {
    /// The gate that was waited for (its name in the pipeline's `gates:`).
    gate: String,
    /// The environment whose apply waits at the gate.
    #[arg(long = "env", short = 'e', value_name = "NAME")]
    env: String,
    /// The revision whose config names the gate.
    #[arg(long, default_value = "HEAD")]
    rev: String,
}

/// `formwork continue GATE --env E`: records that the manual step of a gate is done, so that
/// the next apply of the environment goes past it.
pub fn continue_gate(
    cli: &crate::Cli,
    args: &ContinueArgs,
    c: formwork::diag::Color,
) -> Result<u8> {
    let repo = cli.repo.as_path();
    let r = formwork::git::open(repo)?;
    let prefix = formwork::git::config_prefix(&r, repo);
    let (desired, _) = formwork::workflow::desired_at(&r, &prefix, &args.rev, &args.env)
        .map_err(|e| super::plan::config_error(e, c))?;
    if !desired.gates.iter().any(|g| g.name == args.gate) {
        let names: Vec<&str> = desired.gates.iter().map(|g| g.name.as_str()).collect();
        let near = formwork::suggest::nearest(&args.gate, names.iter().copied())
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        bail!(
            "environment `{}` has no gate `{}`{near}; its gates: {}",
            args.env,
            args.gate,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let runtime = runtime()?;
    let actor = formwork::lease::process_owner();
    runtime.block_on(async {
        let store = formwork::store::open(&cli.store, &cli.data_dir()).await?;
        store
            .record_event(&formwork::store::Event {
                environment: args.env.clone(),
                at: now(),
                kind: formwork::apply::GATE_EVENT.to_string(),
                actor: actor.clone(),
                detail: args.gate.clone(),
            })
            .await?;
        anyhow::Ok(())
    })?;
    emit(&format!(
        "gate `{}` of environment `{}` passed (recorded as done by {actor}); `formwork apply --env {}` goes on from it\n",
        args.gate, args.env, args.env
    ))?;
    Ok(0)
}

/// The environments with a record, or the one asked for.
async fn environments<S: Store>(store: &S, env: Option<&str>) -> Result<Vec<String>> {
    if let Some(e) = env {
        return Ok(vec![e.to_string()]);
    }
    let mut names: Vec<String> = store
        .runs(None, 1000)
        .await?
        .into_iter()
        .map(|r| r.environment)
        .chain(
            store
                .events(None, 1000)
                .await?
                .into_iter()
                .map(|e| e.environment),
        )
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

pub fn run(cli: &crate::Cli, args: &StatusArgs) -> Result<u8> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let store = formwork::store::open(&cli.store, &cli.data_dir()).await?;
        if let Some(id) = &args.plan {
            let Some(plan) = store.plan(id).await? else {
                bail!("no plan {id} is recorded in the state store");
            };
            match args.output {
                Output::Json => print_json(&serde_json::to_value(&plan)?)?,
                Output::Text => emit(&formwork::render::plan_text::plan_text(&plan, false))?,
            }
            return Ok(0);
        }
        let mut out = Vec::new();
        let mut text = String::new();
        let t = now();
        for env in environments(&store, args.env.as_deref()).await? {
            let deployed = store.deployed(&env).await?;
            let lock = store.lock(&env).await?;
            let unfinished = store.unfinished_runs(&env).await?;
            let runs = store.runs(Some(&env), args.runs).await?;
            text.push_str(&format!("{env}\n"));
            match &deployed {
                Some(d) => text.push_str(&format!(
                    "  deployed: {} (run {}, {})\n",
                    d.commit,
                    d.run_id,
                    format_millis(d.at)
                )),
                None => text.push_str("  deployed: nothing applied yet\n"),
            }
            // Stacks brought to another commit than the environment's: a partial deployment
            // (a plan of some stacks only, applied).
            let stacks = store.stacks_deployed(&env).await?;
            let elsewhere: Vec<&formwork::store::StackDeployed> = stacks
                .iter()
                .filter(|s| deployed.as_ref().is_none_or(|d| d.commit != s.commit))
                .collect();
            if !elsewhere.is_empty() {
                text.push_str(&format!(
                    "  partly deployed: {} of its {} recorded stacks are at another commit\n",
                    elsewhere.len(),
                    stacks.len()
                ));
                for s in &elsewhere {
                    text.push_str(&format!(
                        "    {} at {} (run {}, {})\n",
                        s.stack,
                        &s.commit[..s.commit.len().min(12)],
                        s.run_id,
                        format_millis(s.at)
                    ));
                }
            }
            match &lock {
                Some(l) if l.lease_expires_at > t => text.push_str(&format!(
                    "  locked by {} since {} ({}); lease until {}\n",
                    l.owner,
                    format_millis(l.acquired_at),
                    l.reason,
                    format_millis(l.lease_expires_at)
                )),
                Some(l) => text.push_str(&format!(
                    "  lock of {} has expired ({}); the next run takes it\n",
                    l.owner,
                    format_millis(l.lease_expires_at)
                )),
                None => text.push_str("  not locked\n"),
            }
            for r in &unfinished {
                text.push_str(&format!(
                    "  unfinished run {} by {} since {}: the next apply finishes it\n",
                    r.id,
                    r.owner,
                    format_millis(r.started_at)
                ));
            }
            for r in &runs {
                let units = store.run(&r.id).await?.map(|(_, u)| u).unwrap_or_default();
                let summary: Vec<String> = units
                    .iter()
                    .map(|u| format!("{} {}", u.stack, u.state.as_str()))
                    .collect();
                text.push_str(&format!(
                    "  run {} {} of {} at {}: {}\n",
                    r.id,
                    r.status.as_str(),
                    &r.commit[..r.commit.len().min(12)],
                    format_millis(r.started_at),
                    summary.join(", ")
                ));
            }
            let events = store.events(Some(&env), args.events).await?;
            for e in &events {
                text.push_str(&format!(
                    "  {} {} by {}: {}\n",
                    format_millis(e.at),
                    e.kind,
                    e.actor,
                    e.detail
                ));
            }
            out.push(json!({
                "environment": env,
                "deployed": deployed,
                "stacks": stacks,
                "lock": lock,
                "unfinished_runs": unfinished,
                "runs": runs,
                "events": events,
            }));
        }
        let masker = formwork::secrets::global();
        match args.output {
            Output::Json => {
                print_json(&masker.scrub_json(&json!({"version": 1, "environments": out})))?
            }
            Output::Text if text.is_empty() => emit("nothing recorded yet\n")?,
            Output::Text => emit(&masker.scrub(&text))?,
        }
        Ok(0)
    })
}

pub fn unlock(cli: &crate::Cli, args: &UnlockArgs) -> Result<u8> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let store = formwork::store::open(&cli.store, &cli.data_dir()).await?;
        let Some(lock) = store.lock(&args.env).await? else {
            emit(&format!("environment `{}` is not locked\n", args.env))?;
            return Ok(0);
        };
        eprintln!(
            "environment `{}` is locked by {} since {} ({}); lease until {}",
            lock.environment,
            lock.owner,
            format_millis(lock.acquired_at),
            lock.reason,
            format_millis(lock.lease_expires_at)
        );
        if !args.yes {
            if !std::io::stdin().is_terminal() {
                bail!("not a terminal: pass --yes to force the lock open");
            }
            eprint!("force it open? If its holder still runs, two runs may touch the environment at once. [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                eprintln!("left locked");
                return Ok(1);
            }
        }
        let actor = formwork::lease::process_owner();
        formwork::lease::force_release(
            &store,
            &formwork::lease::Subject::Apply(args.env.clone()),
            &actor,
            &args.reason,
        )
        .await?;
        emit(&format!(
            "unlocked environment `{}` (held by {}); recorded as done by {actor}\n",
            args.env, lock.owner
        ))?;
        Ok(0)
    })
}
