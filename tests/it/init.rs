//! `gate init`: a starter suite and workflow that gate's own loader accepts, and suites from
//! access logs: a generated nginx log of 100k requests over skewed routes must come back as
//! its top routes, in order, with the ids really requested, and without any secret in it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::common::text;

fn gate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(args)
        .current_dir(dir)
        .env_remove("GATE_TARGET")
        .output()
        .expect("gate runs")
}

/// A JWT-shaped value and an email: what must never reach a written file.
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJhbm4ifQ.c2lnbmF0dXJlLXNlY3JldA";
const EMAIL_USER: &str = "ann.lee";

/// One route of the generated traffic.
struct Route {
    method: &'static str,
    /// Template as gate should find it.
    template: &'static str,
    /// Base request time in ms (each request takes base × (1 + U[0, 1))).
    base_ms: f64,
}

const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/api/v1/products/{id}",
        base_ms: 4.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/products",
        base_ms: 12.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/users/{id}/orders",
        base_ms: 20.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/orders/{uuid}",
        base_ms: 8.0,
    },
    Route {
        method: "POST",
        template: "/api/v1/orders",
        base_ms: 30.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/users/{email}/profile",
        base_ms: 5.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/search",
        base_ms: 40.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/categories/{id}/products",
        base_ms: 15.0,
    },
    Route {
        method: "GET",
        template: "/assets/{hash}",
        base_ms: 1.0,
    },
    Route {
        method: "GET",
        template: "/health",
        base_ms: 0.5,
    },
    Route {
        method: "GET",
        template: "/api/v1/reviews/{id}",
        base_ms: 6.0,
    },
    Route {
        method: "PUT",
        template: "/api/v1/users/{id}",
        base_ms: 25.0,
    },
    Route {
        method: "GET",
        template: "/api/v1/carts/{uuid}/items/{id}",
        base_ms: 7.0,
    },
    Route {
        method: "DELETE",
        template: "/api/v1/carts/{uuid}",
        base_ms: 9.0,
    },
    Route {
        method: "GET",
        template: "/api/v2/recommendations/{id}",
        base_ms: 50.0,
    },
];

/// The log's time span: one hour from 10:00:00.
const SPAN_SECS: u32 = 3600;

/// What the generator wrote, to check gate's findings against.
struct Generated {
    log: String,
    /// Requests per route (index into ROUTES).
    counts: Vec<usize>,
    /// Every parameter value generated per route.
    values: Vec<HashSet<String>>,
    /// Every request time per route, in ms.
    times: Vec<Vec<f64>>,
}

fn uuid(rng: &mut SmallRng) -> String {
    let h: u128 = rng.random();
    let s = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..]
    )
}

/// `lines` requests over ROUTES with Zipf weights (1/rank), counts exact by construction
/// (rounded, then strictly decreasing), shuffled, timed uniformly over the hour.
fn generate(lines: usize) -> Generated {
    let mut rng = SmallRng::seed_from_u64(15);
    let h: f64 = (1..=ROUTES.len()).map(|k| 1.0 / k as f64).sum();
    let counts: Vec<usize> = (1..=ROUTES.len())
        .map(|k| (lines as f64 / (k as f64 * h)).round() as usize)
        .collect();
    for i in 1..counts.len() {
        assert!(
            counts[i] < counts[i - 1],
            "ranks are distinct by construction"
        );
    }
    let mut order: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| std::iter::repeat_n(i, n))
        .collect();
    order.shuffle(&mut rng);
    let uuids: Vec<String> = (0..300).map(|_| uuid(&mut rng)).collect();
    let mut values = vec![HashSet::new(); ROUTES.len()];
    let mut times = vec![Vec::new(); ROUTES.len()];
    let mut log = String::with_capacity(lines * 190);
    for (n, &i) in order.iter().enumerate() {
        let r = &ROUTES[i];
        let id = rng.random_range(1..=2000u32).to_string();
        let u = uuids[rng.random_range(0..uuids.len())].clone();
        let (path, vals): (String, Vec<String>) = match i {
            0 => (format!("/api/v1/products/{id}"), vec![id]),
            1 => {
                let page = rng.random_range(1..=50);
                // A JWT in some query strings: the query is dropped whole.
                let q = if n % 3 == 0 {
                    format!("?page={page}&access_token={JWT}")
                } else {
                    format!("?page={page}")
                };
                (format!("/api/v1/products{q}"), vec![])
            }
            2 => (format!("/api/v1/users/{id}/orders"), vec![id]),
            3 => (format!("/api/v1/orders/{u}"), vec![u]),
            4 => ("/api/v1/orders".into(), vec![]),
            5 => (
                format!("/api/v1/users/{EMAIL_USER}{id}@example.com/profile"),
                vec![],
            ),
            6 => (format!("/api/v1/search?q=shoes&token={JWT}"), vec![]),
            7 => (format!("/api/v1/categories/{id}/products"), vec![id]),
            8 => {
                let hash = format!("{:032x}{:08x}", rng.random::<u128>(), rng.random::<u32>());
                (format!("/assets/{hash}"), vec![hash])
            }
            9 => ("/health".into(), vec![]),
            10 => (format!("/api/v1/reviews/{id}"), vec![id]),
            11 => (format!("/api/v1/users/{id}"), vec![]),
            12 => (format!("/api/v1/carts/{u}/items/{id}"), vec![]),
            13 => (format!("/api/v1/carts/{u}"), vec![]),
            _ => (format!("/api/v2/recommendations/{id}"), vec![id]),
        };
        values[i].extend(vals);
        let ms = r.base_ms * (1.0 + rng.random::<f64>());
        times[i].push(ms);
        let secs = (n as u64 * SPAN_SECS as u64 / lines as u64) as u32;
        let status = if r.method == "POST" { 201 } else { 200 };
        log.push_str(&format!(
            "198.51.100.{} - - [02/Dec/2026:{:02}:{:02}:{:02} +0000] \"{} {path} HTTP/1.1\" {status} {} \"https://shop.example/\" \"Mozilla/5.0 (X11; Linux x86_64)\" {:.3}\n",
            n % 250,
            10 + secs / 3600,
            secs % 3600 / 60,
            secs % 60,
            r.method,
            rng.random_range(100..5000),
            ms / 1000.0,
        ));
    }
    Generated {
        log,
        counts,
        values,
        times,
    }
}

/// The rows of the route table on stdout: (method, route, requests, scenario).
fn table(stdout: &str) -> Vec<(String, String, u64, String)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("method"))
        .skip(1)
        .take_while(|l| !l.starts_with("wrote "))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (
                cells[0].to_string(),
                cells[1].to_string(),
                cells[2].parse().unwrap(),
                cells[cells.len() - 1].to_string(),
            )
        })
        .collect()
}

fn files_in(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// A value from `key: value` in a generated scenario (first match).
fn field<'a>(yaml: &'a str, key: &str) -> &'a str {
    yaml.lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in\n{yaml}"))
        .trim()
}

fn exact_p(times: &[f64], q: f64) -> f64 {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    t[((q * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1]
}

#[test]
fn a_skewed_nginx_log_comes_back_as_its_top_routes_with_their_ids_and_no_secrets() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let g = generate(100_000);
    std::fs::write(dir.path().join("access.log"), &g.log).unwrap();
    let out = gate(dir.path(), &["init", "--from-access-log", "access.log"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let total: usize = g.counts.iter().sum();
    assert!(
        stderr.contains(&format!(
            "{total} requests ({total} combined) over 1h00m, {} routes",
            ROUTES.len()
        )),
        "{stderr}"
    );

    // The ranking: every route down to the 8th writable one, in order, with exact counts.
    let writable = |i: usize| ROUTES[i].method == "GET" && !ROUTES[i].template.contains("{email}");
    let mut expected = Vec::new();
    let mut written = 0;
    for (i, r) in ROUTES.iter().enumerate() {
        if written == 8 {
            break;
        }
        written += usize::from(writable(i));
        expected.push((
            r.method.to_string(),
            r.template.to_string(),
            g.counts[i] as u64,
        ));
    }
    let rows = table(&stdout);
    let got: Vec<_> = rows
        .iter()
        .map(|(m, t, n, _)| (m.clone(), t.clone(), *n))
        .collect();
    assert_eq!(got, expected, "{stdout}");
    for (i, (_, _, _, scenario)) in rows.iter().enumerate() {
        assert_eq!(scenario == "written)", !writable(i), "{stdout}");
    }
    assert!(
        stderr.contains("POST /api/v1/orders not written"),
        "{stderr}"
    );
    assert!(
        stderr.contains("GET /api/v1/users/{email}/profile not written: its path carries values that look like secrets (email)"),
        "{stderr}"
    );

    let scenarios = dir.path().join("scenarios");
    let files = files_in(&scenarios);
    for (i, r) in ROUTES.iter().enumerate().take(expected.len()) {
        if !writable(i) {
            continue;
        }
        let name = &rows[i].3;
        let yml = &files[&format!("{name}.yml")];
        assert_eq!(field(yml, "method:"), r.method);
        let url = field(yml, "url:").trim_matches('"');
        // The template, with each parameter a feeder column.
        let params: Vec<&str> = r
            .template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let mut want_url = r.template.to_string();
        for p in &params {
            want_url = want_url.replace(&format!("{{{p}}}"), &format!("{{{{ data.{p} }}}}"));
        }
        assert_eq!(url, want_url, "{yml}");
        // The observed rate: requests over the hour.
        let rate: f64 = field(yml, "load: { rate:")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let want = g.counts[i] as f64 / SPAN_SECS as f64;
        assert!(
            (rate / want - 1.0).abs() < 0.01,
            "{name}: rate {rate} vs {want}"
        );
        // Thresholds: 1.5 × the observed percentile, rounded up to two significant digits.
        for (q, key) in [(0.95, "- p95 <"), (0.99, "- p99 <")] {
            let limit: f64 = field(yml, key).trim_end_matches("ms").parse().unwrap();
            let p = exact_p(&g.times[i], q) * 1.5;
            assert!(
                limit >= p * 0.99 && limit <= (p * 1.11).max(1.0) + 1.0,
                "{name}: {key} {limit} vs observed×1.5 {p}"
            );
        }
        if params.is_empty() {
            assert!(!yml.contains("data:"), "{yml}");
            assert!(!files.contains_key(&format!("{name}.ids.csv")));
            continue;
        }
        assert!(
            yml.contains(&format!("data: {{ file: {name}.ids.csv, order: random }}")),
            "{yml}"
        );
        let csv = &files[&format!("{name}.ids.csv")];
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), params.join(","));
        let ids: Vec<&str> = lines.collect();
        assert!(
            !ids.is_empty() && ids.len() <= 1000,
            "{name}: {} rows",
            ids.len()
        );
        assert_eq!(ids.len(), g.counts[i].min(1000), "{name}: a full sample");
        for id in &ids {
            assert!(
                g.values[i].contains(*id),
                "{name}: {id} was never requested"
            );
        }
        // A sample, not the first 1000: ids from across the log.
        let distinct: HashSet<&&str> = ids.iter().collect();
        assert!(distinct.len() > 100, "{name}: {} distinct", distinct.len());
    }
    assert!(files.contains_key("suite.yml"));

    // No secret anywhere in what was written.
    for (name, text) in &files {
        for needle in [
            JWT,
            "eyJ",
            EMAIL_USER,
            "@example.com",
            "access_token",
            "token=",
            "?",
        ] {
            assert!(!text.contains(needle), "{name} holds {needle}:\n{text}");
        }
    }
    assert!(!stdout.contains("eyJ") && !stderr.contains("eyJ") && !stderr.contains('@'));
}

#[test]
fn common_format_and_json_lines_are_recognised() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let mut common = String::new();
    let mut json = String::new();
    for i in 0..200u32 {
        let (path, id) = if i % 4 == 0 {
            ("/items".to_string(), None)
        } else {
            (format!("/items/{}", 100 + i % 7), Some(100 + i % 7))
        };
        // Apache `%h %l %u %t "%r" %>s %b %D` (microseconds).
        common.push_str(&format!(
            "10.0.0.1 - - [02/Dec/2026:12:00:{:02} +0100] \"GET {path}?sid=x HTTP/1.0\" 200 {} {}\n",
            i % 60,
            if i % 2 == 0 { "-".to_string() } else { "512".to_string() },
            1000 + i * 10
        ));
        json.push_str(&format!(
            "{{\"ts\":\"2026-12-02T12:00:{:02}Z\",\"level\":\"info\",\"http\":{{\"method\":\"GET\",\"where\":\"{path}\"}},\"status\":200,\"latency_ms\":{}}}\n",
            i % 60,
            1 + i % 10
        ));
        let _ = id;
    }
    std::fs::write(dir.path().join("common.log"), &common).unwrap();
    // A rotated, gzipped log is read the same.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, common.as_bytes()).unwrap();
    std::fs::write(dir.path().join("common.log.2.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("app.jsonl"), &json).unwrap();
    for (log, format, extra) in [
        ("common.log", "auto", None),
        ("common.log", "common", None),
        ("common.log.2.gz", "auto", None),
        ("app.jsonl", "json", Some("path=http.where")),
        ("app.jsonl", "auto", Some("path=http.where")),
    ] {
        let out_dir = format!("out-{log}-{format}");
        let mut args = vec![
            "init",
            "--from-access-log",
            log,
            "--format",
            format,
            "--out",
            &out_dir,
        ];
        if let Some(e) = extra {
            args.extend(["--json-field", e]);
        }
        let out = gate(dir.path(), &args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{log} {format}: {stderr}");
        let rows = table(&stdout);
        assert_eq!(rows.len(), 2, "{stdout}");
        assert_eq!((rows[0].1.as_str(), rows[0].2), ("/items/{id}", 150));
        assert_eq!((rows[1].1.as_str(), rows[1].2), ("/items", 50));
        let layout = if log.starts_with("common.log") {
            "common"
        } else {
            "JSON lines"
        };
        assert!(
            stderr.contains(&format!("200 requests (200 {layout}) over 1m00s")),
            "{stderr}"
        );
        let files = files_in(&dir.path().join(&out_dir));
        let ids: HashSet<&str> = files["get-items-id.ids.csv"].lines().skip(1).collect();
        let want: HashSet<String> = (100..107).map(|n| n.to_string()).collect();
        assert_eq!(ids, want.iter().map(String::as_str).collect());
        let yml = &files["get-items-id.yml"];
        assert!(yml.contains("- p95 <"), "request times were read:\n{yml}");
    }
    // Without --json-field the nested target is not among the guesses: no line is a request.
    let out = gate(
        dir.path(),
        &["init", "--from-access-log", "app.jsonl", "--out", "x"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("app.jsonl:1: not an access-log line"));
    // A forced layout that is not the log's: exit 2, naming the file and its first line.
    let out = gate(
        dir.path(),
        &[
            "init",
            "--from-access-log",
            "common.log",
            "--format",
            "combined",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("common.log:1: not an access-log line (no \"referer\""),
        "{err}"
    );
    assert!(!dir.path().join("scenarios").exists());
}

#[test]
fn files_are_not_replaced_without_force_and_bad_logs_exit_2() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let g = generate(2_000);
    std::fs::write(dir.path().join("a.log"), &g.log).unwrap();
    let first = gate(
        dir.path(),
        &["init", "--from-access-log", "a.log", "--top", "2"],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let target = dir.path().join("scenarios/get-products-id.yml");
    std::fs::write(&target, "mine").unwrap();
    let again = gate(
        dir.path(),
        &["init", "--from-access-log", "a.log", "--top", "2"],
    );
    assert_eq!(again.status.code(), Some(2));
    let err = text(&again.stderr);
    assert!(
        err.contains("scenarios/get-products-id.yml exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
    let forced = gate(
        dir.path(),
        &[
            "init",
            "--from-access-log",
            "a.log",
            "--top",
            "2",
            "--force",
        ],
    );
    assert_eq!(forced.status.code(), Some(0));
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .starts_with("# Written by")
    );

    // An existing suite.yml is the user's: kept, said so, not an error.
    std::fs::write(dir.path().join("scenarios/suite.yml"), "name: mine\n").unwrap();
    let kept = gate(
        dir.path(),
        &[
            "init",
            "--from-access-log",
            "a.log",
            "--top",
            "2",
            "--force",
        ],
    );
    assert!(text(&kept.stderr).contains("kept the existing scenarios/suite.yml"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("scenarios/suite.yml")).unwrap(),
        "name: mine\n"
    );

    // Lines that are not requests are counted, the rest is used.
    let mut mixed = g.log.clone();
    mixed.insert_str(0, "this is not a request\n\u{1b}[31mnor this\n");
    std::fs::write(dir.path().join("mixed.log"), &mixed).unwrap();
    let out = gate(
        dir.path(),
        &["init", "--from-access-log", "mixed.log", "--out", "m"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr)
            .contains("skipped 2 line(s) that are not access-log lines (first: mixed.log:1:"),
        "{}",
        text(&out.stderr)
    );

    // Nothing readable: exit 2, the file and the first bad line named; binary junk no panic.
    let mut junk: Vec<u8> = b"\n\n".to_vec();
    junk.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(dir.path().join("junk.log"), &junk).unwrap();
    let out = gate(
        dir.path(),
        &["init", "--from-access-log", "junk.log", "--out", "j"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--from-access-log: junk.log:3: not an access-log line"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("j").exists());
    for (args, says) in [
        (
            &["init", "--from-access-log", "missing.log"][..],
            "cannot open missing.log",
        ),
        (
            &["init", "--from-access-log", "a.log", "--top", "0"][..],
            "--top",
        ),
        (
            &["init", "--from-access-log", "a.log", "--scale", "0"][..],
            "--scale",
        ),
        (
            &["init", "--from-access-log", "a.log", "--json-field", "x"][..],
            "--json-field",
        ),
        (&["init", "--target", "ftp://x"][..], "--target"),
    ] {
        let out = gate(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Only writes and secret-bearing routes: nothing to write is exit 2, and nothing written.
    let only = "1.1.1.1 - - [02/Dec/2026:10:00:00 +0000] \"POST /orders HTTP/1.1\" 201 1\n\
                1.1.1.1 - - [02/Dec/2026:10:00:01 +0000] \"GET /u/sk-proj-abcdef123456 HTTP/1.1\" 200 1\n";
    std::fs::write(dir.path().join("only.log"), only).unwrap();
    let out = gate(
        dir.path(),
        &["init", "--from-access-log", "only.log", "--out", "o"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("no route of only.log can be written"), "{err}");
    assert!(
        err.contains("GET /u/{key} not written") && !err.contains("sk-proj"),
        "{err}"
    );
    assert!(!dir.path().join("o").exists());
    std::fs::write(dir.path().join("empty.log"), "").unwrap();
    let out = gate(dir.path(), &["init", "--from-access-log", "empty.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("empty.log is empty"));
}

#[test]
fn a_log_on_stdin_is_read() {
    use std::io::Write;
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let g = generate(3_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["init", "--from-access-log", "-", "--top", "1"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(g.log.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = table(&text(&out.stdout));
    assert_eq!(rows[0].1, ROUTES[0].template);
    assert_eq!(rows[0].2, g.counts[0] as u64);
    assert!(
        dir.path()
            .join("scenarios/get-products-id.ids.csv")
            .is_file()
    );
}

/// Load a suite directory with the code `gate run` uses.
fn load_suite(dir: &Path, target: Option<&str>) -> Result<gate::config::Plan, String> {
    let (suite, scenarios) = gate::config::read_suite(dir).map_err(|e| e.to_string())?;
    let overrides = gate::config::Overrides {
        target: target.map(str::to_string),
        ..Default::default()
    };
    gate::config::build_plan(
        &dir.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &overrides,
        &|_| None,
    )
    .map_err(|e| format!("{e}"))
}

#[test]
fn a_log_without_parameters_gives_a_suite_gate_run_loads_with_rates_and_thresholds() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..600u32 {
        let (m, p) = match i % 3 {
            0 | 1 => ("GET", "/api/v1/products?page=2"),
            _ => ("POST", "/api/v1/orders"),
        };
        log.push_str(&format!(
            "127.0.0.1 - - [02/Dec/2026:09:{:02}:{:02} +0000] \"{m} {p} HTTP/1.1\" 200 9 \"-\" \"k6\" 0.0{}\n",
            i / 60,
            i % 60,
            10 + i % 80
        ));
    }
    std::fs::write(dir.path().join("a.log"), log).unwrap();
    let out = gate(
        dir.path(),
        &[
            "init",
            "--from-access-log",
            "a.log",
            "--include-writes",
            "--scale",
            "2",
            "--target",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let scenarios = dir.path().join("scenarios");
    let plan = load_suite(&scenarios, None).expect("the written suite loads");
    let mut names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["get-products", "post-orders"]);
    let files = files_in(&scenarios);
    // 400 requests over 600 s, doubled by --scale 2.
    assert!(
        files["get-products.yml"].contains("load: { rate: 1.33/s }"),
        "{}",
        files["get-products.yml"]
    );
    let post = &files["post-orders.yml"];
    assert!(
        post.contains("# body unknown from logs") && post.contains("json: {}"),
        "{post}"
    );
    assert!(files["suite.yml"].contains("target: \"http://127.0.0.1:9\""));
    for s in &plan.scenarios {
        assert!(
            !s.thresholds.is_empty(),
            "{}: thresholds from request times",
            s.name
        );
    }
}

#[test]
fn gate_init_alone_writes_a_starter_suite_and_workflow_that_load() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = gate(dir.path(), &["init", "--target", "http://127.0.0.1:3000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for f in [
        "scenarios/suite.yml",
        "scenarios/home.yml",
        ".github/workflows/perf-gate.yml",
    ] {
        assert!(stdout.contains(&format!("wrote {f}")), "{stdout}");
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let plan = load_suite(&dir.path().join("scenarios"), None).expect("the starter suite loads");
    assert_eq!(plan.scenarios.len(), 1);
    assert_eq!(plan.target.port, 3000);
    assert!(!plan.scenarios[0].thresholds.is_empty());

    // The workflow: valid YAML, the shape of gate's own, and gate commands the CLI accepts.
    let wf_text =
        std::fs::read_to_string(dir.path().join(".github/workflows/perf-gate.yml")).unwrap();
    let wf: serde_json::Value = serde_saphyr::from_str(&wf_text).unwrap();
    assert_eq!(wf["on"]["push"]["branches"][0], "main");
    assert_eq!(wf["permissions"]["pull-requests"], "write");
    let steps = wf["jobs"]["perf"]["steps"].as_array().unwrap();
    let mut commands = Vec::new();
    for run in steps.iter().filter_map(|s| s["run"].as_str()) {
        for line in run.lines().filter(|l| l.trim_start().starts_with("gate ")) {
            let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
            use clap::Parser;
            gate::cli::Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(line.contains("--target http://127.0.0.1:3000"), "{line}");
            commands.push(words[1].to_string());
        }
    }
    assert_eq!(commands, ["ci", "run"]);
    let ci = steps
        .iter()
        .find(|s| s["name"] == "gate ci (pull request)")
        .unwrap();
    assert_eq!(ci["env"]["GITHUB_TOKEN"], "${{ secrets.GITHUB_TOKEN }}");

    // A second run replaces nothing; --force does.
    std::fs::write(dir.path().join("scenarios/home.yml"), "mine").unwrap();
    let again = gate(dir.path(), &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("scenarios/suite.yml exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("scenarios/home.yml")).unwrap(),
        "mine"
    );
    let forced = gate(dir.path(), &["init", "--force", "--out", "scenarios"]);
    assert_eq!(forced.status.code(), Some(0));
    // Without --target: the placeholder, still loadable.
    let plan = load_suite(&dir.path().join("scenarios"), None).unwrap();
    assert_eq!(plan.target.port, 8080);
}

/// The whole story against the sample service: a log of its own routes → `gate init` → `gate
/// run` passes. Scenarios with ids use `data:` feeders.
#[test]
fn a_suite_from_the_sample_services_log_runs_clean_against_it() {
    let _machine = crate::common::shared();
    let server = crate::common::shop_service();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut log = String::new();
    // 10 minutes of traffic at about 10 requests a second.
    for n in 0..6000u32 {
        let path = match rng.random_range(0..10) {
            0..=4 => format!("/api/v1/products/{}", rng.random_range(1..=2000)),
            5..=7 => format!(
                "/api/v1/products?page={}&per_page=20",
                rng.random_range(1..=50)
            ),
            _ => format!("/api/v1/users/{}/orders", rng.random_range(1..=500)),
        };
        log.push_str(&format!(
            "127.0.0.1 - - [02/Dec/2026:10:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" 200 100 \"-\" \"shop\" 0.{}\n",
            n / 10 / 60,
            n / 10 % 60,
            // 100-199 ms: thresholds (1.5 × p95, p99) far above the sample service's few ms.
            100 + n % 100
        ));
    }
    std::fs::write(dir.path().join("shop.log"), log).unwrap();
    let url = server.url();
    let out = gate(
        dir.path(),
        &["init", "--from-access-log", "shop.log", "--target", &url],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(table(&text(&out.stdout)).len(), 3);
    let run = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args([
            "run",
            "--suite",
            "scenarios",
            "--duration",
            "3s",
            "--warmup",
            "0s",
        ])
        .current_dir(dir.path())
        .env("GATE_DB", dir.path().join("h.db"))
        .env_remove("GATE_TARGET")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
}
