//! Scale check of the run history: 10,000 runs × 5 endpoints with realistic histograms, on
//! both backends: SQLite (a temporary file) and PostgreSQL (a server started for the benchmark
//! with initdb/pg_ctl, as the tests do: tests/it/common/pg.rs; skipped with a note where none
//! can start). Prints the time of `history list`, baseline selection, loading and saving one run,
//! and the database size.
//!
//!     cargo bench --bench history_scale                    # RUNS=10000, both backends
//!     BACKENDS=sqlite cargo bench --bench history_scale    # or BACKENDS=postgres
//!
//! Timings are printed, never asserted: this is a benchmark, not a test.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gate::config::BaselinePolicy;
use gate::environment::Environment;
use gate::git::GitInfo;
use gate::record::{
    EndpointRecord, LatencySummary, LoadRecord, RECORD_VERSION, RunRecord, new_histogram,
};
use gate::store::{HeadInfo, ListFilter, Store};
use rand::{Rng, SeedableRng};

#[path = "../tests/it/common/pg.rs"]
mod pg;

fn endpoint(name: &str, median_ms: f64, rng: &mut rand::rngs::SmallRng) -> EndpointRecord {
    // 20,000 log-normal latencies: a realistic spread of histogram buckets.
    let mut h = new_histogram();
    for _ in 0..20_000 {
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let us = (median_ms * 1000.0 * (0.4 * z).exp()) as u64;
        h.record(us.max(1)).unwrap();
    }
    let summary = LatencySummary::from_histogram(&h);
    EndpointRecord {
        name: name.into(),
        scenario_file: format!("scenarios/{name}.yml"),
        scenario_hash: format!("hash-{name}"),
        method: "GET".into(),
        url: format!("/api/v1/{name}/{{{{ random_int(1, 2000) }}}}"),
        load: LoadRecord {
            model: "closed".into(),
            users: Some(10),
            rate_per_s: None,
            duration_s: 10.0,
            warmup_s: 2.0,
        },
        requests: 20_000,
        successes: 20_000,
        failures: 0,
        elapsed_s: 10.0,
        throughput_rps: 2000.0,
        error_rate: 0.0,
        ttfb: LatencySummary::percentiles_of(&h),
        latency: summary,
        status_counts: [("200".to_string(), 20_000)].into(),
        errors: Default::default(),
        server_timing: [
            ("db".to_string(), Default::default()),
            ("app".to_string(), Default::default()),
        ]
        .into(),
        late_starts: 0,
        dropped_arrivals: 0,
        bytes_received: 12_345_678,
        ramp: None,
        llm: None,
        transport: None,
    }
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    for backend in backends.split(',') {
        match backend.trim() {
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("history.db");
                println!("== SQLite ({})", path.display());
                bench(&path, runs);
                sqlite_sizes(&path, dir.path());
            }
            // Durable (fsync, synchronous commit), unlike the tests' server.
            "postgres" => match pg::start(true) {
                Ok(server) => {
                    let url = PathBuf::from(server.fresh_database());
                    println!("== PostgreSQL ({})", gate::store::redact_db(&url));
                    bench(&url, runs);
                    let size: i64 =
                        postgres::Client::connect(url.to_str().unwrap(), postgres::NoTls)
                            .unwrap()
                            .query_one("SELECT pg_database_size(current_database())", &[])
                            .unwrap()
                            .get(0);
                    println!("database size {:>43.1} MB", size as f64 / 1e6);
                }
                Err(why) => println!("== PostgreSQL: skipped ({why})"),
            },
            other => panic!("BACKENDS: unknown backend {other} (sqlite, postgres)"),
        }
    }
}

fn bench(path: &Path, runs: usize) {
    let mut store = Store::open(path).unwrap();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let names = [
        "products-list",
        "product-detail",
        "create-order",
        "user-orders",
        "search",
    ];
    // A pool of distinct endpoint records (histogram generation dominates otherwise).
    let pool: Vec<Vec<EndpointRecord>> = (0..20)
        .map(|_| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| endpoint(n, 2.0 + i as f64 * 3.0, &mut rng))
                .collect()
        })
        .collect();
    let env = Environment::new("linux", "x86_64", "bench cpu", 2, None);
    let make_run = |i: usize| {
        let branch = if i % 5 < 2 {
            "main".to_string()
        } else {
            format!("feature-{}", i % 40)
        };
        let commit = format!("{:040x}", i / 3);
        RunRecord {
            version: RECORD_VERSION,
            uid: format!("{i:032x}"),
            gate_version: "bench".into(),
            started_at: gate::record::format_rfc3339(1_790_000_000 + i as i64 * 600, 0),
            finished_at: gate::record::format_rfc3339(1_790_000_000 + i as i64 * 600 + 60, 0),
            target: "http://127.0.0.1:8080".into(),
            suite: "bench".into(),
            label: None,
            complete: true,
            faults: Vec::new(),
            git: Some(GitInfo {
                commit: Some(commit),
                branch: Some(branch),
                merge_base: None,
                dirty: false,
            }),
            pr: None,
            environment: Some(env.clone()),
            endpoints: pool[i % pool.len()].clone(),
        }
    };
    let t = Instant::now();
    for i in 0..runs {
        store.save(&make_run(i)).unwrap();
    }
    let fill = t.elapsed();
    drop(store);
    let mut store = Store::open(path).unwrap();
    let time = |label: &str, f: &mut dyn FnMut()| {
        f(); // warm the page cache once, as a second invocation would be
        let n = 20;
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        println!(
            "{label:<48} {:>8.2} ms",
            t.elapsed().as_secs_f64() * 1000.0 / n as f64
        );
    };
    println!(
        "runs: {runs} × {} endpoints, saved in {:.1} s ({:.2} ms/run)",
        names.len(),
        fill.as_secs_f64(),
        fill.as_secs_f64() * 1000.0 / runs as f64
    );
    time("history list (newest 20)", &mut || {
        store
            .list(&ListFilter {
                branch: None,
                last: Some(20),
            })
            .unwrap();
    });
    time("history list --branch main (newest 20)", &mut || {
        store
            .list(&ListFilter {
                branch: Some("main".into()),
                last: Some(20),
            })
            .unwrap();
    });
    let head = |mb: Option<String>| HeadInfo {
        merge_base: mb,
        env_fingerprint: env.fingerprint.clone(),
        scenario_hashes: names.iter().map(|n| format!("hash-{n}")).collect(),
        exclude_run: None,
    };
    let policy = BaselinePolicy::default();
    time("baseline selection (at the merge-base)", &mut || {
        let s = store
            .select_baseline(&policy, &head(Some(format!("{:040x}", runs / 6))))
            .unwrap();
        assert!(!s.runs.is_empty());
    });
    time(
        "baseline selection (merge-base absent → latest 5)",
        &mut || {
            let s = store
                .select_baseline(&policy, &head(Some("f".repeat(40))))
                .unwrap();
            assert_eq!(s.runs.len(), 5);
        },
    );
    time("load one run (5 endpoints, histograms)", &mut || {
        store.load(runs as i64 / 2).unwrap();
    });
    let mut extra = runs;
    time("save one run (5 endpoints, one transaction)", &mut || {
        store.save(&make_run(extra)).unwrap();
        extra += 1;
    });
    drop(store);
    let gate = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/gate");
    if gate.exists() {
        let t = Instant::now();
        let out = std::process::Command::new(&gate)
            .args(["history", "list"])
            .env("GATE_DB", path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "`gate history list` process, wall time {:>20.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
}

fn sqlite_sizes(path: &Path, dir: &Path) {
    // Fold the WAL in, then measure the files as a user's disk would hold them.
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let (lat, ttfb, summary): (f64, f64, f64) = rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT avg(length(latency_hist)), 0.0, avg(length(summary)) FROM endpoints",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let _ = ttfb;
    println!(
        "bytes per endpoint: latency histogram {lat:.0}, summary (deflated JSON) {summary:.0}"
    );
    let size: u64 = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!("database size {:>43.1} MB", size as f64 / 1e6);
}
