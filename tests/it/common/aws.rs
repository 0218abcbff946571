//! Local AWS endpoints for integration tests: moto server and LocalStack, on loopback.
//!
//! The normal path is `scripts/test`: it runs `scripts/emulators setup all`, starts both servers
//! once for the whole run and exports `FORMWORK_TEST_MOTO_URL` and `FORMWORK_TEST_LOCALSTACK_URL`,
//! which [`moto`] and [`localstack`] then simply use. Without those variables (a plain
//! `cargo test`), the first call in a test process starts the server from the project's venv
//! (`scripts/emulators setup` makes it) on a free loopback port, under
//! `tools/emulators/supervise.py`: that supervisor holds the read end of a pipe whose write end
//! stays open in this process until it exits, however it exits (normally, by a panic, killed), and
//! then stops the server's whole process group and removes its scratch directory.
//!
//! Tests share one server per kind and run in parallel: nothing is reset between tests, so name
//! every stack, parameter and bucket with [`unique`]. (Every LocalStack on a machine keeps S3
//! objects in the hard-coded `/tmp/localstack-s3-storage`, whatever its TMPDIR says: one more
//! reason for unique bucket names.)
//!
//! Accounts (STS GetCallerIdentity, checked with boto3 and with raw requests):
//! - moto answers 123456789012 for any credentials (`arn:aws:sts::123456789012:user/moto`).
//! - LocalStack answers 000000000000 for `testing`/`testing` (`arn:aws:iam::000000000000:root`),
//!   but takes a 12-digit access key id as the account itself: with
//!   [`Endpoint::env_for_account`] a formwork process sees the account an environment file
//!   names (access key `111111111111` → account 111111111111, and its stacks live there).
//!
//! Both route a request to a service by the credential scope in its `Authorization` header
//! (moto answers anything without one as S3 ListBuckets) and neither checks the signature, so
//! [`Endpoint::query`] sends a syntactically valid SigV4 header with a dummy signature.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which server an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Moto,
    LocalStack,
}

impl Kind {
    /// The name used by `scripts/emulators` and for `.venv/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Moto => "moto",
            Kind::LocalStack => "localstack",
        }
    }

    fn url_variable(self) -> &'static str {
        match self {
            Kind::Moto => "FORMWORK_TEST_MOTO_URL",
            Kind::LocalStack => "FORMWORK_TEST_LOCALSTACK_URL",
        }
    }
}

/// A running AWS endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub kind: Kind,
}

/// Variables a formwork process under test must not inherit: a region (formwork uses each
/// environment's), a profile, session or role credentials, container or web-identity
/// credentials, and per-service endpoint overrides that would bypass `AWS_ENDPOINT_URL`.
pub const UNSET: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ENDPOINT_URL_CLOUDFORMATION",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_DYNAMODB",
];

impl Endpoint {
    /// The account STS reports with the credentials of [`Endpoint::env`].
    pub fn account(&self) -> &'static str {
        match self.kind {
            Kind::Moto => "123456789012",
            Kind::LocalStack => "000000000000",
        }
    }

    /// Variables a formwork process needs to talk to this endpoint: `AWS_ENDPOINT_URL`, dummy
    /// static credentials, no instance metadata lookups, and no shared config or credentials
    /// files (a developer's `~/.aws` must not leak in). Also remove [`UNSET`] from the process's
    /// environment (or use [`Endpoint::configure`], which does both): `AWS_REGION` in particular
    /// must be unset, as formwork uses each environment's region.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with_key("testing")
    }

    /// Like [`Endpoint::env`], for acting as `account` (12 digits). LocalStack takes a 12-digit
    /// access key id as the account; moto has one account per server (123456789012), so on moto
    /// this is `env()` and the account stays 123456789012.
    pub fn env_for_account(&self, account: &str) -> Vec<(String, String)> {
        assert!(
            account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
            "an account id is 12 digits, not {account:?}"
        );
        match self.kind {
            Kind::Moto => self.env(),
            Kind::LocalStack => self.env_with_key(account),
        }
    }

    fn env_with_key(&self, access_key: &str) -> Vec<(String, String)> {
        let none = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".emulators")
            .join("no-such-aws-config");
        let none = none.to_string_lossy().into_owned();
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", access_key),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", none.as_str()),
            ("AWS_SHARED_CREDENTIALS_FILE", none.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Removes [`UNSET`] from `cmd`'s environment and sets [`Endpoint::env`].
    pub fn configure<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for name in UNSET {
            cmd.env_remove(name);
        }
        cmd.envs(self.env())
    }

    /// A query-protocol request (`Action=…&Version=…`, form-encoded) to `service` (`sts`,
    /// `cloudformation`, `ssm` …) with a dummy SigV4 header, as access key `access_key`.
    pub fn query_as(&self, access_key: &str, service: &str, form: &str) -> Response {
        self.query_signed(access_key, "us-east-1", service, form)
    }

    /// [`Endpoint::query`] signed for `region` (the servers route a request to the region its
    /// credential scope names).
    pub fn query_in(&self, region: &str, service: &str, form: &str) -> Response {
        self.query_signed("testing", region, service, form)
    }

    fn query_signed(&self, access_key: &str, region: &str, service: &str, form: &str) -> Response {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/{service}/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=00"
        );
        http(
            &self.url,
            "POST",
            "/",
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("X-Amz-Date", "20260101T000000Z"),
                ("Authorization", &auth),
            ],
            form.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{service} request to {}: {e}", self.url))
    }

    /// [`Endpoint::query_as`] with the access key of [`Endpoint::env`].
    pub fn query(&self, service: &str, form: &str) -> Response {
        self.query_as("testing", service, form)
    }

    /// A GET of `path`.
    pub fn get(&self, path: &str) -> Response {
        http(&self.url, "GET", path, &[], b"")
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.url))
    }
}

/// The moto server endpoint (`FORMWORK_TEST_MOTO_URL`, or one started for this process).
pub fn moto() -> &'static Endpoint {
    static MOTO: OnceLock<Endpoint> = OnceLock::new();
    MOTO.get_or_init(|| endpoint(Kind::Moto))
}

/// A moto server of this process's own whose stacks made by executing change sets get their
/// outputs, as on AWS (tools/bench/moto_apply.py: stock moto gives them none), for tests that
/// apply chains of stacks on moto.
pub fn moto_with_change_set_outputs() -> &'static Endpoint {
    static MOTO: OnceLock<Endpoint> = OnceLock::new();
    MOTO.get_or_init(|| start_as(Kind::Moto, Some("tools/bench/moto_apply.py")))
}

/// The LocalStack endpoint (`FORMWORK_TEST_LOCALSTACK_URL`, or one started for this process).
pub fn localstack() -> &'static Endpoint {
    static LOCALSTACK: OnceLock<Endpoint> = OnceLock::new();
    LOCALSTACK.get_or_init(|| endpoint(Kind::LocalStack))
}

/// A short name unique across tests, test processes and runs against one long-lived server:
/// `<prefix>-<pid>-<time>-<counter>` (base 36, lower case; valid for stack names, SSM paths and,
/// with a lower-case prefix, S3 buckets).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{}-{}",
        base36(u128::from(std::process::id())),
        base36(millis % 36u128.pow(6)),
        base36(u128::from(n))
    )
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// What an HTTP request got back.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// A plain HTTP/1.1 request to `base` (`http://host:port`), `Connection: close`.
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other(format!("not an http:// URL: {base}")))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |what: &str| std::io::Error::other(format!("bad HTTP response ({what})"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut content = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        content = dechunk(&content).ok_or_else(|| bad("chunked body"))?;
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&content).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn endpoint(kind: Kind) -> Endpoint {
    match std::env::var(kind.url_variable()) {
        Ok(url) if !url.trim().is_empty() => Endpoint {
            url: url.trim().trim_end_matches('/').to_string(),
            kind,
        },
        _ => start(kind),
    }
}

/// Servers started by this process. Never dropped: each `Child`'s stdin is the pipe whose
/// closing at process exit tells its supervisor to stop the server.
static STARTED: Mutex<Vec<Child>> = Mutex::new(Vec::new());

fn start(kind: Kind) -> Endpoint {
    start_as(kind, None)
}

/// Starts a server of `kind`; for moto, `moto_script` (relative to the project) runs in place of
/// `moto_server`, with the same arguments.
fn start_as(kind: Kind, moto_script: Option<&str>) -> Endpoint {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let name = kind.name();
    let venv = root.join(".venv").join(name);
    let python = venv.join("bin").join("python");
    let moto_server = venv.join("bin").join("moto_server");
    let installed = python.exists() && (kind == Kind::LocalStack || moto_server.exists());
    if !installed {
        match kind {
            Kind::Moto => {
                panic!("moto server is not installed: run `scripts/emulators setup moto`")
            }
            Kind::LocalStack => {
                panic!("LocalStack is not installed: run `scripts/emulators setup localstack`")
            }
        }
    }
    let timeout = Duration::from_secs(match kind {
        Kind::Moto => 60,
        Kind::LocalStack => 180,
    });
    let mut last_error = String::new();
    // A port found free can be taken before the server binds it: try a few.
    for attempt in 0..3 {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let scratch = root
            .join(".emulators")
            .join(format!("test-{name}-{}-{attempt}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        for dir in ["filesystem", "tmp", "home", "cache"] {
            std::fs::create_dir_all(scratch.join(dir)).expect("create the emulator scratch dir");
        }
        let log = scratch.join("server.log");
        // The supervisor's own errors go to the same log as the server's output.
        let supervisor_log = std::fs::File::create(&log).expect("create the emulator log");
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("tools/emulators/supervise.py"))
            .arg(&log)
            .arg("--cleanup")
            .arg(&scratch)
            .arg("--")
            .current_dir(&scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(supervisor_log);
        match kind {
            Kind::Moto => {
                match moto_script {
                    Some(script) => cmd.arg(&python).arg(root.join(script)),
                    None => cmd.arg(&moto_server),
                };
                cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            }
            Kind::LocalStack => {
                // As scripts/emulators: hypercorn honours GATEWAY_LISTEN (the default server
                // binds 0.0.0.0), and the directories keep it out of system paths.
                cmd.arg(&python)
                    .args(["-m", "localstack.runtime.main"])
                    .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                    .env("GATEWAY_SERVER", "hypercorn")
                    .env(
                        "SERVICES",
                        "cloudformation,ssm,s3,sts,ec2,iam,logs,secretsmanager",
                    )
                    .env("OVERRIDE_IN_DOCKER", "0")
                    .env("DNS_ADDRESS", "0")
                    .env("PERSISTENCE", "0")
                    .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                    .env("DISABLE_EVENTS", "1")
                    .env("FILESYSTEM_ROOT", scratch.join("filesystem"))
                    .env("TMPDIR", scratch.join("tmp"))
                    .env("HOME", scratch.join("home"))
                    .env("XDG_CACHE_HOME", scratch.join("cache"));
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} with {}: {e}", python.display()));
        match wait_healthy(kind, &url, &mut child, timeout) {
            Ok(()) => {
                STARTED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(child);
                return Endpoint { url, kind };
            }
            Err(why) => {
                drop(child.stdin.take()); // the supervisor stops the server
                let _ = child.wait();
                let tail = log_tail(&log);
                let _ = std::fs::remove_dir_all(&scratch);
                last_error = format!("{why}\n--- last lines of the {name} log ---\n{tail}");
            }
        }
    }
    panic!("{name} did not start: {last_error}")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_healthy(kind: Kind, url: &str, child: &mut Child, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited ({status}) before it was healthy"));
        }
        if healthy(kind, url) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "not healthy at {url} after {} s",
        timeout.as_secs()
    ))
}

fn healthy(kind: Kind, url: &str) -> bool {
    match kind {
        Kind::Moto => http(url, "GET", "/moto-api/", &[], b"").is_ok_and(|r| r.status == 200),
        Kind::LocalStack => http(url, "GET", "/_localstack/health", &[], b"").is_ok_and(|r| {
            r.status == 200
                && serde_json::from_str::<serde_json::Value>(&r.body).is_ok_and(|v| {
                    matches!(
                        v["services"]["cloudformation"].as_str(),
                        Some("available" | "running")
                    )
                })
        }),
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
