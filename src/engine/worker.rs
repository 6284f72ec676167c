//! One OS thread of the load engine: a current-thread tokio runtime whose tasks are the
//! thread's share of users (closed model) or connections (open model). Each task owns one
//! connection (HTTP/1.1 or HTTP/2, over TCP or TLS: see `transport`; hyper's connection API, no
//! pool), so the hot path has no locks and no cross-thread traffic; the only shared writes are
//! two relaxed progress counters.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Fault;
use super::llm::{Decoder, LlmStats, Measurement, StreamFailure};
use super::sse::SseParser;
use super::stats::{ErrorClass, MAX_BODY_BYTES, Stats, micros};
use super::transport::{ConnectError, Connector, Sender};
use crate::config::{Body, LoadModel, ScenarioPlan};

/// A start this much after its scheduled time is "late". tokio's timer has 1 ms granularity and
/// rounds sleeps up, so lateness below this is the generator's clock, not the target.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

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
    /// Everything is sent from this instant on; warmup ends at `measure_start`.
    pub start: Instant,
    pub measure_start: Instant,
    pub end: Instant,
    pub cancel: Arc<AtomicBool>,
    /// Set when a virtual user died: the scenario stops at once, whatever its plan.
    pub abort: AtomicBool,
    /// Measured requests issued, across threads, for `load.requests`.
    pub issued: AtomicU64,
    pub threads: usize,
    pub fault: Option<Fault>,
}

impl Shared {
    fn should_stop(&self, now: Instant) -> bool {
        now >= self.end || self.cancel.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
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
    pub stats: Stats,
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
    let stats = Rc::new(RefCell::new(Stats::default()));
    let mut died = Vec::new();
    local.block_on(&rt, async {
        let mut tasks = tokio::task::JoinSet::new();
        match shared.scenario.load.model {
            LoadModel::Closed { users } => {
                for user in share(users as usize, shared.threads, index) {
                    let ctx = Ctx::new(
                        &shared,
                        &stats,
                        &progress,
                        (index as u64) << 32 | user as u64,
                    );
                    tasks.spawn_local(closed_user(ctx));
                }
            }
            LoadModel::Open {
                rate,
                max_in_flight,
            } => {
                let next_slot = Rc::new(Cell::new(0u64));
                for conn in share(max_in_flight as usize, shared.threads, index) {
                    let ctx = Ctx::new(
                        &shared,
                        &stats,
                        &progress,
                        (index as u64) << 32 | conn as u64,
                    );
                    tasks.spawn_local(open_connection(ctx, rate, index, next_slot.clone()));
                }
            }
        }
        // In completion order, so a death is seen (and the scenario stopped) at once.
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                shared.abort.store(true, Ordering::Relaxed);
                died.push(if e.is_panic() {
                    super::panic_message(e.into_panic().as_ref())
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
    let stats = Rc::try_unwrap(stats)
        .map(RefCell::into_inner)
        .unwrap_or_default();
    Ok(ThreadDone { stats, died })
}

/// The indices of `total` items that thread `index` of `threads` takes (round-robin).
fn share(total: usize, threads: usize, index: usize) -> impl Iterator<Item = usize> {
    (index..total).step_by(threads.max(1))
}

struct Ctx {
    shared: Arc<Shared>,
    stats: Rc<RefCell<Stats>>,
    progress: Arc<Progress>,
    rng: SmallRng,
    conn: Option<Sender>,
    /// Pre-rendered parts when the scenario has no generators there.
    static_path: Option<hyper::Uri>,
    static_body: Option<Bytes>,
    buf: String,
    /// This virtual user panics after its first measured request (`Fault::TaskPanic`).
    doomed: bool,
}

impl Ctx {
    fn new(
        shared: &Arc<Shared>,
        stats: &Rc<RefCell<Stats>>,
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
            stats: stats.clone(),
            progress: progress.clone(),
            rng,
            conn: None,
            static_path,
            static_body,
            buf: String::new(),
            doomed: seed == 0 && shared.fault == Some(Fault::TaskPanic),
        }
    }

    fn inject_fault(&self, measured: bool) {
        if self.doomed && measured {
            panic!("injected fault: a virtual user panicked (GATE_INJECT_FAULT=task-panic)");
        }
    }

    fn build_request(&mut self) -> Result<hyper::Request<Full<Bytes>>, ErrorClass> {
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
        let (sender, handshake) = self.shared.connector.connect().await.map_err(|e| match e {
            ConnectError::Tcp(e) if e.kind() == std::io::ErrorKind::TimedOut => ErrorClass::Timeout,
            ConnectError::Tcp(_) => ErrorClass::Connect,
            ConnectError::Tls(_) => ErrorClass::Tls,
            ConnectError::Http(_) => ErrorClass::Protocol,
        })?;
        self.stats.borrow_mut().record_connection(&handshake);
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
            if c.ready().await.is_ok() {
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
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        let mut stats = self.stats.borrow_mut();
        stats.sent_measured += 1;
        stats.last_done = Some(done);
        match outcome {
            Ok(ex) => {
                stats.record_status(ex.status);
                stats.bytes += ex.bytes;
                if self.shared.scenario.expect.accepts(ex.status) {
                    stats.record_success(micros(done - from), micros(ex.headers_at - from));
                    if let Some(st) = ex.server_timing {
                        stats.add_server_timing(&st);
                    }
                } else {
                    self.progress.failed.fetch_add(1, Ordering::Relaxed);
                    stats.record_error(match ex.status {
                        400..=499 => ErrorClass::Http4xx,
                        500..=599 => ErrorClass::Http5xx,
                        _ => ErrorClass::Expectation,
                    });
                }
            }
            Err(class) => {
                self.progress.failed.fetch_add(1, Ordering::Relaxed);
                stats.record_error(class);
            }
        }
    }

    async fn exchange_inner(&mut self, _from: Instant) -> Result<Exchange, ErrorClass> {
        let request = self.build_request()?;
        self.ensure_connected().await?;
        let sender = self.conn.as_mut().ok_or(ErrorClass::Connect)?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(classify(&e));
            }
        };
        let headers_at = Instant::now();
        let status = response.status().as_u16();
        let server_timing = {
            let mut values = response.headers().get_all("server-timing").iter();
            match (values.next(), values.next()) {
                (None, _) => None,
                (Some(one), None) => one.to_str().ok().map(str::to_string),
                (Some(first), Some(second)) => {
                    // Several header lines are one comma-separated list (RFC 9110 §5.3).
                    let mut s = first.to_str().unwrap_or("").to_string();
                    for v in std::iter::once(second).chain(values) {
                        s.push(',');
                        s.push_str(v.to_str().unwrap_or(""));
                    }
                    Some(s)
                }
            }
        };
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let mut body = response.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        bytes += d.len() as u64;
                        if bytes > MAX_BODY_BYTES {
                            self.conn = None;
                            return Err(ErrorClass::BodyTooLarge);
                        }
                    }
                }
                Err(e) => {
                    self.conn = None;
                    return Err(match classify(&e) {
                        ErrorClass::Other => ErrorClass::Body,
                        c => c,
                    });
                }
            }
        }
        if closes {
            self.conn = None;
        }
        Ok(Exchange {
            status,
            headers_at,
            server_timing,
            bytes,
        })
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

impl Ctx {
    /// One LLM request: each model of the chain in turn (one model unless `fallback:`), timed
    /// from `from` to the last byte of the attempt that succeeded.
    async fn llm_exchange(&mut self, from: Instant, measured: bool) {
        let shared = self.shared.clone();
        let llm = shared.scenario.llm.as_ref().expect("llm scenario");
        let total_deadline = from + shared.scenario.request.timeout;
        let prompts = llm.bodies.first().map_or(1, Vec::len).max(1);
        let prompt = self.rng.random_range(0..prompts);
        let mut outcome = Err(LlmFailure::of(ErrorClass::Other));
        let mut failed_over = Vec::new();
        let mut served_at_start = from;
        for tier in 0..llm.models.len() {
            let attempt_start = if tier == 0 { from } else { Instant::now() };
            served_at_start = attempt_start;
            outcome = self
                .llm_attempt(tier, prompt, from, attempt_start, total_deadline)
                .await;
            match &outcome {
                Err(f) if llm.fallback && f.fails_over() && tier + 1 < llm.models.len() => {
                    failed_over.push(tier);
                }
                _ => break,
            }
        }
        let done = Instant::now();
        if !measured {
            return;
        }
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        let mut stats = self.stats.borrow_mut();
        stats.sent_measured += 1;
        stats.last_done = Some(done);
        let s = &mut *stats;
        let mut l = s
            .llm
            .take()
            .unwrap_or_else(|| Box::new(LlmStats::new(llm.models.len())));
        for t in failed_over {
            if let Some(tier) = l.tiers.get_mut(t) {
                tier.failed_over += 1;
            }
        }
        match outcome {
            Ok((m, headers_at, tier, bytes)) => {
                s.record_status(200);
                s.bytes += bytes;
                s.record_success(micros(done - from), micros(headers_at - from));
                let price = llm.prices.get(tier).and_then(Option::as_ref);
                let lost = served_at_start.saturating_duration_since(from);
                l.record_success(&m, done - from, tier, lost, price);
            }
            Err(f) => {
                self.progress.failed.fetch_add(1, Ordering::Relaxed);
                if let Some(secs) = f.retry_after {
                    l.record_retry_after(secs);
                }
                if let Some(st) = f.status {
                    s.record_status(st);
                }
                s.record_error(f.class);
            }
        }
        s.llm = Some(l);
    }

    /// One attempt on model `tier`. Deadlines: `timeouts.connect` for the connection,
    /// `timeouts.first_token` from the attempt's start to the first content delta,
    /// `timeouts.between_tokens` after each content delta, and the request's total timeout.
    async fn llm_attempt(
        &mut self,
        tier: usize,
        prompt: usize,
        from: Instant,
        attempt_start: Instant,
        total_deadline: Instant,
    ) -> Result<(Measurement, Instant, usize, u64), LlmFailure> {
        let shared = self.shared.clone();
        let llm = shared.scenario.llm.as_ref().expect("llm scenario");
        let t = llm.timeouts;
        let connect_deadline = (Instant::now() + t.connect).min(total_deadline);
        match tokio::time::timeout_at(connect_deadline.into(), self.ensure_connected()).await {
            Err(_) => {
                self.conn = None;
                return Err(LlmFailure::of(if connect_deadline == total_deadline {
                    ErrorClass::Timeout
                } else {
                    ErrorClass::TimeoutConnect
                }));
            }
            Ok(Err(class)) => return Err(LlmFailure::of(class)),
            Ok(Ok(())) => {}
        }
        let body = llm
            .bodies
            .get(tier)
            .and_then(|b| b.get(prompt))
            .cloned()
            .unwrap_or_default();
        let uri = match &self.static_path {
            Some(u) => u.clone(),
            None => return Err(LlmFailure::of(ErrorClass::Other)),
        };
        let mut builder = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(uri)
            .header(HOST, shared.authority.clone());
        for (name, value) in &llm.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|_| LlmFailure::of(ErrorClass::Other))?;
        let first_deadline = (attempt_start + t.first_token).min(total_deadline);
        let timed_out = |deadline: Instant, waiting_first: bool| {
            LlmFailure::of(if deadline == total_deadline {
                ErrorClass::Timeout
            } else if waiting_first {
                ErrorClass::TimeoutFirstToken
            } else {
                ErrorClass::TimeoutBetweenTokens
            })
        };
        let sender = self
            .conn
            .as_mut()
            .ok_or(LlmFailure::of(ErrorClass::Connect))?;
        let response = match tokio::time::timeout_at(
            first_deadline.into(),
            sender.send_request(request),
        )
        .await
        {
            Err(_) => {
                self.conn = None;
                return Err(timed_out(first_deadline, true));
            }
            Ok(Err(e)) => {
                self.conn = None;
                return Err(LlmFailure::of(classify(&e)));
            }
            Ok(Ok(r)) => r,
        };
        let headers_at = Instant::now();
        let status = response.status().as_u16();
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if status != 200 {
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(super::llm::retry_after_secs);
            // Read the error body so the connection can be reused; it is small, and one that
            // is not (past 1 MiB) costs the connection, not gate's memory.
            let body = http_body_util::Limited::new(response.into_body(), 1 << 20);
            let drained = tokio::time::timeout_at(total_deadline.into(), body.collect()).await;
            if closes || !matches!(drained, Ok(Ok(_))) {
                self.conn = None;
            }
            let class = match status {
                429 => ErrorClass::RateLimited,
                529 => ErrorClass::Overloaded,
                // OpenAI has no 529: its "engine is currently overloaded" is a 503.
                503 if llm.provider == crate::config::Provider::OpenAi => ErrorClass::Overloaded,
                500..=599 => ErrorClass::Http5xx,
                400..=499 => ErrorClass::Http4xx,
                _ => ErrorClass::Expectation,
            };
            return Err(LlmFailure {
                class,
                status: Some(status),
                retry_after: (status == 429).then_some(retry_after).flatten(),
            });
        }
        let fail = |class: ErrorClass| LlmFailure {
            class,
            status: Some(status),
            retry_after: None,
        };
        let mut body = response.into_body();
        let mut bytes = 0u64;
        let measurement = if llm.stream {
            let mut parser = SseParser::new();
            let mut decoder = Decoder::new(llm.provider);
            let mut events = Vec::new();
            loop {
                let deadline = match decoder.last_content() {
                    None => first_deadline,
                    Some(at) => (from + at + t.between_tokens).min(total_deadline),
                };
                match tokio::time::timeout_at(deadline.into(), body.frame()).await {
                    Err(_) => {
                        self.conn = None;
                        return Err(LlmFailure {
                            status: Some(status),
                            ..timed_out(deadline, decoder.ttft().is_none())
                        });
                    }
                    Ok(None) => break,
                    Ok(Some(Err(_))) => {
                        // The connection broke mid-stream: whatever came, the stream is cut.
                        self.conn = None;
                        if decoder.finished() {
                            break;
                        }
                        return Err(fail(ErrorClass::Truncated));
                    }
                    Ok(Some(Ok(frame))) => {
                        if let Some(d) = frame.data_ref() {
                            // Every event completed by this frame arrived now.
                            let at = Instant::now() - from;
                            bytes += d.len() as u64;
                            parser.feed(d, &mut events);
                            if parser.overflowed() || bytes > MAX_BODY_BYTES {
                                self.conn = None;
                                return Err(fail(if parser.overflowed() {
                                    ErrorClass::EventTooLarge
                                } else {
                                    ErrorClass::BodyTooLarge
                                }));
                            }
                            for ev in events.drain(..) {
                                decoder.on_event(&ev, at);
                            }
                        }
                    }
                }
            }
            decoder.finish()
        } else {
            let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES as usize);
            match tokio::time::timeout_at(total_deadline.into(), limited.collect()).await {
                Err(_) => {
                    self.conn = None;
                    return Err(fail(ErrorClass::Timeout));
                }
                Ok(Err(e)) => {
                    self.conn = None;
                    return Err(fail(if e.is::<http_body_util::LengthLimitError>() {
                        ErrorClass::BodyTooLarge
                    } else {
                        ErrorClass::Truncated
                    }));
                }
                Ok(Ok(all)) => {
                    let all = all.to_bytes();
                    bytes = all.len() as u64;
                    super::llm::decode_json(llm.provider, &all)
                }
            }
        };
        if closes {
            self.conn = None;
        }
        match measurement {
            Ok(m) => Ok((m, headers_at, tier, bytes)),
            Err(StreamFailure::ErrorEvent(_)) => Err(fail(ErrorClass::StreamError)),
            Err(StreamFailure::Truncated) => Err(fail(ErrorClass::Truncated)),
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
                ctx.stats.borrow_mut().late_starts += 1;
            }
            intended
        } else {
            actual
        };
        ctx.exchange(from, measured).await;
        ctx.inject_fault(measured);
    }
}
