//! The notifications of one apply (docs/notifications.md): its environment's targets read from
//! the commit applied (or, when that config cannot be read, from the environment's deployed
//! commit) and the agent's own; `apply_started` sent beside the apply, not before it; how it
//! ended sent when it ends, after the start. Nothing here can fail or hold up the apply for
//! longer than a delivery's bounded attempts.

use std::sync::Arc;

use super::service::{Applied, Services};
use crate::config::notifications::NotifyEvent;
use crate::notify::{Event, Links, Place, Prepared, StackOutcome, targets};
use crate::store::Store;

/// The notifications of one apply, from its start.
pub(super) struct Notices {
    svc: Services,
    prepared: Arc<Prepared>,
    base: Event,
    started: Option<tokio::task::JoinHandle<()>>,
}

impl Notices {
    /// Reads the targets and sends `apply_started`, in the background.
    pub(super) async fn start(
        svc: &Services,
        environment: &str,
        commit: &str,
        links: Links,
    ) -> Notices {
        let (place, own) = match targets::at_revision(&svc.repo, commit, environment) {
            Ok(found) => found,
            Err(e) => {
                let deployed = match svc.store.deployed(environment).await {
                    Ok(Some(d)) => targets::at_revision(&svc.repo, &d.commit, environment).ok(),
                    _ => None,
                };
                deployed.unwrap_or_else(|| {
                    tracing::warn!(environment, commit, error = %svc.masker.scrub(&e.to_string()), "the environment's notifications cannot be read: only the agent's own targets are told");
                    (
                        Place {
                            environment: environment.to_string(),
                            ..Place::default()
                        },
                        Vec::new(),
                    )
                })
            }
        };
        let prepared = Arc::new(
            svc.notifier
                .prepare(&place, &own, &svc.aws, &svc.masker)
                .await,
        );
        let base = Event {
            kind: None,
            environment: environment.to_string(),
            account: place.account.clone(),
            region: place.region.clone(),
            commit: Some(commit.to_string()),
            links,
            ..Event::default()
        };
        let started = prepared.wants(NotifyEvent::ApplyStarted).then(|| {
            let (notifier, prepared) = (svc.notifier.clone(), prepared.clone());
            let event = Event {
                kind: Some(NotifyEvent::ApplyStarted),
                ..base.clone()
            };
            tokio::spawn(async move { notifier.send(&prepared, &event).await })
        });
        Notices {
            svc: svc.clone(),
            prepared,
            base,
            started,
        }
    }

    /// Sends how the apply ended, once the start has been sent.
    pub(super) async fn finish(self, applied: &Applied) {
        if let Some(h) = self.started {
            let _ = h.await;
        }
        let event = ended(self.base, applied);
        if event.kind.is_some_and(|k| self.prepared.wants(k)) {
            self.svc.notifier.send(&self.prepared, &event).await;
        }
    }
}

/// The event that says how an apply ended.
fn ended(base: Event, applied: &Applied) -> Event {
    match applied {
        Applied::Done(report) => Event {
            kind: Some(if report.succeeded() {
                NotifyEvent::ApplySucceeded
            } else if report.waiting() {
                NotifyEvent::ApplyWaiting
            } else {
                NotifyEvent::ApplyFailed
            }),
            run_id: Some(report.run.id.clone()),
            plan_id: report.run.plan_id.clone(),
            stacks: report
                .units
                .iter()
                .map(|u| StackOutcome {
                    stack: u.stack.clone(),
                    stack_name: u.stack_name.clone(),
                    state: u.state.as_str().to_string(),
                    message: u.message.clone(),
                })
                .collect(),
            ..base
        },
        Applied::Stopped { message, .. } => Event {
            kind: Some(NotifyEvent::ApplyFailed),
            message: Some(message.clone()),
            ..base
        },
    }
}
