//! The load engine: runs a `Plan` against the target and returns a `RunRecord`.
//!
//! Scenarios run one after another, each on `threads` OS threads with a current-thread runtime
//! apiece (see `worker`). Timing covers the whole exchange, from the intended send time to the
//! last body byte. Memory is bounded by threads × histograms, whatever the run length.

mod h1;
pub mod llm;
mod progress;
pub mod tally;
pub mod transport;
mod worker;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;

pub use progress::ProgressMode;
use tally::Stats;
pub use worker::Fault;
use worker::panic_message;
use worker::{Progress, Shared};

use crate::config::{LoadModel, Plan, ScenarioPlan, Target};
use crate::record::{
    EndpointRecord, LatencySummary, LoadRecord, RECORD_VERSION, RunRecord, TransportRecord,
    now_rfc3339,
};
use transport::{ConnectError, Connector, H2Mode, TlsConfigError};

const CONNECT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the check listens for a TLS 1.3 post-handshake alert (a refused client certificate).
const ALERT_WAIT: Duration = Duration::from_millis(150);
/// Lead time so every thread is spawned and connected before the first request is due.
const START_LEAD: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the target {url}: connecting to {addr} failed: {source}")]
    Unreachable {
        url: String,
        addr: String,
        #[source]
        source: std::io::Error,
        /// An LLM provider's base_url, not a `--target`.
        provider: bool,
    },
    #[error("cannot resolve the target host `{host}`: {message}")]
    Resolve { host: String, message: String },
    /// The first TLS handshake failed: untrusted, expired or misnamed certificate, a refused
    /// client certificate, no common protocol.
    #[error("{url}: {message}")]
    Tls { url: String, message: String },
    /// `--cacert`, `tls.ca`, `tls.cert` or `tls.key` does not hold what it should.
    #[error("{0}")]
    TlsConfig(#[from] TlsConfigError),
    #[error("cannot start load threads: {0}")]
    Runtime(#[source] std::io::Error),
    /// A load thread (or one of its virtual users) died: the run did not measure what it
    /// planned, so it can never pass. The record was still reported and saved as incomplete.
    #[error("the run did not measure: {}", faults.join("; "))]
    Died { faults: Vec<String> },
    /// A flow's `setup:` step failed: nothing was measured.
    #[error("scenario `{scenario}`: setup step `{step}` failed: {message}")]
    Setup {
        scenario: String,
        step: String,
        message: String,
    },
}

impl EngineError {
    pub fn is_bad_input(&self) -> bool {
        matches!(self, EngineError::TlsConfig(_))
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Unreachable { provider: false, .. } => {
                Some("is the service running? check --target (or `target:` in suite.yml)".into())
            }
            EngineError::Unreachable { provider: true, .. } => Some(
                "is the provider up and its base_url right? check `llm.base_url` or the entry under `llm.providers`".into(),
            ),
            EngineError::Tls { .. } => Some(
                "the first connection's TLS handshake failed, so no load was sent; see docs/targets.md".into(),
            ),
            EngineError::Died { .. } => Some(
                "this is a bug in gate, not in the target: the run is saved as incomplete and is never a baseline; please report it with the message above".into(),
            ),
            _ => None,
        }
    }
}

/// How many load threads a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// `--threads N`.
    Fixed(usize),
    /// Chosen per target by [`Threads::auto`].
    Auto,
}

impl Threads {
    /// The default, chosen by measurement (`benches/peers.sh`): a target on this machine's own
    /// loopback shares its cores with gate, and there one thread per *two* cores serves more
    /// requests than one per core (on 2 cores, 1 thread gave 1.29x the throughput of 2 against
    /// nginx, as wrk -t1 beats wrk -t2 there); a remote target leaves every core to gate.
    pub fn auto(addr: SocketAddr) -> usize {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        if addr.ip().is_loopback() {
            (cores / 2).max(1)
        } else {
            cores
        }
    }

    /// The thread count for a scenario whose connections go to `addr`.
    pub fn for_addr(self, addr: SocketAddr) -> usize {
        match self {
            Threads::Fixed(n) => n.max(1),
            Threads::Auto => Threads::auto(addr),
        }
    }
}

/// A sliced run (paired mode, `execute_sliced`): each scenario's measurement cut into time
/// slices of `width` (the last one shorter when the duration is not a multiple). Runs that
/// share one `Slicing` (base and head, on two threads: `parties` of them) start each scenario at
/// the same instant, once all of them are ready for it, so slice k of one covers the same moment
/// of the machine as slice k of the other.
#[derive(Clone, Debug)]
pub struct Slicing {
    pub width: Duration,
    parties: usize,
    clock: Arc<(std::sync::Mutex<Vec<Meeting>>, std::sync::Condvar)>,
}

/// One scenario's start: who has arrived, and the instant once everyone has.
#[derive(Clone, Copy, Debug, Default)]
struct Meeting {
    arrived: usize,
    start: Option<Instant>,
}

/// The longest a run waits at a scenario's start for the others (a slow drain, a slow setup);
/// after it, it starts alone and its slices are out of step by that much.
const MEET_TIMEOUT: Duration = Duration::from_secs(60);

impl Slicing {
    pub fn new(width: Duration, parties: usize) -> Slicing {
        Slicing {
            width,
            parties: parties.max(1),
            clock: Arc::default(),
        }
    }

    /// When scenario `index` starts: `START_LEAD` after the last of the parties is ready for it.
    /// A party that waits gives up on `cancel` (the other side failed, or Ctrl-C) or after
    /// [`MEET_TIMEOUT`], and then starts at once.
    fn start_of(&self, index: usize, cancel: &AtomicBool) -> Instant {
        let (lock, arrived) = &*self.clock;
        let mut clock = lock.lock().unwrap_or_else(|p| p.into_inner());
        if clock.len() <= index {
            clock.resize(index + 1, Meeting::default());
        }
        clock[index].arrived += 1;
        if clock[index].arrived >= self.parties && clock[index].start.is_none() {
            clock[index].start = Some(Instant::now() + START_LEAD);
            arrived.notify_all();
        }
        let deadline = Instant::now() + MEET_TIMEOUT;
        loop {
            if let Some(t) = clock[index].start {
                return t.max(Instant::now());
            }
            let now = Instant::now();
            if now >= deadline || cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return now + START_LEAD;
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            clock = arrived
                .wait_timeout(clock, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn slices(&self, duration: Duration) -> usize {
        (duration.as_nanos().div_ceil(self.width.as_nanos().max(1)) as usize).max(1)
    }
}

/// What [`execute_sliced`] measured: the whole run, and per time slice a record of what each
/// endpoint measured in it (its records carry the slice's latencies, counts and timings; their
/// run metadata is the whole run's).
pub struct Sliced {
    pub whole: RunRecord,
    pub slices: Vec<RunRecord>,
}

pub struct EngineOptions {
    pub threads: Threads,
    pub progress: ProgressMode,
    /// Set (e.g. by Ctrl-C) to stop early; the record is then marked incomplete.
    pub cancel: Arc<AtomicBool>,
    /// A fault to inject, for testing that a dead worker never turns into a pass.
    pub fault: Option<Fault>,
}

/// A target checked before the load: where its connections go, and what the check learned.
struct Reached {
    target: Target,
    connector: Connector,
    dns: Option<Duration>,
}

/// Where connections to `target` go: a `--resolve` rule, an address literal, or DNS (timed).
fn resolve(
    target: &Target,
    rules: &[crate::config::ResolveRule],
) -> Result<(Vec<SocketAddr>, Option<Duration>), EngineError> {
    let host = target.host.to_ascii_lowercase();
    if let Some(r) = rules
        .iter()
        .find(|r| r.host == host && r.port == target.port)
    {
        return Ok((vec![SocketAddr::new(r.addr, target.port)], None));
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, target.port)], None));
    }
    let t0 = Instant::now();
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| EngineError::Resolve {
            host: target.host.clone(),
            message: e.to_string(),
        })?
        .collect();
    Ok((addrs, Some(t0.elapsed())))
}

/// Check that every target accepts connections (TCP, and the TLS handshake for https) before
/// any load is sent, so an unreachable target or a bad certificate is one clear error instead
/// of a table full of failures.
fn check_reachable(target: &Target, plan: &Plan, llm: bool) -> Result<Reached, EngineError> {
    // LLM providers are reached the way a company network wants: through its proxy.
    let proxy = if llm {
        transport::Proxy::from_env(target).map_err(|message| EngineError::Tls {
            url: target.url(),
            message,
        })?
    } else {
        None
    };
    let (addrs, dns) = match &proxy {
        // The proxy resolves the target's name; the connections go to the proxy.
        Some(_) => (vec![SocketAddr::from(([0, 0, 0, 0], 0))], None),
        None => resolve(target, &plan.resolve)?,
    };
    let mut last_err = None;
    for addr in &addrs {
        let mode = if plan.http1_only {
            H2Mode::Http1Only
        } else if plan.http2_prior_knowledge && !target.tls {
            H2Mode::PriorKnowledge
        } else {
            H2Mode::Negotiate
        };
        let connector = Connector::new(target, *addr, &plan.tls, mode)?.through(proxy.clone());
        match handshake_once(&connector) {
            Ok(()) => {
                return Ok(Reached {
                    target: target.clone(),
                    connector,
                    dns,
                });
            }
            Err(ConnectError::Tcp(e)) => last_err = Some((connector.addr(), e)),
            Err(e) => {
                return Err(EngineError::Tls {
                    url: target.url(),
                    message: e.to_string(),
                });
            }
        }
    }
    let (addr, source) = last_err.ok_or_else(|| EngineError::Resolve {
        host: target.host.clone(),
        message: "no address found".into(),
    })?;
    Err(EngineError::Unreachable {
        url: target.url(),
        addr: addr.to_string(),
        source,
        provider: llm,
    })
}

/// One connection and handshake, on a thread of its own (the caller may be inside a runtime).
fn handshake_once(connector: &Connector) -> Result<(), ConnectError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ConnectError::Tcp)?;
                rt.block_on(async {
                    match tokio::time::timeout(CONNECT_CHECK_TIMEOUT, connector.open()).await {
                        Ok(Ok((stream, _))) => alert_after_handshake(stream).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(ConnectError::Tcp(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connection timed out",
                        ))),
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(ConnectError::Tcp(std::io::Error::other(
                    "the connection check panicked",
                )))
            })
    })
}

/// In TLS 1.3 a server refuses a client certificate (or its absence) only after the client
/// has finished its side of the handshake: listen briefly for that alert, so a gateway that
/// wants mTLS is one clear line before the load, not a table of failures.
async fn alert_after_handshake(mut stream: transport::Stream) -> Result<(), ConnectError> {
    use tokio::io::AsyncReadExt;
    if matches!(stream, transport::Stream::Plain(_)) {
        return Ok(());
    }
    let mut byte = [0u8; 1];
    match tokio::time::timeout(ALERT_WAIT, stream.read(&mut byte)).await {
        Ok(Err(e)) => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::UnknownCA,
            )) => Err(ConnectError::Tls(
                "the server refused the connection without a valid client certificate: set `tls: { cert: FILE, key: FILE }` in suite.yml".into(),
            )),
            Some(other) => Err(ConnectError::Tls(format!(
                "the server ended the TLS session: {other}"
            ))),
            None => Ok(()),
        },
        // Data, a clean close, or silence: the handshake stood.
        _ => Ok(()),
    }
}

pub fn execute(plan: &Plan, opts: &EngineOptions) -> Result<RunRecord, EngineError> {
    execute_with(plan, opts, false)
}

/// [`execute`], keeping every distribution's histogram in the record when `full_histograms`:
/// TTFB, TPOT, inter-token latency and cost, which a saved run keeps as summaries only. A shard's
/// document carries them so `gate merge` adds them exactly.
pub fn execute_with(
    plan: &Plan,
    opts: &EngineOptions,
    full_histograms: bool,
) -> Result<RunRecord, EngineError> {
    Ok(run_plan(plan, opts, full_histograms, None)?.0)
}

/// [`execute`], the measurement of every scenario also cut into time slices (paired mode's
/// blocks: one continuous run per side instead of a restarted run per block).
pub fn execute_sliced(
    plan: &Plan,
    opts: &EngineOptions,
    slicing: &Slicing,
) -> Result<Sliced, EngineError> {
    let (whole, per_slice) = run_plan(plan, opts, false, Some(slicing))?;
    let slices = per_slice
        .into_iter()
        .map(|endpoints| RunRecord {
            endpoints,
            ..whole.clone()
        })
        .collect();
    Ok(Sliced { whole, slices })
}

/// Run `plan`; with `slicing`, also each slice's endpoint records, by slice.
fn run_plan(
    plan: &Plan,
    opts: &EngineOptions,
    full_histograms: bool,
    slicing: Option<&Slicing>,
) -> Result<(RunRecord, Vec<Vec<EndpointRecord>>), EngineError> {
    let mut reached: Vec<Reached> = Vec::new();
    for s in &plan.scenarios {
        if !reached.iter().any(|r| r.target == s.target) {
            let llm = plan
                .scenarios
                .iter()
                .any(|x| x.target == s.target && x.llm.is_some());
            reached.push(check_reachable(&s.target, plan, llm)?);
        }
        // A fallback chain's other providers: reachable too, or the run does not start.
        for hop in s.llm.iter().flat_map(|l| l.hops.iter().flatten()) {
            if !reached.iter().any(|r| r.target == hop.target) {
                reached.push(check_reachable(&hop.target, plan, true)?);
            }
        }
    }
    let started_at = now_rfc3339();
    let mut display = progress::Display::new(opts.progress, plan.scenarios.len());
    let mut endpoints = Vec::new();
    let mut per_slice: Vec<Vec<EndpointRecord>> = Vec::new();
    let mut complete = true;
    let mut faults = Vec::new();
    for (i, scenario) in plan.scenarios.iter().enumerate() {
        if opts.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            complete = false;
            break;
        }
        let reach_of = |s: &ScenarioPlan| {
            reached
                .iter()
                .find(|r| r.target == s.target)
                .expect("every scenario's target was checked above")
        };
        let reach = reach_of(scenario);
        let ran = match &scenario.group {
            // A traffic mix: the group's members run together, when its first member comes.
            Some(m) => {
                let members: Vec<usize> = (0..plan.scenarios.len())
                    .filter(|&j| {
                        plan.scenarios[j]
                            .group
                            .as_ref()
                            .is_some_and(|o| o.group == m.group)
                    })
                    .collect();
                if members[0] != i {
                    continue;
                }
                run_mix(
                    &plan.scenarios,
                    &members,
                    &reach_of,
                    opts,
                    &mut display,
                    full_histograms,
                    slicing,
                )?
            }
            None => run_scenario(
                scenario,
                Connectors {
                    main: reach.connector.clone(),
                    side: scenario
                        .llm
                        .iter()
                        .flat_map(|l| &l.hops)
                        .map(|h| {
                            h.as_ref().map(|h| {
                                let r = reached.iter().find(|r| r.target == h.target);
                                r.expect("every hop's target was checked above")
                                    .connector
                                    .clone()
                            })
                        })
                        .collect(),
                },
                opts,
                &mut display,
                i,
                full_histograms,
                slicing,
            )?,
        };
        let Ran {
            records,
            slices,
            finished,
            died,
        } = ran;
        let describe = |record: &mut EndpointRecord| {
            if let Some(t) = &mut record.transport {
                t.dns_ms = reach.dns.map(|d| d.as_secs_f64() * 1000.0);
                t.insecure = scenario.target.tls && plan.tls.insecure;
                t.proxy = reach.connector.proxy().map(|p| p.name.clone());
            }
        };
        for mut record in records {
            describe(&mut record);
            endpoints.push(record);
        }
        if per_slice.len() < slices.len() {
            per_slice.resize_with(slices.len(), Vec::new);
        }
        for (k, records) in slices.into_iter().enumerate() {
            for mut record in records {
                describe(&mut record);
                per_slice[k].push(record);
            }
        }
        if !died.is_empty() {
            // The rest of the plan is not run: a broken engine measures nothing worth keeping.
            faults.extend(died);
            complete = false;
            break;
        }
        if !finished {
            complete = false;
            break;
        }
    }
    display.finish();
    let whole = RunRecord {
        version: RECORD_VERSION,
        uid: new_uid(),
        gate_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        finished_at: now_rfc3339(),
        target: plan.target.url(),
        suite: plan.suite.clone(),
        label: None,
        complete,
        faults,
        git: None,
        pr: None,
        environment: None,
        endpoints,
    };
    Ok((whole, per_slice))
}

/// A run in which a load thread died did not measure what it planned: once it has been reported
/// and saved (as incomplete), this is the error that ends the invocation with exit 3.
pub fn died(record: &RunRecord) -> Result<(), EngineError> {
    if record.faults.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Died {
            faults: record.faults.clone(),
        })
    }
}

/// A fresh run uid: 128 random bits, hex.
pub fn new_uid() -> String {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::from_os_rng();
    format!("{:032x}", rng.random::<u128>())
}

/// The members of one traffic mix at the same time, each on its own threads; the first
/// shows progress. Their records in plan order.
fn run_mix<'a>(
    scenarios: &[ScenarioPlan],
    members: &[usize],
    reach_of: &(dyn Fn(&ScenarioPlan) -> &'a Reached + Sync),
    opts: &EngineOptions,
    display: &mut progress::Display,
    full_histograms: bool,
    slicing: Option<&Slicing>,
) -> Result<Ran, EngineError> {
    let results: Vec<_> = std::thread::scope(|scope| {
        let mut display = Some(display);
        let handles: Vec<_> = members
            .iter()
            .map(|&j| {
                let s = &scenarios[j];
                let connector = reach_of(s).connector.clone();
                let mut own = display.take();
                scope.spawn(move || {
                    let mut quiet = progress::Display::new(ProgressMode::Quiet, 1);
                    let d = match own.as_mut() {
                        Some(d) => &mut **d,
                        None => &mut quiet,
                    };
                    // LLM scenarios (the only ones with other providers) are not mixed.
                    let connectors = Connectors {
                        main: connector,
                        side: Vec::new(),
                    };
                    run_scenario(s, connectors, opts, d, j, full_histograms, slicing)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|p| {
                    Ok(Ran {
                        records: Vec::new(),
                        slices: Vec::new(),
                        finished: false,
                        died: vec![panic_message(p.as_ref())],
                    })
                })
            })
            .collect()
    });
    let mut all = Ran {
        records: Vec::new(),
        slices: Vec::new(),
        finished: true,
        died: Vec::new(),
    };
    for r in results {
        let r = r?;
        all.records.extend(r.records);
        if all.slices.len() < r.slices.len() {
            all.slices.resize_with(r.slices.len(), Vec::new);
        }
        for (k, records) in r.slices.into_iter().enumerate() {
            all.slices[k].extend(records);
        }
        all.finished &= r.finished;
        all.died.extend(r.died);
    }
    Ok(all)
}

/// What one scenario (or traffic mix) measured.
struct Ran {
    /// The endpoint's records (a flow's steps, then the flow).
    records: Vec<EndpointRecord>,
    /// A sliced run: per time slice, the same records for that slice; empty otherwise.
    slices: Vec<Vec<EndpointRecord>>,
    /// Whether it ran to its end (not cancelled).
    finished: bool,
    /// What died on the way (a load thread or a virtual user that panicked), in words.
    died: Vec<String>,
}

/// Where a scenario's connections go: its target, and for a fallback chain across providers,
/// each model's own provider (None where it is the scenario's).
struct Connectors {
    main: Connector,
    side: Vec<Option<Connector>>,
}

fn run_scenario(
    scenario: &ScenarioPlan,
    connectors: Connectors,
    opts: &EngineOptions,
    display: &mut progress::Display,
    index: usize,
    full_histograms: bool,
    slicing: Option<&Slicing>,
) -> Result<Ran, EngineError> {
    let load = scenario.load;
    // Never more threads than users/connections: an idle runtime is pure overhead.
    let tasks = match load.model {
        LoadModel::Closed { users } => users as usize,
        LoadModel::Open { max_in_flight, .. } => max_in_flight as usize,
    };
    // HTTP/2 streams over `load.connections`: a thread needs at least one connection of its own.
    let tasks = match load.connections {
        Some(c) if !load.new_connection_per_request => tasks.min(c as usize),
        _ => tasks,
    };
    let Connectors {
        main: connector,
        side,
    } = connectors;
    let side: Vec<Option<(Connector, HeaderValue)>> = side
        .into_iter()
        .zip(scenario.llm.iter().flat_map(|l| &l.hops))
        .map(|(c, h)| {
            c.zip(h.as_ref()).map(|(c, h)| {
                let host = HeaderValue::from_str(&h.target.authority())
                    .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
                (c, host)
            })
        })
        .collect();
    let threads = opts.threads.for_addr(connector.addr()).min(tasks).max(1);
    let authority = HeaderValue::from_str(&scenario.target.authority())
        .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
    let slice = slicing.map(|s| s.width);
    let slices = slicing.map_or(1, |s| s.slices(load.duration));
    let make_shared = |base_vars: Vec<String>, start: Instant| {
        let measure_start = start + load.warmup;
        Arc::new(Shared {
            scenario: scenario.clone(),
            connector: connector.clone(),
            authority: authority.clone(),
            side: side.clone(),
            start,
            measure_start,
            end: measure_start + load.duration,
            slice,
            slices,
            cancel: opts.cancel.clone(),
            abort: AtomicBool::new(false),
            issued: AtomicU64::new(0),
            threads,
            fault: opts.fault,
            base_vars,
        })
    };
    // A flow's setup runs before the clock: its captures are every user's starting values.
    let base_vars = match &scenario.flow {
        Some(f) if !f.setup.is_empty() => worker::flow::run_once(
            make_shared(Vec::new(), Instant::now() + START_LEAD),
            "setup",
        )
        .map_err(|(step, message)| EngineError::Setup {
            scenario: scenario.name.clone(),
            step,
            message,
        })?,
        _ => Vec::new(),
    };
    let start = match slicing {
        Some(s) => s.start_of(index, &opts.cancel),
        None => Instant::now() + START_LEAD,
    };
    let shared = make_shared(base_vars, start);
    let (start, measure_start, end) = (shared.start, shared.measure_start, shared.end);
    let progress: Vec<Arc<Progress>> = (0..threads)
        .map(|_| Arc::new(Progress::default()))
        .collect();
    let handles = (0..threads)
        .map(|i| {
            let shared = shared.clone();
            let p = progress[i].clone();
            std::thread::Builder::new()
                .name(format!("gate-load-{i}"))
                .spawn(move || worker::run_thread(shared, i, p))
                .map_err(EngineError::Runtime)
        })
        .collect::<Result<Vec<_>, _>>()?;

    display.scenario_started(index, scenario, start, measure_start, end);
    while handles.iter().any(|h| !h.is_finished()) {
        display.tick(&progress, Instant::now());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Per slice, the endpoint's tally and its steps', merged across threads.
    let new_stats = if slice.is_some() {
        Stats::light
    } else {
        Stats::default
    };
    let mut per_slice: Vec<Tally> = (0..slices).map(|_| Tally::new(new_stats)).collect();
    let mut died = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(done)) => {
                for (mine, (total, steps)) in per_slice.iter_mut().zip(&done.slices) {
                    mine.add(total, steps);
                }
                died.extend(done.died.into_iter().map(|why| {
                    format!(
                        "a virtual user on load thread gate-load-{i} of `{}` died: {why}",
                        scenario.name
                    )
                }));
            }
            Ok(Err(e)) => return Err(EngineError::Runtime(e)),
            // Its measurements died with it; what the other threads measured is kept, but
            // the run is incomplete.
            Err(payload) => died.push(format!(
                "load thread gate-load-{i} of `{}` died: {}",
                scenario.name,
                panic_message(payload.as_ref())
            )),
        }
    }
    let cancelled = opts.cancel.load(std::sync::atomic::Ordering::Relaxed);
    let mut whole = Tally::new(Stats::default);
    for t in &per_slice {
        whole.add(&t.total, &t.steps);
    }
    let records = scenario_records(scenario, &whole, measure_start, end, full_histograms);
    display.scenario_finished(index, records.last().expect("the endpoint's own record"));
    if let Some(flow) = &scenario.flow
        && !flow.teardown.is_empty()
        && let Err((step, message)) = worker::flow::run_once(shared.clone(), "teardown")
    {
        eprintln!(
            "warning: scenario `{}`: teardown step `{step}` failed: {message}",
            scenario.name
        );
    }
    let slices = match slice {
        Some(width) => per_slice
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let from = (measure_start + width * k as u32).min(end);
                let to = (from + width).min(end);
                scenario_records(scenario, t, from, to, full_histograms)
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Ran {
        records,
        slices,
        finished: !cancelled,
        died,
    })
}

/// One scenario's tally merged across threads: the endpoint's, and each flow step's.
struct Tally {
    total: Stats,
    steps: Vec<Stats>,
    /// How a step's tally is made: [`Stats::light`] for a slice, else the default.
    new: fn() -> Stats,
}

impl Tally {
    fn new(new: fn() -> Stats) -> Tally {
        Tally {
            total: new(),
            steps: Vec::new(),
            new,
        }
    }

    fn add(&mut self, total: &Stats, steps: &[Stats]) {
        self.total.merge(total);
        if self.steps.len() < steps.len() {
            self.steps.resize_with(steps.len(), self.new);
        }
        for (mine, theirs) in self.steps.iter_mut().zip(steps) {
            mine.merge(theirs);
        }
    }
}

/// The records of what `tally` measured from `measure_start` to `end`: a flow's steps, each an
/// endpoint of its own (`flow/step`), then the endpoint's own record.
fn scenario_records(
    scenario: &ScenarioPlan,
    tally: &Tally,
    measure_start: Instant,
    end: Instant,
    full_histograms: bool,
) -> Vec<EndpointRecord> {
    // A shard's document keeps every distribution's histogram so `gate merge` adds them exactly.
    let keep_histograms = |record: &mut EndpointRecord, stats: &Stats| {
        if full_histograms {
            record.ttfb = LatencySummary::from_histogram(&stats.ttfb);
            if let (Some(rec), Some(llm)) = (&mut record.llm, &stats.llm) {
                llm.full_histograms(rec);
            }
        }
    };
    let mut records = Vec::new();
    if let Some(flow) = &scenario.flow {
        for (step, stats) in flow.steps.iter().zip(&tally.steps) {
            let mut r = endpoint_record(scenario, stats, measure_start, end);
            keep_histograms(&mut r, stats);
            r.name = format!("{}/{}", scenario.name, step.name);
            r.method = step.request.method.to_string();
            r.url = step.request.url_text.clone();
            r.scenario_hash = crate::hash::fnv1a_hex(
                format!("{}/{}/{}", scenario.hash, step.name, step.hash).as_bytes(),
            );
            r.dropped_arrivals = 0;
            r.late_starts = 0;
            records.push(r);
        }
    }
    let mut record = endpoint_record(scenario, &tally.total, measure_start, end);
    keep_histograms(&mut record, &tally.total);
    records.push(record);
    records
}

/// `load.connections` where it took effect: HTTP/2, connections kept.
fn shared_connections(s: &ScenarioPlan, stats: &Stats) -> Option<u32> {
    let h2 = stats.http_version == Some(transport::HttpVersion::Http2);
    s.load
        .connections
        .filter(|_| h2 && !s.load.new_connection_per_request)
}

/// Requests in flight per connection at most: users over shared HTTP/2 connections, else 1.
fn streams_per_connection(s: &ScenarioPlan, stats: &Stats) -> u32 {
    let users = match s.load.model {
        LoadModel::Closed { users } => users,
        LoadModel::Open { max_in_flight, .. } => max_in_flight,
    };
    match shared_connections(s, stats) {
        Some(c) => users.div_ceil(c.min(users).max(1)),
        None => 1,
    }
}

fn endpoint_record(
    s: &ScenarioPlan,
    stats: &Stats,
    measure_start: Instant,
    end: Instant,
) -> EndpointRecord {
    // Measurement time: from the end of warmup to the last response (or the planned end, when
    // nothing completed), so throughput is not inflated by stragglers or deflated by early stop.
    let last = stats.last_done.unwrap_or(end).max(measure_start);
    let elapsed_s = last.duration_since(measure_start).as_secs_f64().max(1e-9);
    let requests = stats.successes + stats.failures;
    let (model, users, rate) = match s.load.model {
        LoadModel::Closed { users } => ("closed", Some(users), None),
        LoadModel::Open { rate, .. } => ("open", None, Some(rate)),
    };
    // The window measured: the scenario's duration, or one slice of it.
    let window = end.saturating_duration_since(measure_start);
    let dropped_arrivals = match s.load.model {
        LoadModel::Open { rate, .. } => {
            let due = (window.as_secs_f64() * rate).floor() as u64;
            let due = s.load.max_requests.map_or(due, |m| due.min(m));
            due.saturating_sub(stats.sent_measured)
        }
        LoadModel::Closed { .. } => 0,
    };
    EndpointRecord {
        name: s.name.clone(),
        scenario_file: s.file.display().to_string(),
        scenario_hash: s.hash.clone(),
        method: s.request.method.to_string(),
        url: s.request.url_text.clone(),
        load: LoadRecord {
            model: model.into(),
            users,
            rate_per_s: rate,
            duration_s: window.as_secs_f64(),
            warmup_s: s.load.warmup.as_secs_f64(),
        },
        requests,
        successes: stats.successes,
        failures: stats.failures,
        elapsed_s,
        throughput_rps: stats.successes as f64 / elapsed_s,
        error_rate: if requests > 0 {
            stats.failures as f64 / requests as f64
        } else {
            0.0
        },
        latency: LatencySummary::from_histogram(&stats.latency),
        ttfb: LatencySummary::percentiles_of(&stats.ttfb),
        status_counts: stats.status_counts(),
        errors: stats.error_counts(),
        server_timing: stats.server_timing_aggs(),
        late_starts: stats.late_starts,
        dropped_arrivals,
        bytes_received: stats.bytes,
        ramp: s.ramp.as_ref().map(|r| crate::record::RampStepInfo {
            group: r.group.clone(),
            users: r.users,
        }),
        llm: s.llm.as_ref().map(|plan| match &stats.llm {
            Some(l) => l.to_record(plan, elapsed_s),
            None => llm::LlmStats::new(plan.models.len()).to_record(plan, elapsed_s),
        }),
        transport: Some(TransportRecord {
            protocol: stats
                .http_version
                .unwrap_or(transport::HttpVersion::Http1)
                .name()
                .to_string(),
            tls_version: stats.tls_version.map(str::to_string),
            insecure: false,
            connections: stats.connections,
            streams_per_connection: streams_per_connection(s, stats),
            shared_connections: shared_connections(s, stats),
            proxy: None,
            dns_ms: None,
            connect: LatencySummary::from_histogram(&stats.connect),
            tls_handshake: s
                .target
                .tls
                .then(|| LatencySummary::from_histogram(&stats.tls_handshake)),
        }),
    }
}

#[cfg(test)]
mod threads_tests {
    use super::Threads;

    #[test]
    fn auto_threads_leave_cores_to_a_target_on_loopback() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let local: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
        let local6: std::net::SocketAddr = "[::1]:80".parse().unwrap();
        let remote: std::net::SocketAddr = "192.0.2.7:443".parse().unwrap();
        assert_eq!(Threads::Auto.for_addr(local), (cores / 2).max(1));
        assert_eq!(Threads::Auto.for_addr(local6), (cores / 2).max(1));
        assert_eq!(Threads::Auto.for_addr(remote), cores);
        assert_eq!(Threads::Fixed(3).for_addr(local), 3);
        assert_eq!(Threads::Fixed(0).for_addr(remote), 1);
    }
}

#[cfg(test)]
mod sliced_tests {
    use super::*;
    use crate::config::{Overrides, Source, build_plan};
    use crate::demo::{DemoOptions, DemoServer};

    fn plan(url: &str, yaml: &str) -> Plan {
        let src = Source {
            path: "s.yml".into(),
            text: yaml.into(),
        };
        let overrides = Overrides {
            target: Some(url.into()),
            ..Overrides::default()
        };
        build_plan("t", None, &[src], &overrides, &|_| None).expect("a valid scenario")
    }

    fn opts() -> EngineOptions {
        EngineOptions {
            threads: Threads::Fixed(2),
            progress: ProgressMode::Quiet,
            cancel: Arc::default(),
            fault: None,
        }
    }

    /// Each slice holds the requests started in it: at 200/s, 60 in each 300 ms slice (a few
    /// either way at a boundary), and together exactly the whole run, flow steps included.
    #[test]
    fn slices_hold_their_own_requests_and_add_up_to_the_whole_run() {
        let server = DemoServer::start("127.0.0.1:0".parse().unwrap(), DemoOptions::default())
            .expect("the sample service starts");
        let plain = plan(
            &server.url(),
            "name: products\nrequest: { method: GET, url: /api/v1/products }\n\
             load: { rate: 200/s, duration: 1200ms, warmup: 200ms, max_in_flight: 16 }\n",
        );
        let flow = plan(
            &server.url(),
            "name: walk\nsteps:\n  - { name: list, url: /api/v1/products }\n  - { name: one, url: /api/v1/products/7 }\n\
             load: { rate: 100/s, duration: 1200ms, warmup: 200ms, max_in_flight: 16 }\n",
        );
        for (p, endpoints) in [(plain, 1), (flow, 3)] {
            let sliced = execute_sliced(&p, &opts(), &Slicing::new(Duration::from_millis(300), 1))
                .expect("the run measures");
            assert_eq!(sliced.slices.len(), 4);
            assert_eq!(sliced.whole.endpoints.len(), endpoints);
            for (i, whole) in sliced.whole.endpoints.iter().enumerate() {
                let parts: Vec<&EndpointRecord> =
                    sliced.slices.iter().map(|s| &s.endpoints[i]).collect();
                assert!(parts.iter().all(|e| e.name == whole.name));
                let sum = |f: fn(&EndpointRecord) -> u64| parts.iter().map(|e| f(e)).sum::<u64>();
                assert_eq!(sum(|e| e.requests), whole.requests, "{}", whole.name);
                assert_eq!(sum(|e| e.latency.count), whole.latency.count);
                assert_eq!(sum(|e| e.successes), whole.successes);
                let due = if endpoints == 1 { 60 } else { 30 };
                for e in &parts {
                    assert!(
                        e.requests.abs_diff(due) <= 6,
                        "{}: {} requests in a slice, {due} due",
                        e.name,
                        e.requests
                    );
                    assert!((e.load.duration_s - 0.3).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn runs_sharing_a_clock_start_each_scenario_when_all_are_ready() {
        let slicing = Slicing::new(Duration::from_secs(1), 2);
        let never = AtomicBool::new(false);
        let (first, second, ready) = std::thread::scope(|scope| {
            let early = scope.spawn(|| slicing.start_of(0, &never));
            std::thread::sleep(Duration::from_millis(300));
            let ready = Instant::now();
            let late = slicing.start_of(0, &never);
            (early.join().unwrap(), late, ready)
        });
        assert_eq!(first, second, "both sides start scenario 0 together");
        assert!(first >= ready, "the early side waited for the late one");
        // A party that waits gives up when told to stop, and starts at once.
        let stop = AtomicBool::new(true);
        let alone = slicing.start_of(1, &stop);
        assert!(alone <= Instant::now() + START_LEAD);
        // One party: no waiting.
        let solo = Slicing::new(Duration::from_secs(1), 1);
        let t = solo.start_of(0, &never);
        assert!(t <= Instant::now() + START_LEAD);
    }
}
