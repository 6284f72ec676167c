//! The demo's SQLite database: a temp file, a small connection pool and the
//! bookkeeping behind the `db` entry of `Server-Timing`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Params, Row, TransactionBehavior};

use super::{DemoError, SeedStats};

/// Read connections. More than the runtime's worker threads so that a slow query
/// does not stall the others, few enough that SQLite's page caches stay small.
/// Enough that a simulated database round trip (`db_latency`) keeps connections waiting on
/// I/O, as a real pool does, without the pool itself becoming the bottleneck at demo rates.
const READERS: usize = 16;

/// Long enough to ride out a WAL checkpoint, short enough that a wedged writer
/// surfaces as an error instead of a hung request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE categories (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    stock       INTEGER NOT NULL
);
CREATE TABLE users (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    email TEXT NOT NULL
);
CREATE TABLE orders (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE line_items (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders(id),
    product_id       INTEGER NOT NULL REFERENCES products(id),
    qty              INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE reviews (
    id         INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    rating     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// Built after the bulk load: one sort per index is much cheaper than keeping them
/// up to date row by row.
const INDEXES: &str = "
CREATE UNIQUE INDEX users_email ON users(email);
CREATE INDEX products_category ON products(category_id);
CREATE INDEX orders_user_created ON orders(user_id, created_at);
CREATE INDEX line_items_order ON line_items(order_id);
CREATE INDEX reviews_product_created ON reviews(product_id, created_at);
";

pub(super) struct Db {
    readers: Vec<Mutex<Connection>>,
    /// SQLite allows one writer at a time anyway; serialising writers on our side
    /// means they queue on a mutex instead of in SQLite's sleeping busy handler,
    /// which would add multi-millisecond stalls under concurrent POSTs.
    writer: Mutex<Connection>,
    next_reader: AtomicUsize,
    queries: AtomicU64,
    /// Simulated network round trip per statement (see `DemoOptions::db_latency`).
    round_trip: Duration,
    // Declared last so the connections above are closed before the files go.
    _dir: tempfile::TempDir,
}

/// What one unit of database work cost, for `Server-Timing`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DbCost {
    pub time: Duration,
}

impl Db {
    /// Create the database in a fresh temp directory and seed it.
    pub fn create(seed: u64, round_trip: Duration) -> Result<(Db, SeedStats), DemoError> {
        let dir = tempfile::Builder::new()
            .prefix("gate-demo-")
            .tempdir()
            .map_err(|reason| DemoError::Io {
                what: "create a temp directory for the database",
                reason,
            })?;
        let path = dir.path().join("demo.sqlite3");

        let mut writer = open(&path)?;
        // WAL lets readers run alongside the writer; the mode is persistent, so the
        // readers opened below inherit it.
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DemoError::Io {
                what: "switch the database journal to WAL",
                reason: std::io::Error::other(format!("journal mode is {mode}")),
            });
        }
        writer.execute_batch(SCHEMA)?;

        let started = Instant::now();
        let mut stats = {
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stats = super::seed::seed(&tx, seed)?;
            tx.execute_batch(INDEXES)?;
            tx.commit()?;
            stats
        };
        // Fold the bulk load into the main file now, so the first requests do not
        // pay for a checkpoint, and give the planner statistics.
        writer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
        stats.seed_time = started.elapsed();
        // Off during the bulk load (every insert would be checked), on for requests.
        writer.pragma_update(None, "foreign_keys", true)?;

        let readers = (0..READERS)
            .map(|_| {
                let conn = open(&path)?;
                // A reader that writes would be a bug in this module; make it fail loudly.
                conn.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, DemoError>>()?;

        Ok((
            Db {
                readers,
                writer: Mutex::new(writer),
                next_reader: AtomicUsize::new(0),
                queries: AtomicU64::new(0),
                round_trip,
                _dir: dir,
            },
            stats,
        ))
    }

    /// Statements executed since start-up, seeding excluded.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Run read-only work on a pooled connection. Blocking: call from
    /// `spawn_blocking`, never from an async task.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&mut Session<'_>) -> rusqlite::Result<T>,
    ) -> (rusqlite::Result<T>, DbCost) {
        // The `db` metric includes waiting for a pooled connection: that wait is the
        // database's cost too, and a breakdown should say so rather than blame `app`.
        let waited = Instant::now();
        let conn = self.reader();
        let mut session = Session::new(&conn, self.round_trip);
        session.started = waited;
        let result = work(&mut session);
        self.finish(session, result)
    }

    /// Run work in one IMMEDIATE transaction on the writer connection, committed
    /// only if `work` succeeds. Blocking, like [`read`](Self::read).
    pub fn write<T>(
        &self,
        work: impl FnOnce(&mut Session<'_>) -> rusqlite::Result<T>,
    ) -> (rusqlite::Result<T>, DbCost) {
        let mut conn = lock(&self.writer);
        let started = Instant::now();
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads
        // first and writes later can fail with SQLITE_BUSY half-way through.
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(err) => return (Err(err), DbCost::default()),
        };
        let mut session = Session::new(&tx, self.round_trip);
        let result = work(&mut session);
        let queries = session.queries;
        // Dropping an uncommitted Transaction rolls it back.
        let result = result.and_then(|v| tx.commit().map(|()| v));
        self.queries
            .fetch_add(u64::from(queries), Ordering::Relaxed);
        (
            result,
            DbCost {
                time: started.elapsed(),
            },
        )
    }

    fn finish<T>(
        &self,
        session: Session<'_>,
        result: rusqlite::Result<T>,
    ) -> (rusqlite::Result<T>, DbCost) {
        self.queries
            .fetch_add(u64::from(session.queries), Ordering::Relaxed);
        (
            result,
            DbCost {
                time: session.started.elapsed(),
            },
        )
    }

    /// Prefer an idle connection, starting at a rotating index so load spreads
    /// evenly; if all are busy, queue on one rather than spin.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return conn;
            }
        }
        lock(&self.readers[start % n])
    }
}

/// A connection whose previous user panicked mid-query is still a valid SQLite
/// handle (any open transaction is rolled back when its guard drops), so keep using it.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open(path: &std::path::Path) -> Result<Connection, DemoError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // NORMAL is durable enough under WAL for a demo and avoids an fsync per commit,
    // which would make POST latency depend on the disk rather than the code.
    // The database lives in a temp directory and dies with the process: durability buys
    // nothing, and checkpoint fsyncs would add stalls to the write path's latency tail.
    conn.pragma_update(None, "synchronous", "OFF")?;
    // The whole database (~10 MB) fits, so timings reflect query work, not I/O.
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// A connection lent to one request. Counts the statements it runs and times the
/// whole session, which is what the `db` metric reports.
pub(super) struct Session<'c> {
    conn: &'c Connection,
    queries: u32,
    started: Instant,
    round_trip: Duration,
}

impl<'c> Session<'c> {
    fn new(conn: &'c Connection, round_trip: Duration) -> Self {
        Session {
            conn,
            queries: 0,
            started: Instant::now(),
            round_trip,
        }
    }

    /// Count a statement and pay its simulated round trip. An in-process SQLite answers in
    /// microseconds, so an N+1 costs little here; against a database across a network every
    /// statement is a round trip, which is what makes N+1 hurt in production.
    fn statement(&mut self) {
        self.queries += 1;
        if !self.round_trip.is_zero() {
            // Blocking is fine: sessions run on the blocking pool, never on async workers.
            std::thread::sleep(self.round_trip);
        }
    }

    /// The first row, if any.
    pub fn query_opt<T, P: Params>(
        &mut self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Option<T>> {
        self.statement();
        self.conn
            .prepare_cached(sql)?
            .query_row(params, map)
            .optional()
    }

    /// Exactly one row (an aggregate, say).
    pub fn query_one<T, P: Params>(
        &mut self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.statement();
        self.conn.prepare_cached(sql)?.query_row(params, map)
    }

    /// All rows, using the statement cache.
    pub fn query_all<T, P: Params>(
        &mut self,
        sql: &str,
        params: P,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.statement();
        self.conn
            .prepare_cached(sql)?
            .query_map(params, map)?
            .collect()
    }

    /// All rows, preparing the statement from scratch. This is what a lazy-loading
    /// ORM typically does for each association it touches, and it is the realistic
    /// per-query overhead of the N+1 regression.
    pub fn query_all_uncached<T, P: Params>(
        &mut self,
        sql: &str,
        params: P,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.statement();
        self.conn.prepare(sql)?.query_map(params, map)?.collect()
    }

    pub fn execute<P: Params>(&mut self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.statement();
        self.conn.prepare_cached(sql)?.execute(params)
    }

    pub fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }
}
