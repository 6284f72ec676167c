//! Issue 12: gate against servers that misbehave. A server written for these tests listens on
//! loopback and answers every request in one hostile way; the real `gate` binary runs a short,
//! bounded scenario against it. For each case: no panic, no hang (the run ends within its
//! duration plus its timeout, with a margin for a loaded machine), peak memory far below 100 MB,
//! the error counted under a kind that names it, and never a false pass.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How one hostile server answers every request.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// A well-behaved 200 with a small body (for the fault and secret tests).
    Ok,
    /// `Transfer-Encoding: chunked`, chunks forever.
    EndlessChunked,
    /// `Content-Length` of 10 GB, zeros as fast as the socket takes them.
    HugeBody,
    /// One 2 MB header line.
    BigHeader,
    /// Reads the request, never answers, never closes.
    Silence,
    /// Half a body, then a TCP reset.
    ResetMidBody,
    /// A chunk size line that is not hex.
    BadChunked,
    /// An SSH server's banner instead of an HTTP status line.
    NotHttp,
    /// 200s whose `Server-Timing` values are absurd: `1e308`, NaN, negative, invalid UTF-8,
    /// and a new metric name on every response.
    AbsurdServerTiming,
    /// A `Content-Encoding: gzip` body that inflates 1000-fold.
    GzipBomb,
    /// An SSE stream whose one `data:` line is 100 MB long.
    SseHugeLine,
    /// 429s whose `Retry-After` takes every odd shape in turn.
    OddRetryAfter,
    /// Well-behaved keep-alive 200s, but a connection idle for 30 ms is closed (as Node's
    /// servers do after 5 s): a client must notice before it reuses one.
    IdleClose,
}

struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mode: Mode) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let gzip = Arc::new(matches!(mode, Mode::GzipBomb).then(gzip_bomb));
    let s = stop.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if s.load(Ordering::Relaxed) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (counter, gzip, s) = (counter.clone(), gzip.clone(), s.clone());
            std::thread::spawn(move || {
                let _ = handle(conn, mode, &counter, gzip.as_ref().as_deref(), &s);
            });
        }
    });
    Hostile { addr, stop }
}

/// Read one request head (and a body, by Content-Length); false when the peer closed.
fn read_request(conn: &mut TcpStream) -> std::io::Result<bool> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(false);
        }
        buf.push(byte[0]);
        if buf.len() > 1 << 20 {
            return Ok(false);
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(true)
}

fn handle(
    mut conn: TcpStream,
    mode: Mode,
    counter: &AtomicU64,
    gzip: Option<&[u8]>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    if matches!(mode, Mode::IdleClose) {
        // A read that waits longer ends this thread, and the connection with a FIN.
        conn.set_read_timeout(Some(Duration::from_millis(30)))?;
    }
    while read_request(&mut conn)? {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let n = counter.fetch_add(1, Ordering::Relaxed);
        match mode {
            Mode::Ok | Mode::IdleClose => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?
            }
            Mode::EndlessChunked => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                let chunk = [b"4000\r\n".as_slice(), &[b'z'; 0x4000], b"\r\n"].concat();
                while !stop.load(Ordering::Relaxed) {
                    conn.write_all(&chunk)?;
                }
                return Ok(());
            }
            Mode::HugeBody => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")?;
                let zeros = vec![0u8; 1 << 16];
                while !stop.load(Ordering::Relaxed) {
                    conn.write_all(&zeros)?;
                }
                return Ok(());
            }
            Mode::BigHeader => {
                let big = "a".repeat(2 << 20);
                conn.write_all(
                    format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 0\r\n\r\n")
                        .as_bytes(),
                )?;
            }
            Mode::Silence => {
                // Hold the socket until gate gives up on it.
                let mut sink = [0u8; 1024];
                while conn.read(&mut sink)? > 0 {}
                return Ok(());
            }
            Mode::ResetMidBody => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")?;
                conn.write_all(&[b'r'; 1000])?;
                std::thread::sleep(Duration::from_millis(5));
                // SO_LINGER 0: close() sends a RST instead of a FIN.
                let sock = socket2_linger_zero(&conn);
                drop(conn);
                drop(sock);
                return Ok(());
            }
            Mode::BadChunked => conn.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            )?,
            Mode::NotHttp => {
                conn.write_all(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")?;
                let mut sink = [0u8; 1024];
                while conn.read(&mut sink)? > 0 {}
                return Ok(());
            }
            Mode::AbsurdServerTiming => {
                let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
                head.extend_from_slice(
                    b"Server-Timing: db;dur=1e308, cache;dur=NaN, app;dur=-5, inf;dur=inf, ok;dur=2.5\r\n",
                );
                head.extend_from_slice(b"Server-Timing: bad;dur=\xff\xfe1\r\n");
                head.extend_from_slice(format!("Server-Timing: n{n};dur=1\r\n").as_bytes());
                head.extend_from_slice(
                    format!("Server-Timing: {};dur=1\r\n", "x".repeat(5000)).as_bytes(),
                );
                head.extend_from_slice(b"\r\nok");
                conn.write_all(&head)?;
            }
            Mode::GzipBomb => {
                let body = gzip.expect("made at start");
                conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )?;
                conn.write_all(body)?;
            }
            Mode::SseHugeLine => {
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                )?;
                let start = b"event: content_block_delta\ndata: ";
                conn.write_all(format!("{:x}\r\n", start.len()).as_bytes())?;
                conn.write_all(start)?;
                conn.write_all(b"\r\n")?;
                let chunk = [b"100000\r\n".as_slice(), &[b'x'; 0x100000], b"\r\n"].concat();
                for _ in 0..100 {
                    conn.write_all(&chunk)?;
                }
                conn.write_all(b"0\r\n\r\n")?;
            }
            Mode::OddRetryAfter => {
                const SHAPES: &[&[u8]] = &[
                    b"1e20",
                    b"-1",
                    b"NaN",
                    b"inf",
                    b"1.5",
                    b"99999999999999999999999999",
                    b"18446744073709551616",
                    b"Fri, 31 Dec 9999 23:59:59 GMT",
                    b"Sun, 06 Nov 1994 08:49:37 GMT",
                    b"Mon, 99 Foo 2024 99:99:99 GMT",
                    b"",
                    b"\xff\xfe\xfd",
                    b"0x10",
                    b"3",
                ];
                let shape = SHAPES[n as usize % SHAPES.len()];
                let mut head = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: ".to_vec();
                head.extend_from_slice(shape);
                head.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n{}");
                conn.write_all(&head)?;
            }
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}

/// Set SO_LINGER to zero so that closing the socket resets the connection.
fn socket2_linger_zero(conn: &TcpStream) -> TcpStream {
    use std::os::fd::AsRawFd;
    let linger = libc_linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid, open socket with a correctly sized linger struct.
    unsafe {
        setsockopt(
            conn.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&linger as *const libc_linger).cast(),
            std::mem::size_of::<libc_linger>() as u32,
        );
    }
    conn.try_clone().unwrap()
}

#[repr(C)]
#[allow(non_camel_case_types)]
struct libc_linger {
    l_onoff: i32,
    l_linger: i32,
}
const SOL_SOCKET: i32 = 1;
const SO_LINGER: i32 = 13;
unsafe extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const u8, len: u32) -> i32;
}

/// 10 MB of zeros, gzipped (about 10 KB).
fn gzip_bomb() -> Vec<u8> {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..10 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

/// What one `gate run` against a hostile server ended with.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    peak_rss_kb: u64,
    json: Option<Value>,
    /// The run's directory (scenario, JSON, `history.db`), kept for the checks.
    db: tempfile::TempDir,
}

const HTTP_SCENARIO: &str = "name: hostile\nrequest: { method: GET, url: /x, timeout: 2s }\nexpect: { status: 200 }\nload: { users: 2, duration: 1s, warmup: 0s }\n";

const LLM_SCENARIO: &str = "name: hostile-llm
llm:
  provider: anthropic
  api_key: ${HOSTILE_KEY:-k}
  models: [m]
  prompt: hi
  max_tokens: 8
  stream: true
  timeouts: { connect: 1s, first_token: 2s, between_tokens: 2s, total: 3s }
load: { concurrency: 2, requests: 6 }
";

/// `gate run` of the suite in `dir` against `addr`, saving to `db` and writing `json`.
fn run_cmd(dir: &Path, addr: SocketAddr, db: &Path, json: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args(["run", "--no-progress", "--suite"])
        .arg(dir)
        .args(["--target", &format!("http://{addr}"), "--json"])
        .arg(json)
        .arg("--db")
        .arg(db)
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("GATE_TARGET")
        .env_remove("GATE_INJECT_FAULT");
    cmd
}

/// Run `gate run` with one scenario against `addr`, watching its peak memory (VmHWM).
fn gate_run(addr: SocketAddr, scenario: &str, env: &[(&str, &str)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hostile.yml"), scenario).unwrap();
    let json = dir.path().join("run.json");
    let db = dir.path().join("history.db");
    let mut cmd = run_cmd(dir.path(), addr, &db, &json);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_rss_kb = 0;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_rss_kb = peak_rss_kb.max(kb);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("gate hung against the hostile server");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let json = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("the JSON document is valid JSON"));
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        elapsed,
        peak_rss_kb,
        json,
        db: dir,
    }
}

fn errors_of(o: &Outcome) -> Value {
    o.json.as_ref().expect("a JSON document")["run"]["endpoints"][0]["errors"].clone()
}

/// What every hostile case must satisfy; returns the outcome for case-specific checks.
fn survives(mode: Mode, scenario: &str, budget: Duration) -> Outcome {
    let server = serve(mode);
    let o = gate_run(server.addr, scenario, &[]);
    let all = format!("{}{}", o.stdout, o.stderr);
    eprintln!(
        "{mode:?}: exit {} in {:.1}s, peak RSS {} kB\n{all}",
        o.code,
        o.elapsed.as_secs_f64(),
        o.peak_rss_kb
    );
    assert!(!all.contains("panicked"), "{mode:?}: a panic\n{all}");
    assert!(
        o.elapsed < budget,
        "{mode:?}: took {:?}, more than its duration plus timeout allow ({budget:?})",
        o.elapsed
    );
    assert!(
        o.peak_rss_kb > 0 && o.peak_rss_kb < 100_000,
        "{mode:?}: peak RSS {} kB",
        o.peak_rss_kb
    );
    o
}

/// A dead endpoint must fail (exit 1) with the reason in the table and in the JSON.
fn fails_as_dead(mode: Mode, o: &Outcome, kind: &str) {
    assert_eq!(
        o.code, 1,
        "{mode:?}: a dead target must fail the gate\n{}",
        o.stderr
    );
    assert!(
        !o.stdout.contains("✅"),
        "{mode:?}: no green on a dead target\n{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("❌ FAIL no successful request"),
        "{mode:?}: the table names the reason\n{}",
        o.stdout
    );
    let doc = o.json.as_ref().expect("the JSON document is written");
    assert_eq!(doc["pass"], false, "{mode:?}");
    let checks = &doc["slo"]["endpoints"][0]["checks"];
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["metric"] == "successes" && c["pass"] == false && c["default"] == true),
        "{mode:?}: the JSON carries the default check that failed: {checks}"
    );
    let errors = errors_of(o);
    assert!(
        errors[kind].as_u64().unwrap_or(0) > 0,
        "{mode:?}: errors counted under `{kind}`: {errors}"
    );
}

// Budgets: 1 s of load + the 2 s request timeout, plus start-up and a loaded debug build.
const HTTP_BUDGET: Duration = Duration::from_secs(12);
const LLM_BUDGET: Duration = Duration::from_secs(15);

#[test]
fn endless_chunked_body_is_cut_at_the_body_limit() {
    let _machine = crate::common::shared();
    let o = survives(Mode::EndlessChunked, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::EndlessChunked, &o, "body_too_large");
}

#[test]
fn a_ten_gigabyte_body_is_cut_at_the_body_limit() {
    let _machine = crate::common::shared();
    let o = survives(Mode::HugeBody, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::HugeBody, &o, "body_too_large");
}

#[test]
fn a_two_megabyte_header_line_is_refused() {
    let _machine = crate::common::shared();
    let o = survives(Mode::BigHeader, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::BigHeader, &o, "header_too_large");
}

#[test]
fn silence_after_accept_times_out() {
    let _machine = crate::common::shared();
    let o = survives(Mode::Silence, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::Silence, &o, "timeout");
}

#[test]
fn a_reset_in_the_middle_of_a_body_is_a_reset() {
    let _machine = crate::common::shared();
    let o = survives(Mode::ResetMidBody, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::ResetMidBody, &o, "reset");
}

#[test]
fn invalid_chunked_framing_is_a_protocol_error() {
    let _machine = crate::common::shared();
    let o = survives(Mode::BadChunked, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::BadChunked, &o, "protocol");
}

#[test]
fn an_ssh_banner_is_a_protocol_error() {
    let _machine = crate::common::shared();
    let o = survives(Mode::NotHttp, HTTP_SCENARIO, HTTP_BUDGET);
    fails_as_dead(Mode::NotHttp, &o, "protocol");
}

#[test]
fn connections_the_server_closed_while_idle_are_replaced_not_counted_as_errors() {
    let _machine = crate::common::shared();
    // Open model at 10/s: every connection idles 100 ms between requests, and the server has
    // closed it after 30 ms. Each request must find that out before it is sent.
    let o = survives(
        Mode::IdleClose,
        "name: hostile\nrequest: { method: GET, url: /x, timeout: 2s }\nexpect: { status: 200 }\nload: { rate: 10/s, duration: 1s, warmup: 0s }\n",
        HTTP_BUDGET,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let e = &o.json.as_ref().unwrap()["run"]["endpoints"][0];
    assert_eq!(e["errors"], serde_json::json!({}), "{e}");
    assert!(e["successes"].as_u64().unwrap() >= 8, "{e}");
}

#[test]
fn absurd_server_timing_values_are_ignored_and_the_history_stays_readable() {
    let _machine = crate::common::shared();
    let o = survives(Mode::AbsurdServerTiming, HTTP_SCENARIO, HTTP_BUDGET);
    assert_eq!(o.code, 0, "the responses were fine\n{}", o.stderr);
    let e = &o.json.as_ref().unwrap()["run"]["endpoints"][0];
    assert!(e["successes"].as_u64().unwrap() > 0);
    let st = e["server_timing"]
        .as_object()
        .expect("server_timing by name");
    let names: Vec<&str> = st.keys().map(String::as_str).collect();
    for absurd in ["db", "cache", "app", "inf", "bad"] {
        assert!(!names.contains(&absurd), "{absurd} was taken: {names:?}");
    }
    assert!(names.contains(&"ok"), "{names:?}");
    assert!(
        names.len() <= 32,
        "new names per response are capped: {}",
        names.len()
    );
    assert!(names.iter().all(|n| n.len() <= 64));
    for (name, m) in st {
        for (k, v) in m.as_object().unwrap() {
            assert!(
                v.as_f64().is_some_and(f64::is_finite),
                "{name}.{k} = {v} (an infinity serialises as null)"
            );
        }
    }
    assert!((st["ok"]["mean_ms"].as_f64().unwrap() - 2.5).abs() < 1e-9);
    // The history took the run, and gives it back.
    let list = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["history", "show", "1", "--db"])
        .arg(o.db.path().join("history.db"))
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
}

#[test]
fn a_gzip_bomb_is_never_inflated() {
    let _machine = crate::common::shared();
    let o = survives(Mode::GzipBomb, HTTP_SCENARIO, HTTP_BUDGET);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let e = &o.json.as_ref().unwrap()["run"]["endpoints"][0];
    let (ok, bytes) = (
        e["successes"].as_u64().unwrap(),
        e["bytes_received"].as_u64().unwrap(),
    );
    assert!(ok > 0);
    // Counted as sent: about 10 KB a response, not the 10 MB it would inflate to.
    assert!(bytes / ok < 100_000, "{bytes} bytes for {ok} responses");
}

#[test]
fn an_sse_line_of_100_megabytes_is_cut_at_the_event_limit() {
    let _machine = crate::common::shared();
    let o = survives(Mode::SseHugeLine, LLM_SCENARIO, LLM_BUDGET);
    fails_as_dead(Mode::SseHugeLine, &o, "event_too_large");
}

#[test]
fn retry_after_of_every_odd_shape_never_panics() {
    let _machine = crate::common::shared();
    let o = survives(Mode::OddRetryAfter, LLM_SCENARIO, LLM_BUDGET);
    fails_as_dead(Mode::OddRetryAfter, &o, "rate_limited");
    let e = &o.json.as_ref().unwrap()["run"]["endpoints"][0];
    assert_eq!(
        e["requests"].as_u64(),
        Some(6),
        "every request was made and counted"
    );
    if let Some(r) = e["llm"]["retry_after"].as_object() {
        let max = r["max_s"].as_f64().unwrap();
        assert!(max <= 86_400.0, "a huge Retry-After is capped: {max}");
    }
}

/// A worker that dies for any reason never turns into a pass: the run is reported, saved as
/// incomplete, never a baseline, and gate exits 3 naming what died.
fn dies(fault: &str, expect: &str) {
    let server = serve(Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yml"), HTTP_SCENARIO).unwrap();
    let db = dir.path().join("history.db");
    let json = dir.path().join("run.json");
    let out = run_cmd(dir.path(), server.addr, &db, &json)
        .env("GATE_INJECT_FAULT", fault)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{fault}: exit 3\n{stderr}");
    assert!(
        stderr.contains("error: the run did not measure") && stderr.contains(expect),
        "{fault}: says what died and why\n{stderr}"
    );
    assert!(
        stderr.contains("marked partial"),
        "{fault}: saved as partial\n{stderr}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["run"]["complete"], false, "{fault}");
    assert_eq!(doc["pass"], false, "{fault}");
    assert!(
        doc["run"]["faults"][0].as_str().unwrap().contains(expect),
        "{fault}: {}",
        doc["run"]["faults"]
    );
    // In the history: partial, with its fault, and never a baseline.
    let list = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["history", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("partial"), "{list}");
    let store = gate::store::Store::open(Path::new(&db)).unwrap();
    let runs = store.list(&gate::store::ListFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].complete);
    let stored = store.load(runs[0].id).unwrap();
    assert!(
        stored.record.faults[0].contains(expect),
        "{:?}",
        stored.record.faults
    );
}

#[test]
fn a_virtual_user_that_panics_ends_the_run_with_exit_3() {
    let _machine = crate::common::shared();
    dies("task-panic", "a virtual user panicked");
}

#[test]
fn a_load_thread_that_panics_ends_the_run_with_exit_3() {
    let _machine = crate::common::shared();
    dies("thread-panic", "load thread panicked");
}

/// With RUST_BACKTRACE=1 (as on many CI machines), a panic or an error never prints a header
/// value from `${ENV}`, an API key or a token.
#[test]
fn secrets_stay_out_of_panics_and_errors() {
    let _machine = crate::common::shared();
    const SECRET: &str = "s3cr3t-d0-n0t-pr1nt-7f3a";
    let server = serve(Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yml"),
        "name: secret\nrequest: { method: GET, url: /x, headers: { Authorization: \"Bearer ${HOSTILE_SECRET}\", X-Api-Key: \"${HOSTILE_SECRET}\" }, timeout: 2s }\nload: { users: 2, duration: 1s, warmup: 0s }\n",
    )
    .unwrap();
    let db = dir.path().join("history.db");
    let json = dir.path().join("run.json");
    for (fault, secret) in [
        ("task-panic", SECRET.to_string()),
        ("thread-panic", SECRET.to_string()),
        // A value that is not a valid header value: every request fails before it is sent.
        ("none", format!("{SECRET}\nInjected: yes")),
    ] {
        let out = run_cmd(dir.path(), server.addr, &db, &json)
            .env("RUST_BACKTRACE", "1")
            .env("HOSTILE_SECRET", &secret)
            .env("GATE_INJECT_FAULT", fault)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(out.status.code(), Some(0), "{fault}: never a pass\n{all}");
        assert!(
            !all.contains(SECRET),
            "{fault}: the secret was printed\n{all}"
        );
        let doc = std::fs::read(&json).unwrap();
        assert!(
            !String::from_utf8_lossy(&doc).contains(SECRET),
            "{fault}: the secret is in the JSON"
        );
    }
    let db_bytes = std::fs::read(&db).unwrap();
    assert!(
        !db_bytes
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes()),
        "the secret is in the history database"
    );
}
