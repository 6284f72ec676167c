//! The command layer in-process: real argument parsing, a scratch history, the writers read
//! back. No binary is spawned.

use clap::Parser;

use super::Output;
use crate::store::Store;
use crate::store::tests::{endpoint, run};
use crate::{Error, Outcome};

/// Run `gate ARGS…` in-process; returns the outcome with what went to stdout and stderr.
fn gate(args: &[&str]) -> (Result<Outcome, Error>, String, String) {
    let mut argv = vec!["gate"];
    argv.extend_from_slice(args);
    let cli = crate::cli::Cli::try_parse_from(argv).expect("arguments parse");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = super::dispatch(
        cli.command,
        &mut Output {
            out: &mut out,
            err: &mut err,
        },
    );
    (
        result,
        String::from_utf8(out).expect("UTF-8 stdout"),
        String::from_utf8(err).expect("UTF-8 stderr"),
    )
}

/// A scratch history: three runs of `main`, then one of `scratch-pr` whose endpoint `a` is
/// three times slower. Returns the directory (kept alive) and the database path.
fn scratch_history() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path).unwrap();
    for i in 0..3 {
        store
            .save(&run(
                &format!("base-{i}"),
                Some("main"),
                Some("c0ffee1"),
                None,
                "fp",
            ))
            .unwrap();
    }
    let mut head = run("head", Some("scratch-pr"), Some("badc0de"), None, "fp");
    head.endpoints[0] = endpoint("a", "h-a", 3000);
    store.save(&head).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn history_list_prints_every_run_to_the_given_writer() {
    let (_dir, db) = scratch_history();
    let (result, out, err) = gate(&["history", "list", "--db", &db]);
    assert_eq!(result.unwrap(), Outcome::Pass);
    assert!(err.is_empty(), "{err}");
    for needle in [
        "#1",
        "#2",
        "#3",
        "#4",
        "main",
        "scratch-pr",
        "c0ffee1",
        "badc0de",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    let (_, out, _) = gate(&["history", "list", "--db", &db, "--branch", "scratch-pr"]);
    assert!(out.contains("#4") && !out.contains("#1"), "{out}");

    let (_, out, _) = gate(&["history", "list", "--db", &db, "--branch", "nope"]);
    assert_eq!(out, format!("no runs of branch nope in {db}\n"));
}

#[test]
fn compare_finds_the_slower_endpoint_and_fails_the_gate() {
    let (_dir, db) = scratch_history();
    let (result, out, _) = gate(&[
        "compare",
        "main",
        "scratch-pr",
        "--db",
        &db,
        "--suite",
        "/nonexistent-suite",
        "--format",
        "json",
    ]);
    assert_eq!(result.unwrap(), Outcome::GateFailed, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("stdout is the JSON verdict");
    let calls: Vec<(&str, &str)> = doc["verdict"]["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap_or_default(),
                e["call"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(calls.contains(&("a", "regression")), "{calls:?}");
    assert!(calls.contains(&("b", "no_change")), "{calls:?}");
}

#[test]
fn compare_names_the_side_it_cannot_resolve() {
    let (_dir, db) = scratch_history();
    let (result, out, _) = gate(&["compare", "main", "no-such-branch-xyz", "--db", &db]);
    match result {
        Err(Error::Usage { flag, message }) => {
            assert_eq!(flag, "HEAD");
            assert!(message.contains("no-such-branch-xyz"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(out.is_empty(), "nothing is printed on an error: {out}");
}

#[test]
fn history_export_writes_the_document_to_stdout_and_import_reads_it_back() {
    let (dir, db) = scratch_history();
    let (result, out, _) = gate(&["history", "export", "--db", &db, "--branch", "main"]);
    assert_eq!(result.unwrap(), Outcome::Pass);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("stdout is the export");
    let uids: Vec<&str> = doc["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["uid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(uids.len(), 3, "{uids:?}");
    assert!(uids.iter().all(|u| u.starts_with("base-")), "{uids:?}");

    let file = dir.path().join("main.json");
    std::fs::write(&file, &out).unwrap();
    let other = dir.path().join("other.db").display().to_string();
    let file = file.display().to_string();
    let (result, out, _) = gate(&["history", "import", "--db", &other, &file]);
    assert_eq!(result.unwrap(), Outcome::Pass);
    assert_eq!(
        out,
        format!("imported 3 run(s) into {other} (0 already present)\n")
    );
}
