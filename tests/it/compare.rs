//! `gate compare` and `gate chart` as a user meets them: runs of a real git repository's
//! branches against the sample service, one branch with a real N+1 regression.

use std::path::Path;
use std::process::Output;

use gate::demo::{DemoOptions, DemoServer, Regression};

use crate::common::{git, text};

fn gate_in(dir: &Path, args: &[&str]) -> Output {
    crate::common::gate_in(dir, &dir.join(".gate/history.db"), args)
}

fn repo() -> tempfile::TempDir {
    crate::common::scratch_repo()
}

fn run(dir: &Path, target: &str) -> Output {
    let out = gate_in(
        dir,
        &[
            "run",
            "--target",
            target,
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
    );
    assert_ne!(out.status.code(), Some(3), "{}", text(&out.stderr));
    out
}

#[test]
fn compare_flags_the_n_plus_one_and_points_at_the_database() {
    let _machine = crate::common::alone();
    // A 1 ms database round trip per statement: the N+1 adds some 50 ms of waiting (a sleep,
    // not CPU) to user-orders. With the shared shop service's 400 µs a loaded machine once
    // measured the N+1 at +86% against a baseline noise band of 92%; CPU starvation stretches
    // the fast requests, not the waiting, so this margin holds.
    let svc = DemoServer::start(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            db_latency: Some(std::time::Duration::from_millis(1)),
            latency: Some(std::time::Duration::from_millis(2)),
            jitter: Some(0.1),
            ..DemoOptions::default()
        },
    )
    .unwrap();
    let dir = repo();
    let r = dir.path();
    // Three baseline runs: enough for a measured noise band that one odd run cannot inflate.
    for _ in 0..3 {
        run(r, &svc.url());
    }
    git(r, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(r.join("change.txt"), "n+1").unwrap();
    git(r, &["add", "change.txt"]);
    git(r, &["commit", "-q", "-m", "lazy-load line items"]);
    svc.set_regression(Some(Regression::NPlusOne));
    run(r, &svc.url());

    let out = gate_in(r, &["compare", "main", "HEAD"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a regression fails the gate:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("│ user-orders"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains("❌ regression"), "{row}");
    let detail = stdout
        .lines()
        .find(|l| l.contains("where the time went"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        detail.trim_start().starts_with("where the time went: db +"),
        "{detail}"
    );
    assert!(stdout.contains("baseline: 3 runs of main at "), "{stdout}");
    // Only user-orders changed; product-detail is not asserted: on a loaded test machine an
    // unchanged endpoint may honestly come out inconclusive.
    assert!(stdout.contains(" of 2 endpoints regressed"), "{stdout}");

    let json = gate_in(r, &["compare", "main", "HEAD", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["format"], "gate-verdict");
    assert_eq!(doc["pass"], false);
    let eps = doc["verdict"]["endpoints"].as_array().unwrap();
    let uo = eps.iter().find(|e| e["endpoint"] == "user-orders").unwrap();
    assert_eq!(uo["call"], "regression");
    assert!(uo["p95_change"]["ci_low"].as_f64().unwrap() > 0.5);
    assert_eq!(uo["components"][0]["name"], "db");

    let md = text(&gate_in(r, &["compare", "main", "HEAD", "--format", "markdown"]).stdout);
    assert!(
        md.starts_with("### ❌ ") && md.contains("of 2 endpoints regressed"),
        "{md}"
    );
    assert!(
        md.contains("| user-orders |") && md.contains("<details>"),
        "{md}"
    );

    // Run ids work on both sides; a run against itself is no change. (Two different runs of
    // the same code are not asserted here: on a loaded test machine they may honestly differ.)
    let out = gate_in(r, &["compare", "#1", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Charts of the comparison, and `gate chart` from the history.
    let charts = r.join("charts");
    let out = gate_in(
        r,
        &[
            "compare",
            "main",
            "HEAD",
            "--charts",
            charts.to_str().unwrap(),
        ],
    );
    assert!(
        text(&out.stderr).contains("wrote 5 chart(s)"),
        "{}",
        text(&out.stderr)
    );
    for f in [
        "overview.png",
        "trend-user-orders.png",
        "distribution-user-orders.png",
        "trend-product-detail.png",
    ] {
        let bytes = std::fs::read(charts.join(f)).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), (1200, 600), "{f}");
    }
    let out = gate_in(
        r,
        &[
            "chart",
            "--branch",
            "main",
            "--out",
            "main-charts",
            "--endpoint",
            "user-orders",
            "--size",
            "800x400",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(r.join("main-charts/trend-user-orders.png").exists());
    assert!(
        !r.join("main-charts/overview.png").exists(),
        "--endpoint draws only that endpoint"
    );
}

#[test]
fn compare_refuses_what_it_cannot_compare() {
    let _machine = crate::common::shared();
    let svc = DemoServer::start("127.0.0.1:0".parse().unwrap(), DemoOptions::default()).unwrap();
    let dir = repo();
    let r = dir.path();
    // No runs at all for HEAD.
    let out = gate_in(r, &["compare", "main", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no complete runs for HEAD"),
        "{}",
        text(&out.stderr)
    );
    run(r, &svc.url());
    // Unknown names.
    let out = gate_in(r, &["compare", "no-such-branch", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`no-such-branch` is not a run id"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        gate_in(r, &["compare", "main", "#99"]).status.code(),
        Some(2)
    );
    // A run of a different scenario definition shares nothing with run #1.
    std::fs::write(
        r.join("other.yml"),
        "name: user-orders\nrequest: { url: /api/v1/users/1/orders }\nload: { rate: 50/s, duration: 300ms, warmup: 0s }\n",
    )
    .unwrap();
    gate_in(r, &["run", "--suite", "other.yml", "--target", &svc.url()]);
    let out = gate_in(r, &["compare", "1", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("share no scenario definition"),
        "{}",
        text(&out.stderr)
    );
    // Only HEAD's own runs on main: no baseline is inconclusive, loudly, and exits 0 unless --strict.
    let out = gate_in(r, &["compare", "main", "HEAD"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("❔ inconclusive") && stdout.contains("no baseline"),
        "{stdout}"
    );
    assert_eq!(
        gate_in(r, &["compare", "main", "HEAD", "--strict"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        gate_in(r, &["compare", "main", "HEAD", "--tolerance", "lots"])
            .status
            .code(),
        Some(2)
    );
}
