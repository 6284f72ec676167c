//! Issue 16, sharded runs: four real `gate run --shard I/4` processes at once against one
//! sample service on loopback, then `gate merge`: the merged histograms are the sum of the four,
//! bucket for bucket; shards that are not parts of one run are refused; a missing shard makes a
//! partial run that never passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::common::{self, text};
use gate::record::decode_histogram;

/// Two scenarios, the closed one with a user count that does not divide by four (6 → 2,2,1,1)
/// and a request cap (80 → 20 each), so every count in the test is bounded and known.
const CLOSED: &str = "name: products\nrequest: { method: GET, url: \"/api/v1/products?page=1&per_page=20\", timeout: 5s }\nload: { users: 6, duration: 3s, warmup: 0s, requests: 80 }\nthresholds: [\"p99 < 30s\"]\n";
const OPEN: &str = "name: detail\nrequest: { method: GET, url: /api/v1/products/7, timeout: 5s }\nload: { rate: 40/s, duration: 1s, warmup: 0s, max_in_flight: 8 }\nthresholds: [\"p99 < 30s\"]\n";
/// One user: only the first of four shards sends it; the others say so and skip it.
const SINGLE: &str = "name: single\nrequest: { method: GET, url: /health, timeout: 5s }\nload: { users: 1, duration: 300ms, warmup: 0s, requests: 5 }\n";

fn gate(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gate"));
    c.args(args)
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("GATE_TARGET")
        .env_remove("GATE_DB")
        .env_remove("GITHUB_HEAD_REF")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("GATE_INJECT_FAULT");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("gate runs")
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hist(v: &Value) -> Histogram<u64> {
    decode_histogram(v.as_str().expect("an encoded histogram")).unwrap()
}

fn buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn endpoint<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["run"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

fn suite(dir: &Path) -> PathBuf {
    let s = dir.join("scenarios");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("products.yml"), CLOSED).unwrap();
    std::fs::write(s.join("detail.yml"), OPEN).unwrap();
    std::fs::write(s.join("single.yml"), SINGLE).unwrap();
    s
}

/// Run the four shards at once; returns their documents' paths (shard 1 first).
fn four_shards(dir: &Path, url: &str) -> Vec<PathBuf> {
    let children: Vec<_> = (1..=4)
        .map(|i| {
            let json = format!("shard-{i}.json");
            let shard = format!("{i}/4");
            gate(
                dir,
                &[
                    "run",
                    "--no-progress",
                    "--threads",
                    "1",
                    "--target",
                    url,
                    "--shard",
                    &shard,
                    "--json",
                    &json,
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "shard {}: {err}", i + 1);
        // Not judged and not saved.
        assert!(!text(&out.stdout).contains("PASS"), "{}", text(&out.stdout));
        assert!(!err.contains("saved run"), "{err}");
        if i > 0 {
            assert!(
                err.contains("`single` has fewer users or requests than there are shards"),
                "{err}"
            );
        }
    }
    assert!(!dir.join(".gate").exists(), "a shard saved a history");
    (1..=4)
        .map(|i| dir.join(format!("shard-{i}.json")))
        .collect()
}

#[test]
fn four_shards_merge_into_the_exact_sum_and_refuse_what_is_not_one_run() {
    let _machine = common::shared();
    let service = common::shop_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    suite(d);
    let files = four_shards(d, &service.url());
    let docs: Vec<Value> = files.iter().map(|f| read(f)).collect();

    // The documents: a shard each, not judged, with the histograms a merge needs.
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc["format"], "gate-run");
        assert_eq!(doc["pass"], Value::Null);
        assert!(doc.get("slo").is_none());
        assert_eq!(doc["shard"]["index"], i as u64 + 1);
        assert_eq!(doc["shard"]["count"], 4);
        let p = endpoint(doc, "products").unwrap();
        assert!(!p["ttfb"]["histogram"].as_str().unwrap().is_empty());
        assert_eq!(p["load"]["users"], [2, 2, 1, 1][i]);
        assert_eq!(p["requests"], 20, "a quarter of `requests: 80`");
        assert_eq!(endpoint(doc, "detail").unwrap()["load"]["rate_per_s"], 10.0);
        assert_eq!(endpoint(doc, "single").is_some(), i == 0);
    }

    // Merge the four (in any order).
    let merged_path = d.join("merged.json");
    let mut args: Vec<String> = vec!["merge".into()];
    for i in [2, 0, 3, 1] {
        args.push(files[i].display().to_string());
    }
    args.extend(["--json".into(), merged_path.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut gate(d, &args));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let merged = read(&merged_path);
    assert_eq!(merged["pass"], true);

    for name in ["products", "detail", "single"] {
        let m = endpoint(&merged, name).unwrap();
        let parts: Vec<&Value> = docs.iter().filter_map(|d| endpoint(d, name)).collect();
        // Latency: every bucket of the merged histogram is the sum of the shards'.
        let mut sum = hist(&parts[0]["latency"]["histogram"]);
        for p in &parts[1..] {
            sum.add(hist(&p["latency"]["histogram"])).unwrap();
        }
        let got = hist(&m["latency"]["histogram"]);
        assert_eq!(buckets(&got), buckets(&sum), "{name}");
        assert!(!buckets(&got).is_empty());
        // Counts add up; percentiles are those of all requests.
        let total = |f: &str| parts.iter().map(|p| p[f].as_u64().unwrap()).sum::<u64>();
        for f in ["requests", "successes", "failures", "bytes_received"] {
            assert_eq!(m[f].as_u64().unwrap(), total(f), "{name}.{f}");
        }
        assert_eq!(m["latency"]["count"].as_u64().unwrap(), sum.len());
        let p99_ms = sum.value_at_quantile(0.99) as f64 / 1000.0;
        assert_eq!(m["latency"]["p99_ms"].as_f64().unwrap(), p99_ms, "{name}");
        // TTFB: exact from the shards' histograms, then kept as a summary like any saved run.
        let mut ttfb = hist(&parts[0]["ttfb"]["histogram"]);
        for p in &parts[1..] {
            ttfb.add(hist(&p["ttfb"]["histogram"])).unwrap();
        }
        assert_eq!(
            m["ttfb"]["p99_ms"].as_f64().unwrap(),
            ttfb.value_at_quantile(0.99) as f64 / 1000.0
        );
        assert!(m["ttfb"].get("histogram").is_none());
        // Status codes by code.
        let status_sum: u64 = parts
            .iter()
            .map(|p| p["status_counts"]["200"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(m["status_counts"]["200"].as_u64().unwrap_or(0), status_sum);
    }
    let products = endpoint(&merged, "products").unwrap();
    assert_eq!(products["load"]["users"], 6);
    assert_eq!(products["requests"], 80);
    assert_eq!(
        endpoint(&merged, "detail").unwrap()["load"]["rate_per_s"],
        40.0
    );

    // Refusals, each naming the two files and the difference (exit 2).
    let variant = |name: &str, edit: &dyn Fn(&mut Value)| -> PathBuf {
        let mut doc = docs[1].clone();
        edit(&mut doc);
        let path = d.join(name);
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        path
    };
    let refused = |second: &Path, words: &str| {
        let out = run(&mut gate(
            d,
            &[
                "merge",
                files[0].to_str().unwrap(),
                second.to_str().unwrap(),
            ],
        ));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words}: {err}");
        assert!(err.contains(words), "{words}: {err}");
        // A document that is wrong on its own is named alone; a pair that does not belong
        // together, both.
        let alone = words.starts_with("not a shard");
        assert!(
            (alone || err.contains("shard-1.json"))
                && err.contains(second.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    };
    refused(
        &variant("other-suite.json", &|d| {
            d["run"]["suite"] = "another".into()
        }),
        "different suites",
    );
    refused(
        &variant(
            "other-commit.json",
            &|d| d["run"]["git"] = serde_json::json!({"commit": "0123456789abcdef", "branch": "x", "merge_base": null, "dirty": false}),
        ),
        "different commits",
    );
    refused(
        &variant("other-hash.json", &|d| {
            d["run"]["endpoints"][0]["scenario_hash"] = "changed".into()
        }),
        "different definitions of scenario",
    );
    refused(
        &variant("other-count.json", &|d| d["shard"]["count"] = 3.into()),
        "mixed shard counts",
    );
    refused(&files[0], "both are shard 1/4");
    refused(
        &variant("fewer-scenarios.json", &|d| {
            d["shard"]["idle"] = Value::Array(Vec::new())
        }),
        "different scenarios",
    );
    refused(
        &variant("not-a-shard.json", &|d| {
            d.as_object_mut().unwrap().remove("shard");
        }),
        "not a shard's document",
    );

    // A missing shard: a partial run, saved as such, never a pass (exit 3).
    let db = d.join("history.db");
    let out = run(&mut gate(
        d,
        &[
            "merge",
            files[0].to_str().unwrap(),
            files[2].to_str().unwrap(),
            files[3].to_str().unwrap(),
            "--save",
            "--db",
            db.to_str().unwrap(),
        ],
    ));
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("shard 2/4 missing"), "{err}");
    assert!(err.contains("marked partial"), "{err}");
    assert!(!stdout.contains("within their thresholds"), "{stdout}");
    let list = run(&mut gate(
        d,
        &["history", "list", "--db", db.to_str().unwrap()],
    ));
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));

    // `gate ci --merge`: the whole PR flow on the merged run (a dry run: no GitHub).
    let ci_db = d.join("ci.db");
    let mut args = vec![
        "ci",
        "--dry-run",
        "--no-charts",
        "--db",
        ci_db.to_str().unwrap(),
        "--merge",
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = run(&mut gate(d, &args));
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("merged 4 of 4 shard(s)"), "{err}");
    assert!(stdout.contains("| products |"), "{stdout}");
}

#[test]
fn shard_flags_are_checked_before_any_load() {
    let _machine = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    suite(d);
    // Port 9 (discard): nothing is sent before the flags are checked.
    let target = "http://127.0.0.1:9";
    for (cmd, shard, flag) in [
        ("run", "0/4", "--shard"),
        ("run", "5/4", "--shard"),
        ("run", "x", "--shard"),
        ("ci", "0/4", "--shard"),
        ("run", "k8s/4", "JOB_COMPLETION_INDEX"),
    ] {
        let out = run(&mut gate(
            d,
            &[
                cmd, "--target", target, "--shard", shard, "--json", "s.json",
            ],
        ));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd} {shard}: {err}");
        assert!(
            err.contains(&format!("error: {flag}:")),
            "{cmd} {shard}: {err}"
        );
        assert!(err.contains(shard.trim_start_matches("k8s/")) || flag != "--shard");
    }
    // JOB_COMPLETION_INDEX counts from 0 and must be below N.
    for bad in ["4", "one"] {
        let out = run(gate(
            d,
            &[
                "run", "--target", target, "--shard", "k8s/4", "--json", "s.json",
            ],
        )
        .env("JOB_COMPLETION_INDEX", bad));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("JOB_COMPLETION_INDEX") && err.contains(bad),
            "{err}"
        );
    }
    // A shard without its document would be lost; a shard is never judged.
    let out = run(&mut gate(d, &["run", "--target", target, "--shard", "1/2"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--json"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&mut gate(
        d,
        &[
            "run", "--target", target, "--shard", "1/2", "--json", "s.json", "--junit", "j.xml",
        ],
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--junit"));
    // A valid k8s shard reaches the load, and finds nothing listening (exit 3, not 2).
    let out = run(gate(
        d,
        &[
            "run", "--target", target, "--shard", "k8s/4", "--json", "s.json",
        ],
    )
    .env("JOB_COMPLETION_INDEX", "3"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!d.join("s.json").exists());
}
