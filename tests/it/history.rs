//! The run history as a user meets it: runs saved on branches of a real git repository, listed,
//! exported and imported; concurrent writers; secrets kept out of the database file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gate::demo::{DemoOptions, DemoServer};

use crate::common::{gate_in, git, text};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn short_run(dir: &Path, db: &Path, target: &str) -> Output {
    let suite = PathBuf::from(MANIFEST).join("scenarios/product-detail.yml");
    gate_in(
        dir,
        db,
        &[
            "run",
            "--suite",
            suite.to_str().unwrap(),
            "--target",
            target,
            "--duration",
            "250ms",
            "--warmup",
            "0s",
        ],
    )
}

#[test]
fn runs_on_two_branches_are_listed_exported_and_imported_exactly() {
    let _machine = crate::common::shared();
    let svc = DemoServer::start("127.0.0.1:0".parse().unwrap(), DemoOptions::default()).unwrap();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    let db = r.join(".gate/history.db");
    git(r, &["init", "-q", "-b", "main"]);
    std::fs::write(r.join("app.txt"), "v1").unwrap();
    git(r, &["add", "app.txt"]);
    git(r, &["commit", "-q", "-m", "v1"]);
    let main_commit = git(r, &["rev-parse", "HEAD"]);

    for _ in 0..2 {
        let out = short_run(r, &db, &svc.url());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("main @ {}", &main_commit[..7])),
            "{}",
            text(&out.stderr)
        );
    }
    git(r, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(r.join("app.txt"), "v2").unwrap();
    git(r, &["commit", "-q", "-am", "v2"]);
    let feature_commit = git(r, &["rev-parse", "HEAD"]);
    std::fs::write(r.join("app.txt"), "v3 uncommitted").unwrap();
    let out = short_run(r, &db, &svc.url());
    assert!(text(&out.stderr).contains(&format!(
        "saved run #3 to {}: feature @ {} (dirty)",
        db.display(),
        &feature_commit[..7]
    )));

    let list = text(&gate_in(r, &db, &["history", "list"]).stdout);
    let rows: Vec<&str> = list.lines().filter(|l| l.contains('#')).collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(
        rows[0].contains("main") && rows[0].contains(&main_commit[..7]),
        "{list}"
    );
    assert!(
        rows[2].contains("feature") && rows[2].contains(&format!("{}+dirty", &feature_commit[..7])),
        "{list}"
    );
    let only_main = text(&gate_in(r, &db, &["history", "list", "--branch", "main"]).stdout);
    assert_eq!(
        only_main.lines().filter(|l| l.contains("#")).count(),
        2,
        "{only_main}"
    );

    let show = gate_in(r, &db, &["history", "show", "3"]);
    let show = text(&show.stdout);
    assert!(
        show.contains(&format!("merge-base {}", &main_commit[..7])),
        "{show}"
    );
    assert!(show.contains("product-detail"), "{show}");

    // Export everything, delete the database, import: the same runs, histograms included.
    let export = r.join("all.json");
    let out = gate_in(
        r,
        &db,
        &["history", "export", "--out", export.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let main_only = gate_in(r, &db, &["history", "export", "--branch", "main"]);
    let main_doc: serde_json::Value = serde_json::from_slice(&main_only.stdout).unwrap();
    assert_eq!(main_doc["format"], "gate-history");
    assert_eq!(main_doc["runs"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(r.join(".gate")).unwrap();
    let out = gate_in(r, &db, &["history", "import", export.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("imported 3 run(s)"),
        "{}",
        text(&out.stdout)
    );
    let again = r.join("again.json");
    gate_in(
        r,
        &db,
        &["history", "export", "--out", again.to_str().unwrap()],
    );
    let runs = |p: &Path| {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap()["runs"].clone()
    };
    assert_eq!(runs(&export), runs(&again));
    let out = gate_in(r, &db, &["history", "import", export.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("imported 0 run(s)")
            && text(&out.stdout).contains("3 already present")
    );

    // Bad ids and files are bad input.
    assert_eq!(
        gate_in(r, &db, &["history", "show", "99"]).status.code(),
        Some(2)
    );
    std::fs::write(r.join("junk.json"), "{\"format\": \"nope\"}").unwrap();
    let out = gate_in(r, &db, &["history", "import", "junk.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("junk.json: not a gate history export"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn outside_a_git_checkout_runs_are_saved_and_it_says_so() {
    let _machine = crate::common::shared();
    let svc = DemoServer::start("127.0.0.1:0".parse().unwrap(), DemoOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let out = short_run(dir.path(), &db, &svc.url());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("not a git checkout"),
        "{}",
        text(&out.stderr)
    );
    let list = text(&gate_in(dir.path(), &db, &["history", "list"]).stdout);
    assert!(list.contains("#1"), "{list}");
}

#[test]
fn a_file_that_is_not_a_gate_history_is_refused_with_exit_3_and_left_alone() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("precious.db");
    std::fs::write(&db, "my notes, not a database").unwrap();
    let out = gate_in(dir.path(), &db, &["history", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("is not a gate history database"),
        "{}",
        text(&out.stderr)
    );
    // `gate run` checks the history before sending any load.
    let out = gate_in(
        dir.path(),
        &db,
        &[
            "run",
            "--suite",
            &format!("{MANIFEST}/scenarios"),
            "--target",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("precious.db"));
    assert_eq!(
        std::fs::read_to_string(&db).unwrap(),
        "my notes, not a database"
    );
    assert!(!dir.path().join("precious.db-wal").exists());
}

#[test]
fn secrets_never_reach_the_database_file() {
    let _machine = crate::common::shared();
    let svc = DemoServer::start("127.0.0.1:0".parse().unwrap(), DemoOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = "tok_live_93f8a1d2c4b6e0";
    std::fs::write(
        dir.path().join("s.yml"),
        "name: secret-header\nrequest:\n  url: /api/v1/products/9\n  headers: { Authorization: \"Bearer ${API_TOKEN}\" }\nload: { users: 1, duration: 300ms, warmup: 0s }\n",
    )
    .unwrap();
    let db = dir.path().join("h.db");
    let out = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["run", "--suite", "s.yml", "--target", &svc.url()])
        .current_dir(dir.path())
        .env("GATE_DB", &db)
        .env("API_TOKEN", secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Fold the WAL into the main file so every byte written is in one place, then grep them all.
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let hay = String::from_utf8_lossy(&bytes);
    assert!(hay.contains("secret-header"), "the run is in the database");
    assert!(!hay.contains(secret), "the secret is not");
    assert!(!hay.contains("tok_live"));
}

/// Two writers saving 50 runs each at the same time, every run by its own `gate history import`
/// process (each opens the database, checks its schema and writes in a transaction of its own):
/// 100 runs afterwards, none lost, no writer refused.
#[test]
fn concurrent_writers_lose_nothing() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let run = |uid: String| gate::record::RunRecord {
        version: gate::record::RECORD_VERSION,
        uid,
        gate_version: "test".into(),
        started_at: gate::record::now_rfc3339(),
        finished_at: gate::record::now_rfc3339(),
        target: "http://127.0.0.1:1".into(),
        suite: "s".into(),
        label: None,
        complete: true,
        faults: Vec::new(),
        git: None,
        pr: None,
        environment: None,
        endpoints: Vec::new(),
    };
    for w in 0..2 {
        for i in 0..50 {
            let export = gate::store::Export::new(None, vec![run(format!("w{w}-{i}"))]);
            std::fs::write(dir.path().join(format!("w{w}-{i}.json")), export.to_json()).unwrap();
        }
    }
    std::thread::scope(|s| {
        for w in 0..2 {
            let (dir, db) = (dir.path(), &db);
            s.spawn(move || {
                for i in 0..50 {
                    let file = format!("w{w}-{i}.json");
                    let out = gate_in(dir, db, &["history", "import", &file]);
                    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                    assert!(text(&out.stdout).contains("imported 1 run(s)"));
                }
            });
        }
    });
    let store = gate::store::Store::open(&db).unwrap();
    assert_eq!(store.count().unwrap(), 100);
}
