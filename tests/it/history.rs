//! The run history as a user meets it: runs saved on branches of a real git repository, listed,
//! exported and imported; concurrent writers; secrets kept out of the database file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gate::demo::{DemoOptions, DemoServer};

use crate::common::{gate_in, git, pg, text};

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

/// A history the tests below run on: an SQLite file, or a database on the test PostgreSQL
/// (`None` where none can start; see common/pg.rs).
struct History {
    db: PathBuf,
    /// How gate shows it (a URL's password as `***`).
    shown: String,
    /// What must never appear in any output.
    secret: Option<&'static str>,
}

impl History {
    fn sqlite(path: PathBuf) -> History {
        History {
            shown: path.display().to_string(),
            db: path,
            secret: None,
        }
    }

    fn postgres() -> Option<History> {
        let server = pg::server()?;
        let url = server.fresh_database();
        Some(History {
            shown: gate::store::redact_db(Path::new(&url)),
            db: url.into(),
            secret: Some(pg::PASSWORD),
        })
    }

    /// Outputs hold no password.
    fn check(&self, out: Output) -> Output {
        if let Some(secret) = self.secret {
            for stream in [&out.stdout, &out.stderr] {
                assert!(!text(stream).contains(secret), "{}", text(stream));
            }
        }
        out
    }
}

#[test]
fn runs_on_two_branches_are_listed_exported_and_imported_exactly() {
    let repo = tempfile::tempdir().unwrap();
    let db = repo.path().join(".gate/history.db");
    let fresh = repo.path().join(".gate/fresh.db");
    two_branches(repo, History::sqlite(db), History::sqlite(fresh));
}

#[test]
fn runs_on_two_branches_are_listed_exported_and_imported_exactly_on_postgres() {
    let (Some(h), Some(fresh)) = (History::postgres(), History::postgres()) else {
        return;
    };
    two_branches(tempfile::tempdir().unwrap(), h, fresh);
}

fn two_branches(repo: tempfile::TempDir, h: History, fresh: History) {
    let _machine = crate::common::shared();
    let svc = DemoServer::start("127.0.0.1:0".parse().unwrap(), DemoOptions::default()).unwrap();
    let r = repo.path();
    let db = h.db.clone();
    let gate_in = |dir: &Path, db: &Path, args: &[&str]| h.check(gate_in(dir, db, args));
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
        h.shown,
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
    // Into another history (a new file; another database).
    let db = fresh.db.clone();
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

/// Writers saving at the same time, every run by its own `gate history import` process (each
/// opens the database, checks its schema and writes in a transaction of its own), after all of
/// them imported the same 5 runs at once: every run afterwards, none lost, none twice, no
/// writer refused. SQLite: 2 writers × 50; PostgreSQL: 8 × 25.
#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    writers_lose_nothing(&History::sqlite(dir.path().join("h.db")), 2, 50);
}

#[test]
fn eight_writers_into_one_postgres_history_lose_nothing() {
    if let Some(h) = History::postgres() {
        writers_lose_nothing(&h, 8, 25);
    }
}

fn writers_lose_nothing(h: &History, writers: usize, saves: usize) {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = &h.db;
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
    let common =
        gate::store::Export::new(None, (0..5).map(|i| run(format!("common-{i}"))).collect());
    std::fs::write(dir.path().join("common.json"), common.to_json()).unwrap();
    for w in 0..writers {
        for i in 0..saves {
            let export = gate::store::Export::new(None, vec![run(format!("w{w}-{i}"))]);
            std::fs::write(dir.path().join(format!("w{w}-{i}.json")), export.to_json()).unwrap();
        }
    }
    // The schema exists before the race (a first open racing on a new SQLite file is another test).
    drop(gate::store::Store::open(db).unwrap());
    let common_added: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let dir = dir.path();
                s.spawn(move || {
                    let out = h.check(gate_in(dir, db, &["history", "import", "common.json"]));
                    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                    let added: usize = text(&out.stdout)
                        .strip_prefix("imported ")
                        .and_then(|t| t.split(' ').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("{}", text(&out.stdout)));
                    for i in 0..saves {
                        let file = format!("w{w}-{i}.json");
                        let out = h.check(gate_in(dir, db, &["history", "import", &file]));
                        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                        assert!(text(&out.stdout).contains("imported 1 run(s)"));
                    }
                    added
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(
        common_added, 5,
        "each shared run imported by exactly one writer"
    );
    let store = gate::store::Store::open(db).unwrap();
    let runs = store.list(&gate::store::ListFilter::default()).unwrap();
    assert_eq!(runs.len(), writers * saves + 5);
    let uids: std::collections::HashSet<&str> = runs.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids.len(), runs.len(), "no run twice");
}

/// `gate history copy` moves a team's SQLite history onto PostgreSQL and back, idempotently;
/// the password in the URL or PGPASSWORD is never printed; a server that is down or refuses
/// us is exit 3 naming host:port; a malformed URL is exit 2.
#[test]
fn a_history_is_copied_to_postgres_and_back_and_the_password_never_shows() {
    let Some(server) = pg::server() else { return };
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("team.db");
    let h = History::postgres().unwrap();
    let run = |uid: &str| gate::record::RunRecord {
        version: gate::record::RECORD_VERSION,
        uid: uid.into(),
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
    let export = gate::store::Export::new(None, vec![run("a"), run("b"), run("c")]);
    std::fs::write(d.join("three.json"), export.to_json()).unwrap();
    let out = gate_in(d, &file, &["history", "import", "three.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let url = h.db.to_str().unwrap();
    let copy = |from: &str, to: &str| {
        h.check(gate_in(
            d,
            &file,
            &["history", "copy", "--from", from, "--to", to],
        ))
    };
    let out = copy(file.to_str().unwrap(), url);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "copied 3 run(s) from {} to {} (0 already there, skipped)",
            file.display(),
            h.shown
        )),
        "{}",
        text(&out.stdout)
    );
    let out = copy(file.to_str().unwrap(), url);
    assert!(
        text(&out.stdout).contains("copied 0 run(s)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("3 already there"),
        "{}",
        text(&out.stdout)
    );
    let back = d.join("back.db");
    let out = copy(url, back.to_str().unwrap());
    assert!(
        text(&out.stdout).contains("copied 3 run(s)"),
        "{}",
        text(&out.stdout)
    );
    let out = copy(d.join("missing.db").to_str().unwrap(), url);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // The password from PGPASSWORD instead of the URL: listed, never printed.
    let dbname = url.rsplit('/').next().unwrap();
    let bare = server.url_without_password(dbname);
    let list = |env_password: Option<&str>, db: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gate"));
        c.args(["history", "list", "--db", db]).current_dir(d);
        c.env_remove("PGPASSWORD").env_remove("GATE_DB");
        if let Some(p) = env_password {
            c.env("PGPASSWORD", p);
        }
        h.check(c.output().unwrap())
    };
    let out = list(Some(pg::PASSWORD), &bare);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.contains('#'))
            .count(),
        3
    );

    // A wrong password: exit 3, naming where, not what was tried.
    let out = list(Some("Wrong-pw-5521"), &bare);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{}", server.port)), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("Wrong-pw-5521"), "{err}");
    let wrong_in_url = format!(
        "postgres://{}:Wrong-pw-5521@127.0.0.1:{}/{dbname}",
        pg::USER,
        server.port
    );
    let out = list(None, &wrong_in_url);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("Wrong-pw-5521"),
        "{}",
        text(&out.stderr)
    );

    // Nobody listening there: exit 3 naming host:port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = list(
        None,
        &format!("postgres://gate:pw-7731@127.0.0.1:{port}/db"),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("pw-7731"), "{err}");

    // A malformed URL: exit 2, naming the flag, without the password.
    let out = list(None, "postgres://gate:pw-7731@127.0.0.1:notaport/db");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("--db"), "{err}");
    assert!(!err.contains("pw-7731"), "{err}");
}
