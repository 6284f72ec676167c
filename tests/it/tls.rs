//! HTTPS targets end to end: the real `gate` binary against TLS servers on loopback whose
//! certificates are minted at test time (rcgen): HTTP/1.1 and HTTP/2 by ALPN, a private CA
//! through `--cacert` and `tls.ca`, mTLS, expired and misnamed certificates, `--insecure`,
//! and `--resolve` with a provider-like host name. Load runs are short and bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

const HOST: &str = "api.gate-test.example";

/// A private CA and what it signs, all PEM.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

pub(crate) struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gate test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server (or client) certificate for `names`; `expired` puts its validity in the past.
    pub(crate) fn leaf(&self, names: &[&str], expired: bool, client: bool) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A TLS server on loopback: `ok` for any request, an Anthropic-like SSE stream for
/// `POST /v1/messages`. It speaks HTTP/2 when ALPN picks `h2`, else HTTP/1.1.
pub(crate) struct TlsServer {
    pub(crate) addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

pub(crate) struct ServerOptions<'a> {
    pub(crate) leaf: &'a Leaf,
    pub(crate) alpn: &'a [&'a [u8]],
    /// Require a client certificate signed by this CA.
    pub(crate) client_ca: Option<&'a Ca>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn serve(o: ServerOptions<'_>) -> TlsServer {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(o.leaf.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(o.leaf.key_pem.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match o.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = o.alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = TokioIo::new(tls);
                let svc = hyper::service::service_fn(respond);
                if h2 {
                    let _ = http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = http1::Builder::new().serve_connection(io, svc).await;
                }
            });
        }
    });
    TlsServer { addr, _rt: rt }
}

const SSE: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-test\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

async fn respond(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let llm = req.uri().path() == "/v1/messages";
    // Drain the request body, so HTTP/1.1 keep-alive works with a POST.
    let _ = http_body_util::BodyExt::collect(req.into_body()).await;
    let resp = if llm {
        hyper::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Full::new(Bytes::from_static(SSE.as_bytes())))
    } else {
        hyper::Response::builder().body(Full::new(Bytes::from_static(b"ok\n")))
    };
    Ok(resp.unwrap())
}

/// A suite directory: suite.yml, one scenario, and the PEM files given.
pub(crate) fn suite(suite_yml: &str, scenario: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yml"), suite_yml).unwrap();
    std::fs::write(dir.path().join("probe.yml"), scenario).unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

const PROBE: &str = "name: probe\nrequest: { url: /health }\nload: { users: 2 }\n";

fn gate(dir: &Path, extra: &[&str]) -> (Output, Option<Value>) {
    let json = dir.join("run.json");
    let _ = std::fs::remove_file(&json);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gate"));
    cmd.args([
        "run",
        "--suite",
        dir.to_str().unwrap(),
        "--duration",
        "400ms",
        "--warmup",
        "100ms",
        "--threads",
        "1",
        "--no-save",
        "--json",
        json.to_str().unwrap(),
    ])
    .args(extra)
    .current_dir(dir)
    .env("CI", "true")
    .env_remove("GATE_TARGET")
    .env_remove("GATE_DB");
    let out = cmd.output().expect("gate runs");
    let doc = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (out, doc)
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn target(server: &TlsServer) -> String {
    format!("https://{HOST}:{}", server.addr.port())
}

fn resolve(server: &TlsServer) -> String {
    format!("{HOST}:{}:127.0.0.1", server.addr.port())
}

pub(crate) fn endpoint(doc: &Value) -> &Value {
    &doc["run"]["endpoints"][0]
}

fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn https_http1_through_a_private_ca_and_resolve() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(
        &format!("target: {}\n", target(&server)),
        PROBE,
        &[("ca.pem", &ca.pem())],
    );
    let (out, doc) = gate(
        dir.path(),
        &["--cacert", "ca.pem", "--resolve", &resolve(&server)],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert!(e["successes"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["failures"], 0, "{e}");
    let t = &e["transport"];
    assert_eq!(t["protocol"], "HTTP/1.1", "{t}");
    assert_eq!(t["tls_version"], "TLSv1.3", "{t}");
    assert_eq!(t["insecure"], false);
    // Two users, one connection each, kept alive.
    assert_eq!(t["connections"], 2, "{t}");
    assert_eq!(t["tls_handshake"]["count"], 2, "{t}");
    assert!(!t["tls_handshake"]["histogram"].as_str().unwrap().is_empty());
    assert_eq!(t["connect"]["count"], 2, "{t}");
    assert!(t["dns_ms"].is_null(), "a --resolve rule needs no DNS: {t}");
    assert_eq!(
        doc["run"]["target"],
        format!("https://{HOST}:{}", server.addr.port())
    );
    assert!(stdout.contains("probe: HTTP/1.1 over TLSv1.3"), "{stdout}");
    assert!(!stdout.contains("INSECURE"), "{stdout}");
}

#[test]
fn https_http2_is_negotiated_by_alpn_with_the_ca_and_resolve_from_suite_yml() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"h2", b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(
        &format!(
            "target: {}\ntls: {{ ca: ca.pem }}\nresolve: [ \"{}\" ]\n",
            target(&server),
            resolve(&server)
        ),
        PROBE,
        &[("ca.pem", &ca.pem())],
    );
    let (out, doc) = gate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert!(e["successes"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["failures"], 0, "{e}");
    assert_eq!(e["transport"]["protocol"], "HTTP/2", "{e}");
    assert!(text(&out.stdout).contains("probe: HTTP/2 over TLSv1.3"));
    // --http1.1: the same server, HTTP/1.1 by ALPN.
    let (out, doc) = gate(dir.path(), &["--http1.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    assert_eq!(endpoint(&doc)["transport"]["protocol"], "HTTP/1.1");
    assert!(endpoint(&doc)["successes"].as_u64().unwrap() > 0);
}

#[test]
fn new_connection_per_request_measures_a_handshake_per_request() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(
        &format!("target: {}\ntls: {{ ca: ca.pem }}\n", target(&server)),
        "name: probe\nrequest: { url: /health }\nload: { users: 1, new_connection_per_request: true }\n",
        &[("ca.pem", &ca.pem())],
    );
    let (out, doc) = gate(dir.path(), &["--resolve", &resolve(&server)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    let requests = e["requests"].as_u64().unwrap();
    let handshakes = e["transport"]["tls_handshake"]["count"].as_u64().unwrap();
    assert!(requests > 2, "{e}");
    // Warmup requests open connections too; every measured request had its own.
    assert!(
        handshakes >= requests,
        "{handshakes} handshakes for {requests} requests"
    );
}

#[test]
fn an_untrusted_certificate_is_one_clear_line_and_exit_3() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(&format!("target: {}\n", target(&server)), PROBE, &[]);
    let (out, doc) = gate(dir.path(), &["--resolve", &resolve(&server)]);
    assert_clean_failure(
        &out,
        &format!("certificate for {HOST} is not trusted: pass --cacert FILE, or --insecure"),
    );
    assert!(doc.is_none(), "no load was sent, so no document");

    // --insecure: it runs, and says so loudly, in the output and in the record.
    let (out, doc) = gate(dir.path(), &["--resolve", &resolve(&server), "--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("INSECURE: TLS certificates were not verified"),
        "{stdout}"
    );
    let doc = doc.unwrap();
    assert_eq!(endpoint(&doc)["transport"]["insecure"], true);
    assert!(endpoint(&doc)["successes"].as_u64().unwrap() > 0);
}

#[test]
fn an_expired_certificate_is_refused() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], true, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(
        &format!("target: {}\n", target(&server)),
        PROBE,
        &[("ca.pem", &ca.pem())],
    );
    let (out, _) = gate(
        dir.path(),
        &["--cacert", "ca.pem", "--resolve", &resolve(&server)],
    );
    assert_clean_failure(&out, &format!("certificate for {HOST} has expired"));
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&["other.gate-test.example"], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(
        &format!("target: {}\n", target(&server)),
        PROBE,
        &[("ca.pem", &ca.pem())],
    );
    let (out, _) = gate(
        dir.path(),
        &["--cacert", "ca.pem", "--resolve", &resolve(&server)],
    );
    assert_clean_failure(&out, &format!("not valid for the host name {HOST}"));
}

#[test]
fn plain_http_on_a_tls_port_and_tls_on_a_plain_port_fail_cleanly() {
    let _machine = crate::common::shared();
    // A plain TCP server that closes at once: the handshake fails, one line, exit 3.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            drop(conn);
        }
    });
    let dir = suite(&format!("target: https://127.0.0.1:{port}\n"), PROBE, &[]);
    let (out, _) = gate(dir.path(), &[]);
    assert_clean_failure(&out, "TLS handshake with 127.0.0.1 failed");
}

#[test]
fn a_gateway_that_wants_a_client_certificate_gets_one() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], false, false);
    let client = ca.leaf(&["gate-client"], false, true);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"h2", b"http/1.1"],
        client_ca: Some(&ca),
    });
    let files = [
        ("ca.pem", ca.pem()),
        ("client.pem", client.cert_pem.clone()),
        ("client.key", client.key_pem.clone()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    // Without one: refused before any load, with a hint.
    let dir = suite(
        &format!("target: {}\ntls: {{ ca: ca.pem }}\n", target(&server)),
        PROBE,
        &files,
    );
    let (out, _) = gate(dir.path(), &["--resolve", &resolve(&server)]);
    assert_clean_failure(&out, "client certificate");

    let dir = suite(
        &format!(
            "target: {}\ntls: {{ ca: ca.pem, cert: client.pem, key: client.key }}\n",
            target(&server)
        ),
        PROBE,
        &files,
    );
    let (out, doc) = gate(dir.path(), &["--resolve", &resolve(&server)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    assert!(endpoint(&doc)["successes"].as_u64().unwrap() > 0);
    assert_eq!(endpoint(&doc)["failures"], 0);
}

#[test]
fn bad_tls_files_are_bad_input() {
    let _machine = crate::common::shared();
    let dir = suite(
        "target: https://127.0.0.1:1\ntls: { ca: missing.pem }\n",
        PROBE,
        &[("junk.pem", "not a certificate\n")],
    );
    let (out, _) = gate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("tls.ca"),
        "{}",
        text(&out.stderr)
    );

    let dir = suite(
        "target: https://127.0.0.1:1\n",
        PROBE,
        &[("junk.pem", "not a certificate\n")],
    );
    let (out, _) = gate(dir.path(), &["--cacert", "junk.pem"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("junk.pem"), "{stderr}");
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}

#[test]
fn an_llm_scenario_goes_to_its_https_base_url_under_a_provider_name() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let provider_host = "api.anthropic.com";
    let leaf = ca.leaf(&[provider_host], false, false);
    let server = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"h2", b"http/1.1"],
        client_ca: None,
    });
    let port = server.addr.port();
    // No `target:` and no --target: the scenario's base_url says where to go.
    let dir = suite(
        &format!("tls: {{ ca: ca.pem }}\nresolve: [ \"{provider_host}:{port}:127.0.0.1\" ]\n"),
        &format!(
            "name: claude\nllm:\n  provider: anthropic\n  base_url: https://{provider_host}:{port}\n  api_key: ${{TEST_KEY}}\n  models: [ claude-test ]\n  prompt: hi\n  max_tokens: 8\nload: {{ concurrency: 2, requests: 6 }}\n"
        ),
        &[("ca.pem", &ca.pem())],
    );
    let json = dir.path().join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args([
            "run",
            "--suite",
            dir.path().to_str().unwrap(),
            "--no-save",
            "--warmup",
            "0s",
            "--json",
            json.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .env("CI", "true")
        .env("TEST_KEY", "sk-test-not-a-secret")
        .env_remove("GATE_TARGET")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{}",
        text(&out.stdout)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let e = endpoint(&doc);
    assert_eq!(e["successes"], 6, "{e}");
    assert_eq!(e["transport"]["protocol"], "HTTP/2", "{e}");
    assert_eq!(e["llm"]["output_tokens"], 12, "{e}");
    assert!(
        !text(&out.stdout).contains("sk-test"),
        "the key never shows"
    );
}

/// An HTTP/2-only server over plain TCP (h2c with prior knowledge).
fn serve_h2c() -> TlsServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(respond);
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    TlsServer { addr, _rt: rt }
}

#[test]
fn h2c_with_prior_knowledge_on_request() {
    let _machine = crate::common::shared();
    let server = serve_h2c();
    let dir = suite(
        &format!("target: http://127.0.0.1:{}\n", server.addr.port()),
        PROBE,
        &[],
    );
    let (out, doc) = gate(dir.path(), &["--http2-prior-knowledge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert!(e["successes"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["failures"], 0, "{e}");
    assert_eq!(e["transport"]["protocol"], "HTTP/2", "{e}");
    assert!(e["transport"]["tls_handshake"].is_null(), "{e}");
    assert!(text(&out.stdout).contains("probe: HTTP/2 (h2c)"));

    // Without the flag gate speaks HTTP/1.1, which this server does not: every request fails.
    let (out, doc) = gate(dir.path(), &[]);
    assert_ne!(out.status.code(), Some(0));
    let doc = doc.unwrap();
    assert_eq!(endpoint(&doc)["successes"], 0);
    assert_eq!(endpoint(&doc)["transport"]["protocol"], "HTTP/1.1");
}

/// An h2c server that misbehaves the HTTP/2 way: every `reset_every`-th request on a
/// connection gets RST_STREAM (INTERNAL_ERROR), and the `goaway_at`-th request is left
/// unanswered while the connection ends with GOAWAY (ENHANCE_YOUR_CALM).
fn serve_h2c_misbehaving(reset_every: u32, goaway_at: u32) -> TlsServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                let mut n = 0u32;
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    n += 1;
                    if n == goaway_at {
                        conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                        // Drive the connection until the GOAWAY is out and it closes.
                        let _ = std::future::poll_fn(|cx| conn.poll_closed(cx)).await;
                        drop(respond);
                        return;
                    }
                    if n.is_multiple_of(reset_every) {
                        respond.send_reset(h2::Reason::INTERNAL_ERROR);
                        continue;
                    }
                    let resp = hyper::Response::builder().body(()).unwrap();
                    if let Ok(mut body) = respond.send_response(resp, false) {
                        let _ = body.send_data(Bytes::from_static(b"ok\n"), true);
                    }
                }
            });
        }
    });
    TlsServer { addr, _rt: rt }
}

#[test]
fn h2_goaway_and_rst_stream_are_error_kinds_and_the_run_goes_on() {
    let _machine = crate::common::shared();
    let server = serve_h2c_misbehaving(3, 8);
    let dir = suite(
        &format!("target: http://127.0.0.1:{}\n", server.addr.port()),
        PROBE,
        &[],
    );
    let (out, doc) = gate(dir.path(), &["--http2-prior-knowledge"]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(
        out.status.code(),
        Some(3),
        "the run is not a bad peer: {stderr}"
    );
    let doc = doc.expect("the run is reported");
    let e = endpoint(&doc);
    assert_eq!(doc["run"]["complete"], true, "{e}");
    let errors = &e["errors"];
    assert!(errors["reset_stream"].as_u64().unwrap_or(0) > 0, "{e}");
    assert!(errors["goaway"].as_u64().unwrap_or(0) > 0, "{e}");
    // Every 8th request ends a connection: gate reconnected and kept measuring.
    let goaways = errors["goaway"].as_u64().unwrap();
    assert!(
        e["transport"]["connections"].as_u64().unwrap() > goaways,
        "{e}"
    );
    assert!(e["successes"].as_u64().unwrap() > 4 * goaways, "{e}");
    for kind in ["reset", "other", "protocol"] {
        assert!(errors[kind].is_null(), "no `{kind}`: {e}");
    }
}

#[test]
fn http2_users_are_streams_over_load_connections() {
    let _machine = crate::common::shared();
    let ca = Ca::new();
    let leaf = ca.leaf(&[HOST], false, false);
    let h2 = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"h2", b"http/1.1"],
        client_ca: None,
    });
    let suite_yml = |server: &TlsServer| {
        format!(
            "target: {}\ntls: {{ ca: ca.pem }}\nresolve: [ \"{}\" ]\n",
            target(server),
            resolve(server)
        )
    };
    let shared = "name: probe\nrequest: { url: /health }\nload: { users: 8, connections: 2 }\n";
    let dir = suite(&suite_yml(&h2), shared, &[("ca.pem", &ca.pem())]);
    let (out, doc) = gate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert!(e["successes"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["failures"], 0, "{e}");
    let t = &e["transport"];
    assert_eq!(t["protocol"], "HTTP/2", "{e}");
    assert_eq!(t["connections"], 2, "8 users, 2 connections: {e}");
    assert_eq!(t["shared_connections"], 2, "{e}");
    assert_eq!(t["streams_per_connection"], 4, "{e}");
    assert!(
        text(&out.stdout).contains("4 streams per connection"),
        "{}",
        text(&out.stdout)
    );
    let shared_hash = e["scenario_hash"].clone();

    // The same users without `connections`: one connection each, and another scenario hash.
    let own = "name: probe\nrequest: { url: /health }\nload: { users: 8 }\n";
    let dir = suite(&suite_yml(&h2), own, &[("ca.pem", &ca.pem())]);
    let (out, doc) = gate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert_eq!(e["transport"]["connections"], 8, "{e}");
    assert_eq!(e["transport"]["streams_per_connection"], 1, "{e}");
    assert!(e["transport"]["shared_connections"].is_null(), "{e}");
    assert_ne!(e["scenario_hash"], shared_hash);

    // HTTP/1.1 has one request per connection at a time: `connections` does not apply.
    let h1 = serve(ServerOptions {
        leaf: &leaf,
        alpn: &[b"http/1.1"],
        client_ca: None,
    });
    let dir = suite(&suite_yml(&h1), shared, &[("ca.pem", &ca.pem())]);
    let (out, doc) = gate(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = doc.unwrap();
    let e = endpoint(&doc);
    assert_eq!(e["transport"]["protocol"], "HTTP/1.1", "{e}");
    assert_eq!(e["transport"]["connections"], 8, "{e}");
    assert!(e["transport"]["shared_connections"].is_null(), "{e}");
}

#[test]
fn a_forced_protocol_changes_the_scenario_hash_and_the_default_does_not() {
    let _machine = crate::common::shared();
    let server = serve_h2c();
    let dir = suite(
        &format!("target: http://127.0.0.1:{}\n", server.addr.port()),
        PROBE,
        &[],
    );
    let hash = |extra: &[&str]| {
        let (_, doc) = gate(dir.path(), extra);
        endpoint(&doc.unwrap())["scenario_hash"].clone()
    };
    let default = hash(&[]);
    let h2c = hash(&["--http2-prior-knowledge"]);
    let h1 = hash(&["--http1.1"]);
    assert_ne!(default, h2c);
    assert_ne!(default, h1);
    assert_ne!(h1, h2c);
    assert_eq!(hash(&[]), default, "the hash is stable");
}
