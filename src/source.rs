//! Where config files are read from: a git revision (straight from the object database, no
//! checkout, works on bare clones) or a directory on disk (to validate uncommitted work).
//! Paths are relative to the repository root and use `/`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use git2::{ObjectType, Oid, Repository, Tree};

/// A failure to read the config repository itself (not a problem in the config).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Read access to one version of the config repository.
pub trait Source {
    /// What this is, for messages: `commit 1a2b3c4` or `working tree /path`.
    fn describe(&self) -> String;

    /// The bytes of a file, `None` when there is no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;

    /// The names of the directories directly inside `dir`, sorted.
    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError>;

    /// An id that is equal for equal contents (a git blob id), when the source has one. Used to
    /// parse a template once however many revisions and stacks share it.
    fn content_id(&self, path: &str) -> Option<String>;
}

/// A revision of a git repository. Directory trees are looked up once and kept, so reading
/// many files of one large directory (`environments/` with hundreds of entries) stays cheap.
pub struct GitTree<'r> {
    repo: &'r Repository,
    root: Tree<'r>,
    label: String,
    trees: RefCell<HashMap<String, Option<Tree<'r>>>>,
}

impl<'r> GitTree<'r> {
    pub fn new(repo: &'r Repository, root: Tree<'r>, label: String) -> GitTree<'r> {
        GitTree {
            repo,
            root,
            label,
            trees: RefCell::new(HashMap::new()),
        }
    }

    /// The tree of directory `dir` (`""` for the root).
    fn subtree(&self, dir: &str) -> Option<Tree<'r>> {
        if dir.is_empty() {
            return Some(self.root.clone());
        }
        if let Some(t) = self.trees.borrow().get(dir) {
            return t.clone();
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let tree = self.subtree(parent).and_then(|p| {
            let entry = p.get_name(name)?;
            (entry.kind() == Some(ObjectType::Tree))
                .then(|| self.repo.find_tree(entry.id()).ok())
                .flatten()
        });
        self.trees
            .borrow_mut()
            .insert(dir.to_string(), tree.clone());
        tree
    }

    fn entry_id(&self, path: &str, kind: ObjectType) -> Option<Oid> {
        if path.is_empty() {
            return (kind == ObjectType::Tree).then(|| self.root.id());
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let tree = self.subtree(dir)?;
        let entry = tree.get_name(name)?;
        (entry.kind() == Some(kind)).then(|| entry.id())
    }
}

impl Source for GitTree<'_> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.entry_id(path, ObjectType::Blob) {
            Some(id) => Ok(Some(self.repo.find_blob(id)?.content().to_vec())),
            None => Ok(None),
        }
    }

    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        let Some(tree) = self.subtree(dir) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = tree
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    fn content_id(&self, path: &str) -> Option<String> {
        self.entry_id(path, ObjectType::Blob)
            .map(|id| id.to_string())
    }
}

/// A directory on disk.
pub struct Directory {
    root: PathBuf,
}

impl Directory {
    pub fn new(root: impl Into<PathBuf>) -> Directory {
        Directory { root: root.into() }
    }
}

impl Source for Directory {
    fn describe(&self) -> String {
        format!("working tree {}", self.root.display())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let full = self.root.join(path);
        match std::fs::read(&full) {
            Ok(b) => Ok(Some(b)),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory
                    || full.is_dir() =>
            {
                Ok(None)
            }
            Err(e) => Err(SourceError::Io {
                path: full,
                source: e,
            }),
        }
    }

    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        let full = self.root.join(dir);
        let entries = match std::fs::read_dir(&full) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(SourceError::Io {
                    path: full,
                    source: e,
                });
            }
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|source| SourceError::Io {
                path: full.clone(),
                source,
            })?;
            if e.path().is_dir()
                && let Some(n) = e.file_name().to_str()
            {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn content_id(&self, _path: &str) -> Option<String> {
        None
    }
}

/// Joins a relative path onto a directory and removes `.` and `..`; `None` when the result
/// would leave the repository.
pub fn join_path(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_normalises() {
        assert_eq!(
            join_path("pipelines/p", "templates/vpc.yml").as_deref(),
            Some("pipelines/p/templates/vpc.yml")
        );
        assert_eq!(
            join_path("pipelines/p", "../shared/./t.yml").as_deref(),
            Some("pipelines/shared/t.yml")
        );
        assert_eq!(join_path("pipelines/p", "../../../etc/passwd"), None);
    }
}
