//! Delivery: the targets of one environment made ready (secrets read from the runner's
//! environment or SSM and registered with the masker, SNS clients made with the environment's
//! session), then each event sent to the targets that want it, side by side, every body
//! masked first. HTTP deliveries get a short deadline per attempt and three attempts at most
//! (again only for no answer, 429 or 5xx); SNS gets the same through the SDK. Nothing here
//! returns an error: a failed delivery is logged, scrubbed, and counted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::event::Event;
use super::http::HttpClient;
use super::targets::Place;
use super::{Notifier, NotifyError, slack, webhook};
use crate::aws::sns::Message;
use crate::aws::{Aws, Session, Sns, Target};
use crate::config::notifications::{Notification, NotificationKind, NotifyEvent, ValueFrom};
use crate::secrets::Masker;

/// Attempts per HTTP delivery, the first included.
pub const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles for each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest SNS subject (SNS refuses longer ones).
const MAX_SUBJECT: usize = 99;

/// The targets of one environment, ready to send to.
pub struct Prepared {
    pub(super) environment: String,
    pub(super) targets: Vec<Ready>,
    pub(super) masker: Arc<Masker>,
}

impl Prepared {
    /// Whether any target wants `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.targets.iter().any(|t| t.events.contains(&event))
    }

    /// How many targets there are.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

pub(super) struct Ready {
    name: String,
    events: BTreeSet<NotifyEvent>,
    timeout: Duration,
    sink: Sink,
}

enum Sink {
    Slack {
        url: String,
    },
    Webhook {
        url: String,
        secret: String,
    },
    Sns {
        sns: Sns,
        topic_arn: String,
    },
    /// It could not be made ready: why (already scrubbed).
    Broken(String),
}

impl Notifier {
    /// Makes `targets` (the environment's own, then the agent's) ready for the environment at
    /// `place`: reads their secrets, registering each with `masker`, and makes their SNS clients.
    /// A target that cannot be made ready is kept, broken: each event it wants is logged and
    /// counted as a failed delivery.
    pub async fn prepare(
        &self,
        place: &Place,
        own: &[Notification],
        aws: &Aws,
        masker: &Arc<Masker>,
    ) -> Prepared {
        let all: Vec<&Notification> = own.iter().chain(self.server_targets()).collect();
        let mut targets = Vec::new();
        if all.is_empty() {
            return Prepared {
                environment: place.environment.clone(),
                targets,
                masker: masker.clone(),
            };
        }
        let ssm_names: Vec<String> = all
            .iter()
            .flat_map(|n| n.ssm_parameters())
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let home = if ssm_names.is_empty() {
            None
        } else {
            Some(session(aws, place, &place.region).await)
        };
        let ssm = match &home {
            Some(Ok(s)) => match s.ssm.get(&ssm_names).await {
                Ok(v) => Ok(v),
                Err(e) => Err(masker.scrub(&e.to_string())),
            },
            Some(Err(e)) => Err(masker.scrub(e)),
            None => Ok(Default::default()),
        };
        let mut values: BTreeMap<String, Result<String, String>> = BTreeMap::new();
        for name in &ssm_names {
            let v = match &ssm {
                Err(e) => Err(format!("reading SSM parameter {name}: {e}")),
                Ok(found) => match found.found.get(name) {
                    Some(v) => Ok(v.value.clone()),
                    None => Err(format!("SSM parameter {name} does not exist")),
                },
            };
            values.insert(name.clone(), v);
        }
        for n in all {
            let read = |v: &ValueFrom| -> Result<String, String> {
                let text = match v {
                    ValueFrom::Literal(t) => return Ok(t.clone()),
                    ValueFrom::Env(var) => std::env::var(var)
                        .ok()
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| format!("the variable {var} is not set"))?,
                    ValueFrom::Ssm(p) => values
                        .get(p)
                        .cloned()
                        .unwrap_or_else(|| Err(format!("SSM parameter {p} was not read")))?,
                };
                // Read from outside the repository: kept out of every output.
                masker.add(&text);
                Ok(text)
            };
            let sink = match &n.kind {
                NotificationKind::Slack { url } => match read(url) {
                    Ok(url) => Sink::Slack { url },
                    Err(e) => Sink::Broken(e),
                },
                NotificationKind::Webhook { url, secret } => match (read(url), read(secret)) {
                    (Ok(url), Ok(secret)) => Sink::Webhook { url, secret },
                    (Err(e), _) | (_, Err(e)) => Sink::Broken(e),
                },
                NotificationKind::Sns { topic_arn } => {
                    let region = crate::config::notifications::topic_region(topic_arn)
                        .unwrap_or(&place.region);
                    match session(aws, place, region).await {
                        Ok(s) => Sink::Sns {
                            sns: s.sns(region, n.timeout),
                            topic_arn: topic_arn.clone(),
                        },
                        Err(e) => Sink::Broken(masker.scrub(&e)),
                    }
                }
            };
            targets.push(Ready {
                name: n.name.clone(),
                events: n.events.clone(),
                timeout: n.timeout,
                sink,
            });
        }
        Prepared {
            environment: place.environment.clone(),
            targets,
            masker: masker.clone(),
        }
    }

    /// Sends `event` to every target of `prepared` that wants it, side by side; returns when
    /// each has been delivered or given up on. Never fails.
    pub async fn send(&self, prepared: &Prepared, event: &Event) {
        let Some(kind) = event.kind else {
            return;
        };
        let sends = prepared
            .targets
            .iter()
            .filter(|t| t.events.contains(&kind))
            .map(|t| async move {
                let result = self.deliver(t, event, &prepared.masker).await;
                self.count(result.is_ok());
                match result {
                    Ok(attempts) => tracing::info!(
                        environment = %prepared.environment,
                        target = %t.name,
                        event = kind.as_str(),
                        attempts,
                        "notification sent"
                    ),
                    Err(e) => tracing::warn!(
                        environment = %prepared.environment,
                        target = %t.name,
                        event = kind.as_str(),
                        error = %prepared.masker.scrub(&e.to_string()),
                        "notification not delivered (the apply goes on)"
                    ),
                }
            });
        futures::future::join_all(sends).await;
    }

    /// One delivery; the attempts it took.
    async fn deliver(&self, t: &Ready, event: &Event, masker: &Masker) -> Result<u32, NotifyError> {
        let delivery = webhook::delivery_id();
        let timestamp = webhook::unix_now();
        let masked = |v: serde_json::Value| -> Vec<u8> {
            serde_json::to_vec(&masker.scrub_json(&v)).unwrap_or_default()
        };
        match &t.sink {
            Sink::Broken(why) => Err(NotifyError::NotReady(why.clone())),
            Sink::Slack { url } => {
                let body = masked(slack::message(event));
                self.post(url, &[], body, t.timeout).await
            }
            Sink::Webhook { url, secret } => {
                let body = masked(event.body(&delivery, timestamp));
                let headers =
                    webhook::headers(secret.as_bytes(), &body, event.name(), &delivery, timestamp);
                self.post(url, &headers, body, t.timeout).await
            }
            Sink::Sns { sns, topic_arn } => {
                let body = masked(event.body(&delivery, timestamp));
                let body = String::from_utf8(body).unwrap_or_default();
                let subject = subject(&masker.scrub(&format!("formwork: {}", event.summary())));
                let fifo = topic_arn.ends_with(".fifo");
                let message = Message {
                    topic_arn,
                    subject: &subject,
                    body: &body,
                    attributes: &[("event", event.name()), ("environment", &event.environment)],
                    group_and_dedup: fifo
                        .then_some((event.environment.as_str(), delivery.as_str())),
                };
                sns.publish(&message)
                    .await
                    .map(|_| 1)
                    .map_err(|e| NotifyError::Sns(e.to_string()))
            }
        }
    }

    /// POSTs with retries; the attempts it took.
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<u32, NotifyError> {
        let client: &HttpClient = self.http()?;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = client.post_json(url, headers, body.clone(), timeout).await;
            let retry = match &result {
                Ok(a) if (200..300).contains(&a.status) => return Ok(attempt),
                Ok(a) => a.status == 429 || a.status >= 500,
                Err(_) => true,
            };
            let error = match result {
                Ok(a) => NotifyError::Status(a.status),
                Err(e) => e,
            };
            if !retry || attempt >= ATTEMPTS {
                return Err(NotifyError::GaveUp {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let jitter =
                Duration::from_millis(rand::random_range(0..=backoff.as_millis() as u64 / 4));
            tokio::time::sleep(backoff + jitter).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

/// The session of the environment at `place`, in `region`.
async fn session(aws: &Aws, place: &Place, region: &str) -> Result<Session, String> {
    aws.session(&Target {
        environment: &place.environment,
        account: &place.account,
        region,
        role_arn: place.role_arn.as_deref(),
    })
    .await
    .map_err(|e| e.to_string())
}

/// An SNS subject: printable ASCII on one line, at most [`MAX_SUBJECT`] characters.
fn subject(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.len() > MAX_SUBJECT {
        s.truncate(MAX_SUBJECT - 3);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_short_printable_ascii() {
        assert_eq!(subject("prod: applied — ok\n"), "prod: applied ? ok?");
        let long = subject(&"x".repeat(300));
        assert_eq!(long.len(), MAX_SUBJECT);
        assert!(long.ends_with("..."));
    }
}
