//! Benchmark: `formwork affected` against `git diff --name-only` on the same two commits of a
//! large generated config repository (4 pipelines × 20 stacks, 200 environments, a few hundred
//! commits of history).
//!
//! This is a benchmark, not a test: it prints a report and never fails on a missed target. It
//! does fail when formwork does not do the work it is timed on (wrong exit code, wrong units).
//!
//! The formwork binary is `$FORMWORK_BIN`, else `target/release/formwork` in this project. Run
//! `scripts/bench-affected`, which builds it first.
//!
//! Knobs (environment variables): `BENCH_RUNS` (timed runs per command, default 30),
//! `BENCH_WARMUP` (untimed runs first, default 3), `BENCH_KEEP=1` (keep the generated repository
//! and print where it is).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use git2::{FileMode, Oid, Repository, Signature, Time};

const PIPELINES: [&str; 4] = ["payments", "search", "identity", "analytics"];
const STACKS: usize = 20;
const ENVS_PER_PIPELINE: usize = 50;
const REGIONS: [&str; 5] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
];
const SIZES: [&str; 3] = ["small", "medium", "large"];
/// Commits of history between the initial commit and BASE.
const HISTORY_COMMITS: usize = 300;
/// Every this many history commits changes a template instead of an environment.
const TEMPLATE_EVERY: usize = 25;
/// The ratio of medians formwork must stay within, for scenario 1.
const TARGET_RATIO: f64 = 3.0;

// ---------------------------------------------------------------------------------------------
// The config repository, as state from which every file is rendered.
// ---------------------------------------------------------------------------------------------

fn stack_key(n: usize) -> String {
    format!("s{n:02}")
}

/// The stack whose `Id` output stack `n` takes as `UpstreamId`: a binary tree rooted at s00.
fn parent(n: usize) -> Option<usize> {
    (n > 0).then(|| (n - 1) / 2)
}

/// Whether stack `n` also takes `s00`'s `Arn` (a second edge into the shared root).
fn takes_shared(n: usize) -> bool {
    n > 0 && n.is_multiple_of(5)
}

/// Whether stack `n`'s template has an IAM role (so it needs CAPABILITY_IAM).
fn has_role(n: usize) -> bool {
    n % 4 == 3
}

/// The stacks that take an output of stack `n`, directly.
fn consumers(n: usize) -> Vec<usize> {
    (0..STACKS)
        .filter(|&m| parent(m) == Some(n) || (n == 0 && takes_shared(m)))
        .collect()
}

/// Stack `n` and every stack that (transitively) takes one of its outputs.
fn closure(n: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::from([n]);
    let mut todo = vec![n];
    while let Some(s) = todo.pop() {
        for c in consumers(s) {
            if out.insert(c) {
                todo.push(c);
            }
        }
    }
    out
}

fn env_name(p: usize, i: usize) -> String {
    format!("{}-{i:02}", PIPELINES[p])
}

struct Config {
    /// `visibility[p][n]`: a property of stack n's template in pipeline p, bumped by template
    /// changes.
    visibility: Vec<Vec<u32>>,
    /// `count[e][n]`: environment e's InstanceCount for stack n (e = p * 50 + i).
    count: Vec<Vec<u32>>,
}

impl Config {
    fn new() -> Config {
        Config {
            visibility: vec![vec![30; STACKS]; PIPELINES.len()],
            count: (0..PIPELINES.len() * ENVS_PER_PIPELINE)
                .map(|e| (0..STACKS).map(|n| ((e + n) % 5 + 1) as u32).collect())
                .collect(),
        }
    }

    fn template(&self, p: usize, n: usize) -> String {
        let pipe = PIPELINES[p];
        let key = stack_key(n);
        let mut t = String::new();
        let _ = writeln!(t, "AWSTemplateFormatVersion: \"2010-09-09\"");
        let _ = writeln!(t, "Description: {pipe} {key}, generated for the benchmark");
        t.push_str("Parameters:\n  EnvironmentName:\n    Type: String\n");
        t.push_str("    AllowedPattern: '[a-z][a-z0-9-]*'\n");
        if parent(n).is_some() {
            t.push_str("  UpstreamId:\n    Type: String\n");
        }
        if takes_shared(n) {
            t.push_str("  SharedArn:\n    Type: String\n");
        }
        t.push_str(
            "  InstanceCount:\n    Type: Number\n    Default: 2\n    MinValue: 1\n    MaxValue: 50\n",
        );
        t.push_str("  Size:\n    Type: String\n    Default: small\n");
        t.push_str("    AllowedValues: [small, medium, large]\n");
        t.push_str("Resources:\n");
        t.push_str("  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n");
        let _ = writeln!(t, "      QueueName: !Sub \"${{EnvironmentName}}-{key}\"");
        let _ = writeln!(t, "      VisibilityTimeout: {}", self.visibility[p][n]);
        t.push_str("  Config:\n    Type: AWS::SSM::Parameter\n    Properties:\n");
        let _ = writeln!(
            t,
            "      Name: !Sub \"/${{EnvironmentName}}/{pipe}/{key}/config\""
        );
        t.push_str("      Type: String\n");
        // The queue's tuning is written into the value too, so that a template change reaches
        // the output `Id` (the value) and every stack below, as a parameter change does.
        let mut value = format!("${{Size}} x${{InstanceCount}} v{}", self.visibility[p][n]);
        if parent(n).is_some() {
            value.push_str(" from ${UpstreamId}");
        }
        if takes_shared(n) {
            value.push_str(" shared ${SharedArn}");
        }
        let _ = writeln!(t, "      Value: !Sub \"{value}\"");
        if has_role(n) {
            t.push_str(
                "  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: \"2012-10-17\"
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: queue
          PolicyDocument:
            Version: \"2012-10-17\"
            Statement:
              - Effect: Allow
                Action: [sqs:SendMessage, sqs:ReceiveMessage]
                Resource: !GetAtt Queue.Arn
",
            );
        }
        t.push_str("Outputs:\n");
        t.push_str("  Id:\n    Value: !GetAtt Config.Value\n");
        t.push_str("  Arn:\n    Value: !GetAtt Queue.Arn\n");
        t.push_str("  Url:\n    Value: !Ref Queue\n");
        t
    }

    fn pipeline(&self, p: usize) -> String {
        let pipe = PIPELINES[p];
        let mut t = String::new();
        let _ = writeln!(t, "pipeline: {pipe}");
        let _ = writeln!(
            t,
            "description: The {pipe} system ({STACKS} stacks), generated for the benchmark"
        );
        t.push_str(
            "vars:
  Team:
    description: The owning team, for tags
    default: platform
  CostCentre:
    description: Where the bill goes
defaults:
  parameters:
    EnvironmentName: ${env.name}
  tags:
",
        );
        let _ = writeln!(t, "    system: {pipe}");
        t.push_str("    team: ${var.Team}\n    cost-centre: ${var.CostCentre}\nstacks:\n");
        for n in 0..STACKS {
            let key = stack_key(n);
            let _ = writeln!(t, "  {key}:");
            let _ = writeln!(t, "    template: templates/{key}.yml");
            let _ = writeln!(t, "    description: Part {n} of {pipe}");
            if parent(n).is_some() || takes_shared(n) {
                t.push_str("    parameters:\n");
            }
            if let Some(up) = parent(n) {
                let _ = writeln!(t, "      UpstreamId: ${{{}.Id}}", stack_key(up));
            }
            if takes_shared(n) {
                t.push_str("      SharedArn: ${s00.Arn}\n");
            }
        }
        t
    }

    fn environment(&self, e: usize) -> String {
        let (p, i) = (e / ENVS_PER_PIPELINE, e % ENVS_PER_PIPELINE);
        let name = env_name(p, i);
        let mut t = String::new();
        let _ = writeln!(t, "pipeline: {}", PIPELINES[p]);
        let _ = writeln!(t, "description: {name}, generated for the benchmark");
        let _ = writeln!(t, "account: \"{:012}\"", 100_000_000_000u64 + e as u64);
        let _ = writeln!(t, "region: {}", REGIONS[e % REGIONS.len()]);
        t.push_str("vars:\n");
        let _ = writeln!(t, "  CostCentre: cc-{:04}", 1000 + e);
        if i % 3 == 0 {
            let _ = writeln!(t, "  Team: team-{}", i % 7);
        }
        t.push_str("tags:\n");
        let _ = writeln!(t, "  environment: {name}");
        t.push_str("stacks:\n");
        for n in 0..STACKS {
            let _ = writeln!(t, "  {}:", stack_key(n));
            t.push_str("    parameters:\n");
            let _ = writeln!(t, "      InstanceCount: {}", self.count[e][n]);
            if (e + n).is_multiple_of(4) {
                let _ = writeln!(t, "      Size: {}", SIZES[(e + n) % SIZES.len()]);
            }
        }
        t
    }
}

// ---------------------------------------------------------------------------------------------
// Writing it into git, tree by tree, without a work tree.
// ---------------------------------------------------------------------------------------------

/// The repository's trees as blob ids, rebuilt only along the path of a change.
struct Trees<'r> {
    repo: &'r Repository,
    env_dirs: Vec<Oid>,
    pipeline_dirs: Vec<Oid>,
    readme: Oid,
    parent: Option<Oid>,
    commits: usize,
    clock: i64,
}

impl<'r> Trees<'r> {
    fn new(repo: &'r Repository, cfg: &Config) -> Result<Trees<'r>, git2::Error> {
        let readme =
            repo.blob(b"# Config repository\n\nGenerated by the formwork `affected` benchmark.\n")?;
        let mut t = Trees {
            repo,
            env_dirs: Vec::new(),
            pipeline_dirs: Vec::new(),
            readme,
            parent: None,
            commits: 0,
            clock: 1_700_000_000,
        };
        for p in 0..PIPELINES.len() {
            let id = t.pipeline_dir(cfg, p)?;
            t.pipeline_dirs.push(id);
        }
        for e in 0..cfg.count.len() {
            let id = t.env_dir(cfg, e)?;
            t.env_dirs.push(id);
        }
        Ok(t)
    }

    fn tree(&self, entries: &[(&str, Oid, FileMode)]) -> Result<Oid, git2::Error> {
        let mut b = self.repo.treebuilder(None)?;
        for (name, id, mode) in entries {
            b.insert(name, *id, i32::from(*mode))?;
        }
        b.write()
    }

    fn pipeline_dir(&self, cfg: &Config, p: usize) -> Result<Oid, git2::Error> {
        let mut templates = Vec::new();
        for n in 0..STACKS {
            let id = self.repo.blob(cfg.template(p, n).as_bytes())?;
            templates.push((format!("{}.yml", stack_key(n)), id));
        }
        let entries: Vec<(&str, Oid, FileMode)> = templates
            .iter()
            .map(|(n, id)| (n.as_str(), *id, FileMode::Blob))
            .collect();
        let templates = self.tree(&entries)?;
        let pipeline = self.repo.blob(cfg.pipeline(p).as_bytes())?;
        self.tree(&[
            ("pipeline.yml", pipeline, FileMode::Blob),
            ("templates", templates, FileMode::Tree),
        ])
    }

    fn env_dir(&self, cfg: &Config, e: usize) -> Result<Oid, git2::Error> {
        let id = self.repo.blob(cfg.environment(e).as_bytes())?;
        self.tree(&[("environment.yml", id, FileMode::Blob)])
    }

    fn root(&self) -> Result<Oid, git2::Error> {
        let env_names: Vec<String> = (0..self.env_dirs.len())
            .map(|e| env_name(e / ENVS_PER_PIPELINE, e % ENVS_PER_PIPELINE))
            .collect();
        let envs: Vec<(&str, Oid, FileMode)> = env_names
            .iter()
            .zip(&self.env_dirs)
            .map(|(n, id)| (n.as_str(), *id, FileMode::Tree))
            .collect();
        let envs = self.tree(&envs)?;
        let pipes: Vec<(&str, Oid, FileMode)> = PIPELINES
            .iter()
            .zip(&self.pipeline_dirs)
            .map(|(n, id)| (*n, *id, FileMode::Tree))
            .collect();
        let pipes = self.tree(&pipes)?;
        self.tree(&[
            ("README.md", self.readme, FileMode::Blob),
            ("environments", envs, FileMode::Tree),
            ("pipelines", pipes, FileMode::Tree),
        ])
    }

    /// Commits the current trees on top of `parent` (the previous commit when `None`), without
    /// moving any reference.
    fn commit(&mut self, message: &str, parent: Option<Oid>) -> Result<Oid, git2::Error> {
        let tree = self.repo.find_tree(self.root()?)?;
        self.clock += 600;
        let sig = Signature::new("Bench", "bench@example.com", &Time::new(self.clock, 0))?;
        let parent = match parent.or(self.parent) {
            Some(id) => Some(self.repo.find_commit(id)?),
            None => None,
        };
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = self
            .repo
            .commit(None, &sig, &sig, message, &tree, &parents)?;
        self.parent = Some(id);
        self.commits += 1;
        Ok(id)
    }
}

/// A small deterministic generator (xorshift), so every run builds the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A value different from `v` in 1..=50.
fn bump(v: u32) -> u32 {
    if v >= 50 { 1 } else { v + 1 }
}

struct Generated {
    repo: Repository,
    commits: usize,
    base: Oid,
    /// Scenario 1: one parameter of one environment.
    head_env: Oid,
    env_change: (usize, usize),
    /// Scenario 2: one template of one pipeline.
    head_template: Oid,
    template_change: (usize, usize),
}

fn generate(dir: &Path) -> Result<Generated, git2::Error> {
    let repo = Repository::init(dir)?;
    let mut cfg = Config::new();
    let (commits, base, head_env, head_template, env_change, template_change) = {
        let mut trees = Trees::new(&repo, &cfg)?;
        trees.commit("Initial config: 4 pipelines, 200 environments", None)?;
        let mut rng = Rng(0x5eed_f00d_cafe_beef);
        for c in 1..=HISTORY_COMMITS {
            if c % TEMPLATE_EVERY == 0 {
                let (p, n) = (rng.below(PIPELINES.len()), rng.below(STACKS));
                cfg.visibility[p][n] += 5;
                trees.pipeline_dirs[p] = trees.pipeline_dir(&cfg, p)?;
                let msg = format!("{}: tune {} queue", PIPELINES[p], stack_key(n));
                trees.commit(&msg, None)?;
            } else {
                let (e, n) = (rng.below(cfg.count.len()), rng.below(STACKS));
                cfg.count[e][n] = bump(cfg.count[e][n]);
                trees.env_dirs[e] = trees.env_dir(&cfg, e)?;
                let name = env_name(e / ENVS_PER_PIPELINE, e % ENVS_PER_PIPELINE);
                let msg = format!("{name}: scale {} to {}", stack_key(n), cfg.count[e][n]);
                trees.commit(&msg, None)?;
            }
        }
        // BASE: one more ordinary commit on top of the history.
        let e = 3;
        cfg.count[e][7] = bump(cfg.count[e][7]);
        trees.env_dirs[e] = trees.env_dir(&cfg, e)?;
        let base = trees.commit("payments-03: scale s07", None)?;

        // HEAD of scenario 1: one parameter of one environment, a stack high in the tree.
        let env_change = (ENVS_PER_PIPELINE + 17, 1); // search-17, s01
        let (e, n) = env_change;
        let saved_env = trees.env_dirs[e];
        cfg.count[e][n] = bump(cfg.count[e][n]);
        trees.env_dirs[e] = trees.env_dir(&cfg, e)?;
        let head_env = trees.commit("search-17: scale s01", Some(base))?;
        trees.env_dirs[e] = saved_env;

        // HEAD of scenario 2: one shared template of one pipeline.
        let template_change = (2, 3); // identity, s03
        let (p, n) = template_change;
        cfg.visibility[p][n] += 7;
        trees.pipeline_dirs[p] = trees.pipeline_dir(&cfg, p)?;
        let head_template = trees.commit("identity: tune s03 queue", Some(base))?;
        (
            trees.commits,
            base,
            head_env,
            head_template,
            env_change,
            template_change,
        )
    };
    repo.reference("refs/heads/main", base, true, "base")?;
    repo.reference("refs/heads/scale-search-17", head_env, true, "scenario 1")?;
    repo.reference(
        "refs/heads/tune-identity",
        head_template,
        true,
        "scenario 2",
    )?;
    repo.set_head("refs/heads/scale-search-17")?;
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;
    Ok(Generated {
        repo,
        commits,
        base,
        head_env,
        env_change,
        head_template,
        template_change,
    })
}

// ---------------------------------------------------------------------------------------------
// Running and timing.
// ---------------------------------------------------------------------------------------------

fn formwork_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FORMWORK_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "FORMWORK_BIN={} is not a file", p.display());
        return p;
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/formwork");
    if p.is_file() {
        return p;
    }
    panic!(
        "no formwork binary at {}: run scripts/bench-affected, or `cargo build --release --bin formwork` first, or set FORMWORK_BIN",
        p.display()
    );
}

fn run(mut cmd: Command) -> (Duration, Output) {
    let start = Instant::now();
    let out = cmd.output().expect("start process");
    (start.elapsed(), out)
}

fn git_diff(repo: &Path, base: &str, head: &str) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(repo)
        .args(["diff", "--name-only", base, head])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    c
}

fn formwork_affected(bin: &Path, repo: &Path, base: &str, head: &str) -> Command {
    let mut c = Command::new(bin);
    c.args(["affected", "--base", base, "--head", head, "--repo"])
        .arg(repo)
        .args(["--output", "json"])
        .env_remove("FORMWORK_REPO")
        .env_remove("FORMWORK_LOG")
        .env("NO_COLOR", "1");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks formwork's answer: exit code 2 and exactly the expected `environment/stack` units,
/// with the changed stack `modified` and the others `dependant`.
fn check_formwork(
    out: &Output,
    expected: &BTreeMap<String, &str>,
    expected_envs: usize,
    what: &str,
) {
    let code = out.status.code();
    assert_eq!(
        code,
        Some(2),
        "{what}: formwork affected should exit 2 (changes found)\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: formwork printed no JSON ({e}):\n{}",
            text(&out.stdout)
        )
    });
    let got: BTreeMap<String, &str> = v["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| {
            (
                format!(
                    "{}/{}",
                    u["environment"].as_str().unwrap(),
                    u["stack"].as_str().unwrap()
                ),
                u["change"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(&got, expected, "{what}: formwork reported other units");
    let envs = v["environments"].as_array().expect("environments").len();
    assert_eq!(envs, expected_envs, "{what}: environments");
    let diags = v["diagnostics"].as_array().map_or(0, Vec::len);
    assert_eq!(diags, 0, "{what}: diagnostics: {}", v["diagnostics"]);
}

fn check_git(out: &Output, expected: &[String], what: &str) {
    assert!(
        out.status.success(),
        "{what}: git diff failed: {}",
        text(&out.stderr)
    );
    let got: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(got, expected, "{what}: git diff --name-only");
}

struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    };
    Stats {
        median,
        min: v[0],
        max: v[n - 1],
    }
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
}

struct Scenario {
    name: String,
    head: Oid,
    changed_paths: Vec<String>,
    expected_units: BTreeMap<String, &'static str>,
    expected_envs: usize,
}

/// Times both commands alternately (the order swapping every run), after untimed warm-ups,
/// checking every output. Returns (git, formwork) stats.
fn measure(
    bin: &Path,
    repo: &Path,
    base: &str,
    s: &Scenario,
    warmup: usize,
    runs: usize,
) -> (Stats, Stats) {
    let head = s.head.to_string();
    let mut git_t = Vec::with_capacity(runs);
    let mut fw_t = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let mut one = |which: bool| {
            if which {
                let (t, out) = run(git_diff(repo, base, &head));
                check_git(&out, &s.changed_paths, &s.name);
                if i >= warmup {
                    git_t.push(t);
                }
            } else {
                let (t, out) = run(formwork_affected(bin, repo, base, &head));
                check_formwork(&out, &s.expected_units, s.expected_envs, &s.name);
                if i >= warmup {
                    fw_t.push(t);
                }
            }
        };
        let git_first = i % 2 == 0;
        one(git_first);
        one(!git_first);
    }
    (stats(git_t), stats(fw_t))
}

fn env_var_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    let runs = env_var_usize("BENCH_RUNS", 30);
    let warmup = std::env::var("BENCH_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let bin = formwork_bin();

    // Generate.
    let tmp = tempfile::Builder::new()
        .prefix("formwork-bench-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let started = Instant::now();
    let g = generate(&dir).expect("generate the repository");
    let gen_time = started.elapsed();
    let files = {
        let tree = g.repo.find_commit(g.base).unwrap().tree().unwrap();
        let mut n = 0;
        tree.walk(git2::TreeWalkMode::PreOrder, |_, e| {
            if e.kind() == Some(git2::ObjectType::Blob) {
                n += 1;
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        n
    };

    // Pack it, as a clone would be.
    let started = Instant::now();
    let gc = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["gc", "--quiet", "--prune=now"])
        .output()
        .expect("run git gc");
    assert!(gc.status.success(), "git gc: {}", text(&gc.stderr));
    let pack_time = started.elapsed();

    // The generated config must be valid: the work tree (scenario 1's head) and scenario 2's head.
    let validate = |rev: Option<String>| {
        let mut c = Command::new(&bin);
        c.args(["validate", "--repo"]).arg(&dir);
        if let Some(rev) = &rev {
            c.args(["--rev", rev]);
        }
        let out = c
            .env("NO_COLOR", "1")
            .output()
            .expect("run formwork validate");
        assert_eq!(
            out.status.code(),
            Some(0),
            "the generated config is not valid ({rev:?}):\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(
            !text(&out.stderr).contains("warning"),
            "the generated config has warnings:\n{}",
            text(&out.stderr)
        );
        stdout.trim().to_string()
    };
    let summary = validate(None);
    validate(Some(g.head_template.to_string()));

    // The two scenarios and what formwork must find.
    let (e, n) = g.env_change;
    let env = env_name(e / ENVS_PER_PIPELINE, e % ENVS_PER_PIPELINE);
    let units = |envs: &[String], n: usize| -> BTreeMap<String, &'static str> {
        let mut out = BTreeMap::new();
        for env in envs {
            for s in closure(n) {
                let change = if s == n { "modified" } else { "dependant" };
                out.insert(format!("{env}/{}", stack_key(s)), change);
            }
        }
        out
    };
    let s1 = Scenario {
        name: format!("1: {env} changes {} InstanceCount", stack_key(n)),
        head: g.head_env,
        changed_paths: vec![format!("environments/{env}/environment.yml")],
        expected_units: units(std::slice::from_ref(&env), n),
        expected_envs: 1,
    };
    let (p, tn) = g.template_change;
    let envs: Vec<String> = (0..ENVS_PER_PIPELINE).map(|i| env_name(p, i)).collect();
    let s2 = Scenario {
        name: format!(
            "2: pipeline {} changes template {}.yml",
            PIPELINES[p],
            stack_key(tn)
        ),
        head: g.head_template,
        changed_paths: vec![format!(
            "pipelines/{}/templates/{}.yml",
            PIPELINES[p],
            stack_key(tn)
        )],
        expected_units: units(&envs, tn),
        expected_envs: ENVS_PER_PIPELINE,
    };

    let base = g.base.to_string();
    println!();
    println!("formwork affected vs git diff --name-only");
    println!("=========================================");
    println!("formwork binary: {}", bin.display());
    println!(
        "repository: {} commits, {files} files; generated in {:.2} s, packed in {:.2} s",
        g.commits,
        gen_time.as_secs_f64(),
        pack_time.as_secs_f64()
    );
    println!("config: {summary}");
    println!("runs: {runs} timed per command, after {warmup} warm-up, alternating");
    println!(
        "target: formwork within {TARGET_RATIO}x of git diff --name-only (scenario 1, median)"
    );

    let mut verdict = None;
    for (i, s) in [&s1, &s2].into_iter().enumerate() {
        let (git, fw) = measure(&bin, &dir, &base, s, warmup, runs);
        let ratio = fw.median.as_secs_f64() / git.median.as_secs_f64();
        println!();
        println!("scenario {}", s.name);
        println!(
            "  {} path changed, {} units in {} environment(s) affected",
            s.changed_paths.len(),
            s.expected_units.len(),
            s.expected_envs
        );
        println!("                       median         min         max");
        println!(
            "  git diff        {} {} {}",
            ms(git.median),
            ms(git.min),
            ms(git.max)
        );
        println!(
            "  formwork        {} {} {}",
            ms(fw.median),
            ms(fw.min),
            ms(fw.max)
        );
        println!("  ratio formwork/git (median): {ratio:.2}x");
        if i == 0 {
            verdict = Some(ratio);
        } else {
            println!("  (information only; the target applies to scenario 1)");
        }
    }
    let ratio = verdict.expect("scenario 1 ran");
    println!();
    println!(
        "{}: formwork within {TARGET_RATIO}x of git diff --name-only (scenario 1: {ratio:.2}x)",
        if ratio <= TARGET_RATIO {
            "PASS"
        } else {
            "MISS"
        }
    );

    if std::env::var_os("BENCH_KEEP").is_some() {
        let kept = tmp.keep();
        println!(
            "kept the repository at {} (base {}, heads {} and {})",
            kept.display(),
            g.base,
            g.head_env,
            g.head_template
        );
    }
}
