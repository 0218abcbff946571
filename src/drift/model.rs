//! The drift report: per environment, per stack, whether its resources still match what
//! CloudFormation deployed, and how the drifted ones differ. It is what `formwork drift`
//! renders and prints as JSON (docs/drift.md); every value in it has already passed the
//! secrets masker.

use serde::Serialize;

/// The version of the JSON document of `formwork drift --output json`.
pub const JSON_VERSION: u32 = 1;

/// The drift of the chosen environments.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DriftReport {
    pub version: u32,
    /// The commit whose config said which stacks to check.
    pub revision: String,
    pub environments: Vec<EnvironmentDrift>,
}

/// The drift of one environment's stacks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EnvironmentDrift {
    pub name: String,
    pub account: String,
    pub region: String,
    /// Why no stack of the environment could be checked (no session, wrong account).
    pub error: Option<String>,
    /// In pipeline order.
    pub stacks: Vec<StackDrift>,
}

/// What drift detection found of one stack.
#[derive(Clone, Debug, Serialize)]
pub struct StackDrift {
    /// The stack's key in the pipeline.
    pub stack: String,
    /// The CloudFormation stack name.
    pub stack_name: String,
    pub status: DriftState,
    /// Why it failed, or what CloudFormation said about an unknown status.
    pub reason: Option<String>,
    pub detection_id: Option<String>,
    /// When CloudFormation ran the detection (RFC 3339).
    pub checked_at: Option<String>,
    /// The modified and deleted resources. A failed detection may still list those it
    /// checked.
    pub resources: Vec<ResourceDrift>,
}

impl StackDrift {
    /// A stack with a status and nothing else found.
    pub fn bare(stack: &str, stack_name: &str, status: DriftState) -> StackDrift {
        StackDrift {
            stack: stack.to_string(),
            stack_name: stack_name.to_string(),
            status,
            reason: None,
            detection_id: None,
            checked_at: None,
            resources: Vec::new(),
        }
    }
}

/// A stack's drift status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    /// Every checked resource matches its template.
    InSync,
    /// At least one resource was modified or deleted outside CloudFormation.
    Drifted,
    /// The detection finished without a verdict (CloudFormation's `UNKNOWN` or
    /// `NOT_CHECKED`: e.g. no resource of the stack supports drift detection).
    Unknown,
    /// The detection failed (`DETECTION_FAILED`), timed out, or an AWS call failed.
    Failed,
    /// There is no such stack in AWS (or only one awaiting its first change set).
    NotDeployed,
}

impl DriftState {
    /// The word for it in text and Markdown.
    pub fn word(self) -> &'static str {
        match self {
            DriftState::InSync => "in sync",
            DriftState::Drifted => "drifted",
            DriftState::Unknown => "unknown",
            DriftState::Failed => "failed",
            DriftState::NotDeployed => "not deployed",
        }
    }
}

/// One resource that differs from its template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceDrift {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    /// `modified` or `deleted`.
    pub status: String,
    /// For a modified resource, each property that differs.
    pub differences: Vec<PropertyDrift>,
}

/// One property whose actual value differs from the expected one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyDrift {
    /// From the resource's properties, e.g. `/Tags/0/Value`.
    pub path: String,
    pub expected: String,
    pub actual: String,
    /// `not_equal`, `add` or `remove`.
    pub difference_type: String,
    /// The values are secret (they hold, or the template takes them from, a NoEcho parameter
    /// or a secure dynamic reference) and are shown as `****`.
    pub masked: bool,
}

/// How many stacks are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub stacks: usize,
    pub in_sync: usize,
    pub drifted: usize,
    pub unknown: usize,
    pub failed: usize,
    pub not_deployed: usize,
    /// Environments that could not be checked at all.
    pub failed_environments: usize,
}

impl DriftReport {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for env in &self.environments {
            if env.error.is_some() {
                t.failed_environments += 1;
            }
            for s in &env.stacks {
                t.stacks += 1;
                match s.status {
                    DriftState::InSync => t.in_sync += 1,
                    DriftState::Drifted => t.drifted += 1,
                    DriftState::Unknown => t.unknown += 1,
                    DriftState::Failed => t.failed += 1,
                    DriftState::NotDeployed => t.not_deployed += 1,
                }
            }
        }
        t
    }

    /// Whether something drifted: a drifted stack, or drifted resources a failed detection
    /// still found.
    pub fn has_drift(&self) -> bool {
        self.environments
            .iter()
            .flat_map(|e| &e.stacks)
            .any(|s| s.status == DriftState::Drifted || !s.resources.is_empty())
    }

    /// Whether some stack or environment could not be checked.
    pub fn has_failures(&self) -> bool {
        self.environments
            .iter()
            .any(|e| e.error.is_some() || e.stacks.iter().any(|s| s.status == DriftState::Failed))
    }

    /// The exit code of `formwork drift`: 1 when something could not be checked (the report is
    /// incomplete, so "no drift" cannot be said), else 2 when something drifted, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.has_failures() {
            1
        } else if self.has_drift() {
            2
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(states: &[DriftState]) -> DriftReport {
        DriftReport {
            version: JSON_VERSION,
            revision: "c".into(),
            environments: vec![EnvironmentDrift {
                name: "prod".into(),
                stacks: states
                    .iter()
                    .enumerate()
                    .map(|(i, s)| StackDrift::bare(&format!("s{i}"), &format!("prod-s{i}"), *s))
                    .collect(),
                ..EnvironmentDrift::default()
            }],
        }
    }

    #[test]
    fn drift_exit_codes_put_failures_before_drift() {
        use DriftState::*;
        assert_eq!(report(&[InSync, NotDeployed, Unknown]).exit_code(), 0);
        assert_eq!(report(&[InSync, Drifted]).exit_code(), 2);
        assert_eq!(report(&[Drifted, Failed]).exit_code(), 1);
        let mut r = report(&[InSync]);
        r.environments[0].error = Some("no credentials".into());
        assert_eq!(r.exit_code(), 1);
        let t = report(&[InSync, Drifted, Drifted, NotDeployed]).totals();
        assert_eq!(
            (t.stacks, t.in_sync, t.drifted, t.not_deployed),
            (4, 1, 2, 1)
        );
    }

    #[test]
    fn drift_json_uses_snake_case_states() {
        let v = serde_json::to_value(report(&[DriftState::NotDeployed])).unwrap();
        assert_eq!(v["environments"][0]["stacks"][0]["status"], "not_deployed");
        assert_eq!(v["version"], 1);
    }
}
