//! Where config files are read from: a git revision (straight from the object database, no
//! checkout, works on bare clones) or a directory on disk (to validate uncommitted work).
//! Paths are relative to the repository root and use `/`.
//!
//! A config repository is written by many people, so a read is refused (never followed) when
//! the file is a symbolic link that leaves the repository, is not a regular file (a device, a
//! pipe), or is larger than [`MAX_FILE_BYTES`]; the refusal names the path, never the content.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use git2::{ObjectType, Oid, Repository, Tree};

/// The largest file formwork reads: 1 MiB. CloudFormation itself takes a template of at most
/// 1 MB from S3 (51,200 bytes inline), and config files are far smaller.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How many symbolic links one path may go through.
const MAX_LINKS: usize = 8;

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
    /// A file formwork will not read, whatever it holds.
    #[error("{path}: {reason}")]
    Refused { path: String, reason: Refusal },
}

/// Why a file is not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "it is a symbolic link to a place outside the repository; formwork reads only files inside it"
    )]
    LinkLeaves,
    #[error("it goes through more than {MAX_LINKS} symbolic links (a loop?)")]
    TooManyLinks,
    #[error("it is not a regular file (a device, a pipe or a socket)")]
    NotRegular,
    #[error("it is {size} bytes long; formwork reads files of at most {MAX_FILE_BYTES} bytes")]
    TooLarge { size: u64 },
}

impl Refusal {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            Refusal::LinkLeaves | Refusal::TooManyLinks => {
                "commit the file itself, or a link to a file inside the repository"
            }
            Refusal::NotRegular => "commit a regular file in its place",
            Refusal::TooLarge { .. } => {
                "split the template (nested stacks) or the config; files over 1 MiB are not read"
            }
        }
    }
}

impl SourceError {
    /// The refusal, when the file was refused rather than unreadable.
    pub fn refusal(&self) -> Option<(&str, &Refusal)> {
        match self {
            SourceError::Refused { path, reason } => Some((path, reason)),
            _ => None,
        }
    }
}

fn refused(path: &str, reason: Refusal) -> SourceError {
    SourceError::Refused {
        path: path.to_string(),
        reason,
    }
}

/// Read access to one version of the config repository.
pub trait Source {
    /// What this is, for messages: `commit 1a2b3c4` or `working tree /path`.
    fn describe(&self) -> String;

    /// The bytes of a file, `None` when there is no such file. Refused (see the module
    /// documentation) for links out of the repository, special files and large files.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;

    /// Whether there is something at `path` other than a directory (a file, or a link, even
    /// one that [`Source::read`] would refuse).
    fn exists(&self, path: &str) -> Result<bool, SourceError>;

    /// The names of the directories directly inside `dir`, sorted.
    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError>;

    /// The names of the entries other than directories directly inside `dir` (files and
    /// links, which [`Source::read`] judges when read), sorted.
    fn files(&self, dir: &str) -> Result<Vec<String>, SourceError>;

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

    /// The sorted names of the directories (`dirs`) or of the other entries inside `dir`.
    fn names_in(&self, dir: &str, dirs: bool) -> Vec<String> {
        let Some(tree) = self.subtree(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = tree
            .iter()
            .filter(|e| (e.kind() == Some(ObjectType::Tree)) == dirs)
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect();
        names.sort();
        names
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

    /// The blob at `path`, symbolic links (to files or directories) followed inside the tree:
    /// `None` when there is no such file.
    fn blob_id(&self, path: &str) -> Result<Option<Oid>, SourceError> {
        let mut at = path.to_string();
        let mut links = 0;
        'path: loop {
            let parts: Vec<&str> = at.split('/').filter(|p| !p.is_empty()).collect();
            let mut dir = String::new();
            for (i, name) in parts.iter().enumerate() {
                let Some(entry) = self
                    .subtree(&dir)
                    .and_then(|t| t.get_name(name).map(|e| (e.id(), e.kind(), e.filemode())))
                else {
                    return Ok(None);
                };
                let (id, kind, mode) = entry;
                if mode == LINK_MODE {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(refused(path, Refusal::TooManyLinks));
                    }
                    let blob = self.repo.find_blob(id)?;
                    let target = std::str::from_utf8(blob.content())
                        .ok()
                        .filter(|t| !t.starts_with('/'))
                        .and_then(|t| join_path(&dir, t))
                        .ok_or_else(|| refused(path, Refusal::LinkLeaves))?;
                    let rest = parts[i + 1..].join("/");
                    at = match (target.is_empty(), rest.is_empty()) {
                        (_, true) => target,
                        (true, false) => rest,
                        (false, false) => format!("{target}/{rest}"),
                    };
                    continue 'path;
                }
                if i + 1 == parts.len() {
                    return Ok((kind == Some(ObjectType::Blob)).then_some(id));
                }
                if kind != Some(ObjectType::Tree) {
                    return Ok(None);
                }
                dir = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
            }
            return Ok(None);
        }
    }
}

/// Git's file mode of a symbolic link.
const LINK_MODE: i32 = 0o120000;

impl Source for GitTree<'_> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(id) = self.blob_id(path)? else {
            return Ok(None);
        };
        let (size, _) = self.repo.odb()?.read_header(id)?;
        if size as u64 > MAX_FILE_BYTES {
            return Err(refused(path, Refusal::TooLarge { size: size as u64 }));
        }
        Ok(Some(self.repo.find_blob(id)?.content().to_vec()))
    }

    fn exists(&self, path: &str) -> Result<bool, SourceError> {
        match self.blob_id(path) {
            Ok(id) => Ok(id.is_some()),
            Err(SourceError::Refused { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        Ok(self.names_in(dir, true))
    }

    fn files(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        Ok(self.names_in(dir, false))
    }

    fn content_id(&self, path: &str) -> Option<String> {
        self.blob_id(path).ok().flatten().map(|id| id.to_string())
    }
}

/// A directory on disk.
pub struct Directory {
    root: PathBuf,
    /// The root with every link resolved, once.
    real_root: OnceLock<Option<PathBuf>>,
}

impl Directory {
    /// The sorted names of the directories (`dirs`) or of the other entries inside `dir`.
    fn names_in(&self, dir: &str, dirs: bool) -> Result<Vec<String>, SourceError> {
        let Some(full) = self.resolve(dir)? else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(&full) {
            Ok(e) => e,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                return Ok(Vec::new());
            }
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
            if e.path().is_dir() == dirs
                && let Some(n) = e.file_name().to_str()
            {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    pub fn new(root: impl Into<PathBuf>) -> Directory {
        Directory {
            root: root.into(),
            real_root: OnceLock::new(),
        }
    }

    /// Where `path` really is, when that is inside the root: `None` when there is nothing
    /// there.
    fn resolve(&self, path: &str) -> Result<Option<PathBuf>, SourceError> {
        let full = self.root.join(path);
        let io = |source| SourceError::Io {
            path: full.clone(),
            source,
        };
        let real = match std::fs::canonicalize(&full) {
            Ok(r) => r,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                return Ok(None);
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refused(path, Refusal::TooManyLinks));
            }
            Err(e) => return Err(io(e)),
        };
        let root = self
            .real_root
            .get_or_init(|| std::fs::canonicalize(&self.root).ok());
        match root {
            Some(root) if real.starts_with(root) => Ok(Some(real)),
            Some(_) => Err(refused(path, Refusal::LinkLeaves)),
            None => Err(io(std::io::Error::other(
                "the repository directory cannot be resolved",
            ))),
        }
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] bytes (checked before it is opened, so
/// that a pipe is never waited on, and again while reading, for files whose size is not
/// known ahead, such as those under /proc).
fn read_regular(real: &Path, path: &str) -> Result<Vec<u8>, SourceError> {
    let io = |source| SourceError::Io {
        path: real.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(real).map_err(io)?;
    if !meta.is_file() {
        return Err(refused(path, Refusal::NotRegular));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(refused(path, Refusal::TooLarge { size: meta.len() }));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(real)
        .map_err(io)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(refused(
            path,
            Refusal::TooLarge {
                size: bytes.len() as u64,
            },
        ));
    }
    Ok(bytes)
}

impl Source for Directory {
    fn describe(&self) -> String {
        format!("working tree {}", self.root.display())
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.resolve(path)? {
            Some(real) if real.is_dir() => Ok(None),
            Some(real) => read_regular(&real, path).map(Some),
            None => Ok(None),
        }
    }

    fn exists(&self, path: &str) -> Result<bool, SourceError> {
        let full = self.root.join(path);
        Ok(std::fs::symlink_metadata(&full).is_ok_and(|m| !m.is_dir()))
    }

    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        self.names_in(dir, true)
    }

    fn files(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        self.names_in(dir, false)
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
