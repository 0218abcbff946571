//! Reading config files from a [`Source`]: pipelines with their templates, and environments.
//! Each file is read and parsed at most once per loader; templates are parsed once per content
//! across loaders that share a [`TemplateCache`]. Problems become diagnostics; only failures to
//! read the repository itself are errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use super::model::{EnvironmentFile, PipelineFile};
use crate::diag::{Diagnostic, Diagnostics, Loc, SourceMap, Span};
use crate::source::{Source, SourceError, join_path};
use crate::template::Template;
use crate::yaml::{self, Spanned};

pub const PIPELINES_DIR: &str = "pipelines";
pub const ENVIRONMENTS_DIR: &str = "environments";
pub const PIPELINE_FILE: &str = "pipeline.yml";
pub const ENVIRONMENT_FILE: &str = "environment.yml";

/// The result of reading one template file.
pub type TemplateLoad = Result<Arc<Template>, Vec<Diagnostic>>;

/// A template's path and content id.
type TemplateKey = (String, String);

/// A parsed template and its text (for quoting in diagnostics).
type CachedTemplate = (Arc<TemplateLoad>, Arc<str>);

/// Parsed templates by path and content id, shared between the revisions being compared.
#[derive(Default)]
pub struct TemplateCache {
    map: Mutex<HashMap<TemplateKey, CachedTemplate>>,
}

/// A pipeline and its templates.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    /// The pipeline directory, e.g. `pipelines/placeos`.
    pub dir: String,
    /// The pipeline file, e.g. `pipelines/placeos/pipeline.yml`.
    pub file: Arc<str>,
    pub def: PipelineFile,
    /// Each stack's template, by stack key.
    pub templates: IndexMap<String, StackTemplate>,
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
    cache: &'a TemplateCache,
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
    pub fn new(source: &'a dyn Source, cache: &'a TemplateCache) -> Loader<'a> {
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
            if self.source.content_id(&path).is_some() || self.source.read(&path)?.is_some() {
                out.push(name);
            } else {
                let alt = path.replace(".yml", ".yaml");
                let help = if self.source.read(&alt)?.is_some() {
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

    /// Reads and parses a YAML config file into `T`, recording its text for diagnostics.
    fn read_yaml<T: DeserializeOwned>(
        &mut self,
        path: &str,
    ) -> Result<Option<(Arc<str>, T)>, SourceError> {
        let Some(bytes) = self.source.read(path)? else {
            return Ok(None);
        };
        let file: Arc<str> = Arc::from(path);
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(format!(
                        "the file is not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ))
                    .at(Loc::file_start(&file))
                    .help("save it as UTF-8"),
                );
                return Ok(None);
            }
        };
        let text: Arc<str> = Arc::from(text);
        self.texts.insert(&file, &text);
        let node = match yaml::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(format!("YAML syntax error: {}", e.message))
                        .at(Loc::new(&file, Span::on_line(e.pos, 1)))
                        .help("fix the YAML syntax; indentation uses spaces, not tabs"),
                );
                return Ok(None);
            }
        };
        if node.is_null() {
            self.diags.push(
                Diagnostic::error("the file is empty")
                    .at(Loc::file_start(&file))
                    .help("see docs/config.md for what this file holds"),
            );
            return Ok(None);
        }
        let (value, errors) = yaml::from_node_recovering::<T>(&node);
        for e in errors {
            self.diags.push(
                Diagnostic::error(e.message)
                    .at(Loc::new(&file, e.span.unwrap_or_default()))
                    .help_opt(e.help)
                    .label_opt(e.label),
            );
        }
        Ok(value.map(|v| (file, v)))
    }

    /// The environment `name`, or `None` when it has no file or the file does not parse.
    pub fn environment(&mut self, name: &str) -> Result<Option<Arc<Environment>>, SourceError> {
        if let Some(e) = self.environments.get(name) {
            return Ok(e.clone());
        }
        let path = format!("{ENVIRONMENTS_DIR}/{name}/{ENVIRONMENT_FILE}");
        let env = self
            .read_yaml::<EnvironmentFile>(&path)?
            .map(|(file, def)| {
                Arc::new(Environment {
                    name: name.to_string(),
                    file,
                    def,
                })
            });
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
        let Some((file, def)) = self.read_yaml::<PipelineFile>(&path)? else {
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
        let mut templates = IndexMap::new();
        for (key, stack) in &def.stacks {
            let t = self.stack_template(&file, &dir, &stack.template)?;
            templates.insert(key.value.clone(), t);
        }
        let p = Arc::new(Pipeline {
            name: name.to_string(),
            dir,
            file,
            def,
            templates,
        });
        self.pipelines.insert(name.to_string(), Some(p.clone()));
        Ok(Some(p))
    }

    fn stack_template(
        &mut self,
        file: &Arc<str>,
        dir: &str,
        template: &Spanned<String>,
    ) -> Result<StackTemplate, SourceError> {
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
            return Ok(StackTemplate::Url {
                url: template.clone(),
            });
        }
        let missing = StackTemplate::Local {
            path: t.to_string(),
            template: None,
        };
        if t.starts_with('/') || t.contains("${") || t.contains('\\') {
            self.diags.push(
                Diagnostic::error(format!("`{t}` is not a template path formwork accepts"))
                    .at(loc)
                    .help("write a path relative to the pipeline directory with `/` separators (no expressions), or an https:// or s3:// URL"),
            );
            return Ok(missing);
        }
        let Some(path) = join_path(dir, t) else {
            self.diags.push(
                Diagnostic::error(format!("template path `{t}` leaves the repository"))
                    .at(loc)
                    .help("templates must live inside the config repository"),
            );
            return Ok(missing);
        };
        let id = self.source.content_id(&path);
        if let Some(id) = &id {
            let cached = self
                .cache
                .map
                .lock()
                .expect("template cache lock")
                .get(&(path.clone(), id.clone()))
                .cloned();
            if let Some((load, text)) = cached {
                return Ok(self.use_template(&path, load, &text));
            }
        }
        let Some(bytes) = self.source.read(&path)? else {
            self.diags.push(
                Diagnostic::error(format!("template file {path} does not exist"))
                    .at(loc)
                    .help("check the path; it is relative to the pipeline directory"),
            );
            return Ok(StackTemplate::Local {
                path,
                template: None,
            });
        };
        let tfile: Arc<str> = Arc::from(path.as_str());
        let load = Arc::new(Template::parse(&bytes, &tfile).map(Arc::new));
        let text: Arc<str> = Arc::from(String::from_utf8_lossy(&bytes).as_ref());
        if let Some(id) = id {
            self.cache
                .map
                .lock()
                .expect("template cache lock")
                .insert((path.clone(), id), (load.clone(), text.clone()));
        }
        Ok(self.use_template(&path, load, &text))
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
