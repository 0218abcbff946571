//! The authenticated client: a token, or a GitHub App whose installation tokens octocrab mints
//! and refreshes; the repository it works on and the paths of its endpoints.

use std::sync::Arc;
use std::time::Duration;

use octocrab::Octocrab;
use serde::Deserialize;

use super::transport::Method;
use super::{Auth, GitHubError, RepoName, Retry, Settings};
use crate::secrets::Masker;

/// An authenticated GitHub client for one repository.
#[derive(Clone)]
pub struct GitHub {
    pub(super) octo: Octocrab,
    repo: RepoName,
    pub(super) retry: Retry,
    pub(super) masker: Arc<Masker>,
    /// The token, when authenticated with one (a GitHub App's tokens come from octocrab).
    token: Option<String>,
}

impl GitHub {
    /// A client; for a GitHub App without an installation id, looks the installation up.
    pub async fn connect(settings: Settings, masker: Arc<Masker>) -> Result<GitHub, GitHubError> {
        let base = settings.api_url.trim_end_matches('/').to_string();
        let builder = || {
            Octocrab::builder()
                .base_uri(base.as_str())
                .map_err(|e| GitHubError::Config(format!("`{base}` is not a usable API URL: {e}")))
                .map(|b| {
                    b.set_connect_timeout(Some(Duration::from_secs(10)))
                        .set_read_timeout(Some(Duration::from_secs(60)))
                })
        };
        let build_err = |e: octocrab::Error| GitHubError::Config(format!("GitHub client: {e}"));
        let octo = match &settings.auth {
            Auth::Token(token) => {
                masker.add(token);
                builder()?
                    .personal_token(token.clone())
                    .build()
                    .map_err(build_err)?
            }
            Auth::App {
                app_id,
                private_key_pem,
                installation_id,
            } => {
                let key = octocrab::EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(
                    |e| {
                        GitHubError::Config(format!(
                            "the GitHub App private key is not an RSA key in PEM form: {e}"
                        ))
                    },
                )?;
                let app = builder()?
                    .app((*app_id).into(), key)
                    .build()
                    .map_err(build_err)?;
                let id = match installation_id {
                    Some(id) => *id,
                    None => {
                        let probe = GitHub {
                            octo: app.clone(),
                            repo: settings.repo.clone(),
                            retry: settings.retry.clone(),
                            masker: masker.clone(),
                            token: None,
                        };
                        probe.installation_id().await?
                    }
                };
                app.installation(id.into()).map_err(build_err)?
            }
        };
        let token = match &settings.auth {
            Auth::Token(t) => Some(t.clone()),
            Auth::App { .. } => None,
        };
        Ok(GitHub {
            octo,
            repo: settings.repo,
            retry: settings.retry,
            masker,
            token,
        })
    }

    /// A token for git over HTTPS (fetching the repository): the token formwork was given, or
    /// a GitHub App installation token valid for at least 30 more seconds. Every token handed
    /// out is added to the masker.
    pub async fn git_token(&self) -> Option<String> {
        let t = match &self.token {
            Some(t) => t.clone(),
            None => {
                use octocrab::secrecy::ExposeSecret;
                match self.octo.installation_token().await {
                    Ok(s) => s.expose_secret().to_string(),
                    Err(e) => {
                        tracing::warn!(error = %e, "no installation token for git");
                        return None;
                    }
                }
            }
        };
        self.masker.add(&t);
        Some(t)
    }

    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    /// `/repos/OWNER/NAME`, each segment percent-encoded: the start of most endpoints' paths.
    pub(super) fn repo_path(&self) -> String {
        format!(
            "/repos/{}/{}",
            encode(&self.repo.owner),
            encode(&self.repo.name)
        )
    }

    /// The app installation that covers the repository (GitHub App authentication).
    async fn installation_id(&self) -> Result<u64, GitHubError> {
        #[derive(Deserialize)]
        struct Installation {
            id: u64,
        }
        let path = format!("{}/installation", self.repo_path());
        let i: Installation = self.call(Method::Get, &path, None).await?;
        Ok(i.id)
    }
}

/// Characters a path segment keeps as they are: RFC 3986's unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment.
pub(super) fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("dependabot[bot]"), "dependabot%5Bbot%5D");
    }
}
