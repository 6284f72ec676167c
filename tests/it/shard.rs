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

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// The gate command of a line (from the word ending in `/gate`, or `gate` itself), checked by
/// the real CLI's parser.
fn parses_as_gate(line: &str) -> gate::cli::Cli {
    let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| w.ends_with("/gate") || *w == "gate")
        .unwrap_or_else(|| panic!("no gate command in {line}"));
    use clap::Parser;
    gate::cli::Cli::try_parse_from(&words[start..]).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// `--shard X` of a command line.
fn shard_flag(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "--shard").expect("--shard");
    words[i + 1].to_string()
}

#[test]
fn the_sharded_workflow_runs_n_shards_and_merges_them() {
    let text = std::fs::read_to_string(format!("{MANIFEST}/examples/github/sharded-perf-gate.yml"))
        .unwrap();
    let wf: Value = serde_saphyr::from_str(&text).unwrap();
    let steps = |job: &str| wf["jobs"][job]["steps"].as_array().unwrap().clone();
    let run_lines = |job: &str| -> Vec<String> {
        steps(job)
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_string))
            .filter(|r| r.contains("gate ") && !r.starts_with("chmod"))
            .collect()
    };

    // The load jobs: a matrix of N, each `--shard I/N` with I from the matrix.
    let load = &wf["jobs"]["load"];
    assert_eq!(load["strategy"]["fail-fast"], false);
    let matrix: Vec<u64> = load["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let n = matrix.len() as u64;
    assert_eq!(matrix, (1..=n).collect::<Vec<_>>(), "the matrix is 1..=N");
    let lines = run_lines("load");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for i in &matrix {
        let concrete = line.replace("${{ matrix.shard }}", &i.to_string());
        let shard = shard_flag(&concrete);
        assert_eq!(
            shard,
            format!("{i}/{n}"),
            "N in --shard equals the matrix's"
        );
        match parses_as_gate(&concrete).command {
            gate::cli::Command::Run(a) => {
                assert_eq!(
                    a.json.unwrap().display().to_string(),
                    format!("shard-{i}.json")
                );
            }
            _ => panic!("not gate run: {concrete}"),
        }
    }
    // Each load job uploads its document under a name the merge job downloads.
    let upload = steps("load")
        .into_iter()
        .find(|s| s["uses"] == "actions/upload-artifact@v4")
        .unwrap();
    assert_eq!(upload["with"]["path"], "shard-${{ matrix.shard }}.json");
    assert_eq!(upload["with"]["name"], "gate-shard-${{ matrix.shard }}");

    // The merge job: after the load, even when a shard failed; downloads every shard's document.
    let merge = &wf["jobs"]["merge"];
    assert_eq!(merge["needs"], "load");
    assert_eq!(merge["if"], "${{ !cancelled() }}");
    let download = steps("merge")
        .into_iter()
        .find(|s| s["with"]["pattern"] == "gate-shard-*")
        .expect("downloads the shards' documents");
    assert_eq!(download["with"]["merge-multiple"], true);
    let dir = download["with"]["path"].as_str().unwrap().to_string();
    let lines = run_lines("merge");
    let ci = lines
        .iter()
        .find(|l| l.contains("gate ci"))
        .expect("gate ci --merge");
    match parses_as_gate(ci).command {
        gate::cli::Command::Ci(a) => {
            assert_eq!(a.merge, [PathBuf::from(format!("{dir}/*.json"))]);
        }
        _ => panic!("{ci}"),
    }
    let merge_line = lines
        .iter()
        .find(|l| l.contains("gate merge"))
        .expect("gate merge");
    match parses_as_gate(merge_line).command {
        gate::cli::Command::Merge(a) => {
            assert!(a.save);
            assert_eq!(a.files, [PathBuf::from(format!("{dir}/*.json"))]);
        }
        _ => panic!("{merge_line}"),
    }
    // The PR comment needs its token; the history is restored before the merge saves into it.
    let ci_step = steps("merge")
        .into_iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("gate ci")))
        .unwrap();
    assert_eq!(
        ci_step["env"]["GITHUB_TOKEN"],
        "${{ secrets.GITHUB_TOKEN }}"
    );
    assert_eq!(ci_step["if"], "github.event_name == 'pull_request'");
    let names: Vec<String> = steps("merge")
        .iter()
        .map(|s| {
            s["uses"]
                .as_str()
                .or(s["run"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let restore = names
        .iter()
        .position(|s| s == "actions/cache/restore@v4")
        .unwrap();
    let first_gate = names.iter().position(|s| s.contains("gate ci")).unwrap();
    assert!(restore < first_gate, "{names:?}");
}

#[test]
fn the_kubernetes_example_is_an_indexed_job_of_n_shards_and_a_merge() {
    let text =
        std::fs::read_to_string(format!("{MANIFEST}/examples/k8s/gate-shards.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    let job = |name: &str| {
        docs.iter()
            .find(|d| d["kind"] == "Job" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Job {name}"))
    };
    let shards = &job("gate-shards")["spec"];
    assert_eq!(shards["completionMode"], "Indexed");
    let n = shards["completions"].as_u64().unwrap();
    assert!(n >= 2);
    assert_eq!(shards["parallelism"].as_u64(), Some(n));
    let container = &shards["template"]["spec"]["containers"][0];
    let mut argv: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(container["args"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let line = argv.join(" ");
    assert_eq!(
        shard_flag(&line),
        format!("k8s/{n}"),
        "k8s/N with N = completions"
    );
    // Kubernetes expands $(JOB_COMPLETION_INDEX); gate reads the same variable for k8s/N.
    for a in &mut argv {
        *a = a.replace("$(JOB_COMPLETION_INDEX)", "0");
    }
    use clap::Parser;
    match gate::cli::Cli::try_parse_from(&argv).unwrap().command {
        gate::cli::Command::Run(a) => {
            let json = a.json.unwrap();
            assert!(json.starts_with("/results"), "{json:?}");
        }
        _ => panic!("{line}"),
    }
    assert!(line.contains("/results/shard-$(JOB_COMPLETION_INDEX).json"));
    let mounts = |c: &Value| {
        c["volumeMounts"][0]["mountPath"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(mounts(container), "/results");

    // The merge waits for N documents on the same volume, then merges them and saves.
    let merge = &job("gate-merge")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(mounts(merge), "/results");
    let script = merge["args"][0].as_str().unwrap();
    assert!(script.contains(&format!("n={n}\n")), "{script}");
    let gate_line = script
        .lines()
        .find(|l| l.contains("gate merge"))
        .unwrap()
        .replace("exec ", "");
    match parses_as_gate(&gate_line).command {
        gate::cli::Command::Merge(a) => {
            assert!(a.save);
            assert_eq!(a.files, [PathBuf::from("/results/shard-*.json")]);
        }
        _ => panic!("{gate_line}"),
    }
    // Both Jobs mount the claim the manifest creates.
    let claim = docs
        .iter()
        .find(|d| d["kind"] == "PersistentVolumeClaim")
        .unwrap();
    for j in ["gate-shards", "gate-merge"] {
        assert_eq!(
            job(j)["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            claim["metadata"]["name"]
        );
    }
}
