//! Reading an event's payload into the event model: the events formwork acts on, the rest
//! ignored with a reason, and a malformed payload refused with the JSON path of the problem.

use serde::de::DeserializeOwned;

use super::json_path::{error_offset, json_path};
use super::payload::{
    ActionOnly, RawIssueCommentEvent, RawPingEvent, RawPullRequestEvent, RawPushEvent,
};
use super::{Event, Ignored, WebhookError};

/// Reads an event payload that reached formwork by a trusted path, with no signature to check:
/// the file GitHub Actions names in `GITHUB_EVENT_PATH`. Webhook deliveries go through
/// [`receive`](super::receive).
pub fn read_trusted_event(name: &str, body: &[u8]) -> Result<Event, WebhookError> {
    let ignored = |action: Option<String>, reason| {
        Ok(Event::Ignored(Ignored {
            event: name.to_string(),
            action,
            reason,
        }))
    };
    match name {
        "pull_request" => {
            let action: ActionOnly = parse(name, body)?;
            match action.action.as_deref() {
                Some("opened" | "synchronize" | "reopened" | "closed") => {
                    let raw: RawPullRequestEvent = parse(name, body)?;
                    Ok(Event::PullRequest(raw.into_event()))
                }
                _ => ignored(
                    action.action,
                    "formwork acts on pull requests opened, synchronized, reopened and closed",
                ),
            }
        }
        "issue_comment" => {
            let action: ActionOnly = parse(name, body)?;
            if action.action.as_deref() != Some("created") {
                return ignored(
                    action.action,
                    "formwork reads new comments only, not edited or deleted ones",
                );
            }
            let raw: RawIssueCommentEvent = parse(name, body)?;
            if !raw.is_on_pull_request() {
                return ignored(
                    action.action,
                    "a comment on an issue, not on a pull request",
                );
            }
            Ok(Event::IssueComment(raw.into_event()))
        }
        "push" => {
            let raw: RawPushEvent = parse(name, body)?;
            Ok(Event::Push(raw.into_event()))
        }
        "ping" => {
            let raw: RawPingEvent = parse(name, body)?;
            Ok(Event::Ping(raw.into_event()))
        }
        _ => {
            // Best effort: the action is only for logs, and an event formwork ignores need not
            // have any particular shape.
            let action = serde_json::from_slice::<ActionOnly>(body)
                .ok()
                .and_then(|a| a.action);
            ignored(action, "formwork does not act on this event")
        }
    }
}

/// Deserializes `body`, naming the event and the JSON path of the problem on failure.
fn parse<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| {
        let offset = error_offset(body, e.line(), e.column());
        let container = e.to_string().starts_with("missing field");
        let path = json_path(body, offset, container);
        let mut message = e.to_string();
        if message.chars().count() > 300 {
            message = message.chars().take(300).collect::<String>() + "…";
        }
        WebhookError::Payload {
            event: event.to_string(),
            path,
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn path_of<T: DeserializeOwned>(body: &str) -> String {
        match parse::<T>("test", body.as_bytes()) {
            Err(WebhookError::Payload { path, .. }) => path,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("parsed"),
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        a: Vec<Inner>,
        b: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        x: String,
        y: Option<u64>,
    }

    #[test]
    fn error_paths_name_the_member() {
        let inner = r#"{"x": "1", "y": 2}"#;
        assert_eq!(
            path_of::<Outer>(&format!(
                r#"{{"a": [{inner}, {{"x": null}}], "b": {inner}}}"#
            )),
            "$.a[1].x"
        );
        assert_eq!(
            path_of::<Outer>(
                "{\n  \"a\": [],\n  \"b\": {\n    \"x\": \"1\",\n    \"y\": \"two\"\n  }\n}"
            ),
            "$.b.y"
        );
        assert_eq!(path_of::<Outer>(r#"{"a": [], "b": {"y": 1}}"#), "$.b");
        assert_eq!(
            path_of::<Outer>(r#"{"a": [], "b": {"y": 1, "x": 7}}"#),
            "$.b.x"
        );
        assert_eq!(path_of::<Outer>(r#"{"a": []}"#), "$");
        assert_eq!(path_of::<Outer>(r#"{"a": [], "b": {"x": "1"}, "#), "$");
        assert_eq!(
            path_of::<Outer>(r#"{"a": [], "b": {"x": "1", "y": -1}}"#),
            "$.b.y"
        );
        assert_eq!(
            path_of::<Outer>(r#"{"a": [], "b": {"x\"q": 1, "x": 2}}"#),
            "$.b.x"
        );
        assert_eq!(path_of::<Outer>("not json"), "$");
    }
}
