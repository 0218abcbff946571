//! Policy overrides (`/formwork override RULE`, docs/policy.md): a maintainer lets one pull
//! request's plan through a blocking policy rule. An override is an event in the
//! environment's audit trail, for one rule, one pull request and its head commit — a new push
//! is planned against the rules again and needs a new one. Planning the pull request marks the
//! findings the overrides cover, so the plan's check passes and apply takes it.

use crate::plan::model::Plan;
use crate::store::{Event, Store, StoreError, now};

/// The kind of audit event an override is.
pub const OVERRIDE_EVENT: &str = "policy_override";

/// Audit events of an environment read back to find its overrides.
const EVENTS_READ: usize = 1000;

/// What an override's event says: the rule, the pull request and its head.
fn detail(rule: &str, pull_request: u64, head: &str) -> String {
    format!("rule {rule} on pull request #{pull_request} at commit {head}")
}

/// Records that `actor` overrode `rule` in `environment` for pull request `pull_request` at
/// `head`.
pub async fn record<S: Store>(
    store: &S,
    environment: &str,
    rule: &str,
    pull_request: u64,
    head: &str,
    actor: &str,
) -> Result<(), StoreError> {
    store
        .record_event(&Event {
            environment: environment.to_string(),
            at: now(),
            kind: OVERRIDE_EVENT.to_string(),
            actor: actor.to_string(),
            detail: detail(rule, pull_request, head),
        })
        .await
}

/// Marks the blocking findings of `plan` (of pull request `pull_request` at `head`) that a
/// recorded override covers, with who overrode them. Returns how many it marked.
pub async fn mark<S: Store>(
    store: &S,
    plan: &mut Plan,
    pull_request: u64,
    head: &str,
) -> Result<usize, StoreError> {
    let mut marked = 0;
    for env in &mut plan.environments {
        if !env.units.iter().flat_map(|u| &u.policy).any(|f| f.blocks()) {
            continue;
        }
        let events = store.events(Some(&env.name), EVENTS_READ).await?;
        for f in env.units.iter_mut().flat_map(|u| &mut u.policy) {
            if !f.blocks() {
                continue;
            }
            let wanted = detail(&f.rule, pull_request, head);
            if let Some(e) = events
                .iter()
                .find(|e| e.kind == OVERRIDE_EVENT && e.detail == wanted)
            {
                f.overridden_by = Some(e.actor.clone());
                marked += 1;
            }
        }
    }
    Ok(marked)
}
