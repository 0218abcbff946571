//! Real public templates: every one parses, and its YAML form and the JSON form CloudFormation
//! would store have the same canonical digest.
//!
//! The corpus is not part of this repository. Run with
//! `FORMWORK_CORPUS=/path/to/templates cargo test --test it corpus:: -- --ignored`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use formwork::template::Template;

fn templates(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            templates(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json" | "template")
        ) {
            out.push(p);
        }
    }
}

#[test]
#[ignore = "needs FORMWORK_CORPUS pointing at a directory of CloudFormation templates"]
fn every_corpus_template_parses_and_round_trips_through_json() {
    let dir = std::env::var("FORMWORK_CORPUS").expect("set FORMWORK_CORPUS");
    let mut files = Vec::new();
    templates(Path::new(&dir), &mut files);
    assert!(!files.is_empty(), "no templates under {dir}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let name: Arc<str> = Arc::from(f.display().to_string());
        let t =
            Template::parse(&bytes, &name).unwrap_or_else(|d| panic!("{}: {:?}", f.display(), d));
        assert!(!t.resources.is_empty(), "{}", f.display());
        let json = serde_json::to_string_pretty(t.value()).unwrap();
        let again = Template::parse(json.as_bytes(), &name).unwrap();
        assert_eq!(t.digest(), again.digest(), "{}", f.display());
        eprintln!(
            "{}: {} parameters, {} resources, {} outputs",
            f.display(),
            t.parameters.len(),
            t.resources.len(),
            t.outputs.len()
        );
    }
}
