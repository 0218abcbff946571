//! Waiting for a stack operation (a change set execution or a deletion) to finish: the stack's
//! status polled with a growing interval, its new events passed on as they appear, and, when it
//! fails, the event that caused it.

use std::time::{Duration, Instant};

use crate::aws::Cfn;
use crate::aws::cfn::StackEvent;

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The stack's last status; `None` when the stack is gone (deleted).
    pub status: Option<String>,
    /// The first failed resource event of the operation: what went wrong.
    pub root_cause: Option<String>,
    /// The operation did not end within the timeout; the stack was left as it was.
    pub timed_out: bool,
}

/// Whether a stack status is the end of an operation.
pub fn is_settled(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// The first failed resource event, as `Logical (Type): reason`. Cancellations that follow a
/// failure elsewhere are not the cause.
pub fn root_cause(events: &[StackEvent]) -> Option<String> {
    events
        .iter()
        .find(|e| {
            e.status.ends_with("_FAILED")
                && !e
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.to_ascii_lowercase().contains("cancelled"))
        })
        .map(|e| {
            format!(
                "{} ({}): {}",
                e.logical_id,
                e.resource_type,
                e.reason.as_deref().unwrap_or(&e.status)
            )
        })
}

/// Waits for the operation started with `token` on stack `name` to finish, passing each new
/// event of it to `on_event`. Events without a token (some endpoints leave it out) count when
/// they are newer than the ones seen before the wait began.
pub async fn wait_for_stack(
    cfn: &Cfn,
    name: &str,
    token: &str,
    timeout: Duration,
    on_event: &(dyn Fn(&StackEvent) + Send + Sync),
) -> Result<Ended, crate::aws::AwsError> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(250);
    let mut last_seen: Option<String> = None;
    let mut ours: Vec<StackEvent> = Vec::new();
    loop {
        let stack = cfn.describe_stack(name).await?;
        // Events: the stack may be gone (a finished deletion), so failures to read them are
        // not fatal.
        if let Ok(events) = cfn.stack_events(name, last_seen.as_deref()).await {
            if let Some(last) = events.last() {
                last_seen = Some(last.event_id.clone());
            }
            for e in events {
                let mine = e.client_request_token.as_deref().is_none_or(|t| t == token);
                if mine {
                    on_event(&e);
                    ours.push(e);
                }
            }
        }
        let status = stack.as_ref().map(|s| s.status.clone());
        let settled = match status.as_deref() {
            None => true,
            // A stack created by a change set reads REVIEW_IN_PROGRESS until CloudFormation
            // starts on it.
            Some("REVIEW_IN_PROGRESS") => false,
            Some(s) => is_settled(s),
        };
        if settled {
            return Ok(Ended {
                status,
                root_cause: root_cause(&ours),
                timed_out: false,
            });
        }
        if start.elapsed() >= timeout {
            return Ok(Ended {
                status,
                root_cause: root_cause(&ours),
                timed_out: true,
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(logical: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            event_id: format!("{logical}-{status}"),
            logical_id: logical.into(),
            resource_type: "AWS::S3::Bucket".into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            timestamp: String::new(),
            client_request_token: None,
        }
    }

    #[test]
    fn the_root_cause_is_the_first_failure_that_is_not_a_cancellation() {
        let events = vec![
            ev("A", "CREATE_IN_PROGRESS", None),
            ev("B", "CREATE_FAILED", Some("Resource creation cancelled")),
            ev("C", "CREATE_FAILED", Some("Bucket name is not valid")),
            ev(
                "stack",
                "ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to create: [C]"),
            ),
        ];
        assert_eq!(
            root_cause(&events).as_deref(),
            Some("C (AWS::S3::Bucket): Bucket name is not valid")
        );
        assert_eq!(root_cause(&events[..2]), None);
    }

    #[test]
    fn settled_statuses() {
        assert!(is_settled("UPDATE_COMPLETE"));
        assert!(is_settled("ROLLBACK_COMPLETE"));
        assert!(is_settled("UPDATE_ROLLBACK_FAILED"));
        assert!(!is_settled("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"));
        assert!(!is_settled("CREATE_IN_PROGRESS"));
    }
}
