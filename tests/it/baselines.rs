//! `baselines/example-main.json`, the example suite's exported baseline of `main`, used the way
//! a team whose CI cannot keep the database uses its own: imported into an empty history, then a
//! fresh run of the suite is compared with it.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{gate_in, shop_service, text};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// Endpoint names of an export's or a run's endpoints.
fn names(endpoints: &serde_json::Value) -> BTreeSet<String> {
    endpoints
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_committed_baseline_imports_and_a_fresh_run_compares_with_it() {
    let _machine = crate::common::shared();
    let file = Path::new(MANIFEST).join("baselines/example-main.json");
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(export["format"], "gate-history");
    assert_eq!(export["branch"], "main");
    let runs = export["runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    for run in runs {
        assert_eq!(run["git"]["branch"], "main");
        assert_eq!(run["complete"], true);
    }
    let baseline_endpoints = names(&runs[0]["endpoints"]);

    // Outside a git checkout: the fresh run is saved without git fields, so both sides are
    // named by run id, and the comparison does not depend on this machine's fingerprint
    // matching the one that measured the baseline.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let out = gate_in(
        dir.path(),
        &db,
        &["history", "import", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("imported {} run(s)", runs.len())),
        "{}",
        text(&out.stdout)
    );

    let svc = shop_service();
    let suite = Path::new(MANIFEST).join("scenarios");
    let json = dir.path().join("run.json");
    let out = gate_in(
        dir.path(),
        &db,
        &[
            "run",
            "--suite",
            suite.to_str().unwrap(),
            "--target",
            &svc.url(),
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    let fresh_id = runs.len() + 1;
    assert!(
        stderr.contains(&format!("saved run #{fresh_id} ")),
        "{stderr}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let suite_endpoints = names(&doc["run"]["endpoints"]);
    assert_eq!(
        suite_endpoints, baseline_endpoints,
        "the baseline covers every endpoint of the suite"
    );

    // The newest imported run against the fresh one.
    let out = gate_in(
        dir.path(),
        &db,
        &[
            "compare",
            &runs.len().to_string(),
            &fresh_id.to_string(),
            "--suite",
            suite.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(verdict["format"], "gate-verdict");
    let endpoints = verdict["verdict"]["endpoints"].as_array().unwrap();
    let judged: BTreeSet<String> = endpoints
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(judged, suite_endpoints, "{verdict:#}");
    for e in endpoints {
        let call = e["call"].as_str().unwrap_or_default();
        assert!(
            ["regression", "improvement", "no_change", "inconclusive"].contains(&call),
            "{e:#}"
        );
        // Every endpoint is really compared: the committed baseline still has each scenario's
        // definition (re-create it when a scenario's request or load changes).
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(
            !reason.contains("no baseline") && !reason.contains("definition changed"),
            "{e:#}"
        );
    }
}
