//! End-to-end tests: the real `gate` binary against the real sample service on loopback.
//! Load runs are short (≤ ~1.5 s each) and bounded; assertions are about behaviour, not speed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gate::demo::{DemoOptions, DemoServer};

use crate::common::text;

/// A history database shared by the tests of this process that do not bring their own, so no
/// test writes into the repository's `.gate/`.
fn scratch_db() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static DB: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DB.get_or_init(|| {
        DIR.get_or_init(|| tempfile::tempdir().unwrap())
            .path()
            .join("history.db")
    })
}

fn gate_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CI", "true")
        .env("GATE_DB", scratch_db())
        .env_remove("GATE_TARGET")
        .env_remove("GITHUB_HEAD_REF")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("API_TOKEN");
    cmd
}

fn gate(args: &[&str]) -> Output {
    gate_cmd(args).output().expect("gate runs")
}

fn service(opts: DemoOptions) -> DemoServer {
    DemoServer::start("127.0.0.1:0".parse::<SocketAddr>().unwrap(), opts)
        .expect("sample service starts")
}

/// A scratch directory with the given files.
fn suite_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn run_reports_every_endpoint_and_writes_a_decodable_json_document() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let out = gate(&[
        "run",
        "--suite",
        "scenarios",
        "--target",
        &svc.url(),
        "--duration",
        "700ms",
        "--warmup",
        "100ms",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    for name in [
        "products-list",
        "product-detail",
        "create-order",
        "user-orders",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} row in\n{stdout}"));
        assert!(line.contains("✅ PASS"), "{line}");
    }
    for col in [
        "Endpoint",
        "p50",
        "p95",
        "p99",
        "Throughput",
        "Errors",
        "Status",
    ] {
        assert!(stdout.contains(col), "column {col}");
    }

    let doc = read_json(&json);
    assert_eq!(doc["format"], "gate-run");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["pass"], true);
    assert_eq!(doc["run"]["complete"], true);
    let endpoints = doc["run"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 4);
    for e in endpoints {
        let name = e["name"].as_str().unwrap();
        let lat = &e["latency"];
        let count = lat["count"].as_u64().unwrap();
        assert!(count > 10, "{name}: {count} samples");
        assert_eq!(e["successes"].as_u64().unwrap(), count);
        let p = |k: &str| lat[k].as_f64().unwrap();
        assert!(
            p("min_ms") <= p("p50_ms") && p("p50_ms") <= p("p90_ms") && p("p90_ms") <= p("p95_ms")
        );
        assert!(
            p("p95_ms") <= p("p99_ms")
                && p("p99_ms") <= p("p999_ms")
                && p("p999_ms") <= p("max_ms")
        );
        assert!(e["ttfb"]["p50_ms"].as_f64().unwrap() <= p("p50_ms"));
        assert!(e["throughput_rps"].as_f64().unwrap() > 0.0);
        // The histogram is standard HdrHistogram V2: decoding it gives back the same counts.
        let h = gate::record::decode_histogram(lat["histogram"].as_str().unwrap()).unwrap();
        assert_eq!(h.len(), count, "{name}");
        assert_eq!(h.value_at_quantile(0.5) as f64 / 1000.0, p("p50_ms"));
        // The sample service reports Server-Timing, and gate aggregates it.
        for metric in ["db", "app"] {
            let st = &e["server_timing"][metric];
            assert_eq!(st["count"].as_u64(), Some(count), "{name} {metric}");
            assert!(st["mean_ms"].as_f64().unwrap() > 0.0);
        }
        let status = if name == "create-order" { "201" } else { "200" };
        assert_eq!(e["status_counts"][status].as_u64(), Some(count), "{name}");
        assert_eq!(e["errors"], serde_json::json!({}));
        assert_eq!(e["scenario_hash"].as_str().unwrap().len(), 16);
    }
}

#[test]
fn a_broken_threshold_fails_the_gate_with_exit_1_and_says_which() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let dir = suite_dir(&[(
        "fast.yml",
        "name: impossible\nrequest: { url: /api/v1/products/1 }\nload: { users: 2, duration: 400ms, warmup: 0s }\nthresholds: [ \"p50 < 1us\", \"error_rate < 1%\" ]\n",
    )]);
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("❌ FAIL p50"), "{stdout}");
    assert!(stdout.contains("≥ 1µs"), "{stdout}");
    assert!(
        !stdout.contains("error_rate"),
        "only the broken threshold is named: {stdout}"
    );
}

#[test]
fn failures_are_classified_and_never_abort_the_run() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let dir = suite_dir(&[
        (
            "missing.yml",
            "name: missing-product\nrequest: { url: \"/api/v1/products/{{ random_int(900000, 900100) }}\" }\nexpect: { status: 200 }\nload: { users: 2, duration: 400ms, warmup: 0s }\nthresholds: [ \"error_rate < 1%\" ]\n",
        ),
        (
            "wrong.yml",
            "name: wrong-status\nrequest: { url: /health }\nexpect: { status: 204 }\nload: { users: 1, duration: 300ms, warmup: 0s }\n",
        ),
        (
            "ok.yml",
            "name: zz-still-measured\nrequest: { url: /api/v1/products/1 }\nload: { users: 1, duration: 300ms, warmup: 0s }\n",
        ),
    ]);
    let json = dir.path().join("out.json");
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let doc = read_json(&json);
    let by_name = |n: &str| {
        doc["run"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .unwrap()
            .clone()
    };
    let missing = by_name("missing-product");
    assert!(missing["errors"]["http_4xx"].as_u64().unwrap() > 0);
    assert_eq!(missing["error_rate"], 1.0);
    assert_eq!(missing["successes"], 0);
    assert!(missing["status_counts"]["404"].as_u64().unwrap() > 0);
    let wrong = by_name("wrong-status");
    assert!(
        wrong["errors"]["expectation"].as_u64().unwrap() > 0,
        "200 where 204 was expected"
    );
    assert_eq!(
        doc["run"]["endpoints"][2]["name"], "wrong-status",
        "runs in file-name order"
    );
    assert!(
        by_name("zz-still-measured")["successes"].as_u64().unwrap() > 0,
        "the run goes on"
    );
    assert!(stdout.contains("errors by kind: http_4xx"), "{stdout}");
    assert!(stdout.contains("error_rate 100% ≥ 1%"), "{stdout}");
}

#[test]
fn an_unreachable_target_exits_3_naming_the_address() {
    let _machine = crate::common::shared();
    // Bind and drop to get a loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("http://127.0.0.1:{port}");
    let out = gate(&["run", "--suite", "scenarios", "--target", &target]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("cannot reach the target"), "{stderr}");
}

/// Every kind of bad input: one line naming file:line:col and field (or the flag), exit 2.
#[test]
fn bad_input_gets_a_located_one_line_error_and_exit_2() {
    let _machine = crate::common::shared();
    let cases: &[(&str, &str, &[&str])] = &[
        ("malformed-yaml", "name: x\nrequest: { url: /a\n", &[]),
        (
            "unknown-key",
            "name: x\nrequest:\n  url: /a\n  methd: GET\n",
            &[],
        ),
        (
            "bad-duration",
            "name: x\nrequest: { url: /a }\nload:\n  users: 2\n  duration: 60 seconds\n",
            &[],
        ),
        (
            "bad-threshold",
            "name: x\nrequest: { url: /a }\nthresholds:\n  - p95 << 3\n",
            &[],
        ),
        (
            "bad-url",
            "name: x\nrequest: { url: \"/products/{{ random_int(1, 9) }} x\" }\n",
            &[],
        ),
        (
            "unset-env",
            "name: x\nrequest:\n  url: /a\n  headers:\n    Authorization: \"Bearer ${API_TOKEN}\"\n",
            &[],
        ),
        (
            "bad-target-flag",
            "name: x\nrequest: { url: /a }\n",
            &["--target", "http//nope"],
        ),
        (
            "bad-duration-flag",
            "name: x\nrequest: { url: /a }\n",
            &["--duration", "5 seconds"],
        ),
    ];
    let mut transcript = String::new();
    for (name, yaml, extra) in cases {
        let dir = suite_dir(&[("scenario.yml", yaml)]);
        let file = dir.path().join("scenario.yml");
        let mut args = vec!["run", "--suite", file.to_str().unwrap()];
        if !extra.contains(&"--target") {
            args.extend(["--target", "http://127.0.0.1:9"]);
        }
        args.extend(extra.iter());
        let out = gate(&args);
        let stderr = text(&out.stderr).replace(dir.path().to_str().unwrap(), "<dir>");
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        transcript.push_str(&format!("{name}: {first}\n"));
    }
    insta::assert_snapshot!(transcript);
}

#[test]
fn clap_usage_errors_exit_2() {
    let _machine = crate::common::shared();
    let out = gate(&["run", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gate(&["serve-demo", "--regress", "slow-everything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("n-plus-one"),
        "lists the valid names"
    );
    let out = gate(&["serve-demo", "--stall", "5s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--stall"),
        "{}",
        text(&out.stderr)
    );
    let out = gate(&["serve-demo", "--addr", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("loopback"));
}

#[test]
fn secrets_from_the_environment_reach_the_wire_but_no_output() {
    let _machine = crate::common::shared();
    let svc = crate::common::Recorder::start();
    let secret = "sk-test-4f9a7c1e-do-not-leak";
    let dir = suite_dir(&[
        (
            "suite.yml",
            "defaults:\n  headers:\n    X-Api-Key: \"${GATE_TEST_SECRET}\"\n",
        ),
        (
            "a.yml",
            "name: with-secret\nrequest:\n  url: /api/v1/products/2\n  headers: { Authorization: \"Bearer ${GATE_TEST_SECRET}\" }\nload: { users: 1, duration: 300ms, warmup: 0s }\n",
        ),
    ]);
    let json = dir.path().join("out.json");
    let out = gate_cmd(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        svc.url(),
        "--json",
        json.to_str().unwrap(),
    ])
    .env("GATE_TEST_SECRET", secret)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Sent, from the scenario and from the suite's defaults.
    // (Connections gate opened and closed without a request leave an empty head.)
    let heads: Vec<String> = svc.heads().into_iter().filter(|h| !h.is_empty()).collect();
    assert!(!heads.is_empty());
    for head in &heads {
        assert!(
            head.contains(&format!("\r\nauthorization: bearer {secret}\r\n")),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\nx-api-key: {secret}\r\n")),
            "{head}"
        );
    }
    let doc = std::fs::read_to_string(&json).unwrap();
    assert!(doc.contains("with-secret"));
    for (what, body) in [
        ("stdout", text(&out.stdout)),
        ("stderr", text(&out.stderr)),
        ("json", doc),
    ] {
        assert!(!body.contains(secret), "secret leaked into {what}");
        assert!(
            !body.contains("sk-test"),
            "part of the secret leaked into {what}"
        );
    }
}

#[test]
fn open_model_sends_at_the_scheduled_rate() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let dir = suite_dir(&[(
        "rate.yml",
        "name: paced\nrequest: { url: /api/v1/products/3 }\nload: { rate: 200/s, duration: 1s, warmup: 0s, max_in_flight: 8 }\n",
    )]);
    let json = dir.path().join("out.json");
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let e = &read_json(&json)["run"]["endpoints"][0];
    assert_eq!(e["load"]["model"], "open");
    let n = e["requests"].as_u64().unwrap();
    // 200/s for 1 s is 200 arrivals; a closed loop against this fast service would send thousands.
    assert!((190..=201).contains(&n), "{n} requests");
    assert_eq!(e["dropped_arrivals"], 0);
}

/// A target slower than the arrival rate: latency counted from the schedule shows the backlog
/// (no coordinated omission), and the late starts are reported.
#[test]
fn open_model_counts_latency_from_the_schedule_when_the_target_falls_behind() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions {
        latency: Some(Duration::from_millis(20)),
        ..DemoOptions::default()
    });
    // One connection, 20 ms per request: at most 50/s served against 100/s scheduled.
    let dir = suite_dir(&[(
        "slow.yml",
        "name: behind\nrequest: { url: /api/v1/products/4 }\nload: { rate: 100/s, duration: 1s, warmup: 0s, max_in_flight: 1 }\n",
    )]);
    let json = dir.path().join("out.json");
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    let e = &read_json(&json)["run"]["endpoints"][0];
    let p50 = e["latency"]["p50_ms"].as_f64().unwrap();
    let p99 = e["latency"]["p99_ms"].as_f64().unwrap();
    // Service time is ~20 ms; a client that waited for the server would report ~20 ms.
    assert!(
        p99 > 200.0,
        "p99 {p99} ms should include the queueing delay"
    );
    assert!(p50 > 40.0, "p50 {p50} ms");
    assert!(e["late_starts"].as_u64().unwrap() > 10);
    assert!(
        e["dropped_arrivals"].as_u64().unwrap() > 10,
        "{}",
        e["dropped_arrivals"]
    );
    assert!(stdout.contains("fell behind the arrival rate"), "{stdout}");
}

#[test]
fn a_ramp_reports_each_step_finds_the_knee_and_draws_it() {
    let _machine = crate::common::shared();
    // A closed loop against a fixed 5 ms delay: throughput grows with the number of users.
    let svc = service(DemoOptions {
        latency: Some(Duration::from_millis(5)),
        ..DemoOptions::default()
    });
    let dir = suite_dir(&[(
        "ramp.yml",
        "name: detail\nrequest: { url: /api/v1/products/3 }\nload: { users: [1, 2, 4], step: 400ms, warmup: 0s }\n",
    )]);
    let charts = dir.path().join("charts");
    let json = dir.path().join("out.json");
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
        "--json",
        json.to_str().unwrap(),
        "--charts",
        charts.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for step in ["detail@1", "detail@2", "detail@4"] {
        assert!(stdout.contains(step), "{stdout}");
    }
    assert!(stdout.contains("ramp detail:"), "{stdout}");
    assert!(stdout.contains("Concurrency"), "{stdout}");
    let doc = read_json(&json);
    let eps = doc["run"]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    assert_eq!(
        eps[2]["ramp"],
        serde_json::json!({ "group": "detail", "users": 4 })
    );
    assert_eq!(eps[2]["load"]["users"], 4);
    // More users against a fixed delay: more throughput.
    assert!(
        eps[2]["throughput_rps"].as_f64().unwrap()
            > eps[0]["throughput_rps"].as_f64().unwrap() * 2.0
    );
    let png = std::fs::read(charts.join("ramp-detail.png")).expect("ramp chart written");
    assert!(
        png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .is_ok()
    );
}

/// The stalling sample service freezes every request that arrives during the stall.
#[test]
fn a_stalled_service_holds_requests_until_the_stall_ends() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions {
        stall: Some((Duration::ZERO, Duration::from_millis(600))),
        ..DemoOptions::default()
    });
    let dir = suite_dir(&[(
        "s.yml",
        "name: frozen\nrequest: { url: /api/v1/products/1 }\nload: { users: 1, requests: 1, duration: 5s, warmup: 0s }\n",
    )]);
    let json = dir.path().join("out.json");
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let e = &read_json(&json)["run"]["endpoints"][0];
    assert!(
        e["latency"]["max_ms"].as_f64().unwrap() >= 300.0,
        "{}",
        e["latency"]
    );
}

#[test]
fn a_request_budget_stops_the_scenario_exactly() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let dir = suite_dir(&[(
        "budget.yml",
        "name: budget\nrequest: { url: /api/v1/products/5 }\nload: { users: 4, duration: 30s, warmup: 0s, requests: 137 }\n",
    )]);
    let json = dir.path().join("out.json");
    let started = std::time::Instant::now();
    let out = gate(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped by the budget, not the clock"
    );
    assert_eq!(read_json(&json)["run"]["endpoints"][0]["requests"], 137);
}

#[test]
fn json_to_stdout_keeps_the_table_on_stderr() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let out = gate(&[
        "run",
        "--suite",
        "scenarios/product-detail.yml",
        "--target",
        &svc.url(),
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--json",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is only the JSON document");
    assert_eq!(doc["run"]["endpoints"][0]["name"], "product-detail");
    assert!(text(&out.stderr).contains("product-detail"));
}

/// As a user would: `gate serve-demo` in one shell, `gate run --target` in another.
#[test]
fn serve_demo_then_run_against_it() {
    let _machine = crate::common::shared();
    use std::io::{BufRead, BufReader};
    let mut child = gate_cmd(&[
        "serve-demo",
        "--addr",
        "127.0.0.1:0",
        "--regress",
        "n-plus-one",
    ])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in `{first}`"))
        .to_string();
    assert!(first.contains("regression: n-plus-one"), "{first}");
    let out = gate(&[
        "run",
        "--suite",
        "scenarios/user-orders.yml",
        "--target",
        &url,
        "--duration",
        "400ms",
        "--warmup",
        "0s",
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text(&out.stdout).contains("user-orders"),
        "{}",
        text(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(3));
}

#[test]
fn ctrl_c_stops_the_run_and_reports_partial_results() {
    let _machine = crate::common::shared();
    let svc = service(DemoOptions::default());
    let dir = suite_dir(&[(
        "long.yml",
        "name: long\nrequest: { url: /api/v1/products/6 }\nload: { users: 2, duration: 60s, warmup: 0s }\n",
    )]);
    let child = gate_cmd(&[
        "run",
        "--suite",
        dir.path().to_str().unwrap(),
        "--target",
        &svc.url(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // The shell's kill builtin: no dependency on a procps binary.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a partial run never passes: {stdout}"
    );
    assert!(stdout.contains("long"), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    // Saved whole, and marked partial: never used as a baseline.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("marked partial"), "{stderr}");
}

#[test]
fn calibrate_measures_false_alarms_and_detection_end_to_end() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool.json");
    let out = gate(&[
        "calibrate",
        "--trials",
        "2",
        "--baseline-runs",
        "1",
        "--subsets",
        "1",
        "--duration",
        "250ms",
        "--warmup",
        "0s",
        "--slowdowns",
        "0.5",
        "--save",
        pool.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("A (no change)") && stdout.contains("A+50% upstream"),
        "{stdout}"
    );
    // The saved pool is judged again without sending load, with the same result.
    let again = gate(&[
        "calibrate",
        "--from",
        pool.to_str().unwrap(),
        "--baseline-runs",
        "1",
        "--subsets",
        "1",
    ]);
    assert_eq!(text(&again.stdout), stdout);
    // A pool too small for K is bad input.
    let out = gate(&["calibrate", "--trials", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--trials"),
        "{}",
        text(&out.stderr)
    );
}
