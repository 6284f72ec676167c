//! `action.yml`: parsed, and its install script run for real against a local file server
//! holding a fake release (checksum verified, a bad checksum refused, a missing binary falling
//! back to `cargo install`). The release workflow publishes the names the installer asks for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use serde_json::Value;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{MANIFEST}/{path}")).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Static files on loopback; every other path is a 404. Records the paths asked for.
struct FileServer {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FileServer {
    fn start(files: HashMap<String, Vec<u8>>) -> FileServer {
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let a = asked.clone();
        let files = Arc::new(files);
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |uri: Uri| {
                    let (files, a) = (files.clone(), a.clone());
                    async move {
                        a.lock().unwrap().push(uri.path().to_string());
                        match files.get(uri.path()) {
                            Some(b) => (StatusCode::OK, b.clone()),
                            None => (StatusCode::NOT_FOUND, b"Not Found".to_vec()),
                        }
                    }
                });
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
        FileServer {
            addr: rx.recv().unwrap(),
            asked,
            _stop: stop,
        }
    }
}

/// The Rust target the installer picks on this machine.
fn this_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-gnu",
        ("linux", "aarch64") => "aarch64-unknown-linux-gnu",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    }
}

/// A release asset: a tarball holding a `gate` that prints its version.
fn fake_tarball(dir: &Path) -> Vec<u8> {
    let src = dir.join("pkg");
    std::fs::create_dir_all(&src).unwrap();
    let exe = src.join("gate");
    std::fs::write(&exe, "#!/bin/sh\necho 'gate 9.9.9-fake'\n").unwrap();
    let st = Command::new("chmod").arg("755").arg(&exe).status().unwrap();
    assert!(st.success());
    let tarball = dir.join("gate.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("gate")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(tarball).unwrap()
}

fn sha256_hex(dir: &Path, bytes: &[u8]) -> String {
    let f = dir.join("to-hash");
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("sha256sum").arg(&f).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn install_script() -> String {
    let action = load("action.yml");
    let steps = action["runs"]["steps"].as_array().unwrap();
    let install = steps
        .iter()
        .find(|s| s["name"] == "Install gate")
        .expect("an install step");
    assert_eq!(install["shell"], "bash");
    install["run"].as_str().unwrap().to_string()
}

struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
    installed: Option<String>,
    github_path: String,
}

fn run_installer(dir: &Path, server: &FileServer, version: &str, cargo: Option<&Path>) -> Outcome {
    let bin = dir.join("bin");
    let _ = std::fs::remove_dir_all(&bin);
    let github_path = dir.join("github_path");
    let _ = std::fs::remove_file(&github_path);
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(install_script())
        .env("GATE_VERSION", version)
        .env("GATE_REPOSITORY", "owner/gate")
        .env("GATE_INSTALL_DIR", &bin)
        .env(
            "GATE_RELEASE_BASE_URL",
            format!("http://{}/owner/gate/releases", server.addr),
        )
        .env("GITHUB_PATH", &github_path)
        .env_remove("CARGO");
    if let Some(c) = cargo {
        cmd.env("CARGO", c);
    }
    let o = cmd.output().unwrap();
    let exe = bin.join("gate");
    let installed = exe.is_file().then(|| {
        String::from_utf8_lossy(&Command::new(&exe).output().unwrap().stdout).into_owned()
    });
    Outcome {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        installed,
        github_path: std::fs::read_to_string(&github_path).unwrap_or_default(),
    }
}

#[test]
fn action_yml_is_a_composite_action_with_the_documented_inputs() {
    let _machine = crate::common::shared();
    let action = load("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    for input in ["target", "suite", "base-target", "args", "version"] {
        assert!(action["inputs"][input].is_object(), "input {input}");
    }
    let steps = action["runs"]["steps"].as_array().unwrap();
    let ci = steps
        .iter()
        .find(|s| s["name"] == "gate ci")
        .expect("a gate ci step");
    let run = ci["run"].as_str().unwrap();
    assert!(run.contains("args=(ci --suite \"$GATE_INPUT_SUITE\")"));
    assert!(run.contains("--base-target \"$GATE_INPUT_BASE_TARGET\""));
    assert_eq!(ci["env"]["GITHUB_TOKEN"], "${{ github.token }}");
}

#[test]
fn the_installer_verifies_the_checksum_refuses_a_bad_one_and_falls_back_to_cargo() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tarball = fake_tarball(d);
    let digest = sha256_hex(d, &tarball);
    let asset = format!("gate-{}.tar.gz", this_target());
    let good: HashMap<String, Vec<u8>> = [
        (
            format!("/owner/gate/releases/download/v9.9.9/{asset}"),
            tarball.clone(),
        ),
        (
            format!("/owner/gate/releases/download/v9.9.9/{asset}.sha256"),
            format!("{digest}  {asset}\n").into_bytes(),
        ),
        (
            format!("/owner/gate/releases/latest/download/{asset}"),
            tarball.clone(),
        ),
        (
            format!("/owner/gate/releases/latest/download/{asset}.sha256"),
            format!("{digest}  {asset}\n").into_bytes(),
        ),
    ]
    .into();
    let server = FileServer::start(good);
    let o = run_installer(d, &server, "v9.9.9", None);
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.installed.as_deref(), Some("gate 9.9.9-fake\n"));
    assert!(
        o.stdout.contains(&format!("sha256 {digest}")),
        "{}",
        o.stdout
    );
    assert_eq!(o.github_path.trim(), d.join("bin").display().to_string());
    let o = run_installer(d, &server, "latest", None);
    assert!(o.ok, "{}", o.stderr);
    assert!(
        server
            .asked
            .lock()
            .unwrap()
            .contains(&format!("/owner/gate/releases/latest/download/{asset}"))
    );

    // A tampered download: the checksum file does not match.
    let bad_digest = "0".repeat(64);
    let tampered: HashMap<String, Vec<u8>> = [
        (
            format!("/owner/gate/releases/download/v9.9.9/{asset}"),
            tarball,
        ),
        (
            format!("/owner/gate/releases/download/v9.9.9/{asset}.sha256"),
            format!("{bad_digest}  {asset}\n").into_bytes(),
        ),
    ]
    .into();
    let server = FileServer::start(tampered);
    let cargo_log = d.join("cargo.log");
    let fake_cargo = d.join("fake-cargo");
    std::fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --root ]; then root=$2; fi; shift; done\nmkdir -p \"$root/bin\"\nprintf '#!/bin/sh\\necho gate-from-source\\n' > \"$root/bin/gate\"\nchmod 755 \"$root/bin/gate\"\n",
            cargo_log.display()
        ),
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("755")
            .arg(&fake_cargo)
            .status()
            .unwrap()
            .success()
    );
    let o = run_installer(d, &server, "v9.9.9", Some(&fake_cargo));
    assert!(!o.ok, "a bad checksum must fail the step");
    assert!(o.stderr.contains("checksum mismatch"), "{}", o.stderr);
    assert!(o.installed.is_none(), "nothing installed after a mismatch");
    assert!(
        !cargo_log.exists(),
        "a mismatch never falls back to building"
    );
    assert!(o.github_path.is_empty());

    // No release for this version: build from the repository at the tag.
    let server = FileServer::start(HashMap::new());
    let o = run_installer(d, &server, "v9.9.9", Some(&fake_cargo));
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.installed.as_deref(), Some("gate-from-source\n"));
    let args = std::fs::read_to_string(&cargo_log).unwrap();
    assert!(
        args.starts_with(
            "install --locked --git https://github.com/owner/gate --tag v9.9.9 --root "
        ),
        "{args}"
    );
}

#[test]
fn the_release_workflow_publishes_what_the_installer_downloads() {
    let _machine = crate::common::shared();
    let wf = load(".github/workflows/release.yml");
    assert_eq!(wf["on"]["push"]["tags"][0], "v*");
    let matrix: Vec<String> = wf["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_string())
        .collect();
    let script = install_script();
    let mut wanted: Vec<String> = script
        .lines()
        .filter_map(|l| l.split("target=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|t| !t.is_empty() && *t != "\"\"")
        .map(str::to_string)
        .collect();
    wanted.sort();
    let mut built = matrix.clone();
    built.sort();
    assert_eq!(
        built, wanted,
        "every target the installer asks for is built"
    );
    let steps = wf["jobs"]["build"]["steps"].as_array().unwrap();
    let package = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("tar -czf"))
        .unwrap();
    assert!(package.contains("asset=\"gate-${{ matrix.target }}.tar.gz\""));
    assert!(package.contains("> \"$asset.sha256\""));
    assert!(script.contains("asset=\"gate-$target.tar.gz\""));
    assert!(script.contains("\"$url/$asset.sha256\""));
}
