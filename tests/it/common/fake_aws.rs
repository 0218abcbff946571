//! A loopback HTTP server for AWS query-protocol calls (STS, CloudFormation), for the shapes the
//! local endpoints cannot produce: it answers each `Action` with a recorded response from the
//! AWS documentation (`tests/fixtures/aws/`), optionally forwards everything else to a real
//! endpoint, can answer the first calls with throttling errors, and records every request so
//! tests can assert what formwork sent.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A recorded response file of `tests/fixtures/aws/`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/aws")
            .join(name),
    )
    .unwrap()
}

/// Answers one request from its form-encoded body: a status and a body.
pub type Handler = Arc<dyn Fn(&str) -> (u16, String) + Send + Sync>;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub action: Option<String>,
    pub body: String,
    /// The region the request was signed for (its SigV4 credential scope).
    pub region: Option<String>,
}

#[derive(Default)]
struct State {
    /// How long to wait before answering, to see how many requests are in flight at once.
    delay_ms: u64,
    in_flight: usize,
    max_in_flight: usize,
    /// Per action, the answers still to give in order; the last is given again and again.
    responses: HashMap<String, Vec<(u16, String)>>,
    /// Per action, a function that answers from the request (before `responses`).
    handlers: HashMap<String, Handler>,
    upstream: Option<String>,
    throttle_first: usize,
    /// Every n-th request (0: none) is throttled, whatever it is.
    throttle_every: usize,
    seen: usize,
    requests: Vec<Request>,
}

/// The server; it runs until the test process ends.
#[derive(Clone)]
pub struct FakeAws {
    pub url: String,
    state: Arc<Mutex<State>>,
    throttled: Arc<AtomicUsize>,
}

impl FakeAws {
    pub fn start() -> FakeAws {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeAws {
            url,
            state: Arc::default(),
            throttled: Arc::default(),
        };
        let f = fake.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let f = f.clone();
                std::thread::spawn(move || f.serve(conn));
            }
        });
        fake
    }

    /// Runs the formwork binary in `dir` against this endpoint (the standard AWS variables,
    /// test credentials, region us-east-1, no colours, no log filter from the caller's
    /// environment).
    pub fn formwork(&self, dir: &Path, args: &[&str]) -> super::Run {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_formwork"))
            .args(args)
            .current_dir(dir)
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .env_remove("FORMWORK_LOG")
            .output()
            .unwrap();
        super::Run::from(out)
    }

    /// Answers `action` with `body` (HTTP 200).
    pub fn respond(&self, action: &str, body: String) -> &Self {
        self.respond_status(action, 200, body)
    }

    pub fn respond_status(&self, action: &str, status: u16, body: String) -> &Self {
        self.respond_seq(action, vec![(status, body)])
    }

    /// Answers `action` with each of `answers` in turn, then with the last one again.
    pub fn respond_seq(&self, action: &str, answers: Vec<(u16, String)>) -> &Self {
        assert!(!answers.is_empty());
        self.state
            .lock()
            .unwrap()
            .responses
            .insert(action.to_string(), answers);
        self
    }

    /// Answers `action` by calling `answer` with the request's form-encoded body, for answers
    /// that depend on what was asked (which stack) or on what was asked before. It is called
    /// without the fake's lock held.
    pub fn respond_with(
        &self,
        action: &str,
        answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
    ) -> &Self {
        self.state
            .lock()
            .unwrap()
            .handlers
            .insert(action.to_string(), Arc::new(answer));
        self
    }

    /// Forwards requests without a recorded response to `url`.
    pub fn forward_to(&self, url: &str) -> &Self {
        self.state.lock().unwrap().upstream = Some(url.trim_end_matches('/').to_string());
        self
    }

    /// Answers the first `n` requests with a `Throttling` error (HTTP 400, as CloudFormation
    /// and STS send it).
    pub fn throttle_first(&self, n: usize) -> &Self {
        self.state.lock().unwrap().throttle_first = n;
        self
    }

    /// Answers every `n`-th request with the throttling error of its protocol: `Throttling`
    /// (query: CloudFormation, STS), `ThrottlingException` (JSON: SSM, DynamoDB), `SlowDown`
    /// (S3).
    pub fn throttle_every(&self, n: usize) -> &Self {
        self.state.lock().unwrap().throttle_every = n;
        self
    }

    /// Waits `ms` milliseconds before each answer.
    pub fn delay(&self, ms: u64) -> &Self {
        self.state.lock().unwrap().delay_ms = ms;
        self
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// How many requests were answered with a throttling error.
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    fn serve(&self, mut conn: TcpStream) {
        loop {
            let Some((head, body)) = read_request(&mut conn) else {
                return;
            };
            let action = form_value(&body, "Action");
            let delay = {
                let mut st = self.state.lock().unwrap();
                st.in_flight += 1;
                st.max_in_flight = st.max_in_flight.max(st.in_flight);
                st.delay_ms
            };
            std::thread::sleep(std::time::Duration::from_millis(delay));
            self.state.lock().unwrap().in_flight -= 1;
            let handler = action
                .as_ref()
                .and_then(|a| self.state.lock().unwrap().handlers.get(a).cloned());
            let reply = {
                let mut st = self.state.lock().unwrap();
                st.requests.push(Request {
                    action: action.clone(),
                    body: body.clone(),
                    region: signed_region(&head),
                });
                st.seen += 1;
                let every = st.throttle_every > 0 && st.seen.is_multiple_of(st.throttle_every);
                if self.throttled.load(Ordering::SeqCst) < st.throttle_first || every {
                    self.throttled.fetch_add(1, Ordering::SeqCst);
                    Some(throttling(&head, action.is_some()))
                } else if let Some(h) = handler {
                    drop(st);
                    Some(h(&body))
                } else {
                    let upstream = st.upstream.clone();
                    action
                        .as_ref()
                        .and_then(|a| st.responses.get_mut(a))
                        .map(|answers| {
                            if answers.len() > 1 {
                                answers.remove(0)
                            } else {
                                answers[0].clone()
                            }
                        })
                        .or_else(|| upstream.map(|u| forward(&u, &head, &body)))
                }
            };
            let (status, text) = reply.unwrap_or((
                400,
                format!("<ErrorResponse><Error><Code>NotRecorded</Code><Message>no response for {action:?}</Message></Error></ErrorResponse>"),
            ));
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-requestid: fake\r\nConnection: keep-alive\r\n\r\n{text}",
                text.len()
            );
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// The throttling answer of a request's protocol, as AWS sends it.
fn throttling(head: &str, query: bool) -> (u16, String) {
    if query {
        return (
            400,
            "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId></ErrorResponse>".to_string(),
        );
    }
    if head.to_ascii_lowercase().contains("x-amz-target:") {
        return (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string(),
        );
    }
    (
        503,
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>throttled</RequestId></Error>".to_string(),
    )
}

/// The region of a request's SigV4 signature: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`
/// in its `Authorization` header.
fn signed_region(head: &str) -> Option<String> {
    let auth = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))?;
    let scope = auth.split("Credential=").nth(1)?;
    scope.split('/').nth(2).map(str::to_string)
}

/// Reads one HTTP request: its head (request line and headers) and its body.
fn read_request(conn: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    Some((head, String::from_utf8_lossy(&body).into_owned()))
}

/// A value of a form-encoded body (as sent: not decoded).
pub fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// Sends a query-protocol request (a form body, signed for `region`) to `upstream` and
/// returns its answer: for handlers that pass a request on and change what comes back.
pub fn forward_form(upstream: &str, region: &str, body: &str) -> (u16, String) {
    let head = format!(
        "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/cloudformation/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nHost: x\r\n\r\n",
        body.len()
    );
    forward(upstream.trim_end_matches('/'), &head, body)
}

/// A form value decoded (`%XX` and `+`).
pub fn decoded(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends the request on to the real endpoint and returns its answer.
fn forward(upstream: &str, head: &str, body: &str) -> (u16, String) {
    let addr = upstream.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut out = format!("{request_line}\r\n");
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if lower.starts_with("host:") {
            out.push_str(&format!("Host: {addr}\r\n"));
        } else {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.push_str(body);
    conn.write_all(out.as_bytes()).unwrap();
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
