//! Drift notifications: after a drift check (`formwork drift`), each environment where stacks
//! drifted tells its targets (`drift` event) with the counts and the drifted stacks. An
//! environment where nothing drifted sends nothing, so a scheduled check is quiet until
//! something changes outside CloudFormation.

use std::sync::Arc;

use super::{DriftCounts, Event, Links, Notifier, Place};
use crate::aws::Aws;
use crate::config::notifications::NotifyEvent;
use crate::desired::DesiredEnvironment;
use crate::drift::model::{DriftReport, DriftState, EnvironmentDrift};
use crate::secrets::Masker;

/// The counts of one environment's drift check.
pub fn counts(env: &EnvironmentDrift) -> DriftCounts {
    let mut c = DriftCounts {
        checked: env.stacks.len(),
        ..DriftCounts::default()
    };
    for s in &env.stacks {
        match s.status {
            DriftState::InSync => c.in_sync += 1,
            DriftState::Drifted => {
                c.drifted += 1;
                c.drifted_stacks.push(s.stack.clone());
            }
            DriftState::Unknown => c.unknown += 1,
            DriftState::Failed => c.failed += 1,
            DriftState::NotDeployed => c.not_deployed += 1,
        }
    }
    c
}

/// Sends a `drift` event for every environment of `report` where a stack drifted, to its own
/// targets (from `envs`, the environments checked) and the notifier's. Never fails.
pub async fn send_drift(
    notifier: &Notifier,
    aws: &Aws,
    masker: &Arc<Masker>,
    envs: &[DesiredEnvironment],
    report: &DriftReport,
) {
    for found in &report.environments {
        let c = counts(found);
        if c.drifted == 0 {
            continue;
        }
        let Some(env) = envs.iter().find(|e| e.name == found.name) else {
            continue;
        };
        let prepared = notifier
            .prepare(&Place::of(env), &env.notifications, aws, masker)
            .await;
        if !prepared.wants(NotifyEvent::Drift) {
            continue;
        }
        let event = Event {
            kind: Some(NotifyEvent::Drift),
            environment: env.name.clone(),
            account: env.account.clone(),
            region: env.region.clone(),
            commit: Some(report.revision.clone()),
            drift: Some(c),
            links: Links {
                pull_request: None,
                run: Links::actions_run(),
            },
            ..Event::default()
        };
        notifier.send(&prepared, &event).await;
    }
}
