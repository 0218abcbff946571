//! The agent's clone of the config repository: a bare repository in its data directory, kept
//! current with incremental fetches of the default branch and of every pull request's head
//! (`refs/pull/N/head`, which GitHub publishes for pull requests from forks too).
//!
//! Fetching runs the `git` command (it speaks every transport and credential helper); reading
//! is done by libgit2 elsewhere. For `https://` remotes the GitHub token goes to git as an HTTP
//! header through git's `GIT_CONFIG_*` environment variables: never in a URL, a command line or
//! a file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::secrets::Masker;

/// What a fetch found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heads {
    /// The default branch's commit.
    pub default_branch: Option<String>,
    /// Each pull request's head commit, by number.
    pub pulls: BTreeMap<u64, String>,
}

/// The clone.
#[derive(Clone, Debug)]
pub struct Mirror {
    pub dir: PathBuf,
    url: String,
    branch: String,
}

#[derive(Debug, thiserror::Error)]
#[error("git {what}: {message}")]
pub struct MirrorError {
    what: String,
    message: String,
}

impl Mirror {
    pub fn new(dir: PathBuf, url: &str, branch: &str) -> Mirror {
        Mirror {
            dir,
            url: url.to_string(),
            branch: branch.to_string(),
        }
    }

    /// Makes the bare repository and its remote, once.
    pub fn ensure(&self) -> Result<(), MirrorError> {
        if self.dir.join("HEAD").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| MirrorError {
            what: "init".into(),
            message: format!("creating {}: {e}", self.dir.display()),
        })?;
        self.git(&["init", "--bare", "--quiet"], None, "init")?;
        self.git(&["remote", "add", "origin", &self.url], None, "remote add")?;
        Ok(())
    }

    /// Fetches the default branch and the pull requests' heads; returns what is there now.
    pub fn fetch(&self, token: Option<&str>, masker: &Masker) -> Result<Heads, MirrorError> {
        let branch_spec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        let r = self.git(
            &[
                "fetch",
                "--quiet",
                "--prune",
                "--no-tags",
                "origin",
                &branch_spec,
                "+refs/pull/*/head:refs/pull/*/head",
            ],
            token,
            "fetch",
        );
        if let Err(e) = r {
            return Err(MirrorError {
                what: e.what,
                message: masker.scrub(&e.message),
            });
        }
        self.heads()
    }

    /// The commits the clone holds for the default branch and the pull requests.
    pub fn heads(&self) -> Result<Heads, MirrorError> {
        let err = |e: git2::Error| MirrorError {
            what: "read".into(),
            message: e.message().to_string(),
        };
        let repo = git2::Repository::open_bare(&self.dir).map_err(err)?;
        let mut heads = Heads::default();
        if let Ok(r) = repo.find_reference(&format!("refs/heads/{}", self.branch))
            && let Ok(c) = r.peel_to_commit()
        {
            heads.default_branch = Some(c.id().to_string());
        }
        for r in repo.references_glob("refs/pull/*/head").map_err(err)? {
            let Ok(r) = r else { continue };
            let Ok(name) = r.name() else { continue };
            let Some(n) = name
                .strip_prefix("refs/pull/")
                .and_then(|s| s.strip_suffix("/head"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if let Ok(c) = r.peel_to_commit() {
                heads.pulls.insert(n, c.id().to_string());
            }
        }
        Ok(heads)
    }

    fn git(&self, args: &[&str], token: Option<&str>, what: &str) -> Result<(), MirrorError> {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        if let Some(t) = token.filter(|_| self.url.starts_with("https://")) {
            let basic = base64_encode(format!("x-access-token:{t}").as_bytes());
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        let out = cmd.output().map_err(|e| MirrorError {
            what: what.into(),
            message: format!("cannot run git: {e} (the agent needs git on its PATH)"),
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(MirrorError {
                what: what.into(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn base64_as_the_rfc_says() {
        // RFC 4648, section 10.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn fetches_the_branch_and_pull_request_heads_incrementally() {
        let remote = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        git(remote.path(), &["init", "--bare", "--quiet", "-b", "main"]);
        git(work.path(), &["init", "--quiet", "-b", "main"]);
        std::fs::write(work.path().join("a"), "1").unwrap();
        git(work.path(), &["add", "a"]);
        git(work.path(), &["commit", "--quiet", "-m", "one"]);
        let remote_url = remote.path().to_str().unwrap();
        git(work.path(), &["push", "--quiet", remote_url, "main"]);
        std::fs::write(work.path().join("a"), "2").unwrap();
        git(work.path(), &["commit", "--quiet", "-am", "two"]);
        git(
            work.path(),
            &["push", "--quiet", remote_url, "HEAD:refs/pull/7/head"],
        );

        let data = tempfile::tempdir().unwrap();
        let m = Mirror::new(data.path().join("repo.git"), remote_url, "main");
        m.ensure().unwrap();
        m.ensure().unwrap();
        let masker = Masker::new();
        let h = m.fetch(None, &masker).unwrap();
        assert!(h.default_branch.is_some());
        assert_eq!(h.pulls.len(), 1);
        assert_ne!(Some(&h.pulls[&7]), h.default_branch.as_ref());

        // The pull request is merged: main moves, the pull ref stays.
        git(work.path(), &["push", "--quiet", remote_url, "HEAD:main"]);
        let h2 = m.fetch(None, &masker).unwrap();
        assert_eq!(h2.default_branch.as_ref(), Some(&h.pulls[&7]));
    }

    #[test]
    fn a_bad_remote_is_a_clear_error_without_the_token() {
        let data = tempfile::tempdir().unwrap();
        let m = Mirror::new(
            data.path().join("repo.git"),
            "/nonexistent/repo.git",
            "main",
        );
        m.ensure().unwrap();
        let masker = Masker::new();
        masker.add("ghs_sekret_token_123");
        let e = m.fetch(Some("ghs_sekret_token_123"), &masker).unwrap_err();
        assert!(e.to_string().starts_with("git fetch:"), "{e}");
        assert!(!e.to_string().contains("ghs_sekret"));
    }
}
