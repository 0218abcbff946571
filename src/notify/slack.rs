//! The Slack target's message: what an incoming webhook is sent — `text` (the summary, shown
//! in notifications and by clients without blocks) and `blocks`: the summary, the failed
//! stacks or drifted ones with why, and links to the pull request and the run. Short on
//! purpose; the details are on the pull request.

use serde_json::{Value, json};

use super::event::Event;
use crate::config::notifications::NotifyEvent;

/// The most stacks listed in one message.
const MAX_STACKS: usize = 10;
/// The longest reason shown for one stack, in characters.
const MAX_REASON: usize = 200;

/// Text as Slack's `mrkdwn` shows it literally: `&`, `<` and `>` escaped (Slack's message
/// formatting reference).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        one_line.chars().take(max - 1).collect::<String>() + "…"
    }
}

fn icon(kind: Option<NotifyEvent>) -> &'static str {
    match kind {
        Some(NotifyEvent::ApplyStarted) => ":arrow_forward:",
        Some(NotifyEvent::ApplySucceeded) => ":white_check_mark:",
        Some(NotifyEvent::ApplyFailed) => ":x:",
        Some(NotifyEvent::ApplyWaiting) => ":double_vertical_bar:",
        Some(NotifyEvent::Drift) => ":warning:",
        None => ":information_source:",
    }
}

/// The message for `event` (not yet masked).
pub fn message(event: &Event) -> Value {
    let summary = event.summary();
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("{} *formwork* {}", icon(event.kind), escape(&summary))}
    })];
    let mut lines: Vec<String> = Vec::new();
    if let Some(m) = &event.message {
        lines.push(escape(&shorten(m, MAX_REASON * 2)));
    }
    for s in event
        .stacks
        .iter()
        .filter(|s| s.state == "failed" || s.state == "skipped")
        .take(MAX_STACKS)
    {
        let why = s
            .message
            .as_deref()
            .map(|m| format!(": {}", escape(&shorten(m, MAX_REASON))))
            .unwrap_or_default();
        lines.push(format!("• `{}` {}{why}", escape(&s.stack), s.state));
    }
    if let Some(d) = &event.drift {
        for s in d.drifted_stacks.iter().take(MAX_STACKS) {
            lines.push(format!("• `{}` drifted", escape(s)));
        }
    }
    if !lines.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": lines.join("\n")}
        }));
    }
    let mut context = Vec::new();
    if let Some(c) = event.short_commit() {
        context.push(format!("commit `{}`", escape(c)));
    }
    if let Some(u) = &event.links.pull_request {
        context.push(format!("<{}|pull request>", escape(u)));
    }
    if let Some(u) = &event.links.run {
        context.push(format!("<{}|run>", escape(u)));
    }
    if !context.is_empty() {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": context.join(" · ")}]
        }));
    }
    json!({"text": format!("formwork: {summary}"), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::{Links, StackOutcome};

    #[test]
    fn a_failed_apply_says_which_stack_and_links_the_pull_request() {
        let e = Event {
            kind: Some(NotifyEvent::ApplyFailed),
            environment: "prod".into(),
            commit: Some("abcdef0123456789".into()),
            stacks: vec![StackOutcome {
                stack: "app".into(),
                stack_name: "prod-app".into(),
                state: "failed".into(),
                message: Some("Role <x> & co: CREATE_FAILED".into()),
            }],
            links: Links {
                pull_request: Some("https://github.com/o/r/pull/7".into()),
                run: Some("https://github.com/o/r/actions/runs/9".into()),
            },
            ..Event::default()
        };
        let m = message(&e);
        assert_eq!(
            m["text"],
            "formwork: prod: apply abcdef012345 failed (1 stack failed: app)"
        );
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with(":x: *formwork*")
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "• `app` failed: Role &lt;x&gt; &amp; co: CREATE_FAILED"
        );
        assert_eq!(
            blocks[2]["elements"][0]["text"],
            "commit `abcdef012345` · <https://github.com/o/r/pull/7|pull request> · <https://github.com/o/r/actions/runs/9|run>"
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        assert_eq!(shorten("a  b\nc", 10), "a b c");
        assert_eq!(shorten(&"x".repeat(20), 5).chars().count(), 5);
    }
}
