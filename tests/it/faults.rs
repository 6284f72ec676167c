//! Issue 12: faults of the machine. The history on a full disk and on a read-only file system
//! (real tmpfs mounts, so these need root: they say so and skip where mounting is refused),
//! `kill -9` in the middle of saves, and several gate processes saving into one database.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A loopback HTTP server that answers every request `200 ok`.
fn ok_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

const SCENARIO: &str = "name: ok\nrequest: { method: GET, url: /x, timeout: 2s }\nload: { users: 2, duration: 300ms, warmup: 0s }\n";

fn gate_run(suite: &Path, addr: SocketAddr, db: &Path, json: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["run", "--no-progress", "--suite"])
        .arg(suite)
        .args(["--target", &format!("http://{addr}"), "--db"])
        .arg(db)
        .arg("--json")
        .arg(json)
        .current_dir(suite)
        .env("CI", "true")
        .env_remove("GATE_TARGET")
        .env_remove("GATE_INJECT_FAULT")
        .output()
        .unwrap()
}

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None (and a loud line) where this machine does not let the tests mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here (needs root); this fault is not tested on this machine"
            );
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn runs_in(db: &Path) -> Vec<(i64, bool, i64)> {
    if !db.exists() {
        return Vec::new();
    }
    // Read-write, as the next gate would open it: SQLite rolls a hot WAL back or forward here.
    let conn = rusqlite::Connection::open(db).unwrap();
    let has_runs: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'runs')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "{}", db.display());
    if !has_runs {
        return Vec::new();
    }
    let mut stmt = conn
        .prepare("SELECT r.id, r.complete, (SELECT count(*) FROM endpoints e WHERE e.run_id = r.id) FROM runs r ORDER BY r.id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn suite_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.yml"), SCENARIO).unwrap();
    dir
}

#[test]
fn a_full_disk_keeps_the_report_and_the_history_whole() {
    let _machine = crate::common::shared();
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let addr = ok_server();
    let suite = suite_dir();
    let db = fs.path().join("history.db");
    let json = suite.path().join("run.json");
    let first = gate_run(suite.path(), addr, &db, &json);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Fill what is left of the disk.
    let mut filler = std::fs::File::create(fs.path().join("filler")).unwrap();
    let block = vec![7u8; 4096];
    while filler
        .write_all(&block)
        .and_then(|_| filler.flush())
        .is_ok()
    {}
    drop(filler);
    let _ = std::fs::remove_file(&json);
    let out = gate_run(suite.path(), addr, &db, &json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a save that failed is exit 3\n{stderr}"
    );
    assert!(
        stderr.contains(&db.display().to_string()),
        "names the database\n{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("│ ok"),
        "the table was still printed"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .expect("the JSON document was still written, whole");
    assert_eq!(doc["run"]["complete"], true);
    // The database: consistent, with the first run whole and nothing of the second.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    assert_eq!(runs_in(&db), vec![(1, true, 1)]);
}

#[test]
fn a_read_only_history_keeps_the_report_and_exits_3() {
    let _machine = crate::common::shared();
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let addr = ok_server();
    let suite = suite_dir();
    let db = fs.path().join("history.db");
    let json = suite.path().join("run.json");
    let first = gate_run(suite.path(), addr, &db, &json);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    fs.remount("ro");
    let _ = std::fs::remove_file(&json);
    let out = gate_run(suite.path(), addr, &db, &json);
    fs.remount("rw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&db.display().to_string()),
        "names the database\n{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("│ ok"),
        "the table was printed"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(doc["run"]["endpoints"][0]["successes"].as_u64().unwrap() > 0);
    assert_eq!(runs_in(&db), vec![(1, true, 1)]);
}

/// An export of `n` copies of one real run (each its own uid), for long saves.
fn big_export(dir: &Path, n: usize) -> PathBuf {
    let addr = ok_server();
    let suite = suite_dir();
    let json = suite.path().join("run.json");
    let out = gate_run(suite.path(), addr, &dir.join("seed.db"), &json);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run: gate::record::RunRecord = serde_json::from_value(doc["run"].clone()).unwrap();
    let runs = (0..n)
        .map(|i| {
            let mut r = run.clone();
            r.uid = format!("{i:032x}");
            // Many endpoints per run make each run's insert long enough to be killed inside.
            r.endpoints = (0..8)
                .map(|k| {
                    let mut e = run.endpoints[0].clone();
                    e.name = format!("ep{k}");
                    e
                })
                .collect();
            r
        })
        .collect();
    let path = dir.join("export.json");
    std::fs::write(
        &path,
        gate::store::Export::new(Some("main".into()), runs).to_json(),
    )
    .unwrap();
    path
}

/// Polls the WAL until its last frame is a commit frame past `spilled` bytes (the import's own
/// transaction committed) or the child exits; true when the commit was seen first. A WAL frame
/// is a 24-byte header and a page; bytes 4..8 of the header are the database size after a commit,
/// zero in other frames (SQLite's file format, "WAL File Format").
fn wait_for_commit(wal: &Path, spilled: u64, child: &mut std::process::Child) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if let Ok(mut f) = std::fs::File::open(wal) {
            let len = f.metadata().map_or(0, |m| m.len());
            let mut header = [0u8; 32];
            if len > spilled && f.read_exact(&mut header).is_ok() {
                let page = u64::from(u32::from_be_bytes(header[8..12].try_into().unwrap()));
                let frame = 24 + page;
                let frames = (len - 32) / frame;
                let mut fh = [0u8; 24];
                if frames > 0
                    && f.seek(SeekFrom::Start(32 + (frames - 1) * frame)).is_ok()
                    && f.read_exact(&mut fh).is_ok()
                    && fh[4..8] != [0, 0, 0, 0]
                {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Runs in the export that is imported and killed: enough that SQLite spills pages to the WAL
/// while the one transaction is still open.
const RUNS: usize = 300;
/// WAL bytes past which the import's own transaction is writing (the schema's pages at open
/// are a few 16 KB frames; past 2 MB of page cache, SQLite spills the import's pages).
const SPILLED: u64 = 256 << 10;

#[test]
fn kill_9_during_saves_never_leaves_a_half_written_run() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let export = big_export(dir.path(), RUNS);
    let db = dir.path().join("history.db");
    let wal_path = db.with_extension("db-wal");
    let wal_len = || std::fs::metadata(&wal_path).map_or(0, |m| m.len());
    // Start an import; return it once it has opened the database (its WAL exists).
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gate"))
            .args(["history", "import"])
            .arg(&export)
            .arg("--db")
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while wal_len() == 0 && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
        child
    };
    // How long an import runs after opening the database, so the kills can bracket its commit.
    let t = std::time::Instant::now();
    let mut whole = start();
    let t = {
        let t0 = t.elapsed();
        whole.wait().unwrap();
        t.elapsed() - t0
    };
    std::fs::remove_file(&db).unwrap();
    // Two kinds of kill, each round one or the other until both have landed: a timed kill
    // (homing in on the commit: one that came too early, nothing stored, waits longer next
    // time; one that came too late, the import finished, waits less), and a kill the moment
    // the import's commit frame is in the WAL (the window between the commit and the process's
    // exit is too short for a timer on a loaded machine). Every round, whatever it hit, must
    // leave a consistent history.
    let (mut before_commit, mut after_commit, mut replayed) = (0, 0, 0);
    let mut delay = t.as_secs_f64() * 0.6;
    let mut rounds = 0;
    while (before_commit < 3 || after_commit < 2) && rounds < 40 {
        rounds += 1;
        let at_commit = before_commit >= 3 || (after_commit < 2 && rounds % 2 == 0);
        let mut child = start();
        let finished = if at_commit {
            let seen = wait_for_commit(&wal_path, SPILLED, &mut child);
            let _ = child.kill(); // SIGKILL
            !seen
        } else {
            std::thread::sleep(Duration::from_secs_f64(delay));
            let finished = child.try_wait().unwrap().is_some();
            let _ = child.kill(); // SIGKILL
            finished
        };
        let _ = child.wait();
        let wal = wal_len();
        let runs = runs_in(&db);
        eprintln!(
            "round {rounds}: {}, {}, WAL {wal} bytes, {} runs stored",
            if at_commit {
                "at the commit".to_string()
            } else {
                format!("{:.0} ms after opening", delay * 1000.0)
            },
            if finished {
                "finished before the kill"
            } else {
                "killed"
            },
            runs.len()
        );
        // One import is one transaction: all runs or none, each with its 8 endpoints.
        assert!(
            runs.is_empty() || runs.len() == RUNS,
            "round {rounds}: {} runs",
            runs.len()
        );
        assert!(runs.iter().all(|&(_, complete, eps)| complete && eps == 8));
        match (finished, runs.is_empty()) {
            (true, _) if !at_commit => delay *= 0.93,
            (true, _) => {}
            (false, true) => {
                before_commit += 1;
                if !at_commit {
                    delay *= 1.04;
                }
            }
            (false, false) => {
                after_commit += 1;
                // Committed into the WAL, not yet checkpointed: the next open replayed it.
                if wal > SPILLED {
                    replayed += 1;
                }
            }
        }
        if !runs.is_empty() {
            std::fs::remove_file(&db).unwrap();
        }
    }
    eprintln!(
        "{rounds} kills: {before_commit} before the commit, {after_commit} after it ({replayed} with a WAL to replay)"
    );
    assert!(
        before_commit > 0 && after_commit > 0,
        "the kills bracket the commit: {before_commit} before it, {after_commit} after it"
    );
}

#[test]
fn four_gate_runs_at_once_on_one_database_lose_nothing() {
    let _machine = crate::common::shared();
    let addr = ok_server();
    let suite = suite_dir();
    let db = suite.path().join("shared.db");
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_gate"))
                .args(["run", "--no-progress", "--suite"])
                .arg(suite.path())
                .args(["--target", &format!("http://{addr}"), "--db"])
                .arg(&db)
                .args(["--label", &format!("writer-{i}")])
                .current_dir(suite.path())
                .env("CI", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs = runs_in(&db);
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|&(_, complete, eps)| complete && eps == 1));
}
