//! The HTTP side of notifications: one POST of a JSON body, HTTPS through the rustls connector
//! the GitHub client and the AWS SDK already use (the system's root certificates), bounded by a
//! deadline that covers connecting, sending and the answer's status. Redirects are not
//! followed: a webhook that moved is a configuration to fix, not a place to send secrets to.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::NotifyError;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A shared client for notification deliveries.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<Https, Full<Bytes>>,
}

/// How one attempt ended, when it got an answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
}

/// The most of an answer's body that is read (and then dropped).
const MAX_ANSWER: usize = 64 * 1024;

impl HttpClient {
    /// A client with the system's root certificates.
    pub fn new() -> Result<HttpClient, NotifyError> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| NotifyError::Client(format!("no root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(HttpClient { client })
    }

    /// POSTs `body` as JSON to `url` with `headers`, within `timeout`.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, NotifyError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| NotifyError::Request("the URL does not parse".into()))?;
        let mut req = hyper::Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("formwork/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| NotifyError::Request(e.to_string()))?;
        let attempt = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| NotifyError::Request(error_chain(&e)))?;
            let status = resp.status().as_u16();
            // Read a little of the answer so the connection can be reused; never more.
            let mut body = resp.into_body();
            let mut read = 0usize;
            while read < MAX_ANSWER {
                match body.frame().await {
                    Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
            Ok(Answer { status })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| NotifyError::Timeout(timeout.as_secs_f64()))?
    }
}

/// The messages of an error's chain of causes, without debug structures (and so without the
/// request's URL, which may be a secret).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        let t = x.to_string();
        if !t.is_empty() && !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = x.source();
    }
    parts.join(": ")
}
