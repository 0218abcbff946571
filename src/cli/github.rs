//! GitHub settings shared by `plan --github-pr` and `apply --github`: where the API is, which
//! repository, how to authenticate (from the environment only: secrets never go on a command
//! line), and how to report.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::builder::TypedValueParser;

use formwork::github::client::{Auth, DEFAULT_API_URL, GitHub, RepoName, Retry, Settings};
use formwork::github::report::{ReportMode, Reporting};
use formwork::secrets::Masker;

/// Flags of the GitHub reporting; each has an environment variable (those GitHub Actions sets
/// are read as they are).
#[derive(clap::Args, Clone, Debug)]
pub struct GitHubArgs {
    /// The repository, OWNER/NAME.
    #[arg(long, env = "GITHUB_REPOSITORY", value_name = "OWNER/NAME")]
    github_repo: Option<String>,
    /// The REST API root (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, env = "GITHUB_API_URL", default_value = DEFAULT_API_URL)]
    github_api_url: String,
    /// How the outcome is shown on the commit.
    #[arg(
        long,
        env = "FORMWORK_GITHUB_REPORT",
        default_value = "status",
        value_parser = clap::builder::PossibleValuesParser::new(ReportMode::NAMES)
            .try_map(|s| s.parse::<ReportMode>()),
    )]
    github_report: ReportMode,
    /// Most comments one plan may take; the rest goes to the job log (and the check run).
    #[arg(long, env = "FORMWORK_GITHUB_MAX_PARTS", default_value_t = 5)]
    github_max_parts: usize,
    /// Where the job can be followed. Default in GitHub Actions: the workflow run.
    #[arg(long, env = "FORMWORK_GITHUB_TARGET_URL")]
    github_target_url: Option<String>,
}

impl GitHubArgs {
    /// The repository, `OWNER/NAME`, when given.
    pub fn repository(&self) -> Option<&str> {
        self.github_repo.as_deref()
    }

    pub fn reporting(&self) -> Reporting {
        Reporting {
            mode: self.github_report,
            max_parts: self.github_max_parts.max(1),
            target_url: self.github_target_url.clone().or_else(actions_run_url),
        }
    }

    /// What the pull-request flows work with, for the config repository of `cli`.
    pub async fn context(
        &self,
        cli: &crate::Cli,
        max_in_flight: usize,
    ) -> Result<formwork::github::flow::Context> {
        let masker = formwork::secrets::global();
        Ok(formwork::github::flow::Context {
            repo: formwork::workflow::ConfigRepo::discover(&cli.repo)?,
            store: Arc::new(formwork::store::open(&cli.store, &cli.data_dir()).await?),
            aws: Arc::new(formwork::aws::Aws::load(max_in_flight).await),
            gh: self.connect(masker.clone()).await?,
            reporting: self.reporting(),
            masker,
            notifier: formwork::notify::Notifier::default(),
        })
    }

    /// A client for the repository, authenticated from the environment:
    /// `FORMWORK_GITHUB_TOKEN` or `GITHUB_TOKEN`; or a GitHub App with `FORMWORK_GITHUB_APP_ID`,
    /// its key in `FORMWORK_GITHUB_APP_PRIVATE_KEY` (PEM) or `FORMWORK_GITHUB_APP_PRIVATE_KEY_FILE`,
    /// and optionally `FORMWORK_GITHUB_APP_INSTALLATION_ID`.
    pub async fn connect(&self, masker: Arc<Masker>) -> Result<GitHub> {
        let Some(repo) = &self.github_repo else {
            bail!(
                "which repository? pass --github-repo OWNER/NAME (GitHub Actions sets GITHUB_REPOSITORY)"
            );
        };
        let repo = RepoName::parse(repo)?;
        let auth = auth_from_env()?;
        let settings = Settings {
            api_url: self.github_api_url.clone(),
            repo,
            auth,
            retry: Retry::default(),
        };
        Ok(GitHub::connect(settings, masker).await?)
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn auth_from_env() -> Result<Auth> {
    if let Some(id) = var("FORMWORK_GITHUB_APP_ID") {
        let app_id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("FORMWORK_GITHUB_APP_ID `{id}` is not a number"))?;
        let key = match (
            var("FORMWORK_GITHUB_APP_PRIVATE_KEY"),
            var("FORMWORK_GITHUB_APP_PRIVATE_KEY_FILE"),
        ) {
            (Some(k), _) => k,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .with_context(|| format!("reading the GitHub App private key from {path}"))?,
            (None, None) => bail!(
                "FORMWORK_GITHUB_APP_ID is set but no key: set FORMWORK_GITHUB_APP_PRIVATE_KEY (PEM) or FORMWORK_GITHUB_APP_PRIVATE_KEY_FILE"
            ),
        };
        let installation_id = match var("FORMWORK_GITHUB_APP_INSTALLATION_ID") {
            Some(i) => Some(i.trim().parse().with_context(|| {
                format!("FORMWORK_GITHUB_APP_INSTALLATION_ID `{i}` is not a number")
            })?),
            None => None,
        };
        return Ok(Auth::App {
            app_id,
            private_key_pem: key,
            installation_id,
        });
    }
    match var("FORMWORK_GITHUB_TOKEN").or_else(|| var("GITHUB_TOKEN")) {
        Some(t) => Ok(Auth::Token(t.trim().to_string())),
        None => bail!(
            "no GitHub credentials: set GITHUB_TOKEN (or FORMWORK_GITHUB_TOKEN), or a GitHub App with FORMWORK_GITHUB_APP_ID and FORMWORK_GITHUB_APP_PRIVATE_KEY"
        ),
    }
}

/// The URL of the GitHub Actions run this process is part of, when it is.
fn actions_run_url() -> Option<String> {
    let server = var("GITHUB_SERVER_URL")?;
    let repo = var("GITHUB_REPOSITORY")?;
    let run = var("GITHUB_RUN_ID")?;
    let mut url = format!("{}/{repo}/actions/runs/{run}", server.trim_end_matches('/'));
    if let Some(attempt) = var("GITHUB_RUN_ATTEMPT") {
        url.push_str(&format!("/attempts/{attempt}"));
    }
    Some(url)
}

/// `apply --github` / `--github-pr N`: the reviewed plan of the pull request, applied and
/// reported on GitHub.
pub fn apply(cli: &crate::Cli, args: &super::apply::ApplyArgs) -> Result<u8> {
    use formwork::github::flow;
    if args.plan.is_some() || args.base.is_some() {
        bail!(
            "with --github, apply takes the plan reviewed on the pull request; --plan and --base are for runs without GitHub"
        );
    }
    let runtime = super::plan::runtime()?;
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
                &super::apply::options(args),
                super::apply::observer(args),
                false,
            )
            .await?,
        )
    })?;
    let short = &done.commit[..done.commit.len().min(12)];
    match (done.pull_request, args.github_pr) {
        (Some(n), Some(_)) => eprintln!("pull request #{n}, at its head {short}, before merging"),
        (Some(n), None) => eprintln!("commit {short} came from pull request #{n}"),
        (None, _) => eprintln!("commit {short} came from no merged pull request"),
    }
    // The results went to GitHub; the terminal gets them too.
    let reporter = super::apply::TermReporter {
        observer: super::apply::observer(args),
        output: args.output,
    };
    runtime.block_on(formwork::apply::service::Reporter::finished(
        &reporter,
        &args.env,
        &done.commit,
        &done.applied,
    ))?;
    Ok(super::apply::exit_code(&done.applied))
}
