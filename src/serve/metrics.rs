//! The agent's numbers, in Prometheus' text exposition format (`GET /metrics`): queue depth,
//! webhook deliveries, runs by kind and outcome with their durations, AWS and GitHub errors,
//! and how long ago each environment was last applied.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters and gauges; cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    pub queue_depth: AtomicI64,
    pub jobs_running: AtomicI64,
    deliveries: Mutex<BTreeMap<&'static str, u64>>,
    /// (kind, outcome) → (count, total seconds).
    runs: Mutex<BTreeMap<(String, String), (u64, f64)>>,
    pub github_errors: AtomicU64,
    pub aws_errors: AtomicU64,
    pub git_errors: AtomicU64,
    /// Environment → when its last apply finished (ms since the epoch).
    applied_at: Mutex<BTreeMap<String, i64>>,
}

impl Metrics {
    /// A webhook delivery's fate: `accepted`, `duplicate`, `bad_signature`, `ignored`, `bad`;
    /// refused before its body was read whole: `too_large`, `busy` (no share of the memory
    /// budget), `timeout`.
    pub fn delivery(&self, outcome: &'static str) {
        *self
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    /// A finished run of `kind` (`plan`, `apply`, `command`, `reconcile`).
    pub fn run(&self, kind: &str, outcome: &str, seconds: f64) {
        let mut r = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let e = r
            .entry((kind.to_string(), outcome.to_string()))
            .or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    pub fn applied(&self, environment: &str, at_ms: i64) {
        self.applied_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(environment.to_string(), at_ms);
    }

    /// How many deliveries had this outcome.
    pub fn deliveries(&self, outcome: &str) -> u64 {
        self.deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(outcome)
            .copied()
            .unwrap_or(0)
    }

    /// The text exposition at `now_ms`.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "formwork_queue_depth",
            "Jobs waiting to run.",
            self.queue_depth.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            "formwork_jobs_running",
            "Jobs running now.",
            self.jobs_running.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP formwork_webhook_deliveries_total Webhook deliveries by outcome.\n# TYPE formwork_webhook_deliveries_total counter"
        );
        for (k, v) in self
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "formwork_webhook_deliveries_total{{outcome=\"{k}\"}} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP formwork_runs_total Finished runs by kind and outcome.\n# TYPE formwork_runs_total counter"
        );
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for ((kind, outcome), (n, _)) in &runs {
            let _ = writeln!(
                out,
                "formwork_runs_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP formwork_run_seconds_sum Time spent in finished runs, by kind and outcome.\n# TYPE formwork_run_seconds_sum counter"
        );
        for ((kind, outcome), (_, secs)) in &runs {
            let _ = writeln!(
                out,
                "formwork_run_seconds_sum{{kind=\"{kind}\",outcome=\"{outcome}\"}} {secs:.3}"
            );
        }
        for (name, help, v) in [
            (
                "formwork_github_errors_total",
                "Failed GitHub API calls (after retries).",
                &self.github_errors,
            ),
            (
                "formwork_aws_errors_total",
                "Runs stopped by an AWS error.",
                &self.aws_errors,
            ),
            (
                "formwork_git_errors_total",
                "Failed fetches of the config repository.",
                &self.git_errors,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP formwork_last_apply_age_seconds Seconds since each environment's last finished apply.\n# TYPE formwork_last_apply_age_seconds gauge"
        );
        for (env, at) in self
            .applied_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "formwork_last_apply_age_seconds{{environment=\"{}\"}} {:.3}",
                env.replace('\\', "\\\\").replace('"', "\\\""),
                (now_ms - at).max(0) as f64 / 1000.0
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_type() {
        let m = Metrics::default();
        m.delivery("accepted");
        m.delivery("accepted");
        m.delivery("bad_signature");
        m.run("plan", "ok", 1.5);
        m.run("plan", "ok", 0.5);
        m.applied("staging", 1_000);
        let t = m.render(11_000);
        assert!(
            t.contains("formwork_webhook_deliveries_total{outcome=\"accepted\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("formwork_runs_total{kind=\"plan\",outcome=\"ok\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("formwork_run_seconds_sum{kind=\"plan\",outcome=\"ok\"} 2.000"),
            "{t}"
        );
        assert!(
            t.contains("formwork_last_apply_age_seconds{environment=\"staging\"} 10.000"),
            "{t}"
        );
        assert!(t.contains("# TYPE formwork_queue_depth gauge"));
        // Every sample line belongs to a family declared before it.
        let mut declared = std::collections::BTreeSet::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{line}");
            }
        }
    }
}
