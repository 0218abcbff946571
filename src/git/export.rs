//! Writing the files of a revision's config tree out to a directory, for commands that need a
//! checkout of exactly the commit applied (hooks). Regular files keep their executable bit;
//! symbolic links and submodules are left out, and a name that could leave the directory is
//! refused.

use std::path::Path;

use git2::{ObjectType, Repository, Tree};

use super::GitError;

/// Git's mode of an executable file.
const EXECUTABLE: i32 = 0o100_755;

/// Writes every regular file of `tree` under `dir` (which must exist); returns how many.
pub fn export_tree(repo: &Repository, tree: &Tree<'_>, dir: &Path) -> Result<usize, GitError> {
    let mut written = 0;
    for entry in tree.iter() {
        let Ok(name) = entry.name() else { continue };
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(GitError::UnsafePath {
                path: name.to_string(),
            });
        }
        let path = dir.join(name);
        match entry.kind() {
            Some(ObjectType::Tree) => {
                std::fs::create_dir(&path).map_err(|e| write_error(&path, e))?;
                let sub = repo.find_tree(entry.id())?;
                written += export_tree(repo, &sub, &path)?;
            }
            Some(ObjectType::Blob) if entry.filemode() & 0o170_000 == 0o100_000 => {
                let blob = repo.find_blob(entry.id())?;
                std::fs::write(&path, blob.content()).map_err(|e| write_error(&path, e))?;
                if entry.filemode() == EXECUTABLE {
                    set_executable(&path)?;
                }
                written += 1;
            }
            // Symbolic links (which could point outside) and submodules are left out.
            _ => {}
        }
    }
    Ok(written)
}

fn write_error(path: &Path, source: std::io::Error) -> GitError {
    GitError::Write {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<(), GitError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| write_error(path, e))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<(), GitError> {
    Ok(())
}
