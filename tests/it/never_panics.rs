//! Property tests: no input makes the YAML, template, expression or config parsers panic, and
//! whatever a broken config repository holds, validation ends with diagnostics, not a crash.

use crate::common;

use std::collections::BTreeMap;

use formwork::config::{EnvironmentFile, PipelineFile, expr, validate_repository};
use formwork::source::{Source, SourceError};
use formwork::template::Template;
use proptest::prelude::*;

/// Characters that make YAML and expressions interesting.
const YAMLISH: &str = "[a-zA-Z0-9 \\n\\t:{}\\[\\],'\"!&*#|>%@`$._/-]{0,300}";

/// A config repository in memory.
struct Memory(BTreeMap<String, Vec<u8>>);

impl Source for Memory {
    fn describe(&self) -> String {
        "memory".into()
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.0.get(path).cloned())
    }
    fn exists(&self, path: &str) -> Result<bool, SourceError> {
        Ok(self.0.contains_key(path))
    }
    fn subdirs(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        let prefix = format!("{dir}/");
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        names.dedup();
        Ok(names)
    }
    fn files(&self, dir: &str) -> Result<Vec<String>, SourceError> {
        let prefix = format!("{dir}/");
        Ok(self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }
    fn content_id(&self, _: &str) -> Option<String> {
        None
    }
}

fn shop() -> BTreeMap<String, Vec<u8>> {
    [
        ("pipelines/shop/pipeline.yml", common::PIPELINE),
        ("pipelines/shop/templates/network.yml", common::NETWORK),
        ("pipelines/shop/templates/database.yml", common::DATABASE),
        ("pipelines/shop/templates/app.yml", common::APP),
        ("pipelines/shop/templates/cdn.json", common::CDN),
        ("environments/staging/environment.yml", common::STAGING),
        (
            "environments/production/environment.yml",
            common::PRODUCTION,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}

/// One edit to a file: delete, insert or replace a range of bytes.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    DuplicateLine(usize),
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len().max(1);
    match e {
        Edit::Delete(at, len) => {
            let start = at % n;
            let end = (start + len).min(bytes.len());
            if start < end {
                bytes.drain(start..end);
            }
        }
        Edit::Insert(at, what) => {
            let at = (at % n).min(bytes.len());
            bytes.splice(at..at, what.iter().copied());
        }
        Edit::Replace(at, b) => {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = *b;
            }
        }
        Edit::DuplicateLine(at) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = at % lines.len();
                let mut out: Vec<&str> = lines[..=i].to_vec();
                out.extend(&lines[i..]);
                *bytes = out.join("\n").into_bytes();
            }
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, l)| Edit::Delete(a, l)),
        (any::<usize>(), YAMLISH.prop_map(String::into_bytes))
            .prop_map(|(a, w)| Edit::Insert(a, w)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

/// Cases per property: `FORMWORK_FUZZ_CASES` for long runs, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("FORMWORK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn yaml_parser_never_panics(s in YAMLISH) {
        let _ = formwork::yaml::parse(&s);
    }

    #[test]
    fn yaml_parser_never_panics_on_any_text(s in any::<String>()) {
        let _ = formwork::yaml::parse(&s);
    }

    #[test]
    fn template_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), s in YAMLISH) {
        let file = std::sync::Arc::from("t.yml");
        let _ = Template::parse(&bytes, &file);
        let _ = Template::parse(s.as_bytes(), &file);
    }

    #[test]
    fn expression_parser_never_panics(s in "[a-z$\\{\\}.:/ -]{0,60}") {
        if let Ok(e) = expr::parse(&s) {
            // What parses prints back to something that parses to the same thing.
            prop_assert_eq!(expr::parse(&e.to_string()).unwrap(), e);
        }
    }

    #[test]
    fn config_deserializers_never_panic(s in YAMLISH) {
        if let Ok(node) = formwork::yaml::parse(&s) {
            let _ = formwork::yaml::from_node_recovering::<PipelineFile>(&node);
            let _ = formwork::yaml::from_node_recovering::<EnvironmentFile>(&node);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn validating_a_mangled_repository_never_panics(
        file in 0usize..7,
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let mut files = shop();
        let key = files.keys().nth(file).unwrap().clone();
        let bytes = files.get_mut(&key).unwrap();
        for e in &edits {
            apply(bytes, e);
        }
        let v = validate_repository(&Memory(files)).unwrap();
        // Every error points into a file or stands on its own; none is empty.
        for d in v.diags.iter() {
            prop_assert!(!d.message.is_empty());
        }
    }
}
