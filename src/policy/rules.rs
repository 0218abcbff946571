//! The repository's policy rules: every `policies/*.guard` file of one revision, checked to
//! parse, and `policies/policies.yml` with the severity of each rule; and which of them apply to
//! one environment.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regex::Regex;

use crate::config::{PoliciesFile, RuleSeverity, parse_yaml};
use crate::desired::PolicyChoice;
use crate::diag::{Diagnostic, Diagnostics, Loc, Pos, SourceMap, Span};
use crate::source::{Source, SourceError};

/// Where the rules live in the config repository.
pub const POLICIES_DIR: &str = "policies";
/// The severities of the rules.
pub const POLICIES_FILE: &str = "policies.yml";
/// What a rule file's name ends with.
pub const RULE_FILE_SUFFIX: &str = ".guard";

/// One rule file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    /// The file name, `network.guard`.
    pub name: String,
    /// Its path in the repository, `policies/network.guard`.
    pub path: Arc<str>,
    pub text: Arc<str>,
    /// The rules it declares, in file order.
    pub rules: Vec<String>,
    /// Each rule's first message (`<< … >>` in its body, lines joined), said for a failing
    /// clause of the rule that has none of its own.
    pub messages: BTreeMap<String, String>,
}

/// The policy rules of one revision.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    pub files: Vec<RuleFile>,
    /// The severity of a rule `severities` does not name.
    pub default_severity: RuleSeverity,
    pub severities: BTreeMap<String, RuleSeverity>,
}

/// The rules that apply to one environment, with their severity there.
#[derive(Clone, Debug)]
pub struct Applicable<'a> {
    pub files: Vec<&'a RuleFile>,
    severities: BTreeMap<String, RuleSeverity>,
    default_severity: RuleSeverity,
}

impl Applicable<'_> {
    /// The severity of `rule` in this environment.
    pub fn severity(&self, rule: &str) -> RuleSeverity {
        self.severities
            .get(rule)
            .copied()
            .unwrap_or(self.default_severity)
    }

    /// The rule file that declares `rule` (the first, should several).
    pub fn file_of(&self, rule: &str) -> Option<&RuleFile> {
        self.files
            .iter()
            .find(|f| f.rules.iter().any(|r| r == rule))
            .copied()
    }

    /// How many rules apply.
    pub fn rule_count(&self) -> usize {
        self.files.iter().map(|f| f.rules.len()).sum()
    }
}

/// A loaded policy set, or the problems found, with the texts they point into.
pub struct Loaded {
    /// `None` when the revision has no `policies/` rule files.
    pub set: Option<PolicySet>,
    pub diags: Diagnostics,
    pub texts: SourceMap,
}

/// Reads the rules of a revision. Rule files that do not parse, a `policies.yml` that does not
/// read and severities naming no rule are diagnostics; only failures to read the source are
/// errors.
pub fn load(src: &dyn Source) -> Result<Loaded, SourceError> {
    let mut diags = Diagnostics::new();
    let mut texts = SourceMap::default();
    let mut files = Vec::new();
    let names = src.files(POLICIES_DIR)?;
    for name in names.iter().filter(|n| n.ends_with(RULE_FILE_SUFFIX)) {
        let path: Arc<str> = Arc::from(format!("{POLICIES_DIR}/{name}"));
        let Some(bytes) = src.read(&path)? else {
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            diags.push(
                Diagnostic::error("the rule file is not UTF-8 text")
                    .at(Loc::file_start(&path))
                    .help("save it as UTF-8"),
            );
            continue;
        };
        let text: Arc<str> = Arc::from(text);
        texts.insert(&path, &text);
        if let Some(d) = parse_error(&path, &text) {
            diags.push(d);
            continue;
        }
        let (rules, messages) = read_rules(&text);
        files.push(RuleFile {
            name: name.clone(),
            rules,
            messages,
            path,
            text,
        });
    }
    let config_path: Arc<str> = Arc::from(format!("{POLICIES_DIR}/{POLICIES_FILE}"));
    let config = match src.read(&config_path)? {
        Some(bytes) => {
            let parsed = parse_yaml::<PoliciesFile>(&config_path, bytes);
            if let Some(t) = parsed.text {
                texts.insert(&config_path, &t);
            }
            for d in parsed.diags {
                diags.push(d);
            }
            parsed.value
        }
        None => None,
    };
    if files.is_empty() {
        if config.is_some() && !diags.has_errors() {
            diags.push(
                Diagnostic::warning(format!(
                    "{config_path} sets severities, but there is no rule file in {POLICIES_DIR}/"
                ))
                .at(Loc::file_start(&config_path))
                .help("rules live in policies/<name>.guard (CloudFormation Guard)"),
            );
        }
        return Ok(Loaded {
            set: None,
            diags,
            texts,
        });
    }
    let known = declared(&files);
    let mut set = PolicySet {
        default_severity: RuleSeverity::Block,
        severities: BTreeMap::new(),
        files: Vec::new(),
    };
    if let Some(config) = config {
        if let Some(s) = config.severity {
            set.default_severity = s.value;
        }
        for (rule, severity) in config.rules {
            if !known.contains(rule.value.as_str()) {
                diags.push(unknown_rule(
                    &rule.value,
                    Loc::new(&config_path, rule.span),
                    &known,
                ));
            }
            set.severities.insert(rule.value, severity.value);
        }
    }
    set.files = files;
    Ok(Loaded {
        set: Some(set),
        diags,
        texts,
    })
}

/// The problems with a revision's rules and with its environments' choice of them: what
/// `formwork validate` reports, and what refuses a plan of that revision.
pub fn validate<'a>(
    src: &dyn Source,
    environments: impl IntoIterator<Item = &'a crate::desired::DesiredEnvironment>,
) -> Result<(Diagnostics, SourceMap), SourceError> {
    let loaded = load(src)?;
    Ok((validate_loaded(&loaded, environments), loaded.texts))
}

/// [`validate`] of rules already read.
pub fn validate_loaded<'a>(
    loaded: &Loaded,
    environments: impl IntoIterator<Item = &'a crate::desired::DesiredEnvironment>,
) -> Diagnostics {
    let mut diags = loaded.diags.clone();
    for env in environments {
        match &loaded.set {
            Some(set) => {
                for d in set.for_environment(&env.policies).1 {
                    diags.push(d);
                }
            }
            None => {
                let named = env
                    .policies
                    .files
                    .iter()
                    .flatten()
                    .map(|(_, loc)| loc)
                    .chain(env.policies.severity.values().map(|(_, loc)| loc))
                    .next();
                if let Some(loc) = named {
                    diags.push(
                        Diagnostic::warning(format!(
                            "environment `{}` chooses policy rules, but there is no rule file in {POLICIES_DIR}/: nothing is checked",
                            env.name
                        ))
                        .at(loc.clone())
                        .help("rules live in policies/<name>.guard (CloudFormation Guard)"),
                    );
                }
            }
        }
    }
    diags
}

impl PolicySet {
    /// The rules that apply to an environment, and the problems with its choice (a file or a
    /// rule it names that the set does not have).
    pub fn for_environment(&self, choice: &PolicyChoice) -> (Applicable<'_>, Vec<Diagnostic>) {
        let mut problems = Vec::new();
        let files: Vec<&RuleFile> = match &choice.files {
            None => self.files.iter().collect(),
            Some(names) => {
                for (name, loc) in names {
                    if !self.files.iter().any(|f| &f.name == name) {
                        let near = crate::suggest::nearest(
                            name,
                            self.files.iter().map(|f| f.name.as_str()),
                        );
                        problems.push(
                            Diagnostic::error(format!(
                                "there is no rule file `{name}` in {POLICIES_DIR}/"
                            ))
                            .at(loc.clone())
                            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
                            .help(format!(
                                "rule files: {}",
                                self.files
                                    .iter()
                                    .map(|f| f.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        );
                    }
                }
                self.files
                    .iter()
                    .filter(|f| names.iter().any(|(n, _)| n == &f.name))
                    .collect()
            }
        };
        let known = declared(&self.files);
        let mut severities = self.severities.clone();
        for (rule, (severity, loc)) in &choice.severity {
            if !known.contains(rule.as_str()) {
                problems.push(unknown_rule(rule, loc.clone(), &known));
            }
            severities.insert(rule.clone(), *severity);
        }
        (
            Applicable {
                files,
                severities,
                default_severity: self.default_severity,
            },
            problems,
        )
    }
}

fn unknown_rule(rule: &str, loc: Loc, known: &BTreeSet<&str>) -> Diagnostic {
    let near = crate::suggest::nearest(rule, known.iter().copied());
    Diagnostic::error(format!("no rule file declares a rule `{rule}`"))
        .at(loc)
        .label_opt(near.map(|n| format!("did you mean `{n}`?")))
        .help("name a rule declared as `rule NAME` in a policies/*.guard file")
}

/// Every rule the files declare.
fn declared(files: &[RuleFile]) -> BTreeSet<&str> {
    files
        .iter()
        .flat_map(|f| f.rules.iter().map(String::as_str))
        .collect()
}

/// The rules a rule file declares (each `rule NAME` at the start of a line), in file order,
/// and each one's first `<< … >>` message (in the text up to the next `rule`), lines joined.
fn read_rules(text: &str) -> (Vec<String>, BTreeMap<String, String>) {
    // A rule starts a line: `rule <name>` (read by hand: a plan reads every rule file, and
    // compiling patterns for it would cost more than the reading).
    let mut starts: Vec<(usize, String)> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        if let Some(rest) = body.strip_prefix("rule")
            && rest.starts_with(char::is_whitespace)
        {
            let rest = rest.trim_start();
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                starts.push((offset, name));
            }
        }
        offset += line.len();
    }
    let mut names = Vec::new();
    let mut messages = BTreeMap::new();
    for (i, (start, name)) in starts.iter().enumerate() {
        if !names.contains(name) {
            names.push(name.clone());
        }
        let end = starts.get(i + 1).map(|(e, _)| *e).unwrap_or(text.len());
        let body = &text[*start..end];
        if let Some(open) = body.find("<<")
            && let Some(len) = body[open + 2..].find(">>")
        {
            let said = body[open + 2..open + 2 + len]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !said.is_empty() {
                messages.entry(name.clone()).or_insert(said);
            }
        }
    }
    (names, messages)
}

/// Whether a rule file parses: Guard's own parser, on an empty document.
fn parse_error(path: &Arc<str>, text: &str) -> Option<Diagnostic> {
    // Guard's verdict on a rule file is remembered like its results ([`super::cache`]): a run
    // reads the rules of a revision more than once (checking the config, then the gate), and
    // the state store keeps verdicts between runs ([`verdict_keys`]).
    let key = verdict_key(path, text);
    let known = super::cache::Results::global();
    let verdict = match known.get(&key) {
        Some(v) => v.to_string(),
        None => {
            let verdict = cfn_guard::run_checks(
                cfn_guard::ValidateInput {
                    content: "{}",
                    file_name: "empty",
                },
                cfn_guard::ValidateInput {
                    content: text,
                    file_name: path,
                },
                false,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            known.extend([(key, verdict.clone())]);
            verdict
        }
    };
    (!verdict.is_empty()).then(|| guard_parse_diagnostic(path, &verdict))
}

/// The key of Guard's verdict on the rule file `path` with `text`: its parse error, or empty.
fn verdict_key(path: &str, text: &str) -> String {
    super::cache::key([path, text], "formwork: does the rule file parse")
}

/// The keys of Guard's verdicts on the rule files of a revision, so that a caller can recall
/// them from the state store before the rules are read ([`load`]), and keep them after.
pub fn verdict_keys(src: &dyn Source) -> Result<Vec<String>, SourceError> {
    let mut keys = Vec::new();
    for name in src
        .files(POLICIES_DIR)?
        .iter()
        .filter(|n| n.ends_with(RULE_FILE_SUFFIX))
    {
        let path = format!("{POLICIES_DIR}/{name}");
        if let Some(text) = src.read(&path)?.and_then(|b| String::from_utf8(b).ok()) {
            keys.push(verdict_key(&path, &text));
        }
    }
    Ok(keys)
}

/// A Guard parse error as a diagnostic at the line and column Guard names.
pub(super) fn guard_parse_diagnostic(path: &Arc<str>, message: &str) -> Diagnostic {
    static AT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        Regex::new(r"at line (\d+) at column (\d+)(?:, when handling (.*?), fragment)?")
            .expect("position pattern")
    });
    let (loc, what) = match at.captures(message) {
        Some(c) => {
            let line = c[1].parse().unwrap_or(1);
            let col = c[2].parse().unwrap_or(1);
            let what = c
                .get(3)
                .map(|m| m.as_str().trim().to_string())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "unexpected text here".to_string());
            (Loc::new(path, Span::on_line(Pos { line, col }, 1)), what)
        }
        None => (
            Loc::file_start(path),
            message
                .trim_start_matches("Parser Error when parsing `")
                .trim()
                .to_string(),
        ),
    };
    Diagnostic::error(format!("the rule file does not parse: {what}"))
        .at(loc)
        .help("rules are written in CloudFormation Guard; `formwork policy test` runs their tests")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_read_in_file_order_once() {
        let text = "let x = Resources.*\nrule b when %x !empty {\n  %x.Type exists\n}\n  rule a {\n b\n}\n# rule c\nrule b {}\n";
        assert_eq!(read_rules(text).0, ["b", "a"]);
    }

    #[test]
    fn a_rule_says_its_first_message() {
        let text = "rule a {\n  x exists\n  <<\n    first\n    line\n  >>\n  y exists << second >>\n}\nrule b {\n  z exists\n}\n";
        let m = read_rules(text).1;
        assert_eq!(m.get("a").map(String::as_str), Some("first line"));
        assert_eq!(m.get("b"), None);
    }

    #[test]
    fn a_parse_error_points_at_guards_line_and_column() {
        let path: Arc<str> = Arc::from("policies/x.guard");
        let d = parse_error(
            &path,
            "rule a {\n  Resources.* exists\n}\nrule b {\n  Resources.*.Type == \n}\n",
        )
        .expect("does not parse");
        let loc = d.loc.expect("located");
        assert_eq!(loc.span.start.line, 5);
        assert!(
            d.message
                .starts_with("the rule file does not parse: expecting"),
            "{}",
            d.message
        );
        assert!(parse_error(&path, "rule a {\n  Resources.* exists\n}\n").is_none());
    }
}
