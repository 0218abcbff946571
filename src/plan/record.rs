//! Plan records: every plan is kept, as its JSON document, so that apply can execute exactly
//! what was reviewed. Records live in a data directory as `plans/<plan id>.json`.

use std::path::{Path, PathBuf};

use super::model::Plan;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("writing plan record {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading plan record {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plan record {path} is not a plan: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Where the record of plan `id` lives under `data_dir`.
pub fn path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("plans").join(format!("{id}.json"))
}

/// Saves a plan record. The file is written whole and then renamed into place, so a crash
/// never leaves half a record.
pub fn save(data_dir: &Path, plan: &Plan) -> Result<PathBuf, RecordError> {
    let target = path(data_dir, &plan.id);
    let dir = target.parent().expect("records live in a directory");
    let write = |e| RecordError::Write {
        path: target.clone(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let tmp = dir.join(format!(".{}.tmp", plan.id));
    let text = serde_json::to_string_pretty(plan).expect("plans serialize");
    std::fs::write(&tmp, text).map_err(write)?;
    std::fs::rename(&tmp, &target).map_err(write)?;
    Ok(target)
}

/// Loads the record of plan `id`.
pub fn load(data_dir: &Path, id: &str) -> Result<Plan, RecordError> {
    let p = path(data_dir, id);
    let text = std::fs::read_to_string(&p).map_err(|source| RecordError::Read {
        path: p.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| RecordError::Parse { path: p, source })
}
