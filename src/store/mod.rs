//! The run history: SQLite (bundled), WAL, a busy timeout, one transaction per run.
//!
//! Safety rules: a file that is not a gate history is never written to; a database from a newer
//! gate is refused; two processes saving at once both succeed (IMMEDIATE transactions wait on
//! the busy timeout instead of failing); a run is stored whole or not at all. Secrets never get
//! here: records carry template text, not `${ENV}` values.

mod baseline;
mod export;
mod schema;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::config::BaselinePolicy;
pub use crate::record::{RunSummary, StoredRun};
pub use baseline::{BaselineSelection, HeadInfo, PruneReport};
pub use export::{EXPORT_FORMAT, EXPORT_VERSION, Export};
pub use schema::CURRENT_VERSION;
use schema::{APPLICATION_ID, MIGRATIONS};

use crate::environment::Environment;
use crate::git::GitInfo;
use crate::record::{EndpointRecord, RunRecord};

pub const DEFAULT_DB: &str = ".gate/history.db";
/// Long enough to outwait another gate saving a run; short enough to report a stuck lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a gate history database ({reason}); refusing to touch it")]
    NotGateDb { path: String, reason: String },
    #[error(
        "{path} was written by a newer gate (schema version {found}; this gate knows up to {known})"
    )]
    Newer {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("{path} is damaged: {source}")]
    Corrupt {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the directory for {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no run #{0} in the history")]
    NoSuchRun(i64),
    #[error("{path}: {message}")]
    BadImport { path: String, message: String },
    #[error("stored run #{id} cannot be read back: {message}")]
    BadRow { id: i64, message: String },
}

impl StoreError {
    /// The file is not a history gate may write (another program's file, a newer schema): a
    /// refusal, as opposed to a database that is fine but cannot be written right now.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::NotGateDb { .. } | StoreError::Newer { .. } | StoreError::Corrupt { .. }
        ) || self.is_bad_input()
    }

    /// Bad input (a run id, an import file) versus a database problem.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::NoSuchRun(_) | StoreError::BadImport { .. }
        )
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::NotGateDb { .. } => Some("point --db (or GATE_DB) at a gate history, or at a new file".into()),
            StoreError::Newer { .. } => Some("upgrade gate, or use another --db".into()),
            StoreError::Corrupt { .. } => {
                Some("restore the file from a backup or a baselines/*.json export; gate left it as it is".into())
            }
            StoreError::NoSuchRun(_) => Some("`gate history list` shows the run ids".into()),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub branch: Option<String>,
    pub last: Option<usize>,
}

pub struct Store {
    conn: Connection,
    path: String,
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

impl Store {
    /// Open (or create) the history at `path`, upgrading an older schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
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
        let mut store = Store {
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
        record.git = (git != GitInfo::default()).then_some(git);
        record.environment = env_json
            .map(|j| serde_json::from_str::<Environment>(&j))
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        record.faults = faults
            .map(|j| serde_json::from_str::<Vec<String>>(&j))
            .transpose()
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
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
            let json =
                inflate(&summary).map_err(|e| bad(format!("summary does not inflate: {e}")))?;
            let mut e: EndpointRecord =
                serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
            e.latency.histogram = base64::engine::general_purpose::STANDARD.encode(lat);
            record.endpoints.push(e);
        }
        Ok(StoredRun { id, record })
    }

    /// Choose the baseline runs for `head` (see `baseline.rs` for the rules).
    pub fn select_baseline(
        &self,
        policy: &BaselinePolicy,
        head: &HeadInfo,
    ) -> Result<BaselineSelection, StoreError> {
        baseline::select(&self.conn, policy, head).map_err(|e| self.err(e))
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
        let report = baseline::prune(&tx, keep, policy).map_err(|e| wrap(&path, e))?;
        tx.commit().map_err(|e| wrap(&path, e))?;
        Ok(report)
    }

    /// Every run of `branch` (all branches when None), oldest first.
    pub fn export(&self, branch: Option<&str>) -> Result<Export, StoreError> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM runs WHERE (?1 IS NULL OR git_branch = ?1) ORDER BY id")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([branch], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let runs = ids
            .into_iter()
            .map(|id| self.load(id).map(|r| r.record))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Export::new(branch.map(str::to_string), runs))
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

fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)
        .expect("writing into a Vec cannot fail");
    enc.finish().expect("writing into a Vec cannot fail")
}

fn inflate(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
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
    let git = run.git.clone().unwrap_or_default();
    let env_json = run
        .environment
        .as_ref()
        .map(|e| serde_json::to_string(e).expect("plain data serialises"));
    let faults = (!run.faults.is_empty())
        .then(|| serde_json::to_string(&run.faults).expect("plain data serialises"));
    let fingerprint = run
        .environment
        .as_ref()
        .map_or("", |e| e.fingerprint.as_str());
    let uid = if run.uid.is_empty() {
        // A record from an older JSON document has no uid: derive one from its content.
        format!(
            "{:016x}",
            crate::hash::fnv1a(serde_json::to_string(run).unwrap_or_default().as_bytes())
        )
    } else {
        run.uid.clone()
    };
    tx.execute(
        "INSERT INTO runs (uid, started_at, finished_at, git_commit, git_branch, merge_base, dirty, pr, target,
                           suite, label, complete, gate_version, record_version, env_fingerprint, env_json, faults)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            uid,
            run.started_at,
            run.finished_at,
            git.commit,
            git.branch,
            git.merge_base,
            git.dirty,
            run.pr.map(|p| p as i64),
            run.target,
            run.suite,
            run.label,
            run.complete,
            run.gate_version,
            run.version,
            fingerprint,
            env_json,
            faults,
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO endpoints (run_id, position, name, scenario_hash, requests, p50_ms, p95_ms, p99_ms, error_rate,
                                throughput_rps, summary, latency_hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (i, e) in run.endpoints.iter().enumerate() {
        // The histogram goes in as raw bytes (a third smaller than base64), the rest as deflated JSON.
        let lat = b64.decode(&e.latency.histogram).unwrap_or_default();
        let mut summary = e.clone();
        summary.latency.histogram.clear();
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
            deflate(&serde_json::to_vec(&summary).expect("plain data serialises")),
            lat,
        ])?;
    }
    Ok(id)
}

#[cfg(test)]
pub(crate) mod tests;
