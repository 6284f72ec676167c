//! The PostgreSQL backend: `--db postgres://user[:password]@host[:port]/dbname`.
//!
//! The same tables as SQLite in PostgreSQL's types (`schema.rs`), versioned by the one row of
//! `gate_schema`; migrations run under an advisory lock, so many gates opening a new database at
//! once migrate it once. Every write is one transaction; run ids come from an identity column and
//! run uids are UNIQUE, so any number of writers can save and import at once: an import skips a
//! run whose uid is present (`ON CONFLICT (uid) DO NOTHING`), even one another writer is saving
//! at that moment. No TLS yet (`sslmode=disable`; `prefer` connects without it; `require` is
//! refused). The password (in the URL or `PGPASSWORD`) stays in the connection: messages show
//! the URL redacted and scrub it from driver errors.

use std::cell::RefCell;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Transaction};

use super::schema::{CURRENT_VERSION, PG_MIGRATIONS};
use super::url::{redact_url, scrub};
use super::{
    BaselineSelection, Export, HeadInfo, ListFilter, PruneReport, RunRow, StoreError, baseline,
    decode_endpoint, decode_run_extras, git_or_none,
};
use crate::config::BaselinePolicy;
use crate::git::GitInfo;
use crate::record::{RunRecord, RunSummary, StoredRun};

/// Retries of a transaction PostgreSQL aborted for a deadlock or a serialization failure.
const MAX_RETRIES: u64 = 8;

/// Unless the URL sets `connect_timeout`: a server that does not answer is reported, not waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock taken while the schema is checked and migrated ("gate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6761_7465;

pub struct PgStore {
    client: RefCell<Client>,
    /// The URL with its password as `***`.
    shown: String,
    password: Option<String>,
}

/// A driver error in words: the server's own message when it sent one.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text = format!("{text}: {more}");
                }
                source = s.source();
            }
            text
        }
    }
}

/// The password written in a URL (`user:password@` or `password=`), to scrub from messages even
/// when the URL does not parse.
fn raw_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let from_userinfo = authority
        .rfind('@')
        .and_then(|i| authority[..i].split_once(':'))
        .map(|(_, p)| p.to_string());
    from_userinfo.or_else(|| {
        let query = rest.split_once('?')?.1;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("password="))
            .map(str::to_string)
    })
}

impl PgStore {
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let shown = redact_url(url);
        let raw = raw_password(url);
        let mut config = Config::from_str(url).map_err(|e| StoreError::BadUrl {
            message: format!(
                "{shown} is not a valid PostgreSQL URL: {}",
                scrub(&e.to_string(), raw.as_deref())
            ),
        })?;
        if config.get_password().is_none()
            && let Ok(pw) = std::env::var("PGPASSWORD")
        {
            config.password(pw);
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .or(raw);
        if config.get_user().is_none() {
            match std::env::var("PGUSER").or_else(|_| std::env::var("USER")) {
                Ok(user) if !user.is_empty() => {
                    config.user(&user);
                }
                _ => {
                    return Err(StoreError::BadUrl {
                        message: format!(
                            "{shown} names no user (postgres://USER@host/dbname, or set PGUSER)"
                        ),
                    });
                }
            }
        }
        match config.get_ssl_mode() {
            SslMode::Disable => {}
            // What libpq does without TLS support: connect in the clear.
            SslMode::Prefer => {
                config.ssl_mode(SslMode::Disable);
            }
            _ => {
                return Err(StoreError::BadUrl {
                    message: format!(
                        "{shown}: TLS to the history database is not supported yet; use sslmode=disable \
                         (on a trusted network, or through a TLS tunnel)"
                    ),
                });
            }
        }
        if config.get_hosts().is_empty() {
            return Err(StoreError::BadUrl {
                message: format!("{shown} names no host"),
            });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("gate");
        }
        let addr = {
            let port = config.get_ports().first().copied().unwrap_or(5432);
            match &config.get_hosts()[0] {
                Host::Tcp(h) if h.contains(':') => format!("[{h}]:{port}"),
                Host::Tcp(h) => format!("{h}:{port}"),
                Host::Unix(p) => format!("{}/.s.PGSQL.{port}", p.display()),
            }
        };
        let client = config.connect(NoTls).map_err(|e| StoreError::PgConnect {
            target: shown.clone(),
            addr,
            message: scrub(&describe(&e), password.as_deref()),
        })?;
        let store = PgStore {
            client: RefCell::new(client),
            shown,
            password,
        };
        store.check_and_migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &str {
        &self.shown
    }

    fn err(&self, e: postgres::Error) -> StoreError {
        StoreError::Postgres {
            target: self.shown.clone(),
            message: scrub(&describe(&e), self.password.as_deref()),
        }
    }

    fn check_and_migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let q = |tx: &mut Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]| {
            tx.query_one(sql, params)
        };
        q(
            &mut tx,
            "SELECT pg_advisory_xact_lock($1)",
            &[&MIGRATION_LOCK],
        )
        .map_err(|e| self.err(e))?;
        let has_meta: bool = q(
            &mut tx,
            "SELECT to_regclass('gate_schema') IS NOT NULL",
            &[],
        )
        .map_err(|e| self.err(e))?
        .get(0);
        if !has_meta {
            let tables: i64 = q(
                &mut tx,
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
                &[],
            )
            .map_err(|e| self.err(e))?
            .get(0);
            if tables > 0 {
                return Err(StoreError::NotGateDb {
                    path: self.shown.clone(),
                    reason: "a PostgreSQL database of another program: it has tables but no gate_schema; \
                             give gate a database of its own"
                        .into(),
                });
            }
            tx.batch_execute(
                "CREATE TABLE gate_schema (application TEXT NOT NULL, version BIGINT NOT NULL);
                 INSERT INTO gate_schema VALUES ('gate', 0);",
            )
            .map_err(|e| self.err(e))?;
        }
        let row = q(&mut tx, "SELECT application, version FROM gate_schema", &[])
            .map_err(|e| self.err(e))?;
        let (application, version): (String, i64) = (row.get(0), row.get(1));
        if application != "gate" {
            return Err(StoreError::NotGateDb {
                path: self.shown.clone(),
                reason: format!("its gate_schema names `{application}`"),
            });
        }
        if version > CURRENT_VERSION {
            return Err(StoreError::Newer {
                path: self.shown.clone(),
                found: version,
                known: CURRENT_VERSION,
            });
        }
        for (i, sql) in PG_MIGRATIONS
            .iter()
            .enumerate()
            .skip(version.max(0) as usize)
        {
            tx.batch_execute(sql).map_err(|e| self.err(e))?;
            tx.execute("UPDATE gate_schema SET version = $1", &[&(i as i64 + 1)])
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn save(&mut self, run: &RunRecord) -> Result<i64, StoreError> {
        let row = RunRow::new(run);
        self.transaction(|tx| {
            Ok(insert_run(tx, &row, false)?.expect("a plain insert returns its id"))
        })
    }

    /// Run `body` in one transaction, committed; again (up to [`MAX_RETRIES`] times) when
    /// PostgreSQL aborted it for a deadlock or a serialization failure, which writers importing
    /// overlapping runs in different orders can cause.
    fn transaction<T>(
        &self,
        mut body: impl FnMut(&mut Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut client = self.client.borrow_mut();
        let mut attempt = 0;
        loop {
            let result = client.transaction().and_then(|mut tx| {
                let value = body(&mut tx)?;
                tx.commit()?;
                Ok(value)
            });
            match result {
                Err(e) if attempt < MAX_RETRIES && is_transient(&e) => {
                    attempt += 1;
                    // Growing and jittered, so two writers that collided do not meet again at
                    // the same moment (on a loaded machine 3 plain retries were seen to fail).
                    let jitter = {
                        use rand::{Rng, SeedableRng};
                        rand::rngs::SmallRng::from_os_rng().random_range(0..20 * attempt)
                    };
                    std::thread::sleep(Duration::from_millis(20 * attempt + jitter));
                }
                other => return other.map_err(|e| self.err(e)),
            }
        }
    }

    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RunSummary>, StoreError> {
        let limit = filter.last.map(|n| n as i64);
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT r.id, r.uid, r.started_at, r.git_commit, r.git_branch, r.merge_base, r.dirty, r.pr,
                        r.label, r.complete, r.env_fingerprint,
                        (SELECT count(*) FROM endpoints e WHERE e.run_id = r.id)
                 FROM runs r
                 WHERE ($1::text IS NULL OR r.git_branch = $1)
                 ORDER BY r.id DESC LIMIT $2",
                &[&filter.branch, &limit],
            )
            .map_err(|e| self.err(e))?;
        let mut out: Vec<RunSummary> = rows
            .iter()
            .map(|r| RunSummary {
                id: r.get(0),
                uid: r.get(1),
                started_at: r.get(2),
                git: GitInfo {
                    commit: r.get(3),
                    branch: r.get(4),
                    merge_base: r.get(5),
                    dirty: r.get(6),
                },
                pr: r.get::<_, Option<i64>>(7).map(|p| p as u64),
                label: r.get(8),
                complete: r.get(9),
                env_fingerprint: r.get(10),
                endpoints: r.get::<_, i64>(11) as u64,
            })
            .collect();
        out.reverse(); // oldest first, newest at the bottom, like a log
        Ok(out)
    }

    pub fn load(&self, id: i64) -> Result<StoredRun, StoreError> {
        let mut client = self.client.borrow_mut();
        let row = client
            .query_opt(
                "SELECT uid, started_at, finished_at, git_commit, git_branch, merge_base, dirty, pr, target, suite,
                        label, complete, gate_version, record_version, env_json, faults
                 FROM runs WHERE id = $1",
                &[&id],
            )
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NoSuchRun(id))?;
        let bad = |message: String| StoreError::BadRow { id, message };
        let mut record = RunRecord {
            uid: row.get(0),
            started_at: row.get(1),
            finished_at: row.get(2),
            git: git_or_none(GitInfo {
                commit: row.get(3),
                branch: row.get(4),
                merge_base: row.get(5),
                dirty: row.get(6),
            }),
            pr: row.get::<_, Option<i64>>(7).map(|p| p as u64),
            target: row.get(8),
            suite: row.get(9),
            label: row.get(10),
            complete: row.get(11),
            faults: Vec::new(),
            gate_version: row.get(12),
            version: u32::try_from(row.get::<_, i64>(13))
                .map_err(|_| bad("record_version out of range".into()))?,
            environment: None,
            endpoints: Vec::new(),
        };
        (record.environment, record.faults) =
            decode_run_extras(row.get(14), row.get(15)).map_err(bad)?;
        let endpoints = client
            .query(
                "SELECT summary, latency_hist FROM endpoints WHERE run_id = $1 ORDER BY position",
                &[&id],
            )
            .map_err(|e| self.err(e))?;
        for e in &endpoints {
            let (summary, lat): (&[u8], &[u8]) = (e.get(0), e.get(1));
            record
                .endpoints
                .push(decode_endpoint(summary, lat).map_err(bad)?);
        }
        Ok(StoredRun { id, record })
    }

    pub fn select_baseline(
        &self,
        policy: &BaselinePolicy,
        head: &HeadInfo,
    ) -> Result<BaselineSelection, StoreError> {
        let exclude = head.exclude_run.unwrap_or(-1);
        baseline::select(policy, head, |commit, k| {
            let rows = self
                .client
                .borrow_mut()
                .query(
                    "SELECT r.id FROM runs r
                     WHERE r.git_branch = $1 AND r.complete AND r.env_fingerprint = $2
                       AND r.id <> $3 AND ($4::text IS NULL OR r.git_commit = $4)
                       AND EXISTS (SELECT 1 FROM endpoints e
                                   WHERE e.run_id = r.id AND e.scenario_hash = ANY($5))
                     ORDER BY r.id DESC LIMIT $6",
                    &[
                        &policy.branch,
                        &head.env_fingerprint,
                        &exclude,
                        &commit,
                        &head.scenario_hashes,
                        &k,
                    ],
                )
                .map_err(|e| self.err(e))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    pub fn prune(
        &mut self,
        keep: usize,
        policy: &BaselinePolicy,
    ) -> Result<PruneReport, StoreError> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        // Saves wait while retention decides (it reads every run, then deletes).
        tx.batch_execute("LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE")
            .map_err(|e| self.err(e))?;
        let rows = tx
            .query(
                "SELECT id, git_branch, git_commit, merge_base, env_fingerprint, complete FROM runs",
                &[],
            )
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| baseline::PruneRow {
                id: r.get(0),
                branch: r.get(1),
                commit: r.get(2),
                merge_base: r.get(3),
                env_fingerprint: r.get(4),
                complete: r.get(5),
            })
            .collect::<Vec<_>>();
        let (doomed, report) = baseline::plan_prune(&rows, keep, policy);
        tx.execute("DELETE FROM runs WHERE id = ANY($1)", &[&doomed])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(report)
    }

    pub fn run_ids(&self, branch: Option<&str>) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT id FROM runs WHERE ($1::text IS NULL OR git_branch = $1) ORDER BY id",
                &[&branch],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn import(&mut self, export: &Export) -> Result<(usize, usize), StoreError> {
        let rows: Vec<RunRow<'_>> = export.runs.iter().map(RunRow::new).collect();
        self.transaction(|tx| {
            let (mut added, mut present) = (0, 0);
            for row in &rows {
                match insert_run(tx, row, true)? {
                    Some(_) => added += 1,
                    None => present += 1,
                }
            }
            Ok((added, present))
        })
    }

    pub fn runs_at_commit(&self, commit: &str) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT id FROM runs WHERE git_commit = $1 AND complete ORDER BY id DESC",
                &[&commit],
            )
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn latest_on_branch(&self, branch: &str) -> Result<Option<i64>, StoreError> {
        let row = self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT id FROM runs WHERE git_branch = $1 AND complete ORDER BY id DESC LIMIT 1",
                &[&branch],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    pub fn has_branch(&self, branch: &str) -> Result<bool, StoreError> {
        let row = self
            .client
            .borrow_mut()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE git_branch = $1)",
                &[&branch],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.get(0))
    }

    pub fn count(&self) -> Result<i64, StoreError> {
        let row = self
            .client
            .borrow_mut()
            .query_one("SELECT count(*) FROM runs", &[])
            .map_err(|e| self.err(e))?;
        Ok(row.get(0))
    }
}

fn is_transient(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Insert one run and its endpoints. With `skip_present`, a run whose uid is already stored is
/// left alone and None returned (even when another writer stored it a moment ago).
fn insert_run(
    tx: &mut Transaction<'_>,
    row: &RunRow<'_>,
    skip_present: bool,
) -> Result<Option<i64>, postgres::Error> {
    let run = row.run;
    let git = &row.git;
    let conflict = if skip_present {
        "ON CONFLICT (uid) DO NOTHING"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO runs (uid, started_at, finished_at, git_commit, git_branch, merge_base, dirty, pr, target,
                           suite, label, complete, gate_version, record_version, env_fingerprint, env_json, faults)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         {conflict} RETURNING id"
    );
    let inserted = tx.query_opt(
        &sql,
        &[
            &row.uid,
            &run.started_at,
            &run.finished_at,
            &git.commit,
            &git.branch,
            &git.merge_base,
            &git.dirty,
            &row.pr,
            &run.target,
            &run.suite,
            &run.label,
            &run.complete,
            &run.gate_version,
            &i64::from(run.version),
            &row.env_fingerprint,
            &row.env_json,
            &row.faults,
        ],
    )?;
    let Some(inserted) = inserted else {
        return Ok(None);
    };
    let id: i64 = inserted.get(0);
    if !row.endpoints.is_empty() {
        let stmt = tx.prepare(
            "INSERT INTO endpoints (run_id, position, name, scenario_hash, requests, p50_ms, p95_ms, p99_ms,
                                    error_rate, throughput_rps, summary, latency_hist)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )?;
        for (i, ep) in row.endpoints.iter().enumerate() {
            let e = ep.e;
            tx.execute(
                &stmt,
                &[
                    &id,
                    &(i as i64),
                    &e.name,
                    &e.scenario_hash,
                    &(e.requests as i64),
                    &e.latency.p50_ms,
                    &e.latency.p95_ms,
                    &e.latency.p99_ms,
                    &e.error_rate,
                    &e.throughput_rps,
                    &ep.summary,
                    &ep.latency_hist,
                ],
            )?;
        }
    }
    Ok(Some(id))
}
