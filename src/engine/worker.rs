//! One OS thread of the load engine: a current-thread tokio runtime whose tasks are the
//! thread's share of users (closed model) or connections (open model). Each task owns one
//! connection (HTTP/1.1 or HTTP/2, over TCP or TLS: see `transport`; hyper's connection API, no
//! pool), so the hot path has no locks and no cross-thread traffic; the only shared writes are
//! two relaxed progress counters.

#[path = "flow.rs"]
pub(super) mod flow;

use std::cell::{Cell, RefMut};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::llm::LlmStats;
use super::tally::{ErrorClass, MAX_BODY_BYTES, Stats, Tallies};
use super::transport::{ConnectError, Connector, Pool, Sender};
use crate::config::{Body, LlmPlan, LoadModel, ScenarioPlan};
use crate::provider::sse::SseParser;
use crate::provider::{self, Decoder, Measurement, Provider, Status, StreamFailure};
use crate::record::micros;

/// A start this much after its scheduled time is "late". tokio's timer has 1 ms granularity and
/// rounds sleeps up, so lateness below this is the generator's clock, not the target.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// Faults the engine can be asked to inject (`GATE_INJECT_FAULT`), so the tests can prove that
/// a load thread dying for any reason ends as an incomplete run and exit 3, never as a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A virtual user's task panics after its first measured request.
    TaskPanic,
    /// A load thread panics after its tasks finished, before handing over its measurements.
    ThreadPanic,
}

impl Fault {
    /// Reads `GATE_INJECT_FAULT` (`task-panic` | `thread-panic`); anything else is no fault.
    pub fn from_env() -> Option<Fault> {
        match std::env::var("GATE_INJECT_FAULT").ok()?.as_str() {
            "task-panic" => Some(Fault::TaskPanic),
            "thread-panic" => Some(Fault::ThreadPanic),
            _ => None,
        }
    }
}

/// The message of a panic payload (`panic!("...")` carries a `&str` or a `String`).
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked with a non-text payload".into())
}

/// Progress counters of one thread, read by the progress display.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
}

/// What every thread of one scenario shares (read-only, or atomics).
pub struct Shared {
    pub scenario: ScenarioPlan,
    pub connector: Connector,
    pub authority: HeaderValue,
    /// A fallback chain across providers: per model, the other provider's connector and Host
    /// (None for the scenario's own).
    pub side: Vec<Option<(Connector, HeaderValue)>>,
    /// Everything is sent from this instant on; warmup ends at `measure_start`.
    pub start: Instant,
    pub measure_start: Instant,
    pub end: Instant,
    /// Sliced runs (paired mode): the tallies are cut into `slices` slices of this width.
    pub slice: Option<Duration>,
    pub slices: usize,
    pub cancel: Arc<AtomicBool>,
    /// Set when a virtual user died: the scenario stops at once, whatever its plan.
    pub abort: AtomicBool,
    /// Measured requests issued, across threads, for `load.requests`.
    pub issued: AtomicU64,
    pub threads: usize,
    pub fault: Option<Fault>,
    /// Flows: the values `setup:` captured, every virtual user's starting values.
    pub base_vars: Vec<String>,
}

impl Shared {
    fn should_stop(&self, now: Instant) -> bool {
        now >= self.end
            || self.cancel.load(Ordering::Relaxed)
            || self.abort.load(Ordering::Relaxed)
            || self
                .scenario
                .flow
                .as_ref()
                .and_then(|f| f.feeder.as_ref())
                .is_some_and(|f| f.is_exhausted())
    }

    /// Claim a measured request under `load.requests`; false once the budget is spent.
    fn claim(&self, measured: bool) -> bool {
        match self.scenario.load.max_requests {
            Some(max) if measured => self.issued.fetch_add(1, Ordering::Relaxed) < max,
            _ => true,
        }
    }
}

/// What one load thread measured, and which of its virtual users died on the way (their
/// panic messages). A death stops the scenario on every thread (`Shared::abort`).
pub struct ThreadDone {
    /// Per time slice (one unless the run is sliced): the endpoint's tally, and for flows each
    /// step's, in step order (empty otherwise).
    pub slices: Vec<(Stats, Vec<Stats>)>,
    pub died: Vec<String>,
}

/// Run this thread's share of the scenario to completion and return its measurements.
pub fn run_thread(
    shared: Arc<Shared>,
    index: usize,
    progress: Arc<Progress>,
) -> std::io::Result<ThreadDone> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let step_count = match &shared.scenario.flow {
        Some(f) if !f.single => f.steps.len(),
        _ => 0,
    };
    let tallies = Rc::new(Tallies::new(
        shared.measure_start,
        shared.slice,
        shared.slices,
        step_count,
    ));
    let pool = thread_pool(&shared, index);
    let mut died = Vec::new();
    local.block_on(&rt, async {
        let mut tasks = tokio::task::JoinSet::new();
        match shared.scenario.load.model {
            LoadModel::Closed { users } => {
                for (k, user) in share(users as usize, shared.threads, index).enumerate() {
                    let mut ctx = Ctx::new(
                        &shared,
                        &tallies,
                        &progress,
                        (index as u64) << 32 | user as u64,
                    );
                    ctx.pool = pool.clone().map(|p| (p, k));
                    tasks.spawn_local(closed_user(ctx));
                }
            }
            LoadModel::Open {
                rate,
                max_in_flight,
            } => {
                let next_slot = Rc::new(Cell::new(0u64));
                for (k, conn) in share(max_in_flight as usize, shared.threads, index).enumerate() {
                    let mut ctx = Ctx::new(
                        &shared,
                        &tallies,
                        &progress,
                        (index as u64) << 32 | conn as u64,
                    );
                    ctx.pool = pool.clone().map(|p| (p, k));
                    tasks.spawn_local(open_connection(ctx, rate, index, next_slot.clone()));
                }
            }
        }
        // In completion order, so a death is seen (and the scenario stopped) at once.
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                shared.abort.store(true, Ordering::Relaxed);
                died.push(if e.is_panic() {
                    panic_message(e.into_panic().as_ref())
                } else {
                    "its task was cancelled".into()
                });
            }
        }
    });
    // Dropping the runtime closes this thread's connections.
    drop(local);
    drop(rt);
    if shared.fault == Some(Fault::ThreadPanic) && index == 0 {
        panic!("injected fault: load thread panicked (GATE_INJECT_FAULT=thread-panic)");
    }
    let slices = Rc::try_unwrap(tallies)
        .map(Tallies::into_slices)
        .unwrap_or_default();
    Ok(ThreadDone { slices, died })
}

/// This thread's share of `load.connections` (HTTP/2 streams over shared connections), or None
/// when each user owns its connection (no `connections`, or cold connections per request).
fn thread_pool(shared: &Shared, index: usize) -> Option<Rc<Pool>> {
    let load = &shared.scenario.load;
    let n = load
        .connections
        .filter(|_| !load.new_connection_per_request)?;
    let mine = share(n as usize, shared.threads, index).count();
    Some(Rc::new(Pool::new(mine)))
}

/// The indices of `total` items that thread `index` of `threads` takes (round-robin).
fn share(total: usize, threads: usize, index: usize) -> impl Iterator<Item = usize> {
    (index..total).step_by(threads.max(1))
}

struct Ctx {
    shared: Arc<Shared>,
    /// This thread's tallies (per time slice, and per flow step).
    tallies: Rc<Tallies>,
    progress: Arc<Progress>,
    rng: SmallRng,
    conn: Option<Sender>,
    /// A fallback chain across providers: per model, the connection to its provider while
    /// another model's attempt holds `conn`.
    side_conns: Vec<Option<Sender>>,
    /// The model whose provider `conn` is connected to, while an attempt on another provider
    /// runs; None for the scenario's own target.
    via: Option<usize>,
    /// HTTP/2 connections this user shares with the thread's other users, and its index.
    pool: Option<(Rc<Pool>, usize)>,
    /// Pre-rendered parts when the scenario has no generators there.
    static_path: Option<hyper::Uri>,
    static_body: Option<Bytes>,
    buf: String,
    /// Plain requests (no flow, no LLM): HTTP/1.1 connections are [`Sender::Direct`] and
    /// requests are serialized here; a fully static request once, in `static_wire`.
    direct: bool,
    wire: Vec<u8>,
    static_wire: Option<Vec<u8>>,
    /// This virtual user panics after its first measured request (`Fault::TaskPanic`).
    doomed: bool,
    /// Flows: this user's captured values, data row and cookies (made at its first walk).
    user: Option<Box<flow::UserState>>,
}

impl Ctx {
    fn new(
        shared: &Arc<Shared>,
        tallies: &Rc<Tallies>,
        progress: &Arc<Progress>,
        seed: u64,
    ) -> Ctx {
        let req = &shared.scenario.request;
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let static_path = req
            .path
            .is_static()
            .then(|| req.path.render(&mut rng).parse().ok())
            .flatten();
        let static_body = match &req.body {
            Some(Body::Json(t)) if t.is_static() => {
                let mut s = String::new();
                t.render_into(&mut rng, &mut s);
                Some(Bytes::from(s))
            }
            Some(Body::Text(t)) if t.is_static() => Some(Bytes::from(t.render(&mut rng))),
            _ => None,
        };
        Ctx {
            shared: shared.clone(),
            tallies: tallies.clone(),
            progress: progress.clone(),
            rng,
            conn: None,
            side_conns: shared.side.iter().map(|_| None).collect(),
            via: None,
            pool: None,
            static_path,
            static_body,
            buf: String::new(),
            direct: shared.scenario.llm.is_none() && shared.scenario.flow.is_none(),
            wire: Vec::new(),
            static_wire: None,
            doomed: seed == 0 && shared.fault == Some(Fault::TaskPanic),
            user: None,
        }
    }

    fn inject_fault(&self, measured: bool) {
        if self.doomed && measured {
            panic!("injected fault: a virtual user panicked (GATE_INJECT_FAULT=task-panic)");
        }
    }

    /// This request's path (rendered where it has generators) and body.
    fn render_uri_and_body(&mut self) -> Result<(hyper::Uri, Bytes), ErrorClass> {
        let req = &self.shared.scenario.request;
        let uri = match &self.static_path {
            Some(u) => u.clone(),
            None => {
                self.buf.clear();
                req.path.render_into(&mut self.rng, &mut self.buf);
                self.buf
                    .parse::<hyper::Uri>()
                    .map_err(|_| ErrorClass::Other)?
            }
        };
        let body = match (&self.static_body, &req.body) {
            (Some(b), _) => b.clone(),
            (None, Some(Body::Json(t))) => {
                let mut s = String::with_capacity(128);
                t.render_into(&mut self.rng, &mut s);
                Bytes::from(s)
            }
            (None, Some(Body::Text(t))) => Bytes::from(t.render(&mut self.rng)),
            (None, None) => Bytes::new(),
        };
        Ok((uri, body))
    }

    fn build_request(&mut self) -> Result<hyper::Request<Full<Bytes>>, ErrorClass> {
        let (uri, body) = self.render_uri_and_body()?;
        let req = &self.shared.scenario.request;
        let mut builder = hyper::Request::builder()
            .method(req.method.clone())
            .uri(uri)
            .header(HOST, self.shared.authority.clone());
        if matches!(req.body, Some(Body::Json(_)))
            && !req.headers.iter().any(|h| h.name == CONTENT_TYPE)
        {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for h in &req.headers {
            let value = h.value.render(&mut self.rng);
            let value = HeaderValue::from_str(&value).map_err(|_| ErrorClass::Other)?;
            builder = builder.header(h.name.clone(), value);
        }
        builder.body(Full::new(body)).map_err(|_| ErrorClass::Other)
    }

    async fn connect(&mut self) -> Result<(), ErrorClass> {
        let side = self
            .via
            .and_then(|t| self.shared.side.get(t))
            .and_then(Option::as_ref);
        let connected = match (&self.pool, side) {
            (_, Some((c, _))) => c.connect(false).await.map(|(s, h)| (s, Some(h))),
            (Some((pool, user)), None) => {
                pool.get(*user, &self.shared.connector, self.direct).await
            }
            (None, None) => self
                .shared
                .connector
                .connect(self.direct)
                .await
                .map(|(s, h)| (s, Some(h))),
        };
        let (sender, handshake) = connected.map_err(|e| match e {
            ConnectError::Tcp(e) if e.kind() == std::io::ErrorKind::TimedOut => ErrorClass::Timeout,
            ConnectError::Tcp(_) => ErrorClass::Connect,
            ConnectError::Tls(_) => ErrorClass::Tls,
            ConnectError::Http(_) => ErrorClass::Protocol,
        })?;
        if let Some(handshake) = handshake {
            self.tallies
                .at(Instant::now())
                .record_connection(&handshake);
        }
        self.conn = Some(sender);
        Ok(())
    }

    /// Make sure there is an open connection before the clock starts, where possible.
    /// With `new_connection_per_request`, called once per request, it always opens a new one.
    async fn ensure_connected(&mut self) -> Result<(), ErrorClass> {
        if self.shared.scenario.load.new_connection_per_request {
            self.conn = None;
        }
        if let Some(c) = &mut self.conn {
            if c.ready().await {
                return Ok(());
            }
            self.conn = None;
        }
        self.connect().await
    }

    /// One exchange, timed from `from` (the intended start) to the last body byte.
    async fn exchange(&mut self, from: Instant, measured: bool) {
        if self.shared.scenario.llm.is_some() {
            return self.llm_exchange(from, measured).await;
        }
        if self.shared.scenario.flow.is_some() {
            return self.flow_exchange(from, measured).await;
        }
        let timeout = self.shared.scenario.request.timeout;
        let deadline = tokio::time::Instant::from_std(from + timeout);
        let result = tokio::time::timeout_at(deadline, self.exchange_inner(from)).await;
        let done = Instant::now();
        let outcome = match result {
            Ok(r) => r,
            Err(_) => {
                // The response may still arrive on this connection: it cannot be reused.
                self.conn = None;
                Err(ErrorClass::Timeout)
            }
        };
        if !measured {
            return;
        }
        let (answer, server_timing) = match outcome {
            Ok(ex) if self.shared.scenario.expect.accepts(ex.status) => (
                Answer {
                    status: Some(ex.status),
                    bytes: ex.bytes,
                    result: Ok(ex.headers_at),
                },
                ex.server_timing,
            ),
            Ok(ex) => (
                Answer {
                    status: Some(ex.status),
                    bytes: ex.bytes,
                    result: Err(match ex.status {
                        400..=499 => ErrorClass::Http4xx,
                        500..=599 => ErrorClass::Http5xx,
                        _ => ErrorClass::Expectation,
                    }),
                },
                None,
            ),
            Err(class) => (Answer::failed(class), None),
        };
        let mut stats = self.tally(from, done, answer);
        if let Some(st) = server_timing {
            stats.add_server_timing(&st);
        }
    }

    async fn exchange_inner(&mut self, _from: Instant) -> Result<Exchange, ErrorClass> {
        self.ensure_connected().await?;
        if matches!(self.conn, Some(Sender::Direct(_))) {
            return self.exchange_direct().await;
        }
        let request = self.build_request()?;
        let sender = self.conn.as_mut().ok_or(ErrorClass::Connect)?;
        let Some(sent) = sender.send_request(request) else {
            return Err(ErrorClass::Other);
        };
        let response = match sent.await {
            Ok(r) => r,
            Err(e) => {
                let class = classify(&e);
                let class = sender.refine(class, class == ErrorClass::Reset).await;
                // HTTP/2: a reset stream leaves its connection up.
                if class != ErrorClass::ResetStream {
                    self.conn = None;
                }
                return Err(class);
            }
        };
        let head = Head::of(&response);
        let mut body = response.into_body();
        let bytes = match drain_body(&mut body, None).await {
            Ok(n) => n,
            Err(class) => {
                self.conn = None;
                return Err(class);
            }
        };
        if head.closes {
            self.conn = None;
        }
        let Head {
            status,
            headers_at,
            server_timing,
            ..
        } = head;
        Ok(Exchange {
            status,
            headers_at,
            server_timing,
            bytes,
        })
    }
}

impl Ctx {
    /// Serialize this user's next request into `wire` (or reuse the static one): the same
    /// request `build_request` makes, in HTTP/1.1 origin form.
    fn encode_direct(&mut self) -> Result<(), ErrorClass> {
        let shared = self.shared.clone();
        let req = &shared.scenario.request;
        let all_static = self.static_path.is_some()
            && (req.body.is_none() || self.static_body.is_some())
            && req.headers.iter().all(|h| h.value.is_static());
        if all_static && self.static_wire.is_some() {
            return Ok(());
        }
        let (uri, body) = self.render_uri_and_body()?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let json = HeaderValue::from_static("application/json");
        let content_type = (matches!(req.body, Some(Body::Json(_)))
            && !req.headers.iter().any(|h| h.name == CONTENT_TYPE))
        .then_some((&CONTENT_TYPE, &json));
        let mut values = Vec::with_capacity(req.headers.len());
        for h in &req.headers {
            let value = h.value.render(&mut self.rng);
            values.push(HeaderValue::from_str(&value).map_err(|_| ErrorClass::Other)?);
        }
        let headers = content_type
            .into_iter()
            .chain(req.headers.iter().map(|h| &h.name).zip(values.iter()));
        let mut wire = std::mem::take(&mut self.wire);
        super::h1::encode_request(
            &mut wire,
            &req.method,
            path,
            &shared.authority,
            headers,
            &body,
        );
        if all_static {
            self.static_wire = Some(wire);
        } else {
            self.wire = wire;
        }
        Ok(())
    }

    /// One exchange on a [`Sender::Direct`] connection.
    async fn exchange_direct(&mut self) -> Result<Exchange, ErrorClass> {
        self.encode_direct()?;
        let head_request = self.shared.scenario.request.method == hyper::Method::HEAD;
        let Some(Sender::Direct(conn)) = self.conn.as_mut() else {
            return Err(ErrorClass::Connect);
        };
        let wire = self.static_wire.as_deref().unwrap_or(&self.wire);
        match conn.exchange(wire, head_request, MAX_BODY_BYTES).await {
            Ok(r) => {
                if r.closes {
                    self.conn = None;
                }
                Ok(Exchange {
                    status: r.status,
                    headers_at: r.headers_at,
                    server_timing: r.server_timing,
                    bytes: r.bytes,
                })
            }
            Err(failure) => {
                self.conn = None;
                Err(failure.into())
            }
        }
    }
}

/// What every exchange reads from a response's head, the moment it arrived.
pub(super) struct Head {
    pub status: u16,
    pub headers_at: Instant,
    /// All `Server-Timing` lines as one comma-separated list (RFC 9110 §5.3).
    pub server_timing: Option<String>,
    /// `Connection: close`: the connection is not reused.
    pub closes: bool,
}

impl Head {
    pub fn of<B>(response: &hyper::Response<B>) -> Head {
        let headers_at = Instant::now();
        let mut values = response.headers().get_all("server-timing").iter();
        let server_timing = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(one), None) => one.to_str().ok().map(str::to_string),
            (Some(first), Some(second)) => {
                let mut s = first.to_str().unwrap_or("").to_string();
                for v in std::iter::once(second).chain(values) {
                    s.push(',');
                    s.push_str(v.to_str().unwrap_or(""));
                }
                Some(s)
            }
        };
        Head {
            status: response.status().as_u16(),
            headers_at,
            server_timing,
            closes: response
                .headers()
                .get(hyper::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close")),
        }
    }
}

/// Read a body to its end, counting its bytes and keeping them in `keep` when given; past
/// [`MAX_BODY_BYTES`] it stops with `BodyTooLarge`. On an error the connection is not reusable.
pub(super) async fn drain_body(
    body: &mut hyper::body::Incoming,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<u64, ErrorClass> {
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    bytes += d.len() as u64;
                    if bytes > MAX_BODY_BYTES {
                        return Err(ErrorClass::BodyTooLarge);
                    }
                    if let Some(k) = keep.as_deref_mut() {
                        k.extend_from_slice(d);
                    }
                }
            }
            Err(e) => {
                return Err(match classify(&e) {
                    ErrorClass::Other => ErrorClass::Body,
                    c => c,
                });
            }
        }
    }
    Ok(bytes)
}

/// What one measured request adds to the tally, HTTP or LLM alike.
struct Answer {
    /// The response's status, when one came.
    status: Option<u16>,
    /// Body bytes counted for throughput.
    bytes: u64,
    /// When the response headers arrived, for a success; how it failed otherwise.
    result: Result<Instant, ErrorClass>,
}

impl Answer {
    fn failed(class: ErrorClass) -> Answer {
        Answer {
            status: None,
            bytes: 0,
            result: Err(class),
        }
    }
}

impl Ctx {
    /// Count one measured request, timed from `from` (its intended start) to `done` (its last
    /// byte), and hand back the tally for what only this kind of request adds.
    fn tally(&self, from: Instant, done: Instant, answer: Answer) -> RefMut<'_, Stats> {
        let mut stats = self.tallies.at(from);
        tally_into(&mut stats, &self.progress, from, done, answer);
        stats
    }
}

/// Count one measured request into `stats`, timed from `from` to `done`.
fn tally_into(
    stats: &mut Stats,
    progress: &Progress,
    from: Instant,
    done: Instant,
    answer: Answer,
) {
    progress.done.fetch_add(1, Ordering::Relaxed);
    stats.sent_measured += 1;
    stats.last_done = Some(done);
    if let Some(status) = answer.status {
        stats.record_status(status);
    }
    stats.bytes += answer.bytes;
    match answer.result {
        Ok(headers_at) => {
            stats.record_success(micros(done - from), micros(headers_at - from));
        }
        Err(class) => {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            stats.record_error(class);
        }
    }
}

/// How one attempt at an LLM request failed.
struct LlmFailure {
    class: ErrorClass,
    status: Option<u16>,
    retry_after: Option<f64>,
}

impl LlmFailure {
    fn of(class: ErrorClass) -> LlmFailure {
        LlmFailure {
            class,
            status: None,
            retry_after: None,
        }
    }

    /// A fallback chain moves on after these (issue 7: 429, 529, timeouts).
    fn fails_over(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::RateLimited
                | ErrorClass::Overloaded
                | ErrorClass::Timeout
                | ErrorClass::TimeoutConnect
                | ErrorClass::TimeoutFirstToken
                | ErrorClass::TimeoutBetweenTokens
        )
    }
}

/// The error class of a status other than 200, as the provider means it.
fn refused(status: Status) -> ErrorClass {
    match status {
        Status::RateLimited => ErrorClass::RateLimited,
        Status::Overloaded => ErrorClass::Overloaded,
        Status::ServerError => ErrorClass::Http5xx,
        Status::ClientError => ErrorClass::Http4xx,
        Status::Unexpected => ErrorClass::Expectation,
    }
}

/// An attempt that the model answered in full.
struct Served {
    measurement: Measurement,
    headers_at: Instant,
    bytes: u64,
}

/// A 200 body, read to its end.
struct Read {
    decoded: Result<Measurement, StreamFailure>,
    bytes: u64,
}

/// The clocks of one attempt.
#[derive(Clone, Copy)]
struct Deadlines {
    /// The request's intended start; content arrival is measured from here.
    from: Instant,
    /// `timeouts.first_token` after the attempt's start, or the total if that comes first.
    first: Instant,
    /// The request's total timeout.
    total: Instant,
    between_tokens: Duration,
}

impl Deadlines {
    /// The class of a timeout at `deadline`, reached while waiting for the first token or a
    /// later one.
    fn timed_out(&self, deadline: Instant, waiting_first: bool) -> ErrorClass {
        if deadline == self.total {
            ErrorClass::Timeout
        } else if waiting_first {
            ErrorClass::TimeoutFirstToken
        } else {
            ErrorClass::TimeoutBetweenTokens
        }
    }

    /// When the next content delta is due, the last having come `last` after `from`.
    fn next_content(&self, last: Option<Duration>) -> Instant {
        match last {
            None => self.first,
            Some(at) => (self.from + at + self.between_tokens).min(self.total),
        }
    }
}

impl Ctx {
    /// One LLM request: each model of the chain in turn (one model unless `fallback:`), timed
    /// from `from` to the last byte of the attempt that succeeded.
    async fn llm_exchange(&mut self, from: Instant, measured: bool) {
        let shared = self.shared.clone();
        let llm = shared.scenario.llm.as_ref().expect("llm scenario");
        let total = from + shared.scenario.request.timeout;
        let prompts = llm.bodies.first().map_or(1, Vec::len).max(1);
        let prompt = self.rng.random_range(0..prompts);
        let mut outcome = Err(LlmFailure::of(ErrorClass::Other));
        let mut failed_over = Vec::new();
        let mut tier = 0;
        let mut served_from = from;
        for t in 0..llm.models.len() {
            tier = t;
            served_from = if t == 0 { from } else { Instant::now() };
            let at = Deadlines {
                from,
                first: (served_from + llm.timeouts.first_token).min(total),
                total,
                between_tokens: llm.timeouts.between_tokens,
            };
            outcome = self.llm_attempt_on(t, prompt, at).await;
            match &outcome {
                Err(f) if llm.fallback && f.fails_over() && t + 1 < llm.models.len() => {
                    failed_over.push(t);
                }
                _ => break,
            }
        }
        let done = Instant::now();
        if !measured {
            return;
        }
        let answer = match &outcome {
            Ok(s) => Answer {
                status: Some(200),
                bytes: s.bytes,
                result: Ok(s.headers_at),
            },
            Err(f) => Answer {
                status: f.status,
                ..Answer::failed(f.class)
            },
        };
        let mut stats = self.tally(from, done, answer);
        let l = stats
            .llm
            .get_or_insert_with(|| Box::new(LlmStats::new(llm.models.len())));
        for t in failed_over {
            if let Some(tier) = l.tiers.get_mut(t) {
                tier.failed_over += 1;
            }
        }
        match outcome {
            Ok(s) => {
                let price = llm.prices.get(tier).and_then(Option::as_ref);
                let lost = served_from.saturating_duration_since(from);
                l.record_success(&s.measurement, done - from, tier, lost, price);
            }
            Err(f) => {
                if let Some(secs) = f.retry_after {
                    l.record_retry_after(secs);
                }
            }
        }
    }

    /// One attempt on model `tier`, over the connection to that model's provider: for another
    /// provider of a fallback chain, its own connection stands in `conn` for the attempt.
    async fn llm_attempt_on(
        &mut self,
        tier: usize,
        prompt: usize,
        at: Deadlines,
    ) -> Result<Served, LlmFailure> {
        if !self.shared.side.get(tier).is_some_and(Option::is_some) {
            return self.llm_attempt(tier, prompt, at).await;
        }
        std::mem::swap(&mut self.conn, &mut self.side_conns[tier]);
        self.via = Some(tier);
        let served = self.llm_attempt(tier, prompt, at).await;
        self.via = None;
        std::mem::swap(&mut self.conn, &mut self.side_conns[tier]);
        served
    }

    /// One attempt on model `tier`. Deadlines: `timeouts.connect` for the connection,
    /// `timeouts.first_token` from the attempt's start to the first content delta,
    /// `timeouts.between_tokens` after each content delta, and the request's total timeout.
    async fn llm_attempt(
        &mut self,
        tier: usize,
        prompt: usize,
        at: Deadlines,
    ) -> Result<Served, LlmFailure> {
        let shared = self.shared.clone();
        let llm = shared.scenario.llm.as_ref().expect("llm scenario");
        let provider = llm
            .hops
            .get(tier)
            .and_then(Option::as_ref)
            .map_or(llm.provider, |h| h.provider);
        self.llm_connect(llm.timeouts.connect, at.total).await?;
        let request = self.llm_request(llm, tier, prompt)?;
        let sender = self
            .conn
            .as_mut()
            .ok_or(LlmFailure::of(ErrorClass::Connect))?;
        let Some(sent) = sender.send_request(request) else {
            return Err(LlmFailure::of(ErrorClass::Other));
        };
        let response = match tokio::time::timeout_at(at.first.into(), sent).await {
            Err(_) => {
                self.conn = None;
                return Err(LlmFailure::of(at.timed_out(at.first, true)));
            }
            Ok(Err(e)) => {
                let class = classify(&e);
                let class = sender.refine(class, class == ErrorClass::Reset).await;
                self.conn = None;
                return Err(LlmFailure::of(class));
            }
            Ok(Ok(r)) => r,
        };
        let headers_at = Instant::now();
        let status = response.status().as_u16();
        if headers_at >= shared.measure_start {
            let limits = provider::RateLimits::read(response.headers());
            if !limits.is_empty() {
                let mut stats = self.tallies.at(headers_at);
                let l = stats
                    .llm
                    .get_or_insert_with(|| Box::new(LlmStats::new(llm.models.len())));
                l.record_rate_limits(&limits);
            }
        }
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if status != 200 {
            return Err(self.llm_refused(provider, response, closes, at).await);
        }
        let fail = |class: ErrorClass| LlmFailure {
            class,
            status: Some(status),
            retry_after: None,
        };
        let body = response.into_body();
        let read = if llm.stream {
            self.llm_stream(provider, body, at).await
        } else {
            self.llm_whole(provider, body, at).await
        };
        let Read { decoded, bytes } = read.map_err(fail)?;
        if closes {
            self.conn = None;
        }
        match decoded {
            Ok(measurement) => Ok(Served {
                measurement,
                headers_at,
                bytes,
            }),
            Err(StreamFailure::ErrorEvent(_)) => Err(fail(ErrorClass::StreamError)),
            Err(StreamFailure::Truncated) => Err(fail(ErrorClass::Truncated)),
        }
    }

    /// An open connection within `timeouts.connect`, or within the total timeout if that
    /// comes first.
    async fn llm_connect(&mut self, connect: Duration, total: Instant) -> Result<(), LlmFailure> {
        let deadline = (Instant::now() + connect).min(total);
        match tokio::time::timeout_at(deadline.into(), self.ensure_connected()).await {
            Err(_) => {
                self.conn = None;
                Err(LlmFailure::of(if deadline == total {
                    ErrorClass::Timeout
                } else {
                    ErrorClass::TimeoutConnect
                }))
            }
            Ok(r) => r.map_err(LlmFailure::of),
        }
    }

    /// The request to model `tier` with prompt `prompt`: a body and headers the plan rendered.
    fn llm_request(
        &self,
        llm: &LlmPlan,
        tier: usize,
        prompt: usize,
    ) -> Result<hyper::Request<Full<Bytes>>, LlmFailure> {
        let body = llm
            .bodies
            .get(tier)
            .and_then(|b| b.get(prompt))
            .cloned()
            .unwrap_or_default();
        let hop = llm.hops.get(tier).and_then(Option::as_ref);
        let side = self.shared.side.get(tier).and_then(Option::as_ref);
        let (uri, host, headers) = match (hop, side) {
            (Some(h), Some((_, host))) => (h.path.clone(), host.clone(), &h.headers),
            _ => (
                self.static_path
                    .clone()
                    .ok_or(LlmFailure::of(ErrorClass::Other))?,
                self.shared.authority.clone(),
                &llm.headers,
            ),
        };
        let mut builder = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(uri)
            .header(HOST, host);
        for (name, value) in headers {
            builder = builder.header(name.clone(), value.clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|_| LlmFailure::of(ErrorClass::Other))
    }

    /// A status other than 200: what the provider means by it, and the pause a rate limit
    /// asks for. The error body is read (it is small) so the connection can be reused.
    async fn llm_refused(
        &mut self,
        provider: Provider,
        response: hyper::Response<Incoming>,
        closes: bool,
        at: Deadlines,
    ) -> LlmFailure {
        let status = response.status().as_u16();
        let meaning = provider.protocol().status(status);
        let header = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok());
        let retry_after = provider::retry_after(meaning, header);
        // One that is not small (past 1 MiB) costs the connection, not gate's memory.
        let body = http_body_util::Limited::new(response.into_body(), 1 << 20);
        let drained = tokio::time::timeout_at(at.total.into(), body.collect()).await;
        if closes || !matches!(drained, Ok(Ok(_))) {
            self.conn = None;
        }
        LlmFailure {
            class: refused(meaning),
            status: Some(status),
            retry_after,
        }
    }

    /// A 200 event stream, decoded as it arrives: every event completed by a frame arrived
    /// with that frame.
    async fn llm_stream(
        &mut self,
        provider: Provider,
        mut body: Incoming,
        at: Deadlines,
    ) -> Result<Read, ErrorClass> {
        let mut parser = SseParser::new();
        let mut decoder = Decoder::new(provider.protocol());
        let mut events = Vec::new();
        let mut bytes = 0u64;
        loop {
            let deadline = at.next_content(decoder.last_content());
            match tokio::time::timeout_at(deadline.into(), body.frame()).await {
                Err(_) => {
                    self.conn = None;
                    return Err(at.timed_out(deadline, decoder.ttft().is_none()));
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    // The connection broke mid-stream: whatever came, the stream is cut.
                    self.conn = None;
                    if decoder.finished() {
                        break;
                    }
                    return Err(ErrorClass::Truncated);
                }
                Ok(Some(Ok(frame))) => {
                    if let Some(d) = frame.data_ref() {
                        let arrived = Instant::now() - at.from;
                        bytes += d.len() as u64;
                        parser.feed(d, &mut events);
                        if parser.overflowed() || bytes > MAX_BODY_BYTES {
                            self.conn = None;
                            return Err(if parser.overflowed() {
                                ErrorClass::EventTooLarge
                            } else {
                                ErrorClass::BodyTooLarge
                            });
                        }
                        for ev in events.drain(..) {
                            decoder.on_event(&ev, arrived);
                        }
                    }
                }
            }
        }
        Ok(Read {
            decoded: decoder.finish(),
            bytes,
        })
    }

    /// A `stream: false` 200 body, read whole.
    async fn llm_whole(
        &mut self,
        provider: Provider,
        body: Incoming,
        at: Deadlines,
    ) -> Result<Read, ErrorClass> {
        let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES as usize);
        match tokio::time::timeout_at(at.total.into(), limited.collect()).await {
            Err(_) => {
                self.conn = None;
                Err(ErrorClass::Timeout)
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(if e.is::<http_body_util::LengthLimitError>() {
                    ErrorClass::BodyTooLarge
                } else {
                    ErrorClass::Truncated
                })
            }
            Ok(Ok(all)) => {
                let all = all.to_bytes();
                Ok(Read {
                    bytes: all.len() as u64,
                    decoded: provider::decode_json(provider.protocol(), &all),
                })
            }
        }
    }
}

struct Exchange {
    status: u16,
    headers_at: Instant,
    server_timing: Option<String>,
    bytes: u64,
}

fn classify(e: &hyper::Error) -> ErrorClass {
    if e.is_timeout() {
        return ErrorClass::Timeout;
    }
    // What the server sent was not a valid HTTP/1.1 response head.
    if e.is_parse_too_large() {
        return ErrorClass::HeaderTooLarge;
    }
    if e.is_parse() || e.is_parse_status() {
        return ErrorClass::Protocol;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(failure) = super::transport::h2_failure(s) {
            return failure.into();
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return ErrorClass::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                return ErrorClass::Tls;
            }
            use std::io::ErrorKind::*;
            return match io.kind() {
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    ErrorClass::Reset
                }
                TimedOut => ErrorClass::Timeout,
                ConnectionRefused => ErrorClass::Connect,
                // hyper's body decoder: an invalid chunk size line, a bad chunk end.
                InvalidData | InvalidInput => ErrorClass::Protocol,
                _ => ErrorClass::Other,
            };
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        ErrorClass::Reset
    } else {
        ErrorClass::Other
    }
}

/// Closed model: send, wait for the whole response, repeat. Latency from the send.
async fn closed_user(mut ctx: Ctx) {
    let start = ctx.shared.start;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let now = Instant::now();
        if ctx.shared.should_stop(now) {
            break;
        }
        let measured = now >= ctx.shared.measure_start;
        if !ctx.shared.claim(measured) {
            break;
        }
        ctx.exchange(now, measured).await;
        ctx.inject_fault(measured);
        // A connection error with nothing else to wait for would spin; pace the retries.
        if ctx.conn.is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Open model: this connection takes the thread's next arrival slot whenever it is free.
/// Slots are fixed in time (`start + k/rate`), so a slow target makes later requests start late
/// and their latency is counted from the schedule: no coordinated omission.
async fn open_connection(mut ctx: Ctx, rate: f64, thread: usize, next_slot: Rc<Cell<u64>>) {
    let threads = ctx.shared.threads as u64;
    let interval = 1.0 / rate;
    loop {
        let k = next_slot.get();
        next_slot.set(k + 1);
        // Threads interleave: thread i owns global arrivals i, i+T, i+2T, ...
        let global = k * threads + thread as u64;
        let intended = ctx.shared.start + Duration::from_secs_f64(global as f64 * interval);
        if ctx.shared.should_stop(intended) || ctx.shared.should_stop(Instant::now()) {
            break;
        }
        let measured = intended >= ctx.shared.measure_start;
        if !ctx.shared.claim(measured) {
            break;
        }
        // Connect ahead of the slot where we can; a reconnect after it is charged to the request.
        // Cold connections (`new_connection_per_request`) are measured, so never ahead.
        if ctx.conn.is_none() && !ctx.shared.scenario.load.new_connection_per_request {
            let _ = ctx.ensure_connected().await;
        }
        tokio::time::sleep_until(intended.into()).await;
        let actual = Instant::now();
        let late = actual.saturating_duration_since(intended);
        let from = if late > LATE_AFTER {
            if measured {
                ctx.tallies.at(intended).late_starts += 1;
            }
            intended
        } else {
            actual
        };
        ctx.exchange(from, measured).await;
        ctx.inject_fault(measured);
    }
}
