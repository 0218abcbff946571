//! The report of a conversion: every item of the Sceptre project that was not mapped, where it
//! is written (`file:line:col`, the file relative to the project), what it is and what to do by
//! hand; and notes about what was mapped in a way worth knowing. Rendered as text for people and
//! as a versioned JSON document.

use serde::Serialize;
use serde_json::{Value, json};

/// The version of the JSON document of [`Report::to_json`].
pub const REPORT_VERSION: u32 = 1;

/// One item the conversion could not map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The file, relative to the Sceptre project directory (`config/dev/app.yaml`).
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// What kind of item: `hook`, `resolver`, `jinja`, `stack-field`, …
    pub kind: &'static str,
    /// What it is, in a sentence.
    pub message: String,
    /// What to do by hand.
    pub help: String,
}

/// Everything a conversion has to say.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub unmapped: Vec<Item>,
    /// Things mapped that are worth knowing (not problems).
    pub notes: Vec<String>,
}

impl Report {
    pub fn add(
        &mut self,
        file: &str,
        (line, column): (u32, u32),
        kind: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.unmapped.push(Item {
            file: file.to_string(),
            line,
            column,
            kind,
            message: message.into(),
            help: help.into(),
        });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Items sorted by file and position, duplicates (the same item reached through several
    /// environments or stacks) dropped.
    pub fn finish(&mut self) {
        self.unmapped.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.kind, &a.message)
                .cmp(&(&b.file, b.line, b.column, b.kind, &b.message))
        });
        self.unmapped.dedup();
        let mut seen = std::collections::HashSet::new();
        self.notes.retain(|n| seen.insert(n.clone()));
    }

    /// `file:line:col: kind: message` and an indented `help:` line per item.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for i in &self.unmapped {
            out.push_str(&format!(
                "{}:{}:{}: {}: {}\n    help: {}\n",
                i.file, i.line, i.column, i.kind, i.message, i.help
            ));
        }
        out
    }

    /// The report as JSON: `{"version", "unmapped": [{file, line, column, kind, message, help}],
    /// "notes": [...]}`, plus what the caller adds.
    pub fn to_json(&self) -> Value {
        json!({
            "version": REPORT_VERSION,
            "unmapped": self.unmapped,
            "notes": self.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_sorted_and_deduplicated() {
        let mut r = Report::default();
        r.add("config/b.yaml", (3, 1), "hook", "a hook", "do it");
        r.add("config/a.yaml", (9, 2), "hook", "a hook", "do it");
        r.add("config/b.yaml", (3, 1), "hook", "a hook", "do it");
        r.finish();
        assert_eq!(r.unmapped.len(), 2);
        assert_eq!(r.unmapped[0].file, "config/a.yaml");
        assert!(
            r.to_text()
                .starts_with("config/a.yaml:9:2: hook: a hook\n    help: do it\n")
        );
        assert_eq!(r.to_json()["version"], 1);
        assert_eq!(r.to_json()["unmapped"][1]["line"], 3);
    }
}
