//! What apply requirements are judged with from the config repository: the environment's
//! requirements as the base of the change has them (so a change cannot loosen its own; an
//! environment the change creates brings its own), and, for code owners, the paths the change
//! touches and the base's `CODEOWNERS`.

use super::Changes;
use super::codeowners::{self, CodeOwners};
use crate::config::{Loader, ParseCache, apply_requirements};
use crate::desired::ApplyRequirements;
use crate::diag::Diagnostics;
use crate::git::{self, Revision};
use crate::source::{GitTree, Source};
use crate::workflow::{ConfigRepo, WorkflowError};

/// A change as requirements see it.
pub struct Change<'a> {
    /// What the change is judged against: the base branch's head for an open pull request,
    /// the commit before a merge; `None` when there is nothing before it.
    pub base: Option<&'a str>,
    /// Where the changed paths are counted from (the merge base of an open pull request).
    pub from: Option<&'a str>,
    pub head: &'a str,
}

/// The requirements of `env` for `change`, and what it changes when code owners must approve.
pub fn read(
    repo: &ConfigRepo,
    env: &str,
    change: &Change<'_>,
) -> Result<(ApplyRequirements, Changes), WorkflowError> {
    repo.with(|r, prefix| {
        let req = match change
            .base
            .map(|b| requirements_at(r, prefix, b, env))
            .transpose()?
        {
            Some(Some(req)) => req,
            // The environment is new in the change (or its file at the base does not parse):
            // its own requirements.
            _ => requirements_at(r, prefix, change.head, env)?.unwrap_or_default(),
        };
        let mut changes = Changes::default();
        if req.approved.as_ref().is_some_and(|a| a.codeowners) {
            let head = Revision::resolve(r, change.head)?;
            let from = match change.from.or(change.base) {
                Some(rev) => Revision::resolve(r, rev)?,
                None => Revision::nothing(),
            };
            changes.paths = git::changed_paths(r, &from, &head, "")?;
            if let Some(base) = change.base {
                let src = Revision::resolve(r, base)?.source(r, "")?;
                changes.owners = code_owners(&src)?;
            }
        }
        Ok((req, changes))
    })
}

/// The requirements the environment file of `env` at `rev` sets (its file alone is read: a
/// broken pipeline at that revision does not hide them); `None` when it has no file there or
/// the file does not parse.
fn requirements_at(
    r: &git2::Repository,
    prefix: &str,
    rev: &str,
    env: &str,
) -> Result<Option<ApplyRequirements>, WorkflowError> {
    let src = Revision::resolve(r, rev)?.source(r, prefix)?;
    let cache = ParseCache::default();
    let mut loader = Loader::new(&src, &cache);
    Ok(loader
        .environment(env)?
        .map(|e| apply_requirements(&e, &mut Diagnostics::new())))
}

/// The first `CODEOWNERS` of GitHub's places, read.
fn code_owners(src: &GitTree<'_>) -> Result<Option<CodeOwners>, WorkflowError> {
    for path in codeowners::LOCATIONS {
        if let Some(bytes) = src.read(path)? {
            return Ok(Some(CodeOwners::parse(&String::from_utf8_lossy(&bytes))));
        }
    }
    Ok(None)
}
