//! Hostile input in a committed file: what a config repository written by many people may hold,
//! tried as an attacker would. Each test feeds the hostile input itself:
//!
//! - a YAML alias bomb (a few hundred bytes of aliases over a long string) ends `validate`,
//!   `affected` and `plan` with an error at its line and column, and the process stays small;
//! - links to /proc/self/environ and /dev/zero, a pipe, a file over the size limit, a link loop:
//!   refused by name, their content never printed, in the working tree and in git revisions;
//! - 50,000 keys in one mapping, with a duplicate at the end: found, with both lines;
//! - generated hostile YAML (deep nesting, chains of aliases, long scalars) never panics the
//!   loader, and its memory stays within the documented budget (measured by this binary's
//!   allocator, per thread).

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Command;

use common::{Repo, Run};
use proptest::prelude::*;

/// Counts the bytes each thread has allocated and not freed, and the most it ever had.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread-locals may already be gone while a thread exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most memory this thread held above what it held
/// before, in bytes.
fn peak_memory<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

/// Starts a command and, once it ended, writes its peak resident memory (KiB, from the kernel's
/// accounting of children) to the file `$FORMWORK_TEST_RSS_FILE`; exits as the command did.
const LAUNCHER: &str = "import os, resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
with open(os.environ['FORMWORK_TEST_RSS_FILE'], 'w') as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
";

/// Runs formwork and returns what it printed with its peak resident memory (KiB).
///
/// The kernel counts into a process's peak the memory of the process that started it, as it was
/// when it was started (the peak of the address space replaced by `exec`): a child of this test
/// binary, itself hundreds of MiB while the other tests run, would be measured as that large.
/// So formwork is started by a small launcher (Python, which the test command installs anyway)
/// and measured there.
fn formwork_measured(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Run, i64) {
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(LAUNCHER)
        .arg(env!("CARGO_BIN_EXE_formwork"))
        .args(args)
        .current_dir(dir)
        .env_remove("FORMWORK_REPO")
        .env("NO_COLOR", "1")
        .env("FORMWORK_TEST_RSS_FILE", rss_file.path())
        .envs(env.iter().copied())
        .output()
        .expect("run formwork through python3");
    let rss = std::fs::read_to_string(rss_file.path())
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no peak memory written: {out:?}"));
    (Run::from(out), rss)
}

/// Fails unless what `run` printed holds every one of `lines`.
fn says(run: &Run, lines: &[&str]) {
    let all = run.all();
    for line in lines {
        assert!(all.contains(line), "no {line:?} in:\n{all}");
    }
}

/// An environment file whose `tags` hold a 1,000,000-byte string and a few hundred bytes of
/// aliases that would copy it a hundred times; the first alias past the budget is on line 7.
fn alias_bomb() -> String {
    let long = "x".repeat(1_000_000);
    let ten = ["*s"; 10].join(", ");
    let tens = ["*a"; 10].join(", ");
    format!(
        "pipeline: shop\naccount: \"111111111111\"\nregion: us-east-1\ntags:\n  big: &s {long}\n  \
         small: ok\n  a: &a [{ten}]\n  b: [{tens}]\n"
    )
}

/// Resident memory allowed to a formwork process refusing a hostile file, in KiB: the bomb
/// would need about 100 MB, the budget allows 10 MB.
const SMALL_PROCESS_KIB: i64 = 120 * 1024;

#[test]
fn an_alias_bomb_ends_validate_affected_and_plan_with_its_position() {
    let r = Repo::shop();
    let base = r.head_commit();
    r.write("environments/staging/environment.yml", &alias_bomb());
    let head = r.commit("bomb");
    let runs = [
        vec!["validate"],
        vec!["validate", "--rev", "HEAD"],
        vec!["affected", "--base", &base, "--head", &head],
        vec!["plan", "--offline", "--base", &base, "--head", &head],
    ];
    for args in runs {
        let (run, rss) = formwork_measured(r.path(), &args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all());
        says(
            &run,
            &[
                "environments/staging/environment.yml:7:",
                "expands to more than",
            ],
        );
        assert!(
            rss < SMALL_PROCESS_KIB,
            "{args:?} held {rss} KiB refusing the bomb"
        );
    }
}

#[test]
fn links_out_of_the_repository_are_refused_without_their_content() {
    let r = Repo::shop();
    let planted = "planted-secret-6f1d2a9b";
    std::fs::create_dir_all(r.file("environments/leak")).unwrap();
    std::os::unix::fs::symlink(
        "/proc/self/environ",
        r.file("environments/leak/environment.yml"),
    )
    .unwrap();
    std::fs::create_dir_all(r.file("environments/zero")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", r.file("environments/zero/environment.yml")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../etc/passwd",
        r.file("pipelines/shop/templates/passwd.yml"),
    )
    .unwrap();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "template: templates/app.yml",
        "template: templates/passwd.yml",
    );
    let env = [
        ("AWS_SECRET_ACCESS_KEY", planted),
        ("GITHUB_TOKEN", planted),
    ];
    let (run, rss) = formwork_measured(r.path(), &["validate"], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(!run.all().contains(planted), "{}", run.all());
    assert!(!run.all().contains("root:"), "{}", run.all());
    for path in [
        "environments/leak/environment.yml",
        "environments/zero/environment.yml",
        "pipelines/shop/templates/passwd.yml",
    ] {
        assert!(
            run.all().contains(&format!(
                "{path} is not read: it is a symbolic link to a place outside the repository"
            )),
            "{path}: {}",
            run.all()
        );
    }
    assert!(rss < SMALL_PROCESS_KIB, "held {rss} KiB");

    // Committed, the same links are refused when reading the revision from git.
    r.commit("links");
    let (run, _) = formwork_measured(r.path(), &["validate", "--rev", "HEAD"], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(!run.all().contains(planted), "{}", run.all());
    assert!(
        run.all().contains(
            "pipelines/shop/templates/passwd.yml is not read: it is a symbolic link to a place outside the repository"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn pipes_large_files_and_link_loops_are_refused_and_links_inside_are_followed() {
    let r = Repo::shop();
    // A link inside the repository is followed, in the working tree and in git.
    std::fs::create_dir_all(r.file("environments/copy")).unwrap();
    std::os::unix::fs::symlink(
        "../staging/environment.yml",
        r.file("environments/copy/environment.yml"),
    )
    .unwrap();
    std::fs::create_dir_all(r.file("pipelines/shop/linked")).unwrap();
    std::os::unix::fs::symlink("../templates", r.file("pipelines/shop/linked/t")).unwrap();
    r.edit(
        "pipelines/shop/pipeline.yml",
        "template: templates/app.yml",
        "template: linked/t/app.yml",
    );
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    r.commit("links inside");
    let run = r.run(&["validate", "--rev", "HEAD"]);
    assert_eq!(run.code, 0, "{}", run.all());

    // A loop, a file over the limit; then a pipe, which is never waited on.
    std::fs::create_dir_all(r.file("environments/loop")).unwrap();
    std::os::unix::fs::symlink(
        "environment.yml",
        r.file("environments/loop/environment.yml"),
    )
    .unwrap();
    let big = format!("pipeline: shop\n# {}\n", "y".repeat(1_100_000));
    r.write("environments/big/environment.yml", &big);
    r.commit("loop and big");
    let c = std::ffi::CString::new(
        r.file("environments/pipe/environment.yml")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(r.file("environments/pipe")).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let loop_ =
        "environments/loop/environment.yml is not read: it goes through more than 8 symbolic links";
    let big = "environments/big/environment.yml is not read: it is 1100018 bytes long; formwork reads files of at most 1048576 bytes";
    let run = r.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.all());
    says(
        &run,
        &[
            loop_,
            big,
            "environments/pipe/environment.yml is not read: it is not a regular file",
        ],
    );
    assert!(!run.all().contains("yyyy"), "{}", run.all());
    let run = r.run(&["validate", "--rev", "HEAD"]);
    assert_eq!(run.code, 1, "{}", run.all());
    says(&run, &[loop_, big]);
}

#[test]
fn fifty_thousand_keys_are_read_and_a_duplicate_among_them_is_found() {
    let r = Repo::shop();
    let mut tags = String::from("tags:\n");
    for i in 0..50_000 {
        tags.push_str(&format!("  k{i}: v\n"));
    }
    let env = common::STAGING.replace(
        "tags:\n  environment: staging\n",
        &format!("{tags}  environment: staging\n"),
    );
    r.write("environments/staging/environment.yml", &env);
    let ok = r.run(&["validate"]);
    // Many tags are a problem of their own (CloudFormation takes 50), but not a YAML one.
    assert!(!ok.all().contains("duplicate key"), "{}", ok.all());
    r.write(
        "environments/staging/environment.yml",
        &env.replace(
            "  environment: staging\n",
            "  environment: staging\n  k42: again\n",
        ),
    );
    let dup = r.run(&["validate"]);
    assert_eq!(dup.code, 1);
    assert!(
        dup.all()
            .contains("duplicate key `k42` (first defined on line 47)"),
        "{}",
        dup.all()
    );
    assert!(
        dup.all()
            .contains("environments/staging/environment.yml:50006:3"),
        "{}",
        dup.all()
    );
}

/// Hostile YAML: deep nesting, chains of aliases each repeating the one before, long scalars,
/// mixed with noise.
fn hostile_yaml() -> impl Strategy<Value = String> {
    let nesting = (1usize..400, prop_oneof![Just('['), Just('{')]).prop_map(|(depth, open)| {
        let close = if open == '[' { ']' } else { '}' };
        let inner = if open == '[' { "x" } else { "k: x" };
        let mut s = String::new();
        for i in 0..depth {
            s.push(open);
            if open == '{' && i > 0 {
                s.push_str("k: ");
            }
        }
        s.push_str(inner);
        for _ in 0..depth {
            s.push(close);
        }
        format!("a: {s}\n")
    });
    let chain = (1usize..30, 1usize..12, 0usize..200_000).prop_map(|(levels, width, len)| {
        let mut s = format!("l0: &l0 {}\n", "z".repeat(len));
        for i in 1..levels {
            let refs = vec![format!("*l{}", i - 1); width].join(", ");
            s.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        s
    });
    let long = (
        0usize..300_000,
        prop_oneof![Just(""), Just("'"), Just("\"")],
    )
        .prop_map(|(len, q)| format!("s: {q}{}{q}\n", "w".repeat(len)));
    let noise = "[a-z0-9 :&*\\[\\]{},\\n-]{0,200}";
    (
        proptest::collection::vec(prop_oneof![nesting, chain, long], 1..4),
        noise,
    )
        .prop_map(|(parts, noise)| format!("{}{noise}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever it holds, a document is parsed or refused without a panic, and the memory it
    /// takes stays within what the budget allows: at most as many nodes as the expanded size
    /// has bytes (and never over a million), each a `Node` with some slack, plus the expanded
    /// text, for the YAML tree and for the template made of it, plus the parser's own buffers.
    #[test]
    fn hostile_yaml_is_refused_or_read_within_the_budget(doc in hostile_yaml()) {
        let budget = formwork::yaml::Budget::for_document(doc.len());
        let (_, peak) = peak_memory(|| {
            let parsed = formwork::yaml::parse(&doc);
            let file = std::sync::Arc::from("t.yml");
            let _ = formwork::template::Template::parse(doc.as_bytes(), &file);
            parsed.is_ok()
        });
        let node = 2 * std::mem::size_of::<formwork::yaml::Node>();
        let tree = budget.max_nodes.min(budget.max_bytes) * node + budget.max_bytes;
        let bound = 2 * tree + 8 * doc.len();
        prop_assert!(peak <= bound, "{} bytes held for a {}-byte document (bound {})", peak, doc.len(), bound);
    }
}
