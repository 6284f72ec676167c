//! The SQLite backend (bundled): WAL, a busy timeout, one IMMEDIATE transaction per run.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::schema::{APPLICATION_ID, CURRENT_VERSION, MIGRATIONS};
use super::{
    BaselineSelection, EndpointRow, Export, HeadInfo, ListFilter, PruneReport, RunRow, StoreError,
    baseline, decode_endpoint, decode_run_extras, git_or_none,
};
use crate::config::BaselinePolicy;
use crate::git::GitInfo;
use crate::record::{RunRecord, RunSummary, StoredRun};

/// Long enough to outwait another gate saving a run; short enough to report a stuck lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SqliteStore {
    conn: Connection,
    path: String,
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

impl SqliteStore {
    /// Open (or create) the history at `path`, upgrading an older schema.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        let sql = |source: rusqlite::Error| wrap(&path.display().to_string(), source);
        // Look before SQLite does: opening a non-database file in WAL mode would write beside it.
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.is_dir() {
                return Err(StoreError::NotGateDb {
                    path: shown,
                    reason: "it is a directory".into(),
                });
            }
            if meta.len() > 0 {
                let mut header = [0u8; 16];
                let read = std::fs::File::open(path).and_then(|mut f| {
                    use std::io::Read;
                    f.read_exact(&mut header)
                });
                if read.is_err() || &header != b"SQLite format 3\0" {
                    return Err(StoreError::NotGateDb {
                        path: shown,
                        reason: "not an SQLite file".into(),
                    });
                }
            }
        } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: shown.clone(),
                source,
            })?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // An endpoint row is ~2-3 KB: on 4 KB pages only one fits and half of each page is
        // wasted. 16 KB pages hold six or seven. Only takes effect on a database not yet written.
        conn.pragma_update(None, "page_size", 16_384).map_err(sql)?;
        let mut store = SqliteStore {
            conn,
            path: path.display().to_string(),
        };
        store.check_and_migrate()?;
        store
            .conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(sql)?;
        // WAL lets readers (history list, compare) run while another gate saves.
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            eprintln!("note: {} could not switch to WAL mode ({mode})", store.path);
        }
        store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        Ok(store)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        if is_corruption(&source) {
            StoreError::Corrupt {
                path: self.path.clone(),
                source,
            }
        } else {
            StoreError::Sqlite {
                path: self.path.clone(),
                source,
            }
        }
    }

    fn check_and_migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| wrap(&path, e))?;
        let app_id: i32 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| wrap(&path, e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| wrap(&path, e))?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| wrap(&path, e))?;
        if app_id != APPLICATION_ID {
            if app_id != 0 || tables > 0 {
                return Err(StoreError::NotGateDb {
                    path,
                    reason: "an SQLite database of another program".into(),
                });
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(|e| wrap(&path, e))?;
        }
        if version > CURRENT_VERSION {
            return Err(StoreError::Newer {
                path,
                found: version,
                known: CURRENT_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(|e| wrap(&path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| wrap(&path, e))?;
        }
        tx.commit().map_err(|e| wrap(&path, e))
    }

    /// Save one run, whole, in one transaction. Returns its id.
    pub fn save(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| wrap(&path, e))?;
        let id = insert_run(&tx, run).map_err(|e| wrap(&path, e))?;
        tx.commit().map_err(|e| wrap(&path, e))?;
        Ok(id)
    }

    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RunSummary>, StoreError> {
        let limit = filter.last.map_or(-1, |n| n as i64);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.id, r.uid, r.started_at, r.git_commit, r.git_branch, r.merge_base, r.dirty, r.pr,
                        r.label, r.complete, r.env_fingerprint,
                        (SELECT count(*) FROM endpoints e WHERE e.run_id = r.id)
                 FROM runs r
                 WHERE (?1 IS NULL OR r.git_branch = ?1)
                 ORDER BY r.id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![filter.branch, limit], |r| {
                Ok(RunSummary {
                    id: r.get(0)?,
                    uid: r.get(1)?,
                    started_at: r.get(2)?,
                    git: GitInfo {
                        commit: r.get(3)?,
                        branch: r.get(4)?,
                        merge_base: r.get(5)?,
                        dirty: r.get(6)?,
                    },
                    pr: r.get::<_, Option<i64>>(7)?.map(|p| p as u64),
                    label: r.get(8)?,
                    complete: r.get(9)?,
                    env_fingerprint: r.get(10)?,
                    endpoints: r.get::<_, i64>(11)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        let mut out: Vec<RunSummary> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        out.reverse(); // oldest first, newest at the bottom, like a log
        Ok(out)
    }

    pub fn load(&self, id: i64) -> Result<StoredRun, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT uid, started_at, finished_at, git_commit, git_branch, merge_base, dirty, pr, target, suite,
                        label, complete, gate_version, record_version, env_json, faults
                 FROM runs WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        RunRecord {
                            uid: r.get(0)?,
                            started_at: r.get(1)?,
                            finished_at: r.get(2)?,
                            git: None,
                            pr: r.get::<_, Option<i64>>(7)?.map(|p| p as u64),
                            target: r.get(8)?,
                            suite: r.get(9)?,
                            label: r.get(10)?,
                            complete: r.get(11)?,
                            faults: Vec::new(),
                            gate_version: r.get(12)?,
                            version: r.get(13)?,
                            environment: None,
                            endpoints: Vec::new(),
                        },
                        GitInfo { commit: r.get(3)?, branch: r.get(4)?, merge_base: r.get(5)?, dirty: r.get(6)? },
                        r.get::<_, Option<String>>(14)?,
                        r.get::<_, Option<String>>(15)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let (mut record, git, env_json, faults) = row.ok_or(StoreError::NoSuchRun(id))?;
        let bad = |message: String| StoreError::BadRow { id, message };
        record.git = git_or_none(git);
        (record.environment, record.faults) = decode_run_extras(env_json, faults).map_err(bad)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT summary, latency_hist FROM endpoints WHERE run_id = ?1 ORDER BY position",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (summary, lat) = row.map_err(|e| self.err(e))?;
            record
                .endpoints
                .push(decode_endpoint(&summary, &lat).map_err(bad)?);
        }
        Ok(StoredRun { id, record })
    }

    /// Choose the baseline runs for `head` (see `baseline.rs` for the rules).
    pub fn select_baseline(
        &self,
        policy: &BaselinePolicy,
        head: &HeadInfo,
    ) -> Result<BaselineSelection, StoreError> {
        let placeholders = vec!["?"; head.scenario_hashes.len().max(1)].join(",");
        let sql = format!(
            "SELECT r.id FROM runs r
             WHERE r.git_branch = ? AND r.complete = 1 AND r.env_fingerprint = ?
               AND r.id != ? AND (? IS NULL OR r.git_commit = ?)
               AND EXISTS (SELECT 1 FROM endpoints e WHERE e.run_id = r.id AND e.scenario_hash IN ({placeholders}))
             ORDER BY r.id DESC LIMIT ?"
        );
        baseline::select(policy, head, |commit, k| {
            let mut values: Vec<rusqlite::types::Value> = vec![
                policy.branch.clone().into(),
                head.env_fingerprint.clone().into(),
                head.exclude_run.unwrap_or(-1).into(),
                commit.map(str::to_string).into(),
                commit.map(str::to_string).into(),
            ];
            if head.scenario_hashes.is_empty() {
                values.push(rusqlite::types::Value::Null);
            }
            values.extend(head.scenario_hashes.iter().map(|h| h.clone().into()));
            values.push(k.into());
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let ids = stmt
                .query_map(rusqlite::params_from_iter(values), |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>())
                .map_err(|e| self.err(e))?;
            Ok(ids)
        })
    }

    /// Keep the newest `keep` runs of every branch, and every run a current baseline needs.
    pub fn prune(
        &mut self,
        keep: usize,
        policy: &BaselinePolicy,
    ) -> Result<PruneReport, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| wrap(&path, e))?;
        let rows = tx
            .prepare("SELECT id, git_branch, git_commit, merge_base, env_fingerprint, complete FROM runs")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok(baseline::PruneRow {
                        id: r.get(0)?,
                        branch: r.get(1)?,
                        commit: r.get(2)?,
                        merge_base: r.get(3)?,
                        env_fingerprint: r.get(4)?,
                        complete: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| wrap(&path, e))?;
        let (doomed, report) = baseline::plan_prune(&rows, keep, policy);
        {
            let mut delete = tx
                .prepare("DELETE FROM runs WHERE id = ?1")
                .map_err(|e| wrap(&path, e))?;
            for id in doomed {
                delete.execute([id]).map_err(|e| wrap(&path, e))?;
            }
        }
        tx.commit().map_err(|e| wrap(&path, e))?;
        Ok(report)
    }

    pub fn run_ids(&self, branch: Option<&str>) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE (?1 IS NULL OR git_branch = ?1) ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([branch], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Add the runs of an export; runs already present (same uid) are skipped. All or nothing.
    /// Returns (imported, already present).
    pub fn import(&mut self, export: &Export) -> Result<(usize, usize), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| wrap(&path, e))?;
        let (mut added, mut present) = (0, 0);
        for run in &export.runs {
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM runs WHERE uid = ?1)",
                    [&run.uid],
                    |r| r.get(0),
                )
                .map_err(|e| wrap(&path, e))?;
            if exists {
                present += 1;
            } else {
                insert_run(&tx, run).map_err(|e| wrap(&path, e))?;
                added += 1;
            }
        }
        tx.commit().map_err(|e| wrap(&path, e))?;
        Ok((added, present))
    }

    /// Complete runs at `commit`, newest first.
    pub fn runs_at_commit(&self, commit: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM runs WHERE git_commit = ?1 AND complete = 1 ORDER BY id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([commit], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The newest complete run of `branch`.
    pub fn latest_on_branch(&self, branch: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT id FROM runs WHERE git_branch = ?1 AND complete = 1 ORDER BY id DESC LIMIT 1",
                [branch],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn has_branch(&self, branch: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE git_branch = ?1)",
                [branch],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    pub fn count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

fn wrap(path: &str, source: rusqlite::Error) -> StoreError {
    if is_corruption(&source) {
        StoreError::Corrupt {
            path: path.to_string(),
            source,
        }
    } else {
        StoreError::Sqlite {
            path: path.to_string(),
            source,
        }
    }
}

fn insert_run(tx: &rusqlite::Transaction<'_>, run: &RunRecord) -> rusqlite::Result<i64> {
    let row = RunRow::new(run);
    let git = &row.git;
    tx.execute(
        "INSERT INTO runs (uid, started_at, finished_at, git_commit, git_branch, merge_base, dirty, pr, target,
                           suite, label, complete, gate_version, record_version, env_fingerprint, env_json, faults)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            row.uid,
            run.started_at,
            run.finished_at,
            git.commit,
            git.branch,
            git.merge_base,
            git.dirty,
            row.pr,
            run.target,
            run.suite,
            run.label,
            run.complete,
            run.gate_version,
            run.version,
            row.env_fingerprint,
            row.env_json,
            row.faults,
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO endpoints (run_id, position, name, scenario_hash, requests, p50_ms, p95_ms, p99_ms, error_rate,
                                throughput_rps, summary, latency_hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for (
        i,
        EndpointRow {
            e,
            summary,
            latency_hist,
        },
    ) in row.endpoints.iter().enumerate()
    {
        stmt.execute(params![
            id,
            i as i64,
            e.name,
            e.scenario_hash,
            e.requests as i64,
            e.latency.p50_ms,
            e.latency.p95_ms,
            e.latency.p99_ms,
            e.error_rate,
            e.throughput_rps,
            summary,
            latency_hist,
        ])?;
    }
    Ok(id)
}
