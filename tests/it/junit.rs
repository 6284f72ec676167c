//! `gate run --junit FILE` (validated against the JUnit shape GitLab reads), `gate completions`
//! and `gate man`.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// One parsed XML element.
#[derive(Debug, Default)]
struct El {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<El>,
    text: String,
}

/// A strict little XML reader for what JUnit files contain: a prolog, elements, attributes in
/// double quotes, text with the five predefined entities. Panics on anything malformed.
fn parse(xml: &str) -> El {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("XML declaration with UTF-8");
    let mut stack: Vec<El> = vec![El::default()];
    let mut rest = body;
    let check_text = |t: &str| {
        let mut s = t;
        while let Some(i) = s.find('&') {
            s = &s[i..];
            assert!(
                ["&lt;", "&gt;", "&amp;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| s.starts_with(e)),
                "bad entity at {s:.20}"
            );
            s = &s[1..];
        }
        assert!(
            !t.contains('>') || t.trim().is_empty(),
            "raw > in text: {t}"
        );
    };
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        check_text(text);
        stack.last_mut().unwrap().text.push_str(text);
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let el = stack.pop().unwrap();
            assert_eq!(el.name, name, "mismatched close tag");
            stack.last_mut().unwrap().children.push(el);
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs_text) = tag.split_once(' ').unwrap_or((tag, ""));
        let mut el = El {
            name: name.to_string(),
            ..El::default()
        };
        loop {
            attrs_text = attrs_text.trim_start();
            if attrs_text.is_empty() {
                break;
            }
            let (k, v) = attrs_text.split_once("=\"").expect("attribute");
            let end = v.find('"').expect("closing quote");
            assert!(!v[..end].contains('<'), "raw < in attribute");
            check_text(&v[..end]);
            assert!(
                el.attrs
                    .insert(k.to_string(), v[..end].to_string())
                    .is_none()
            );
            attrs_text = &v[end + 1..];
        }
        if self_closing {
            stack.last_mut().unwrap().children.push(el);
        } else {
            stack.push(el);
        }
    }
    assert!(rest.trim().is_empty());
    let mut doc = stack.pop().unwrap();
    assert!(stack.is_empty(), "unclosed elements");
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().unwrap()
}

/// A target on loopback that answers every request with 200.
fn target() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(|| async { "ok" });
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
    (rx.recv().unwrap(), stop)
}

#[test]
fn junit_has_one_suite_one_case_per_endpoint_and_a_failure_per_broken_threshold() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    let load = "load: { rate: 20/s, duration: 1s, warmup: 0s }";
    std::fs::write(
        suite.join("fast.yml"),
        format!("name: fast\nrequest: {{ method: GET, url: /a }}\n{load}\nthresholds: [ \"p95 < 5s\" ]\n"),
    )
    .unwrap();
    std::fs::write(
        suite.join("slow.yml"),
        format!("name: slow\nrequest: {{ method: GET, url: \"/b?x=1&y=2\" }}\n{load}\nthresholds: [ \"p95 < 0.001ms\", \"error_rate < 1%\" ]\n"),
    )
    .unwrap();
    let (addr, _stop) = target();
    let junit = dir.path().join("out/junit.xml");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let o = common::gate_in(
        dir.path(),
        &dir.path().join("h.db"),
        &[
            "run",
            "--suite",
            "suite",
            "--target",
            &format!("http://{addr}"),
            "--no-save",
            "--no-progress",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o.stderr));
    let root = parse(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(root.name, "testsuites");
    assert_eq!(root.attrs["tests"], "2");
    assert_eq!(root.attrs["failures"], "1");
    assert_eq!(root.children.len(), 1, "one testsuite per run");
    let ts = &root.children[0];
    assert_eq!(ts.name, "testsuite");
    for a in ["name", "tests", "failures", "errors", "time", "timestamp"] {
        assert!(ts.attrs.contains_key(a), "testsuite lacks {a}");
    }
    assert_eq!(ts.attrs["tests"], "2");
    assert_eq!(ts.attrs["failures"], "1");
    assert!(ts.attrs["time"].parse::<f64>().unwrap() > 0.0);
    let cases: BTreeMap<&str, &El> = ts
        .children
        .iter()
        .map(|c| {
            assert_eq!(c.name, "testcase");
            assert!(!c.attrs["classname"].is_empty());
            assert!(c.attrs["time"].parse::<f64>().unwrap() >= 0.0);
            (c.attrs["name"].as_str(), c)
        })
        .collect();
    assert_eq!(cases.keys().copied().collect::<Vec<_>>(), ["fast", "slow"]);
    let failures = |c: &El| -> Vec<String> {
        c.children
            .iter()
            .filter(|e| e.name == "failure")
            .map(|e| e.attrs["message"].clone())
            .collect()
    };
    assert!(failures(cases["fast"]).is_empty());
    let slow = failures(cases["slow"]);
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(
        slow[0].starts_with("p95 &lt; 0.001ms: measured "),
        "{slow:?}"
    );
    let out = cases["slow"]
        .children
        .iter()
        .find(|e| e.name == "system-out")
        .expect("figures in system-out");
    assert!(out.text.contains("/b?x=1&amp;y=2"), "{}", out.text);
}

#[test]
fn completions_and_man_pages_are_generated_from_the_cli() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    for (shell, needle) in [
        ("bash", "complete -F _gate"),
        ("zsh", "#compdef gate"),
        ("fish", "complete -c gate"),
    ] {
        let o = common::gate_in(dir.path(), &db, &["completions", shell]);
        assert!(o.status.success());
        let text = common::text(&o.stdout);
        assert!(
            text.contains(needle),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
        assert!(
            text.contains("dashboard") && text.contains("notify-on"),
            "{shell}"
        );
    }
    let o = common::gate_in(dir.path(), &db, &["completions", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    let o = common::gate_in(dir.path(), &db, &["man"]);
    assert!(o.status.success());
    let page = common::text(&o.stdout);
    assert!(
        page.contains(".TH gate 1") && page.contains(".SH NAME"),
        "{page:.200}"
    );
    let o = common::gate_in(dir.path(), &db, &["man", "--out", "man"]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    for f in [
        "gate.1",
        "gate-run.1",
        "gate-dashboard.1",
        "gate-history-list.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man").join(f)).unwrap();
        assert!(text.contains(".SH OPTIONS") || f == "gate.1", "{f}");
    }
    let run = std::fs::read_to_string(dir.path().join("man/gate-run.1")).unwrap();
    assert!(run.contains("junit") && run.contains("notify"));
}
