//! The agent's HTTP side (axum): `POST /webhooks/github`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`, `GET /api/status` and the status page at `/`. Transport only: deliveries are
//! verified and read by [`crate::github::webhook`] and turned into jobs by [`jobs_for`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::agent::{Agent, Job};
use super::status;
use crate::github::flow::PlanSelection;
use crate::github::webhook::{self, DeliveryHeaders, Event, PullRequestAction, WebhookError};
use crate::store::now;

/// GitHub's largest webhook payload (25 MB, per its webhook documentation).
const MAX_BODY: usize = 25 * 1024 * 1024;

#[derive(Clone)]
struct App {
    agent: Arc<Agent>,
    /// `None` only with `--insecure-no-webhook-secret`.
    secret: Option<Arc<Vec<u8>>>,
}

/// The routes.
pub fn router(agent: Arc<Agent>, secret: Option<Vec<u8>>) -> Router {
    let app = App {
        agent,
        secret: secret.map(Arc::new),
    };
    Router::new()
        .route("/webhooks/github", post(webhook_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status_json))
        .route("/", get(status_page))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

async fn readyz(State(app): State<App>) -> Response {
    if app.agent.ready.load(std::sync::atomic::Ordering::SeqCst)
        && !app.agent.stopping.load(std::sync::atomic::Ordering::SeqCst)
    {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.agent.metrics.render(now()),
    )
        .into_response()
}

async fn status_json(State(app): State<App>) -> Response {
    axum::Json(status::status(&app.agent).await).into_response()
}

async fn status_page(State(app): State<App>) -> Response {
    Html(status::page(&status::status(&app.agent).await)).into_response()
}

fn answer(code: StatusCode, v: serde_json::Value) -> Response {
    (code, axum::Json(v)).into_response()
}

async fn webhook_handler(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let agent = &app.agent;
    let delivery_headers =
        DeliveryHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let delivery = match &app.secret {
        Some(secret) => webhook::receive(secret, &delivery_headers, &body),
        None => match (delivery_headers.event, delivery_headers.delivery) {
            (Some(e), Some(d)) => {
                webhook::read_trusted_event(e, &body).map(|event| webhook::Delivery {
                    id: d.to_string(),
                    event,
                })
            }
            (None, _) => Err(WebhookError::MissingEvent),
            (_, None) => Err(WebhookError::MissingDelivery),
        },
    };
    let delivery = match delivery {
        Ok(d) => d,
        Err(e) => {
            let signature = e.is_signature();
            agent
                .metrics
                .delivery(if signature { "bad_signature" } else { "bad" });
            tracing::warn!(error = %e, "webhook delivery rejected");
            let code = if signature {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            return answer(code, json!({ "error": e.to_string() }));
        }
    };
    if !agent.first_delivery(&delivery.id).await {
        agent.metrics.delivery("duplicate");
        return answer(
            StatusCode::OK,
            json!({ "delivery": delivery.id, "duplicate": true }),
        );
    }
    let jobs = jobs_for(agent, &delivery.event);
    if jobs.is_empty() {
        agent.metrics.delivery("ignored");
        return answer(
            StatusCode::ACCEPTED,
            json!({ "delivery": delivery.id, "queued": 0 }),
        );
    }
    agent.metrics.delivery("accepted");
    let n = jobs.len();
    for j in jobs {
        agent.enqueue(j);
    }
    answer(
        StatusCode::ACCEPTED,
        json!({ "delivery": delivery.id, "queued": n }),
    )
}

/// The jobs an event calls for (none for a repository that is not allowed).
pub fn jobs_for(agent: &Agent, event: &Event) -> Vec<Job> {
    let repo = match event {
        Event::PullRequest(p) => Some(&p.repository),
        Event::IssueComment(c) => Some(&c.repository),
        Event::Push(p) => Some(&p.repository),
        Event::Ping(_) | Event::Ignored(_) => None,
    };
    if let Some(r) = repo
        && !agent.config.allows_repository(&r.full_name)
    {
        tracing::warn!(repository = %r.full_name, "a delivery from a repository that is not allowed: ignored");
        return Vec::new();
    }
    match event {
        Event::PullRequest(p) => match &p.action {
            PullRequestAction::Opened
            | PullRequestAction::Synchronize
            | PullRequestAction::Reopened => {
                agent.pull_is_open(p.number, p.action == PullRequestAction::Reopened);
                let trusted = !p.from_fork
                    || p.head_repo
                        .as_deref()
                        .and_then(|r| r.split('/').next())
                        .is_some_and(|owner| agent.trusted_fork_owner(owner));
                vec![Job::PlanPull {
                    number: p.number,
                    head: Some(p.head_sha.clone()),
                    offline: !trusted,
                    selection: PlanSelection::default(),
                    why: format!("pull request {}", action_word(&p.action)),
                }]
            }
            PullRequestAction::Closed { merged, .. } => {
                let mut jobs = vec![Job::PullClosed {
                    number: p.number,
                    merged: *merged,
                }];
                if *merged {
                    jobs.push(Job::Reconcile {
                        why: format!("pull request #{} merged", p.number),
                    });
                }
                jobs
            }
        },
        Event::IssueComment(c) => vec![Job::Comment(Box::new(c.clone()))],
        Event::Push(p) if p.is_default_branch() && !p.deleted => vec![Job::Reconcile {
            why: format!("push to {}", p.ref_name),
        }],
        _ => Vec::new(),
    }
}

fn action_word(a: &PullRequestAction) -> &'static str {
    match a {
        PullRequestAction::Opened => "opened",
        PullRequestAction::Synchronize => "updated",
        PullRequestAction::Reopened => "reopened",
        PullRequestAction::Closed { .. } => "closed",
    }
}
