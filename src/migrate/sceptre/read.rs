//! Reading a Sceptre project's `config/` tree as Sceptre does: the `config.yaml` of every
//! directory from `config/` down to a stack's directory merged into its stack group config, then
//! the stack's own file merged over it (a key of the child wins; `dependencies` are joined;
//! `parameters` and `stack_tags` are merged key by key when `<key>_inheritance: merge` says so).
//! Each file is a Jinja template first: `{{ var.X }}`, `{{ stack_group_config.X }}` and `{{ X }}`
//! (a key of the stack group config) are filled in here, other Jinja is reported. Every value
//! keeps the file and position it was written at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::report::Report;
use crate::yaml::{self, Node};

/// Deeper `config/` trees are refused (and symlink loops stopped).
const MAX_DEPTH: usize = 32;
/// Config files larger than this are refused.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a project could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not a Sceptre project: it has no config/ directory")]
    NotAProject(PathBuf),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A value and the file (relative to the project) it was written in.
#[derive(Clone, Debug)]
pub struct Entry {
    pub node: Node,
    pub file: String,
}

impl Entry {
    /// `(line, column)` of the value.
    pub fn pos(&self) -> (u32, u32) {
        (self.node.span.start.line, self.node.span.start.col)
    }

    /// The text of a scalar that is plain data (no tag).
    pub fn plain_str(&self) -> Option<&str> {
        match self.node.tag {
            None => self.node.as_str(),
            Some(_) => None,
        }
    }
}

/// A merged config: a stack group's or a stack's.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every key but the four below, as the last file that set it wrote it.
    pub fields: IndexMap<String, Entry>,
    pub parameters: IndexMap<String, Entry>,
    pub stack_tags: IndexMap<String, Entry>,
    pub dependencies: Vec<Entry>,
    /// The items of `notifications` (one entry when it is not a list); whether it was written
    /// at all is `fields["notifications$written"]`.
    pub notifications: Vec<Entry>,
}

impl Config {
    /// A plain scalar field's text.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Entry::plain_str)
    }
}

/// One stack of the project.
#[derive(Clone, Debug)]
pub struct StackFile {
    /// Its path under `config/` without `.yaml` (`dev/app`): what Sceptre names it by.
    pub path: String,
    /// The file, relative to the project (`config/dev/app.yaml`).
    pub file: String,
    pub config: Config,
}

/// The project as read.
#[derive(Debug, Default)]
pub struct Project {
    pub stacks: Vec<StackFile>,
    /// Merged stack group config by directory under `config/` (`""` for `config/` itself).
    pub groups: BTreeMap<String, Config>,
    /// Variables (`{{ var.X }}`, `{{ environment_variable.X }}`) that had no value.
    pub missing_vars: BTreeSet<String>,
}

/// Reads the project at `dir`; `vars` are the values of `{{ var.X }}` (Sceptre's `--var`).
pub fn read(
    dir: &Path,
    vars: &BTreeMap<String, String>,
    report: &mut Report,
) -> Result<Project, Error> {
    let config = dir.join("config");
    if !config.is_dir() {
        return Err(Error::NotAProject(dir.to_path_buf()));
    }
    let mut dirs = Vec::new();
    walk(&config, "", 0, &mut dirs, report)?;
    let mut project = Project::default();
    let mut r = Reader {
        dir,
        vars,
        report,
        missing: BTreeSet::new(),
    };
    for (rel, files) in &dirs {
        let parent = match rel.rsplit_once('/') {
            Some((p, _)) => p.to_string(),
            None if rel.is_empty() => String::new(),
            None => String::new(),
        };
        let base = if rel.is_empty() {
            Config::default()
        } else {
            project.groups.get(&parent).cloned().unwrap_or_default()
        };
        let group = match files.iter().find(|f| f.as_str() == "config.yaml") {
            Some(f) => {
                let own = r.file(&join(rel, f), &base)?;
                merge(&base, own)
            }
            None => base,
        };
        for f in files {
            if f.starts_with("config.") || !f.ends_with(".yaml") {
                continue;
            }
            let own = r.file(&join(rel, f), &group)?;
            let path = join(rel, f.trim_end_matches(".yaml"));
            project.stacks.push(StackFile {
                file: format!("config/{}", join(rel, f)),
                path,
                config: merge(&group, own),
            });
        }
        project.groups.insert(rel.clone(), group);
    }
    project.missing_vars = r.missing;
    Ok(project)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Directories under `config/` (relative, `""` first, parents before children) with their
/// file names, sorted.
fn walk(
    abs: &Path,
    rel: &str,
    depth: usize,
    out: &mut Vec<(String, Vec<String>)>,
    report: &mut Report,
) -> Result<(), Error> {
    let io = |e| Error::Io {
        path: abs.to_path_buf(),
        source: e,
    };
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for e in std::fs::read_dir(abs).map_err(io)? {
        let e = e.map_err(io)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = std::fs::metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() {
            subdirs.push(name);
        } else if meta.is_file() {
            files.push(name);
        }
    }
    files.sort();
    subdirs.sort();
    out.push((rel.to_string(), files));
    for d in subdirs {
        let child = join(rel, &d);
        if depth >= MAX_DEPTH {
            report.add(
                &format!("config/{child}"),
                (1, 1),
                "directory",
                format!("config/{child} is nested more than {MAX_DEPTH} directories deep"),
                "move its stacks higher up; it was not read",
            );
            continue;
        }
        walk(&abs.join(&d), &child, depth + 1, out, report)?;
    }
    Ok(())
}

struct Reader<'a> {
    dir: &'a Path,
    vars: &'a BTreeMap<String, String>,
    report: &'a mut Report,
    missing: BTreeSet<String>,
}

impl Reader<'_> {
    /// One config file (relative to `config/`) read into an unmerged [`Config`]; its Jinja
    /// filled in from `ctx`, the stack group config it is read under.
    fn file(&mut self, rel: &str, ctx: &Config) -> Result<Config, Error> {
        let shown = format!("config/{rel}");
        let path = self.dir.join("config").join(rel);
        let io = |e| Error::Io {
            path: path.clone(),
            source: e,
        };
        let len = std::fs::metadata(&path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            self.report.add(
                &shown,
                (1, 1),
                "file",
                format!("{shown} is larger than {MAX_FILE_BYTES} bytes"),
                "split it; it was not read",
            );
            return Ok(Config::default());
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let Ok(text) = String::from_utf8(bytes) else {
            self.report.add(
                &shown,
                (1, 1),
                "file",
                format!("{shown} is not UTF-8"),
                "save it as UTF-8; it was not read",
            );
            return Ok(Config::default());
        };
        let text = self.jinja(&text, &shown, ctx);
        let node = match yaml::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                self.report.add(
                    &shown,
                    (e.pos.line, e.pos.col),
                    "yaml",
                    format!("{shown} is not valid YAML: {}", e.message),
                    "fix the file (Sceptre cannot read it either); it was not converted",
                );
                return Ok(Config::default());
            }
        };
        Ok(config_of(node, &shown, self.report))
    }

    /// The file's Jinja filled in where it stands for plain values; everything else reported
    /// and left out.
    fn jinja(&mut self, text: &str, file: &str, ctx: &Config) -> String {
        if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut consumed = 0;
        while let Some(i) = find_open(rest) {
            out.push_str(&rest[..i]);
            let open = &rest[i..i + 2];
            let close = match open {
                "{{" => "}}",
                "{%" => "%}",
                _ => "#}",
            };
            let pos = line_col(text, consumed + i);
            let Some(len) = rest[i + 2..].find(close) else {
                self.report.add(
                    file,
                    pos,
                    "jinja",
                    format!("`{open}` is not closed"),
                    "close it; the rest of the file was read as written",
                );
                out.push_str(&rest[i..]);
                return out;
            };
            let expr = rest[i + 2..i + 2 + len].trim();
            match open {
                "{{" => out.push_str(&self.expression(expr, file, pos, ctx)),
                "{%" => self.report.add(
                    file,
                    pos,
                    "jinja",
                    format!("Jinja statement `{{% {expr} %}}`"),
                    "formwork config is plain YAML: write out what the statement produces for \
                     each environment (its text was converted as if the statement were absent)",
                ),
                _ => {}
            }
            let end = i + 2 + len + 2;
            consumed += end;
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    fn expression(&mut self, expr: &str, file: &str, pos: (u32, u32), ctx: &Config) -> String {
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some(name) = expr.strip_prefix("var.").filter(|n| ident(n)) {
            if let Some(v) = self.vars.get(name) {
                return v.clone();
            }
            self.missing.insert(name.to_string());
            self.report.add(
                file,
                pos,
                "variable",
                format!("`{{{{ var.{name} }}}}` has no value (none given with --var)"),
                format!(
                    "set `{name}` under `vars:` in each environment.yml (it became ${{var.{name}}}), \
                     or import again with --var {name}=VALUE"
                ),
            );
            return format!("${{var.{name}}}");
        }
        if let Some(name) = expr
            .strip_prefix("environment_variable.")
            .filter(|n| ident(n))
        {
            self.missing.insert(name.to_string());
            self.report.add(
                file,
                pos,
                "variable",
                format!(
                    "`{{{{ environment_variable.{name} }}}}` reads the environment Sceptre runs in"
                ),
                format!(
                    "formwork config does not read the runner's environment: set `{name}` under \
                     `vars:` in each environment.yml (it became ${{var.{name}}})"
                ),
            );
            return format!("${{var.{name}}}");
        }
        let key = expr.strip_prefix("stack_group_config.").unwrap_or(expr);
        if ident(key)
            && let Some(v) = ctx.str(key)
        {
            return v.to_string();
        }
        self.report.add(
            file,
            pos,
            "jinja",
            format!("Jinja expression `{{{{ {expr} }}}}`"),
            "write its value in the converted files by hand (it was left out)",
        );
        String::new()
    }
}

fn find_open(s: &str) -> Option<usize> {
    ["{{", "{%", "{#"].iter().filter_map(|o| s.find(o)).min()
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (u32, u32) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line as u32, col as u32)
}

/// A parsed config file as an unmerged [`Config`].
fn config_of(node: Node, file: &str, report: &mut Report) -> Config {
    let mut c = Config::default();
    if node.is_null() {
        return c;
    }
    let yaml::Kind::Map(pairs) = node.kind else {
        report.add(
            file,
            (node.span.start.line, node.span.start.col),
            "file",
            format!(
                "{file} holds {} where a mapping of settings belongs",
                node_kind(&node)
            ),
            "make it a mapping (`key: value` lines); it was not converted",
        );
        return c;
    };
    for (k, v) in pairs {
        let Some(key) = k.as_str().map(str::to_string) else {
            continue;
        };
        let entry = |node: Node| Entry {
            node,
            file: file.to_string(),
        };
        match key.as_str() {
            "parameters" | "stack_tags" => {
                let map = if key == "parameters" {
                    &mut c.parameters
                } else {
                    &mut c.stack_tags
                };
                match &v.kind {
                    yaml::Kind::Map(items) => {
                        for (pk, pv) in items {
                            if let Some(name) = pk.as_str() {
                                map.insert(name.to_string(), entry(pv.clone()));
                            }
                        }
                    }
                    _ if v.is_null() => {}
                    _ => report.add(
                        file,
                        (v.span.start.line, v.span.start.col),
                        "stack-field",
                        format!("`{key}` is {}, not a mapping", node_kind(&v)),
                        "make it a mapping; it was not converted",
                    ),
                }
                // Remember that the key was written, even empty, so that it replaces the
                // parent's as Sceptre's child-wins merge does.
                c.fields.insert(format!("{key}$written"), entry(v));
            }
            "notifications" if !v.is_null() => {
                match (&v.tag, &v.kind) {
                    (None, yaml::Kind::Seq(items)) => {
                        c.notifications.extend(items.iter().cloned().map(entry))
                    }
                    _ => c.notifications.push(entry(v.clone())),
                }
                c.fields.insert(format!("{key}$written"), entry(v));
            }
            "dependencies" => match v.kind {
                yaml::Kind::Seq(items) => c.dependencies.extend(items.into_iter().map(entry)),
                _ if v.is_null() => {}
                _ => c.dependencies.push(entry(v)),
            },
            _ => {
                c.fields.insert(key, entry(v));
            }
        }
    }
    c
}

fn node_kind(n: &Node) -> &'static str {
    n.kind_name()
}

/// `child` read over `parent` with Sceptre's merge strategies.
pub fn merge(parent: &Config, child: Config) -> Config {
    let mut out = parent.clone();
    let strategy = |key: &str| {
        let k = format!("{key}_inheritance");
        child.str(&k).or_else(|| parent.str(&k)).map(str::to_string)
    };
    for (key, map_of) in [("parameters", 0), ("stack_tags", 1)] {
        if !child.fields.contains_key(&format!("{key}$written")) {
            continue;
        }
        let (mine, theirs) = if map_of == 0 {
            (&mut out.parameters, &child.parameters)
        } else {
            (&mut out.stack_tags, &child.stack_tags)
        };
        if theirs.is_empty() {
            // Sceptre keeps the parent's value when the child's is empty.
            continue;
        }
        if strategy(key).as_deref() != Some("merge") {
            mine.clear();
        }
        for (k, v) in theirs {
            mine.insert(k.clone(), v.clone());
        }
    }
    // notifications: the child's replace the parent's, even when empty, unless
    // `notifications_inheritance: merge` joins them.
    if child.fields.contains_key("notifications$written") {
        if strategy("notifications").as_deref() != Some("merge") {
            out.notifications.clear();
        }
        out.notifications
            .extend(child.notifications.iter().cloned());
    }
    if !child.dependencies.is_empty() {
        if strategy("dependencies").as_deref() == Some("override") {
            out.dependencies.clear();
        }
        out.dependencies.extend(child.dependencies.iter().cloned());
    }
    for (k, v) in child.fields {
        if !v.node.is_null() {
            out.fields.insert(k, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)], vars: &[(&str, &str)]) -> (Project, Report) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut report = Report::default();
        let p = read(dir.path(), &vars, &mut report).unwrap();
        (p, report)
    }

    #[test]
    fn group_configs_are_inherited_and_the_child_wins() {
        let (p, r) = project(
            &[
                (
                    "config/config.yaml",
                    "project_code: shop\nregion: us-east-1\nstack_tags:\n  team: web\n",
                ),
                ("config/prod/config.yaml", "region: eu-west-1\n"),
                (
                    "config/prod/app.yaml",
                    "template_path: app.yaml\nstack_tags:\n  tier: app\n",
                ),
                ("config/prod/db.yaml", "template_path: db.yaml\n"),
            ],
            &[],
        );
        assert!(r.unmapped.is_empty(), "{:?}", r.unmapped);
        let app = p.stacks.iter().find(|s| s.path == "prod/app").unwrap();
        assert_eq!(app.config.str("project_code"), Some("shop"));
        assert_eq!(app.config.str("region"), Some("eu-west-1"));
        // stack_tags: the child's replace the group's (Sceptre's default strategy) …
        assert_eq!(app.config.stack_tags.keys().collect::<Vec<_>>(), ["tier"]);
        // … and a stack without its own inherits them.
        let db = p.stacks.iter().find(|s| s.path == "prod/db").unwrap();
        assert_eq!(db.config.stack_tags.keys().collect::<Vec<_>>(), ["team"]);
        assert_eq!(db.file, "config/prod/db.yaml");
    }

    #[test]
    fn merge_inheritance_and_joined_dependencies() {
        let (p, _) = project(
            &[
                (
                    "config/config.yaml",
                    "project_code: x\nregion: us-east-1\nstack_tags_inheritance: merge\n\
                     stack_tags: {a: '1'}\ndependencies: [dev/net.yaml]\n",
                ),
                ("config/dev/net.yaml", "template_path: net.yaml\n"),
                (
                    "config/dev/app.yaml",
                    "template_path: app.yaml\nstack_tags: {b: '2'}\ndependencies: [dev/db.yaml]\n",
                ),
            ],
            &[],
        );
        let app = p.stacks.iter().find(|s| s.path == "dev/app").unwrap();
        assert_eq!(app.config.stack_tags.keys().collect::<Vec<_>>(), ["a", "b"]);
        let deps: Vec<_> = app
            .config
            .dependencies
            .iter()
            .map(|d| d.node.as_str().unwrap())
            .collect();
        assert_eq!(deps, ["dev/net.yaml", "dev/db.yaml"]);
        assert_eq!(app.config.dependencies[0].file, "config/config.yaml");
    }

    #[test]
    fn notifications_are_replaced_unless_merged() {
        let (p, _) = project(
            &[
                (
                    "config/config.yaml",
                    "project_code: x\nregion: us-east-1\nnotifications: [arn:a]\n",
                ),
                ("config/dev/inherit.yaml", "template_path: t.yaml\n"),
                (
                    "config/dev/own.yaml",
                    "template_path: t.yaml\nnotifications: [arn:b]\n",
                ),
                (
                    "config/dev/none.yaml",
                    "template_path: t.yaml\nnotifications: []\n",
                ),
                (
                    "config/dev/joined.yaml",
                    "template_path: t.yaml\nnotifications_inheritance: merge\nnotifications:\n  - arn:c\n",
                ),
            ],
            &[],
        );
        let arns = |path: &str| -> Vec<String> {
            let s = p.stacks.iter().find(|s| s.path == path).unwrap();
            s.config
                .notifications
                .iter()
                .map(|e| format!("{}@{}", e.node.as_str().unwrap(), e.file))
                .collect()
        };
        assert_eq!(arns("dev/inherit"), ["arn:a@config/config.yaml"]);
        assert_eq!(arns("dev/own"), ["arn:b@config/dev/own.yaml"]);
        assert!(arns("dev/none").is_empty());
        assert_eq!(
            arns("dev/joined"),
            ["arn:a@config/config.yaml", "arn:c@config/dev/joined.yaml"]
        );
    }

    #[test]
    fn jinja_values_are_filled_in_and_the_rest_reported() {
        let (p, r) = project(
            &[
                (
                    "config/config.yaml",
                    "project_code: x\nregion: us-east-1\nowner: ops\n",
                ),
                (
                    "config/dev/app.yaml",
                    "template_path: app.yaml\nparameters:\n  Owner: {{ stack_group_config.owner }}\n  \
                     Size: {{ var.size }}\n  Zone: {{ var.zone }}\n  Odd: \"{{ owner | upper }}\"\n\
                     {% if true %}\n",
                ),
            ],
            &[("size", "large")],
        );
        let app = &p.stacks[0].config;
        assert_eq!(app.parameters["Owner"].plain_str(), Some("ops"));
        assert_eq!(app.parameters["Size"].plain_str(), Some("large"));
        assert_eq!(app.parameters["Zone"].plain_str(), Some("${var.zone}"));
        assert!(p.missing_vars.contains("zone"));
        let at: Vec<_> = r
            .unmapped
            .iter()
            .map(|i| (i.kind, i.line, i.column))
            .collect();
        assert_eq!(
            at,
            [("variable", 5, 9), ("jinja", 6, 9), ("jinja", 7, 1)],
            "{r:?}"
        );
    }

    #[test]
    fn malformed_yaml_is_reported_with_its_position() {
        let (p, r) = project(
            &[
                ("config/config.yaml", "project_code: x\nregion: us-east-1\n"),
                (
                    "config/dev/bad.yaml",
                    "template_path: a.yaml\nparameters: [\n",
                ),
                ("config/dev/list.yaml", "- 1\n"),
            ],
            &[],
        );
        assert_eq!(p.stacks.len(), 2);
        assert_eq!(r.unmapped.len(), 2);
        assert_eq!(r.unmapped[0].file, "config/dev/bad.yaml");
        assert_eq!(r.unmapped[0].kind, "yaml");
        assert!(r.unmapped[0].line >= 2);
        assert_eq!(r.unmapped[1].kind, "file");
    }

    #[test]
    fn not_a_project() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), &BTreeMap::new(), &mut Report::default()).unwrap_err();
        assert!(err.to_string().contains("no config/ directory"));
    }
}
