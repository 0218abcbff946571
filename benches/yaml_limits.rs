//! Benchmark: what hostile YAML costs formwork's parser, against the same parser reading a benign
//! document of the same size in the same run.
//!
//! 1. Many keys: a mapping of 50,000 keys against a list of the same 100,000 scalars (its keys
//!    and values: as many nodes). The duplicate-key check must keep the mapping within a small
//!    factor of the list (a check that compares every key with every other one takes tens of
//!    seconds here).
//! 2. An alias bomb: a 1,000,000-byte string and a few hundred bytes of aliases that would copy
//!    it a hundred times, against the same document without the aliases. Refusing the bomb must
//!    cost about what reading the string costs in time, and well under a second; in memory, no
//!    more than the expansion budget allows (aliases are copied until the expanded document
//!    would pass [`EXPANSION_FACTOR`] times the document, so the peak may reach that many copies
//!    of it, and one more for the document itself).
//!
//! A benchmark, not a test: it prints a report with PASS or MISS against each target and never
//! fails on a miss; it fails only when the parser does not do the work timed (the bomb accepted,
//! the mapping refused). Run `scripts/bench-yaml`. Knob: `BENCH_RUNS` (timed runs, default 15).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use formwork::yaml::EXPANSION_FACTOR;

/// Counts live heap bytes and their peak (the benchmark runs on one thread).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Targets: the keyed mapping within this factor of the list; the bomb refused within this
/// factor of the time of reading the document without aliases, and within the expansion budget
/// (and the document) in peak memory.
const KEYS_TARGET: f64 = 3.0;
const BOMB_TARGET: f64 = 2.0;
const BOMB_MEMORY_TARGET: f64 = EXPANSION_FACTOR as f64 + 1.0;
const BOMB_ABSOLUTE: Duration = Duration::from_secs(1);

/// The median time of `runs` calls of `f`, and the most memory one call held.
fn measure(runs: usize, mut f: impl FnMut()) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut peak = 0;
    for _ in 0..runs {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        f();
        times.push(start.elapsed());
        peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
    }
    times.sort();
    (times[times.len() / 2], peak)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);

    let mut mapping = String::new();
    let mut list = String::new();
    for i in 0..50_000 {
        mapping.push_str(&format!("key{i:05}: v\n"));
        list.push_str(&format!("- key{i:05}\n- v\n"));
    }
    assert!(
        formwork::yaml::parse(&mapping).is_ok(),
        "the mapping parses"
    );
    let (t_map, _) = measure(runs, || {
        std::hint::black_box(formwork::yaml::parse(&mapping).unwrap());
    });
    let (t_list, _) = measure(runs, || {
        std::hint::black_box(formwork::yaml::parse(&list).unwrap());
    });
    let keys_ratio = t_map.as_secs_f64() / t_list.as_secs_f64();

    let long = "x".repeat(1_000_000);
    let aliases = format!(
        "a: &a [{}]\nb: [{}]\n",
        ["*s"; 10].join(", "),
        ["*a"; 10].join(", ")
    );
    let bomb = format!("big: &s {long}\n{aliases}");
    let benign = format!("big: &s {long}\n{}", "#".repeat(aliases.len()));
    assert!(formwork::yaml::parse(&bomb).is_err(), "the bomb is refused");
    let (t_bomb, m_bomb) = measure(runs, || {
        std::hint::black_box(formwork::yaml::parse(&bomb).unwrap_err());
    });
    let (t_benign, m_benign) = measure(runs, || {
        std::hint::black_box(formwork::yaml::parse(&benign).unwrap());
    });
    let bomb_time = t_bomb.as_secs_f64() / t_benign.as_secs_f64();
    let bomb_memory = m_bomb as f64 / m_benign as f64;

    println!("YAML under hostile input ({runs} runs each, medians)");
    println!();
    println!(
        "1. 50,000 keys in one mapping ({} bytes), 100,000 scalars in a list ({} bytes)",
        mapping.len(),
        list.len()
    );
    println!(
        "   mapping {:>10.2?}   list of its keys and values {:>10.2?}",
        t_map, t_list
    );
    println!(
        "   ratio {keys_ratio:.2} (target <= {KEYS_TARGET}): {}",
        verdict(keys_ratio <= KEYS_TARGET)
    );
    println!();
    println!(
        "2. alias bomb: {} bytes that would expand to about 100 MB",
        bomb.len()
    );
    println!(
        "   refused in {:>10.2?}, peak {:>6} KiB   the document without aliases read in {:>10.2?}, peak {:>6} KiB",
        t_bomb,
        m_bomb / 1024,
        t_benign,
        m_benign / 1024
    );
    println!(
        "   time ratio {bomb_time:.2} (target <= {BOMB_TARGET}): {}",
        verdict(bomb_time <= BOMB_TARGET)
    );
    println!(
        "   memory ratio {bomb_memory:.2} (target <= {BOMB_MEMORY_TARGET}, the expansion budget): {}",
        verdict(bomb_memory <= BOMB_MEMORY_TARGET)
    );
    println!(
        "   refused in under {BOMB_ABSOLUTE:?}: {}",
        verdict(t_bomb < BOMB_ABSOLUTE)
    );
}
