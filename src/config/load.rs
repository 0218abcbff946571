//! Reading config files from a [`Source`]: pipelines with their templates, and environments.
//! Each file is read and parsed at most once per loader; templates are parsed once per content
//! across loaders that share a [`TemplateCache`]. Problems become diagnostics; only failures to
//! read the repository itself are errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use super::model::{EnvironmentFile, PipelineFile};
use crate::diag::{Diagnostic, Diagnostics, Loc, SourceMap, Span};
use crate::source::{Source, SourceError, join_path};
use crate::template::Template;
use crate::template::nested::{self, ChildSource};
use crate::yaml::{self, Spanned};

pub const PIPELINES_DIR: &str = "pipelines";
pub const ENVIRONMENTS_DIR: &str = "environments";
pub const PIPELINE_FILE: &str = "pipeline.yml";
pub const ENVIRONMENT_FILE: &str = "environment.yml";

/// The result of reading one template file.
pub type TemplateLoad = Result<Arc<Template>, Vec<Diagnostic>>;

/// A file's path and content id.
type TemplateKey = (String, String);

/// Parsed files of one kind, by path and content id.
type ParsedFiles<U> = Mutex<HashMap<TemplateKey, Parsed<U>>>;

/// A parsed template and its text (for quoting in diagnostics).
type CachedTemplate = (Arc<TemplateLoad>, Arc<str>);

/// Parsed templates and environment files by path and content id, shared between the
/// revisions being compared: a file that did not change is parsed once.
#[derive(Default)]
pub struct ParseCache {
    templates: Mutex<HashMap<TemplateKey, CachedTemplate>>,
    environments: ParsedFiles<Arc<Environment>>,
    pipelines: ParsedFiles<Arc<PipelineFile>>,
}

impl ParseCache {
    /// The template parsed before from the file at `path` with content id `id`.
    fn template(&self, path: &str, id: &str) -> Option<CachedTemplate> {
        self.templates
            .lock()
            .expect("template cache lock")
            .get(&(path.to_string(), id.to_string()))
            .cloned()
    }

    /// Remembers the parse of the file at `path` with content id `id`.
    fn keep_template(&self, path: &str, id: &str, loaded: CachedTemplate) {
        self.templates
            .lock()
            .expect("template cache lock")
            .insert((path.to_string(), id.to_string()), loaded);
    }
}

/// A stack's template on its way to being loaded.
enum Pending {
    Ready(StackTemplate),
    Cached {
        path: String,
        load: Arc<TemplateLoad>,
        text: Arc<str>,
    },
    Parse {
        path: String,
        id: Option<String>,
        bytes: Vec<u8>,
    },
}

/// Parses template files. (On one thread: in measurements, starting threads cost more than
/// parsing a pipeline's templates side by side saved.)
fn parse_templates(files: &[(String, Option<String>, Vec<u8>)]) -> Vec<CachedTemplate> {
    files
        .iter()
        .map(|(path, _, bytes)| {
            let file: Arc<str> = Arc::from(path.as_str());
            let load = Arc::new(Template::parse(bytes, &file).map(Arc::new));
            let text: Arc<str> = Arc::from(String::from_utf8_lossy(bytes).as_ref());
            (load, text)
        })
        .collect()
}

/// A parsed config file: its value (when it could be read), its problems and its text.
#[derive(Clone)]
pub(crate) struct Parsed<T> {
    pub(crate) value: Option<T>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) text: Option<Arc<str>>,
}

/// Parses a YAML config file into `T`, collecting every problem.
pub(crate) fn parse_yaml<T: DeserializeOwned>(file: &Arc<str>, bytes: Vec<u8>) -> Parsed<T> {
    let mut diags = Vec::new();
    let text = match String::from_utf8(bytes) {
        Ok(t) => Arc::<str>::from(t),
        Err(e) => {
            diags.push(
                Diagnostic::error(format!(
                    "the file is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ))
                .at(Loc::file_start(file))
                .help("save it as UTF-8"),
            );
            return Parsed {
                value: None,
                diags,
                text: None,
            };
        }
    };
    let fail = |diags, text| Parsed {
        value: None,
        diags,
        text: Some(text),
    };
    let node = match yaml::parse(&text) {
        Ok(n) => n,
        Err(e) => {
            diags.push(
                Diagnostic::error(format!("YAML syntax error: {}", e.message))
                    .at(Loc::new(file, Span::on_line(e.pos, 1)))
                    .help(e.help),
            );
            return fail(diags, text);
        }
    };
    if node.is_null() {
        diags.push(
            Diagnostic::error("the file is empty")
                .at(Loc::file_start(file))
                .help("see docs/config.md for what this file holds"),
        );
        return fail(diags, text);
    }
    let (value, errors) = yaml::from_node_recovering::<T>(&node);
    for e in errors {
        diags.push(
            Diagnostic::error(e.message)
                .at(Loc::new(file, e.span.unwrap_or_default()))
                .help_opt(e.help)
                .label_opt(e.label),
        );
    }
    Parsed {
        value,
        diags,
        text: Some(text),
    }
}

/// A pipeline and its templates.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    /// The pipeline directory, e.g. `pipelines/placeos`.
    pub dir: String,
    /// The pipeline file, e.g. `pipelines/placeos/pipeline.yml`.
    pub file: Arc<str>,
    pub def: Arc<PipelineFile>,
    /// Each stack's template, by stack key.
    pub templates: IndexMap<String, StackTemplate>,
    /// `published_templates:`, URL prefix to directory from the repository root.
    pub published: BTreeMap<String, String>,
    /// The templates the stacks' templates nest from the repository, at any depth, by path;
    /// `None` for one that could not be read (reported).
    pub nested: BTreeMap<String, Option<Arc<Template>>>,
}

impl Pipeline {
    /// The template files of the repository the pipeline reads: its stacks' and those they
    /// nest.
    pub fn template_files(&self) -> impl Iterator<Item = &str> {
        self.templates
            .values()
            .filter_map(StackTemplate::local_path)
            .chain(self.nested.keys().map(String::as_str))
    }
}

/// Where a stack's template comes from.
#[derive(Clone, Debug)]
pub enum StackTemplate {
    /// A file of the config repository; `template` is `None` when it could not be read.
    Local {
        path: String,
        template: Option<Arc<Template>>,
    },
    /// An `https://` or `s3://` URL, fetched when planning. May hold `${var.…}`.
    Url { url: Spanned<String> },
}

impl StackTemplate {
    /// The path of a template of the repository; `None` for a URL.
    pub fn local_path(&self) -> Option<&str> {
        match self {
            StackTemplate::Local { path, .. } => Some(path),
            StackTemplate::Url { .. } => None,
        }
    }

    /// The parsed template, when formwork has it offline.
    pub fn parsed(&self) -> Option<&Arc<Template>> {
        match self {
            StackTemplate::Local { template, .. } => template.as_ref(),
            StackTemplate::Url { .. } => None,
        }
    }
}

/// An environment file.
#[derive(Debug)]
pub struct Environment {
    pub name: String,
    pub file: Arc<str>,
    pub def: EnvironmentFile,
}

/// Reads config files from one source.
pub struct Loader<'a> {
    source: &'a dyn Source,
    cache: &'a ParseCache,
    pipelines: HashMap<String, Option<Arc<Pipeline>>>,
    environments: HashMap<String, Option<Arc<Environment>>>,
    pub diags: Diagnostics,
    pub texts: SourceMap,
}

/// Whether a `template:` value is a URL rather than a repository path.
pub fn is_url(t: &str) -> bool {
    t.starts_with("https://") || t.starts_with("s3://") || t.starts_with("http://")
}

impl<'a> Loader<'a> {
    pub fn new(source: &'a dyn Source, cache: &'a ParseCache) -> Loader<'a> {
        Loader {
            source,
            cache,
            pipelines: HashMap::new(),
            environments: HashMap::new(),
            diags: Diagnostics::new(),
            texts: SourceMap::default(),
        }
    }

    pub fn source(&self) -> &dyn Source {
        self.source
    }

    /// The diagnostics found so far in the given files.
    pub fn diags_for(&self, files: &[&str]) -> Diagnostics {
        let mut out = Diagnostics::new();
        for d in self.diags.iter() {
            if d.loc.as_ref().is_some_and(|l| files.contains(&&*l.file)) {
                out.push(d.clone());
            }
        }
        out
    }

    /// The names of the environments: directories under `environments/` holding an
    /// `environment.yml`. Directories without one are reported as warnings.
    pub fn environment_names(&mut self) -> Result<Vec<String>, SourceError> {
        self.names(ENVIRONMENTS_DIR, ENVIRONMENT_FILE)
    }

    /// The names of the pipelines: directories under `pipelines/` holding a `pipeline.yml`.
    pub fn pipeline_names(&mut self) -> Result<Vec<String>, SourceError> {
        self.names(PIPELINES_DIR, PIPELINE_FILE)
    }

    fn names(&mut self, dir: &str, file: &str) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        for name in self.source.subdirs(dir)? {
            let path = format!("{dir}/{name}/{file}");
            if self.source.exists(&path)? {
                out.push(name);
            } else {
                let alt = path.replace(".yml", ".yaml");
                let help = if self.source.exists(&alt)? {
                    format!("rename {alt} to {file}")
                } else {
                    format!("add {file} or remove the directory")
                };
                self.diags.push(
                    Diagnostic::warning(format!("{dir}/{name}/ has no {file}; it is ignored"))
                        .help(help),
                );
            }
        }
        Ok(out)
    }

    /// Reads and parses a YAML config file into `T` and makes it a `U`, once per content: a
    /// file with the same path and content id as one parsed before (by this or another loader
    /// sharing the cache) is not parsed again. `None` when there is no such file or it does not
    /// parse (the problems are recorded).
    fn load_cached<T: DeserializeOwned, U: Clone>(
        &mut self,
        path: &str,
        map: fn(&ParseCache) -> &ParsedFiles<U>,
        make: impl FnOnce(&Arc<str>, T, &mut Vec<Diagnostic>) -> U,
    ) -> Result<Option<U>, SourceError> {
        let file: Arc<str> = Arc::from(path);
        let key = self
            .source
            .content_id(path)
            .map(|id| (path.to_string(), id));
        let cached = key.as_ref().and_then(|k| {
            map(self.cache)
                .lock()
                .expect("parse cache lock")
                .get(k)
                .cloned()
        });
        let parsed = match cached {
            Some(p) => p,
            None => {
                let Some(bytes) = self.read(path)? else {
                    return Ok(None);
                };
                let p = parse_yaml::<T>(&file, bytes);
                let mut diags = p.diags;
                let value = p.value.map(|v| make(&file, v, &mut diags));
                let p = Parsed {
                    value,
                    diags,
                    text: p.text,
                };
                if let Some(k) = key {
                    map(self.cache)
                        .lock()
                        .expect("parse cache lock")
                        .insert(k, p.clone());
                }
                p
            }
        };
        Ok(self.take(&file, parsed))
    }

    /// Reads a file. A file formwork refuses to read (a link out of the repository, a device,
    /// a file too large) becomes an error diagnostic naming it, and `None`.
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.source.read(path) {
            Err(SourceError::Refused { path, reason }) => {
                let file: Arc<str> = Arc::from(path.as_str());
                self.diags.push(
                    Diagnostic::error(format!("{path} is not read: {reason}"))
                        .at(Loc::file_start(&file))
                        .help(reason.help()),
                );
                Ok(None)
            }
            other => other,
        }
    }

    /// Records a parsed file's text and diagnostics, and hands back its value.
    fn take<T>(&mut self, file: &Arc<str>, parsed: Parsed<T>) -> Option<T> {
        if let Some(text) = &parsed.text {
            self.texts.insert(file, text);
        }
        for d in parsed.diags {
            self.diags.push(d);
        }
        parsed.value
    }

    /// The environment `name`, or `None` when it has no file or the file does not parse.
    pub fn environment(&mut self, name: &str) -> Result<Option<Arc<Environment>>, SourceError> {
        if let Some(e) = self.environments.get(name) {
            return Ok(e.clone());
        }
        let path = format!("{ENVIRONMENTS_DIR}/{name}/{ENVIRONMENT_FILE}");
        let env = self.load_cached(
            &path,
            |c| &c.environments,
            |file, def: EnvironmentFile, _| {
                Arc::new(Environment {
                    name: name.to_string(),
                    file: file.clone(),
                    def,
                })
            },
        )?;
        self.environments.insert(name.to_string(), env.clone());
        Ok(env)
    }

    /// The pipeline `name` with its templates, or `None` when it has no file or the file does
    /// not parse.
    pub fn pipeline(&mut self, name: &str) -> Result<Option<Arc<Pipeline>>, SourceError> {
        if let Some(p) = self.pipelines.get(name) {
            return Ok(p.clone());
        }
        let dir = format!("{PIPELINES_DIR}/{name}");
        let path = format!("{dir}/{PIPELINE_FILE}");
        let file: Arc<str> = Arc::from(path.as_str());
        let Some(def) = self.load_cached(
            &path,
            |c| &c.pipelines,
            |file, mut def: PipelineFile, diags| {
                super::expand::expand(file, &mut def, diags);
                Arc::new(def)
            },
        )?
        else {
            self.pipelines.insert(name.to_string(), None);
            return Ok(None);
        };
        if def.pipeline.value != name {
            self.diags.push(
                Diagnostic::error(format!(
                    "the pipeline is named `{}` but lives in {dir}/",
                    def.pipeline.value
                ))
                .at(Loc::new(&file, def.pipeline.span))
                .help(format!(
                    "write `pipeline: {name}` or move the file to {PIPELINES_DIR}/{}/",
                    def.pipeline.value
                )),
            );
        }
        // Read every template first, parse each one not seen before once, then use them.
        let mut pending = Vec::new();
        for stack in def.stacks.values() {
            pending.push(self.stack_template(&file, &dir, &stack.template)?);
        }
        let mut to_parse: Vec<(String, Option<String>, Vec<u8>)> = Vec::new();
        for p in &mut pending {
            if let Pending::Parse { path, id, bytes } = p
                && !to_parse.iter().any(|(q, _, _)| q == path)
            {
                to_parse.push((path.clone(), id.clone(), std::mem::take(bytes)));
            }
        }
        let mut parsed: HashMap<String, CachedTemplate> = HashMap::new();
        for ((path, id, _), loaded) in to_parse.iter().zip(parse_templates(&to_parse)) {
            if let Some(id) = id {
                self.cache.keep_template(path, id, loaded.clone());
            }
            parsed.insert(path.clone(), loaded);
        }
        let mut templates = IndexMap::new();
        for (key, p) in def.stacks.keys().zip(pending) {
            let t = match p {
                Pending::Ready(t) => t,
                Pending::Cached { path, load, text } => self.use_template(&path, load, &text),
                Pending::Parse { path, .. } => {
                    let (load, text) = parsed[&path].clone();
                    self.use_template(&path, load, &text)
                }
            };
            templates.insert(key.value.clone(), t);
        }
        let published = self.published_templates(&file, &dir, &def);
        let nested = self.nested_templates(&templates, &published)?;
        let p = Arc::new(Pipeline {
            name: name.to_string(),
            dir,
            file,
            def,
            templates,
            published,
            nested,
        });
        self.pipelines.insert(name.to_string(), Some(p.clone()));
        Ok(Some(p))
    }

    /// The pipeline's `published_templates:` with directories from the repository root.
    fn published_templates(
        &mut self,
        file: &Arc<str>,
        dir: &str,
        def: &PipelineFile,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (prefix, local) in &def.published_templates {
            if !prefix.value.starts_with("https://") && !prefix.value.starts_with("s3://") {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` is not an https:// or s3:// URL prefix",
                        prefix.value
                    ))
                    .at(Loc::new(file, prefix.span))
                    .help("write the start of the TemplateURLs that name these templates, e.g. `https://s3.amazonaws.com/my-bucket/`"),
                );
                continue;
            }
            let t = local.value.trim();
            match join_path(dir, t.trim_end_matches('/')) {
                Some(path) if !t.starts_with('/') && !t.contains('\\') => {
                    out.insert(prefix.value.clone(), path);
                }
                _ => self.diags.push(
                    Diagnostic::error(format!("`{t}` is not a directory of the repository"))
                        .at(Loc::new(file, local.span))
                        .help("write a directory relative to the pipeline directory, with `/` separators"),
                ),
            }
        }
        out
    }

    /// Every template that the pipeline's templates nest from the repository (and those nest
    /// in turn), by path; `None` for one that could not be read. A `TemplateURL` naming a file
    /// that does not exist, or a path that leaves the repository, is reported at its line.
    fn nested_templates(
        &mut self,
        templates: &IndexMap<String, StackTemplate>,
        published: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, Option<Arc<Template>>>, SourceError> {
        let mut out: BTreeMap<String, Option<Arc<Template>>> = BTreeMap::new();
        let mut todo: Vec<(String, Arc<Template>)> = templates
            .values()
            .filter_map(|t| match t {
                StackTemplate::Local {
                    path,
                    template: Some(t),
                } => Some((path.clone(), t.clone())),
                _ => None,
            })
            .collect();
        let mut seen: std::collections::BTreeSet<String> =
            todo.iter().map(|(p, _)| p.clone()).collect();
        while let Some((parent, t)) = todo.pop() {
            let file: Arc<str> = Arc::from(parent.as_str());
            for n in t.nested_stacks() {
                let Some(url) = &n.url else { continue };
                let loc = Loc::new(&file, n.url_span);
                let path = match nested::child_source(&parent, url, published) {
                    ChildSource::Remote => continue,
                    ChildSource::Outside => {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "nested template `{url}` leaves the repository"
                            ))
                            .at(loc)
                            .help("keep nested templates inside the config repository"),
                        );
                        continue;
                    }
                    ChildSource::Local(path) => path,
                };
                if !seen.insert(path.clone()) {
                    continue;
                }
                let loaded = self.nested_template(&path, loc)?;
                if let Some(child) = &loaded {
                    todo.push((path.clone(), child.clone()));
                }
                out.insert(path, loaded);
            }
        }
        Ok(out)
    }

    /// Reads and parses one nested template (once per content across loaders).
    fn nested_template(
        &mut self,
        path: &str,
        loc: Loc,
    ) -> Result<Option<Arc<Template>>, SourceError> {
        let id = self.source.content_id(path);
        let cached = id.as_ref().and_then(|id| self.cache.template(path, id));
        let (load, text) = match cached {
            Some(c) => c,
            None => {
                if !self.source.exists(path)? {
                    self.diags.push(
                        Diagnostic::error(format!("nested template {path} does not exist"))
                            .at(loc)
                            .help("check the path: it is relative to the template that nests it (or mapped by `published_templates:` in pipeline.yml)"),
                    );
                    return Ok(None);
                }
                let Some(bytes) = self.read(path)? else {
                    return Ok(None);
                };
                let loaded = parse_templates(&[(path.to_string(), id.clone(), bytes)])
                    .pop()
                    .expect("one template parsed");
                if let Some(id) = id {
                    self.cache.keep_template(path, &id, loaded.clone());
                }
                loaded
            }
        };
        Ok(match self.use_template(path, load, &text) {
            StackTemplate::Local { template, .. } => template,
            StackTemplate::Url { .. } => None,
        })
    }

    /// Works out where a stack's template comes from: a URL, a problem, a parse already cached,
    /// or the bytes of a file to parse.
    fn stack_template(
        &mut self,
        file: &Arc<str>,
        dir: &str,
        template: &Spanned<String>,
    ) -> Result<Pending, SourceError> {
        let loc = Loc::new(file, template.span);
        let t = template.value.trim();
        if is_url(t) {
            if t.starts_with("http://") {
                self.diags.push(
                    Diagnostic::error("CloudFormation only fetches templates over https")
                        .at(loc)
                        .help("use an https:// or s3:// URL"),
                );
            }
            return Ok(Pending::Ready(StackTemplate::Url {
                url: template.clone(),
            }));
        }
        let missing = |path: String| {
            Pending::Ready(StackTemplate::Local {
                path,
                template: None,
            })
        };
        if t.starts_with('/') || t.contains("${") || t.contains('\\') {
            self.diags.push(
                Diagnostic::error(format!("`{t}` is not a template path formwork accepts"))
                    .at(loc)
                    .help("write a path relative to the pipeline directory with `/` separators (no expressions), or an https:// or s3:// URL"),
            );
            return Ok(missing(t.to_string()));
        }
        let Some(path) = join_path(dir, t) else {
            self.diags.push(
                Diagnostic::error(format!("template path `{t}` leaves the repository"))
                    .at(loc)
                    .help("templates must live inside the config repository"),
            );
            return Ok(missing(t.to_string()));
        };
        let id = self.source.content_id(&path);
        if let Some((load, text)) = id.as_ref().and_then(|id| self.cache.template(&path, id)) {
            return Ok(Pending::Cached { path, load, text });
        }
        if !self.source.exists(&path)? {
            self.diags.push(
                Diagnostic::error(format!("template file {path} does not exist"))
                    .at(loc)
                    .help("check the path; it is relative to the pipeline directory"),
            );
            return Ok(missing(path));
        }
        let Some(bytes) = self.read(&path)? else {
            return Ok(missing(path));
        };
        Ok(Pending::Parse { path, id, bytes })
    }

    fn use_template(
        &mut self,
        path: &str,
        load: Arc<TemplateLoad>,
        text: &Arc<str>,
    ) -> StackTemplate {
        let file: Arc<str> = Arc::from(path);
        self.texts.insert(&file, text);
        match &*load {
            Ok(t) => StackTemplate::Local {
                path: path.to_string(),
                template: Some(t.clone()),
            },
            Err(diags) => {
                for d in diags {
                    self.diags.push(d.clone());
                }
                StackTemplate::Local {
                    path: path.to_string(),
                    template: None,
                }
            }
        }
    }
}
