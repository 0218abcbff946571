//! Sending one request: its body masked, sent with the HTTP method the endpoint takes, tried
//! again as the `retry` module decides, the answer decoded; and listings read page by page.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::retry::{Verdict, backoff, classify, now_epoch, secondary_limit_wait};
use super::{GitHub, GitHubError};
use crate::render::markdown::clip;

/// The HTTP methods formwork calls GitHub with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl GitHub {
    /// Every item of a listing, 100 a page, up to `max_pages` pages. `path` ends in `?` or `&`.
    pub(super) async fn get_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        max_pages: u32,
    ) -> Result<Vec<T>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=max_pages {
            let batch: Vec<T> = self
                .call(
                    Method::Get,
                    &format!("{path}per_page=100&page={page}"),
                    None,
                )
                .await?;
            let n = batch.len();
            all.extend(batch);
            if n < 100 {
                break;
            }
        }
        Ok(all)
    }

    /// Sends one request and decodes the JSON of its 2xx answer.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, GitHubError> {
        let text = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| GitHubError::Decode {
            endpoint: endpoint_name(method, path),
            message: e.to_string(),
        })
    }

    /// Sends one request whose answer formwork does not read.
    pub(super) async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(), GitHubError> {
        self.send(method, path, body).await.map(|_| ())
    }

    /// Sends one request (retrying as the module `client` says) and returns the body of a 2xx
    /// answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, GitHubError> {
        let endpoint = endpoint_name(method, path);
        // Whatever built the body, no secret leaves.
        let body = body.map(|b| self.masker.scrub_json(&b));
        let mut server_errors = 0u32;
        let mut secondary_waits = 0u32;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = match method {
                Method::Get => self.octo._get(path).await,
                Method::Post => self.octo._post(path, body.as_ref()).await,
                Method::Patch => self.octo._patch(path, body.as_ref()).await,
                Method::Delete => self.octo._delete(path, body.as_ref()).await,
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    server_errors += 1;
                    if attempt >= self.retry.attempts {
                        return Err(GitHubError::Transport {
                            endpoint,
                            source: e,
                        });
                    }
                    let d = backoff(self.retry.base_delay, server_errors);
                    tracing::warn!(%endpoint, error = %e, wait_ms = d.as_millis() as u64, "GitHub: retrying after a transport error");
                    tokio::time::sleep(d).await;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let text =
                self.octo
                    .body_to_string(response)
                    .await
                    .map_err(|e| GitHubError::Transport {
                        endpoint: endpoint.clone(),
                        source: e,
                    })?;
            if status.is_success() {
                return Ok(text);
            }
            let wait = match classify(status, &headers, &text, now_epoch()) {
                Verdict::Fail => None,
                Verdict::RateLimited(w) => Some(w),
                Verdict::SecondaryLimit => {
                    secondary_waits += 1;
                    Some(secondary_limit_wait(secondary_waits))
                }
                Verdict::ServerError => {
                    server_errors += 1;
                    Some(backoff(self.retry.base_delay, server_errors))
                }
            };
            match wait {
                Some(w) if attempt < self.retry.attempts => {
                    if w > self.retry.max_wait {
                        return Err(GitHubError::RateLimited {
                            endpoint,
                            wait: w,
                            max_wait: self.retry.max_wait,
                        });
                    }
                    tracing::warn!(%endpoint, status = status.as_u16(), wait_ms = w.as_millis() as u64, "GitHub: waiting before trying again");
                    tokio::time::sleep(w).await;
                }
                _ => {
                    return Err(GitHubError::Api {
                        endpoint,
                        status: status.as_u16(),
                        message: self.masker.scrub(&error_message(&text)),
                    });
                }
            }
        }
    }
}

/// GitHub's `message` from an error body, else the body's start.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| clip(body.trim(), 300))
}

/// `METHOD /path` without the query, for messages.
fn endpoint_name(method: Method, path: &str) -> String {
    let p = path.split('?').next().unwrap_or(path);
    format!("{} {p}", method.as_str())
}
