//! `formwork serve`: the self-hosted agent. It keeps a clone of the config repository, hears
//! GitHub's webhooks (and polls when they cannot reach it), plans pull requests, runs comment
//! commands, and applies merges environment by environment, reconciling each environment with
//! the default branch on start and on every change.
//!
//! - [`config`]: its settings (`formwork-server.yml`);
//! - [`mirror`]: the clone, fetched incrementally;
//! - [`agent`]: the jobs, their queue and their order, reconciliation and claims;
//! - [`http`]: the webhook endpoint, health, metrics and status, and the server loop;
//! - [`limits`]: how webhook bodies are read: size, memory budget, time;
//! - [`drift`]: the scheduled drift checks, their issues and numbers;
//! - [`status`] and [`metrics`]: what it shows.

pub mod agent;
pub mod config;
pub mod drift;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod mirror;
pub mod status;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::aws::Aws;
use crate::github::client::{Auth, DEFAULT_API_URL, GitHub, RepoName, Retry, Settings};
use crate::github::flow::Context;
use crate::github::report::Reporting;
use crate::secrets;
use crate::store::Store;

pub use config::ServerConfig;

/// What `serve` needs besides its settings file.
pub struct Options {
    pub config: ServerConfig,
    /// The clone and (with the SQLite store) the state live here.
    pub data_dir: PathBuf,
    /// The state store (`sqlite`, `sqlite:PATH`, `dynamodb:TABLE`).
    pub store: String,
    /// The webhook secret; `None` only when deliberately running without one.
    pub webhook_secret: Option<Vec<u8>>,
    pub auth: Auth,
    /// How long a shutdown waits for running applies.
    pub grace: Duration,
}

/// Why the agent could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Start(String),
}

/// Runs the agent until `shutdown` completes; then stops taking work and lets running applies
/// reach a recorded state (up to the grace period).
pub async fn serve(
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let start = |e: String| ServeError::Start(e);
    let config = opts.config;
    config.check().map_err(start)?;
    limits::give_large_blocks_back();
    let masker = secrets::global();
    if let Some(s) = &opts.webhook_secret {
        masker.add(&String::from_utf8_lossy(s));
    }
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
        start(format!(
            "creating the data directory {}: {e}",
            opts.data_dir.display()
        ))
    })?;
    let store = crate::store::open(&opts.store, &opts.data_dir)
        .await
        .map_err(|e| start(e.to_string()))?;
    let aws = Aws::load(config.max_in_flight).await;
    let gh = GitHub::connect(
        Settings {
            api_url: config
                .github
                .api_url
                .clone()
                .unwrap_or_else(|| DEFAULT_API_URL.to_string()),
            repo: RepoName::parse(&config.github.repository).map_err(|e| start(e.to_string()))?,
            auth: opts.auth,
            retry: Retry::default(),
        },
        masker.clone(),
    )
    .await
    .map_err(|e| start(e.to_string()))?;
    let mirror = mirror::Mirror::new(
        opts.data_dir.join("repository.git"),
        &config.repository.url,
        &config.repository.default_branch,
    );
    let cx = Context {
        repo: crate::workflow::ConfigRepo::at(&mirror.dir, &config.repository.path),
        store: Arc::new(store),
        aws: Arc::new(aws),
        gh,
        reporting: Reporting {
            mode: config.github.report,
            max_parts: config.github.max_comment_parts.max(1),
            target_url: config.github.public_url.clone(),
        },
        masker,
        notifier: crate::notify::Notifier::new(config.notification_targets()),
    };
    let replica = format!("formwork serve {}", crate::lease::process_owner());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| start(format!("listening on {}: {e}", config.listen)))?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| config.listen.clone());
    tracing::info!(address = %address, replica, "formwork serve listening");
    // The one line an operator looks for, whatever the log level.
    eprintln!(
        "formwork serve: listening on http://{address}/ (webhooks: POST /webhooks/github, health: /healthz, status: /), repository {}",
        config.github.repository
    );
    let poll = Duration::from_secs(config.poll_interval_seconds);
    let (agent, rx) = agent::Agent::new(config, cx, mirror, replica);
    let queue = tokio::spawn(agent.clone().run_queue(rx));

    let poller = tokio::spawn(poll_loop(agent.clone(), poll));
    let pruner = tokio::spawn(prune_loop(agent.clone()));
    let drift = tokio::spawn(drift::drift_loop(agent.clone()));
    let app = http::router(agent.clone(), opts.webhook_secret);
    http::serve(listener, app, &agent.config.http, shutdown).await;
    tracing::info!("shutting down: no new work; waiting for running applies");
    poller.abort();
    pruner.abort();
    drift.abort();
    agent.shutdown(opts.grace).await;
    queue.abort();
    Ok(())
}

/// The first fetch, then bringing the environments to the default branch and planning the pull
/// requests that need it; then polling every `poll` (never, when zero).
async fn poll_loop(agent: Arc<agent::Agent>, poll: Duration) {
    let mut delay = Duration::from_secs(1);
    while let Err(e) = agent.poll().await {
        tracing::error!(error = %e, "could not fetch the repository; trying again");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
    agent.enqueue(crate::runner::Work::Apply {
        head: None,
        why: "the agent started".into(),
    });
    // Pull requests opened or pushed to while no agent ran: tried again at each poll until
    // GitHub answers.
    let mut caught_up = catch_up(&agent).await;
    if poll.is_zero() {
        return;
    }
    loop {
        tokio::time::sleep(poll).await;
        if let Err(e) = agent.poll().await {
            tracing::warn!(error = %e, "poll failed");
        }
        if !caught_up {
            caught_up = catch_up(&agent).await;
        }
    }
}

/// Delivery ids are remembered for a few days; the older ones are forgotten now and then.
async fn prune_loop(agent: Arc<agent::Agent>) {
    loop {
        tokio::time::sleep(Duration::from_secs(600)).await;
        match agent
            .cx()
            .store
            .prune_locks("delivery/", crate::store::now())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(removed = n, "forgot old delivery ids"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not forget old delivery ids"),
        }
    }
}

/// Plans the open pull requests without a plan of their head; whether that was done.
async fn catch_up(agent: &Arc<agent::Agent>) -> bool {
    match agent.plan_open_pulls_without_a_plan().await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(
                    queued = n,
                    "planning open pull requests with no plan of their head"
                );
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not list the open pull requests; trying again at the next poll");
            false
        }
    }
}
