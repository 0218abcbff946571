//! AWS access: one session of clients per environment (account, region, optional role), the
//! account guard, retries, a bound on calls in flight per account and region, and a count of
//! every API call made.
//!
//! Credentials come from the standard chain (environment, profiles, SSO, web identity for
//! GitHub OIDC); `AWS_ENDPOINT_URL` points every client at a local endpoint in tests and demos.
//! [`cfn`], [`ssm`], [`s3`] and [`sns`] wrap the calls formwork makes to each service.

pub mod cfn;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod ssm;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::SdkConfig;
use aws_types::region::Region;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use cfn::Cfn;
pub use s3::S3;
pub use secrets::SecretsManager;
pub use sns::Sns;
pub use ssm::Ssm;

/// How many AWS calls may be in flight at once per account and region, unless configured.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

/// Attempts per call, the first included, before a throttled or failing call is given up. The
/// SDK's standard retry mode waits with jittered exponential backoff between attempts.
const MAX_ATTEMPTS: u32 = 10;

/// A failure talking to AWS, phrased for the person running formwork.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "the AWS credentials belong to account {actual}, but environment `{environment}` deploys to account {expected}; refusing to touch it"
    )]
    AccountMismatch {
        environment: String,
        expected: String,
        actual: String,
    },
    #[error("could not establish who the AWS credentials belong to (sts:GetCallerIdentity): {0}")]
    Identity(String),
    #[error(
        "no AWS credentials found (looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the profile in ~/.aws (AWS_PROFILE), a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container and EC2 instance metadata); in GitHub Actions, run aws-actions/configure-aws-credentials with `role-to-assume` before formwork (the job needs `permissions: id-token: write`); elsewhere set AWS_PROFILE or the two variables"
    )]
    NoCredentials,
    #[error("{service} {operation} failed: {message}")]
    Call {
        service: &'static str,
        operation: &'static str,
        /// The AWS error code, when the service sent one (`ValidationError`, `Throttling` …).
        code: Option<String>,
        message: String,
    },
    #[error("waiting for {what} timed out after {seconds} s")]
    Timeout { what: String, seconds: u64 },
}

impl AwsError {
    /// Wraps an SDK error with the operation it came from.
    pub fn call<E>(
        service: &'static str,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let text = || match failure_text(&err) {
            Failure::NoCredentials => AwsError::NoCredentials.to_string(),
            Failure::Text(t) => t,
        };
        let (code, message) = match err.as_service_error() {
            Some(e) => (
                e.code().map(str::to_string),
                e.message()
                    .map(str::to_string)
                    .or_else(|| http_failure(&err))
                    .unwrap_or_else(text),
            ),
            None => (None, http_failure(&err).unwrap_or_else(text)),
        };
        AwsError::Call {
            service,
            operation,
            code,
            message,
        }
    }

    /// The AWS error code and message, when this is a failed call.
    pub fn code_and_message(&self) -> Option<(Option<&str>, &str)> {
        match self {
            AwsError::Call { code, message, .. } => Some((code.as_deref(), message)),
            _ => None,
        }
    }
}

/// Counts API calls by `Service.Operation`, retries included: every attempt that goes out.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<String, usize>>,
}

impl CallCounter {
    /// Calls made so far, by `Service.Operation`.
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// All calls made so far.
    pub fn total(&self) -> usize {
        self.snapshot().values().sum()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Counting(Arc<CallCounter>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "formwork::CallCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", m.service(), m.name());
            *self
                .0
                .counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }
}

/// A permit to make one AWS call; calls beyond the bound wait for one.
#[derive(Clone, Debug)]
pub struct Limit(Arc<Semaphore>);

impl Limit {
    pub fn new(max: usize) -> Limit {
        Limit(Arc::new(Semaphore::new(max.max(1))))
    }

    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        self.0
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// The clients for one environment, checked to reach its account.
#[derive(Clone, Debug)]
pub struct Session {
    pub account: String,
    pub region: String,
    /// The role assumed, if any.
    pub role: Option<String>,
    pub cfn: Cfn,
    pub ssm: Ssm,
    pub secrets: SecretsManager,
    pub s3: S3,
    /// The configuration the clients were made from (region, credentials, endpoint), for
    /// clients made on demand ([`Session::sns`]).
    conf: SdkConfig,
    counting: Counting,
    limit: Limit,
    /// The bounds on calls in flight, by account and region, shared by the run's sessions.
    limits: Limits,
    /// The sessions of the same identity in other regions made so far, by region.
    regional: Arc<Mutex<HashMap<String, Session>>>,
}

impl Session {
    /// The clients of this session's account and identity in `region` (this session when it is
    /// the same region): for the stacks of an environment that live in a region of their own.
    /// The account guard of this session holds for them (the same credentials and role).
    pub fn in_region(&self, region: &str) -> Session {
        if region == self.region {
            return self.clone();
        }
        let mut regional = self.regional.lock().unwrap_or_else(|e| e.into_inner());
        regional
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = self
                    .conf
                    .to_builder()
                    .region(Region::new(region.to_string()))
                    .build();
                let mut s = Session::build(
                    conf,
                    &self.account,
                    region,
                    self.role.as_deref(),
                    self.counting.clone(),
                    &self.limits,
                );
                // One cache of regional sessions per identity, whichever region asks.
                s.regional = self.regional.clone();
                s
            })
            .clone()
    }

    /// The clients of one account, region and identity from `conf` (its region set).
    fn build(
        conf: SdkConfig,
        account: &str,
        region: &str,
        role: Option<&str>,
        counting: Counting,
        limits: &Limits,
    ) -> Session {
        let limit = limits.of(account, region);
        let custom_endpoint = conf.endpoint_url().is_some();
        let partition = |service: &str| retry_partition(service, account, region, role);
        Session {
            account: account.to_string(),
            region: region.to_string(),
            role: role.map(str::to_string),
            cfn: Cfn::new(
                aws_sdk_cloudformation::Client::from_conf(
                    aws_sdk_cloudformation::config::Builder::from(&conf)
                        .interceptor(counting.clone())
                        .retry_partition(partition("cloudformation"))
                        .build(),
                ),
                limit.clone(),
            ),
            ssm: Ssm::new(
                aws_sdk_ssm::Client::from_conf(
                    aws_sdk_ssm::config::Builder::from(&conf)
                        .interceptor(counting.clone())
                        .retry_partition(partition("ssm"))
                        .build(),
                ),
                limit.clone(),
            ),
            secrets: SecretsManager::new(
                aws_sdk_secretsmanager::Client::from_conf(
                    aws_sdk_secretsmanager::config::Builder::from(&conf)
                        .interceptor(counting.clone())
                        .retry_partition(partition("secretsmanager"))
                        .build(),
                ),
                limit.clone(),
            ),
            s3: S3::new(
                &conf,
                (counting.clone(), partition("s3")),
                custom_endpoint,
                limit.clone(),
            ),
            conf,
            counting,
            limit,
            limits: limits.clone(),
            regional: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// SNS in `region` as this session's identity, each attempt of a call bounded by
    /// `timeout` (for notifications: a few short attempts, not the retries of deployments).
    pub fn sns(&self, region: &str, timeout: Duration) -> Sns {
        Sns::new(
            &self.conf,
            self.counting.clone(),
            region,
            timeout,
            self.limit.clone(),
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct SessionKey {
    account: String,
    region: String,
    role: Option<String>,
}

/// Where and as whom to act for one environment.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub environment: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub role_arn: Option<&'a str>,
}

/// AWS access for a run: the base configuration from the credential chain and one session per
/// environment target.
pub struct Aws {
    base: SdkConfig,
    calls: Arc<CallCounter>,
    sessions: tokio::sync::Mutex<HashMap<SessionKey, Session>>,
    limits: Limits,
}

/// The bound on calls in flight of each account and region, made on first use.
#[derive(Clone, Debug)]
struct Limits {
    max_in_flight: usize,
    by_place: Arc<Mutex<HashMap<(String, String), Limit>>>,
}

impl Limits {
    fn of(&self, account: &str, region: &str) -> Limit {
        self.by_place
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((account.to_string(), region.to_string()))
            .or_insert_with(|| Limit::new(self.max_in_flight))
            .clone()
    }
}

impl Aws {
    /// Loads the standard AWS configuration (credential chain, `AWS_ENDPOINT_URL`, …) with
    /// formwork's retry policy.
    pub async fn load(max_in_flight: usize) -> Aws {
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(20));
        // Every session sets its environment's region; the region given here only keeps the
        // loader from asking instance metadata for one.
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .region(
                aws_config::meta::region::RegionProviderChain::first_try(
                    aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(Region::new("us-east-1")),
            )
            .load()
            .await;
        Aws {
            base,
            calls: Arc::new(CallCounter::default()),
            sessions: tokio::sync::Mutex::new(HashMap::new()),
            limits: Limits {
                max_in_flight,
                by_place: Arc::new(Mutex::new(HashMap::new())),
            },
        }
    }

    /// The count of calls made through every session of this run.
    pub fn calls(&self) -> &Arc<CallCounter> {
        &self.calls
    }

    /// Whether a custom endpoint (`AWS_ENDPOINT_URL`) is in use.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    /// The session for an environment: clients in its region, acting through its role when it
    /// has one, after checking with `sts:GetCallerIdentity` that the credentials reach its
    /// account. The check runs once per target per run.
    pub async fn session(&self, t: &Target<'_>) -> Result<Session, AwsError> {
        let key = SessionKey {
            account: t.account.to_string(),
            region: t.region.to_string(),
            role: t.role_arn.map(str::to_string),
        };
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(&key) {
            return Ok(s.clone());
        }
        let region = Region::new(t.region.to_string());
        let mut conf = self.base.to_builder().region(region.clone()).build();
        if let Some(role) = t.role_arn {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(format!("formwork-{}", t.environment))
                .region(region.clone())
                .configure(&conf)
                .build()
                .await;
            conf = conf
                .to_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        let counting = Counting(self.calls.clone());
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&conf)
                .interceptor(counting.clone())
                .build(),
        );
        let who = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| match failure_text(&e) {
                Failure::NoCredentials => AwsError::NoCredentials,
                Failure::Text(t) => AwsError::Identity(t),
            })?;
        let actual = who.account().unwrap_or_default().to_string();
        if actual != t.account {
            return Err(AwsError::AccountMismatch {
                environment: t.environment.to_string(),
                expected: t.account.to_string(),
                actual,
            });
        }
        let session = Session::build(
            conf,
            t.account,
            t.region,
            t.role_arn,
            counting,
            &self.limits,
        );
        sessions.insert(key, session.clone());
        Ok(session)
    }
}

/// The retry partition of one service of one session, with no retry quota. The SDK's default
/// partition is the service and region, shared by every client of the process: under
/// throttling its one quota of retries drains within seconds and every call after that fails at
/// its first throttle (a plan of 20 accounts' stacks at a realistic rate limit lost two thirds
/// of them that way: scripts/bench-scale). AWS throttles per account and region, and formwork
/// bounds the calls in flight per account and region already (`Limit`), so a throttled call is
/// retried, with backoff and jitter, up to `MAX_ATTEMPTS` times whatever other calls met.
fn retry_partition(
    service: &str,
    account: &str,
    region: &str,
    role: Option<&str>,
) -> aws_smithy_runtime::client::retries::RetryPartition {
    use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
    RetryPartition::custom(format!(
        "formwork-{service}-{account}-{region}-{}",
        role.unwrap_or_default()
    ))
    .token_bucket(TokenBucket::unlimited())
    .build()
}

/// A one-line account of a failed HTTP answer that carried no AWS error message (an endpoint's
/// HTML error page, a proxy's 502): the status and the start of the body's text, not the SDK's
/// whole debug chain with headers.
/// What a failed call that got no answer from AWS says: no credentials, or the messages of
/// its chain of causes (without the SDK's debug structures).
enum Failure {
    NoCredentials,
    Text(String),
}

fn failure_text(err: &(dyn std::error::Error + 'static)) -> Failure {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some_and(|c| {
                matches!(
                    c,
                    aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(
                        _
                    )
                )
            })
        {
            return Failure::NoCredentials;
        }
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default().trim().to_string();
        if !first.is_empty() && !parts.iter().any(|p| p.contains(&first)) {
            parts.push(first);
        }
        cur = e.source();
    }
    Failure::Text(parts.join(": "))
}

fn http_failure<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::http::Response,
    >,
) -> Option<String> {
    let raw = err.raw_response()?;
    let status = raw.status().as_u16();
    if status < 400 {
        return None;
    }
    let body = raw
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    Some(match body_text(&body) {
        t if t.is_empty() => format!("HTTP {status} from the endpoint, with no message"),
        t => format!("HTTP {status} from the endpoint: {t}"),
    })
}

/// The text of a response body with markup removed and white space collapsed, at most 200
/// characters.
fn body_text(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = words.join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(199).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn failed(status: u16, body: &str) -> SdkError<std::io::Error, Response> {
        let raw = Response::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body.to_string()),
        );
        SdkError::response_error(std::io::Error::other("unparseable"), raw)
    }

    #[test]
    fn an_html_error_page_becomes_one_line() {
        let page = "<!doctype html>\n<html><head><title>500 Internal Server Error</title></head>\n<body><h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p></body></html>";
        assert_eq!(
            http_failure(&failed(500, page)).unwrap(),
            "HTTP 500 from the endpoint: 500 Internal Server Error Internal Server Error The server encountered an internal error."
        );
        assert_eq!(
            http_failure(&failed(502, "")).unwrap(),
            "HTTP 502 from the endpoint, with no message"
        );
        let long = "x".repeat(1000);
        assert_eq!(
            http_failure(&failed(503, &long)).unwrap().chars().count(),
            "HTTP 503 from the endpoint: ".len() + 200
        );
        assert_eq!(http_failure(&failed(200, "fine")), None);
    }
}
