//! The agent's settings: `formwork-server.yml`, with flags and `FORMWORK_*` variables over it.
//! Unknown keys are rejected; the doc comments are the documentation of the generated JSON
//! Schema (`formwork schema server`). Secrets are never in this file: the webhook secret and
//! GitHub credentials come from the environment (or a file it names).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::notifications::{self, Notification, NotificationTarget};
use crate::config::parse_yaml;
use crate::diag::{Color, Diagnostics, SourceMap, render_all};
use crate::github::report::ReportMode;
use crate::runner::{Acts, Policy};
use crate::yaml::Spanned;

/// The settings of `formwork serve`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "formwork server")]
pub struct ServerConfig {
    /// The address to listen on, `HOST:PORT`. Default `127.0.0.1:8080`: reachable from this
    /// machine only; put a reverse proxy in front, or listen on another address deliberately.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The config repository the agent watches.
    pub repository: RepositoryConfig,
    /// The GitHub side: where comments and statuses go, which deliveries are accepted.
    pub github: GitHubConfig,
    /// How often to fetch the repository (the default branch and open pull requests' heads), in
    /// seconds, for when webhooks do not reach the agent; 0 turns polling off. Default 60.
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: u64,
    /// How many environments are worked on at once (one job at a time per environment).
    /// Default 4.
    #[serde(default = "default_parallel")]
    pub parallel_environments: usize,
    /// How applies run.
    #[serde(default)]
    pub apply: ApplyConfig,
    /// AWS calls in flight at once per account and region. Default 8.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// The limits of the HTTP port: connections, how long a request may take to arrive, and
    /// how much memory webhook bodies may take.
    #[serde(default)]
    pub http: HttpConfig,
    /// Scheduled drift detection of the environments (off by default).
    #[serde(default)]
    pub drift: DriftConfig,
    /// Where the agent tells of every apply and drift check of every environment it works on,
    /// besides the environment's own `notifications:` (the same targets and keys; see
    /// docs/notifications.md). Secrets come from the agent's environment variables, or from
    /// SSM parameters read with the environment's AWS session.
    #[serde(default)]
    pub notifications: Vec<Spanned<NotificationTarget>>,
}

/// Scheduled drift detection (docs/drift.md): every `interval_seconds`, the deployed stacks
/// of the environments at the default branch's head are checked; each environment's drift is
/// kept in one GitHub issue and counted in the metrics.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Seconds between checks, e.g. 21600 for every six hours; 0 turns them off. Default 0.
    /// The time of the last check is kept in the state store, so a restart does not check
    /// again early.
    #[serde(default)]
    pub interval_seconds: u64,
    /// Check only these environments. Default: every environment the agent works on.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Drift detections in flight at once per account and region. Default 5.
    #[serde(default = "default_drift_concurrency")]
    pub concurrency: usize,
    /// Minutes one check may wait for its detections; a stack not done by then counts as not
    /// checked. Default 10.
    #[serde(default = "default_drift_timeout")]
    pub timeout_minutes: u64,
    /// Keep one GitHub issue per environment about its drift: opened when a stack drifted,
    /// updated at each check that still finds drift, closed when one finds every stack in
    /// sync. Default true.
    #[serde(default = "default_true")]
    pub issues: bool,
    /// The label of those issues. Default `formwork-drift`.
    #[serde(default = "default_drift_label")]
    pub issue_label: String,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            interval_seconds: 0,
            environments: Vec::new(),
            concurrency: default_drift_concurrency(),
            timeout_minutes: default_drift_timeout(),
            issues: true,
            issue_label: default_drift_label(),
        }
    }
}

fn default_drift_concurrency() -> usize {
    5
}
fn default_drift_timeout() -> u64 {
    10
}
fn default_true() -> bool {
    true
}
fn default_drift_label() -> String {
    crate::github::drift_issue::DEFAULT_LABEL.to_string()
}

/// The config repository.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// Where to clone it from: `https://github.com/OWNER/NAME.git`, or a path to a repository on
    /// this machine. The agent keeps one clone in its data directory and fetches into it.
    pub url: String,
    /// The branch whose commits are applied. Default `main`.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// The directory holding `pipelines/` and `environments/`, relative to the repository's
    /// root. Default: the root.
    #[serde(default)]
    pub path: String,
}

/// GitHub.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// The config repository on GitHub, `OWNER/NAME`.
    pub repository: String,
    /// The REST API root. Default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Repositories (`OWNER/NAME`) whose webhook deliveries are acted on. Default: only
    /// `repository`. Deliveries from any other are acknowledged and ignored.
    #[serde(default)]
    pub allowed_repositories: Vec<String>,
    /// Owners (users or organisations) whose forks' pull requests are planned against AWS.
    /// Pull requests from any other fork are planned offline, from the two revisions only:
    /// fork code never runs with AWS credentials.
    #[serde(default)]
    pub trusted_fork_owners: Vec<String>,
    /// How outcomes show on commits: `status`, `check-run` or `none`. Default `status`.
    #[serde(default)]
    pub report: ReportMode,
    /// The most comments one plan may take. Default 5.
    #[serde(default = "default_parts")]
    pub max_comment_parts: usize,
    /// Whether `/formwork apply` may apply an open pull request's reviewed plan. Default false.
    #[serde(default)]
    pub apply_before_merge: bool,
    /// This agent's address as GitHub users reach it (for links from statuses to its status
    /// page), e.g. `https://formwork.example.com`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// A file holding the webhook secret, instead of the `FORMWORK_WEBHOOK_SECRET` variable.
    #[serde(default)]
    pub webhook_secret_file: Option<String>,
}

/// How applies run.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyConfig {
    /// Delete stacks that left the config (environments may also allow it themselves with
    /// `allow_delete`). Default false.
    #[serde(default)]
    pub allow_delete: bool,
    /// Make fresh change sets for stacks whose reviewed one no longer matches, instead of
    /// refusing. A fresh change set that replaces or removes what the review did not show is
    /// never applied by the agent. Default false.
    #[serde(default)]
    pub replan: bool,
    /// How long to wait for one stack operation, in minutes (stacks may set their own
    /// `timeout_minutes`). Default 60.
    #[serde(default = "default_timeout")]
    pub stack_timeout_minutes: u64,
    /// Stack operations at once within an environment. Default 8.
    #[serde(default = "default_parallel_stacks")]
    pub parallel_stacks: usize,
}

/// The limits of the HTTP port. A webhook body larger than GitHub's largest payload (25 MiB) is
/// always refused.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections open at once. At the limit the agent accepts no more until one closes (new
    /// ones wait in the operating system's queue). Default 256.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1))]
    pub max_connections: usize,
    /// How long a client may take to send a request's line and headers, in seconds, counted
    /// from when the connection waits for a request: a kept-alive connection left idle this
    /// long is closed too. Default 10.
    #[serde(default = "default_header_read_timeout")]
    #[schemars(range(min = 1))]
    pub header_read_timeout_seconds: u64,
    /// How long a client may take to send the whole body of a webhook delivery, in seconds;
    /// a slower one is answered 408. Default 30.
    #[serde(default = "default_body_read_timeout")]
    #[schemars(range(min = 1))]
    pub body_read_timeout_seconds: u64,
    /// Bytes of webhook bodies held at once, across all connections. A delivery that cannot
    /// have its share within two seconds is answered 503 with `Retry-After`. At least
    /// 26214400 (one delivery of GitHub's largest size). Default 67108864 (64 MiB).
    #[serde(default = "default_body_bytes_in_flight")]
    #[schemars(range(min = 26_214_400))]
    pub max_body_bytes_in_flight: u64,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            max_connections: default_max_connections(),
            header_read_timeout_seconds: default_header_read_timeout(),
            body_read_timeout_seconds: default_body_read_timeout(),
            max_body_bytes_in_flight: default_body_bytes_in_flight(),
        }
    }
}

impl Default for ApplyConfig {
    fn default() -> ApplyConfig {
        ApplyConfig {
            allow_delete: false,
            replan: false,
            stack_timeout_minutes: default_timeout(),
            parallel_stacks: default_parallel_stacks(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_poll() -> u64 {
    60
}
fn default_parallel() -> usize {
    4
}
fn default_in_flight() -> usize {
    crate::aws::DEFAULT_MAX_IN_FLIGHT
}
fn default_branch() -> String {
    "main".into()
}
fn default_parts() -> usize {
    5
}
fn default_timeout() -> u64 {
    60
}
fn default_parallel_stacks() -> usize {
    8
}
fn default_max_connections() -> usize {
    256
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_body_read_timeout() -> u64 {
    30
}
fn default_body_bytes_in_flight() -> u64 {
    64 * 1024 * 1024
}

impl ServerConfig {
    /// Settings from flags alone: a repository and its GitHub name, defaults for the rest.
    pub fn minimal(url: &str, github_repository: &str) -> ServerConfig {
        ServerConfig {
            listen: default_listen(),
            repository: RepositoryConfig {
                url: url.to_string(),
                default_branch: default_branch(),
                path: String::new(),
            },
            github: GitHubConfig {
                repository: github_repository.to_string(),
                api_url: None,
                allowed_repositories: Vec::new(),
                trusted_fork_owners: Vec::new(),
                report: ReportMode::default(),
                max_comment_parts: default_parts(),
                apply_before_merge: false,
                public_url: None,
                webhook_secret_file: None,
            },
            poll_interval_seconds: default_poll(),
            parallel_environments: default_parallel(),
            apply: ApplyConfig::default(),
            max_in_flight: default_in_flight(),
            http: HttpConfig::default(),
            drift: DriftConfig::default(),
            notifications: Vec::new(),
        }
    }

    /// The agent's notification targets that are sound (`load` reports the others).
    pub fn notification_targets(&self) -> Vec<Notification> {
        let file: Arc<str> = Arc::from("formwork-server.yml");
        notifications::check(&file, &self.notifications, &mut Diagnostics::new())
    }

    /// The rules by which the agent decides what an event means: its repositories, the fork
    /// owners it trusts; every kind of event acted on.
    pub fn policy(&self) -> Policy {
        Policy {
            repository: self.github.repository.clone(),
            allowed_repositories: self.github.allowed_repositories.clone(),
            trusted_fork_owners: self.github.trusted_fork_owners.clone(),
            acts: Acts::All,
        }
    }
}

/// Reads a settings file; every problem comes back rendered, with its line and column.
pub fn load(path: &std::path::Path) -> Result<ServerConfig, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let file: Arc<str> = Arc::from(path.display().to_string().as_str());
    let parsed = parse_yaml::<ServerConfig>(&file, bytes);
    let mut diags = Diagnostics::new();
    for d in parsed.diags {
        diags.push(d);
    }
    if let Some(c) = &parsed.value {
        notifications::check(&file, &c.notifications, &mut diags);
    }
    if diags.has_errors() || parsed.value.is_none() {
        let mut texts = SourceMap::default();
        if let Some(t) = &parsed.text {
            texts.insert(&file, t);
        }
        return Err(render_all(&diags, &texts, Color::Never));
    }
    let config = parsed.value.expect("checked above");
    config
        .check()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(config)
}

impl ServerConfig {
    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "listen `{}` is not HOST:PORT with an IP address (e.g. 127.0.0.1:8080)",
                self.listen
            ));
        }
        crate::github::client::RepoName::parse(&self.github.repository)
            .map_err(|e| format!("github.repository: {e}"))?;
        for r in &self.github.allowed_repositories {
            crate::github::client::RepoName::parse(r)
                .map_err(|e| format!("github.allowed_repositories: {e}"))?;
        }
        if self.parallel_environments == 0 {
            return Err("parallel_environments must be at least 1".into());
        }
        if self.repository.default_branch.trim().is_empty() {
            return Err("repository.default_branch must not be empty".into());
        }
        self.http.check()?;
        self.drift.check()
    }
}

impl DriftConfig {
    /// Checks what the types cannot.
    fn check(&self) -> Result<(), String> {
        if self.interval_seconds == 0 {
            return Ok(());
        }
        if self.concurrency == 0 {
            return Err("drift.concurrency must be at least 1".into());
        }
        if self.timeout_minutes == 0 {
            return Err("drift.timeout_minutes must be at least 1".into());
        }
        if self.issues && self.issue_label.trim().is_empty() {
            return Err("drift.issue_label must not be empty".into());
        }
        Ok(())
    }
}

impl HttpConfig {
    /// Checks what the types cannot.
    fn check(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("http.max_connections must be at least 1".into());
        }
        if self.header_read_timeout_seconds == 0 {
            return Err("http.header_read_timeout_seconds must be at least 1".into());
        }
        if self.body_read_timeout_seconds == 0 {
            return Err("http.body_read_timeout_seconds must be at least 1".into());
        }
        let least = super::limits::MAX_BODY;
        if self.max_body_bytes_in_flight < least {
            return Err(format!(
                "http.max_body_bytes_in_flight must be at least {least} (one delivery of GitHub's largest size)"
            ));
        }
        if super::limits::BodyBudget::permits_for(self.max_body_bytes_in_flight).is_none() {
            return Err("http.max_body_bytes_in_flight is too large".into());
        }
        Ok(())
    }
}

/// The JSON Schema of `formwork-server.yml`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ServerConfig)).expect("schema serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("formwork-server.yml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_small_file_gets_the_defaults() {
        let (_d, p) =
            write("repository:\n  url: /srv/config.git\ngithub:\n  repository: octo-org/config\n");
        let c = load(&p).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.repository.default_branch, "main");
        assert_eq!(c.poll_interval_seconds, 60);
        assert_eq!(c.github.max_comment_parts, 5);
        assert_eq!(c.http.max_connections, 256);
        assert_eq!(c.http.header_read_timeout_seconds, 10);
        assert_eq!(c.http.body_read_timeout_seconds, 30);
        assert_eq!(c.http.max_body_bytes_in_flight, 64 << 20);
        assert!(c.policy().allows_repository("Octo-Org/Config"));
        assert!(!c.policy().allows_repository("octo-org/other"));
    }

    #[test]
    fn unknown_keys_and_bad_values_point_at_the_line() {
        let (_d, p) = write(
            "repository:\n  url: /srv/config.git\n  default_brnch: main\ngithub:\n  repository: octo-org/config\n",
        );
        let e = load(&p).unwrap_err();
        assert!(e.contains(":3:3"), "{e}");
        assert!(e.contains("default_branch"), "{e}");
        let (_d, p) = write(
            "listen: everywhere\nrepository:\n  url: x\ngithub:\n  repository: octo-org/config\n",
        );
        assert!(load(&p).unwrap_err().contains("HOST:PORT"));
    }

    #[test]
    fn the_drift_schedule_is_off_by_default_and_checked_when_on() {
        let base = "repository:\n  url: /srv/config.git\ngithub:\n  repository: octo-org/config\n";
        let (_d, p) = write(base);
        let c = load(&p).unwrap();
        assert_eq!(c.drift.interval_seconds, 0);
        assert!(c.drift.issues);
        assert_eq!(c.drift.issue_label, "formwork-drift");
        let (_d, p) = write(&format!("{base}drift:\n  interval_seconds: 3600\n"));
        assert_eq!(load(&p).unwrap().drift.concurrency, 5);
        for (bad, says) in [
            ("concurrency: 0", "drift.concurrency"),
            ("timeout_minutes: 0", "drift.timeout_minutes"),
            ("issue_label: \" \"", "drift.issue_label"),
            ("every: 6h", "every"),
        ] {
            let (_d, p) = write(&format!("{base}drift:\n  interval_seconds: 60\n  {bad}\n"));
            let e = load(&p).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn notification_targets_are_checked_where_written() {
        let base = "repository:\n  url: /srv/config.git\ngithub:\n  repository: octo-org/config\n";
        let (_d, p) = write(&format!(
            "{base}notifications:\n  - slack:\n      url_from_env: OPS_SLACK_URL\n    on: [apply_failed]\n"
        ));
        let c = load(&p).unwrap();
        let t = c.notification_targets();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "slack #1");
        let (_d, p) = write(&format!(
            "{base}notifications:\n  - sns:\n      topic_arn: not-an-arn\n"
        ));
        let e = load(&p).unwrap_err();
        assert!(e.contains(":7:18"), "{e}");
        assert!(e.contains("is not an SNS topic ARN"), "{e}");
    }

    #[test]
    fn the_http_limits_are_checked() {
        let base = "repository:\n  url: /srv/config.git\ngithub:\n  repository: octo-org/config\n";
        let (_d, p) = write(&format!(
            "{base}http:\n  max_connections: 8\n  header_read_timeout_seconds: 2\n"
        ));
        let c = load(&p).unwrap();
        assert_eq!(c.http.max_connections, 8);
        assert_eq!(c.http.header_read_timeout_seconds, 2);
        assert_eq!(c.http.body_read_timeout_seconds, 30);
        for (bad, says) in [
            ("max_connections: 0", "max_connections"),
            (
                "header_read_timeout_seconds: 0",
                "header_read_timeout_seconds",
            ),
            ("body_read_timeout_seconds: 0", "body_read_timeout_seconds"),
            ("max_body_bytes_in_flight: 1048576", "at least 26214400"),
            (
                "max_body_bytes_in_flight: 18446744073709551615",
                "too large",
            ),
            ("max_conections: 8", "max_connections"),
        ] {
            let (_d, p) = write(&format!("{base}http:\n  {bad}\n"));
            let e = load(&p).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
