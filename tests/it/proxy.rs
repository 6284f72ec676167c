//! LLM targets behind a company proxy: `HTTPS_PROXY` sends the connections through a CONNECT
//! tunnel (TLS end to end with the provider), `HTTP_PROXY` sends absolute-form requests,
//! `NO_PROXY` bypasses it, and the proxy's credentials are sent to it and never shown. The
//! proxy is a tiny one on loopback that counts what it carried; it forwards every tunnel to
//! 127.0.0.1 on the port asked for, so a provider-like host name needs no DNS.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::{Ca, ServerOptions, endpoint, serve, suite, text};

const PROVIDER: &str = "api.anthropic.com";

/// What the proxy saw: each request head's first line and its Proxy-Authorization.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) lines: Vec<String>,
    pub(crate) auth: Vec<Option<String>>,
}

pub(crate) struct TestProxy {
    pub(crate) port: u16,
    pub(crate) seen: Arc<Mutex<Seen>>,
    _rt: tokio::runtime::Runtime,
}

impl TestProxy {
    pub(crate) fn tunnels(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.lines
            .iter()
            .filter(|l| l.starts_with("CONNECT "))
            .count()
    }
}

pub(crate) fn proxy() -> TestProxy {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen_by = seen.clone();
    rt.spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen_by.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or_default().to_string();
                let auth = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
                    .map(str::to_string);
                {
                    let mut s = seen.lock().unwrap();
                    s.lines.push(line.clone());
                    s.auth.push(auth);
                }
                // `CONNECT host:port` or `POST http://host:port/path`: the port is the
                // last `:NUMBER` of the authority.
                let target = line.split_whitespace().nth(1).unwrap_or_default();
                let authority = target
                    .strip_prefix("http://")
                    .map_or(target, |t| t.split('/').next().unwrap_or_default());
                let Some(port) = authority
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if line.starts_with("CONNECT ") {
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                } else if upstream.write_all(&head).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    TestProxy {
        port,
        seen,
        _rt: rt,
    }
}

fn scenario(base_url: &str) -> String {
    format!(
        "name: claude\nllm:\n  provider: anthropic\n  base_url: {base_url}\n  api_key: ${{TEST_KEY}}\n  models: [ claude-test ]\n  prompt: hi\n  max_tokens: 8\nload: {{ concurrency: 2, requests: 6 }}\n"
    )
}

fn gate(dir: &Path, env: &[(&str, &str)]) -> (Output, Option<Value>) {
    let json = dir.join("run.json");
    let _ = std::fs::remove_file(&json);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args([
        "run",
        "--suite",
        dir.to_str().unwrap(),
        "--no-save",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ])
    .current_dir(dir)
    .env("CI", "true")
    .env("TEST_KEY", "sk-test-not-a-secret")
    .env_remove("GATE_TARGET");
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("gate runs");
    let doc = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (out, doc)
}

#[test]
fn https_proxy_tunnels_llm_traffic_and_no_proxy_bypasses_it() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[PROVIDER], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"h2", b"http/1.1"],
        client_ca: None,
    });
    let port = server.addr.port();
    let proxy = proxy();
    // `resolve:` is for the direct way (NO_PROXY); through the proxy, it resolves the name.
    let dir = suite(
        &format!("tls: {{ ca: ca.pem }}\nresolve: [ \"{PROVIDER}:{port}:127.0.0.1\" ]\n"),
        &scenario(&format!("https://{PROVIDER}:{port}")),
        &[("ca.pem", &ca.pem())],
    );
    let proxy_url = format!("http://gate-user:pr0xy-s3cret@127.0.0.1:{}", proxy.port);
    let (out, doc) = gate(dir.path(), &[("HTTPS_PROXY", &proxy_url)]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert_eq!(e["successes"], 6, "{e}");
    assert_eq!(
        e["transport"]["protocol"], "HTTP/2",
        "TLS and ALPN end to end: {e}"
    );
    assert_eq!(
        e["transport"]["proxy"],
        format!("127.0.0.1:{}", proxy.port),
        "{e}"
    );
    let tunnels = proxy.tunnels();
    assert!(tunnels > 0, "the connections went through the proxy");
    {
        let seen = proxy.seen.lock().unwrap();
        assert!(
            seen.lines
                .iter()
                .all(|l| l == &format!("CONNECT {PROVIDER}:{port} HTTP/1.1")),
            "{:?}",
            seen.lines
        );
        // Basic gate-user:pr0xy-s3cret
        assert!(
            seen.auth
                .iter()
                .all(|a| a.as_deref() == Some("Basic Z2F0ZS11c2VyOnByMHh5LXMzY3JldA==")),
            "{:?}",
            seen.auth
        );
    }
    assert!(
        !all.contains("pr0xy-s3cret"),
        "the proxy password never shows"
    );
    assert!(!doc.to_string().contains("pr0xy-s3cret"));

    // NO_PROXY names the provider's domain: straight there (through `resolve:`).
    for no_proxy in [".anthropic.com", PROVIDER] {
        let (out, doc) = gate(
            dir.path(),
            &[("HTTPS_PROXY", &proxy_url), ("NO_PROXY", no_proxy)],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let doc = doc.unwrap();
        let e = endpoint(&doc);
        assert_eq!(e["successes"], 6, "{e}");
        assert!(e["transport"]["proxy"].is_null(), "{e}");
        assert_eq!(
            proxy.tunnels(),
            tunnels,
            "NO_PROXY={no_proxy} bypasses the proxy"
        );
    }
}

#[test]
fn a_proxy_that_refuses_is_one_clear_line_and_exit_3() {
    let _machine = crate::common::shared();
    // A "proxy" that answers every CONNECT with 407.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let _ = c
                    .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                    .await;
            });
        }
    });
    let dir = suite("", &scenario(&format!("https://{PROVIDER}")), &[]);
    let (out, _) = gate(
        dir.path(),
        &[("HTTPS_PROXY", &format!("http://127.0.0.1:{port}"))],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("407"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
