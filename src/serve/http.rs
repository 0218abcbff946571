//! The agent's HTTP side: `POST /webhooks/github`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`, `GET /api/status` and the status page at `/` (axum), served by [`serve`]
//! (hyper) with a cap on open connections and a timeout on request headers. Transport only:
//! bodies are read within the limits of [`super::limits`], deliveries verified and read by
//! [`crate::github::webhook`] and turned into work by [`work_for`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::agent::Agent;
use super::config::HttpConfig;
use super::limits::{BodyError, BodyReader};
use super::status;
use crate::github::webhook::{
    self, Delivery, DeliveryHeaders, Event, PullRequestAction, SignatureVerifier, WebhookError,
};
use crate::runner::{Work, decide};
use crate::store::now;

/// The `Retry-After` of a delivery refused because too many bodies are being read, in seconds.
const RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Clone)]
struct App {
    agent: Arc<Agent>,
    /// `None` only with `--insecure-no-webhook-secret`.
    secret: Option<Arc<Vec<u8>>>,
    bodies: BodyReader,
}

/// The routes.
pub fn router(agent: Arc<Agent>, secret: Option<Vec<u8>>) -> Router {
    let bodies = BodyReader::new(&agent.config.http);
    let app = App {
        agent,
        secret: secret.map(Arc::new),
        bodies,
    };
    Router::new()
        .route("/webhooks/github", post(webhook_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status_json))
        .route("/", get(status_page))
        .with_state(app)
}

/// Serves `app` on `listener` until `shutdown` completes; then accepts no more connections,
/// closes the idle ones and lets requests in progress finish.
///
/// At most `limits.max_connections` connections are open at once: at the cap, no connection
/// is accepted until one closes (clients wait in the listen queue). A connection that takes
/// longer than `limits.header_read_timeout_seconds` to send a request's headers, counted from
/// when it waits for a request (so an idle kept-alive connection too), is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_full: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0
            && warned_full.is_none_or(|t| t.elapsed() > Duration::from_secs(60))
        {
            warned_full = Some(Instant::now());
            tracing::warn!(
                max_connections = limits.max_connections,
                "every connection is in use: new ones wait until one closes"
            );
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match stream {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed on an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
    app.agent
        .metrics
        .notifications(app.agent.cx().notifier.counts());
    (
        [(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)],
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

/// A delivery refused for its headers, signature or body.
fn rejected(agent: &Agent, e: &WebhookError) -> Response {
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
    answer(code, json!({ "error": e.to_string() }))
}

/// A delivery whose body was not read, or not whole.
fn refused(agent: &Agent, e: &BodyError) -> Response {
    let (code, outcome) = match e {
        BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        BodyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        BodyError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
        BodyError::Read(_) => (StatusCode::BAD_REQUEST, "bad"),
    };
    agent.metrics.delivery(outcome);
    tracing::warn!(error = %e, "webhook delivery refused");
    let mut response = answer(code, json!({ "error": e.to_string() }));
    if matches!(e, BodyError::Busy) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    }
    response
}

/// A delivery with no signature to check (`--insecure-no-webhook-secret`).
fn read_unsigned(headers: &DeliveryHeaders<'_>, body: &[u8]) -> Result<Delivery, WebhookError> {
    match (headers.event, headers.delivery) {
        (Some(e), Some(d)) => webhook::read_trusted_event(e, body).map(|event| Delivery {
            id: d.to_string(),
            event,
        }),
        (None, _) => Err(WebhookError::MissingEvent),
        (_, None) => Err(WebhookError::MissingDelivery),
    }
}

/// In order: the declared length; the signature header; the budget for the body; the body,
/// fed to the signature check as it arrives; the signature; then the event.
async fn webhook_handler(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let agent = &app.agent;
    if let Err(e) = BodyReader::check_declared(&body) {
        return refused(agent, &e);
    }
    let delivery_headers =
        DeliveryHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let mut verifier = match &app.secret {
        Some(secret) => match SignatureVerifier::new(secret, delivery_headers.signature) {
            Ok(v) => Some(v),
            Err(e) => return rejected(agent, &e),
        },
        None => None,
    };
    let read = app.bodies.read(body, |piece| {
        if let Some(v) = verifier.as_mut() {
            v.update(piece);
        }
    });
    let body = match read.await {
        Ok(body) => body,
        Err(e) => return refused(agent, &e),
    };
    let delivery = match verifier {
        Some(v) => webhook::receive_verified(v, &delivery_headers, &body.bytes),
        None => read_unsigned(&delivery_headers, &body.bytes),
    };
    drop(body);
    let delivery = match delivery {
        Ok(d) => d,
        Err(e) => return rejected(agent, &e),
    };
    if !agent.first_delivery(&delivery.id).await {
        agent.metrics.delivery("duplicate");
        return answer(
            StatusCode::OK,
            json!({ "delivery": delivery.id, "duplicate": true }),
        );
    }
    let jobs = work_for(agent, &delivery.event);
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

/// The work an event calls for, decided as every door decides it
/// ([`crate::runner::decide`]); a pull request said to be open is open again for the agent.
pub fn work_for(agent: &Agent, event: &Event) -> Vec<Work> {
    if let Event::PullRequest(p) = event
        && matches!(
            p.action,
            PullRequestAction::Opened
                | PullRequestAction::Synchronize
                | PullRequestAction::Reopened
        )
    {
        agent.pull_is_open(p.number, p.action == PullRequestAction::Reopened);
    }
    let decision = decide(event, &agent.policy());
    if let Some(why) = &decision.nothing_because {
        tracing::info!(why, "nothing to do for the delivery");
    }
    decision.work
}
