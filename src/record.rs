//! `RunRecord` and `EndpointRecord`: plain serde data, the contract between rooms (engine writes
//! it; store, stats, report and chart read it). Latencies are in milliseconds as `f64` in
//! summaries; histograms hold microseconds (integers) and travel as HdrHistogram V2
//! deflate-compressed, base64 (standard alphabet), which any HdrHistogram library decodes.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::units::{ms_from_us, ms_from_us_f64};

/// Version of the record/JSON document shape. Bump on any incompatible change.
pub const RECORD_VERSION: u32 = 1;

/// Histogram bounds: 1 µs to 1 hour at 3 significant digits (DESIGN.md).
pub const HIST_LOW_US: u64 = 1;
pub const HIST_HIGH_US: u64 = 3_600_000_000;
pub const HIST_SIGFIG: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Microseconds, clamped into the histogram's range so an outlier is never lost.
pub fn micros(d: std::time::Duration) -> u64 {
    (d.as_micros() as u64).clamp(HIST_LOW_US, HIST_HIGH_US)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    /// Random 128-bit id, hex: identifies the run across databases (export/import).
    #[serde(default)]
    pub uid: String,
    pub gate_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// The target's base URL (never credentials: targets are plain URLs without userinfo).
    pub target: String,
    pub suite: String,
    pub label: Option<String>,
    /// False when the run was interrupted (Ctrl-C) before every scenario finished, or when a
    /// load thread died (`faults`). An incomplete run never passes and is never a baseline.
    pub complete: bool,
    /// What broke the measurement itself, in words ("load thread gate-load-1 of create-order
    /// died: …"). A run with a fault is incomplete and gate exits 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// Git context; None outside a git checkout.
    #[serde(default)]
    pub git: Option<crate::git::GitInfo>,
    /// Pull request number (from the GitHub Actions event), if any.
    #[serde(default)]
    pub pr: Option<u64>,
    #[serde(default)]
    pub environment: Option<crate::environment::Environment>,
    pub endpoints: Vec<EndpointRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The scenario name, which names the endpoint in every report.
    pub name: String,
    pub scenario_file: String,
    pub scenario_hash: String,
    pub method: String,
    /// The URL template as written (no `${ENV}` values).
    pub url: String,
    pub load: LoadRecord,
    /// Measured requests that completed (successes + failures), warmup excluded.
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    /// Seconds of measurement (from the end of warmup to the last response).
    pub elapsed_s: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// failures / requests (0 when no request completed).
    pub error_rate: f64,
    /// Latency of successful requests, from the intended send time to the last body byte.
    pub latency: LatencySummary,
    /// Time to the response headers of successful requests (summary only: no histogram, which
    /// halves what the history stores per endpoint).
    pub ttfb: LatencySummary,
    /// Every response status seen (successes and failures), by code.
    pub status_counts: BTreeMap<String, u64>,
    /// Failures by class: connect, timeout, reset, http_4xx, http_5xx, expectation, body, other.
    pub errors: BTreeMap<String, u64>,
    /// `Server-Timing` aggregates per metric name, over successful responses.
    pub server_timing: BTreeMap<String, ServerTimingAgg>,
    /// Open model: requests sent more than 1 ms after their scheduled time.
    pub late_starts: u64,
    /// Open model: arrivals scheduled within the run that were never sent (target too slow).
    pub dropped_arrivals: u64,
    pub bytes_received: u64,
    /// Set when this endpoint is one step of a ramp (`users: [1, 5, 10]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampStepInfo>,
    /// Set on `llm:` scenarios. Absent from records made before LLM benchmarks existed, which
    /// therefore still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmRecord>,
    /// How the endpoint was reached: protocol, TLS, and the cost of setting up connections.
    /// Absent from records made before gate spoke TLS, which therefore still load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportRecord>,
}

/// The connections of one endpoint. Every field defaults, so older and newer records load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TransportRecord {
    /// `HTTP/1.1` or `HTTP/2`, as negotiated (ALPN over TLS).
    pub protocol: String,
    /// `TLSv1.3`, `TLSv1.2`; None over plain TCP.
    pub tls_version: Option<String>,
    /// Certificates were not verified (`--insecure`): the numbers are real, the peer unproven.
    pub insecure: bool,
    /// Connections opened, warmup included.
    pub connections: u64,
    /// Requests in flight per connection at most: 1 on HTTP/1.1 (one user, one connection);
    /// users ÷ `shared_connections` (rounded up) where HTTP/2 users share connections.
    pub streams_per_connection: u32,
    /// `load.connections` where it took effect (HTTP/2): the connections the users' streams
    /// shared. None: one connection per user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_connections: Option<u32>,
    /// `host:port` of the HTTP proxy the connections went through (LLM targets, from
    /// `HTTPS_PROXY` / `HTTP_PROXY`); never its credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Name resolution before the run (None for an address or a `--resolve` rule).
    pub dns_ms: Option<f64>,
    /// TCP connect time of each new connection, with its histogram.
    pub connect: LatencySummary,
    /// TLS handshake time of each new connection, with its histogram; None over plain TCP.
    pub tls_handshake: Option<LatencySummary>,
}

/// What an LLM endpoint measured beyond latency; definitions in the README ("LLM APIs").
/// Every field defaults, so a record written by a later gate with more fields still loads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LlmRecord {
    /// `anthropic` or `openai`.
    pub provider: String,
    /// The model, or the fallback chain in order.
    pub models: Vec<String>,
    pub fallback: bool,
    pub stream: bool,
    /// Time to the first content-bearing delta of successful streamed requests, with its
    /// histogram (compared between runs like latency).
    pub ttft: LatencySummary,
    /// Time per output token after the first: (E2E − TTFT) / (output tokens − 1).
    pub tpot: LatencySummary,
    /// Gaps between consecutive content-bearing deltas.
    pub itl: LatencySummary,
    /// E2E / output tokens per request, with its histogram: the inverse of per-request tok/s,
    /// so a drop in tok/s is compared as a rise here, exactly like latency.
    pub time_per_token: LatencySummary,
    /// Mean over successful requests of output tokens / E2E seconds.
    pub output_tps_mean: f64,
    /// Output tokens of successful requests / measured seconds.
    pub output_tps_aggregate: f64,
    /// Token totals of successful requests; `input_tokens` excludes cache reads and writes.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Successful requests whose output tokens were counted from deltas (no usage in the stream).
    pub estimated_requests: u64,
    /// None when the price table has no entry for the model(s).
    pub cost: Option<CostRecord>,
    /// 429 responses that said how long to wait.
    pub retry_after: Option<RetryAfterRecord>,
    /// Fallback chains: one entry per model, in chain order.
    pub tiers: Vec<TierRecord>,
    /// The providers' rate-limit headers (`anthropic-ratelimit-*`, `x-ratelimit-*`): per quota,
    /// the lowest remaining count seen over the measured requests. Empty when none was sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<HeadroomRecord>,
}

/// How close a run came to one of the provider's quotas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HeadroomRecord {
    /// `requests`, `tokens`, `input_tokens` or `output_tokens`.
    pub kind: String,
    /// The lowest `…-remaining` seen.
    pub remaining_min: u64,
    /// The quota (`…-limit`), when the provider sent it.
    pub limit: Option<u64>,
}

/// USD, from the price table and each successful request's usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CostRecord {
    pub total_usd: f64,
    pub p50_usd: f64,
    pub p95_usd: f64,
    pub per_1k_usd: f64,
    /// Mean cost per request × `daily_requests` × 30, when `daily_requests` is set.
    pub monthly_usd: Option<f64>,
    pub daily_requests: Option<u64>,
    /// Successful requests served by a model without a price (not in the figures above).
    pub unpriced_requests: u64,
    /// Cost per priced request in nano-USD, HdrHistogram V2 + deflate, base64: only in a shard's
    /// document (`gate run --shard`), so `gate merge` adds costs exactly. Empty in saved runs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub histogram: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RetryAfterRecord {
    pub count: u64,
    pub mean_s: f64,
    pub max_s: f64,
}

/// One model of a fallback chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TierRecord {
    pub model: String,
    /// Successful requests this model served.
    pub served: u64,
    /// Attempts on this model that moved on to the next one (429, 529, timeout).
    pub failed_over: u64,
    /// Latency (from the request's start, earlier attempts included) of the requests it served.
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// Mean time the requests it served spent in failed attempts on earlier models.
    pub failover_ms_mean: f64,
}

/// One step of a ramp: the scenario it belongs to and its concurrency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RampStepInfo {
    /// The scenario's name; each step's endpoint is named `<group>@<users>`.
    pub group: String,
    pub users: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadRecord {
    /// `closed` (users) or `open` (rate).
    pub model: String,
    pub users: Option<u32>,
    pub rate_per_s: Option<f64>,
    pub duration_s: f64,
    pub warmup_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub stdev_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// HdrHistogram V2 + deflate, base64; values in microseconds. Empty for TTFB summaries.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub histogram: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerTimingAgg {
    /// Responses that carried this metric with a duration.
    pub count: u64,
    pub mean_ms: f64,
    pub max_ms: f64,
    pub total_ms: f64,
}

impl LatencySummary {
    /// Percentiles only, no encoded histogram.
    pub fn percentiles_of(h: &Histogram<u64>) -> LatencySummary {
        let mut s = LatencySummary::from_histogram(h);
        s.histogram.clear();
        s
    }

    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary {
                histogram: encode_histogram(h),
                ..LatencySummary::default()
            };
        }
        LatencySummary {
            count: h.len(),
            min_ms: ms_from_us(h.min()),
            mean_ms: ms_from_us_f64(h.mean()),
            stdev_ms: ms_from_us_f64(h.stdev()),
            p50_ms: ms_from_us(h.value_at_quantile(0.50)),
            p90_ms: ms_from_us(h.value_at_quantile(0.90)),
            p95_ms: ms_from_us(h.value_at_quantile(0.95)),
            p99_ms: ms_from_us(h.value_at_quantile(0.99)),
            p999_ms: ms_from_us(h.value_at_quantile(0.999)),
            max_ms: ms_from_us(h.max()),
            histogram: encode_histogram(h),
        }
    }

    /// The latency (ms) at percentile `p` (0-100), read from the histogram for any `p`, not only
    /// the stored ones. None when there is no sample.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let known = [
            (50.0, self.p50_ms),
            (90.0, self.p90_ms),
            (95.0, self.p95_ms),
            (99.0, self.p99_ms),
            (99.9, self.p999_ms),
        ];
        if let Some((_, v)) = known.iter().find(|(q, _)| (*q - p).abs() < 1e-9) {
            return Some(*v);
        }
        decode_histogram(&self.histogram)
            .ok()
            .map(|h| ms_from_us(h.value_at_quantile(p / 100.0)))
    }
}

impl EndpointRecord {
    /// Fold `other`, a later measurement of the same endpoint (another block of a paired run, a
    /// shard), into `self`, exactly where the record allows: latency histograms are added bucket
    /// by bucket and the summary recomputed from the sum; counts, statuses, errors, bytes and
    /// Server-Timing totals are summed; measured time adds up, so throughput is successes over
    /// the total. TTFB keeps no histogram, so its percentiles become the count-weighted means of
    /// both (its count, min and max stay exact).
    ///
    /// Refuses (leaving `self` unchanged) another endpoint or definition, an LLM endpoint (its
    /// token figures do not merge from the record alone), or a histogram that does not decode.
    pub fn merge(&mut self, other: &EndpointRecord) -> Result<(), String> {
        if self.name != other.name || self.scenario_hash != other.scenario_hash {
            return Err(format!(
                "cannot merge endpoint `{}` with `{}`: not the same scenario definition",
                self.name, other.name
            ));
        }
        if self.llm.is_some() || other.llm.is_some() {
            return Err(format!(
                "cannot merge LLM endpoint `{}`: its token figures are not kept per request",
                self.name
            ));
        }
        let (latency, ttfb, transport) = self.merged_parts(other)?;
        self.latency = latency;
        self.ttfb = ttfb;
        self.transport = transport;
        self.add_counts(other);
        self.elapsed_s += other.elapsed_s;
        self.throughput_rps = if self.elapsed_s > 0.0 {
            self.successes as f64 / self.elapsed_s
        } else {
            0.0
        };
        self.load.duration_s += other.load.duration_s;
        self.load.warmup_s += other.load.warmup_s;
        Ok(())
    }

    /// The parts of a merge that can fail (histograms that do not decode or add), computed
    /// before anything in `self` changes: latency, TTFB and transport.
    fn merged_parts(
        &self,
        other: &EndpointRecord,
    ) -> Result<(LatencySummary, LatencySummary, Option<TransportRecord>), String> {
        let mut latency = decode_histogram(&self.latency.histogram)?;
        let theirs = decode_histogram(&other.latency.histogram)?;
        latency
            .add(&theirs)
            .map_err(|e| format!("histograms of `{}` do not add: {e:?}", self.name))?;
        let ttfb = add_summaries(&self.ttfb, &other.ttfb)
            .map_err(|e| format!("TTFB of `{}`: {e}", self.name))?;
        let transport = match (self.transport.clone(), &other.transport) {
            (Some(mut mine), Some(theirs)) => {
                mine.merge(theirs)?;
                Some(mine)
            }
            (mine, theirs) => mine.or_else(|| theirs.clone()),
        };
        Ok((LatencySummary::from_histogram(&latency), ttfb, transport))
    }

    /// Counts, statuses, errors, Server-Timing and bytes: summed, whatever the timing.
    fn add_counts(&mut self, other: &EndpointRecord) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.failures += other.failures;
        self.error_rate = if self.requests > 0 {
            self.failures as f64 / self.requests as f64
        } else {
            0.0
        };
        for (k, v) in &other.status_counts {
            *self.status_counts.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.server_timing {
            let slot = self.server_timing.entry(k.clone()).or_default();
            slot.count += v.count;
            slot.total_ms += v.total_ms;
            slot.max_ms = slot.max_ms.max(v.max_ms);
            slot.mean_ms = if slot.count > 0 {
                slot.total_ms / slot.count as f64
            } else {
                0.0
            };
        }
        self.late_starts += other.late_starts;
        self.dropped_arrivals += other.dropped_arrivals;
        self.bytes_received += other.bytes_received;
    }
}

impl TransportRecord {
    /// Add another block's connections: counts summed, connect and TLS handshake histograms
    /// added bucket for bucket; protocol and TLS version kept (one target per endpoint).
    pub fn merge(&mut self, other: &TransportRecord) -> Result<(), String> {
        let add = |a: &LatencySummary, b: &LatencySummary| -> Result<LatencySummary, String> {
            if b.count == 0 {
                return Ok(a.clone());
            }
            if a.count == 0 {
                return Ok(b.clone());
            }
            let mut h = decode_histogram(&a.histogram)?;
            h.add(decode_histogram(&b.histogram)?)
                .map_err(|e| format!("connection histograms do not add: {e:?}"))?;
            Ok(LatencySummary::from_histogram(&h))
        };
        self.connect = add(&self.connect, &other.connect)?;
        self.tls_handshake = match (&self.tls_handshake, &other.tls_handshake) {
            (Some(a), Some(b)) => Some(add(a, b)?),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        self.connections += other.connections;
        self.insecure |= other.insecure;
        self.streams_per_connection = self
            .streams_per_connection
            .max(other.streams_per_connection);
        self.dns_ms = self.dns_ms.or(other.dns_ms);
        self.shared_connections = self.shared_connections.or(other.shared_connections);
        self.proxy = self.proxy.take().or_else(|| other.proxy.clone());
        Ok(())
    }
}

/// Two summaries of one distribution, added: exactly (bucket by bucket) when both carry their
/// histogram, else as [`weighted_summary`] does.
fn add_summaries(a: &LatencySummary, b: &LatencySummary) -> Result<LatencySummary, String> {
    if b.count == 0 {
        return Ok(a.clone());
    }
    if a.count == 0 {
        return Ok(b.clone());
    }
    if a.histogram.is_empty() || b.histogram.is_empty() {
        return Ok(weighted_summary(a, b));
    }
    let mut h = decode_histogram(&a.histogram)?;
    h.add(decode_histogram(&b.histogram)?)
        .map_err(|e| format!("histograms do not add: {e:?}"))?;
    Ok(LatencySummary::from_histogram(&h))
}

/// A summary as a saved run keeps it: percentiles from the histogram, the histogram dropped.
fn without_histogram(s: &mut LatencySummary) {
    s.histogram.clear();
}

impl EndpointRecord {
    /// Fold `other`, the same endpoint measured *at the same time* by another shard of the
    /// load (`gate merge`), into `self`. As [`EndpointRecord::merge`] for the histograms (added
    /// bucket by bucket; TTFB too when both shards' documents carry its histogram), counts,
    /// statuses, errors, Server-Timing, bytes and connections; but the shards ran side by side,
    /// so the load adds up (users, rate), the measured time is the longest shard's, and
    /// throughput is the sum of the shards' throughputs. LLM figures merge too: TTFT, TPOT,
    /// inter-token and time-per-token histograms added, tokens and cost summed, cost
    /// percentiles from the added cost histograms.
    ///
    /// Refuses (leaving `self` unchanged) another endpoint, scenario definition, load model,
    /// ramp step, provider or model, or a histogram that does not decode.
    pub fn merge_shard(&mut self, other: &EndpointRecord) -> Result<(), String> {
        if self.name != other.name || self.scenario_hash != other.scenario_hash {
            return Err(format!(
                "cannot merge endpoint `{}` with `{}`: not the same scenario definition",
                self.name, other.name
            ));
        }
        if self.load.model != other.load.model || self.ramp != other.ramp {
            return Err(format!(
                "cannot merge endpoint `{}`: its shards ran different load models or ramp steps",
                self.name
            ));
        }
        let llm = match (&self.llm, &other.llm) {
            (Some(a), Some(b)) => Some(
                merged_llm(a, b, self.successes, other.successes)
                    .map_err(|e| format!("LLM figures of `{}`: {e}", self.name))?,
            ),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "cannot merge endpoint `{}`: an LLM scenario in one shard only",
                    self.name
                ));
            }
        };
        let (latency, ttfb, transport) = self.merged_parts(other)?;
        self.latency = latency;
        self.ttfb = ttfb;
        self.transport = transport;
        self.llm = llm;
        self.add_counts(other);
        self.throughput_rps += other.throughput_rps;
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        self.load.users = match (self.load.users, other.load.users) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.load.rate_per_s = match (self.load.rate_per_s, other.load.rate_per_s) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.load.duration_s = self.load.duration_s.max(other.load.duration_s);
        self.load.warmup_s = self.load.warmup_s.max(other.load.warmup_s);
        if let Some(l) = &mut self.llm {
            // Output tokens over the (longest) measured time, as the engine computes it.
            l.output_tps_aggregate = l.output_tokens as f64 / self.elapsed_s.max(1e-9);
        }
        Ok(())
    }

    /// Drop the histograms a saved run does not keep (TTFB, TPOT, inter-token, cost), once their
    /// percentiles are computed: a merged run is stored like any other.
    pub fn drop_shard_histograms(&mut self) {
        without_histogram(&mut self.ttfb);
        if let Some(l) = &mut self.llm {
            without_histogram(&mut l.tpot);
            without_histogram(&mut l.itl);
            if let Some(c) = &mut l.cost {
                c.histogram.clear();
            }
        }
    }
}

/// Two shards' LLM figures of one endpoint; `sa`, `sb` their successful requests.
fn merged_llm(a: &LlmRecord, b: &LlmRecord, sa: u64, sb: u64) -> Result<LlmRecord, String> {
    if a.provider != b.provider || a.models != b.models || a.stream != b.stream {
        return Err("the shards used different providers, models or streaming".into());
    }
    let weigh = |x: f64, nx: u64, y: f64, ny: u64| {
        if nx + ny == 0 {
            0.0
        } else {
            (x * nx as f64 + y * ny as f64) / (nx + ny) as f64
        }
    };
    let mut out = a.clone();
    out.ttft = add_summaries(&a.ttft, &b.ttft)?;
    out.tpot = add_summaries(&a.tpot, &b.tpot)?;
    out.itl = add_summaries(&a.itl, &b.itl)?;
    out.time_per_token = add_summaries(&a.time_per_token, &b.time_per_token)?;
    // The mean of per-request tok/s is over requests with output tokens: exactly those
    // time_per_token counts.
    out.output_tps_mean = weigh(
        a.output_tps_mean,
        a.time_per_token.count,
        b.output_tps_mean,
        b.time_per_token.count,
    );
    out.input_tokens += b.input_tokens;
    out.output_tokens += b.output_tokens;
    out.cache_read_tokens += b.cache_read_tokens;
    out.cache_write_tokens += b.cache_write_tokens;
    out.estimated_requests += b.estimated_requests;
    out.cost = match (&a.cost, &b.cost) {
        (Some(x), Some(y)) => Some(merged_cost(x, y, sa, sb)?),
        (x, y) => x.clone().or_else(|| y.clone()),
    };
    out.retry_after = match (&a.retry_after, &b.retry_after) {
        (Some(x), Some(y)) => Some(RetryAfterRecord {
            count: x.count + y.count,
            mean_s: weigh(x.mean_s, x.count, y.mean_s, y.count),
            max_s: x.max_s.max(y.max_s),
        }),
        (x, y) => x.clone().or_else(|| y.clone()),
    };
    if a.tiers.len() == b.tiers.len() {
        out.tiers = a
            .tiers
            .iter()
            .zip(&b.tiers)
            .map(|(x, y)| TierRecord {
                model: x.model.clone(),
                served: x.served + y.served,
                failed_over: x.failed_over + y.failed_over,
                // No histogram per tier: percentiles weighted by requests served.
                p50_ms: weigh(x.p50_ms, x.served, y.p50_ms, y.served),
                p95_ms: weigh(x.p95_ms, x.served, y.p95_ms, y.served),
                failover_ms_mean: weigh(x.failover_ms_mean, x.served, y.failover_ms_mean, y.served),
            })
            .collect();
    } else {
        return Err("the shards' fallback chains differ".into());
    }
    Ok(out)
}

/// Costs of two shards: totals summed; p50 and p95 from the added cost histograms when both
/// documents carry them (shard documents do), else weighted by priced requests.
fn merged_cost(x: &CostRecord, y: &CostRecord, sx: u64, sy: u64) -> Result<CostRecord, String> {
    const NANO_USD: f64 = 1e9;
    let mut out = x.clone();
    out.total_usd += y.total_usd;
    out.unpriced_requests += y.unpriced_requests;
    let (px, py) = (
        sx.saturating_sub(x.unpriced_requests),
        sy.saturating_sub(y.unpriced_requests),
    );
    let priced;
    if !x.histogram.is_empty() && !y.histogram.is_empty() {
        let mut h = decode_histogram(&x.histogram)?;
        h.add(decode_histogram(&y.histogram)?)
            .map_err(|e| format!("cost histograms do not add: {e:?}"))?;
        priced = h.len();
        if priced > 0 {
            out.p50_usd = h.value_at_quantile(0.5) as f64 / NANO_USD;
            out.p95_usd = h.value_at_quantile(0.95) as f64 / NANO_USD;
        }
        out.histogram = encode_histogram(&h);
    } else {
        priced = px + py;
        if priced > 0 {
            let w = |a: f64, b: f64| (a * px as f64 + b * py as f64) / priced as f64;
            out.p50_usd = w(x.p50_usd, y.p50_usd);
            out.p95_usd = w(x.p95_usd, y.p95_usd);
        }
        out.histogram.clear();
    }
    let mean = if priced > 0 {
        out.total_usd / priced as f64
    } else {
        0.0
    };
    out.per_1k_usd = mean * 1000.0;
    out.monthly_usd = out.daily_requests.map(|d| mean * d as f64 * 30.0);
    Ok(out)
}

/// A summary without a histogram, merged as well as one can: exact count, min and max, the mean
/// and spread pooled exactly, percentiles as count-weighted means.
fn weighted_summary(a: &LatencySummary, b: &LatencySummary) -> LatencySummary {
    if b.count == 0 {
        return a.clone();
    }
    if a.count == 0 {
        return b.clone();
    }
    let (na, nb) = (a.count as f64, b.count as f64);
    let n = na + nb;
    let w = |x: f64, y: f64| (x * na + y * nb) / n;
    let mean = w(a.mean_ms, b.mean_ms);
    // Pooled variance: within plus between the two parts.
    let var = (na * (a.stdev_ms.powi(2) + (a.mean_ms - mean).powi(2))
        + nb * (b.stdev_ms.powi(2) + (b.mean_ms - mean).powi(2)))
        / n;
    LatencySummary {
        count: a.count + b.count,
        min_ms: a.min_ms.min(b.min_ms),
        mean_ms: mean,
        stdev_ms: var.max(0.0).sqrt(),
        p50_ms: w(a.p50_ms, b.p50_ms),
        p90_ms: w(a.p90_ms, b.p90_ms),
        p95_ms: w(a.p95_ms, b.p95_ms),
        p99_ms: w(a.p99_ms, b.p99_ms),
        p999_ms: w(a.p999_ms, b.p999_ms),
        max_ms: a.max_ms.max(b.max_ms),
        histogram: String::new(),
    }
}

impl RunRecord {
    /// A complete run of these endpoints with every other field empty: a fixture for tests.
    #[cfg(test)]
    pub fn of_endpoints(endpoints: Vec<EndpointRecord>) -> RunRecord {
        RunRecord {
            version: RECORD_VERSION,
            uid: String::new(),
            gate_version: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            target: String::new(),
            suite: String::new(),
            label: None,
            complete: true,
            faults: Vec::new(),
            git: None,
            pr: None,
            environment: None,
            endpoints,
        }
    }

    /// One run from consecutive measurements of the same suite (the blocks of one side of a
    /// paired run): the first block's context, the time span of all, every endpoint merged by
    /// name with [`EndpointRecord::merge`] (in the order they first appear), complete only when
    /// every block was, and every block's faults. None for no blocks.
    pub fn merge(blocks: &[RunRecord]) -> Result<Option<RunRecord>, String> {
        let Some((first, rest)) = blocks.split_first() else {
            return Ok(None);
        };
        let mut out = first.clone();
        for b in rest {
            out.finished_at = b.finished_at.clone();
            out.complete &= b.complete;
            out.faults.extend(b.faults.iter().cloned());
            for e in &b.endpoints {
                match out.endpoints.iter_mut().find(|o| o.name == e.name) {
                    Some(o) => o.merge(e)?,
                    None => out.endpoints.push(e.clone()),
                }
            }
        }
        Ok(Some(out))
    }
}

impl RunRecord {
    /// One run from shards that ran side by side (`gate merge`): the first shard's context,
    /// the earliest start and the latest end, every endpoint merged by name with
    /// [`EndpointRecord::merge_shard`] (in the order they first appear), complete only when
    /// every shard was, every shard's faults, and the shard-only histograms dropped once the
    /// percentiles are computed. Checking that the shards belong together (suite, commit,
    /// shard indexes) is the caller's. None for no shards.
    pub fn merge_shards(shards: &[RunRecord]) -> Result<Option<RunRecord>, String> {
        let Some((first, rest)) = shards.split_first() else {
            return Ok(None);
        };
        let mut out = first.clone();
        for r in rest {
            if r.started_at < out.started_at {
                out.started_at = r.started_at.clone();
            }
            if r.finished_at > out.finished_at {
                out.finished_at = r.finished_at.clone();
            }
            out.complete &= r.complete;
            out.faults.extend(r.faults.iter().cloned());
            for e in &r.endpoints {
                match out.endpoints.iter_mut().find(|o| o.name == e.name) {
                    Some(o) => o.merge_shard(e)?,
                    None => out.endpoints.push(e.clone()),
                }
            }
        }
        for e in &mut out.endpoints {
            e.drop_shard_histograms();
        }
        Ok(Some(out))
    }
}

pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serialising into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

/// Current time as RFC 3339 UTC with milliseconds, without a date-time dependency.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_millis())
}

pub fn format_rfc3339(unix_secs: i64, millis: u32) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// One row of `gate history list`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub id: i64,
    pub uid: String,
    pub started_at: String,
    pub git: crate::git::GitInfo,
    pub pr: Option<u64>,
    pub label: Option<String>,
    pub complete: bool,
    pub env_fingerprint: String,
    pub endpoints: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredRun {
    pub id: i64,
    pub record: RunRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_base64_v2() {
        let mut h = new_histogram();
        for v in [120u64, 450, 450, 1_000, 25_000, 2_000_000] {
            h.record(v).unwrap();
        }
        let text = encode_histogram(&h);
        let back = decode_histogram(&text).unwrap();
        assert_eq!(back.len(), 6);
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        // V2 deflate cookie, big-endian, as other HdrHistogram implementations expect.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .unwrap();
        assert_eq!(&raw[..4], &[0x1c, 0x84, 0x93, 0x14]);
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn summary_reads_percentiles_in_ms() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap(); // 1..1000 ms
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{}", s.p50_ms);
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{}", s.p99_ms);
        assert!((s.percentile_ms(75.0).unwrap() - 750.0).abs() < 1.0);
        assert_eq!(
            LatencySummary::from_histogram(&new_histogram()).percentile_ms(50.0),
            None
        );
    }

    fn block(values_us: &[u64], status: &str, db_ms: f64) -> EndpointRecord {
        let mut h = new_histogram();
        for &v in values_us {
            h.record(v).unwrap();
        }
        let n = values_us.len() as u64;
        EndpointRecord {
            name: "orders".into(),
            scenario_file: "orders.yml".into(),
            scenario_hash: "h1".into(),
            method: "GET".into(),
            url: "/orders".into(),
            load: LoadRecord {
                model: "closed".into(),
                users: Some(2),
                rate_per_s: None,
                duration_s: 1.0,
                warmup_s: 0.2,
            },
            requests: n + 1,
            successes: n,
            failures: 1,
            elapsed_s: 1.0,
            throughput_rps: n as f64,
            error_rate: 1.0 / (n + 1) as f64,
            latency: LatencySummary::from_histogram(&h),
            ttfb: LatencySummary::percentiles_of(&h),
            status_counts: [(status.to_string(), n), ("500".to_string(), 1)].into(),
            errors: [("http_5xx".to_string(), 1)].into(),
            server_timing: [(
                "db".to_string(),
                ServerTimingAgg {
                    count: n,
                    mean_ms: db_ms,
                    max_ms: db_ms * 2.0,
                    total_ms: db_ms * n as f64,
                },
            )]
            .into(),
            late_starts: 1,
            dropped_arrivals: 0,
            bytes_received: 100 * n,
            ramp: None,
            llm: None,
            transport: None,
        }
    }

    #[test]
    fn merged_blocks_hold_the_sum_of_their_histograms_bucket_for_bucket() {
        let a_values: Vec<u64> = (1..=500).map(|i| 900 + i * 7).collect();
        let b_values: Vec<u64> = (1..=300).map(|i| 2_000 + i * 131).collect();
        let (a, b) = (block(&a_values, "200", 1.0), block(&b_values, "200", 4.0));
        let mut merged = a.clone();
        merged.merge(&b).unwrap();

        let mut expected = decode_histogram(&a.latency.histogram).unwrap();
        expected
            .add(decode_histogram(&b.latency.histogram).unwrap())
            .unwrap();
        let got = decode_histogram(&merged.latency.histogram).unwrap();
        let buckets = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        assert_eq!(buckets(&got), buckets(&expected));
        assert_eq!(got.len(), 800);
        assert_eq!(merged.latency, LatencySummary::from_histogram(&expected));

        assert_eq!(
            (merged.requests, merged.successes, merged.failures),
            (802, 800, 2)
        );
        assert_eq!(merged.elapsed_s, 2.0);
        assert_eq!(merged.throughput_rps, 400.0);
        assert_eq!(merged.status_counts["200"], 800);
        assert_eq!(merged.status_counts["500"], 2);
        assert_eq!(merged.errors["http_5xx"], 2);
        let db = &merged.server_timing["db"];
        assert_eq!((db.count, db.max_ms), (800, 8.0));
        assert!((db.mean_ms - (500.0 * 1.0 + 300.0 * 4.0) / 800.0).abs() < 1e-12);
        assert_eq!((merged.late_starts, merged.bytes_received), (2, 80_000));
        assert_eq!(merged.ttfb.count, 800);
        assert_eq!(merged.ttfb.max_ms, b.ttfb.max_ms);
        assert!(merged.ttfb.histogram.is_empty());
    }

    #[test]
    fn merging_refuses_a_different_endpoint_and_leaves_the_record_alone() {
        let a = block(&[1000, 2000], "200", 1.0);
        let mut other = block(&[3000], "200", 1.0);
        other.scenario_hash = "changed".into();
        let mut m = a.clone();
        assert!(m.merge(&other).is_err());
        assert_eq!(m, a);
        let mut bad = block(&[3000], "200", 1.0);
        bad.latency.histogram = "not base64!".into();
        assert!(m.merge(&bad).is_err());
        assert_eq!(m, a);
    }

    #[test]
    fn runs_merge_by_endpoint_and_stay_partial_if_any_block_was() {
        let run = |e: EndpointRecord, complete: bool, end: &str| RunRecord {
            version: RECORD_VERSION,
            uid: "u".into(),
            gate_version: String::new(),
            started_at: "t0".into(),
            finished_at: end.into(),
            target: String::new(),
            suite: String::new(),
            label: None,
            complete,
            faults: Vec::new(),
            git: None,
            pr: None,
            environment: None,
            endpoints: vec![e],
        };
        let mut other = block(&[5000], "200", 1.0);
        other.name = "detail".into();
        let blocks = [
            run(block(&[1000, 2000], "200", 1.0), true, "t1"),
            run(other, true, "t2"),
            run(block(&[3000], "200", 1.0), false, "t3"),
        ];
        let m = RunRecord::merge(&blocks).unwrap().unwrap();
        assert_eq!(m.endpoints.len(), 2);
        assert_eq!(m.endpoints[0].latency.count, 3);
        assert_eq!(
            (m.started_at.as_str(), m.finished_at.as_str()),
            ("t0", "t3")
        );
        assert!(!m.complete);
        assert!(RunRecord::merge(&[]).unwrap().is_none());
    }

    #[test]
    fn shards_side_by_side_add_their_load_and_histograms_and_keep_the_longest_time() {
        let a_values: Vec<u64> = (1..=400).map(|i| 800 + i * 11).collect();
        let b_values: Vec<u64> = (1..=250).map(|i| 3_000 + i * 97).collect();
        let with_ttfb = |values: &[u64], elapsed: f64| {
            let mut e = block(values, "200", 2.0);
            let mut h = new_histogram();
            for &v in values {
                h.record(v / 2).unwrap();
            }
            e.ttfb = LatencySummary::from_histogram(&h);
            e.elapsed_s = elapsed;
            e.throughput_rps = e.successes as f64 / elapsed;
            e.llm = Some(LlmRecord {
                provider: "openai".into(),
                models: vec!["m".into()],
                ttft: LatencySummary::from_histogram(&h),
                output_tokens: 10 * values.len() as u64,
                input_tokens: 3,
                ..LlmRecord::default()
            });
            e
        };
        let (a, b) = (with_ttfb(&a_values, 1.0), with_ttfb(&b_values, 1.25));
        let mut m = a.clone();
        m.merge_shard(&b).unwrap();
        let sum = |x: &LatencySummary, y: &LatencySummary| {
            let mut h = decode_histogram(&x.histogram).unwrap();
            h.add(decode_histogram(&y.histogram).unwrap()).unwrap();
            LatencySummary::from_histogram(&h)
        };
        assert_eq!(m.latency, sum(&a.latency, &b.latency));
        assert_eq!(m.ttfb, sum(&a.ttfb, &b.ttfb));
        let llm = m.llm.as_ref().unwrap();
        assert_eq!(
            llm.ttft,
            sum(&a.llm.as_ref().unwrap().ttft, &b.llm.as_ref().unwrap().ttft)
        );
        assert_eq!(llm.output_tokens, 6_500);
        assert_eq!(llm.input_tokens, 6);
        assert_eq!(m.load.users, Some(4));
        assert_eq!(m.load.duration_s, 1.0);
        assert_eq!(m.elapsed_s, 1.25);
        assert!((m.throughput_rps - (400.0 + 250.0 / 1.25)).abs() < 1e-9);
        assert_eq!(m.requests, a.requests + b.requests);
        assert_eq!(m.errors["http_5xx"], 2);

        // Dropping the shard-only histograms keeps the exact percentiles.
        let mut saved = m.clone();
        saved.drop_shard_histograms();
        assert!(saved.ttfb.histogram.is_empty());
        assert_eq!(saved.ttfb.p99_ms, m.ttfb.p99_ms);
        assert!(!saved.latency.histogram.is_empty());

        // Another load model is not the same scenario run.
        let mut open = b.clone();
        open.load.model = "open".into();
        let mut m2 = a.clone();
        assert!(m2.merge_shard(&open).is_err());
        assert_eq!(m2, a);
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_795_000_000, 5), "2026-11-18T11:06:40.005Z");
        assert_eq!(format_rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }
}
