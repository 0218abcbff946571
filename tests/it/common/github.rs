//! GitHub for the tests: Prism serving GitHub's official OpenAPI description (the contract), and
//! in front of it a recording server that keeps what formwork sent.
//!
//! Every request formwork makes goes to the recorder, which forwards it to Prism first: Prism
//! validates it against GitHub's schema (path, parameters, body) and answers 422 (with an
//! `sl-violations` header) or 404 when it does not match — the recorder keeps those as
//! [`GitHubMock::violations`], and the tests assert there are none. Then the recorder answers:
//! for the endpoints whose answer depends on earlier calls (a pull request's comments) from a
//! small state of its own, written over Prism's example answer so the shape stays GitHub's;
//! for pull requests (one, or the list of open ones, a page at a time), permissions and a
//! commit's pull requests from what the test set up, also over Prism's example; for the rest
//! Prism's answer as it is. A test can also make the next calls to a route fail (rate limits,
//! server errors).
//!
//! The normal path is `scripts/test`, which starts Prism once (`scripts/github-mock start`) and
//! exports `FORMWORK_TEST_GITHUB_URL`. Without it (a plain `cargo test`) the first use starts
//! Prism from `tools/github/node_modules` (`scripts/github-mock setup` installs it) under
//! `tools/emulators/supervise.py`, which stops it when the test process ends.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One request as the recorder received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A comment as the recorder keeps it.
#[derive(Clone, Debug)]
pub struct StoredComment {
    pub id: u64,
    pub body: String,
    pub login: String,
}

/// An answer to give instead of the normal one, once, to a call whose method is `method` and
/// whose path starts with `path_prefix`.
struct Failure {
    method: String,
    path_prefix: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    violations: Vec<String>,
    /// Comments per issue number.
    comments: HashMap<u64, Vec<StoredComment>>,
    next_comment_id: u64,
    pulls: HashMap<u64, Value>,
    commit_pulls: HashMap<String, Vec<Value>>,
    permissions: HashMap<String, String>,
    /// Reviews per pull request: (login, state, commit), oldest first.
    reviews: HashMap<u64, Vec<(String, String, String)>>,
    /// Active team memberships: (`org/slug`, login).
    members: Vec<(String, String)>,
    /// How many commits of the base each head commit lacks (compare's `behind_by`).
    behind: HashMap<String, u64>,
    /// Issues by number.
    issues: std::collections::BTreeMap<u64, Value>,
    /// Answers still to give before the normal ones.
    failures: Vec<Failure>,
    check_runs: u64,
    /// Installation tokens minted so far, and how long each is valid.
    tokens: u64,
    token_ttl_secs: i64,
}

/// The recording server, in front of one shared Prism.
#[derive(Clone)]
pub struct GitHubMock {
    pub url: String,
    prism: String,
    state: Arc<Mutex<State>>,
}

impl GitHubMock {
    /// A new recorder (with empty state) in front of the shared Prism.
    pub fn start() -> GitHubMock {
        let prism = prism_url();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mock = GitHubMock {
            url,
            prism,
            state: Arc::new(Mutex::new(State {
                next_comment_id: 1000,
                token_ttl_secs: 3600,
                ..State::default()
            })),
        };
        let m = mock.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let m = m.clone();
                std::thread::spawn(move || m.serve(conn));
            }
        });
        mock
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests Prism found not to match GitHub's OpenAPI description.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// Asserts every request so far matched GitHub's schema.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "requests GitHub's schema rejects:\n{}",
            v.join("\n")
        );
    }

    /// The comments of an issue or pull request now.
    pub fn comments(&self, number: u64) -> Vec<StoredComment> {
        self.state
            .lock()
            .unwrap()
            .comments
            .get(&number)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a comment as if someone had written it.
    pub fn add_comment(&self, number: u64, login: &str, body: &str) -> u64 {
        let mut st = self.state.lock().unwrap();
        st.next_comment_id += 1;
        let id = st.next_comment_id;
        st.comments.entry(number).or_default().push(StoredComment {
            id,
            body: body.to_string(),
            login: login.to_string(),
        });
        id
    }

    /// Sets pull request `number`: its head and base commits and branch names, and whether
    /// (and as which commit) it was merged.
    pub fn set_pull(&self, number: u64, head: &str, base: &str, merged_as: Option<&str>) {
        let v = json!({
            "number": number,
            "state": if merged_as.is_some() { "closed" } else { "open" },
            "merged": merged_as.is_some(),
            "merged_at": merged_as.map(|_| "2026-11-22T10:00:00Z"),
            "merge_commit_sha": merged_as,
            "head": { "sha": head, "ref": format!("change-{number}") },
            "base": { "sha": base, "ref": "main" },
        });
        let mut st = self.state.lock().unwrap();
        st.pulls.insert(number, v.clone());
        if let Some(m) = merged_as {
            st.commit_pulls.entry(m.to_string()).or_default().push(v);
        }
    }

    /// Writes `fields` over pull request `number` as set (e.g. `draft`, `mergeable`,
    /// `mergeable_state`).
    pub fn patch_pull(&self, number: u64, fields: Value) {
        let mut st = self.state.lock().unwrap();
        let pull = st
            .pulls
            .get(&number)
            .cloned()
            .expect("the pull request is set");
        st.pulls.insert(number, merge(pull, &fields));
    }

    /// Adds a review of pull request `number` by `login` in `state` (`APPROVED`,
    /// `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`) of commit `commit`.
    pub fn add_review(&self, number: u64, login: &str, state: &str, commit: &str) {
        self.state
            .lock()
            .unwrap()
            .reviews
            .entry(number)
            .or_default()
            .push((login.to_string(), state.to_string(), commit.to_string()));
    }

    /// Makes `login` an active member of team `org/slug`.
    pub fn add_member(&self, team: &str, login: &str) {
        self.state
            .lock()
            .unwrap()
            .members
            .push((team.to_string(), login.to_string()));
    }

    /// The issues now (as GitHub would answer for each), by number.
    pub fn issues(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .issues
            .values()
            .cloned()
            .collect()
    }

    /// Says that commit `head` lacks `n` commits of the base branch.
    pub fn set_behind(&self, head: &str, n: u64) {
        self.state
            .lock()
            .unwrap()
            .behind
            .insert(head.to_string(), n);
    }

    /// Sets `user`'s role on the repository (`admin`, `maintain`, `write`, `triage`, `read`).
    pub fn set_permission(&self, user: &str, role: &str) {
        self.state
            .lock()
            .unwrap()
            .permissions
            .insert(user.to_string(), role.to_string());
    }

    /// How long the installation tokens minted from now on are valid.
    pub fn set_token_ttl(&self, secs: i64) {
        self.state.lock().unwrap().token_ttl_secs = secs;
    }

    /// Installation tokens minted so far.
    pub fn tokens_minted(&self) -> u64 {
        self.state.lock().unwrap().tokens
    }

    /// Answers the next call whose method is `method` and whose path starts with
    /// `path_prefix` with this status, headers and body (one call per `fail` call).
    pub fn fail_next(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) {
        self.state.lock().unwrap().failures.push(Failure {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        });
    }

    fn serve(&self, mut conn: TcpStream) {
        loop {
            let Some((head, body)) = read_request(&mut conn) else {
                return;
            };
            let request_line = head.lines().next().unwrap_or_default().to_string();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let target = parts.next().unwrap_or_default().to_string();
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), q.to_string()),
                None => (target.clone(), String::new()),
            };
            let authorization = header(&head, "authorization");
            // Contract first: Prism judges every request.
            let (p_status, p_headers, p_body) = forward(&self.prism, &head, &body);
            let (status, extra, reply) = {
                let mut st = self.state.lock().unwrap();
                st.requests.push(Recorded {
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    authorization,
                    body: body.clone(),
                });
                // Prism also checks its own example answers, which GitHub's description does not
                // always satisfy; only what formwork sent counts.
                let request_violations: Vec<Value> = header(&p_headers, "sl-violations")
                    .and_then(|v| serde_json::from_str::<Vec<Value>>(&v).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| v["location"][0] == "request")
                    .collect();
                if !request_violations.is_empty() {
                    st.violations.push(format!(
                        "{method} {target}: {}",
                        Value::Array(request_violations)
                    ));
                } else if p_status == 404 || p_status == 422 || p_status == 400 {
                    st.violations.push(format!(
                        "{method} {target}: Prism answered {p_status}: {p_body}"
                    ));
                }
                let failure = st
                    .failures
                    .iter()
                    .position(|f| f.method == method && path.starts_with(f.path_prefix.as_str()));
                if let Some(i) = failure {
                    let f = st.failures.remove(i);
                    (f.status, f.headers, f.body)
                } else {
                    let example: Value = serde_json::from_str(&p_body).unwrap_or(Value::Null);
                    match answer(&mut st, &method, &path, &query, &body, example) {
                        Some((status, v)) => (status, Vec::new(), v),
                        None => (p_status, Vec::new(), p_body),
                    }
                }
            };
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
                reply.len()
            );
            for (k, v) in extra {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&reply);
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// The recorder's own answer for the stateful routes, over Prism's example `example`.
fn answer(
    st: &mut State,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    example: Value,
) -> Option<(u16, String)> {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let req: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let comment_json = |example: &Value, c: &StoredComment| {
        let mut v = if example.is_object() {
            example.clone()
        } else {
            json!({})
        };
        v["id"] = json!(c.id);
        v["body"] = json!(c.body);
        v["html_url"] = json!(format!(
            "https://github.com/o/r/pull/1#issuecomment-{}",
            c.id
        ));
        v["user"]["login"] = json!(c.login);
        v
    };
    match (method, seg.as_slice()) {
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            let n: u64 = n.parse().ok()?;
            let template = example.get(0).cloned().unwrap_or(Value::Null);
            let all: Vec<Value> = st
                .comments
                .get(&n)
                .map(|cs| cs.iter().map(|c| comment_json(&template, c)).collect())
                .unwrap_or_default();
            // The page asked for.
            Some((200, page_of(all, query)))
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            let n: u64 = n.parse().ok()?;
            st.next_comment_id += 1;
            let c = StoredComment {
                id: st.next_comment_id,
                body: req["body"].as_str().unwrap_or_default().to_string(),
                login: "formwork[bot]".to_string(),
            };
            st.comments.entry(n).or_default().push(c.clone());
            Some((201, comment_json(&example, &c).to_string()))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().ok()?;
            for cs in st.comments.values_mut() {
                if let Some(c) = cs.iter_mut().find(|c| c.id == id) {
                    c.body = req["body"].as_str().unwrap_or_default().to_string();
                    let c = c.clone();
                    return Some((200, comment_json(&example, &c).to_string()));
                }
            }
            Some((404, json!({"message": "Not Found"}).to_string()))
        }
        ("DELETE", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().ok()?;
            for cs in st.comments.values_mut() {
                if let Some(i) = cs.iter().position(|c| c.id == id) {
                    cs.remove(i);
                    return Some((204, String::new()));
                }
            }
            Some((404, json!({"message": "Not Found"}).to_string()))
        }
        ("GET", ["repos", owner, name, "pulls"]) => {
            // The pull requests set up, newest first, in the state asked for (default open).
            let wanted = query_str(query, "state").unwrap_or("open");
            let template = example.get(0).cloned().unwrap_or(Value::Null);
            let mut pulls: Vec<&Value> = st
                .pulls
                .values()
                .filter(|p| wanted == "all" || p["state"] == wanted)
                .collect();
            pulls.sort_by_key(|p| std::cmp::Reverse(p["number"].as_u64()));
            let all = pulls
                .into_iter()
                .map(|p| with_repo(merge(template.clone(), p), owner, name))
                .collect();
            Some((200, page_of(all, query)))
        }
        ("GET", ["repos", owner, name, "pulls", n]) => {
            let n: u64 = n.parse().ok()?;
            let set = st.pulls.get(&n)?;
            Some((200, with_repo(merge(example, set), owner, name).to_string()))
        }
        ("GET", ["repos", owner, name, "commits", sha, "pulls"]) => {
            let template = example.get(0).cloned().unwrap_or(Value::Null);
            let list: Vec<Value> = st
                .commit_pulls
                .get(*sha)
                .map(|ps| {
                    ps.iter()
                        .map(|p| with_repo(merge(template.clone(), p), owner, name))
                        .collect()
                })
                .unwrap_or_default();
            Some((200, Value::Array(list).to_string()))
        }
        ("GET", ["repos", _, _, "collaborators", user, "permission"]) => {
            let role = st.permissions.get(*user).cloned();
            match role {
                None => Some((404, json!({"message": "Not Found"}).to_string())),
                Some(role) => {
                    let legacy = match role.as_str() {
                        "maintain" => "write",
                        "triage" => "read",
                        r => r,
                    };
                    let mut v = example;
                    v["permission"] = json!(legacy);
                    v["role_name"] = json!(role);
                    v["user"]["login"] = json!(user);
                    Some((200, v.to_string()))
                }
            }
        }
        ("GET", ["repos", _, _, "issues"]) => {
            let state = query_str(query, "state").unwrap_or("open");
            let labels = query_str(query, "labels");
            let all: Vec<Value> = st
                .issues
                .values()
                .rev()
                .filter(|i| state == "all" || i["state"] == state)
                .filter(|i| {
                    labels.is_none_or(|want| {
                        i["labels"]
                            .as_array()
                            .is_some_and(|ls| ls.iter().any(|l| l["name"] == want))
                    })
                })
                .cloned()
                .collect();
            Some((200, page_of(all, query)))
        }
        ("POST", ["repos", _, _, "issues"]) => {
            let number = 500 + st.issues.len() as u64;
            let mut v = example;
            v["number"] = json!(number);
            v["title"] = req["title"].clone();
            v["body"] = req["body"].clone();
            v["state"] = json!("open");
            v["pull_request"] = Value::Null;
            let labels: Vec<Value> = req["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| json!({"name": l}))
                .collect();
            v["labels"] = Value::Array(labels);
            st.issues.insert(number, v.clone());
            Some((201, v.to_string()))
        }
        ("PATCH", ["repos", _, _, "issues", n]) => {
            let n: u64 = n.parse().ok()?;
            let Some(issue) = st.issues.get_mut(&n) else {
                return Some((404, json!({"message": "Not Found"}).to_string()));
            };
            for key in ["title", "body", "state", "state_reason"] {
                if !req[key].is_null() {
                    issue[key] = req[key].clone();
                }
            }
            Some((200, issue.to_string()))
        }
        ("GET", ["repos", _, _, "pulls", n, "reviews"]) => {
            let n: u64 = n.parse().ok()?;
            let template = example.get(0).cloned().unwrap_or(Value::Null);
            let all: Vec<Value> = st
                .reviews
                .get(&n)
                .map(|rs| {
                    rs.iter()
                        .enumerate()
                        .map(|(i, (login, state, commit))| {
                            let mut v = template.clone();
                            v["id"] = json!(80 + i);
                            v["user"]["login"] = json!(login);
                            v["state"] = json!(state);
                            v["commit_id"] = json!(commit);
                            v
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((200, page_of(all, query)))
        }
        ("GET", ["orgs", org, "teams", slug, "memberships", user]) => {
            let team = format!("{org}/{slug}");
            if st.members.iter().any(|(t, u)| *t == team && u == user) {
                let mut v = example;
                v["state"] = json!("active");
                Some((200, v.to_string()))
            } else {
                Some((404, json!({"message": "Not Found"}).to_string()))
            }
        }
        ("GET", ["repos", _, _, "compare", basehead]) => {
            let head = basehead.split_once("...").map(|x| x.1).unwrap_or_default();
            let behind = st.behind.get(head).copied().unwrap_or(0);
            let mut v = example;
            v["behind_by"] = json!(behind);
            v["status"] = json!(if behind > 0 { "diverged" } else { "ahead" });
            Some((200, v.to_string()))
        }
        ("POST", ["app", "installations", _, "access_tokens"]) => {
            st.tokens += 1;
            let expires = chrono_like_now_plus(st.token_ttl_secs);
            let mut v = example;
            v["token"] = json!(format!("ghs_minted_{}", st.tokens));
            v["expires_at"] = json!(expires);
            Some((201, v.to_string()))
        }
        ("POST", ["repos", _, _, "check-runs"]) => {
            st.check_runs += 1;
            let mut v = example;
            v["id"] = json!(st.check_runs);
            Some((201, v.to_string()))
        }
        _ => None,
    }
}

/// RFC 3339 (UTC) of now plus `secs`.
fn chrono_like_now_plus(secs: i64) -> String {
    formwork::store::format_millis(formwork::store::now() + secs * 1000)
}

/// The page of `all` the query asks for (`per_page`, default 30; `page`, from 1), as JSON.
fn page_of(all: Vec<Value>, query: &str) -> String {
    let per_page = query_value(query, "per_page").unwrap_or(30).max(1);
    let page = query_value(query, "page").unwrap_or(1).max(1);
    let page: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Value::Array(page).to_string()
}

fn query_value(query: &str, key: &str) -> Option<usize> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

fn query_str<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|x| x.1))
}

/// A pull request whose head and base are both in `owner/name` (not a fork).
fn with_repo(mut pull: Value, owner: &str, name: &str) -> Value {
    for side in ["head", "base"] {
        pull[side]["repo"]["full_name"] = json!(format!("{owner}/{name}"));
        pull[side]["repo"]["name"] = json!(name);
        pull[side]["repo"]["owner"]["login"] = json!(owner);
    }
    pull
}

/// `base` with the fields of `over` written over it (objects merged, the rest replaced).
fn merge(mut base: Value, over: &Value) -> Value {
    match (base.as_object_mut(), over.as_object()) {
        (Some(b), Some(o)) => {
            for (k, v) in o {
                let merged = merge(b.get(k).cloned().unwrap_or(Value::Null), v);
                b.insert(k.clone(), merged);
            }
            base
        }
        _ => over.clone(),
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Reads one HTTP/1.1 request (head, and a body by Content-Length).
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
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    Some((head, String::from_utf8_lossy(&body).into_owned()))
}

/// Sends the request to Prism; returns its status, head and body.
fn forward(upstream: &str, head: &str, body: &str) -> (u16, String, String) {
    let addr = upstream.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).expect("Prism is not reachable");
    let mut lines = head.lines();
    let mut out = format!("{}\r\n", lines.next().unwrap_or_default());
    for l in lines {
        let lower = l.to_ascii_lowercase();
        if l.is_empty() || lower.starts_with("connection:") || lower.starts_with("host:") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Host: {addr}\r\nConnection: close\r\n\r\n"));
    out.push_str(body);
    conn.write_all(out.as_bytes()).unwrap();
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let body = if header(head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GitHub's example webhook payloads (@octokit/webhooks-examples): (event name, examples).
pub fn examples() -> &'static Vec<(String, Vec<Value>)> {
    static EXAMPLES: OnceLock<Vec<(String, Vec<Value>)>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tools/github/node_modules/@octokit/webhooks-examples/api.github.com/index.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "GitHub's example webhook payloads are not installed: run `npm ci --prefix tools/github` ({}: {e})",
                path.display()
            )
        });
        let all: Vec<Value> = serde_json::from_str(&text).expect("index.json is JSON");
        all.into_iter()
            .map(|event| {
                let name = event["name"].as_str().expect("event name").to_string();
                let examples = event["examples"].as_array().expect("examples").clone();
                (name, examples)
            })
            .collect()
    })
}

/// The examples of one event.
pub fn examples_of(name: &str) -> Vec<Value> {
    examples()
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no examples of `{name}`"))
        .1
        .clone()
}

/// The shared Prism: from `FORMWORK_TEST_GITHUB_URL`, or started for this test process.
pub fn prism_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    static CHILD: OnceLock<Mutex<Child>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("FORMWORK_TEST_GITHUB_URL") {
            return u.trim_end_matches('/').to_string();
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let prism = root.join("tools/github/node_modules/@stoplight/prism-cli/dist/index.js");
        assert!(
            prism.exists(),
            "Prism is not installed: run `scripts/github-mock setup` (or use scripts/test)"
        );
        let dir = std::env::temp_dir().join(format!("formwork-prism-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = dir.join("github-openapi.json");
        let status = Command::new("node")
            .arg(root.join("tools/github/trim-openapi.mjs"))
            .arg(&spec)
            .stderr(Stdio::null())
            .status()
            .expect("run node");
        assert!(
            status.success(),
            "trimming GitHub's OpenAPI description failed"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("prism.log");
        let child = Command::new("python3")
            .arg(root.join("tools/emulators/supervise.py"))
            .arg(&log)
            .arg("--cleanup")
            .arg(&dir)
            .arg("--")
            .arg("node")
            .arg(&prism)
            .args(["mock", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(&spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Prism under supervise.py");
        let _ = CHILD.set(Mutex::new(child));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Prism did not start (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        url
    })
    .clone()
}
