//! Git: opening the config repository, naming revisions, and which paths differ between two.

use std::path::Path;

use git2::{Commit, DiffOptions, Repository};

use crate::source::GitTree;

/// A problem with the repository or a revision, phrased for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not inside a git repository ({source})")]
    NotARepository { path: String, source: git2::Error },
    #[error("revision `{rev}` not found in the repository ({source})")]
    UnknownRevision { rev: String, source: git2::Error },
    #[error("{prefix}/ does not exist in revision `{rev}`")]
    NoSuchDirectory { rev: String, prefix: String },
    #[error("git: {0}")]
    Other(#[from] git2::Error),
}

/// Opens the repository containing `path` (a work tree or a bare repository).
pub fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::discover(path).map_err(|source| GitError::NotARepository {
        path: path.display().to_string(),
        source,
    })
}

/// Where the config repository sits inside the git repository: the path from the work tree's
/// root to `dir` (`""` when they are the same, or for a bare repository), with `/` separators.
pub fn config_prefix(repo: &Repository, dir: &Path) -> String {
    let (Some(workdir), Ok(dir)) = (repo.workdir(), dir.canonicalize()) else {
        return String::new();
    };
    let Ok(workdir) = workdir.canonicalize() else {
        return String::new();
    };
    dir.strip_prefix(&workdir)
        .map(|rel| {
            rel.components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

/// A resolved revision: the commit and how the user named it.
pub struct Revision<'r> {
    pub name: String,
    pub commit: Commit<'r>,
}

impl<'r> Revision<'r> {
    /// Resolves anything `git rev-parse` would (`main`, `HEAD~2`, a sha, a tag).
    pub fn resolve(repo: &'r Repository, rev: &str) -> Result<Revision<'r>, GitError> {
        let commit = repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|source| GitError::UnknownRevision {
                rev: rev.to_string(),
                source,
            })?;
        Ok(Revision {
            name: rev.to_string(),
            commit,
        })
    }

    /// The full commit id.
    pub fn id(&self) -> String {
        self.commit.id().to_string()
    }

    /// The first seven characters of the commit id.
    pub fn short_id(&self) -> String {
        self.id()[..7].to_string()
    }

    /// The tree of the config repository in this revision: the root tree, or the subtree at
    /// `prefix` (see [`config_prefix`]).
    pub fn tree(&self, repo: &'r Repository, prefix: &str) -> Result<git2::Tree<'r>, GitError> {
        let root = self.commit.tree()?;
        if prefix.is_empty() {
            return Ok(root);
        }
        let missing = || GitError::NoSuchDirectory {
            rev: self.name.clone(),
            prefix: prefix.to_string(),
        };
        let entry = root.get_path(Path::new(prefix)).map_err(|_| missing())?;
        repo.find_tree(entry.id()).map_err(|_| missing())
    }

    /// The files of the config repository in this revision.
    pub fn source(&self, repo: &'r Repository, prefix: &str) -> Result<GitTree<'r>, GitError> {
        Ok(GitTree::new(
            repo,
            self.tree(repo, prefix)?,
            format!("{} ({})", self.name, self.short_id()),
        ))
    }
}

/// The paths under `prefix` that differ between two revisions (added, deleted or modified),
/// relative to `prefix`. Only the subtrees whose ids differ are read, so the cost follows the
/// size of the change, not of the repository.
pub fn changed_paths(
    repo: &Repository,
    base: &Revision<'_>,
    head: &Revision<'_>,
    prefix: &str,
) -> Result<Vec<String>, GitError> {
    let a = base.tree(repo, prefix)?;
    let b = head.tree(repo, prefix)?;
    let mut opts = DiffOptions::new();
    opts.skip_binary_check(true);
    let diff = repo.diff_tree_to_tree(Some(&a), Some(&b), Some(&mut opts))?;
    let mut out = Vec::new();
    for delta in diff.deltas() {
        for f in [delta.old_file(), delta.new_file()] {
            if let Some(p) = f.path().and_then(Path::to_str) {
                if out.last().map(String::as_str) != Some(p) {
                    out.push(p.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
