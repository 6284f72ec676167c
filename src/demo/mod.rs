//! The bundled sample service: a real HTTP API over a real SQLite database.
//!
//! gate's demo, its end-to-end tests and its calibration all need a target whose
//! performance behaves like a small production service: requests that do real
//! query work, a write path with transactions, and a switchable regression
//! (`n-plus-one`) whose cost shows up in the `Server-Timing` breakdown. A toy
//! handler that sleeps would not exercise any of that.
//!
//! The server runs on its own OS thread with its own tokio runtime, so it can be
//! started from synchronous code (the CLI), from inside another runtime (tests)
//! and shut down from either without runtime-nesting panics.

mod api;
mod db;
mod latency;
mod llm;
mod noise;
mod options;
mod seed;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use api::{DEMO_TOKEN, demo_password};
pub use noise::{Neighbour, NoiseShape};
pub use options::{
    DemoError, DemoOptions, ParseRegressionError, REGRESSIONS, Regression, SeedStats,
};

/// How long in-flight requests get to finish after a shutdown request before the
/// runtime is torn down anyway. Keep-alive connections of a load generator would
/// otherwise be able to hold the process open indefinitely.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Worker threads of the server's private runtime. Two is enough to saturate the
/// SQLite pool on the 2-core machines gate is calibrated on, and keeps the demo from
/// competing with the load generator for CPU more than a real service would.
const WORKER_THREADS: usize = 2;

/// A running demo service. Stops (gracefully) on [`shutdown`](Self::shutdown) or drop.
pub struct DemoServer {
    addr: SocketAddr,
    stats: SeedStats,
    /// Only read by test helpers; holding it also means the temp database is
    /// removed when the server value goes, not at some point on the server thread.
    state: Arc<api::AppState>,
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DemoServer {
    /// Bind `addr` (port 0 = ephemeral), create + seed the database, and serve on a dedicated
    /// background OS thread with its own multi-thread tokio runtime (2 worker threads), so the
    /// caller's runtime (or lack of one) does not matter. Returns once the listener is bound and
    /// the data is seeded.
    pub fn start(addr: SocketAddr, opts: DemoOptions) -> Result<DemoServer, DemoError> {
        // Bind first: a taken port is the most likely failure and should not cost a
        // seeding run. A std listener also reports the error synchronously here.
        let listener =
            std::net::TcpListener::bind(addr).map_err(|reason| DemoError::Bind { addr, reason })?;
        let local = listener
            .local_addr()
            .and_then(|a| listener.set_nonblocking(true).map(|()| a))
            .map_err(|reason| DemoError::Bind { addr, reason })?;

        let (db, stats) = db::Db::create(opts.seed, opts.db_latency.unwrap_or_default())?;
        let state = Arc::new(api::AppState::new(db, &opts));

        // The runtime is built on the server thread so that it is also dropped there:
        // dropping a runtime inside the caller's async context would panic.
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("gate-demo".into())
            .spawn(move || serve_thread(listener, thread_state, ready_tx, stop_rx))
            .map_err(|reason| DemoError::Io {
                what: "spawn the server thread",
                reason,
            })?;

        let handle = match ready_rx.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(DemoError::Io {
                    what: "start the server thread",
                    reason: std::io::Error::other("server thread exited during start-up"),
                });
            }
        };

        Ok(DemoServer {
            addr: local,
            stats,
            state,
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address actually bound (the real port when started with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL to reach the server, e.g. `http://127.0.0.1:PORT`. An unspecified
    /// bind address (`0.0.0.0`, `::`) is replaced by loopback, since that is what a
    /// client on this machine can connect to.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Switch the regression on or off while serving: before and after on one process.
    pub fn set_regression(&self, regress: Option<Regression>) {
        self.state.set_regression(regress);
    }

    /// Scale the simulated upstream delay (1.0 = as configured; 1.1 = 10% slower), while
    /// serving. Calibration uses it to create a known slowdown.
    pub fn set_latency_factor(&self, factor: f64) {
        self.state.set_latency_factor(factor);
    }

    /// What logins, order writes and order reads carried, one line each
    /// (`login user=ID token=T`, `create-order id=ID user=ID token=T`, `read-order id=ID`):
    /// lets tests prove that a flow used the values it captured.
    pub fn request_log(&self) -> Vec<String> {
        self.state.request_log()
    }

    pub fn seed_stats(&self) -> SeedStats {
        self.stats
    }

    /// SQL statements executed since start (seeding excluded). Lets tests check that
    /// the N+1 regression really issues more queries, not just that it is slower.
    #[cfg(test)]
    pub(crate) fn db_queries(&self) -> u64 {
        self.state.db.queries()
    }

    /// Where the temp database lives, to check that shutdown removes it.
    #[cfg(test)]
    pub(crate) fn db_dir(&self) -> std::path::PathBuf {
        self.state.db.dir().to_owned()
    }

    /// Graceful stop; also done on Drop. Deletes the temp database.
    pub fn shutdown(self) {
        // Drop does the work; this method exists so callers can say what they mean.
        drop(self);
    }

    /// Block the current thread until Ctrl-C (tokio::signal) then shut down. Used by `gate serve-demo`.
    pub fn wait_for_ctrl_c(self) {
        // The signal future needs a runtime; borrowing the server's avoids building a
        // second one (which would panic if the caller is itself inside a runtime).
        let (tx, rx) = mpsc::channel();
        self.handle.spawn(async move {
            if let Err(err) = tokio::signal::ctrl_c().await {
                // Without a handler, the default SIGINT action still ends the process,
                // so keep serving rather than exit immediately.
                eprintln!("gate demo: cannot listen for Ctrl-C: {err}");
                std::future::pending::<()>().await;
            }
            let _ = tx.send(());
        });
        // An error means the server thread is gone; there is nothing left to wait for.
        let _ = rx.recv();
        self.shutdown();
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been reported by the panic hook;
            // there is nothing more useful to do with it during shutdown.
            let _ = thread.join();
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop();
        // `state` (and with it the connections and the temp directory) is released
        // after this, once the server thread no longer holds a reference.
    }
}

impl std::fmt::Debug for DemoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServer")
            .field("addr", &self.addr)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

type Ready = Result<tokio::runtime::Handle, DemoError>;

fn serve_thread(
    listener: std::net::TcpListener,
    state: Arc<api::AppState>,
    ready: mpsc::Sender<Ready>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("gate-demo-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(reason) => {
            let _ = ready.send(Err(DemoError::Io {
                what: "build the tokio runtime",
                reason,
            }));
            return;
        }
    };

    let listener = {
        // from_std registers with the reactor, which needs the runtime entered.
        let _guard = runtime.enter();
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(reason) => {
                let _ = ready.send(Err(DemoError::Io {
                    what: "register the listener",
                    reason,
                }));
                return;
            }
        }
    };

    if ready.send(Ok(runtime.handle().clone())).is_err() {
        return;
    }

    runtime.block_on(async move {
        let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
        let app = api::router(state);
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = graceful_rx.await;
                })
                .into_future(),
        );
        // Either an explicit stop or the DemoServer being dropped (sender gone).
        let _ = stop.await;
        let _ = graceful_tx.send(());
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    });
    // Requests still running past the grace period are abandoned, but blocking
    // SQLite calls get a moment to finish so their connections are released cleanly.
    runtime.shutdown_timeout(Duration::from_secs(1));
}
