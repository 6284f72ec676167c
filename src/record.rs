//! `RunRecord` and `EndpointRecord`: plain serde data, the contract between rooms (engine writes
//! it; store, stats, report and chart read it). Latencies are in milliseconds as `f64` in
//! summaries; histograms hold microseconds (integers) and travel as HdrHistogram V2
//! deflate-compressed, base64 (standard alphabet), which any HdrHistogram library decodes.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

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
    /// Requests in flight per connection at most: 1 on HTTP/1.1 (one user, one connection).
    pub streams_per_connection: u32,
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
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return LatencySummary {
                histogram: encode_histogram(h),
                ..LatencySummary::default()
            };
        }
        LatencySummary {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean() / 1000.0,
            stdev_ms: h.stdev() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
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
            .map(|h| h.value_at_quantile(p / 100.0) as f64 / 1000.0)
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

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_795_000_000, 5), "2026-11-18T11:06:40.005Z");
        assert_eq!(format_rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }
}
