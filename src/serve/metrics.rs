//! The agent's numbers, in the OpenMetrics text format (`GET /metrics`, which Prometheus
//! reads): queue depth, webhook deliveries, runs by kind and outcome with a histogram of their
//! durations, AWS, GitHub and git errors, notifications sent and given up on, how long ago each
//! environment was last applied, and what the scheduled drift checks found.
//! The exposition is prometheus-client's.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Run {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftCheck {
    environment: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Environment {
    environment: String,
}

/// Run durations from 1 s to about 4.5 h, doubling.
fn run_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// Counters and gauges; cheap to update from any task.
pub struct Metrics {
    pub queue_depth: Gauge<i64, AtomicI64>,
    pub jobs_running: Gauge<i64, AtomicI64>,
    pub github_errors: Counter<u64, AtomicU64>,
    pub aws_errors: Counter<u64, AtomicU64>,
    pub git_errors: Counter<u64, AtomicU64>,
    deliveries: Family<Outcome, Counter>,
    notifications: Family<Outcome, Counter>,
    runs: Family<Run, Histogram, fn() -> Histogram>,
    last_apply_age: Family<Environment, Gauge<f64, AtomicU64>>,
    drifted_stacks: Family<Environment, Gauge<i64, AtomicI64>>,
    drift_checks: Family<DriftCheck, Counter>,
    /// Environment → when its last apply finished (ms since the epoch); the age is worked out
    /// when the numbers are read.
    applied_at: Mutex<BTreeMap<String, i64>>,
    registry: Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            queue_depth: Gauge::default(),
            jobs_running: Gauge::default(),
            github_errors: Counter::default(),
            aws_errors: Counter::default(),
            git_errors: Counter::default(),
            deliveries: Family::default(),
            notifications: Family::default(),
            runs: Family::new_with_constructor(run_histogram),
            last_apply_age: Family::default(),
            drifted_stacks: Family::default(),
            drift_checks: Family::default(),
            applied_at: Mutex::new(BTreeMap::new()),
            registry: Registry::default(),
        };
        let mut registry = Registry::with_prefix("formwork");
        registry.register("queue_depth", "Jobs waiting to run", m.queue_depth.clone());
        registry.register("jobs_running", "Jobs running now", m.jobs_running.clone());
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by outcome",
            m.deliveries.clone(),
        );
        registry.register(
            "notifications",
            "Notification deliveries by outcome (sent, failed)",
            m.notifications.clone(),
        );
        registry.register(
            "run_seconds",
            "Finished runs by kind and outcome, and how long they took",
            m.runs.clone(),
        );
        registry.register(
            "github_errors",
            "Failed GitHub API calls (after retries)",
            m.github_errors.clone(),
        );
        registry.register(
            "aws_errors",
            "Runs stopped by an AWS error",
            m.aws_errors.clone(),
        );
        registry.register(
            "git_errors",
            "Failed fetches of the config repository",
            m.git_errors.clone(),
        );
        registry.register(
            "last_apply_age_seconds",
            "Seconds since each environment's last finished apply",
            m.last_apply_age.clone(),
        );
        registry.register(
            "drifted_stacks",
            "Stacks of each environment found drifted by the last drift check",
            m.drifted_stacks.clone(),
        );
        registry.register(
            "drift_checks",
            "Drift checks of environments by result: in_sync, drifted, failed",
            m.drift_checks.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// A webhook delivery's fate: `accepted`, `duplicate`, `bad_signature`, `ignored`, `bad`;
    /// refused before its body was read whole: `too_large`, `busy` (no share of the memory
    /// budget), `timeout`.
    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A finished run of `kind` (`plan`, `apply`, `command`, `reconcile`).
    pub fn run(&self, kind: &str, outcome: &str, seconds: f64) {
        self.runs
            .get_or_create(&Run {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .observe(seconds);
    }

    pub fn applied(&self, environment: &str, at_ms: i64) {
        self.applied_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(environment.to_string(), at_ms);
    }

    /// A drift check of `environment` ended in `result` (`in_sync`, `drifted`, `failed`)
    /// with `drifted` stacks drifted.
    pub fn drift_checked(&self, environment: &str, result: &str, drifted: usize) {
        self.drift_checks
            .get_or_create(&DriftCheck {
                environment: environment.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.drifted_stacks
            .get_or_create(&Environment {
                environment: environment.to_string(),
            })
            .set(i64::try_from(drifted).unwrap_or(i64::MAX));
    }

    /// The notifications sent and given up on so far (the notifier's counts), taken in.
    pub fn notifications(&self, (sent, failed): (u64, u64)) {
        for (outcome, total) in [("sent", sent), ("failed", failed)] {
            let c = self.notifications.get_or_create(&Outcome {
                outcome: outcome.to_string(),
            });
            c.inc_by(total.saturating_sub(c.get()));
        }
    }

    /// How many deliveries had this outcome.
    pub fn deliveries(&self, outcome: &str) -> u64 {
        self.deliveries
            .get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .get()
    }

    /// The OpenMetrics text at `now_ms` (see [`CONTENT_TYPE`]).
    pub fn render(&self, now_ms: i64) -> String {
        for (env, at) in self
            .applied_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            self.last_apply_age
                .get_or_create(&Environment {
                    environment: env.clone(),
                })
                .set((now_ms - at).max(0) as f64 / 1000.0);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_type_and_histograms_with_their_count() {
        let m = Metrics::default();
        m.delivery("accepted");
        m.delivery("accepted");
        m.delivery("bad_signature");
        m.run("plan", "ok", 1.5);
        m.run("plan", "ok", 0.5);
        m.applied("staging", 1_000);
        m.aws_errors.inc();
        m.drift_checked("prod", "drifted", 2);
        m.notifications((3, 1));
        m.notifications((4, 1));
        let t = m.render(11_000);
        for sample in [
            "formwork_webhook_deliveries_total{outcome=\"accepted\"} 2",
            "formwork_run_seconds_sum{kind=\"plan\",outcome=\"ok\"} 2.0",
            "formwork_run_seconds_count{kind=\"plan\",outcome=\"ok\"} 2",
            "formwork_run_seconds_bucket{le=\"1.0\",kind=\"plan\",outcome=\"ok\"} 1",
            "formwork_last_apply_age_seconds{environment=\"staging\"} 10.0",
            "formwork_aws_errors_total 1",
            "formwork_drifted_stacks{environment=\"prod\"} 2",
            "formwork_drift_checks_total{environment=\"prod\",result=\"drifted\"} 1",
            "formwork_notifications_total{outcome=\"sent\"} 4",
            "formwork_notifications_total{outcome=\"failed\"} 1",
            "# TYPE formwork_queue_depth gauge",
            "# TYPE formwork_run_seconds histogram",
        ] {
            assert!(t.contains(sample), "{sample}:\n{t}");
        }
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert_eq!(m.deliveries("accepted"), 2);
    }
}
