//! Helpers shared by the integration test modules.

pub mod fake_github;
pub mod pg;

use std::path::Path;
use std::process::{Command, Output};

/// The real binary, run in `dir` against the history `db`, with CI's environment and without
/// variables from the developer's shell that would change its behaviour.
pub fn gate_in(dir: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .env("GATE_DB", db)
        .env_remove("GATE_TARGET")
        .env_remove("GITHUB_HEAD_REF")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("API_TOKEN")
        .output()
        .expect("gate runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The cells of the terminal table header whose first cell is `first`, trimmed (column widths
/// follow the data, so a test compares cells, not the padded line).
pub fn header_cells(stdout: &str, first: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| {
            l.strip_prefix('│')
                .and_then(|rest| rest.split('┆').next())
                .is_some_and(|cell| cell.trim() == first)
        })
        .unwrap_or_else(|| panic!("no table header starting with {first}\n{stdout}"));
    line.trim_start_matches('│')
        .trim_end_matches('│')
        .split('┆')
        .map(|c| c.trim().to_string())
        .collect()
}

/// Run git with a fixed identity; returns trimmed stdout, panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A scratch git repository (branch `main`, one commit) holding a copy of two of the example
/// suite's scenarios, user-orders and product-detail, so `--suite scenarios` works in it.
pub fn scratch_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir(r.join("scenarios")).unwrap();
    for f in ["suite.yml", "user-orders.yml", "product-detail.yml"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios")
                .join(f),
            r.join("scenarios").join(f),
        )
        .unwrap();
    }
    git(r, &["init", "-q", "-b", "main"]);
    git(r, &["add", "."]);
    git(r, &["commit", "-q", "-m", "base"]);
    dir
}

/// The sample service with a simulated 400 µs database round trip per statement (what makes
/// the N+1 cost something; the demo uses 50 µs) and a 2 ms upstream with a little jitter.
pub fn shop_service() -> gate::demo::DemoServer {
    gate::demo::DemoServer::start(
        "127.0.0.1:0".parse().unwrap(),
        gate::demo::DemoOptions {
            // 400 µs a query: the N+1 (about 50 extra queries per user) then costs ~20 ms
            // against ~3 ms, an effect no noise on a loaded runner can hide.
            db_latency: Some(std::time::Duration::from_micros(400)),
            latency: Some(std::time::Duration::from_millis(2)),
            jitter: Some(0.1),
            ..gate::demo::DemoOptions::default()
        },
    )
    .unwrap()
}

/// A loopback HTTP server that answers every request `200 {}` (and closes the connection) and
/// keeps each request's head, lower-cased: what gate really put on the wire.
pub struct Recorder {
    url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        // The thread ends with the test process; it only ever blocks in accept.
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_lowercase());
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                );
            }
        });
        Recorder { url, heads }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// Tests run as threads of one process, two at a time on a 2-core machine. A test that judges
/// short runs statistically (a regression must be found, an unchanged endpoint must not move)
/// measures `alone()`, as it did when it was a test binary of its own; every other test holds
/// `shared()` while it runs, so it never overlaps one of those.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    MACHINE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
