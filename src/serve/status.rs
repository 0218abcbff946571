//! What the agent shows about the environments: for each, the commit it runs, its lock and the
//! pull request that claims it; and the recent runs. As JSON (`GET /api/status`) and as a small
//! read-only HTML page (`GET /`).

use serde::Serialize;

use super::agent::Agent;
use crate::lease::{self, Subject};
use crate::store::{Store, format_millis};

/// The state of the agent's environments.
#[derive(Debug, Serialize)]
pub struct Status {
    pub repository: String,
    pub default_branch: String,
    /// The default branch's commit in the agent's clone.
    pub head: Option<String>,
    pub ready: bool,
    pub queue_depth: i64,
    pub jobs_running: i64,
    pub environments: Vec<EnvironmentStatus>,
    pub recent_runs: Vec<RunStatus>,
}

#[derive(Debug, Serialize)]
pub struct EnvironmentStatus {
    pub name: String,
    pub deployed_commit: Option<String>,
    pub deployed_at: Option<String>,
    /// Who holds the apply lock, while its lease runs.
    pub locked_by: Option<String>,
    /// The pull request that claims the environment.
    pub claimed_by: Option<String>,
    /// Why the environment's config at the head does not resolve (`file:line:col: error:
    /// message`); nothing is applied to it until it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunStatus {
    pub id: String,
    pub environment: String,
    pub commit: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// Reads the status from the clone and the store.
pub async fn status(agent: &Agent) -> Status {
    let heads = agent.mirror.heads().ok();
    let head = heads.and_then(|h| h.default_branch);
    let names = match &head {
        Some(h) => agent.environment_names_at(h).await,
        None => Vec::new(),
    };
    let store = &agent.cx().store;
    let mut environments = Vec::new();
    for (name, config_error) in names {
        let config_error = config_error.map(|e| agent.cx().masker.scrub(&e));
        let deployed = store.deployed(&name).await.ok().flatten();
        let holder = |subject| async move {
            lease::holder(store.as_ref(), &subject)
                .await
                .ok()
                .flatten()
                .map(|l| l.owner)
        };
        environments.push(EnvironmentStatus {
            deployed_commit: deployed.as_ref().map(|d| d.commit.clone()),
            deployed_at: deployed.as_ref().map(|d| format_millis(d.at)),
            locked_by: holder(Subject::Apply(name.clone())).await,
            claimed_by: holder(Subject::Claim(name.clone())).await,
            config_error,
            name,
        });
    }
    let recent_runs = store
        .runs(None, 20)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| RunStatus {
            id: r.id,
            environment: r.environment,
            commit: r.commit,
            status: r.status.as_str().to_string(),
            started_at: format_millis(r.started_at),
            finished_at: r.finished_at.map(format_millis),
        })
        .collect();
    Status {
        repository: agent.config.github.repository.clone(),
        default_branch: agent.config.repository.default_branch.clone(),
        head,
        ready: agent.ready.load(std::sync::atomic::Ordering::SeqCst),
        queue_depth: agent.metrics.queue_depth.get(),
        jobs_running: agent.metrics.jobs_running.get(),
        environments,
        recent_runs,
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn short(c: &str) -> &str {
    &c[..c.len().min(12)]
}

/// The HTML page.
pub fn page(s: &Status) -> String {
    let mut envs = String::new();
    for e in &s.environments {
        let problem = e
            .config_error
            .as_deref()
            .map(|p| {
                format!(
                    "<br><small class=\"error\">config error: {}</small>",
                    esc(p)
                )
            })
            .unwrap_or_default();
        envs.push_str(&format!(
            "<tr><td>{}{problem}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&e.name),
            e.deployed_commit
                .as_deref()
                .map(short)
                .map(esc)
                .unwrap_or_else(|| "—".into()),
            e.deployed_at
                .as_deref()
                .map(esc)
                .unwrap_or_else(|| "—".into()),
            e.locked_by
                .as_deref()
                .map(esc)
                .unwrap_or_else(|| "—".into()),
            e.claimed_by
                .as_deref()
                .map(esc)
                .unwrap_or_else(|| "—".into()),
        ));
    }
    if s.environments.is_empty() {
        envs.push_str("<tr><td colspan=\"5\">No environments yet.</td></tr>\n");
    }
    let mut runs = String::new();
    for r in &s.recent_runs {
        runs.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&r.id),
            esc(&r.environment),
            esc(short(&r.commit)),
            esc(&r.status),
            esc(&r.status),
            esc(&r.started_at),
            r.finished_at.as_deref().map(esc).unwrap_or_else(|| "running".into()),
        ));
    }
    if s.recent_runs.is_empty() {
        runs.push_str("<tr><td colspan=\"6\">No runs yet.</td></tr>\n");
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>formwork — {repo}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1f2328; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d0d7de; }}
th {{ background: #f6f8fa; }}
.succeeded {{ color: #1a7f37; }} .failed {{ color: #cf222e; }} .running {{ color: #9a6700; }}
.meta {{ color: #59636e; }}
</style>
</head>
<body>
<h1>formwork — {repo}</h1>
<p class="meta" id="summary">Branch <code>{branch}</code> at <code>{head}</code> · {ready} · {queued} queued, {running} running</p>
<h2>Environments</h2>
<table id="environments">
<thead><tr><th>environment</th><th>deployed commit</th><th>deployed at</th><th>locked by</th><th>claimed by</th></tr></thead>
<tbody>
{envs}</tbody>
</table>
<h2>Recent runs</h2>
<table id="runs">
<thead><tr><th>run</th><th>environment</th><th>commit</th><th>status</th><th>started</th><th>finished</th></tr></thead>
<tbody>
{runs}</tbody>
</table>
</body>
</html>
"#,
        repo = esc(&s.repository),
        branch = esc(&s.default_branch),
        head = s
            .head
            .as_deref()
            .map(short)
            .map(esc)
            .unwrap_or_else(|| "—".into()),
        ready = if s.ready { "ready" } else { "starting" },
        queued = s.queue_depth,
        running = s.jobs_running,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows() {
        let s = Status {
            repository: "o/<script>".into(),
            default_branch: "main".into(),
            head: Some("0123456789abcdef".into()),
            ready: true,
            queue_depth: 1,
            jobs_running: 0,
            environments: vec![EnvironmentStatus {
                name: "prod".into(),
                deployed_commit: Some("feedfacecafebeef".into()),
                deployed_at: Some("2026-11-22T00:00:00Z".into()),
                locked_by: None,
                claimed_by: Some("pull request #7".into()),
                config_error: Some("environments/prod/environment.yml:3:1: error: <bad>".into()),
            }],
            recent_runs: vec![],
        };
        let p = page(&s);
        assert!(p.contains("o/&lt;script&gt;") && !p.contains("<script>"));
        assert!(p.contains("<code>feedfacecafe</code>"));
        assert!(p.contains("pull request #7"));
        assert!(
            p.contains("config error: environments/prod/environment.yml:3:1: error: &lt;bad&gt;")
        );
        assert!(p.contains("No runs yet."));
    }
}
