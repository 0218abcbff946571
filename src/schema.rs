//! JSON Schemas for the config files, generated from the same types that read them, so that
//! editors can complete and check `pipeline.yml`, `environment.yml`, `policies/policies.yml`
//! and the server's settings.

use serde_json::Value;

use crate::config::{EnvironmentFile, PipelineFile};

/// The file name each schema is written to by `formwork schema --write DIR`.
pub const PIPELINE_SCHEMA_FILE: &str = "pipeline.schema.json";
pub const ENVIRONMENT_SCHEMA_FILE: &str = "environment.schema.json";
pub const SERVER_SCHEMA_FILE: &str = "server.schema.json";
pub const POLICIES_SCHEMA_FILE: &str = "policies.schema.json";

/// The JSON Schema of `pipelines/<name>/pipeline.yml`.
pub fn pipeline_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(PipelineFile)).expect("schema serializes")
}

/// The JSON Schema of `environments/<name>/environment.yml`.
pub fn environment_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(EnvironmentFile)).expect("schema serializes")
}

/// The JSON Schema of `policies/policies.yml`.
pub fn policies_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::config::PoliciesFile))
        .expect("schema serializes")
}

/// The JSON Schema of `formwork-server.yml` (`formwork serve --config`).
pub fn server_schema() -> Value {
    crate::serve::config::schema()
}

/// Every schema with the file name it is written to, as text (`formwork schema --write`,
/// `formwork init`).
pub fn files() -> [(&'static str, String); 4] {
    [
        (PIPELINE_SCHEMA_FILE, to_text(&pipeline_schema())),
        (ENVIRONMENT_SCHEMA_FILE, to_text(&environment_schema())),
        (SERVER_SCHEMA_FILE, to_text(&server_schema())),
        (POLICIES_SCHEMA_FILE, to_text(&policies_schema())),
    ]
}

/// A schema as the pretty-printed text written to disk (with a final newline).
pub fn to_text(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schema serializes");
    s.push('\n');
    s
}
