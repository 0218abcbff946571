//! The `formwork` command line.
//!
//! Exit codes scripts can rely on: 0 success with nothing to do, 2 success with changes found
//! (`affected`, `plan`, `drift`), 1 error (invalid config, unknown revision, AWS failure, a usage
//! error).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

/// GitOps for AWS CloudFormation: plan every affected stack of every environment from a pull
/// request, apply the reviewed change sets in dependency order on merge.
#[derive(Parser)]
#[command(name = "formwork", version, about, long_about = None)]
pub struct Cli {
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

    /// How log lines on standard error are written: `text` for people, `json` (one object per
    /// line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FORMWORK_LOG_FORMAT")]
    log_format: LogFormat,

    /// Where formwork keeps its state: plans, runs, locks. Default: .formwork/ in the config
    /// repository.
    #[arg(long, global = true, env = "FORMWORK_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// The state store: `sqlite` (a file in the data directory), `sqlite:PATH`, or
    /// `dynamodb:TABLE` (shared by several replicas).
    #[arg(long, global = true, env = "FORMWORK_STORE", default_value = "sqlite")]
    store: String,

    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The data directory: `--data-dir`, else `.formwork/` in the config repository.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.repo.join(".formwork"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphOutput {
    Text,
    Json,
    Dot,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Pipeline,
    Environment,
    /// `formwork-server.yml`, the settings of `formwork serve`.
    Server,
    /// `policies/policies.yml`, the severities of the policy rules.
    Policies,
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
    /// Plan the stacks of the environments: a CloudFormation change set for each, inputs filled
    /// in, rendered for people and machines, and recorded for apply.
    ///
    /// With --base, only the stacks a change from --base to --head affects; without, every stack
    /// of the chosen environments. With --offline, no AWS at all: the plan is worked out by
    /// comparing the two revisions (--base required). Exit code 0 no changes, 2 changes
    /// planned, 1 error.
    Plan(cli::plan::PlanArgs),
    /// Apply a reviewed plan to one environment: execute its change sets in dependency order.
    ///
    /// Applies the plan given with --plan, else the newest recorded plan of the environment;
    /// with --base, plans the change from --base to --head and applies it at once. Refuses when
    /// the plan no longer matches what is deployed or configured. Exit code 0 when everything
    /// was applied, 3 when it stopped at a gate (`formwork continue`), 1 otherwise.
    Apply(cli::apply::ApplyArgs),
    /// Detect drift: whether the deployed stacks of the environments still match what
    /// CloudFormation deployed, or their resources were changed or deleted by hand.
    ///
    /// Runs CloudFormation drift detection on every stack of the chosen environments that
    /// exists, a bounded number at a time, and reports each modified or deleted resource with
    /// its differing properties (secret values masked). Changes nothing. Exit code 0 nothing
    /// drifted, 2 something drifted, 1 a stack or environment could not be checked.
    Drift(cli::drift::DriftArgs),
    /// Show what each environment runs: deployed commit, lock, unfinished and recent runs.
    Status(cli::status::StatusArgs),
    /// Force an environment's lock open (asks first; the unlock is recorded).
    Unlock(cli::status::UnlockArgs),
    /// Pass a gate: record that its manual step is done, so that apply goes on past it.
    Continue(cli::status::ContinueArgs),
    /// Run the agent: watch the config repository, plan pull requests, apply merges.
    ///
    /// Settings come from --config (formwork-server.yml), with flags and FORMWORK_* variables
    /// over them; the webhook secret from FORMWORK_WEBHOOK_SECRET (or a file), GitHub
    /// credentials as for `plan --github-pr`. Stops on SIGTERM or Ctrl-C, letting running
    /// applies reach a recorded state.
    Serve(cli::serve::ServeArgs),
    /// Do what a GitHub event calls for (the GitHub Actions entry point): plan a pull request,
    /// apply a push to the default branch, or run a `/formwork` comment command.
    GithubEvent(cli::github_event::EventArgs),
    /// Start a config repository: one pipeline of two stacks, one environment, the JSON
    /// Schemas for editors, the GitHub workflows that plan pull requests and apply merges, and
    /// `.formwork/` in .gitignore. Existing files are kept.
    Init {
        /// The directory to start it in (default: --repo, the current directory).
        dir: Option<PathBuf>,
        /// The first pipeline's name.
        #[arg(long, default_value = "app")]
        pipeline: String,
        /// The first environment's name.
        #[arg(long = "env", default_value = "dev")]
        env: String,
        /// The AWS account the environment deploys to (12 digits).
        #[arg(long, default_value = "123456789012")]
        account: String,
        /// Its region.
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// Print a shell completion script: `formwork completions bash > /etc/bash_completion.d/formwork`,
    /// `formwork completions zsh > "${fpath[1]}/_formwork"`, `formwork completions fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write formwork's manual pages (formwork.1 and one per command) into a directory, e.g.
    /// `formwork man --dir /usr/local/share/man/man1`.
    Man {
        /// Where to write them.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print the least-privilege IAM policy (JSON) for the role that plans (`--plan`) or the
    /// one that applies (`--apply`), scoped to the stacks, SSM parameters, artifact buckets and
    /// roles of the config's environments (all, or those given with --env).
    ///
    /// It covers formwork's own calls; the resources a template creates need permissions of
    /// their own (see docs/iam.md).
    IamPolicy {
        /// The policy of the role that plans pull requests.
        #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
        plan: bool,
        /// The policy of the role that applies on merge.
        #[arg(long)]
        apply: bool,
        /// Only these environments (repeat, or separate with commas).
        #[arg(long = "env", short = 'e', value_name = "NAME", value_delimiter = ',')]
        envs: Vec<String>,
        /// Read the config at this revision instead of the working tree.
        #[arg(long)]
        rev: Option<String>,
    },
    /// Convert a project of another tool into pipelines/ and environments/.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Policy rules (`policies/*.guard`, written in CloudFormation Guard).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print the JSON Schema of a config file kind, or write both into a directory.
    Schema {
        /// Which schema to print.
        #[arg(value_enum)]
        kind: Option<SchemaKind>,
        /// Write pipeline.schema.json, environment.schema.json and server.schema.json into this
        /// directory.
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// A Sceptre project (config/ and templates/): each top-level stack group becomes an
    /// environment, its stacks one pipeline, with Sceptre's stack names kept; every item without
    /// a formwork equivalent is listed with file:line:col.
    ///
    /// Exit code 0 when everything was mapped, 2 when some items were not (the files are
    /// written all the same), 1 on errors (nothing written; existing files are kept unless
    /// --force).
    Sceptre(cli::import_sceptre::SceptreArgs),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the rules' own tests: each `policies/NAME.guard` against its cases in
    /// `policies/tests/NAME_tests.yaml` (Guard's test format).
    ///
    /// Exit code 0 when every test passes, 1 when one fails or a rule file does not parse.
    Test {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

fn main() -> ExitCode {
    // Objects come from the local repository; git itself does not re-hash them on every read.
    git2::opts::strict_hash_verification(false);
    // A usage error exits 1 like any other error (clap's own convention, 2, means "changes"
    // here); --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    init_logging(
        cli.verbose,
        cli.log_format,
        cli::color(cli.color) == formwork::diag::Color::Always,
    );
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to standard error, scrubbed of every secret the run has read. `-v`… raise formwork's
/// own level; the AWS SDK and HTTP stack never log below INFO, since at DEBUG and TRACE they
/// print request and response bodies, parameter values included, before formwork could know
/// which of them are secret.
fn init_logging(verbose: u8, format: LogFormat, ansi: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORMWORK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,formwork={level}")));
    let quiet_dependencies = tracing_subscriber::filter::filter_fn(|meta| {
        let t = meta.target();
        let dependency = ["aws_", "hyper", "h2", "rustls", "tower", "reqwest"]
            .iter()
            .any(|p| t.starts_with(p));
        !(dependency && *meta.level() > tracing::Level::INFO)
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| ScrubbingWriter(Vec::new()))
        .with_target(false);
    let layer = match format {
        LogFormat::Text => layer.with_ansi(ansi).boxed(),
        LogFormat::Json => layer.json().with_ansi(false).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer.with_filter(quiet_dependencies))
        .init();
}

/// Collects one log event and writes it to standard error with secrets replaced by `****`.
struct ScrubbingWriter(Vec<u8>);

impl std::io::Write for ScrubbingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbingWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let clean = formwork::secrets::global().scrub(&text);
        let _ = std::io::Write::write_all(&mut std::io::stderr(), clean.as_bytes());
    }
}

fn run(cli: Cli) -> Result<u8> {
    let c = cli::color(cli.color);
    match &cli.command {
        Command::Validate { rev, output } => {
            cli::validate::run(&cli.repo, rev.as_deref(), *output, c)
        }
        Command::Affected { base, head, output } => {
            cli::affected::run(&cli.repo, base, head, *output, c)
        }
        Command::Graph { env, rev, output } => {
            cli::graph::run(&cli.repo, env, rev.as_deref(), *output, c)
        }
        Command::Plan(args) => cli::plan::run(&cli, args, c),
        Command::Apply(args) => cli::apply::run(&cli, args, c),
        Command::Drift(args) => cli::drift::run(&cli, args, c),
        Command::Status(args) => cli::status::run(&cli, args),
        Command::Unlock(args) => cli::status::unlock(&cli, args),
        Command::Continue(args) => cli::status::continue_gate(&cli, args, c),
        Command::GithubEvent(args) => cli::github_event::run(&cli, args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "formwork", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(dir)?;
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(cmd, dir)?;
            eprintln!("wrote the manual pages into {}", dir.display());
            Ok(0)
        }
        Command::Init {
            dir,
            pipeline,
            env,
            account,
            region,
        } => cli::init::run(&cli::init::InitArgs {
            dir: dir.as_deref().unwrap_or(&cli.repo),
            pipeline,
            env,
            account,
            region,
        }),
        Command::Import {
            command: ImportCommand::Sceptre(args),
        } => cli::import_sceptre::run(&cli.repo, args),
        Command::IamPolicy {
            apply, envs, rev, ..
        } => cli::iam_policy::run(
            &cli.repo,
            rev.as_deref(),
            if *apply {
                formwork::iam::Role::Apply
            } else {
                formwork::iam::Role::Plan
            },
            envs,
            &cli.store,
            c,
        ),
        Command::Serve(args) => cli::serve::run(&cli, args),
        Command::Policy {
            command: PolicyCommand::Test { output },
        } => cli::policy::test(&cli.repo, *output),
        Command::Schema { kind, write } => cli::schema::run(*kind, write.clone()),
    }
}
