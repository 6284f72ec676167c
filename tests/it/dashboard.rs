//! `gate dashboard`: the static site built from a history, checked as files (escaping, safe file
//! names, relative links only) and in a real browser (headless Chromium over file://: no console
//! errors, every endpoint shown, screenshots kept under target/ for a person to look at).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gate::git::GitInfo;
use gate::record::{
    CostRecord, EndpointRecord, LatencySummary, LlmRecord, LoadRecord, RECORD_VERSION, RunRecord,
    new_histogram,
};
use gate::store::Store;

const HOSTILE: &str = "<script>alert(\"x\")</script> & 'quotes'";

/// 400 latencies spread evenly over centre ± 20%, in microseconds.
fn summary(centre_ms: f64) -> LatencySummary {
    let mut h = new_histogram();
    for i in 0..400u64 {
        let f = 0.8 + 0.4 * (i as f64 / 399.0);
        h.record((centre_ms * f * 1000.0) as u64).unwrap();
    }
    LatencySummary::from_histogram(&h)
}

fn endpoint(name: &str, p_ms: f64, llm: Option<LlmRecord>) -> EndpointRecord {
    EndpointRecord {
        name: name.into(),
        scenario_file: format!("scenarios/{name}.yml"),
        scenario_hash: format!("hash-{name}"),
        method: "GET".into(),
        url: format!("/api/{name}?q=<b>"),
        load: LoadRecord {
            model: "open".into(),
            users: None,
            rate_per_s: Some(40.0),
            duration_s: 10.0,
            warmup_s: 0.0,
        },
        requests: 400,
        successes: 396,
        failures: 4,
        elapsed_s: 10.0,
        throughput_rps: 39.6,
        error_rate: 0.01,
        latency: summary(p_ms),
        ttfb: summary(p_ms / 2.0),
        status_counts: Default::default(),
        errors: Default::default(),
        server_timing: Default::default(),
        late_starts: 0,
        dropped_arrivals: 0,
        bytes_received: 0,
        ramp: None,
        llm,
        transport: None,
    }
}

fn llm(model: &str, ttft_ms: f64, tps: f64, per_1k: f64) -> LlmRecord {
    LlmRecord {
        provider: "anthropic".into(),
        models: vec![model.into()],
        stream: true,
        ttft: summary(ttft_ms),
        output_tps_mean: tps,
        time_per_token: summary(1000.0 / tps),
        cost: Some(CostRecord {
            per_1k_usd: per_1k,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn run(i: usize, branch: &str, orders_ms: f64) -> RunRecord {
    let f = i as f64;
    RunRecord {
        version: RECORD_VERSION,
        uid: format!("{branch}-{i}"),
        gate_version: "test".into(),
        started_at: format!("2026-11-{:02}T10:00:00.000Z", i + 1),
        finished_at: format!("2026-11-{:02}T10:01:00.000Z", i + 1),
        target: "http://127.0.0.1:8080".into(),
        suite: "scenarios".into(),
        label: (i == 2).then(|| "nightly <b>bold</b>".to_string()),
        complete: true,
        faults: Vec::new(),
        git: Some(GitInfo {
            commit: Some(format!("{:07x}{:033x}", 0xabc1230 + i, 0)),
            branch: Some(branch.into()),
            merge_base: None,
            dirty: false,
        }),
        pr: None,
        environment: None,
        endpoints: vec![
            endpoint("user-orders", orders_ms, None),
            endpoint("products-list", 20.0 + f * 0.2, None),
            endpoint(HOSTILE, 5.0, None),
            endpoint(
                "chat/claude-x",
                900.0,
                Some(llm("claude-x", 300.0 + f * 5.0, 80.0 - f, 1.25)),
            ),
            endpoint(
                "chat/gpt-y",
                700.0,
                Some(llm("gpt-y", 250.0, 95.0 + f, 0.95 + f * 0.01)),
            ),
        ],
    }
}

const SUITE: &str =
    "name: t\ntarget: http://127.0.0.1:9\nthresholds:\n  - p95 < 60ms\n  - error_rate < 5%\n";
const SCENARIO: &str = "name: NAME\nrequest: { method: GET, url: /x }\n";

/// A history with 8 runs of main (user-orders regresses in the last one) and 2 of a feature
/// branch that must not show; a suite with SLO thresholds for two endpoints.
fn fixture(dir: &Path) -> PathBuf {
    let db = dir.join("history.db");
    let mut store = Store::open(&db).unwrap();
    for i in 0..8 {
        let orders = if i == 7 { 90.0 } else { 40.0 + i as f64 * 0.3 };
        store.save(&run(i, "main", orders)).unwrap();
        if i == 3 {
            let mut other = run(20, "feature", 500.0);
            other.endpoints[0].name = "only-on-feature".into();
            store.save(&other).unwrap();
        }
    }
    let suite = dir.join("scenarios");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(suite.join("suite.yml"), SUITE).unwrap();
    for name in ["user-orders", "products-list"] {
        std::fs::write(
            suite.join(format!("{name}.yml")),
            SCENARIO.replace("NAME", name),
        )
        .unwrap();
    }
    db
}

fn build_site(dir: &Path) -> PathBuf {
    let db = fixture(dir);
    let out = dir.join("site");
    let o = common::gate_in(
        dir,
        &db,
        &[
            "dashboard",
            "--out",
            "site",
            "--last",
            "7",
            "--branch",
            "main",
        ],
    );
    assert!(
        o.status.success(),
        "{}\n{}",
        common::text(&o.stdout),
        common::text(&o.stderr)
    );
    out
}

fn pages(site: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(site)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    v.sort();
    v
}

/// Every `href="…"`, `src="…"` and CSS `url(…)` in a text.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["href=\"", "src=\"", "xlink:href=\""] {
        let mut rest = text;
        while let Some(i) = rest.find(key) {
            rest = &rest[i + key.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].to_string());
        }
    }
    let mut rest = text;
    while let Some(i) = rest.find("url(") {
        rest = &rest[i + 4..];
        let end = rest.find(')').unwrap();
        out.push(rest[..end].trim_matches(['"', '\'']).to_string());
    }
    out
}

#[test]
fn the_site_escapes_names_links_only_relatively_and_shows_every_endpoint() {
    let _machine = crate::common::shared();
    let dir = tempfile::tempdir().unwrap();
    let site = build_site(dir.path());
    let files = pages(&site);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"index.html".to_string()), "{names:?}");
    for n in &names {
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "unsafe file name {n}"
        );
    }
    assert!(names.contains(&"endpoint-user-orders.html".to_string()));
    assert!(names.contains(&"endpoint-script-alert-x-script-quotes.html".to_string()));
    assert!(names.contains(&"llm-chat.html".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("only-on-feature")),
        "another branch's endpoint leaked in: {names:?}"
    );

    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    for shown in [
        "user-orders",
        "products-list",
        "chat/claude-x",
        "chat/gpt-y",
    ] {
        assert!(index.contains(shown), "index lacks {shown}");
    }
    // The hostile name only ever appears escaped.
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;";
    assert!(index.contains(escaped), "escaped name missing");
    for page in &files {
        let text = std::fs::read_to_string(page).unwrap();
        assert!(
            !text.contains("<script") && !text.contains("<b>"),
            "{} has unescaped markup from the history",
            page.display()
        );
        for r in references(&text) {
            assert!(
                !r.contains(':') && !r.starts_with('/') && !r.contains(".."),
                "{}: `{r}` is not a relative link inside the site",
                page.display()
            );
            assert!(
                site.join(&r).is_file(),
                "{}: link `{r}` does not resolve",
                page.display()
            );
        }
    }
    let css = std::fs::read_to_string(site.join("assets/gate.css")).unwrap();
    for r in references(&css) {
        assert!(r.starts_with("data:font/ttf;base64,"), "css fetches {r}");
    }

    // The regression of the last run is marked: on the index, on the endpoint's chart.
    assert!(index.contains("<span class=\"badge fail\">regression</span> user-orders"));
    let orders = std::fs::read_to_string(site.join("endpoint-user-orders.html")).unwrap();
    assert!(
        orders.contains("flagged regression</title>"),
        "no marked point"
    );
    assert!(orders.contains("SLO p95 &lt; 60ms"), "no SLO line");
    assert_eq!(
        orders.matches("<title>p95 ").count(),
        7,
        "a hover value per run shown"
    );
    // --last 7 of 8 runs: the oldest is used as a baseline but not shown.
    assert!(
        !index.contains(">#1<") && index.contains(">#2<"),
        "run window"
    );
    let llm = std::fs::read_to_string(site.join("llm-chat.html")).unwrap();
    for part in [
        "Time to first token",
        "Output tokens per second",
        "Cost per 1,000 requests",
        "claude-x",
        "gpt-y",
    ] {
        assert!(llm.contains(part), "LLM page lacks {part}");
    }
}

/// Where Chromium is: `GATE_CHROMIUM`, else the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GATE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

struct Browser {
    exe: PathBuf,
}

impl Browser {
    /// Runs headless Chromium on a `file://` URL with a fresh profile; returns stdout and the
    /// page's console messages (Chromium logs them to stderr as `CONSOLE` lines).
    fn run(&self, url: &str, extra: &[String]) -> (String, Vec<String>) {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&self.exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("chromium did not finish {url} within 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = common::text(&out.stderr);
        let console = stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect();
        (common::text(&out.stdout), console)
    }
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

#[test]
fn every_page_renders_in_headless_chromium_without_console_errors() {
    let _machine = crate::common::shared();
    let Some(exe) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but Chromium is missing: install it (apt-get install -y chromium) or set GATE_CHROMIUM"
            );
        }
        eprintln!(
            "\n\n*** SKIPPED: Chromium not found; the dashboard was NOT checked in a browser. ***\n*** Install it (apt-get install -y chromium) or set GATE_CHROMIUM. ***\n"
        );
        return;
    };
    let browser = Browser { exe };
    let dir = tempfile::tempdir().unwrap();
    let site = build_site(dir.path());

    // The console check must be able to fail: a page with a script error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(&bad, "<!doctype html><p>x</p><script>notDefined()</script>").unwrap();
    let (_, console) = browser.run(&file_url(&bad), &["--dump-dom".into()]);
    assert!(
        console.iter().any(|l| l.contains("notDefined")),
        "the console check sees nothing: {console:?}"
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut index_dom = String::new();
    for page in pages(&site) {
        let url = file_url(&page);
        let (dom, console) = browser.run(&url, &["--dump-dom".into()]);
        assert!(console.is_empty(), "{url}: console messages {console:#?}");
        assert!(
            dom.contains("</main>") && dom.contains("<svg"),
            "{url} did not render: {}",
            &dom[..dom.len().min(400)]
        );
        assert!(!dom.contains("<script"), "{url}: a script element exists");
        let name = page.file_stem().unwrap().to_string_lossy().into_owned();
        let shot = shots.join(format!("{name}.png"));
        let (_, console) = browser.run(
            &url,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2400".into(),
            ],
        );
        assert!(console.is_empty(), "{url}: console messages {console:#?}");
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{}: screenshot missing or blank",
            shot.display()
        );
        if name == "index" {
            index_dom = dom;
        }
    }
    // Every endpoint is on the rendered index, by name, escaped as text (not as markup).
    for shown in [
        "user-orders",
        "products-list",
        "chat/claude-x",
        "chat/gpt-y",
        "&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'quotes'",
    ] {
        assert!(index_dom.contains(shown), "rendered index lacks {shown}");
    }
    eprintln!("screenshots: {}", shots.display());
}

#[test]
fn the_example_pages_workflow_builds_the_dashboard_from_mains_history() {
    let _machine = crate::common::shared();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.github/examples/dashboard-pages.yml"
    );
    let wf: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(wf["on"]["workflow_run"]["branches"][0], "main");
    assert_eq!(wf["permissions"]["pages"], "write");
    assert_eq!(wf["permissions"]["id-token"], "write");
    let steps = wf["jobs"]["build"]["steps"].as_array().unwrap();
    let restore = steps
        .iter()
        .find(|s| s["uses"] == "actions/cache/restore@v4")
        .expect("restores the history");
    assert_eq!(restore["with"]["path"], ".gate/history.db");
    assert_eq!(restore["with"]["restore-keys"], "gate-history-main-");
    let build = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("gate dashboard"))
        .expect("a gate dashboard step");
    let words: Vec<&str> = build.split_whitespace().collect();
    let start = words.iter().position(|w| w.ends_with("/gate")).unwrap();
    use clap::Parser;
    let cli = gate::cli::Cli::try_parse_from(&words[start..]).unwrap();
    let gate::cli::Command::Dashboard(args) = cli.command else {
        panic!("not the dashboard command: {build}");
    };
    assert_eq!(args.branch.as_deref(), Some("main"));
    let upload = steps
        .iter()
        .find(|s| s["uses"] == "actions/upload-pages-artifact@v3")
        .expect("uploads the site");
    assert_eq!(upload["with"]["path"], args.out.display().to_string());
    let deploy = &wf["jobs"]["deploy"];
    assert_eq!(deploy["needs"], "build");
    assert_eq!(deploy["steps"][0]["uses"], "actions/deploy-pages@v4");
}
