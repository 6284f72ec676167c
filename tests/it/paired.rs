//! Paired mode (`--base-target`) end to end: two sample services on loopback, measured side by
//! side, both at once, by the real binary. The effect is wide (an N+1 query with a 1 ms
//! database round trip per statement, several times the endpoint's latency) so that no noise on
//! a loaded machine can cross it, and the blocks are short to keep the suite fast.

use std::path::Path;
use std::process::Output;

use gate::demo::{DemoOptions, DemoServer, Regression};

use crate::common;
use common::text;

fn gate_in(dir: &Path, args: &[&str]) -> Output {
    common::gate_in(dir, &dir.join(".gate/history.db"), args)
}

/// The sample service with a 1 ms database round trip per statement: the N+1 then costs tens
/// of milliseconds on user-orders, against a few for the rest.
fn service() -> DemoServer {
    DemoServer::start(
        "127.0.0.1:0".parse().unwrap(),
        DemoOptions {
            db_latency: Some(std::time::Duration::from_millis(1)),
            latency: Some(std::time::Duration::from_millis(2)),
            jitter: Some(0.1),
            ..DemoOptions::default()
        },
    )
    .unwrap()
}

/// 4 rounds give 8 block pairs per endpoint: the smallest signed-rank p is 1/256, significant
/// after Holm across the 4 tests of two endpoints.
const SHORT: [&str; 4] = ["--rounds", "4", "--block", "500ms"];

fn calls(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["verdict"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_string(),
                e["call"].as_str().unwrap().to_string(),
                e["reason_text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_n_plus_one_is_flagged_side_by_side_and_the_other_endpoint_is_not() {
    let _machine = crate::common::shared();
    let base = service();
    let head = service();
    head.set_regression(Some(Regression::NPlusOne));
    let dir = common::scratch_repo();
    let r = dir.path();
    let (b, h) = (base.url(), head.url());
    let mut args = vec![
        "compare",
        "--base-target",
        &b,
        "--target",
        &h,
        "--format",
        "json",
    ];
    args.extend(SHORT);
    let out = gate_in(r, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = calls(&doc);
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (endpoint, call, reason) in &calls {
        assert!(
            reason.starts_with("paired: ") && reason.contains("over 8 block pairs"),
            "{endpoint}: {reason}"
        );
        match endpoint.as_str() {
            "user-orders" => assert_eq!(call, "regression", "{reason}"),
            _ => assert_ne!(call, "regression", "{endpoint}: {reason}"),
        }
    }
    let headline = doc["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("❌ 1 of 2 endpoints regressed") && headline.contains("⇄ paired"),
        "{headline}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("side by side, both at once: each scenario 8 blocks of 500 ms"),
        "{stderr}"
    );
    // The head side's progress, scenario by scenario, as in any run.
    assert!(stderr.contains("[2/2] user-orders: GET"), "{stderr}");

    // Both sides are in the history; the base side is labelled and recorded at the merge-base,
    // never as HEAD's commit.
    let list = gate_in(r, &["history", "list"]);
    let listed = text(&list.stdout);
    assert!(listed.contains("paired-base"), "{listed}");
    let show = gate_in(r, &["history", "show", "1"]);
    let shown = text(&show.stdout);
    assert!(shown.contains(&base.url()), "{shown}");
    assert!(shown.contains("user-orders"), "{shown}");
}

#[test]
fn a_a_through_gate_ci_flags_nothing() {
    let _machine = crate::common::shared();
    let svc = service();
    let dir = common::scratch_repo();
    let r = dir.path();
    let url = svc.url();
    let mut args = vec![
        "ci",
        "--dry-run",
        "--no-charts",
        "--base-target",
        &url,
        "--target",
        &url,
    ];
    args.extend(SHORT);
    let out = gate_in(r, &args);
    let stdout = text(&out.stdout);
    // The verdict passes; only the suite's absolute SLO thresholds may fail the job, when a
    // CPU-starved debug build (seen with four CPU hogs beside it) pushes both sides' p95 past
    // 300 ms, and then the headline says so.
    let slo_broken = stdout.contains("broke an SLO threshold");
    assert_eq!(
        out.status.code(),
        Some(if slo_broken { 1 } else { 0 }),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("❌ regression"), "{stdout}");
    assert!(!stdout.contains("🚀 improvement"), "{stdout}");
    assert!(
        stdout.contains("✅ no regression across 2 endpoints") && stdout.contains("⇄ paired"),
        "{stdout}"
    );
}

/// An unreachable base deployment is a bad peer: exit 3 naming it, at once. The head side
/// stops with it instead of measuring alone for the whole run (here a minute per scenario).
#[test]
fn an_unreachable_base_stops_both_sides_with_exit_3() {
    let _machine = crate::common::shared();
    let head = service();
    let dir = common::scratch_repo();
    let r = dir.path();
    let h = head.url();
    let started = std::time::Instant::now();
    let out = gate_in(
        r,
        &[
            "compare",
            "--base-target",
            "http://127.0.0.1:9",
            "--target",
            &h,
            "--rounds",
            "30",
            "--block",
            "1s",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "took {:?}: the head went on alone",
        started.elapsed()
    );
    let list = gate_in(r, &["history", "list"]);
    assert!(!text(&list.stdout).contains("paired-base"), "nothing saved");
}

#[test]
fn llm_scenarios_and_bad_flags_are_refused_before_any_load() {
    let _machine = crate::common::shared();
    let dir = common::scratch_repo();
    let r = dir.path();
    let llm = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/llm/compare.yml");
    let out = gate_in(
        r,
        &[
            "compare",
            "--base-target",
            "http://127.0.0.1:9",
            "--suite",
            llm.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("does not measure `llm:` scenarios"),
        "{}",
        text(&out.stderr)
    );
    // BASE with --base-target, --rounds without it, a block too short: usage errors.
    for args in [
        &["compare", "main", "--base-target", "http://127.0.0.1:9"][..],
        &["compare", "main", "--rounds", "3"][..],
        &[
            "compare",
            "--base-target",
            "http://127.0.0.1:9",
            "--block",
            "5ms",
        ][..],
    ] {
        let out = gate_in(r, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// `gate calibrate --paired --noise`: two sample services side by side under a noisy
/// neighbour, an A/A arm and a head slowed 4× (a margin no noise crosses); the table counts the
/// slowed head's regression, and the neighbour stops with the calibration.
#[test]
fn paired_calibration_under_noise_tabulates_its_arms() {
    let _machine = crate::common::shared();
    let dir = common::scratch_repo();
    let out = gate_in(
        dir.path(),
        &[
            "calibrate",
            "--paired",
            "--noise",
            "--noise-threads",
            "1",
            "--trials",
            "1",
            "--rounds",
            "4",
            "--block",
            "400ms",
            "--scenario",
            "product-detail",
            "--slowdowns",
            "3",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(
            "paired calibration: 1 full round(s) of the arms, comparisons of 1 scenario(s) (product-detail)"
        ),
        "{stdout}"
    );
    let row = |arm: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.starts_with(arm))
            .unwrap_or_else(|| panic!("no row {arm}: {stdout}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    // arm name words, then endpoint comparisons and regressions.
    assert_eq!(&row("A/A (no change)")[3..4], ["1"], "{stdout}");
    assert_eq!(&row("A/A+300% upstream")[2..4], ["1", "1"], "{stdout}");
    // Per endpoint: the slowed head's one comparison, a regression, at its own Δp95.
    let per_endpoint = stdout
        .lines()
        .find(|l| l.starts_with("  A/A+300% upstream") && l.contains("product-detail"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        per_endpoint.contains(" 1 comparisons ") && per_endpoint.contains(" 1 regressions "),
        "{per_endpoint}"
    );
    assert!(
        stdout.contains("noise: 1 CPU-burning thread(s)"),
        "{stdout}"
    );
    // Flags that only make sense in paired mode are refused without it.
    let out = gate_in(dir.path(), &["calibrate", "--rounds", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// The example workflow builds both sides and runs `gate ci --base-target` with flags the real
/// CLI accepts.
#[test]
fn the_example_paired_workflow_runs_gate_ci_with_a_base_target() {
    let _machine = crate::common::shared();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/examples/perf-gate-paired.yml");
    let wf: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = wf["jobs"]["paired"]["steps"].as_array().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs.iter().any(|r| r.contains("git worktree add")));
    assert!(runs.iter().any(|r| r.contains("--target-dir target/base")));
    let ci = runs
        .iter()
        .find(|r| r.contains("gate ci"))
        .expect("a gate ci step");
    let words: Vec<&str> = ci.split_whitespace().collect();
    let start = words.iter().position(|w| w.ends_with("/gate")).unwrap();
    use clap::Parser;
    let cli = gate::cli::Cli::try_parse_from(&words[start..]).unwrap();
    match cli.command {
        gate::cli::Command::Ci(a) => {
            assert_eq!(
                a.paired.base_target.as_deref(),
                Some("http://127.0.0.1:8081")
            );
            assert_eq!(a.load.target.as_deref(), Some("http://127.0.0.1:8082"));
        }
        _ => panic!("not gate ci: {ci}"),
    }
}
