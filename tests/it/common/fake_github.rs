//! A fake GitHub REST API on loopback, speaking the shapes `gate ci` uses: issue comments (list
//! with pagination and `Link` headers, create, update), git refs/trees/commits, the contents
//! API, and `raw` file downloads on the web side. It records every call, enforces GitHub's
//! rules that matter here (token, 65,536-character bodies, an existing branch for contents,
//! `sha` to overwrite), and injects faults on demand (5xx, rate limits, read-only tokens).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub user: String,
    pub body: String,
}

struct Fault {
    method: Method,
    path_contains: String,
    status: u16,
    headers: Vec<(String, String)>,
    remaining: usize,
}

#[derive(Clone, Default)]
struct GitCommit {
    parents: Vec<String>,
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    token: String,
    base: String,
    calls: Vec<Call>,
    comments: Vec<Comment>,
    next_id: u64,
    refs: HashMap<String, String>,
    trees: HashMap<String, BTreeMap<String, Vec<u8>>>,
    commits: HashMap<String, GitCommit>,
    faults: Vec<Fault>,
    read_only: bool,
    pr_heads: HashMap<u64, String>,
}

impl Inner {
    fn sha(&mut self) -> String {
        self.next_id += 1;
        format!("{:040x}", 0xfeed_0000_u64 + self.next_id)
    }
}

pub struct FakeGitHub {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGitHub {
    /// Serve on 127.0.0.1 with a background runtime; requests must carry `token`.
    pub fn start(token: &str) -> FakeGitHub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner {
            token: token.into(),
            base: format!("http://{addr}"),
            next_id: 1000,
            ..Inner::default()
        }));
        let state = inner.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FakeGitHub {
            addr,
            inner,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn comments(&self, issue: u64) -> Vec<Comment> {
        let inner = self.inner.lock().unwrap();
        inner
            .comments
            .iter()
            .filter(|c| c.issue == issue)
            .cloned()
            .collect()
    }

    /// Someone else's comment (a bot, a reviewer), to fill pages before gate's.
    pub fn add_comment(&self, issue: u64, user: &str, body: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.comments.push(Comment {
            id,
            issue,
            user: user.into(),
            body: body.into(),
        });
    }

    /// The next `times` requests with this method whose path contains `path_contains` get
    /// `status` (with `headers`) instead of being served.
    pub fn fail_next(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        headers: &[(&str, &str)],
        times: usize,
    ) {
        self.inner.lock().unwrap().faults.push(Fault {
            method: method.parse().unwrap(),
            path_contains: path_contains.into(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            remaining: times,
        });
    }

    /// Every write answers 403 "Resource not accessible by integration", as a fork PR's token.
    pub fn set_read_only(&self, read_only: bool) {
        self.inner.lock().unwrap().read_only = read_only;
    }

    /// The head commit `GET /repos/{o}/{r}/pulls/{n}` reports for PR `n`.
    pub fn set_pr_head(&self, pr: u64, sha: &str) {
        self.inner.lock().unwrap().pr_heads.insert(pr, sha.into());
    }

    pub fn branch_head(&self, branch: &str) -> Option<String> {
        self.inner
            .lock()
            .unwrap()
            .refs
            .get(&format!("refs/heads/{branch}"))
            .cloned()
    }

    pub fn commit_parents(&self, sha: &str) -> Option<Vec<String>> {
        let inner = self.inner.lock().unwrap();
        inner.commits.get(sha).map(|c| c.parents.clone())
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn not_found() -> Response {
    reply(
        404,
        json!({ "message": "Not Found", "documentation_url": "https://docs.github.com/rest" }),
    )
}

async fn handle(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock().unwrap();
    let path_q = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    inner.calls.push(Call {
        method: method.to_string(),
        path: path_q.clone(),
        authorization: authorization.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });

    if let Some(f) = inner
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && f.method == method && path_q.contains(&f.path_contains))
    {
        f.remaining -= 1;
        let mut r = reply(f.status, json!({ "message": "injected fault" }));
        for (k, v) in &f.headers {
            r.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        return r;
    }

    let segments: Vec<String> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();

    // The web side: raw files pinned to a commit (no token needed on a public repository).
    if let [_, _, "raw", sha, rest @ ..] = seg.as_slice() {
        let path = rest.join("/");
        return match inner.commits.get(*sha).and_then(|c| c.files.get(&path)) {
            Some(bytes) => Response::builder()
                .status(200)
                .header("content-type", "image/png")
                .body(Body::from(bytes.clone()))
                .unwrap(),
            None => not_found(),
        };
    }

    let expected = [
        format!("Bearer {}", inner.token),
        format!("token {}", inner.token),
    ];
    if !authorization
        .as_deref()
        .is_some_and(|a| expected.iter().any(|e| e == a))
    {
        return reply(401, json!({ "message": "Bad credentials" }));
    }
    let write = method != Method::GET;
    if write && inner.read_only {
        return reply(
            403,
            json!({ "message": "Resource not accessible by integration" }),
        );
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    match (method.as_str(), seg.as_slice()) {
        ("GET", ["repos", o, r, "issues", n, "comments"]) => {
            let issue: u64 = n.parse().unwrap_or(0);
            let per_page: usize = query
                .get("per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .min(100);
            let page: usize = query
                .get("page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
                .max(1);
            let all: Vec<&Comment> = inner.comments.iter().filter(|c| c.issue == issue).collect();
            let pages = all.len().div_ceil(per_page).max(1);
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| comment_json(&inner.base, o, r, c))
                .collect();
            let mut resp = reply(200, Value::Array(items));
            let link = |p: usize, rel: &str| {
                format!(
                    "<{}/repos/{o}/{r}/issues/{issue}/comments?per_page={per_page}&page={p}>; rel=\"{rel}\"",
                    inner.base
                )
            };
            let mut links = Vec::new();
            if page < pages {
                links.push(link(page + 1, "next"));
                links.push(link(pages, "last"));
            }
            if page > 1 {
                links.push(link(1, "first"));
                links.push(link(page - 1, "prev"));
            }
            if !links.is_empty() {
                resp.headers_mut()
                    .insert("link", HeaderValue::from_str(&links.join(", ")).unwrap());
            }
            resp
        }
        ("POST", ["repos", o, r, "issues", n, "comments"]) => {
            let Some(text) = json["body"].as_str() else {
                return reply(
                    422,
                    json!({ "message": "Invalid request: body is missing" }),
                );
            };
            if text.chars().count() > 65_536 {
                return too_long();
            }
            inner.next_id += 1;
            let c = Comment {
                id: inner.next_id,
                issue: n.parse().unwrap_or(0),
                user: "github-actions[bot]".into(),
                body: text.into(),
            };
            let out = comment_json(&inner.base, o, r, &c);
            inner.comments.push(c);
            reply(201, out)
        }
        ("PATCH", ["repos", o, r, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(text) = json["body"].as_str() else {
                return reply(
                    422,
                    json!({ "message": "Invalid request: body is missing" }),
                );
            };
            if text.chars().count() > 65_536 {
                return too_long();
            }
            let base = inner.base.clone();
            match inner.comments.iter_mut().find(|c| c.id == id) {
                Some(c) => {
                    c.body = text.into();
                    let out = comment_json(&base, o, r, c);
                    reply(200, out)
                }
                None => not_found(),
            }
        }
        ("GET", ["repos", _, _, "pulls", n]) => {
            let number: u64 = n.parse().unwrap_or(0);
            match inner.pr_heads.get(&number) {
                Some(sha) => reply(
                    200,
                    json!({ "number": number, "state": "open", "head": { "sha": sha, "ref": "feature" } }),
                ),
                None => not_found(),
            }
        }
        ("GET", ["repos", _, _, "git", "ref", rest @ ..]) => {
            let name = format!("refs/{}", rest.join("/"));
            match inner.refs.get(&name) {
                Some(sha) => reply(
                    200,
                    json!({ "ref": name, "object": { "sha": sha, "type": "commit" } }),
                ),
                None => not_found(),
            }
        }
        ("POST", ["repos", _, _, "git", "trees"]) => {
            let mut files = json["base_tree"]
                .as_str()
                .and_then(|t| inner.trees.get(t).cloned())
                .unwrap_or_default();
            for entry in json["tree"].as_array().cloned().unwrap_or_default() {
                let (Some(path), Some(content)) =
                    (entry["path"].as_str(), entry["content"].as_str())
                else {
                    return reply(
                        422,
                        json!({ "message": "tree entry needs path and content" }),
                    );
                };
                files.insert(path.into(), content.as_bytes().to_vec());
            }
            if files.is_empty() {
                return reply(422, json!({ "message": "Invalid tree info" }));
            }
            let sha = inner.sha();
            inner.trees.insert(sha.clone(), files);
            reply(201, json!({ "sha": sha }))
        }
        ("POST", ["repos", _, _, "git", "commits"]) => {
            let Some(files) = json["tree"]
                .as_str()
                .and_then(|t| inner.trees.get(t).cloned())
            else {
                return reply(422, json!({ "message": "Tree SHA does not exist" }));
            };
            let parents: Vec<String> = json["parents"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let sha = inner.sha();
            inner
                .commits
                .insert(sha.clone(), GitCommit { parents, files });
            reply(201, json!({ "sha": sha }))
        }
        ("POST", ["repos", _, _, "git", "refs"]) => {
            let (Some(name), Some(sha)) = (json["ref"].as_str(), json["sha"].as_str()) else {
                return reply(422, json!({ "message": "ref and sha required" }));
            };
            if inner.refs.contains_key(name) {
                return reply(422, json!({ "message": "Reference already exists" }));
            }
            if !inner.commits.contains_key(sha) {
                return reply(422, json!({ "message": "Object does not exist" }));
            }
            inner.refs.insert(name.into(), sha.into());
            reply(
                201,
                json!({ "ref": name, "object": { "sha": sha, "type": "commit" } }),
            )
        }
        ("PUT", ["repos", o, r, "contents", rest @ ..]) => {
            let path = rest.join("/");
            let branch = json["branch"].as_str().unwrap_or("main").to_string();
            let ref_name = format!("refs/heads/{branch}");
            let Some(head) = inner.refs.get(&ref_name).cloned() else {
                return reply(
                    404,
                    json!({ "message": format!("Branch {branch} not found") }),
                );
            };
            let Some(bytes) = json["content"]
                .as_str()
                .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
            else {
                return reply(422, json!({ "message": "content is not valid Base64" }));
            };
            let mut files = inner.commits[&head].files.clone();
            if files.contains_key(&path) && json["sha"].is_null() {
                return reply(
                    422,
                    json!({ "message": "Invalid request.\n\n\"sha\" wasn't supplied." }),
                );
            }
            files.insert(path.clone(), bytes);
            let sha = inner.sha();
            inner.commits.insert(
                sha.clone(),
                GitCommit {
                    parents: vec![head],
                    files,
                },
            );
            inner.refs.insert(ref_name, sha.clone());
            let base = inner.base.clone();
            reply(
                201,
                json!({
                    "content": {
                        "name": path.rsplit('/').next(),
                        "path": path,
                        "sha": format!("{:040x}", path.len()),
                        "html_url": format!("{base}/{o}/{r}/blob/{branch}/{path}"),
                        "download_url": format!("{base}/{o}/{r}/raw/{branch}/{path}"),
                    },
                    "commit": { "sha": sha, "html_url": format!("{base}/{o}/{r}/commit/{sha}") }
                }),
            )
        }
        _ => not_found(),
    }
}

fn too_long() -> Response {
    reply(
        422,
        json!({
            "message": "Validation Failed",
            "errors": [ { "resource": "IssueComment", "code": "custom", "field": "body",
                          "message": "body is too long (maximum is 65536 characters)" } ]
        }),
    )
}

fn comment_json(base: &str, o: &str, r: &str, c: &Comment) -> Value {
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{base}/repos/{o}/{r}/issues/comments/{}", c.id),
        "html_url": format!("{base}/{o}/{r}/pull/{}#issuecomment-{}", c.issue, c.id),
        "body": c.body,
        "user": { "login": c.user, "type": "Bot" },
        "created_at": "2026-11-22T00:00:00Z",
        "updated_at": "2026-11-22T00:00:00Z",
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
