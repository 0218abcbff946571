//! Guard's results remembered: the record Guard reports for one document, keyed by the SHA-256
//! of the rules it was evaluated with and what the document is made of (the template's
//! canonical digest, the values put in, what is said of the stack), so that a stack planned again
//! unchanged (same rules, same template, same values, same planned changes) is not evaluated
//! again. Only Guard's own record is kept: severities, overrides and template lines are worked
//! out from it on every plan, so a changed `policies.yml` or a reformatted template still shows.
//!
//! [`Results`] is the memory of one process (the daemon keeps it between plans); the state
//! store keeps the same entries between processes ([`crate::store::Store::policy_results`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// What the key depends on besides the rules and the document: the Guard library and the way
/// formwork asks it, so that a new version of either never reads an old record.
const KEY_VERSION: &str = "formwork-policy-2 cfn-guard-3.2.1";

/// Most entries the memory of one process holds; past it, it starts again empty.
const MAX_ENTRIES: usize = 20_000;

/// The key of the record of a document (its recipe: `Document::recipe`) evaluated with
/// `rules` (the texts of the rule files, in order): hex SHA-256.
pub fn key<'a>(rules: impl IntoIterator<Item = &'a str>, document: &str) -> String {
    KeyPrefix::new(rules).key(document)
}

/// The rules' part of keys, hashed once for the many documents evaluated with them.
#[derive(Clone)]
pub struct KeyPrefix(Sha256);

impl KeyPrefix {
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a str>) -> KeyPrefix {
        let mut h = Sha256::new();
        h.update(KEY_VERSION.as_bytes());
        for text in rules {
            // Each part with its length, so that no two lists of texts hash alike.
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.update(u64::MAX.to_le_bytes());
        KeyPrefix(h)
    }

    /// The key of `document` evaluated with these rules ([`key`]).
    pub fn key(&self, document: &str) -> String {
        let mut h = self.0.clone();
        h.update(document.as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    }
}

/// Where results are kept between processes, for a caller without an async runtime at hand
/// (the state store behind it). Failures only cost evaluations: implementations log them.
pub trait Keep {
    /// The results known among `keys` (key, record).
    fn recall(&self, keys: &[String]) -> Vec<(String, String)>;
    /// Keeps results (key, record); with none, does nothing.
    fn keep(&self, results: &[(String, String)]);
}

/// Guard's records by key (each as its JSON text), and its verdicts on rule files (the parse
/// error, or empty: [`super::rules::verdict_keys`]), in memory.
#[derive(Debug, Default)]
pub struct Results {
    entries: Mutex<HashMap<String, Arc<str>>>,
}

impl Results {
    /// The memory of this process.
    pub fn global() -> &'static Results {
        static GLOBAL: OnceLock<Results> = OnceLock::new();
        GLOBAL.get_or_init(Results::default)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of `key`, if known.
    pub fn get(&self, key: &str) -> Option<Arc<str>> {
        self.lock().get(key).cloned()
    }

    /// The keys among `keys` that are not known.
    pub fn missing(&self, keys: &[String]) -> Vec<String> {
        let entries = self.lock();
        let mut out: Vec<String> = keys
            .iter()
            .filter(|k| !entries.contains_key(k.as_str()))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Fills in from `keep` the records among `keys` that this memory lacks; returns the keys
    /// still unknown (to be worked out, then kept).
    pub fn recall_from(&self, keep: &dyn Keep, keys: &[String]) -> Vec<String> {
        let missing = self.missing(keys);
        if missing.is_empty() {
            return missing;
        }
        self.extend(keep.recall(&missing));
        self.missing(&missing)
    }

    /// Remembers records (key, JSON text).
    pub fn extend(&self, records: impl IntoIterator<Item = (String, String)>) {
        let mut entries = self.lock();
        for (k, v) in records {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&k) {
                entries.clear();
            }
            entries.insert(k, Arc::from(v));
        }
    }

    /// How many records are known.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_changes_with_the_rules_and_the_document() {
        let k = key(["rule a { x exists }"], "{}");
        assert_eq!(k.len(), 64);
        assert_eq!(k, key(["rule a { x exists }"], "{}"));
        assert_ne!(k, key(["rule a { y exists }"], "{}"));
        assert_ne!(k, key(["rule a { x exists }"], "{\"x\":1}"));
        // The same text cut into files differently is another key.
        assert_ne!(key(["ab", "c"], "{}"), key(["a", "bc"], "{}"));
    }

    #[test]
    fn results_are_found_by_key() {
        let r = Results::default();
        assert!(r.is_empty());
        r.extend([("k1".to_string(), "{\"a\":1}".to_string())]);
        assert_eq!(r.get("k1").as_deref(), Some("{\"a\":1}"));
        assert_eq!(r.missing(&["k1".into(), "k2".into(), "k2".into()]), ["k2"]);
    }
}
