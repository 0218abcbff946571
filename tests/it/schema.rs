//! The JSON Schemas of the config files: committed copies are current, and the schemas agree
//! with the parser on real config files, accepted and refused.

use crate::common;

use std::path::Path;

use formwork::schema;
use serde_json::Value;

fn project(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A YAML config file as the JSON document a schema-aware editor would check.
fn yaml_as_json(text: &str) -> Value {
    let node = formwork::yaml::parse(text).expect("valid YAML");
    formwork::yaml::from_node(&node).expect("JSON-compatible YAML")
}

/// `schemas/` holds exactly what `formwork schema --write` writes, file for file.
#[test]
fn committed_schemas_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let run = common::formwork(
        Path::new("."),
        &["schema", "--write", out.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let committed = project("schemas");
    assert_eq!(
        names(&committed),
        names(&out),
        "schemas/ and what `formwork schema --write` writes differ in their files"
    );
    for file in names(&out) {
        assert_eq!(
            std::fs::read_to_string(committed.join(&file)).unwrap(),
            std::fs::read_to_string(out.join(&file)).unwrap(),
            "schemas/{file} is out of date: run `formwork schema --write schemas`"
        );
    }
    for (file, generated) in [
        (schema::PIPELINE_SCHEMA_FILE, schema::pipeline_schema()),
        (
            schema::ENVIRONMENT_SCHEMA_FILE,
            schema::environment_schema(),
        ),
    ] {
        let written = std::fs::read_to_string(out.join(file)).unwrap();
        assert_eq!(written, schema::to_text(&generated), "{file}");
    }
}

#[test]
fn schemas_document_every_field() {
    fn walk(v: &Value, path: &str) {
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                assert!(
                    p.get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.is_empty()),
                    "{path}.{name} has no description"
                );
            }
        }
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
            Value::Array(a) => a.iter().for_each(|x| walk(x, path)),
            _ => {}
        }
    }
    walk(&schema::pipeline_schema(), "pipeline");
    walk(&schema::environment_schema(), "environment");
}

fn check(schema: &Value, doc: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[test]
fn the_example_config_files_satisfy_the_schemas() {
    let pipeline = schema::pipeline_schema();
    let environment = schema::environment_schema();
    let mut files = vec![
        (
            pipeline.clone(),
            std::fs::read_to_string(project("pipelines/placeos/pipeline.yml")).unwrap(),
        ),
        (pipeline.clone(), common::PIPELINE.to_string()),
        (environment.clone(), common::STAGING.to_string()),
        (environment.clone(), common::PRODUCTION.to_string()),
    ];
    for env in ["staging", "production"] {
        files.push((
            environment.clone(),
            std::fs::read_to_string(project(&format!("environments/{env}/environment.yml")))
                .unwrap(),
        ));
    }
    for (schema, text) in files {
        check(&schema, &yaml_as_json(&text)).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn schema_and_parser_refuse_the_same_mistakes() {
    let pipeline = schema::pipeline_schema();
    let environment = schema::environment_schema();
    let bad_pipeline = common::PIPELINE.replace(
        "    template: templates/app.yml",
        "    tempalte: templates/app.yml",
    );
    let bad_env = common::STAGING.replace("region: us-east-1", "region: [us-east-1]");
    let bad_caps = common::PIPELINE.replace(
        "    template: templates/app.yml",
        "    template: templates/app.yml\n    capabilities: [CAPABILITY_IAMM]",
    );
    for (schema, text) in [
        (&pipeline, &bad_pipeline),
        (&environment, &bad_env),
        (&pipeline, &bad_caps),
    ] {
        assert!(
            check(schema, &yaml_as_json(text)).is_err(),
            "schema accepts:\n{text}"
        );
    }
    let r = common::Repo::shop();
    for (path, text) in [
        ("pipelines/shop/pipeline.yml", &bad_pipeline),
        ("environments/staging/environment.yml", &bad_env),
        ("pipelines/shop/pipeline.yml", &bad_caps),
    ] {
        r.write(path, text);
        assert_eq!(r.run(&["validate"]).code, 1, "parser accepts:\n{text}");
        common::write_shop(&r);
    }
}

#[test]
fn schema_command_prints_one_schema() {
    let run = common::formwork(Path::new("."), &["schema", "environment"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, schema::to_text(&schema::environment_schema()));
}
