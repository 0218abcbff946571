//! Keeping secrets out of every output. Values are marked secret where they are read (SSM
//! SecureStrings, values of NoEcho parameters); structured output shows them as `****`, and
//! every free text that leaves formwork (plans, messages from AWS, errors) is scrubbed of the
//! secret strings seen during the run.
//!
//! Secrets also travel: a stack may pass a secret on as an output, and another stack take that
//! output as a parameter. An output is secret when its template makes it of a secret parameter
//! ([`secret_outputs`], known from the config before anything is read), or when its value, as
//! read, holds a secret seen in the run ([`Masker::holds_secret`]); a parameter set from a
//! secret output is secret too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, RwLock};

use crate::desired::{DesiredEnvironment, MASK};

/// Secrets shorter than this are not scrubbed from free text, where they would match ordinary
/// words; they are still never put into structured output.
pub const MIN_SCRUB_LEN: usize = 4;

/// A value read for a parameter, and whether it must never be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub secret: bool,
}

impl Value {
    pub fn plain(text: impl Into<String>) -> Value {
        Value {
            text: text.into(),
            secret: false,
        }
    }

    /// The text as it may be shown: itself, or `****`.
    pub fn shown(&self) -> String {
        if self.secret {
            MASK.to_string()
        } else {
            self.text.clone()
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            f.write_str("Value(****)")
        } else {
            write!(f, "Value({:?})", self.text)
        }
    }
}

/// The masker of this process: every secret read anywhere in it, so that logs, which are
/// written from everywhere, can be scrubbed too.
pub fn global() -> Arc<Masker> {
    static GLOBAL: LazyLock<Arc<Masker>> = LazyLock::new(|| Arc::new(Masker::new()));
    GLOBAL.clone()
}

/// The secret strings of a run, for scrubbing free text.
#[derive(Debug, Default)]
pub struct Masker {
    secrets: RwLock<Vec<String>>,
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Remembers a secret string.
    pub fn add(&self, secret: &str) {
        if secret.chars().count() < MIN_SCRUB_LEN {
            return;
        }
        let mut s = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_string());
            // Longer first, so that a secret containing another is replaced whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// Remembers a value if it is secret.
    pub fn note(&self, v: &Value) {
        if v.secret {
            self.add(&v.text);
        }
    }

    /// Whether `text` holds a known secret (one long enough to be recognised).
    pub fn holds_secret(&self, text: &str) -> bool {
        let s = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        s.iter().any(|secret| text.contains(secret.as_str()))
    }

    /// `text` with every known secret replaced by `****`.
    pub fn scrub(&self, text: &str) -> String {
        let s = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for secret in s.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// A JSON document with every string (keys included) scrubbed.
    pub fn scrub_json(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            J::String(s) => J::String(self.scrub(s)),
            J::Array(a) => J::Array(a.iter().map(|x| self.scrub_json(x)).collect()),
            J::Object(o) => J::Object(
                o.iter()
                    .map(|(k, x)| (self.scrub(k), self.scrub_json(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Like [`Masker::scrub`], for optional text.
    pub fn scrub_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.scrub(t))
    }
}

/// The outputs of an environment's stacks that carry a secret, by stack key, as far as the
/// config and the templates tell: an output whose value carries a NoEcho parameter of its
/// stack, or a parameter set from such an output of another stack (of the environment or of
/// another: `${env:…}`) — followed through chains of stacks, however long
/// ([`DesiredEnvironment::secret_outputs`]). (A secret that reaches an output through a resource, or from a
/// template read by URL, is found when the output is read: see [`Masker::holds_secret`].)
pub fn secret_outputs(env: &DesiredEnvironment) -> BTreeMap<String, BTreeSet<String>> {
    env.secret_outputs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_known_secret_longest_first() {
        let m = Masker::new();
        m.add("hunter2-long");
        m.add("hunter2");
        m.add("abc");
        assert_eq!(
            m.scrub("a hunter2-long and a hunter2 and abc"),
            "a **** and a **** and abc"
        );
        assert_eq!(
            format!(
                "{:?}",
                Value {
                    text: "x".into(),
                    secret: true
                }
            ),
            "Value(****)"
        );
    }
}
