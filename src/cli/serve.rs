//! `formwork serve`: the agent, from its settings file, flags and environment.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use formwork::serve::{self, ServerConfig};

use super::github::auth_from_env;
use super::plan::runtime;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The settings file (see `formwork schema server` and docs/serve.md).
    #[arg(long, env = "FORMWORK_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Listen on this address (HOST:PORT), over the settings file.
    #[arg(long, env = "FORMWORK_LISTEN")]
    listen: Option<String>,
    /// Clone the config repository from here (a URL or a path), over the settings file.
    #[arg(long, env = "FORMWORK_REPOSITORY_URL")]
    repository_url: Option<String>,
    /// The branch whose commits are applied, over the settings file.
    #[arg(long, env = "FORMWORK_DEFAULT_BRANCH")]
    default_branch: Option<String>,
    /// The repository on GitHub, OWNER/NAME, over the settings file.
    #[arg(long, env = "FORMWORK_GITHUB_REPOSITORY")]
    github_repo: Option<String>,
    /// GitHub's REST API root, over the settings file.
    #[arg(long, env = "FORMWORK_GITHUB_API_URL")]
    github_api_url: Option<String>,
    /// Seconds between polls of the repository (0: no polling), over the settings file.
    #[arg(long, env = "FORMWORK_POLL_INTERVAL")]
    poll_interval: Option<u64>,
    /// Run without a webhook secret: any delivery is believed. Only for a closed network.
    #[arg(long)]
    insecure_no_webhook_secret: bool,
    /// On SIGTERM, how long to wait for running applies, in seconds.
    #[arg(long, default_value_t = 600)]
    grace_seconds: u64,
}

pub fn run(cli: &crate::Cli, args: &ServeArgs) -> Result<u8> {
    let mut config = match &args.config {
        Some(p) => serve::config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => match (&args.repository_url, &args.github_repo) {
            (Some(url), Some(repo)) => ServerConfig::minimal(url, repo),
            _ => bail!(
                "give the settings file with --config, or at least --repository-url and --github-repo"
            ),
        },
    };
    if let Some(v) = &args.listen {
        config.listen = v.clone();
    }
    if let Some(v) = &args.repository_url {
        config.repository.url = v.clone();
    }
    if let Some(v) = &args.default_branch {
        config.repository.default_branch = v.clone();
    }
    if let Some(v) = &args.github_repo {
        config.github.repository = v.clone();
    }
    if let Some(v) = &args.github_api_url {
        config.github.api_url = Some(v.clone());
    }
    if let Some(v) = args.poll_interval {
        config.poll_interval_seconds = v;
    }
    config.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = webhook_secret(&config)?;
    if secret.is_none() && !args.insecure_no_webhook_secret {
        bail!(
            "no webhook secret: set FORMWORK_WEBHOOK_SECRET (or github.webhook_secret_file) to the secret of the GitHub webhook; --insecure-no-webhook-secret runs without one, believing any delivery"
        );
    }
    let opts = serve::Options {
        config,
        data_dir: cli.data_dir(),
        store: cli.store.clone(),
        webhook_secret: secret,
        auth: auth_from_env()?,
        grace: Duration::from_secs(args.grace_seconds),
    };
    let runtime = runtime()?;
    runtime.block_on(serve::serve(opts, shutdown_signal()))?;
    Ok(0)
}

fn webhook_secret(config: &ServerConfig) -> Result<Option<Vec<u8>>> {
    if let Some(path) = &config.github.webhook_secret_file {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("reading the webhook secret from {path}"))?;
        return Ok(Some(s.trim().as_bytes().to_vec()).filter(|s| !s.is_empty()));
    }
    Ok(std::env::var("FORMWORK_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes))
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
