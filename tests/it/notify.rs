//! `--notify slack:URL`: the Block Kit message a Slack incoming webhook receives, checked on a
//! fake webhook on loopback; webhook failures never change the exit code or print the secret.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use gate::record::{
    CostRecord, EndpointRecord, LatencySummary, LlmRecord, LoadRecord, RECORD_VERSION, RunRecord,
    new_histogram,
};
use gate::store::Store;
use serde_json::Value;

#[derive(Clone, Debug)]
struct Received {
    path: String,
    content_type: String,
    body: Value,
}

/// A Slack incoming webhook on loopback: records each POST, answers `status`.
struct FakeSlack {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeSlack {
    fn start(status: u16) -> FakeSlack {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let r = received.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(
                    move |uri: Uri, headers: HeaderMap, body: Bytes| {
                        let r = r.clone();
                        async move {
                            r.lock().unwrap().push(Received {
                                path: uri.to_string(),
                                content_type: headers
                                    .get("content-type")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string(),
                                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            });
                            let code = StatusCode::from_u16(status).unwrap();
                            (
                                code,
                                if code.is_success() {
                                    "ok"
                                } else {
                                    "no_service"
                                },
                            )
                        }
                    },
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FakeSlack {
            addr: rx.recv().unwrap(),
            received,
            _stop: stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/services/T000/B000/SECRETPATH", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// The payload is what Slack accepts: a fallback `text` and known block types within Block
/// Kit's limits.
fn assert_block_kit(p: &Value) {
    assert!(p["text"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    let blocks = p["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
    for b in blocks {
        match b["type"].as_str().unwrap() {
            "header" => {}
            "section" => {
                if let Some(t) = b["text"].as_object() {
                    assert_eq!(t["type"], "mrkdwn");
                    assert!(t["text"].as_str().unwrap().chars().count() <= 3000);
                } else {
                    let fields = b["fields"].as_array().expect("text or fields");
                    assert!(!fields.is_empty() && fields.len() <= 10);
                    for f in fields {
                        assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
                    }
                }
            }
            "context" => assert!(b["elements"].as_array().is_some_and(|e| !e.is_empty())),
            other => panic!("unexpected block type {other}"),
        }
    }
}

fn all_text(p: &Value) -> String {
    p.to_string()
}

fn summary(centre_ms: f64) -> LatencySummary {
    let mut h = new_histogram();
    for i in 0..400u64 {
        let f = 0.8 + 0.4 * (i as f64 / 399.0);
        h.record((centre_ms * f * 1000.0) as u64).unwrap();
    }
    LatencySummary::from_histogram(&h)
}

fn endpoint(name: &str, p_ms: f64, cost: Option<f64>) -> EndpointRecord {
    EndpointRecord {
        name: name.into(),
        scenario_file: String::new(),
        scenario_hash: format!("hash-{name}"),
        method: "GET".into(),
        url: "/".into(),
        load: LoadRecord {
            model: "open".into(),
            users: None,
            rate_per_s: Some(40.0),
            duration_s: 10.0,
            warmup_s: 0.0,
        },
        requests: 400,
        successes: 400,
        failures: 0,
        elapsed_s: 10.0,
        throughput_rps: 40.0,
        error_rate: 0.0,
        latency: summary(p_ms),
        ttfb: summary(p_ms / 2.0),
        status_counts: Default::default(),
        errors: Default::default(),
        server_timing: Default::default(),
        late_starts: 0,
        dropped_arrivals: 0,
        bytes_received: 0,
        ramp: None,
        llm: cost.map(|c| LlmRecord {
            models: vec!["m".into()],
            cost: Some(CostRecord {
                per_1k_usd: c,
                ..Default::default()
            }),
            ..Default::default()
        }),
        transport: None,
    }
}

/// Runs #1-#3 alike; run #4: `<orders>` twice as slow, the LLM endpoint 20% pricier.
fn history(dir: &Path) -> PathBuf {
    let db = dir.join("history.db");
    let mut store = Store::open(&db).unwrap();
    for i in 0..4 {
        let slow = i == 3;
        store
            .save(&RunRecord {
                version: RECORD_VERSION,
                uid: format!("r{i}"),
                gate_version: "t".into(),
                started_at: format!("2026-11-0{}T10:00:00.000Z", i + 1),
                finished_at: String::new(),
                target: "http://127.0.0.1:9".into(),
                suite: "scenarios".into(),
                label: None,
                complete: true,
                faults: Vec::new(),
                git: None,
                pr: None,
                environment: None,
                endpoints: vec![
                    endpoint("<orders>", if slow { 90.0 } else { 40.0 }, None),
                    endpoint("chat", 500.0, Some(if slow { 1.5 } else { 1.25 })),
                ],
            })
            .unwrap();
    }
    db
}

fn gate(dir: &Path, db: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args(args)
        .current_dir(dir)
        .env("GATE_DB", db)
        .env_remove("GATE_SLACK_WEBHOOK")
        .env_remove("GITHUB_RUN_ID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let stderr = common::text(&o.stderr);
    let all = format!("{}{stderr}", common::text(&o.stdout));
    assert!(
        !all.contains("SECRETPATH"),
        "the webhook's secret leaked:\n{all}"
    );
    (o.status.code().unwrap(), stderr)
}

#[test]
fn a_regression_posts_one_block_kit_message_with_regressions_worst_p95_and_cost() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = history(dir.path());
    let slack = FakeSlack::start(200);
    let spec = format!("slack:{}", slack.url());
    let (code, stderr) = gate(
        dir.path(),
        &db,
        &[
            "compare",
            "3",
            "4",
            "--notify",
            &spec,
            "--notify-link",
            "https://example.org/dash/index.html",
        ],
        &[],
    );
    assert_eq!(code, 1, "the regression fails the gate: {stderr}");
    assert!(stderr.contains("notify: posted"), "{stderr}");
    let got = slack.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/services/T000/B000/SECRETPATH");
    assert!(got[0].content_type.starts_with("application/json"));
    let p = &got[0].body;
    assert_block_kit(p);
    assert_eq!(p["blocks"][0]["text"]["text"], "gate: ❌ failed");
    let text = all_text(p);
    assert!(text.contains("*Regressions*"), "{text}");
    assert!(
        text.contains("&lt;orders&gt;: p95 +"),
        "names escaped: {text}"
    );
    assert!(text.contains("*Worst p95*"), "{text}");
    assert!(
        text.contains("chat: $1.2500 → $1.5000 per 1k requests (+20.0%)"),
        "{text}"
    );
    assert!(text.contains("<https://example.org/dash/index.html|Open the run>"));
}

#[test]
fn a_pass_posts_nothing_unless_always_and_the_env_variable_works() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = history(dir.path());
    let slack = FakeSlack::start(200);
    let env = [("GATE_SLACK_WEBHOOK", slack.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, stderr) = gate(dir.path(), &db, &["compare", "1", "2"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(slack.received().is_empty(), "posted on a pass");
    assert!(stderr.contains("nothing posted"), "{stderr}");

    let (code, stderr) = gate(
        dir.path(),
        &db,
        &["compare", "1", "2", "--notify-on", "always"],
        &[
            env.as_slice(),
            &[
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "o/r"),
                ("GITHUB_RUN_ID", "77"),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    let got = slack.received();
    assert_eq!(got.len(), 1);
    assert_block_kit(&got[0].body);
    assert_eq!(got[0].body["blocks"][0]["text"]["text"], "gate: ✅ passed");
    assert!(
        all_text(&got[0].body).contains("https://github.com/o/r/actions/runs/77|Open the run"),
        "the Actions run is the default link"
    );
}

#[test]
fn a_failing_or_missing_webhook_only_warns_and_never_shows_the_secret() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = history(dir.path());
    let broken = FakeSlack::start(500);
    let spec = format!("slack:{}", broken.url());
    let (code, stderr) = gate(
        dir.path(),
        &db,
        &["compare", "3", "4", "--notify", &spec],
        &[],
    );
    assert_eq!(code, 1, "still the verdict's exit code: {stderr}");
    assert_eq!(broken.received().len(), 1);
    let origin = format!("http://{}/…", broken.addr);
    assert!(
        stderr.contains("warning: notify:") && stderr.contains(&origin) && stderr.contains("500"),
        "{stderr}"
    );

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let spec = format!("slack:http://{addr}/services/SECRETPATH");
    for (head, want) in [("4", 1), ("2", 0)] {
        let (code, stderr) = gate(
            dir.path(),
            &db,
            &[
                "compare",
                "1",
                head,
                "--notify",
                &spec,
                "--notify-on",
                "always",
            ],
            &[],
        );
        assert_eq!(code, want, "{stderr}");
        assert!(stderr.contains("warning: notify:"), "{stderr}");
    }

    // Not a webhook at all: a warning, not a usage error.
    let (code, stderr) = gate(
        dir.path(),
        &db,
        &[
            "compare",
            "1",
            "2",
            "--notify",
            "slack:hooks.example/SECRETPATH",
            "--notify-on",
            "always",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("is not a webhook"), "{stderr}");
}

#[test]
fn gate_run_posts_its_broken_slo() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let target = FakeSlack::start(200);
    let slack = FakeSlack::start(200);
    std::fs::write(
        dir.path().join("ping.yml"),
        "name: ping\nrequest: { method: GET, url: /ping }\nload: { rate: 20/s, duration: 1s, warmup: 0s }\nthresholds: [ \"p95 < 0.001ms\" ]\n",
    )
    .unwrap();
    let spec = format!("slack:{}", slack.url());
    let t = format!("http://{}", target.addr);
    let db = dir.path().join("h.db");
    let (code, stderr) = gate(
        dir.path(),
        &db,
        &[
            "run",
            "--suite",
            "ping.yml",
            "--target",
            &t,
            "--no-save",
            "--no-progress",
            "--notify",
            &spec,
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    let got = slack.received();
    assert_eq!(got.len(), 1, "{stderr}");
    assert_block_kit(&got[0].body);
    let text = all_text(&got[0].body);
    assert!(
        text.contains("*SLO broken*") && text.contains("ping: p95 &lt; 0.001ms (measured "),
        "{text}"
    );
    assert!(text.contains("*Worst p95*\\nping: "), "{text}");
}

#[test]
fn the_weekly_llm_example_runs_on_a_schedule_keeps_history_and_notifies() {
    let _machine = crate::common::shared();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.github/examples/weekly-llm.yml"
    );
    let wf: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(wf["on"]["schedule"][0]["cron"].as_str().is_some());
    let steps = wf["jobs"]["llm"]["steps"].as_array().unwrap();
    let step = steps
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("gate ci")))
        .expect("a gate ci step");
    assert_eq!(
        step["env"]["GATE_SLACK_WEBHOOK"],
        "${{ secrets.SLACK_WEBHOOK_URL }}"
    );
    let line = step["run"].as_str().unwrap();
    let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
    let start = words.iter().position(|w| w.ends_with("/gate")).unwrap();
    use clap::Parser;
    let cli = gate::cli::Cli::try_parse_from(&words[start..]).unwrap();
    let gate::cli::Command::Ci(args) = cli.command else {
        panic!("not gate ci: {line}");
    };
    assert_eq!(args.notify.notify_on, gate::cli::NotifyOn::Always);
    let db = args.db.db.display().to_string();
    let restore = steps
        .iter()
        .find(|s| s["uses"] == "actions/cache/restore@v4")
        .unwrap();
    let save = steps
        .iter()
        .find(|s| s["uses"] == "actions/cache/save@v4")
        .unwrap();
    assert_eq!(restore["with"]["path"], db.as_str());
    assert_eq!(save["with"]["path"], db.as_str());
    assert!(save["if"].as_str().unwrap().contains("!cancelled()"));
}

/// Issue 14: the webhook through a company proxy. Its host name resolves nowhere but in the
/// proxy (which sends every tunnel to loopback); the proxy sees `CONNECT host:port` only, never
/// the webhook's secret path.
#[test]
fn the_webhook_is_posted_through_the_proxy_the_environment_names() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = history(dir.path());
    let slack = FakeSlack::start(200);
    let proxy = crate::proxy::proxy();
    let port = slack.addr.port();
    let spec = format!("slack:http://hooks.slack.test:{port}/services/T000/B000/SECRETPATH");
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let (code, stderr) = gate(
        dir.path(),
        &db,
        &["compare", "3", "4", "--notify", &spec],
        &[("HTTP_PROXY", &via), ("NO_PROXY", "")],
    );
    assert_eq!(code, 1, "the regression fails the gate: {stderr}");
    assert!(stderr.contains("notify: posted"), "{stderr}");
    assert_eq!(slack.received().len(), 1);
    let seen = proxy.seen.lock().unwrap();
    assert_eq!(
        seen.lines,
        [format!("CONNECT hooks.slack.test:{port} HTTP/1.1")]
    );
}
