//! LLM benchmarks end to end: the real `gate` binary against the sample service's mock provider
//! (`src/demo/llm.rs`) on loopback. Runs are bounded by request budgets of a few requests with
//! `max_tokens` kept small, so each test takes a few seconds. Timings are asserted only where the
//! issue asks for a tolerance (TTFT 300 ms ± 5 ms).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Output;

use gate::demo::{DemoOptions, DemoServer};

use crate::common::{gate_in, header_cells, text};

/// The key the mock requires; the secret-leak test greps every output for it.
const KEY: &str = "sk-gate-test-7c1e0b5a9d";

fn service() -> DemoServer {
    DemoServer::start(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        DemoOptions::default(),
    )
    .expect("sample service starts")
}

/// A suite directory aimed at `target`, with the given scenario files.
fn suite(target: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yml"), format!("target: {target}\n")).unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

fn run(dir: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let json = dir.join("run.json");
    let mut args = vec![
        "run",
        "--suite",
        dir.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args(&args)
        .current_dir(dir)
        .env("CI", "true")
        .env("GATE_DB", dir.join("history.db"))
        .env("MOCK_KEY", KEY)
        .env_remove("GATE_TARGET");
    let out = cmd.output().expect("gate runs");
    let doc = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON document\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
    (out, doc)
}

fn endpoint<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["run"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name}"))
}

/// The mock's input count: words of every message / 0.75, rounded (see `src/demo/llm.rs`).
fn mock_input_tokens(words: usize) -> u64 {
    (words as f64 / 0.75).round().max(1.0) as u64
}

#[test]
fn two_model_comparison_prints_the_table_counts_usage_and_never_leaks_the_key() {
    let _machine = crate::common::shared();
    let svc = service();
    let dir = suite(
        &svc.url(),
        &[(
            "chat.yml",
            "name: chat\n\
             llm:\n  provider: anthropic\n  api_key: ${MOCK_KEY}\n  models: [mock-fast, mock-smart]\n  \
             prompt: one two three four five six\n  max_tokens: 12\n  \
             prices: { mock-fast: { input: 1, output: 5 }, mock-smart: { input: 15, output: 75 } }\n  \
             daily_requests: 1000\n\
             load: { concurrency: 2, requests: 6 }\n",
        )],
    );
    let (out, doc) = run(dir.path(), &[]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        header_cells(&stdout, "Model"),
        [
            "Model",
            "P50",
            "P95",
            "TTFT p50/p95",
            "Avg tok/s",
            "Total tokens",
            "Cost",
            "Errors"
        ],
        "{stdout}"
    );
    for model in ["mock-fast", "mock-smart"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("│ chat/{model}")) && l.contains(" in / "))
            .unwrap_or_else(|| panic!("no model row for {model}\n{stdout}"));
        // Usage-based counts equal the mock's: 6 requests × 12 tokens (max_tokens caps the
        // mock's natural length), 6 × the input words / 0.75.
        assert!(
            row.contains(&format!("{} in / 72 out", 6 * mock_input_tokens(6))),
            "{row}"
        );
        assert!(!row.contains("(est.)"), "{row}");
        let e = endpoint(&doc, &format!("chat/{model}"));
        assert_eq!(e["successes"], 6);
        assert_eq!(e["llm"]["output_tokens"], 72);
        assert_eq!(e["llm"]["estimated_requests"], 0);
        assert_eq!(e["llm"]["ttft"]["count"], 6);
    }
    // Cost from the price table: mock-fast 6 × (8 × $1 + 12 × $5) / 1M.
    let fast = &endpoint(&doc, "chat/mock-fast")["llm"]["cost"];
    let total = fast["total_usd"].as_f64().unwrap();
    assert!((total - 6.0 * (8.0 + 60.0) / 1e6).abs() < 1e-12, "{fast}");
    assert!(
        (fast["monthly_usd"].as_f64().unwrap() - total / 6.0 * 1000.0 * 30.0).abs() < 1e-9,
        "{fast}"
    );
    assert!(stdout.contains("projected $"), "{stdout}");
    // The slower model's TTFT is the larger, as its profile says.
    let ttft = |m: &str| {
        endpoint(&doc, &format!("chat/{m}"))["llm"]["ttft"]["p50_ms"]
            .as_f64()
            .unwrap()
    };
    assert!(ttft("mock-smart") > ttft("mock-fast") + 100.0);
    // The key reached the mock (it refuses requests without one) and nothing else: not the
    // outputs, not the JSON document, not a byte of the history database.
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    let json = std::fs::read(dir.path().join("run.json")).unwrap();
    assert!(!String::from_utf8_lossy(&json).contains(KEY));
    let mut db_files = 0;
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().contains("history.db") {
            db_files += 1;
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                "{} holds the API key",
                p.display()
            );
        }
    }
    assert!(db_files >= 1, "the run was saved");
    // And the history shows the run back with its LLM figures.
    let show = gate_in(
        dir.path(),
        &dir.path().join("history.db"),
        &["history", "show", "1"],
    );
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    assert!(!text(&show.stdout).contains(KEY));
    assert!(
        text(&show.stdout).contains("LLM models"),
        "{}",
        text(&show.stdout)
    );
}

#[test]
fn a_ramp_finds_the_knee_where_the_model_runs_out_of_capacity() {
    let _machine = crate::common::shared();
    let svc = service();
    // mock-fast serves 8 at once and answers 429 past that.
    let dir = suite(
        &svc.url(),
        &[(
            "ramp.yml",
            "name: ramp\n\
             llm:\n  provider: openai\n  api_key: ${MOCK_KEY}\n  models: [mock-fast]\n  \
             prompt: hello there\n  max_tokens: 10\n\
             load: { concurrency: [2, 8, 16], requests: 16 }\n",
        )],
    );
    let (out, doc) = run(dir.path(), &["--no-save"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("ramp ramp/mock-fast: knee at 16 concurrent"),
        "{stdout}"
    );
    // An LLM ramp says how many output tokens a second each step delivered.
    assert_eq!(
        header_cells(&stdout, "Concurrency"),
        [
            "Concurrency",
            "p50",
            "p95",
            "Throughput",
            "tok/s",
            "Errors",
            ""
        ],
        "{stdout}"
    );
    let knee_row = stdout
        .lines()
        .find(|l| l.contains("◀ knee"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        knee_row.trim_start_matches('│').trim().starts_with("16"),
        "{knee_row}"
    );
    let step = endpoint(&doc, "ramp/mock-fast@16");
    assert!(
        step["errors"]["rate_limited"].as_u64().unwrap() > 0,
        "{step}"
    );
    assert!(step["llm"]["retry_after"]["count"].as_u64().unwrap() > 0);
    assert_eq!(endpoint(&doc, "ramp/mock-fast@8")["failures"], 0);

    // The provider's rate-limit headers: headroom shrinks as the ramp climbs, to none where
    // the 429s start; the quota itself is the same at every step.
    let headroom = |name: &str, kind: &str| {
        let e = endpoint(&doc, name);
        e["llm"]["rate_limits"]
            .as_array()
            .and_then(|a| a.iter().find(|h| h["kind"] == kind).cloned())
            .unwrap_or_else(|| panic!("no {kind} headroom: {e}"))
    };
    let low = headroom("ramp/mock-fast@2", "requests");
    let high = headroom("ramp/mock-fast@16", "requests");
    assert!(low["remaining_min"].as_u64().unwrap() > 0, "{low}");
    assert_eq!(high["remaining_min"], 0, "{high}");
    assert_eq!(low["limit"], high["limit"]);
    assert!(
        headroom("ramp/mock-fast@2", "tokens")["remaining_min"]
            .as_u64()
            .unwrap()
            > headroom("ramp/mock-fast@16", "tokens")["remaining_min"]
                .as_u64()
                .unwrap()
    );
    assert!(
        stdout.contains("LLM rate-limit headroom per ramp step"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("ramp/mock-fast@16:") && l.contains("× 429"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("requests 0/"), "{line}");
    assert!(
        !line.contains(" 0 × 429"),
        "the 429s are next to it: {line}"
    );
}

#[test]
fn ttft_is_the_first_content_delta_not_the_prelude() {
    let _machine = crate::common::shared();
    let svc = service();
    // mock-prelude: the role prelude / message_start after 1 ms, the first token at 300 ms.
    let scenario = |provider: &str| {
        format!(
            "name: {provider}\n\
             llm:\n  provider: {provider}\n  api_key: ${{MOCK_KEY}}\n  models: [mock-prelude, mock-chunky]\n  \
             prompt: hello\n  max_tokens: 6\n\
             load: {{ concurrency: 2, requests: 4 }}\n"
        )
    };
    let dir = suite(
        &svc.url(),
        &[
            ("a.yml", &scenario("anthropic")),
            ("o.yml", &scenario("openai")),
            (
                // The open model: arrivals at a fixed rate, a request budget.
                "p.yml",
                "name: open\n\
                 llm:\n  provider: openai\n  api_key: ${MOCK_KEY}\n  models: [mock-fast]\n  \
                 prompt: hello\n  max_tokens: 4\n\
                 load: { rate: 20/s, requests: 6 }\n",
            ),
        ],
    );
    let (out, doc) = run(dir.path(), &["--no-save"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for provider in ["anthropic", "openai"] {
        let e = endpoint(&doc, &format!("{provider}/mock-prelude"));
        let l = &e["llm"];
        for q in ["p50_ms", "p95_ms", "max_ms"] {
            let t = l["ttft"][q].as_f64().unwrap();
            // 300 ms is the first token; the prelude came at 1 ms and the last token at
            // 350 ms, so anything in between is the right event, late only by the machine.
            assert!((295.0..=340.0).contains(&t), "{provider} TTFT {q} = {t} ms");
        }
        // The headers (TTFB) come long before the first token.
        assert!(e["ttfb"]["p95_ms"].as_f64().unwrap() < 100.0, "{e}");
        assert_eq!(l["output_tokens"], 24);
        // TPOT = (E2E − TTFT) / (tokens − 1): 5 gaps of 10 ms at 100 tok/s.
        let tpot = l["tpot"]["p50_ms"].as_f64().unwrap();
        assert!((8.0..=15.0).contains(&tpot), "{provider} TPOT {tpot}");
        // mock-chunky packs 1, 2, 3 tokens per delta: usage says 6, deltas would say 3.
        let chunky = &endpoint(&doc, &format!("{provider}/mock-chunky"))["llm"];
        assert_eq!(chunky["output_tokens"], 24, "{chunky}");
        assert_eq!(chunky["estimated_requests"], 0);
        assert_eq!(
            chunky["itl"]["count"],
            4 * 2,
            "two gaps between three deltas"
        );
    }
    let open = endpoint(&doc, "open/mock-fast");
    assert_eq!(open["load"]["model"], "open");
    assert_eq!(open["successes"], 6);
}

/// A server that answers every request with a 500.
fn always_500() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head and the (small, Content-Length) body, then answer and close.
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn every_error_kind_is_counted_as_its_kind_and_never_as_a_success() {
    let _machine = crate::common::shared();
    let svc = service();
    let url = svc.url();
    let five_hundred = always_500();
    let llm = |name: &str, provider: &str, model: &str, extra: &str, load: &str| {
        format!(
            "name: {name}\n\
             llm:\n  provider: {provider}\n  api_key: ${{MOCK_KEY}}\n  models: [{model}]\n  \
             prompt: hello\n  max_tokens: 20\n{extra}\
             load: {load}\n"
        )
    };
    let files = [
        // Past capacity: mock-fast answers 429 with retry-after, mock-smart 529 (Anthropic)
        // or 503 (OpenAI's "overloaded").
        (
            "a-429.yml",
            llm(
                "rl",
                "anthropic",
                "mock-fast",
                "",
                "{ concurrency: 12, requests: 12 }",
            ),
        ),
        (
            "b-529.yml",
            llm(
                "ol",
                "anthropic",
                "mock-smart",
                "",
                "{ concurrency: 8, requests: 8 }",
            ),
        ),
        (
            "c-503.yml",
            llm(
                "ol-openai",
                "openai",
                "mock-smart",
                "",
                "{ concurrency: 8, requests: 8 }",
            ),
        ),
        (
            "d-500.yml",
            llm(
                "five",
                "openai",
                "mock-fast",
                &format!("  base_url: {five_hundred}\n"),
                "{ concurrency: 1, requests: 2 }",
            ),
        ),
        (
            "e-first.yml",
            llm(
                "first",
                "anthropic",
                "mock-fast",
                "  headers: { x-mock-ttft-ms: \"2000\" }\n  timeouts: { first_token: 300ms }\n",
                "{ concurrency: 2, requests: 2 }",
            ),
        ),
        (
            "f-between.yml",
            llm(
                "between",
                "openai",
                "mock-fast",
                "  headers: { x-mock-tokens-per-sec: \"1\" }\n  timeouts: { between_tokens: 200ms }\n",
                "{ concurrency: 2, requests: 2 }",
            ),
        ),
        (
            "g-stream-error.yml",
            llm(
                "midstream",
                "anthropic",
                "mock-midstream-error",
                "",
                "{ concurrency: 2, requests: 2 }",
            ),
        ),
        (
            "h-stream-error.yml",
            llm(
                "midstream-openai",
                "openai",
                "mock-midstream-error",
                "",
                "{ concurrency: 2, requests: 2 }",
            ),
        ),
        (
            "i-truncated.yml",
            llm(
                "cut",
                "anthropic",
                "mock-truncated",
                "",
                "{ concurrency: 2, requests: 2 }",
            ),
        ),
        (
            "j-truncated.yml",
            llm(
                "cut-openai",
                "openai",
                "mock-truncated",
                "",
                "{ concurrency: 2, requests: 2 }",
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let dir = suite(&url, &files);
    let (out, doc) = run(dir.path(), &["--no-save"]);
    let stdout = text(&out.stdout);
    // Endpoints where every request failed fail the gate (gate's default checks), each with
    // its reason in the table: a gate is never green on a dead target.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for dead in ["five/mock-fast", "first/mock-fast", "cut/mock-truncated"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("│ {dead} ")))
            .unwrap_or_else(|| panic!("{dead}\n{stdout}"));
        assert!(row.contains("❌ FAIL no successful request"), "{row}");
    }
    let kinds = |name: &str| endpoint(&doc, name)["errors"].clone();
    let only = |name: &str, kind: &str, at_least: u64| {
        let e = endpoint(&doc, name);
        let errors = e["errors"].as_object().unwrap();
        assert_eq!(errors.len(), 1, "{name}: {}", kinds(name));
        let n = errors[kind].as_u64().unwrap_or(0);
        assert!(n >= at_least, "{name}: {}", kinds(name));
        // A failure is never also a success.
        assert_eq!(
            e["successes"].as_u64().unwrap() + n,
            e["requests"].as_u64().unwrap(),
            "{name}: {e}"
        );
    };
    only("rl/mock-fast", "rate_limited", 1);
    let rl = &endpoint(&doc, "rl/mock-fast")["llm"]["retry_after"];
    assert!(
        rl["count"].as_u64().unwrap() >= 1 && rl["max_s"] == 1.0,
        "{rl}"
    );
    only("ol/mock-smart", "overloaded", 1);
    only("ol-openai/mock-smart", "overloaded", 1);
    only("five/mock-fast", "http_5xx", 2);
    only("first/mock-fast", "timeout_first_token", 2);
    only("between/mock-fast", "timeout_between_tokens", 2);
    for name in ["midstream", "midstream-openai"] {
        only(&format!("{name}/mock-midstream-error"), "stream_error", 2);
    }
    for name in ["cut", "cut-openai"] {
        only(&format!("{name}/mock-truncated"), "truncated", 2);
    }
    assert!(
        stdout.contains("errors by kind: timeout_first_token 2"),
        "{stdout}"
    );
}

#[test]
fn bad_llm_scenarios_are_bad_input() {
    let _machine = crate::common::shared();
    let dir = suite(
        "http://127.0.0.1:9",
        &[(
            "x.yml",
            "name: x\nllm:\n  provider: openai\n  api_key: sk-literal-key\n  models: [m]\n  prompt: hi\n",
        )],
    );
    let out = gate_in(
        dir.path(),
        &dir.path().join("h.db"),
        &["run", "--suite", "."],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("x.yml:4:12: llm.api_key: write the key as `${ENV_VAR}`"),
        "{err}"
    );
    assert!(!err.contains("sk-literal-key"), "{err}");
}

/// A listener that never accepts, with an accept queue of one: the first connection (gate's
/// reachability check) fills it, and later SYNs are dropped, so a connect hangs as it does
/// towards an overloaded host.
fn never_accepting() -> (tokio::runtime::Runtime, tokio::net::TcpListener, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        s.listen(0).unwrap()
    });
    let url = format!("http://{}", listener.local_addr().unwrap());
    (rt, listener, url)
}

#[test]
fn a_connect_that_hangs_is_a_connect_timeout() {
    let _machine = crate::common::shared();
    let (_rt, _listener, url) = never_accepting();
    let dir = suite(
        &url,
        &[(
            "c.yml",
            "name: c\nllm:\n  provider: anthropic\n  api_key: ${MOCK_KEY}\n  models: [m]\n  prompt: hi\n  \
             timeouts: { connect: 200ms }\nload: { concurrency: 1, requests: 2 }\n",
        )],
    );
    let (out, doc) = run(dir.path(), &["--no-save"]);
    let e = endpoint(&doc, "c/m");
    assert_eq!(
        e["errors"]["timeout_connect"],
        2,
        "{e}\n{}",
        text(&out.stderr)
    );
    assert_eq!(e["successes"], 0);
}

#[test]
fn a_ttft_regression_between_two_runs_fails_the_gate() {
    let _machine = crate::common::shared();
    let svc = service();
    // Same scenario definition both times (the header's text is `${MOCK_TTFT}`); only the
    // environment variable, and with it the mock's TTFT, differs.
    let dir = suite(
        &svc.url(),
        &[(
            "chat.yml",
            "name: chat\n\
             llm:\n  provider: anthropic\n  api_key: ${MOCK_KEY}\n  models: [mock-fast]\n  \
             headers: { x-mock-ttft-ms: \"${MOCK_TTFT}\" }\n  prompt: hello\n  max_tokens: 4\n\
             load: { concurrency: 8, requests: 40 }\n",
        )],
    );
    let db = dir.path().join("history.db");
    for ttft in ["100", "200"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gate"))
            .args(["run", "--suite", "."])
            .current_dir(dir.path())
            .env("CI", "true")
            .env("GATE_DB", &db)
            .env("MOCK_KEY", KEY)
            .env("MOCK_TTFT", ttft)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let out = gate_in(dir.path(), &db, &["compare", "1", "2", "--suite", "."]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("│ {name} ")))
            .unwrap_or_else(|| panic!("no row {name}\n{stdout}"))
            .to_string()
    };
    assert!(
        row("chat/mock-fast · TTFT").contains("❌ regression"),
        "{stdout}"
    );
    assert!(row("chat/mock-fast · tok/s").contains("tok/s"), "{stdout}");
    let md = gate_in(
        dir.path(),
        &db,
        &["compare", "1", "2", "--suite", ".", "--format", "markdown"],
    );
    assert!(
        text(&md.stdout).contains("| chat/mock-fast · TTFT |"),
        "{}",
        text(&md.stdout)
    );
}

/// Two providers in one scenario, each on its own server with its own key: every request goes
/// to its model's provider, in that provider's shape, with that provider's key, and neither key
/// leaks into the outputs, the JSON document or the history.
#[test]
fn providers_side_by_side_each_get_their_own_requests_and_keys() {
    let _machine = crate::common::shared();
    const KEY_A: &str = "sk-ant-side-by-side-A1b2";
    const KEY_B: &str = "sk-oai-side-by-side-C3d4";
    let (claude, gpt, run) = two_providers_run(
        "side",
        "models: [claude/mock-fast, gpt/mock-smart]",
        "{ concurrency: 2, requests: 4 }",
        [KEY_A, KEY_B],
    );
    let doc = &run.doc;
    let a = endpoint(doc, "side/claude/mock-fast");
    let b = endpoint(doc, "side/gpt/mock-smart");
    assert_eq!(a["llm"]["provider"], "anthropic");
    assert_eq!(b["llm"]["provider"], "openai");
    for e in [a, b] {
        assert_eq!(e["successes"], 4, "{e}");
        assert_eq!(e["failures"], 0, "{e}");
    }
    // Each server saw only its provider's requests, for its model, with its key.
    let (la, lb) = (llm_lines(&claude), llm_lines(&gpt));
    assert!(la.len() >= 4 && lb.len() >= 4, "{la:?} {lb:?}");
    assert!(
        la.iter()
            .all(|l| l == "llm anthropic model=mock-fast key=…A1b2"),
        "{la:?}"
    );
    assert!(
        lb.iter()
            .all(|l| l == "llm openai model=mock-smart key=…C3d4"),
        "{lb:?}"
    );
    run.assert_never_written(&[KEY_A, KEY_B]);
}

/// A scenario with two providers, `claude` (Anthropic, key `$KEY_A`) and `gpt` (OpenAI, key
/// `$KEY_B`), at the given base URLs; `models` is its `models:` or `fallback:` line.
fn two_providers(name: &str, models: &str, load: &str, claude: &str, gpt: &str) -> String {
    format!(
        "name: {name}\nllm:\n  providers:\n    claude: {{ provider: anthropic, base_url: \"{claude}\", api_key: \"${{KEY_A}}\" }}\n    gpt: {{ provider: openai, base_url: \"{gpt}\", api_key: \"${{KEY_B}}\" }}\n  {models}\n  prompt: Say hello\n  max_tokens: 16\nload: {load}\n"
    )
}

/// Two mock providers on servers of their own, and one run of [`two_providers`] against them
/// with `keys` as `$KEY_A` and `$KEY_B`.
fn two_providers_run(
    name: &str,
    models: &str,
    load: &str,
    keys: [&str; 2],
) -> (DemoServer, DemoServer, KeyedRun) {
    let (claude, gpt) = (service(), service());
    let scenario = two_providers(name, models, load, &claude.url(), &gpt.url());
    let run = run_with_keys(&scenario, &[("KEY_A", keys[0]), ("KEY_B", keys[1])]);
    (claude, gpt, run)
}

/// The mock's request log lines (`llm PROVIDER model=M key=…TAIL`).
fn llm_lines(s: &DemoServer) -> Vec<String> {
    s.request_log()
        .into_iter()
        .filter(|l| l.starts_with("llm "))
        .collect()
}

/// One `gate run` of a suite holding only `scenario` (no suite target: each provider says
/// where it is), with `keys` in the environment.
struct KeyedRun {
    dir: tempfile::TempDir,
    doc: serde_json::Value,
    stdout: String,
    stderr: String,
}

fn run_with_keys(scenario: &str, keys: &[(&str, &str)]) -> KeyedRun {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("side.yml"), scenario).unwrap();
    let json = dir.path().join("run.json");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args([
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ])
    .current_dir(dir.path())
    .env("CI", "true")
    .env("GATE_DB", dir.path().join("history.db"))
    .env_remove("GATE_TARGET");
    for (k, v) in keys {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let doc = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    KeyedRun {
        dir,
        doc,
        stdout,
        stderr,
    }
}

impl KeyedRun {
    /// None of `keys` in the output, the JSON document or the history.
    fn assert_never_written(&self, keys: &[&str]) {
        let json_text = std::fs::read_to_string(self.dir.path().join("run.json")).unwrap();
        for key in keys {
            assert!(!self.stdout.contains(key) && !self.stderr.contains(key));
            assert!(!json_text.contains(key));
            for f in std::fs::read_dir(self.dir.path()).unwrap() {
                let p = f.unwrap().path();
                if p.to_string_lossy().contains("history.db") {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
                }
            }
        }
    }
}

/// Issue 14: a fallback chain across providers. Claude through an Anthropic-shaped mock that
/// takes 4 requests at a time and answers the rest 529 "overloaded"; those move on to GPT
/// through an OpenAI-shaped mock on another server, with the other key. Every request is
/// served, by one provider or the other, and each server sees only its own API and key.
#[test]
fn a_fallback_chain_crosses_providers_each_with_its_own_url_and_key() {
    let _machine = crate::common::shared();
    const KEY_A: &str = "sk-ant-chain-A9z8";
    const KEY_B: &str = "sk-oai-chain-B7y6";
    let (claude, gpt, run) = two_providers_run(
        "chain",
        "fallback: [claude/mock-smart, gpt/mock-fast]",
        "{ concurrency: 8, requests: 24 }",
        [KEY_A, KEY_B],
    );
    let e = endpoint(&run.doc, "chain");
    assert_eq!(e["successes"], 24, "{e}");
    assert_eq!(e["failures"], 0, "{e}");
    let tiers = e["llm"]["tiers"].as_array().expect("tiers");
    assert_eq!(tiers[0]["model"], "claude/mock-smart");
    assert_eq!(tiers[1]["model"], "gpt/mock-fast");
    let served = |t: usize| tiers[t]["served"].as_u64().unwrap();
    // 8 users against a capacity of 4: some requests are turned away and served by GPT.
    assert!(served(0) >= 1 && served(1) >= 1, "{tiers:?}");
    assert_eq!(served(0) + served(1), 24, "{tiers:?}");
    assert!(
        tiers[0]["failed_over"].as_u64().unwrap() >= served(1),
        "{tiers:?}"
    );
    let (la, lb) = (llm_lines(&claude), llm_lines(&gpt));
    assert!(
        !la.is_empty()
            && la
                .iter()
                .all(|l| l == "llm anthropic model=mock-smart key=…A9z8"),
        "{la:?}"
    );
    assert!(
        lb.len() as u64 >= served(1)
            && lb
                .iter()
                .all(|l| l == "llm openai model=mock-fast key=…B7y6"),
        "{lb:?}"
    );
    run.assert_never_written(&[KEY_A, KEY_B]);
}

/// Every provider of a chain is checked before any load: an unreachable second provider is one
/// line naming it, a hint about base_url, and exit 3.
#[test]
fn a_chain_whose_second_provider_is_down_exits_3_naming_it() {
    let _machine = crate::common::shared();
    let claude = service();
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let scenario = two_providers(
        "chain",
        "fallback: [claude/mock-smart, gpt/mock-fast]",
        "{ concurrency: 2, requests: 4 }",
        &claude.url(),
        &format!("http://{closed}"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chain.yml"), scenario).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["run", "--suite", dir.path().to_str().unwrap()])
        .current_dir(dir.path())
        .env("GATE_DB", dir.path().join("history.db"))
        .env("KEY_A", "a")
        .env("KEY_B", "b")
        .env_remove("GATE_TARGET")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the target http://{closed}"))
            && stderr.contains("llm.providers"),
        "{stderr}"
    );
    // Nothing was sent to the first provider either.
    assert!(
        !claude.request_log().iter().any(|l| l.starts_with("llm ")),
        "{:?}",
        claude.request_log()
    );
}
