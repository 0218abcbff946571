//! Where and how to reach GitHub: the repository, the credentials and the retry policy.

use std::time::Duration;

use super::GitHubError;

/// `owner/name` of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    /// Parses `owner/name`.
    pub fn parse(s: &str) -> Result<RepoName, GitHubError> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match s.trim().split_once('/') {
            Some((o, n)) if ok(o) && ok(n) => Ok(RepoName {
                owner: o.to_string(),
                name: n.to_string(),
            }),
            _ => Err(GitHubError::Config(format!(
                "`{s}` is not a repository name; write it as OWNER/NAME"
            ))),
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// How formwork authenticates.
#[derive(Clone)]
pub enum Auth {
    /// A token: `GITHUB_TOKEN` in Actions, a personal access token, an installation token.
    Token(String),
    /// A GitHub App: its id and private key (PEM); the installation is looked up from the
    /// repository when not given.
    App {
        app_id: u64,
        private_key_pem: String,
        installation_id: Option<u64>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(****)"),
            Auth::App {
                app_id,
                installation_id,
                ..
            } => write!(
                f,
                "Auth::App {{ app_id: {app_id}, installation_id: {installation_id:?}, private_key_pem: **** }}"
            ),
        }
    }
}

/// Retrying and waiting.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// First backoff after a server error; doubled each time, with jitter.
    pub base_delay: Duration,
    /// The longest formwork waits for a rate limit to reset before giving up.
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Where and how to reach GitHub.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The REST API root: `https://api.github.com`, or `https://HOST/api/v3` for GitHub
    /// Enterprise Server.
    pub api_url: String,
    pub repo: RepoName,
    pub auth: Auth,
    pub retry: Retry,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        assert_eq!(
            RepoName::parse("octo-org/my.repo").unwrap().full_name(),
            "octo-org/my.repo"
        );
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c"] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
    }
}
