//! Git: opening the config repository, naming revisions, and which paths differ between two.

use std::path::Path;

use git2::{Commit, ObjectType, Repository, Tree};

use crate::source::GitTree;

/// A problem with the repository or a revision, phrased for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not inside a git repository ({source})")]
    NotARepository { path: String, source: git2::Error },
    #[error("revision `{rev}` not found in the repository{hint}")]
    UnknownRevision { rev: String, hint: String },
    #[error("`{a}` and `{b}` have no common history in this clone{hint}")]
    NoMergeBase { a: String, b: String, hint: String },
    #[error("{prefix}/ does not exist in revision `{rev}`")]
    NoSuchDirectory { rev: String, prefix: String },
    #[error("`{rev}` is not a commit: it has no history to compare")]
    NotACommit { rev: String },
    #[error("the revision holds a file named `{path}`, which cannot be written out safely")]
    UnsafePath { path: String },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("git: {0}")]
    Other(#[from] git2::Error),
}

mod export;
pub use export::export_tree;

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
    relative_path(&dir, &workdir)
}

/// `inner`'s path from `outer`, with `/` separators; empty when `inner` is not inside it.
pub fn relative_path(inner: &Path, outer: &Path) -> String {
    inner
        .strip_prefix(outer)
        .map(|rel| {
            rel.components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

/// The commit where two revisions' histories meet (what a pull request is compared against:
/// the base branch as it was when the head branched off, or last merged in).
pub fn merge_base(repo: &Repository, a: &str, b: &str) -> Result<String, GitError> {
    let a = Revision::resolve(repo, a)?.commit_id()?;
    let b = Revision::resolve(repo, b)?.commit_id()?;
    match repo.merge_base(a, b) {
        Ok(id) => Ok(id.to_string()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Err(GitError::NoMergeBase {
            a: a.to_string(),
            b: b.to_string(),
            hint: if repo.is_shallow() {
                format!("; {SHALLOW_HINT}")
            } else {
                String::new()
            },
        }),
        Err(e) => Err(e.into()),
    }
}

/// What to do in a shallow clone, where the commits formwork compares with are missing.
const SHALLOW_HINT: &str = "this is a shallow clone, which holds only the newest commits: fetch the history (`fetch-depth: 0` for actions/checkout, or `git fetch --unshallow`)";

/// Why a revision may be missing and what to do: a shallow clone, a branch of the remote not
/// fetched, or a name git does not understand.
fn unknown_revision_hint(repo: &Repository, e: &git2::Error) -> String {
    if repo.is_shallow() {
        format!("; {SHALLOW_HINT}")
    } else if e.code() == git2::ErrorCode::NotFound || e.class() == git2::ErrorClass::Reference {
        "; check the name, and fetch it first if it is a branch of the remote (`git fetch origin`)"
            .to_string()
    } else {
        format!(" ({})", e.message())
    }
}

/// Git's empty tree: as a revision, "nothing", the state before the first commit (what
/// `git diff 4b825dc642cb6eb9a060e54bf8d69288fbee4904` compares with).
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// A resolved revision: the commit (none for [`Revision::nothing`]) and how the user named it.
pub struct Revision<'r> {
    pub name: String,
    commit: Option<Commit<'r>>,
}

impl<'r> Revision<'r> {
    /// Resolves anything `git rev-parse` would (`main`, `HEAD~2`, a sha, a tag), and
    /// [`EMPTY_TREE`] as [`Revision::nothing`].
    pub fn resolve(repo: &'r Repository, rev: &str) -> Result<Revision<'r>, GitError> {
        if rev == EMPTY_TREE {
            return Ok(Revision::nothing());
        }
        let commit = repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| GitError::UnknownRevision {
                rev: rev.to_string(),
                hint: unknown_revision_hint(repo, &e),
            })?;
        Ok(Revision {
            name: rev.to_string(),
            commit: Some(commit),
        })
    }

    /// Nothing: a revision with no files, compared with which every stack is new.
    pub fn nothing() -> Revision<'r> {
        Revision {
            name: "nothing".to_string(),
            commit: None,
        }
    }

    /// The commit; an error for [`Revision::nothing`].
    pub fn commit(&self) -> Result<&Commit<'r>, GitError> {
        self.commit.as_ref().ok_or_else(|| GitError::NotACommit {
            rev: self.name.clone(),
        })
    }

    /// The commit's id; an error for [`Revision::nothing`].
    pub fn commit_id(&self) -> Result<git2::Oid, GitError> {
        Ok(self.commit()?.id())
    }

    /// The full commit id ([`EMPTY_TREE`] for [`Revision::nothing`]).
    pub fn id(&self) -> String {
        match &self.commit {
            Some(c) => c.id().to_string(),
            None => EMPTY_TREE.to_string(),
        }
    }

    /// The first seven characters of the commit id.
    pub fn short_id(&self) -> String {
        self.id()[..7].to_string()
    }

    /// The tree of the config repository in this revision: the root tree, or the subtree at
    /// `prefix` (see [`config_prefix`]).
    pub fn tree(&self, repo: &'r Repository, prefix: &str) -> Result<git2::Tree<'r>, GitError> {
        let Some(commit) = &self.commit else {
            return empty_tree(repo);
        };
        let root = commit.tree()?;
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

/// The empty tree (libgit2 knows it without its being in the object database).
fn empty_tree(repo: &Repository) -> Result<Tree<'_>, GitError> {
    Ok(repo.find_tree(git2::Oid::from_str(EMPTY_TREE)?)?)
}

/// The paths under `prefix` that differ between two revisions (added, deleted or modified),
/// relative to `prefix`, sorted. Subtrees with equal ids on both sides are skipped without being
/// read, so the cost follows the size of the change, not of the repository.
pub fn changed_paths(
    repo: &Repository,
    base: &Revision<'_>,
    head: &Revision<'_>,
    prefix: &str,
) -> Result<Vec<String>, GitError> {
    let a = base.tree(repo, prefix)?;
    let b = head.tree(repo, prefix)?;
    let mut out = Vec::new();
    diff_trees(repo, Some(&a), Some(&b), "", &mut out)?;
    out.sort();
    Ok(out)
}

/// Git's order of tree entries: by name, a directory's name read as if it ended in `/`.
fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        std::cmp::Ordering::Equal => {
            let next = |name: &[u8], tree: bool| match name.get(n) {
                Some(c) => Some(*c),
                None if tree => Some(b'/'),
                None => None,
            };
            next(a, a_tree).cmp(&next(b, b_tree))
        }
        other => other,
    }
}

/// One side of a tree entry: id, whether it is a tree, file mode.
type Side = Option<(git2::Oid, bool, i32)>;

/// Walks two trees in step (both are sorted in git's order), descending only into subtrees that
/// differ.
fn diff_trees(
    repo: &Repository,
    a: Option<&Tree<'_>>,
    b: Option<&Tree<'_>>,
    dir: &str,
    out: &mut Vec<String>,
) -> Result<(), GitError> {
    if let (Some(a), Some(b)) = (a, b)
        && a.id() == b.id()
    {
        return Ok(());
    }
    let mut ai = a.into_iter().flat_map(|t| t.iter()).peekable();
    let mut bi = b.into_iter().flat_map(|t| t.iter()).peekable();
    let side = |e: &git2::TreeEntry<'_>| -> Side {
        Some((e.id(), e.kind() == Some(ObjectType::Tree), e.filemode()))
    };
    loop {
        let order = match (ai.peek(), bi.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => git_order(
                x.name_bytes(),
                x.kind() == Some(ObjectType::Tree),
                y.name_bytes(),
                y.kind() == Some(ObjectType::Tree),
            ),
        };
        let (ea, eb) = match order {
            std::cmp::Ordering::Less => (ai.next(), None),
            std::cmp::Ordering::Greater => (None, bi.next()),
            std::cmp::Ordering::Equal => (ai.next(), bi.next()),
        };
        let sides: [Side; 2] = [ea.as_ref().and_then(side), eb.as_ref().and_then(side)];
        if sides[0] == sides[1] {
            continue;
        }
        let name = ea
            .as_ref()
            .or(eb.as_ref())
            .map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned())
            .unwrap_or_default();
        let path = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        let tree_of = |s: &Side| -> Result<Option<Tree<'_>>, GitError> {
            match s {
                Some((id, true, _)) => Ok(Some(repo.find_tree(*id)?)),
                _ => Ok(None),
            }
        };
        let (ta, tb) = (tree_of(&sides[0])?, tree_of(&sides[1])?);
        if ta.is_none() && tb.is_none() {
            out.push(path);
        } else {
            diff_trees(repo, ta.as_ref(), tb.as_ref(), &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_lists_added_removed_and_modified_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let commit = |files: &[(&str, &str)], parent: Option<git2::Oid>| -> git2::Oid {
            let mut index = git2::Index::new().unwrap();
            for (path, text) in files {
                let id = repo.blob(text.as_bytes()).unwrap();
                let mut e = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    file_size: text.len() as u32,
                    id,
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                };
                e.flags = (path.len() as u16) & 0xfff;
                index.add(&e).unwrap();
            }
            let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
            let parents: Vec<git2::Commit> = parent
                .into_iter()
                .map(|p| repo.find_commit(p).unwrap())
                .collect();
            let refs: Vec<&git2::Commit> = parents.iter().collect();
            repo.commit(None, &sig, &sig, "c", &tree, &refs).unwrap()
        };
        let a = commit(
            &[
                ("a/x.yml", "1"),
                ("a/y.yml", "2"),
                ("b/z.yml", "3"),
                ("c/d/e.yml", "4"),
                ("top", "5"),
            ],
            None,
        );
        let b = commit(
            &[
                ("a/x.yml", "1"),
                ("a/y.yml", "22"),
                ("b", "now a file"),
                ("c/d/e.yml", "4"),
                ("new/n.yml", "6"),
            ],
            Some(a),
        );
        let ra = Revision {
            name: "a".into(),
            commit: Some(repo.find_commit(a).unwrap()),
        };
        let rb = Revision {
            name: "b".into(),
            commit: Some(repo.find_commit(b).unwrap()),
        };
        let changed = changed_paths(&repo, &ra, &rb, "").unwrap();
        assert_eq!(changed, ["a/y.yml", "b", "b/z.yml", "new/n.yml", "top"]);
        assert_eq!(changed_paths(&repo, &ra, &rb, "a").unwrap(), ["y.yml"]);
        assert!(changed_paths(&repo, &ra, &ra, "").unwrap().is_empty());

        // From nothing, every file is new, under a prefix too; nothing has no history.
        let nothing = Revision::resolve(&repo, EMPTY_TREE).unwrap();
        assert_eq!(nothing.name, "nothing");
        assert_eq!(nothing.id(), EMPTY_TREE);
        assert_eq!(
            changed_paths(&repo, &nothing, &rb, "").unwrap(),
            ["a/x.yml", "a/y.yml", "b", "c/d/e.yml", "new/n.yml"]
        );
        assert_eq!(
            changed_paths(&repo, &nothing, &rb, "a").unwrap(),
            ["x.yml", "y.yml"]
        );
        assert!(matches!(
            nothing.commit_id(),
            Err(GitError::NotACommit { .. })
        ));
    }
}
