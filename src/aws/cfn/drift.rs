//! Drift detection calls: starting a detection, its progress, the drifted resources.

use aws_sdk_cloudformation::types::StackResourceDriftStatus;

use super::{Cfn, SERVICE, time};
use crate::aws::AwsError;

/// The progress of one stack drift detection, as DescribeStackDriftDetectionStatus states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftDetectionStatus {
    pub detection_id: String,
    pub stack_id: Option<String>,
    /// `DETECTION_IN_PROGRESS`, `DETECTION_COMPLETE` or `DETECTION_FAILED`.
    pub detection_status: String,
    /// Why it failed (or what it could not check), when CloudFormation says.
    pub reason: Option<String>,
    /// `DRIFTED`, `IN_SYNC`, `UNKNOWN` or `NOT_CHECKED`; absent while in progress.
    pub stack_drift_status: Option<String>,
    pub drifted_resources: Option<i32>,
    /// When the detection ran (RFC 3339).
    pub timestamp: Option<String>,
}

impl DriftDetectionStatus {
    /// Whether the detection is still running.
    pub fn in_progress(&self) -> bool {
        self.detection_status == "DETECTION_IN_PROGRESS"
    }
}

/// A resource that differs from its template, as DescribeStackResourceDrifts states it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceDriftInfo {
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    /// `MODIFIED` or `DELETED` (the only ones asked for).
    pub status: String,
    pub differences: Vec<PropertyDifferenceInfo>,
}

/// One property of a drifted resource whose actual value differs from the expected one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertyDifferenceInfo {
    /// The property's path from the resource's properties, e.g. `/Tags/0/Value`.
    pub path: String,
    pub expected: String,
    pub actual: String,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    pub difference_type: String,
}

impl Cfn {
    /// Starts a drift detection of the stack's resources; returns its id.
    pub async fn detect_stack_drift(&self, stack: &str) -> Result<String, AwsError> {
        let _permit = self.limit.acquire().await;
        let out = self
            .client
            .detect_stack_drift()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "DetectStackDrift", e))?;
        Ok(out
            .stack_drift_detection_id()
            .unwrap_or_default()
            .to_string())
    }

    /// Where the drift detection `id` stands.
    pub async fn drift_detection_status(&self, id: &str) -> Result<DriftDetectionStatus, AwsError> {
        let _permit = self.limit.acquire().await;
        let out = self
            .client
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(id)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "DescribeStackDriftDetectionStatus", e))?;
        Ok(DriftDetectionStatus {
            detection_id: out.stack_drift_detection_id().unwrap_or(id).to_string(),
            stack_id: out.stack_id().map(str::to_string),
            detection_status: out
                .detection_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: out
                .detection_status_reason()
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            stack_drift_status: out.stack_drift_status().map(|s| s.as_str().to_string()),
            drifted_resources: out.drifted_stack_resource_count(),
            timestamp: time(out.timestamp()),
        })
    }

    /// The resources of the stack that its last drift detection found modified or deleted,
    /// every page.
    pub async fn resource_drifts(&self, stack: &str) -> Result<Vec<ResourceDriftInfo>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let _permit = self.limit.acquire().await;
            let page = self
                .client
                .describe_stack_resource_drifts()
                .stack_name(stack)
                .stack_resource_drift_status_filters(StackResourceDriftStatus::Modified)
                .stack_resource_drift_status_filters(StackResourceDriftStatus::Deleted)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::call(SERVICE, "DescribeStackResourceDrifts", e))?;
            for d in page.stack_resource_drifts() {
                out.push(ResourceDriftInfo {
                    logical_id: d.logical_resource_id().unwrap_or_default().to_string(),
                    physical_id: d.physical_resource_id().map(str::to_string),
                    resource_type: d.resource_type().unwrap_or_default().to_string(),
                    status: d
                        .stack_resource_drift_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    differences: d
                        .property_differences()
                        .iter()
                        .map(|p| PropertyDifferenceInfo {
                            path: p.property_path().unwrap_or_default().to_string(),
                            expected: p.expected_value().unwrap_or_default().to_string(),
                            actual: p.actual_value().unwrap_or_default().to_string(),
                            difference_type: p
                                .difference_type()
                                .map(|t| t.as_str().to_string())
                                .unwrap_or_default(),
                        })
                        .collect(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }
}
