//! The store's tests, run on both backends: every `fn name(fx: &Fixture)` listed in
//! `on_both!` becomes `name::sqlite` and `name::postgres` (a real server, see
//! tests/it/common/pg.rs; skipped with a printed reason where none can start, failing in CI).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::schema::{APPLICATION_ID, MIGRATIONS, PG_MIGRATIONS};
use super::*;
use crate::config::BaselinePolicy;
use crate::record::{LatencySummary, LoadRecord, RECORD_VERSION, new_histogram};

#[path = "../../tests/it/common/pg.rs"]
pub(crate) mod pg;

/// Where a test's histories live: files in a temporary directory, or databases on the shared
/// test PostgreSQL. `db(name)` is the `--db` value of history `name` (the same each time).
pub(crate) enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres(&'static pg::Server, RefCell<HashMap<String, String>>),
}

impl Fixture {
    pub(crate) fn sqlite() -> Fixture {
        Fixture::Sqlite(tempfile::tempdir().unwrap())
    }

    pub(crate) fn postgres() -> Option<Fixture> {
        pg::server().map(|s| Fixture::Postgres(s, RefCell::default()))
    }

    pub(crate) fn db(&self, name: &str) -> PathBuf {
        match self {
            Fixture::Sqlite(dir) => dir.path().join(format!("{name}.db")),
            Fixture::Postgres(server, dbs) => dbs
                .borrow_mut()
                .entry(name.to_string())
                .or_insert_with(|| server.fresh_database())
                .clone()
                .into(),
        }
    }

    pub(crate) fn open(&self, name: &str) -> Store {
        Store::open(&self.db(name)).unwrap()
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Fixture::sqlite());
            }
            #[test]
            fn postgres() {
                if let Some(fx) = super::Fixture::postgres() {
                    super::$name(&fx);
                }
            }
        }
    )*};
}

on_both!(
    a_saved_run_loads_back_exactly,
    list_filters_by_branch_and_keeps_the_newest_n,
    baseline_prefers_the_merge_base_then_the_latest_k,
    prune_keeps_n_per_branch_and_what_baselines_need,
    export_import_round_trips_and_skips_duplicates,
    an_older_database_is_upgraded_in_place,
    foreign_and_newer_databases_are_refused_and_left_alone,
    llm_figures_survive_the_history_and_records_without_them_still_load,
    copy_moves_every_run_once_in_both_directions,
    two_writers_saving_at_once_lose_nothing,
);

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

fn a_saved_run_loads_back_exactly(fx: &Fixture) {
    let mut store = fx.open("h");
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

fn list_filters_by_branch_and_keeps_the_newest_n(fx: &Fixture) {
    let mut store = fx.open("h");
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

fn baseline_prefers_the_merge_base_then_the_latest_k(fx: &Fixture) {
    let mut store = fx.open("h");
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

fn prune_keeps_n_per_branch_and_what_baselines_need(fx: &Fixture) {
    let mut store = fx.open("h");
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

fn export_import_round_trips_and_skips_duplicates(fx: &Fixture) {
    let mut store = fx.open("h");
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

    let mut fresh = fx.open("fresh");
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

/// Run SQL on a history behind gate's back (what an older gate or another program wrote).
fn raw_sql(fx: &Fixture, db: &Path, sql: &str) {
    match fx {
        Fixture::Sqlite(_) => Connection::open(db).unwrap().execute_batch(sql).unwrap(),
        Fixture::Postgres(..) => {
            ::postgres::Client::connect(db.to_str().unwrap(), ::postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap();
        }
    }
}

fn schema_version(fx: &Fixture, db: &Path) -> i64 {
    match fx {
        Fixture::Sqlite(_) => Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap(),
        Fixture::Postgres(..) => {
            ::postgres::Client::connect(db.to_str().unwrap(), ::postgres::NoTls)
                .unwrap()
                .query_one("SELECT version FROM gate_schema", &[])
                .unwrap()
                .get(0)
        }
    }
}

fn an_older_database_is_upgraded_in_place(fx: &Fixture) {
    let db = fx.db("old");
    // What gate with schema version 1 wrote.
    let (schema, t) = match fx {
        Fixture::Sqlite(_) => (
            format!(
                "PRAGMA application_id = {APPLICATION_ID}; {} PRAGMA user_version = 1;",
                MIGRATIONS[0]
            ),
            "1",
        ),
        Fixture::Postgres(..) => (
            format!(
                "CREATE TABLE gate_schema (application TEXT NOT NULL, version BIGINT NOT NULL);
                 INSERT INTO gate_schema VALUES ('gate', 1); {}",
                PG_MIGRATIONS[0]
            ),
            "TRUE",
        ),
    };
    raw_sql(fx, &db, &schema);
    raw_sql(
        fx,
        &db,
        &format!(
            "INSERT INTO runs (uid, started_at, finished_at, git_branch, target, suite, complete, gate_version,
                               record_version, env_fingerprint)
             VALUES ('old', 't0', 't1', 'main', 'http://x', 's', {t}, '0.0.9', 1, 'fp')"
        ),
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(schema_version(fx, &db), CURRENT_VERSION);
    let runs = store.list(&ListFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].pr, None, "the new column exists and is empty");
    assert_eq!(store.load(runs[0].id).unwrap().record.uid, "old");
    drop(store);
    // Opening again migrates nothing twice.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.count().unwrap(), 1);
    assert_eq!(schema_version(fx, &db), CURRENT_VERSION);
}

fn foreign_and_newer_databases_are_refused_and_left_alone(fx: &Fixture) {
    let other = fx.db("other");
    raw_sql(
        fx,
        &other,
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)",
    );
    let err = Store::open(&other).map(|_| ()).unwrap_err();
    assert!(matches!(err, StoreError::NotGateDb { .. }), "{err}");
    assert!(err.to_string().contains("another program"), "{err}");
    assert!(!err.is_bad_input(), "a refusal of the database, exit 3");
    raw_sql(fx, &other, "DROP TABLE t"); // still there: nothing was written

    let newer = fx.db("newer");
    drop(Store::open(&newer).unwrap());
    match fx {
        Fixture::Sqlite(_) => raw_sql(fx, &newer, "PRAGMA user_version = 99"),
        Fixture::Postgres(..) => raw_sql(fx, &newer, "UPDATE gate_schema SET version = 99"),
    }
    let err = Store::open(&newer).map(|_| ()).unwrap_err();
    assert!(matches!(err, StoreError::Newer { found: 99, .. }), "{err}");
    assert_eq!(schema_version(fx, &newer), 99, "left as it was");
}

fn copy_moves_every_run_once_in_both_directions(fx: &Fixture) {
    let files = tempfile::tempdir().unwrap();
    let mut src = Store::open(&files.path().join("team.db")).unwrap();
    let runs: Vec<RunRecord> = (0..5)
        .map(|i| {
            let branch = if i < 3 { "main" } else { "feat" };
            let mut r = run(
                &format!("u{i}"),
                Some(branch),
                Some(&format!("c{i}")),
                None,
                "fp",
            );
            r.pr = (i == 4).then_some(12);
            r
        })
        .collect();
    for r in &runs {
        src.save(r).unwrap();
    }
    let mut dst = fx.open("shared");
    dst.save(&runs[1]).unwrap(); // already there: skipped, not doubled
    assert_eq!(src.copy_to(&mut dst).unwrap(), (4, 1));
    assert_eq!(
        src.copy_to(&mut dst).unwrap(),
        (0, 5),
        "a second copy adds nothing"
    );
    let by_uid = |s: &Store| {
        let mut runs = s.export(None).unwrap().runs;
        runs.sort_by(|a, b| a.uid.cmp(&b.uid));
        runs
    };
    assert_eq!(
        by_uid(&dst),
        runs,
        "every run, exactly (histograms included)"
    );
    assert_eq!(dst.count().unwrap(), 5);

    // And back, into a new file.
    let mut back = Store::open(&files.path().join("back.db")).unwrap();
    assert_eq!(dst.copy_to(&mut back).unwrap(), (5, 0));
    assert_eq!(by_uid(&back), runs);
    let policy = BaselinePolicy {
        branch: "main".into(),
        runs: 5,
    };
    let head = HeadInfo {
        merge_base: None,
        env_fingerprint: "fp".into(),
        scenario_hashes: vec!["h-a".into()],
        exclude_run: None,
    };
    // Ids differ between histories (u1 came first into `dst`); the chosen runs do not.
    let uids = |s: &Store| -> Vec<String> {
        let sel = s.select_baseline(&policy, &head).unwrap();
        let mut uids: Vec<String> = sel
            .runs
            .iter()
            .map(|&id| s.load(id).unwrap().record.uid)
            .collect();
        uids.sort();
        uids
    };
    assert_eq!(uids(&src), ["u0", "u1", "u2"]);
    assert_eq!(uids(&dst), uids(&src), "the same baseline on both");
    assert_eq!(uids(&back), uids(&src));
}

fn two_writers_saving_at_once_lose_nothing(fx: &Fixture) {
    let db = fx.db("busy");
    drop(Store::open(&db).unwrap());
    let common = Export::new(
        None,
        (0..3)
            .map(|i| run(&format!("common{i}"), Some("main"), Some("c"), None, "fp"))
            .collect(),
    );
    let mut reversed = common.clone();
    reversed.runs.reverse();
    let writers = 4;
    let saves = 8;
    let added_common: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (db, common, reversed) = (&db, &common, &reversed);
                s.spawn(move || {
                    let mut store = Store::open(db).unwrap();
                    // Half the writers import the shared runs in the other order: on
                    // PostgreSQL that can deadlock, and the transaction is retried.
                    let mine = if w % 2 == 0 { common } else { reversed };
                    let (added, present) = store.import(mine).unwrap();
                    assert_eq!(added + present, 3);
                    for i in 0..saves {
                        store
                            .save(&run(
                                &format!("w{w}-{i}"),
                                Some("main"),
                                Some("c"),
                                None,
                                "fp",
                            ))
                            .unwrap();
                    }
                    added
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(
        added_common, 3,
        "each common run imported by exactly one writer"
    );
    let store = Store::open(&db).unwrap();
    let listed = store.list(&ListFilter::default()).unwrap();
    assert_eq!(listed.len(), writers * saves + 3);
    let uids: std::collections::HashSet<&str> = listed.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids.len(), listed.len(), "no run twice");
}

#[test]
fn a_foreign_or_damaged_sqlite_file_is_refused_and_left_alone() {
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

    // Damage: a saved history with its pages overwritten.
    let damaged = dir.path().join("damaged.db");
    {
        let mut s = Store::open(&damaged).unwrap();
        for i in 0..20 {
            s.save(&run(&format!("u{i}"), Some("main"), Some("c"), None, "fp"))
                .unwrap();
        }
    }
    Connection::open(&damaged)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
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
fn a_postgres_password_is_never_shown_stored_or_in_an_error() {
    let Some(server) = pg::server() else { return };
    let url = server.fresh_database();
    let dbname = url.rsplit('/').next().unwrap().to_string();
    let mut store = Store::open(Path::new(&url)).unwrap();
    assert!(!store.path().contains(pg::PASSWORD), "{}", store.path());
    assert_eq!(
        store.path(),
        format!(
            "postgres://{}:***@127.0.0.1:{}/{dbname}",
            pg::USER,
            server.port
        )
    );
    let mut r = run("secretive", Some("main"), Some("c1"), None, "fp");
    r.target = format!("http://127.0.0.1:{}", server.port);
    store.save(&r).unwrap();
    // Every column of every row, as text.
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    for table in ["runs", "endpoints", "gate_schema"] {
        for row in admin
            .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
            .unwrap()
        {
            let text: String = row.get(0);
            assert!(!text.contains(pg::PASSWORD), "{table}: {text}");
        }
    }
    assert_eq!(store.load(1).unwrap().record, r);

    // A wrong password: refused by the server (exit 3), the attempt not echoed.
    let wrong = format!(
        "postgres://{}:not-the-Pw-4417@127.0.0.1:{}/{dbname}",
        pg::USER,
        server.port
    );
    let err = Store::open(Path::new(&wrong)).map(|_| ()).unwrap_err();
    let shown = format!("{err} {:?} {}", err, err.hint().unwrap_or_default());
    assert!(matches!(err, StoreError::PgConnect { .. }), "{shown}");
    assert!(!err.is_bad_input());
    assert!(
        shown.contains(&format!("127.0.0.1:{}", server.port)),
        "{shown}"
    );
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(!shown.contains("not-the-Pw-4417"), "{shown}");

    // Nobody listening: names host:port, exit 3.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = Store::open(Path::new(&format!(
        "postgres://u:pw-9931@127.0.0.1:{port}/db"
    )))
    .map(|_| ())
    .unwrap_err();
    assert!(matches!(err, StoreError::PgConnect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!format!("{err:?}").contains("pw-9931"), "{err:?}");

    // TLS is not there yet: a URL that requires it is refused up front, as bad input.
    let err = Store::open(Path::new(&format!("{url}?sslmode=require")))
        .map(|_| ())
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains("sslmode=disable"), "{err}");
    assert!(!err.to_string().contains(pg::PASSWORD), "{err}");
}

fn llm_figures_survive_the_history_and_records_without_them_still_load(fx: &Fixture) {
    let mut store = fx.open("h");
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
