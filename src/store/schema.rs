//! Schema and migrations, versioned by `PRAGMA user_version`. Each migration runs once, in order,
//! inside the same IMMEDIATE transaction that checks the version, so two processes opening a new
//! or old database at once cannot both migrate it.

/// `PRAGMA application_id` of a gate history ("gate" in ASCII): tells our database from any other
/// SQLite file.
pub const APPLICATION_ID: i32 = 0x6761_7465;

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs and their endpoints. The latency histogram is a raw HdrHistogram V2 deflate blob
    // (a third smaller than base64); the rest of the endpoint record is deflated JSON.
    r#"
    CREATE TABLE runs (
        id              INTEGER PRIMARY KEY,
        uid             TEXT NOT NULL UNIQUE,
        started_at      TEXT NOT NULL,
        finished_at     TEXT NOT NULL,
        git_commit      TEXT,
        git_branch      TEXT,
        merge_base      TEXT,
        dirty           INTEGER NOT NULL DEFAULT 0,
        target          TEXT NOT NULL,
        suite           TEXT NOT NULL,
        label           TEXT,
        complete        INTEGER NOT NULL,
        gate_version    TEXT NOT NULL,
        record_version  INTEGER NOT NULL,
        env_fingerprint TEXT NOT NULL,
        env_json        TEXT
    );
    CREATE INDEX runs_by_branch ON runs (git_branch, env_fingerprint, complete, id);
    CREATE INDEX runs_by_commit ON runs (git_commit);
    CREATE TABLE endpoints (
        run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position       INTEGER NOT NULL,
        name           TEXT NOT NULL,
        scenario_hash  TEXT NOT NULL,
        requests       INTEGER NOT NULL,
        p50_ms         REAL NOT NULL,
        p95_ms         REAL NOT NULL,
        p99_ms         REAL NOT NULL,
        error_rate     REAL NOT NULL,
        throughput_rps REAL NOT NULL,
        summary        BLOB NOT NULL,
        latency_hist   BLOB NOT NULL,
        PRIMARY KEY (run_id, position)
    );
    "#,
    // 2: pull request number of the run (GitHub Actions), to find a PR's runs.
    r#"
    ALTER TABLE runs ADD COLUMN pr INTEGER;
    CREATE INDEX runs_by_pr ON runs (pr) WHERE pr IS NOT NULL;
    "#,
    // 3: what broke a run's measurement (a load thread that died), as a JSON array of strings;
    // NULL when nothing did. Such a run is saved with complete = 0, so it is never a baseline.
    r#"
    ALTER TABLE runs ADD COLUMN faults TEXT;
    "#,
];

pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;
