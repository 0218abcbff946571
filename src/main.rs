//! The `formwork` command line.
//!
//! Exit codes scripts can rely on: 0 success with nothing to do, 2 success with changes found
//! (`affected`), 1 error (invalid config, unknown revision, unreadable repository).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use formwork::config::{Loader, ParseCache, check_pipeline, resolve_environment};
use formwork::diag::{Color, Diagnostics, SourceMap, render_all};
use formwork::git::{self, Revision};
use formwork::source::{Directory, Source};
use formwork::{affected, render, schema};

/// GitOps for AWS CloudFormation: plan every affected stack of every environment from a pull
/// request, apply the reviewed change sets in dependency order on merge.
#[derive(Parser)]
#[command(name = "formwork", version, about, long_about = None)]
struct Cli {
    /// The config repository: the directory holding pipelines/ and environments/ (it may be a
    /// subdirectory of a git repository).
    #[arg(long, global = true, default_value = ".", env = "FORMWORK_REPO")]
    repo: PathBuf,

    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,

    /// More log output (-v info, -vv debug, -vvv trace); FORMWORK_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphOutput {
    Text,
    Json,
    Dot,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    Pipeline,
    Environment,
}

#[derive(Subcommand)]
enum Command {
    /// Check every pipeline, template and environment; report all problems with file:line:col.
    ///
    /// Reads the working tree, or a revision with --rev. Exit code 0 when valid (warnings
    /// allowed), 1 on errors.
    Validate {
        /// Check this git revision (branch, tag, commit) instead of the working tree.
        #[arg(long)]
        rev: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List the stacks of every environment that a change between two revisions affects.
    ///
    /// Exit code 0 when nothing is affected, 2 when something is, 1 on errors.
    Affected {
        /// The revision before the change (e.g. the pull request's base branch).
        #[arg(long)]
        base: String,
        /// The revision after the change.
        #[arg(long, default_value = "HEAD")]
        head: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show an environment's stacks in dependency order, in waves that can deploy together.
    Graph {
        /// The environment (a directory under environments/).
        #[arg(long, short)]
        env: String,
        /// Read this git revision instead of the working tree.
        #[arg(long)]
        rev: Option<String>,
        #[arg(long, value_enum, default_value_t = GraphOutput::Text)]
        output: GraphOutput,
    },
    /// Print the JSON Schema of a config file kind, or write both into a directory.
    Schema {
        /// Which schema to print.
        #[arg(value_enum)]
        kind: Option<SchemaKind>,
        /// Write pipeline.schema.json and environment.schema.json into this directory.
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Objects come from the local repository; git itself does not re-hash them on every read.
    git2::opts::strict_hash_verification(false);
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORMWORK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn color(choice: ColorChoice) -> Color {
    match choice {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto => {
            if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
                Color::Always
            } else {
                Color::Never
            }
        }
    }
}

/// Writes to standard output; a closed pipe (`formwork … | head`) ends the output quietly and
/// the command keeps its exit code.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    emit(&text)
}

fn print_diags(diags: &Diagnostics, texts: &SourceMap, c: Color) {
    if !diags.is_empty() {
        eprint!("{}", render_all(diags, texts, c));
    }
}

fn run(cli: Cli) -> Result<u8> {
    let c = color(cli.color);
    match cli.command {
        Command::Validate { rev, output } => validate(&cli.repo, rev.as_deref(), output, c),
        Command::Affected { base, head, output } => {
            affected_cmd(&cli.repo, &base, &head, output, c)
        }
        Command::Graph { env, rev, output } => graph(&cli.repo, &env, rev.as_deref(), output, c),
        Command::Schema { kind, write } => schema_cmd(kind, write),
    }
}

/// Runs `f` on the files of `rev`, or of the working tree of `repo` when there is no `rev`.
fn with_source<T>(
    repo: &std::path::Path,
    rev: Option<&str>,
    f: impl FnOnce(&dyn Source) -> Result<T>,
) -> Result<T> {
    match rev {
        Some(rev) => {
            let r = git::open(repo)?;
            let prefix = git::config_prefix(&r, repo);
            let revision = Revision::resolve(&r, rev)?;
            let src = revision.source(&r, &prefix)?;
            f(&src)
        }
        None => {
            if !repo.is_dir() {
                bail!("{} is not a directory", repo.display());
            }
            f(&Directory::new(repo))
        }
    }
}

fn validate(repo: &std::path::Path, rev: Option<&str>, output: Output, c: Color) -> Result<u8> {
    with_source(repo, rev, |src| {
        let v = formwork::config::validate_repository(src)
            .with_context(|| format!("reading {}", src.describe()))?;
        match output {
            Output::Json => print_json(&render::validate_json(&v, &src.describe()))?,
            Output::Text => {
                print_diags(&v.diags, &v.texts, c);
                emit(&format!("{}\n", render::validate_summary(&v)))?;
            }
        }
        Ok(if v.diags.has_errors() { 1 } else { 0 })
    })
}

fn affected_cmd(
    repo: &std::path::Path,
    base: &str,
    head: &str,
    output: Output,
    c: Color,
) -> Result<u8> {
    let r = git::open(repo)?;
    let prefix = git::config_prefix(&r, repo);
    // The parsed files live as long as the process; freeing them one by one on the way out
    // would only cost time.
    let cache: &'static ParseCache = Box::leak(Box::default());
    let report = affected::affected(&r, &prefix, base, head, cache)?;
    let invalid = report.diags.has_errors();
    match output {
        Output::Json => print_json(&render::affected_json(&report))?,
        Output::Text => {
            print_diags(&report.diags, &report.texts, c);
            if invalid {
                eprintln!(
                    "error: the config at {head} has errors in the environments this change touches; fix them first"
                );
            } else {
                emit(&render::affected_text(&report))?;
            }
        }
    }
    Ok(if invalid {
        1
    } else if report.is_empty() {
        0
    } else {
        2
    })
}

fn graph(
    repo: &std::path::Path,
    env: &str,
    rev: Option<&str>,
    output: GraphOutput,
    c: Color,
) -> Result<u8> {
    with_source(repo, rev, |src| {
        let cache = ParseCache::default();
        let mut loader = Loader::new(src, &cache);
        let envs = loader.environment_names()?;
        let Some(e) = loader.environment(env)? else {
            print_diags(&loader.diags, &loader.texts, c);
            if envs.iter().any(|n| n == env) {
                return Ok(1);
            }
            let near = formwork::suggest::nearest(env, envs.iter().map(String::as_str))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            bail!(
                "there is no environment `{env}`{near} in {}; environments: {}",
                src.describe(),
                envs.join(", ")
            );
        };
        let pipelines = loader.pipeline_names()?;
        let p = loader.pipeline(&e.def.pipeline)?;
        let mut diags = std::mem::take(&mut loader.diags);
        if let Some(p) = &p {
            diags.extend(check_pipeline(p));
        }
        let (desired, d) = resolve_environment(&e, p.as_deref(), &pipelines);
        diags.extend(d);
        print_diags(&diags, &loader.texts, c);
        let Some(desired) = desired.filter(|_| !diags.has_errors()) else {
            return Ok(1);
        };
        match output {
            GraphOutput::Text => emit(&render::graph_text(&desired))?,
            GraphOutput::Json => print_json(&render::graph_json(&desired))?,
            GraphOutput::Dot => emit(&render::graph_dot(&desired))?,
        }
        Ok(0)
    })
}

fn schema_cmd(kind: Option<SchemaKind>, write: Option<PathBuf>) -> Result<u8> {
    if let Some(dir) = write {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, s) in [
            (schema::PIPELINE_SCHEMA_FILE, schema::pipeline_schema()),
            (
                schema::ENVIRONMENT_SCHEMA_FILE,
                schema::environment_schema(),
            ),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, schema::to_text(&s))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(0);
    }
    let s = match kind {
        Some(SchemaKind::Environment) => schema::environment_schema(),
        Some(SchemaKind::Pipeline) | None => schema::pipeline_schema(),
    };
    emit(&schema::to_text(&s))?;
    Ok(0)
}
