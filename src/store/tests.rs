use super::*;
use crate::config::BaselinePolicy;
use crate::record::{LatencySummary, LoadRecord, RECORD_VERSION, new_histogram};

pub(crate) fn endpoint(name: &str, hash: &str, base_us: u64) -> EndpointRecord {
    let mut h = new_histogram();
    for i in 0..500u64 {
        h.record(base_us + (i * 37) % 400).unwrap();
    }
    EndpointRecord {
        name: name.into(),
        scenario_file: format!("scenarios/{name}.yml"),
        scenario_hash: hash.into(),
        method: "GET".into(),
        url: "/x".into(),
        load: LoadRecord {
            model: "closed".into(),
            users: Some(2),
            rate_per_s: None,
            duration_s: 1.0,
            warmup_s: 0.0,
        },
        requests: 500,
        successes: 500,
        failures: 0,
        elapsed_s: 1.0,
        throughput_rps: 500.0,
        error_rate: 0.0,
        latency: LatencySummary::from_histogram(&h),
        ttfb: LatencySummary::percentiles_of(&h),
        status_counts: [("200".to_string(), 500)].into(),
        errors: Default::default(),
        server_timing: Default::default(),
        late_starts: 0,
        dropped_arrivals: 0,
        bytes_received: 1234,
        ramp: None,
        llm: None,
        transport: None,
    }
}

pub(crate) fn run(
    uid: &str,
    branch: Option<&str>,
    commit: Option<&str>,
    merge_base: Option<&str>,
    fp: &str,
) -> RunRecord {
    RunRecord {
        version: RECORD_VERSION,
        uid: uid.into(),
        gate_version: "0.1.0".into(),
        started_at: "2026-11-22T00:00:00.000Z".into(),
        finished_at: "2026-11-22T00:00:05.000Z".into(),
        target: "http://127.0.0.1:1".into(),
        suite: "s".into(),
        label: None,
        complete: true,
        faults: Vec::new(),
        git: branch.map(|b| GitInfo {
            commit: commit.map(str::to_string),
            branch: Some(b.into()),
            merge_base: merge_base.map(str::to_string),
            dirty: false,
        }),
        pr: None,
        environment: Some(Environment {
            fingerprint: fp.into(),
            ..Environment::new("linux", "x86_64", "cpu", 2, None)
        }),
        endpoints: vec![endpoint("a", "h-a", 1000), endpoint("b", "h-b", 5000)],
    }
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("h.db")).unwrap();
    (dir, store)
}

#[test]
fn a_saved_run_loads_back_exactly() {
    let (_d, mut store) = temp_store();
    let mut r = run("u1", Some("main"), Some("c1"), None, "fp");
    r.pr = Some(7);
    r.label = Some("nightly".into());
    let id = store.save(&r).unwrap();
    assert_eq!(store.load(id).unwrap().record, r);
    let mut partial = run("u2", None, None, None, "fp");
    partial.complete = false;
    let id2 = store.save(&partial).unwrap();
    assert_eq!(
        store.load(id2).unwrap().record,
        partial,
        "no git context round-trips as None"
    );
    assert!(matches!(store.load(99), Err(StoreError::NoSuchRun(99))));
}

#[test]
fn list_filters_by_branch_and_keeps_the_newest_n() {
    let (_d, mut store) = temp_store();
    for i in 0..6 {
        let branch = if i % 2 == 0 { "main" } else { "feat" };
        store
            .save(&run(
                &format!("u{i}"),
                Some(branch),
                Some(&format!("c{i}")),
                None,
                "fp",
            ))
            .unwrap();
    }
    let all = store.list(&ListFilter::default()).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    let main = store
        .list(&ListFilter {
            branch: Some("main".into()),
            last: Some(2),
        })
        .unwrap();
    assert_eq!(
        main.iter()
            .map(|r| r.git.commit.clone().unwrap())
            .collect::<Vec<_>>(),
        ["c2", "c4"]
    );
    assert_eq!(main[0].endpoints, 2);
}

#[test]
fn baseline_prefers_the_merge_base_then_the_latest_k() {
    let (_d, mut store) = temp_store();
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            store
                .save(&run(
                    &format!("m{i}"),
                    Some("main"),
                    Some(&format!("c{}", i / 2)),
                    None,
                    "fp",
                ))
                .unwrap(),
        );
    }
    // Noise that must never be chosen: another machine, a partial run, other scenarios, a branch.
    store
        .save(&run("other-fp", Some("main"), Some("c1"), None, "fp2"))
        .unwrap();
    let mut partial = run("partial", Some("main"), Some("c1"), None, "fp");
    partial.complete = false;
    store.save(&partial).unwrap();
    let mut foreign = run("foreign", Some("main"), Some("c1"), None, "fp");
    for e in &mut foreign.endpoints {
        e.scenario_hash = "changed".into();
    }
    store.save(&foreign).unwrap();
    store
        .save(&run("feat", Some("feat"), Some("c1"), None, "fp"))
        .unwrap();

    let policy = BaselinePolicy {
        branch: "main".into(),
        runs: 5,
    };
    let head = |mb: Option<&str>| HeadInfo {
        merge_base: mb.map(str::to_string),
        env_fingerprint: "fp".into(),
        scenario_hashes: vec!["h-a".into(), "h-b".into()],
        exclude_run: None,
    };
    let sel = store.select_baseline(&policy, &head(Some("c1"))).unwrap();
    assert_eq!(sel.runs, vec![ids[2], ids[3]]);
    assert_eq!(sel.at_merge_base.as_deref(), Some("c1"));
    assert_eq!(
        sel.explanation,
        "baseline: 2 runs of main at c1, same environment"
    );

    let sel = store.select_baseline(&policy, &head(Some("zzz"))).unwrap();
    assert_eq!(sel.runs, ids[3..8].to_vec());
    assert_eq!(
        sel.explanation,
        "baseline: latest 5 runs of main (none at the merge-base zzz), same environment"
    );

    let mut h = head(None);
    h.exclude_run = Some(ids[7]);
    assert_eq!(
        store.select_baseline(&policy, &h).unwrap().runs,
        ids[2..7].to_vec(),
        "a run is never its own baseline"
    );

    h.env_fingerprint = "elsewhere".into();
    let sel = store.select_baseline(&policy, &h).unwrap();
    assert!(sel.runs.is_empty());
    assert!(
        sel.explanation.starts_with("no baseline:"),
        "{}",
        sel.explanation
    );
}

#[test]
fn prune_keeps_n_per_branch_and_what_baselines_need() {
    let (_d, mut store) = temp_store();
    // main: 6 runs at c0..c5; a PR branched from c0 keeps c0's run alive.
    let main_ids: Vec<i64> = (0..6)
        .map(|i| {
            store
                .save(&run(
                    &format!("m{i}"),
                    Some("main"),
                    Some(&format!("c{i}")),
                    None,
                    "fp",
                ))
                .unwrap()
        })
        .collect();
    let pr = store
        .save(&run("p0", Some("feat"), Some("f0"), Some("c0"), "fp"))
        .unwrap();
    let old_feat = store
        .save(&run("p-1", Some("old"), Some("o0"), None, "fp"))
        .unwrap();
    let newer_old = store
        .save(&run("p-2", Some("old"), Some("o1"), None, "fp"))
        .unwrap();
    let policy = BaselinePolicy {
        branch: "main".into(),
        runs: 2,
    };
    let report = store.prune(1, &policy).unwrap();
    let left: Vec<i64> = store
        .list(&ListFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    // Kept: main's newest (c5) + the newest K=2 of main (c4) + c0 (the PR's merge-base);
    // feat's only run; old's newest.
    assert_eq!(
        left,
        vec![main_ids[0], main_ids[4], main_ids[5], pr, newer_old]
    );
    assert!(!left.contains(&old_feat));
    assert_eq!(
        report,
        PruneReport {
            deleted: 4,
            protected: 2
        }
    );
}

#[test]
fn export_import_round_trips_and_skips_duplicates() {
    let (dir, mut store) = temp_store();
    let r1 = run("u1", Some("main"), Some("c1"), None, "fp");
    let r2 = run("u2", Some("main"), Some("c2"), None, "fp");
    store.save(&r1).unwrap();
    store.save(&r2).unwrap();
    store
        .save(&run("u3", Some("feat"), Some("c3"), None, "fp"))
        .unwrap();
    let export = store.export(Some("main")).unwrap();
    assert_eq!(export.runs, vec![r1.clone(), r2.clone()]);
    let text = String::from_utf8(export.to_json()).unwrap();
    let parsed = Export::parse("main.json", &text).unwrap();
    assert_eq!(parsed, export);

    let mut fresh = Store::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(fresh.import(&parsed).unwrap(), (2, 0));
    assert_eq!(fresh.import(&parsed).unwrap(), (0, 2));
    assert_eq!(
        fresh.export(Some("main")).unwrap().runs,
        export.runs,
        "exact, histograms included"
    );

    for (bad, want) in [
        ("{", "not JSON"),
        ("{\"format\": \"other\"}", "not a gate history export"),
        (
            "{\"format\": \"gate-history\", \"version\": 9}",
            "version 9 is not supported",
        ),
        (
            "{\"format\": \"gate-history\", \"version\": 1, \"runs\": 3}",
            "malformed export",
        ),
    ] {
        let err = Export::parse("f.json", bad).unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn an_older_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // What gate with schema version 1 wrote.
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO runs (uid, started_at, finished_at, git_branch, target, suite, complete, gate_version,
                               record_version, env_fingerprint)
             VALUES ('old', 't0', 't1', 'main', 'http://x', 's', 1, '0.0.9', 1, 'fp')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let version: i64 = store
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, CURRENT_VERSION);
    let runs = store.list(&ListFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].pr, None, "the new column exists and is empty");
    assert_eq!(store.load(runs[0].id).unwrap().record.uid, "old");
}

#[test]
fn foreign_newer_and_damaged_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, not a database at all").unwrap();
    assert!(matches!(
        Store::open(&text),
        Err(StoreError::NotGateDb { .. })
    ));
    assert_eq!(
        std::fs::read(&text).unwrap(),
        b"hello, not a database at all"
    );

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = Store::open(&other).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("another program"), "{err}");

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Store::open(&newer).map(|_| ()).unwrap_err();
    assert!(matches!(err, StoreError::Newer { found: 99, .. }), "{err}");

    // Damage: a saved history with its pages overwritten.
    let damaged = dir.path().join("damaged.db");
    {
        let mut s = Store::open(&damaged).unwrap();
        for i in 0..20 {
            s.save(&run(&format!("u{i}"), Some("main"), Some("c"), None, "fp"))
                .unwrap();
        }
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut bytes = std::fs::read(&damaged).unwrap();
    // Pages 2-4 (16 KB pages): the tables' root pages.
    for b in bytes.iter_mut().skip(16_384).take(3 * 16_384) {
        *b = 0xa5;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    let result = Store::open(&damaged).and_then(|s| s.list(&ListFilter::default()).map(|_| ()));
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(!err.is_bad_input());
    assert_eq!(std::fs::read(&damaged).unwrap(), bytes, "never overwritten");
}

#[test]
fn llm_figures_survive_the_history_and_records_without_them_still_load() {
    let (_dir, mut store) = temp_store();
    let mut r = run("llm", Some("main"), Some("c1"), None, "fp");
    let mut ttft = new_histogram();
    for v in [150_000u64, 152_000, 160_000] {
        ttft.record(v).unwrap();
    }
    r.endpoints[0].llm = Some(crate::record::LlmRecord {
        provider: "anthropic".into(),
        models: vec!["m".into()],
        ttft: LatencySummary::from_histogram(&ttft),
        output_tokens: 42,
        cost: Some(crate::record::CostRecord {
            total_usd: 0.0125,
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = store.save(&r).unwrap();
    let back = store.load(id).unwrap().record;
    assert_eq!(back.endpoints[0].llm, r.endpoints[0].llm);
    assert_eq!(back, r);
    // A record from before LLM benchmarks has no `llm` key; one from a later gate may hold
    // LLM fields this one does not know. Both load.
    let old = serde_json::to_value(&r.endpoints[1]).unwrap();
    assert!(old.get("llm").is_none());
    let e: EndpointRecord = serde_json::from_value(old).unwrap();
    assert_eq!(e.llm, None);
    let mut newer = serde_json::to_value(&r.endpoints[0]).unwrap();
    newer["llm"] = serde_json::json!({ "provider": "openai", "some_future_field": 1 });
    let e: EndpointRecord = serde_json::from_value(newer).unwrap();
    assert_eq!(e.llm.unwrap().provider, "openai");
}
