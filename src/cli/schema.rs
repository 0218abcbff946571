//! `formwork schema`: JSON Schemas of the config files.

use std::path::PathBuf;

use anyhow::{Context, Result};

use formwork::schema;

use super::emit;
use crate::SchemaKind;

pub fn run(kind: Option<SchemaKind>, write: Option<PathBuf>) -> Result<u8> {
    if let Some(dir) = write {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, text) in schema::files() {
            let path = dir.join(file);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(0);
    }
    let s = match kind {
        Some(SchemaKind::Environment) => schema::environment_schema(),
        Some(SchemaKind::Server) => schema::server_schema(),
        Some(SchemaKind::Policies) => schema::policies_schema(),
        Some(SchemaKind::Pipeline) | None => schema::pipeline_schema(),
    };
    emit(&schema::to_text(&s))?;
    Ok(0)
}
