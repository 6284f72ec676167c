//! A real PostgreSQL for the tests (and the history benchmark): `initdb` and `pg_ctl` in a
//! temporary directory, on a free loopback port, as an unprivileged user (`postgres`, else
//! `nobody`, through `runuser` when the tests run as root: initdb refuses root), with password
//! (SCRAM) authentication so the tests can check a password never leaks. One server per test
//! process, started on first use; every test gets a fresh database (`CREATE DATABASE`).
//!
//! Stopping: a small reaper process (its own process group, so Ctrl-C does not kill it first)
//! waits for its stdin to close, which happens when the test process exits however it exits,
//! then runs `pg_ctl stop -m immediate` and removes the directory. No postmaster outlives
//! `cargo test`.
//!
//! Binaries: `GATE_TEST_PG_BIN` (a directory holding initdb and pg_ctl), else `initdb` on PATH,
//! else the newest /usr/lib/postgresql/*/bin. Without them the PostgreSQL tests are skipped with
//! a printed reason, except under `CI=true`, where they fail: CI (`.ci/run`) installs PostgreSQL.
//!
//! Shared by src/store/tests.rs, tests/it and benches/history_scale.rs (through `#[path]`): it
//! uses only std, tempfile and the postgres crate.
#![allow(dead_code)]

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The superuser the tests connect as, and its password.
pub const USER: &str = "gate";
pub const PASSWORD: &str = "pg-test-s3cret-0xC0FFEE";

pub struct Server {
    pub port: u16,
    dir: PathBuf,
    /// Closed when this process exits: the reaper then stops the server.
    _reaper_stdin: Mutex<ChildStdin>,
    _reaper: Mutex<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The shared server, or None (and a printed reason, once) where none can start. Under
/// `CI=true` a server that cannot start fails the test instead.
pub fn server() -> Option<&'static Server> {
    let started = SERVER.get_or_init(|| {
        let r = start(false);
        if let Err(why) = &r {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                // Fails every test that asks, with the reason.
                return Err(format!("CI=true and PostgreSQL cannot start: {why}"));
            }
            // Straight to stderr, past the test harness's capture: the reason must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "note: skipping the PostgreSQL tests (CI=true would fail them): {why}"
            );
        }
        r
    });
    match started {
        Ok(s) => Some(s),
        Err(why) if why.starts_with("CI=true") => panic!("{why}"),
        Err(_) => None,
    }
}

impl Server {
    /// A URL (password included) to a new, empty database of its own.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "gate_t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin =
            postgres::Client::connect(&self.admin_conninfo("postgres"), postgres::NoTls)
                .expect("connect to the test PostgreSQL");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        self.url(&name)
    }

    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{dbname}",
            self.port
        )
    }

    /// The same database without the password (for PGPASSWORD and redaction tests).
    pub fn url_without_password(&self, dbname: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{dbname}", self.port)
    }

    pub fn admin_conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname={dbname}",
            self.port
        )
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

fn find_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("GATE_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "GATE_TEST_PG_BIN={} holds no initdb",
                dir.display()
            ))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let initdb = d.join("initdb");
            if initdb.is_file() {
                // A symlink into the real bin directory: use that (pg_ctl finds postgres beside it).
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                return Ok(real.parent().map_or(d, Path::to_path_buf));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb (set GATE_TEST_PG_BIN, or install PostgreSQL)".to_string())
}

/// Who runs the server: ourselves, or (as root) `postgres`, else `nobody`.
fn server_user() -> Result<Option<(String, u32, u32)>, String> {
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot tell who runs the tests: {e}"))?;
    if euid != 0 {
        return Ok(None);
    }
    for user in ["postgres", "nobody"] {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, user]).output().ok()?;
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return Ok(Some((user.to_string(), uid, gid)));
        }
    }
    Err("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL".into())
}

/// `program args…`, as `user` when given.
fn as_user(user: &Option<(String, u32, u32)>, program: &Path) -> Command {
    match user {
        Some((name, _, _)) => {
            let mut c = Command::new("runuser");
            c.args(["-u", name, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Start a server of one's own. `durable`: fsync and synchronous commits on, as in production
/// (the benchmark); the tests turn both off, they need no crash safety.
pub fn start(durable: bool) -> Result<Server, String> {
    let bin = find_bin()?;
    let user = server_user()?;
    let dir = tempfile::Builder::new()
        .prefix("gate-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let chown = |p: &Path| -> Result<(), String> {
        if let Some((_, uid, gid)) = &user {
            std::os::unix::fs::chown(p, Some(*uid), Some(*gid))
                .map_err(|e| format!("chown {}: {e}", p.display()))?;
        }
        Ok(())
    };
    chown(&dir)?;
    // From here on the reaper owns the directory: it removes it at exit, even on failure.
    let pg_ctl = bin.join("pg_ctl");
    let data = dir.join("data");
    let stop = as_user(&user, &pg_ctl)
        .args(["-D"])
        .arg(&data)
        .args(["-m", "immediate", "stop"])
        .get_args()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let stop = format!(
        "{} {stop}",
        shell_quote(&as_user(&user, &pg_ctl).get_program().to_string_lossy())
    );
    let script = format!(
        "read _ignored; if [ -f {pid} ]; then {stop} >/dev/null 2>&1; fi; rm -rf {dir}",
        pid = shell_quote(&data.join("postmaster.pid").to_string_lossy()),
        dir = shell_quote(&dir.to_string_lossy()),
    );
    let mut reaper = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the reaper: {e}"))?;
    let reaper_stdin = reaper.stdin.take().expect("piped stdin");

    let pwfile = dir.join("pwfile");
    std::fs::File::create(&pwfile)
        .and_then(|mut f| writeln!(f, "{PASSWORD}"))
        .map_err(|e| format!("password file: {e}"))?;
    chown(&pwfile)?;
    let log = dir.join("initdb.log");
    let out = as_user(&user, &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            USER,
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::write(&log, &out.stderr);
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut last = String::new();
    for _attempt in 0..3 {
        let port = free_port()?;
        let server_log = dir.join("server.log");
        let status = as_user(&user, &pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&server_log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{}",
                dir.display(),
                if durable {
                    ""
                } else {
                    " -F -c full_page_writes=off -c synchronous_commit=off"
                }
            ))
            .arg("start")
            // The postmaster inherits these: never pipes, or whoever reads them waits forever.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if status.success() {
            return Ok(Server {
                port,
                dir,
                _reaper_stdin: Mutex::new(reaper_stdin),
                _reaper: Mutex::new(reaper),
            });
        }
        last = std::fs::read_to_string(&server_log).unwrap_or_default();
    }
    Err(format!("pg_ctl start failed: {}", last.trim()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
