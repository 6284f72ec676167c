//! The run history, on one of two backends behind one API:
//!
//! - SQLite (bundled, the default): a file such as `.gate/history.db`; WAL, a busy timeout, one
//!   IMMEDIATE transaction per run (`sqlite.rs`).
//! - PostgreSQL: `--db postgres://user@host:port/dbname`, a history shared by many repositories
//!   and writers; one transaction per run, plain TCP (`sslmode=disable`; TLS to the database is
//!   not supported yet) (`postgres.rs`).
//!
//! Both hold the same schema at the same version, choose baselines and prune by the same rules
//! (`baseline.rs`), and export/import the same files (`export.rs`). Safety rules: a database that
//! is not a gate history is never written to; a history from a newer gate is refused; two
//! processes saving at once both succeed; a run is stored whole or not at all. Secrets never get
//! here: records carry template text, not `${ENV}` values, and a PostgreSQL password is only ever
//! shown as `***`.

mod baseline;
mod export;
mod postgres;
mod schema;
mod sqlite;
mod url;

use std::path::Path;

use base64::Engine as _;

use crate::config::BaselinePolicy;
pub use crate::record::{RunSummary, StoredRun};
pub use baseline::{BaselineSelection, HeadInfo, PruneReport};
pub use export::{EXPORT_FORMAT, EXPORT_VERSION, Export};
pub use postgres::PgStore;
pub use schema::CURRENT_VERSION;
pub use sqlite::SqliteStore;
pub use url::{is_postgres_url, redact_db};

use crate::environment::Environment;
use crate::git::GitInfo;
use crate::record::{EndpointRecord, RunRecord};

pub const DEFAULT_DB: &str = ".gate/history.db";

/// Runs per transaction when `gate history copy` moves a history: big enough to be quick, small
/// enough that memory stays flat on a large history and an interrupted copy keeps what it did.
const COPY_BATCH: usize = 200;

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
    /// A PostgreSQL error; `target` is the redacted URL, `message` never holds the password.
    #[error("history database {target}: {message}")]
    Postgres { target: String, message: String },
    /// The server could not be reached, or refused us (authentication, no such database).
    #[error("cannot connect to the history database at {addr} ({target}): {message}")]
    PgConnect {
        target: String,
        addr: String,
        message: String,
    },
    #[error("--db (or GATE_DB): {message}")]
    BadUrl { message: String },
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

    /// Bad input (a run id, an import file, a malformed URL) versus a database problem.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::NoSuchRun(_) | StoreError::BadImport { .. } | StoreError::BadUrl { .. }
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
            StoreError::PgConnect { .. } => Some(
                "check that PostgreSQL runs there, and the user, database and password (in the URL or PGPASSWORD)"
                    .into(),
            ),
            StoreError::BadUrl { .. } => {
                Some("the form is postgres://user[:password]@host[:port]/dbname".into())
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub branch: Option<String>,
    pub last: Option<usize>,
}

/// The history: an SQLite file or a PostgreSQL database, with the same methods on both.
pub enum Store {
    Sqlite(SqliteStore),
    /// Boxed: the client is several times the size of an SQLite connection.
    Postgres(Box<PgStore>),
}

/// Call the same method on whichever backend this is.
macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Open (or create) the history at `db`, upgrading an older schema: a `postgres://` or
    /// `postgresql://` URL is a PostgreSQL database, anything else an SQLite file.
    pub fn open(db: &Path) -> Result<Store, StoreError> {
        match db.to_str().filter(|s| is_postgres_url(s)) {
            Some(url) => PgStore::open(url).map(|s| Store::Postgres(Box::new(s))),
            None => SqliteStore::open(db).map(Store::Sqlite),
        }
    }

    /// The history as it may be shown: a file path, or a URL with its password as `***`.
    pub fn path(&self) -> &str {
        both!(self, s => s.path())
    }

    /// Save one run, whole, in one transaction. Returns its id.
    pub fn save(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        both!(self, s => s.save(run))
    }

    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RunSummary>, StoreError> {
        both!(self, s => s.list(filter))
    }

    pub fn load(&self, id: i64) -> Result<StoredRun, StoreError> {
        both!(self, s => s.load(id))
    }

    /// Choose the baseline runs for `head` (see `baseline.rs` for the rules).
    pub fn select_baseline(
        &self,
        policy: &BaselinePolicy,
        head: &HeadInfo,
    ) -> Result<BaselineSelection, StoreError> {
        both!(self, s => s.select_baseline(policy, head))
    }

    /// Keep the newest `keep` runs of every branch, and every run a current baseline needs.
    pub fn prune(
        &mut self,
        keep: usize,
        policy: &BaselinePolicy,
    ) -> Result<PruneReport, StoreError> {
        both!(self, s => s.prune(keep, policy))
    }

    /// Ids of every run of `branch` (all branches when None), oldest first.
    pub fn run_ids(&self, branch: Option<&str>) -> Result<Vec<i64>, StoreError> {
        both!(self, s => s.run_ids(branch))
    }

    /// Every run of `branch` (all branches when None), oldest first.
    pub fn export(&self, branch: Option<&str>) -> Result<Export, StoreError> {
        let runs = self
            .run_ids(branch)?
            .into_iter()
            .map(|id| self.load(id).map(|r| r.record))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Export::new(branch.map(str::to_string), runs))
    }

    /// Add the runs of an export; runs already present (same uid) are skipped. All or nothing.
    /// Returns (imported, already present).
    pub fn import(&mut self, export: &Export) -> Result<(usize, usize), StoreError> {
        both!(self, s => s.import(export))
    }

    /// Copy every run of `self` into `to`, oldest first, skipping runs `to` already holds (same
    /// uid): running it twice copies nothing the second time. Batches of runs, each in one
    /// transaction. Returns (copied, already present).
    pub fn copy_to(&self, to: &mut Store) -> Result<(usize, usize), StoreError> {
        let (mut added, mut present) = (0, 0);
        for ids in self.run_ids(None)?.chunks(COPY_BATCH) {
            let runs = ids
                .iter()
                .map(|&id| self.load(id).map(|r| r.record))
                .collect::<Result<Vec<_>, _>>()?;
            let (a, p) = to.import(&Export::new(None, runs))?;
            added += a;
            present += p;
        }
        Ok((added, present))
    }

    /// Complete runs at `commit`, newest first.
    pub fn runs_at_commit(&self, commit: &str) -> Result<Vec<i64>, StoreError> {
        both!(self, s => s.runs_at_commit(commit))
    }

    /// The newest complete run of `branch`.
    pub fn latest_on_branch(&self, branch: &str) -> Result<Option<i64>, StoreError> {
        both!(self, s => s.latest_on_branch(branch))
    }

    pub fn has_branch(&self, branch: &str) -> Result<bool, StoreError> {
        both!(self, s => s.has_branch(branch))
    }

    pub fn count(&self) -> Result<i64, StoreError> {
        both!(self, s => s.count())
    }
}

/// A run as both backends write it: the derived columns, computed once.
pub(crate) struct RunRow<'a> {
    pub run: &'a RunRecord,
    pub uid: String,
    pub git: GitInfo,
    pub pr: Option<i64>,
    pub env_fingerprint: &'a str,
    pub env_json: Option<String>,
    pub faults: Option<String>,
    pub endpoints: Vec<EndpointRow<'a>>,
}

pub(crate) struct EndpointRow<'a> {
    pub e: &'a EndpointRecord,
    /// The record without its histogram, as deflated JSON.
    pub summary: Vec<u8>,
    /// The latency histogram as raw bytes (a third smaller than base64).
    pub latency_hist: Vec<u8>,
}

impl<'a> RunRow<'a> {
    pub fn new(run: &'a RunRecord) -> RunRow<'a> {
        let uid = if run.uid.is_empty() {
            // A record from an older JSON document has no uid: derive one from its content.
            format!(
                "{:016x}",
                crate::hash::fnv1a(serde_json::to_string(run).unwrap_or_default().as_bytes())
            )
        } else {
            run.uid.clone()
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        RunRow {
            run,
            uid,
            git: run.git.clone().unwrap_or_default(),
            pr: run.pr.map(|p| p as i64),
            env_fingerprint: run
                .environment
                .as_ref()
                .map_or("", |e| e.fingerprint.as_str()),
            env_json: run
                .environment
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("plain data serialises")),
            faults: (!run.faults.is_empty())
                .then(|| serde_json::to_string(&run.faults).expect("plain data serialises")),
            endpoints: run
                .endpoints
                .iter()
                .map(|e| {
                    let mut summary = e.clone();
                    summary.latency.histogram.clear();
                    EndpointRow {
                        e,
                        summary: deflate(
                            &serde_json::to_vec(&summary).expect("plain data serialises"),
                        ),
                        latency_hist: b64.decode(&e.latency.histogram).unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }
}

/// The environment and faults of a stored run, from their JSON columns.
pub(crate) fn decode_run_extras(
    env_json: Option<String>,
    faults: Option<String>,
) -> Result<(Option<Environment>, Vec<String>), String> {
    let environment = env_json
        .map(|j| serde_json::from_str::<Environment>(&j))
        .transpose()
        .map_err(|e| e.to_string())?;
    let faults = faults
        .map(|j| serde_json::from_str::<Vec<String>>(&j))
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    Ok((environment, faults))
}

/// One stored endpoint back as a record.
pub(crate) fn decode_endpoint(
    summary: &[u8],
    latency_hist: &[u8],
) -> Result<EndpointRecord, String> {
    let json = inflate(summary).map_err(|e| format!("summary does not inflate: {e}"))?;
    let mut e: EndpointRecord = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    e.latency.histogram = base64::engine::general_purpose::STANDARD.encode(latency_hist);
    Ok(e)
}

/// The git context as stored: all-empty means there was none.
pub(crate) fn git_or_none(git: GitInfo) -> Option<GitInfo> {
    (git != GitInfo::default()).then_some(git)
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

#[cfg(test)]
pub(crate) mod tests;
