//! Finishing the record of a run whose process died (killed, crashed): operations still in
//! flight are waited for and recorded, never started again; stacks it had not started are
//! marked skipped.

use super::stack_ops::Outcome;
use super::{ApplyError, Observer, Options, wait};
use crate::aws::Session;
use crate::store::{Run, RunStatus, Store, UnitState, now};

/// Finishes the record of a run whose process died: operations still in flight are waited for
/// (never started again) and recorded; stacks it had not started are marked skipped.
pub(super) async fn recover<S: Store>(
    session: &Session,
    req: &super::Request,
    store: &S,
    run: &Run,
    options: &Options,
    observer: &dyn Observer,
) -> Result<(), ApplyError> {
    let Some((_, units)) = store.run(&run.id).await? else {
        return Ok(());
    };
    let mut ok = true;
    for mut u in units {
        match u.state {
            UnitState::Executing => {
                let token = u.client_request_token.clone().unwrap_or_default();
                let ended = wait::wait_for_stack(
                    &session.in_region(&region_of(&u, req, &session.region)).cfn,
                    &u.stack_name,
                    &token,
                    options.stack_timeout,
                    &|e| observer.event(&u.stack, e),
                )
                .await?;
                let outcome = ended_outcome(
                    &ended,
                    &u.stack_name,
                    u.message.as_deref() == Some("deleting"),
                );
                ok &= matches!(outcome.state, UnitState::Applied | UnitState::Deleted);
                u.state = outcome.state;
                u.message = Some(format!(
                    "finished after an interruption: {}",
                    outcome
                        .message
                        .unwrap_or_else(|| outcome.state.as_str().into())
                ));
                u.finished_at = Some(now());
                observer.unit(&u.stack, u.state, u.message.as_deref());
                store.put_unit(&u).await?;
            }
            UnitState::Waiting => {
                ok = false;
                u.state = UnitState::Skipped;
                u.message = Some("not started: the run was interrupted".into());
                u.finished_at = Some(now());
                store.put_unit(&u).await?;
            }
            s => ok &= !matches!(s, UnitState::Failed | UnitState::Skipped),
        }
    }
    let status = if ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    store.finish_run(&run.id, status, now()).await?;
    Ok(())
}

/// The region of a stack operation of an earlier run: the change set's (its ARN names it),
/// else the stack's in this plan or config, else the environment's.
fn region_of(u: &crate::store::UnitResult, req: &super::Request, env_region: &str) -> String {
    let from_arn = u.change_set_id.as_deref().and_then(arn_region);
    let planned = || {
        req.plan
            .environments
            .iter()
            .flat_map(|e| &e.units)
            .find(|p| p.stack == u.stack && p.stack_name == u.stack_name)
            .map(|p| p.region.clone().unwrap_or_else(|| env_region.to_string()))
    };
    let configured = || {
        req.desired
            .units
            .get(&u.stack)
            .filter(|d| d.stack_name == u.stack_name)
            .map(|d| d.region.clone())
    };
    from_arn
        .map(str::to_string)
        .or_else(planned)
        .or_else(configured)
        .unwrap_or_else(|| env_region.to_string())
}

/// The region an ARN names (`arn:PARTITION:SERVICE:REGION:…`), when it names one.
fn arn_region(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")?
        .split(':')
        .nth(2)
        .filter(|r| !r.is_empty())
}

/// What a finished stack operation means.
pub(super) fn ended_outcome(ended: &wait::Ended, stack_name: &str, deleting: bool) -> Outcome {
    let cause = ended
        .root_cause
        .clone()
        .map(|c| format!("; first failure: {c}"))
        .unwrap_or_default();
    if ended.timed_out {
        return Outcome::new(
            UnitState::Failed,
            Some(format!(
                "timed out waiting; the stack is still {} (the operation goes on){cause}",
                ended.status.as_deref().unwrap_or("unknown")
            )),
        );
    }
    let Some(status) = ended.status.as_deref() else {
        return if deleting {
            Outcome::new(UnitState::Deleted, None)
        } else {
            Outcome::new(UnitState::Failed, Some(format!("the stack is gone{cause}")))
        };
    };
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" if !deleting => {
            Outcome::new(UnitState::Applied, None)
        }
        "DELETE_COMPLETE" if deleting => Outcome::new(UnitState::Deleted, None),
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => Outcome::new(
            UnitState::Failed,
            Some(format!(
                "creating the stack failed and it rolled back ({status}){cause}; it must be deleted before it can be created again: aws cloudformation delete-stack --stack-name {stack_name}, then plan again"
            )),
        ),
        "UPDATE_ROLLBACK_COMPLETE" => Outcome::new(
            UnitState::Failed,
            Some(format!("the update failed and was rolled back{cause}")),
        ),
        "UPDATE_ROLLBACK_FAILED" => Outcome::new(
            UnitState::Failed,
            Some(format!(
                "the update failed and so did its rollback (UPDATE_ROLLBACK_FAILED){cause}; fix the cause, then aws cloudformation continue-update-rollback --stack-name {stack_name} (skipping resources that cannot roll back with --resources-to-skip)"
            )),
        ),
        other => Outcome::new(
            UnitState::Failed,
            Some(format!("the stack ended in {other}{cause}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::arn_region;

    #[test]
    fn the_region_of_a_change_set_arn() {
        assert_eq!(
            arn_region(
                "arn:aws:cloudformation:ap-southeast-2:123456789012:changeSet/formwork-1/6f1c"
            ),
            Some("ap-southeast-2")
        );
        assert_eq!(arn_region("arn:aws:iam::123456789012:role/x"), None);
        assert_eq!(arn_region("formwork-1"), None);
    }
}
