//! The tally of one worker thread: latency and TTFB histograms, status and error counts,
//! Server-Timing sums, and (for `llm:` scenarios) the LLM tally of `engine::llm`. One `Stats`
//! per OS thread, shared by that thread's tasks (single-threaded runtime, so no locks), merged
//! once at the end of a scenario.

use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::record::{ServerTimingAgg, new_histogram};

/// How a request failed. Names are the keys of `EndpointRecord::errors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// TCP connect refused or failed.
    Connect,
    /// The request exceeded its timeout (connect included).
    Timeout,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// A 4xx status that the scenario did not expect.
    Http4xx,
    /// A 5xx status that the scenario did not expect.
    Http5xx,
    /// Any other status the scenario did not expect (e.g. 200 when 201 was expected).
    Expectation,
    /// The response body could not be read.
    Body,
    Other,
    /// LLM: 429 Too Many Requests (the client's rate limit).
    RateLimited,
    /// LLM: 529 (Anthropic's "overloaded"): the provider itself is saturated.
    Overloaded,
    /// LLM: no TCP connection within `timeouts.connect`.
    TimeoutConnect,
    /// LLM: no content-bearing delta within `timeouts.first_token` of the start.
    TimeoutFirstToken,
    /// LLM: a silence longer than `timeouts.between_tokens` after a content delta.
    TimeoutBetweenTokens,
    /// LLM: an HTTP 200 stream that carried an error event.
    StreamError,
    /// LLM: the stream ended before `message_stop` / `[DONE]`.
    Truncated,
    /// The response was not HTTP (`SSH-2.0-…`), or its framing was invalid (bad chunk sizes).
    Protocol,
    /// The response's header section exceeded hyper's limit (e.g. a 2 MB header line).
    HeaderTooLarge,
    /// The body went past [`MAX_BODY_BYTES`]: gate stopped reading it.
    BodyTooLarge,
    /// An SSE line or event went past its limit (e.g. a 100 MB `data:` line).
    EventTooLarge,
    /// A TLS handshake failed mid-run (the first one was checked before the load).
    Tls,
    /// HTTP/2: the server sent GOAWAY and this request's stream was not processed (or the
    /// connection ended with an error code). gate reconnects and the run goes on.
    GoAway,
    /// HTTP/2: the server reset this request's stream (RST_STREAM), e.g. REFUSED_STREAM or
    /// INTERNAL_ERROR. The connection stays up.
    ResetStream,
}

/// The most of one response body gate reads (64 MiB). The HTTP engine only counts bytes, but a
/// body that never ends must still end the request, with a kind that names why; LLM bodies are
/// buffered, so their memory is bounded by this.
pub const MAX_BODY_BYTES: u64 = 64 << 20;

impl ErrorClass {
    pub const ALL: [ErrorClass; 22] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::Reset,
        ErrorClass::Http4xx,
        ErrorClass::Http5xx,
        ErrorClass::Expectation,
        ErrorClass::Body,
        ErrorClass::Other,
        ErrorClass::RateLimited,
        ErrorClass::Overloaded,
        ErrorClass::TimeoutConnect,
        ErrorClass::TimeoutFirstToken,
        ErrorClass::TimeoutBetweenTokens,
        ErrorClass::StreamError,
        ErrorClass::Truncated,
        ErrorClass::Protocol,
        ErrorClass::HeaderTooLarge,
        ErrorClass::BodyTooLarge,
        ErrorClass::EventTooLarge,
        ErrorClass::Tls,
        ErrorClass::GoAway,
        ErrorClass::ResetStream,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Reset => "reset",
            ErrorClass::Http4xx => "http_4xx",
            ErrorClass::Http5xx => "http_5xx",
            ErrorClass::Expectation => "expectation",
            ErrorClass::Body => "body",
            ErrorClass::Other => "other",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::TimeoutConnect => "timeout_connect",
            ErrorClass::TimeoutFirstToken => "timeout_first_token",
            ErrorClass::TimeoutBetweenTokens => "timeout_between_tokens",
            ErrorClass::StreamError => "stream_error",
            ErrorClass::Truncated => "truncated",
            ErrorClass::Protocol => "protocol",
            ErrorClass::HeaderTooLarge => "header_too_large",
            ErrorClass::BodyTooLarge => "body_too_large",
            ErrorClass::EventTooLarge => "event_too_large",
            ErrorClass::Tls => "tls",
            ErrorClass::GoAway => "goaway",
            ErrorClass::ResetStream => "reset_stream",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<super::h1::Failure> for ErrorClass {
    fn from(f: super::h1::Failure) -> ErrorClass {
        use super::h1::Failure;
        match f {
            Failure::Reset => ErrorClass::Reset,
            Failure::Protocol => ErrorClass::Protocol,
            Failure::HeaderTooLarge => ErrorClass::HeaderTooLarge,
            Failure::BodyTooLarge => ErrorClass::BodyTooLarge,
            Failure::Tls => ErrorClass::Tls,
            Failure::Timeout => ErrorClass::Timeout,
            Failure::Connect => ErrorClass::Connect,
            Failure::Other => ErrorClass::Other,
        }
    }
}

impl From<super::transport::H2Failure> for ErrorClass {
    fn from(f: super::transport::H2Failure) -> ErrorClass {
        use super::transport::H2Failure;
        match f {
            H2Failure::GoAway => ErrorClass::GoAway,
            H2Failure::ResetStream => ErrorClass::ResetStream,
            H2Failure::Protocol => ErrorClass::Protocol,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TimingAcc {
    pub count: u64,
    pub sum_ms: f64,
    pub max_ms: f64,
}

pub struct Stats {
    pub latency: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub successes: u64,
    pub failures: u64,
    /// Indexed by status code (0-599).
    pub statuses: Vec<u64>,
    pub errors: [u64; ErrorClass::ALL.len()],
    /// Few distinct names per endpoint, so a vector beats a map.
    pub server_timing: Vec<(String, TimingAcc)>,
    pub late_starts: u64,
    pub sent_measured: u64,
    pub bytes: u64,
    pub last_done: Option<Instant>,
    /// LLM measurements; only `llm:` scenarios allocate them.
    pub llm: Option<Box<super::llm::LlmStats>>,
    /// Connections opened (warmup included), the TCP connect and TLS handshake time of each.
    pub connections: u64,
    pub connect: Histogram<u64>,
    pub tls_handshake: Histogram<u64>,
    /// What the last connection negotiated (one target per scenario, so they agree).
    pub http_version: Option<super::transport::HttpVersion>,
    pub tls_version: Option<&'static str>,
    /// Flow errors that carry a name: `check:NAME`, `capture:NAME` (few per endpoint).
    pub named_errors: Vec<(String, u64)>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::with_histograms(new_histogram)
    }
}

impl Stats {
    fn with_histograms(new_histogram: impl Fn() -> Histogram<u64>) -> Stats {
        Stats {
            latency: new_histogram(),
            ttfb: new_histogram(),
            successes: 0,
            failures: 0,
            statuses: vec![0; 600],
            errors: [0; ErrorClass::ALL.len()],
            server_timing: Vec::new(),
            late_starts: 0,
            sent_measured: 0,
            bytes: 0,
            last_done: None,
            llm: None,
            connections: 0,
            connect: new_histogram(),
            tls_handshake: new_histogram(),
            http_version: None,
            tls_version: None,
            named_errors: Vec::new(),
        }
    }
}

/// One load thread's tallies: a [`Stats`] per time slice of the measurement, for the whole
/// endpoint and for each flow step. A run has one slice unless it is sliced (paired mode cuts
/// one continuous run into blocks this way, `engine::execute_sliced`). A request is counted in
/// the slice of its start (`from`, the intended start in the open model); warmup and connections
/// before the measurement go to the first. Merging every slice gives exactly the unsliced tally.
pub struct Tallies {
    measure_start: Instant,
    width: Option<std::time::Duration>,
    /// `[slice]`.
    total: Vec<RefCell<Stats>>,
    /// `[slice][step]`: flows only.
    steps: Vec<Vec<RefCell<Stats>>>,
}

impl Tallies {
    /// `slices` of `width` each from `measure_start` (`width` None: one slice), with `steps`
    /// flow steps.
    pub fn new(
        measure_start: Instant,
        width: Option<std::time::Duration>,
        slices: usize,
        steps: usize,
    ) -> Tallies {
        let slices = if width.is_some() { slices.max(1) } else { 1 };
        // Slices keep growable histograms: a run of 1,000 blocks must not hold 1,000 full ones.
        let new_stats = if width.is_some() {
            Stats::light
        } else {
            Stats::default
        };
        Tallies {
            measure_start,
            width,
            total: (0..slices).map(|_| RefCell::new(new_stats())).collect(),
            steps: (0..slices)
                .map(|_| (0..steps).map(|_| RefCell::new(new_stats())).collect())
                .collect(),
        }
    }

    /// The slice a request started at `at` belongs to.
    fn slice(&self, at: Instant) -> usize {
        let Some(width) = self.width else { return 0 };
        let since = at.saturating_duration_since(self.measure_start).as_nanos();
        let k = since / width.as_nanos().max(1);
        (k as usize).min(self.total.len() - 1)
    }

    /// The endpoint's tally for a request that started at `at`.
    pub fn at(&self, at: Instant) -> RefMut<'_, Stats> {
        self.total[self.slice(at)].borrow_mut()
    }

    /// Flow step `step`'s tally for a walk that started at `at`.
    pub fn step_at(&self, step: usize, at: Instant) -> RefMut<'_, Stats> {
        self.steps[self.slice(at)][step].borrow_mut()
    }

    /// Per slice: the endpoint's tally and its steps'.
    pub fn into_slices(self) -> Vec<(Stats, Vec<Stats>)> {
        self.total
            .into_iter()
            .zip(self.steps)
            .map(|(t, s)| {
                (
                    t.into_inner(),
                    s.into_iter().map(RefCell::into_inner).collect(),
                )
            })
            .collect()
    }
}

impl Stats {
    /// A tally whose histograms start small and grow to the values recorded (HDR auto-resize),
    /// where the default ones span gate's whole range from the start (about 180 KB each): a
    /// sliced run keeps a tally per slice per thread, mostly of short latencies.
    pub fn light() -> Stats {
        Stats::with_histograms(|| {
            Histogram::new(crate::record::HIST_SIGFIG)
                .expect("constant histogram precision is valid")
        })
    }

    pub fn record_status(&mut self, status: u16) {
        if let Some(slot) = self.statuses.get_mut(status as usize) {
            *slot += 1;
        }
    }

    pub fn record_error(&mut self, class: ErrorClass) {
        self.failures += 1;
        self.errors[class.index()] += 1;
    }

    /// A failure of a named check or capture: counted under `KIND:NAME`.
    pub fn record_named_error(&mut self, key: &str) {
        self.failures += 1;
        self.add_named(key, 1);
    }

    fn add_named(&mut self, key: &str, n: u64) {
        match self.named_errors.iter().position(|(k, _)| k == key) {
            Some(i) => self.named_errors[i].1 += n,
            // Names come from the scenario file, so they are few; a cap keeps it so anyway.
            None if self.named_errors.len() < 64 => self.named_errors.push((key.to_string(), n)),
            None => self.errors[ErrorClass::Other.index()] += n,
        }
    }

    pub fn record_success(&mut self, latency_us: u64, ttfb_us: u64) {
        self.successes += 1;
        // Values are clamped by `record::micros`, so recording cannot fail.
        let _ = self.latency.record(latency_us);
        let _ = self.ttfb.record(ttfb_us);
    }

    pub fn record_connection(&mut self, hs: &super::transport::Handshake) {
        self.connections += 1;
        let _ = self.connect.record(crate::record::micros(hs.connect));
        if let Some(t) = hs.tls {
            let _ = self.tls_handshake.record(crate::record::micros(t));
        }
        self.http_version = Some(hs.version);
        self.tls_version = hs.tls_version.or(self.tls_version);
    }

    pub fn add_server_timing(&mut self, header: &str) {
        for (name, dur) in parse_server_timing(header) {
            let Some(dur) = dur else { continue };
            let full = self.server_timing.len() >= MAX_SERVER_TIMING_NAMES;
            let acc = match self.server_timing.iter_mut().find(|(n, _)| n == name) {
                Some((_, acc)) => acc,
                None if full => continue,
                None => {
                    self.server_timing
                        .push((name.to_string(), TimingAcc::default()));
                    &mut self.server_timing.last_mut().expect("just pushed").1
                }
            };
            acc.count += 1;
            acc.sum_ms += dur;
            acc.max_ms = acc.max_ms.max(dur);
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
        self.successes += other.successes;
        self.failures += other.failures;
        for (a, b) in self.statuses.iter_mut().zip(&other.statuses) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(&other.errors) {
            *a += b;
        }
        for (k, n) in &other.named_errors {
            self.add_named(k, *n);
        }
        for (name, acc) in &other.server_timing {
            let full = self.server_timing.len() >= MAX_SERVER_TIMING_NAMES;
            match self.server_timing.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => {
                    mine.count += acc.count;
                    mine.sum_ms += acc.sum_ms;
                    mine.max_ms = mine.max_ms.max(acc.max_ms);
                }
                None if full => {}
                None => self.server_timing.push((name.clone(), acc.clone())),
            }
        }
        self.late_starts += other.late_starts;
        self.sent_measured += other.sent_measured;
        self.bytes += other.bytes;
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.connections += other.connections;
        let _ = self.connect.add(&other.connect);
        let _ = self.tls_handshake.add(&other.tls_handshake);
        self.http_version = self.http_version.or(other.http_version);
        self.tls_version = self.tls_version.or(other.tls_version);
        match (&mut self.llm, &other.llm) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.llm = Some(theirs.clone()),
            _ => {}
        }
    }

    pub fn status_counts(&self) -> BTreeMap<String, u64> {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code.to_string(), *n))
            .collect()
    }

    pub fn error_counts(&self) -> BTreeMap<String, u64> {
        ErrorClass::ALL
            .iter()
            .filter(|c| self.errors[c.index()] > 0)
            .map(|c| (c.name().to_string(), self.errors[c.index()]))
            .chain(self.named_errors.iter().cloned())
            .collect()
    }

    pub fn server_timing_aggs(&self) -> BTreeMap<String, ServerTimingAgg> {
        self.server_timing
            .iter()
            .map(|(name, acc)| {
                (
                    name.clone(),
                    ServerTimingAgg {
                        count: acc.count,
                        mean_ms: if acc.count > 0 {
                            acc.sum_ms / acc.count as f64
                        } else {
                            0.0
                        },
                        max_ms: acc.max_ms,
                        total_ms: acc.sum_ms,
                    },
                )
            })
            .collect()
    }
}

/// Parse a `Server-Timing` header value (W3C Server Timing, §3): a comma-separated list of
/// `name *( ";" param )`, where `dur` is milliseconds. Quoted parameter values may contain commas
/// and semicolons. Malformed entries are skipped, never fatal.
/// The largest `dur` taken from a Server-Timing header (about 11.6 days, in ms). A bigger value
/// (`dur=1e308`) is a server's nonsense and would turn the sums into infinity, so it is ignored
/// like a negative or NaN one.
pub const MAX_SERVER_TIMING_MS: f64 = 1e9;
/// At most this many distinct Server-Timing names are kept per endpoint, each at most
/// [`MAX_SERVER_TIMING_NAME`] bytes: a server inventing a new name per response must not make
/// memory or the per-response lookup grow with the run.
pub const MAX_SERVER_TIMING_NAMES: usize = 32;
pub const MAX_SERVER_TIMING_NAME: usize = 64;

pub fn parse_server_timing(value: &str) -> Vec<(&str, Option<f64>)> {
    let mut out = Vec::new();
    for entry in split_outside_quotes(value, ',') {
        let mut parts = split_outside_quotes(entry, ';').into_iter();
        let name = parts.next().unwrap_or("").trim();
        if name.is_empty()
            || name.len() > MAX_SERVER_TIMING_NAME
            || !name.bytes().all(is_token_byte)
        {
            continue;
        }
        let mut dur = None;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("dur")
            {
                dur = v
                    .trim()
                    .trim_matches('"')
                    .parse::<f64>()
                    .ok()
                    .filter(|d| (0.0..=MAX_SERVER_TIMING_MS).contains(d));
            }
        }
        out.push((name, dur));
    }
    out
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_follows_the_spec_examples() {
        let v =
            parse_server_timing("db;dur=53.2, app;dur=47.2;desc=\"a, b; c\", cache;desc=hit, miss");
        assert_eq!(
            v,
            vec![
                ("db", Some(53.2)),
                ("app", Some(47.2)),
                ("cache", None),
                ("miss", None)
            ]
        );
        assert_eq!(
            parse_server_timing("total;DUR=\"12\""),
            vec![("total", Some(12.0))]
        );
        assert!(parse_server_timing(" , ;dur=3").is_empty());
        assert_eq!(parse_server_timing("x;dur=abc"), vec![("x", None)]);
    }

    #[test]
    fn light_tallies_grow_to_any_latency_and_merge_into_full_ones_exactly() {
        let mut light = Stats::light();
        let small = light.latency.distinct_values();
        light.record_success(1, 1);
        light.record_success(crate::record::HIST_HIGH_US, 5_000);
        assert!(light.latency.distinct_values() > small, "it grew");
        let mut full = Stats::default();
        assert!(
            small * 10 < full.latency.distinct_values(),
            "it started small"
        );
        full.record_success(7_000, 700);
        full.merge(&light);
        assert_eq!(full.latency.len(), 3);
        assert_eq!(full.latency.max(), light.latency.max());
        assert_eq!(full.latency.min(), 1);
        let mut back = Stats::light();
        back.merge(&full);
        assert_eq!(back.latency.len(), 3);
        assert_eq!(back.latency.max(), full.latency.max());
    }

    #[test]
    fn stats_aggregate_and_merge() {
        let mut a = Stats::default();
        a.add_server_timing("db;dur=2, app;dur=5");
        a.add_server_timing("db;dur=4");
        a.record_success(1000, 500);
        a.record_status(200);
        let mut b = Stats::default();
        b.add_server_timing("db;dur=6");
        b.record_error(ErrorClass::Http5xx);
        b.record_status(503);
        a.merge(&b);
        let st = a.server_timing_aggs();
        assert_eq!(st["db"].count, 3);
        assert!((st["db"].mean_ms - 4.0).abs() < 1e-9);
        assert_eq!(st["db"].max_ms, 6.0);
        assert_eq!(st["app"].count, 1);
        assert_eq!(a.successes, 1);
        assert_eq!(a.failures, 1);
        assert_eq!(a.error_counts()["http_5xx"], 1);
        assert_eq!(a.status_counts()["503"], 1);
        assert_eq!(a.latency.len(), 1);
    }
}
