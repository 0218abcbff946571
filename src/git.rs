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

    /// The files of this revision.
    pub fn source(&self, repo: &'r Repository) -> Result<GitTree<'r>, GitError> {
        Ok(GitTree::new(
            repo,
            self.commit.tree()?,
            format!("{} ({})", self.name, self.short_id()),
        ))
    }
}

/// The paths that differ between two revisions (added, deleted or modified). Only the subtrees
/// whose ids differ are read, so the cost follows the size of the change, not of the repository.
pub fn changed_paths(
    repo: &Repository,
    base: &Revision<'_>,
    head: &Revision<'_>,
) -> Result<Vec<String>, GitError> {
    let a = base.commit.tree()?;
    let b = head.commit.tree()?;
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
