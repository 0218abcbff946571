//! `notifications:`, in `environment.yml` and in the agent's `formwork-server.yml`: where to
//! tell that an apply started, succeeded, failed or waits at a gate, and that drift was found —
//! a Slack incoming webhook, a signed generic webhook or an SNS topic. The model (unknown keys
//! rejected; the doc comments are the JSON Schema's), its checks with where each problem is
//! written, and the checked form the `notify` room sends to ([`Notification`]).
//!
//! Secrets are never written in the repository: a Slack webhook URL and a signing secret are
//! named here by the runner's environment variable or the SSM parameter that holds them, and
//! read only when a notification is sent.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Diagnostics, Loc, Span};
use crate::yaml::Spanned;

/// How long one attempt of a delivery may take, unless a target says otherwise.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 5;
/// The longest a target may let one attempt take.
pub const MAX_TIMEOUT_SECONDS: u64 = 30;

/// One place notifications go. Give exactly one of `slack`, `webhook` and `sns`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["slack"]},
    {"required": ["webhook"]},
    {"required": ["sns"]}
]))]
pub struct NotificationTarget {
    /// A name for logs and messages about this target (default: its kind and position, e.g.
    /// `slack #1`). Never the URL: that may be a secret.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// The events sent here: `apply_started`, `apply_succeeded`, `apply_failed`,
    /// `apply_waiting` (stopped at a gate) and `drift` (a drift check found drifted stacks).
    /// Default: every one.
    #[serde(default)]
    pub on: Option<Spanned<Vec<Spanned<NotifyEvent>>>>,
    /// How long one attempt of a delivery may take, in seconds (1 to 30; default 5). A
    /// delivery is tried three times at most.
    #[serde(default)]
    #[schemars(range(min = 1, max = 30))]
    pub timeout_seconds: Option<Spanned<u64>>,
    /// A Slack incoming webhook: a short message with links to the pull request and the run.
    #[serde(default)]
    pub slack: Option<Spanned<SlackTarget>>,
    /// A generic webhook: a versioned JSON body, signed with HMAC-SHA256
    /// (`X-Formwork-Signature-256`; see docs/notifications.md).
    #[serde(default)]
    pub webhook: Option<Spanned<WebhookTarget>>,
    /// An Amazon SNS topic: the same JSON body as the webhook's, published with the
    /// environment's AWS session (its account, role and the topic's region).
    #[serde(default)]
    pub sns: Option<Spanned<SnsTarget>>,
}

/// A Slack incoming webhook. Its URL is a secret: give the variable or the SSM parameter that
/// holds it, exactly one.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackTarget {
    /// The environment variable of the runner that holds the webhook URL, e.g.
    /// `SLACK_WEBHOOK_URL`.
    #[serde(default)]
    pub url_from_env: Option<Spanned<String>>,
    /// The SSM parameter (a SecureString) that holds the webhook URL, read with the
    /// environment's AWS session.
    #[serde(default)]
    pub url_from_ssm: Option<Spanned<String>>,
}

/// A generic webhook: a POST of a JSON body, signed with a shared secret.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// The URL (`https://…`; `http://` only for receivers on a private network). Give `url`,
    /// `url_from_env` or `url_from_ssm`, exactly one.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// The environment variable of the runner that holds the URL.
    #[serde(default)]
    pub url_from_env: Option<Spanned<String>>,
    /// The SSM parameter that holds the URL.
    #[serde(default)]
    pub url_from_ssm: Option<Spanned<String>>,
    /// The environment variable of the runner that holds the signing secret. Give
    /// `secret_from_env` or `secret_from_ssm`, exactly one.
    #[serde(default)]
    pub secret_from_env: Option<Spanned<String>>,
    /// The SSM parameter (a SecureString) that holds the signing secret, read with the
    /// environment's AWS session.
    #[serde(default)]
    pub secret_from_ssm: Option<Spanned<String>>,
}

/// An Amazon SNS topic.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnsTarget {
    /// The topic's ARN, `arn:aws:sns:REGION:ACCOUNT:NAME`. The environment's role needs
    /// `sns:Publish` on it (`formwork iam-policy` includes it).
    pub topic_arn: Spanned<String>,
}

/// What a notification tells.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// An apply of an environment is starting.
    ApplyStarted,
    /// Every stack of the plan was applied.
    ApplySucceeded,
    /// The apply failed, was refused, or could not start.
    ApplyFailed,
    /// The apply stopped at a gate: a manual step waits (`formwork continue`).
    ApplyWaiting,
    /// A drift check found stacks changed outside CloudFormation.
    Drift,
}

impl NotifyEvent {
    /// Every event, in the order they are documented.
    pub const ALL: [NotifyEvent; 5] = [
        NotifyEvent::ApplyStarted,
        NotifyEvent::ApplySucceeded,
        NotifyEvent::ApplyFailed,
        NotifyEvent::ApplyWaiting,
        NotifyEvent::Drift,
    ];

    /// The name used in config, headers and bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ApplyStarted => "apply_started",
            NotifyEvent::ApplySucceeded => "apply_succeeded",
            NotifyEvent::ApplyFailed => "apply_failed",
            NotifyEvent::ApplyWaiting => "apply_waiting",
            NotifyEvent::Drift => "drift",
        }
    }
}

/// Where a value comes from: written in the config, or read when sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueFrom {
    /// Written in the config (only for values that are not secret: a webhook's URL).
    Literal(String),
    /// An environment variable of the runner.
    Env(String),
    /// An SSM parameter, read with the environment's AWS session.
    Ssm(String),
}

/// A checked notification target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// For logs and messages.
    pub name: String,
    /// The events sent to it.
    pub events: BTreeSet<NotifyEvent>,
    /// How long one attempt may take.
    pub timeout: Duration,
    pub kind: NotificationKind,
}

/// Where a checked target sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    Slack { url: ValueFrom },
    Webhook { url: ValueFrom, secret: ValueFrom },
    Sns { topic_arn: String },
}

impl Notification {
    /// Whether `event` goes to this target.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }

    /// The SSM parameters it reads.
    pub fn ssm_parameters(&self) -> Vec<&str> {
        fn from(v: &ValueFrom) -> Option<&str> {
            match v {
                ValueFrom::Ssm(p) => Some(p.as_str()),
                _ => None,
            }
        }
        match &self.kind {
            NotificationKind::Slack { url } => from(url).into_iter().collect(),
            NotificationKind::Webhook { url, secret } => {
                from(url).into_iter().chain(from(secret)).collect()
            }
            NotificationKind::Sns { .. } => Vec::new(),
        }
    }
}

static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"));
static SSM_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/?[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$").expect("valid regex"));
/// SNS topic ARNs: topic names are up to 256 letters, digits, hyphens and underscores, with
/// `.fifo` for FIFO topics (SNS API reference, CreateTopic).
static TOPIC_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws[a-z-]*:sns:([a-z]{2}(-[a-z]+)+-\d+):(\d{12}):[A-Za-z0-9_-]{1,256}(\.fifo)?$",
    )
    .expect("valid regex")
});

/// The region of a topic ARN (checked by [`check`]).
pub fn topic_region(arn: &str) -> Option<&str> {
    TOPIC_ARN
        .captures(arn)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// Checks the targets written in `file` and returns those that are sound; every problem is
/// pushed to `d` where it is written.
pub fn check(
    file: &Arc<str>,
    targets: &[Spanned<NotificationTarget>],
    d: &mut Diagnostics,
) -> Vec<Notification> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, t) in targets.iter().enumerate() {
        let Some(n) = check_one(file, i + 1, t, d) else {
            continue;
        };
        if !names.insert(n.name.clone()) {
            let span = t.name.as_ref().map_or(t.span, |s| s.span);
            d.push(
                Diagnostic::error(format!("two notification targets are named `{}`", n.name))
                    .at(Loc::new(file, span))
                    .help("give each target its own `name`"),
            );
            continue;
        }
        out.push(n);
    }
    out
}

fn check_one(
    file: &Arc<str>,
    position: usize,
    t: &Spanned<NotificationTarget>,
    d: &mut Diagnostics,
) -> Option<Notification> {
    let loc = |span: Span| Loc::new(file, span);
    let errors = d.error_count();
    let kinds = [
        t.slack.as_ref().map(|s| ("slack", s.span)),
        t.webhook.as_ref().map(|s| ("webhook", s.span)),
        t.sns.as_ref().map(|s| ("sns", s.span)),
    ];
    let given: Vec<(&str, Span)> = kinds.into_iter().flatten().collect();
    if given.len() != 1 {
        let span = given.get(1).map_or(t.span, |g| g.1);
        d.push(
            Diagnostic::error(if given.is_empty() {
                "a notification target needs one of `slack`, `webhook` and `sns`".to_string()
            } else {
                format!(
                    "a notification target has one kind; this one has {}",
                    given
                        .iter()
                        .map(|g| format!("`{}`", g.0))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            })
            .at(loc(span))
            .help("write one target per kind, each an item of the `notifications` list"),
        );
        return None;
    }
    let kind_name = given[0].0;
    let name = match &t.name {
        Some(n) if n.trim().is_empty() => {
            d.push(
                Diagnostic::error("a notification target's name must not be empty").at(loc(n.span)),
            );
            return None;
        }
        Some(n) => n.value.clone(),
        None => format!("{kind_name} #{position}"),
    };
    let events: BTreeSet<NotifyEvent> = match &t.on {
        None => NotifyEvent::ALL.into_iter().collect(),
        // Written empty (`on: []`); a list whose every item was refused is reported there.
        Some(on) if on.is_empty() && written_empty(on.span) => {
            d.push(
                Diagnostic::error(format!("notification target `{name}` is sent no event"))
                    .at(loc(on.span))
                    .help("list the events it is for, or leave `on` out for every event"),
            );
            return None;
        }
        Some(on) if on.is_empty() => return None,
        Some(on) => on.iter().map(|e| e.value).collect(),
    };
    let timeout = match &t.timeout_seconds {
        None => DEFAULT_TIMEOUT_SECONDS,
        Some(s) if (1..=MAX_TIMEOUT_SECONDS).contains(&s.value) => s.value,
        Some(s) => {
            d.push(
                Diagnostic::error(format!(
                    "timeout_seconds must be from 1 to {MAX_TIMEOUT_SECONDS}, not {}",
                    s.value
                ))
                .at(loc(s.span)),
            );
            return None;
        }
    };
    let kind = if let Some(s) = &t.slack {
        let url = one_source(
            file,
            s.span,
            ("the Slack webhook URL", "`url_from_env` or `url_from_ssm`"),
            None,
            s.url_from_env.as_ref(),
            s.url_from_ssm.as_ref(),
            d,
        );
        NotificationKind::Slack { url: url? }
    } else if let Some(w) = &t.webhook {
        let url = one_source(
            file,
            w.span,
            ("the webhook URL", "`url`, `url_from_env` or `url_from_ssm`"),
            w.url.as_ref(),
            w.url_from_env.as_ref(),
            w.url_from_ssm.as_ref(),
            d,
        );
        if let Some(u) = &w.url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            d.push(
                Diagnostic::error(format!("`{}` is not an http:// or https:// URL", u.value))
                    .at(loc(u.span)),
            );
        }
        let secret = one_source(
            file,
            w.span,
            (
                "the signing secret",
                "`secret_from_env` or `secret_from_ssm`",
            ),
            None,
            w.secret_from_env.as_ref(),
            w.secret_from_ssm.as_ref(),
            d,
        );
        NotificationKind::Webhook {
            url: url?,
            secret: secret?,
        }
    } else {
        let s = t.sns.as_ref()?;
        if !TOPIC_ARN.is_match(&s.topic_arn) {
            d.push(
                Diagnostic::error(format!("`{}` is not an SNS topic ARN", s.topic_arn.value))
                    .at(loc(s.topic_arn.span))
                    .help("write arn:aws:sns:<region>:<account>:<topic name>"),
            );
        }
        NotificationKind::Sns {
            topic_arn: s.topic_arn.value.clone(),
        }
    };
    (d.error_count() == errors).then(|| Notification {
        name,
        events,
        timeout: Duration::from_secs(timeout),
        kind,
    })
}

/// Whether a list spans no more than its brackets.
fn written_empty(span: Span) -> bool {
    span.start.line == span.end.line && span.end.col.saturating_sub(span.start.col) <= 2
}

/// Exactly one of a value's sources, checked.
fn one_source(
    file: &Arc<str>,
    span: Span,
    (what, keys): (&str, &str),
    literal: Option<&Spanned<String>>,
    env: Option<&Spanned<String>>,
    ssm: Option<&Spanned<String>>,
    d: &mut Diagnostics,
) -> Option<ValueFrom> {
    let loc = |span: Span| Loc::new(file, span);
    let count = [literal.is_some(), env.is_some(), ssm.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if count != 1 {
        d.push(
            Diagnostic::error(if count == 0 {
                format!("{what} is not given")
            } else {
                format!("{what} is given more than once")
            })
            .at(loc(span))
            .help(format!("give {keys}, exactly one")),
        );
        return None;
    }
    if let Some(l) = literal {
        return Some(ValueFrom::Literal(l.value.clone()));
    }
    if let Some(e) = env {
        if !ENV_NAME.is_match(e) {
            d.push(
                Diagnostic::error(format!("`{}` is not an environment variable name", e.value))
                    .at(loc(e.span))
                    .help("name the variable that holds the value (letters, digits and `_`), never the value itself"),
            );
            return None;
        }
        return Some(ValueFrom::Env(e.value.clone()));
    }
    let p = ssm?;
    if !SSM_NAME.is_match(p) {
        d.push(
            Diagnostic::error(format!("`{}` is not an SSM parameter name", p.value))
                .at(loc(p.span))
                .help("name the parameter that holds the value, e.g. /formwork/slack-webhook-url"),
        );
        return None;
    }
    Some(ValueFrom::Ssm(p.value.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(yaml: &str) -> (Vec<Notification>, Vec<String>) {
        let file: Arc<str> = Arc::from("environments/prod/environment.yml");
        let parsed = crate::config::parse_yaml::<Vec<Spanned<NotificationTarget>>>(
            &file,
            yaml.as_bytes().to_vec(),
        );
        let mut d = Diagnostics::new();
        for x in parsed.diags {
            d.push(x);
        }
        let out = parsed
            .value
            .map(|v| check(&file, &v, &mut d))
            .unwrap_or_default();
        let msgs = d
            .iter()
            .map(|x| {
                let at = x
                    .loc
                    .as_ref()
                    .map(|l| format!("{}:{}: ", l.span.start.line, l.span.start.col))
                    .unwrap_or_default();
                format!("{at}{}", x.message)
            })
            .collect();
        (out, msgs)
    }

    #[test]
    fn targets_of_each_kind_with_defaults() {
        let (n, msgs) = checked(
            "- slack:\n    url_from_env: SLACK_URL\n  on: [apply_failed, drift]\n\
             - name: audit\n  webhook:\n    url: https://hooks.example.com/x\n    secret_from_ssm: /formwork/hook-secret\n  timeout_seconds: 2\n\
             - sns:\n    topic_arn: arn:aws:sns:eu-west-1:123456789012:deploys\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].name, "slack #1");
        assert!(n[0].wants(NotifyEvent::Drift) && !n[0].wants(NotifyEvent::ApplyStarted));
        assert_eq!(
            n[0].kind,
            NotificationKind::Slack {
                url: ValueFrom::Env("SLACK_URL".into())
            }
        );
        assert_eq!(n[1].name, "audit");
        assert_eq!(n[1].timeout, Duration::from_secs(2));
        assert_eq!(n[1].ssm_parameters(), ["/formwork/hook-secret"]);
        assert_eq!(n[2].events.len(), NotifyEvent::ALL.len());
        assert_eq!(n[2].timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECONDS));
        assert_eq!(
            topic_region("arn:aws:sns:eu-west-1:123456789012:deploys"),
            Some("eu-west-1")
        );
    }

    #[test]
    fn problems_point_where_they_are_written() {
        let cases = [
            (
                "- slack:\n    url: https://hooks.slack.com/services/T/B/x\n",
                "2:5: unknown field `url`",
            ),
            (
                "- slack:\n    url_from_env: SLACK_URL\n  on: [apply_finished]\n",
                "3:8: unknown value `apply_finished`",
            ),
            (
                "- slack:\n    url_from_env: SLACK_URL\n  webhook:\n    url: https://x\n",
                "4:5: a notification target has one kind; this one has `slack` and `webhook`",
            ),
            ("- on: [drift]\n", "1:3: a notification target needs one of"),
            ("- slack: {}\n", "1:10: the Slack webhook URL is not given"),
            (
                "- slack:\n    url_from_env: https://hooks.slack.com/x\n",
                "2:19: `https://hooks.slack.com/x` is not an environment variable name",
            ),
            (
                "- webhook:\n    url: https://x.example.com\n",
                "the signing secret is not given",
            ),
            (
                "- webhook:\n    url: ftp://x\n    secret_from_env: S\n",
                "2:10: `ftp://x` is not an http:// or https:// URL",
            ),
            (
                "- sns:\n    topic_arn: arn:aws:sqs:eu-west-1:123456789012:q\n",
                "2:16: `arn:aws:sqs:eu-west-1:123456789012:q` is not an SNS topic ARN",
            ),
            (
                "- sns:\n    topic_arn: arn:aws:sns:eu-west-1:123456789012:t\n  timeout_seconds: 90\n",
                "3:20: timeout_seconds must be from 1 to 30",
            ),
            (
                "- sns:\n    topic_arn: arn:aws:sns:eu-west-1:123456789012:t\n  on: []\n",
                "3:7: notification target `sns #1` is sent no event",
            ),
            (
                "- name: a\n  sns:\n    topic_arn: arn:aws:sns:eu-west-1:123456789012:t\n- name: a\n  sns:\n    topic_arn: arn:aws:sns:eu-west-1:123456789012:u\n",
                "4:9: two notification targets are named `a`",
            ),
        ];
        for (yaml, want) in cases {
            let (_, msgs) = checked(yaml);
            assert!(
                msgs.iter().any(|m| m.contains(want)),
                "{yaml}: want {want:?}, got {msgs:?}"
            );
        }
    }
}
