//! LLM provider streams → one request's measurement.
//!
//! The decoders read SSE events of the two wire formats and note, with the arrival time of the
//! frame that completed each event, what the README defines: the first content-bearing delta
//! (TTFT), every later one (inter-token latency), the provider's usage, and how the stream ended.
//!
//! - Anthropic Messages: `message_start` (usage: input, cache, and a first `output_tokens`),
//!   `content_block_start`, `ping`, `content_block_delta` (`text_delta`, `thinking_delta`,
//!   `input_json_delta`: content; `signature_delta`: not), `content_block_stop`,
//!   `message_delta` (usage with the *cumulative* `output_tokens`), `message_stop`; `error`.
//!   <https://docs.anthropic.com/en/docs/build-with-claude/streaming>
//! - OpenAI chat completions: `chat.completion.chunk` objects; the first carries only
//!   `delta.role` (the prelude, not content); content in `delta.content`, `delta.refusal`,
//!   `delta.reasoning_content` or `delta.tool_calls[].function.arguments`; with
//!   `stream_options.include_usage` a last chunk with empty `choices` and `usage`; then
//!   `data: [DONE]`. An object with an `error` key is an error event.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

use super::sse::SseEvent;
use super::stats::micros;
use crate::config::{LlmPlan, Price, Provider};
use crate::record::{
    CostRecord, LatencySummary, LlmRecord, RetryAfterRecord, TierRecord, new_histogram,
};

/// Tokens of one request. `input` excludes cache reads and writes (Anthropic reports them apart;
/// OpenAI's `prompt_tokens` includes `cached_tokens`, which are subtracted), so each count is
/// priced once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// A stream that ended well, as measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// From the request's start to the first content-bearing delta; None for `stream: false`.
    pub ttft: Option<Duration>,
    /// Arrival (from the request's start) of every content-bearing delta, in order.
    pub content_at: Vec<Duration>,
    pub usage: Usage,
    /// The stream carried no output usage: `usage.output` counts content deltas instead.
    pub estimated: bool,
}

/// How a 200 stream can still fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFailure {
    /// An `error` event (Anthropic) or an `error` object (OpenAI) inside the stream.
    ErrorEvent(String),
    /// The body ended before `message_stop` / `[DONE]`.
    Truncated,
}

/// Per-request stream state.
#[derive(Debug)]
pub struct Decoder {
    provider: Provider,
    ttft: Option<Duration>,
    content_at: Vec<Duration>,
    usage: Usage,
    output_reported: bool,
    done: bool,
    error: Option<String>,
}

fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn non_empty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

impl Decoder {
    pub fn new(provider: Provider) -> Decoder {
        Decoder {
            provider,
            ttft: None,
            content_at: Vec::new(),
            usage: Usage::default(),
            output_reported: false,
            done: false,
            error: None,
        }
    }

    pub fn ttft(&self) -> Option<Duration> {
        self.ttft
    }

    /// The time of the last content-bearing delta, if any (for the between-tokens timeout).
    pub fn last_content(&self) -> Option<Duration> {
        self.content_at.last().copied()
    }

    /// The stream has said its last word (`message_stop`, `[DONE]`, or an error).
    pub fn finished(&self) -> bool {
        self.done || self.error.is_some()
    }

    fn content(&mut self, at: Duration) {
        self.ttft.get_or_insert(at);
        self.content_at.push(at);
    }

    /// One SSE event, received `at` after the request's start.
    pub fn on_event(&mut self, ev: &SseEvent, at: Duration) {
        if self.finished() {
            return; // nothing after the end counts
        }
        match self.provider {
            Provider::Anthropic => self.anthropic(ev, at),
            Provider::OpenAi => self.openai(ev, at),
        }
    }

    fn anthropic(&mut self, ev: &SseEvent, at: Duration) {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        // The JSON `type` is authoritative; the `event:` line repeats it.
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(&ev.event);
        match kind {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.anthropic_usage(u);
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let has_content = non_empty_str(d.get("text"))
                    || non_empty_str(d.get("thinking"))
                    || non_empty_str(d.get("partial_json"));
                if has_content {
                    self.content(at);
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.anthropic_usage(u);
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let e = v.get("error").unwrap_or(&Value::Null);
                let kind = e.get("type").and_then(Value::as_str).unwrap_or("error");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                self.error = Some(format!("{kind}: {msg}"));
            }
            _ => {} // content_block_start/stop, ping, unknown future events
        }
    }

    /// Anthropic's counts are cumulative totals so far: assign, never add.
    fn anthropic_usage(&mut self, u: &Value) {
        if let Some(n) = count(u, "input_tokens") {
            self.usage.input = n;
        }
        if let Some(n) = count(u, "cache_read_input_tokens") {
            self.usage.cache_read = n;
        }
        if let Some(n) = count(u, "cache_creation_input_tokens") {
            self.usage.cache_write = n;
        }
        if let Some(n) = count(u, "output_tokens") {
            self.usage.output = n;
            self.output_reported = true;
        }
    }

    fn openai(&mut self, ev: &SseEvent, at: Duration) {
        if ev.data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            let kind = e
                .get("type")
                .or_else(|| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("error");
            self.error = Some(format!("{kind}: {msg}"));
            return;
        }
        let choices = v.get("choices").and_then(Value::as_array);
        let has_content = choices.is_some_and(|cs| {
            cs.iter().any(|c| {
                let d = c.get("delta").unwrap_or(&Value::Null);
                non_empty_str(d.get("content"))
                    || non_empty_str(d.get("refusal"))
                    || non_empty_str(d.get("reasoning_content"))
                    || d.get("tool_calls")
                        .and_then(Value::as_array)
                        .is_some_and(|calls| {
                            calls
                                .iter()
                                .any(|t| non_empty_str(t.pointer("/function/arguments")))
                        })
            })
        });
        if has_content {
            self.content(at);
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.openai_usage(u);
        }
    }

    fn openai_usage(&mut self, u: &Value) {
        let cached = u
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if let Some(n) = count(u, "prompt_tokens") {
            self.usage.input = n.saturating_sub(cached);
            self.usage.cache_read = cached;
        }
        if let Some(n) = count(u, "completion_tokens") {
            self.usage.output = n;
            self.output_reported = true;
        }
    }

    /// The body ended: what the request measured, or how it failed.
    pub fn finish(self) -> Result<Measurement, StreamFailure> {
        if let Some(e) = self.error {
            return Err(StreamFailure::ErrorEvent(e));
        }
        if !self.done {
            return Err(StreamFailure::Truncated);
        }
        let mut usage = self.usage;
        let estimated = !self.output_reported;
        if estimated {
            usage.output = self.content_at.len() as u64;
        }
        Ok(Measurement {
            ttft: self.ttft,
            content_at: self.content_at,
            usage,
            estimated,
        })
    }
}

/// A `stream: false` response body: its usage, or why it is not a success.
pub fn decode_json(provider: Provider, body: &[u8]) -> Result<Measurement, StreamFailure> {
    let v: Value = serde_json::from_slice(body).map_err(|_| StreamFailure::Truncated)?;
    let mut d = Decoder::new(provider);
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(StreamFailure::ErrorEvent(e.to_string()));
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        match provider {
            Provider::Anthropic => d.anthropic_usage(u),
            Provider::OpenAi => d.openai_usage(u),
        }
    }
    let mut usage = d.usage;
    let estimated = !d.output_reported;
    if estimated {
        // No usage: a rough count, four characters a token, of the returned text.
        let text_len = match provider {
            Provider::Anthropic => v
                .get("content")
                .and_then(Value::as_array)
                .map(|blocks| {
                    blocks
                        .iter()
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .map(str::len)
                        .sum::<usize>()
                })
                .unwrap_or(0),
            Provider::OpenAi => v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map_or(0, str::len),
        };
        usage.output = text_len.div_ceil(4) as u64;
    }
    Ok(Measurement {
        ttft: None,
        content_at: Vec::new(),
        usage,
        estimated,
    })
}

/// Seconds from a `retry-after` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn retry_after_secs(value: &str) -> Option<f64> {
    crate::http_date::retry_after(value, std::time::SystemTime::now()).map(|d| d.as_secs_f64())
}

/// Cost histogram unit: nano-dollars, so a $0.00001 request and a $50 one both fit at three
/// significant digits.
const NANO_USD: f64 = 1e9;

fn cost_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant bounds are valid")
}

/// One model of a fallback chain, as measured by one thread.
#[derive(Clone)]
pub struct TierStats {
    pub served: u64,
    pub failed_over: u64,
    pub latency: Histogram<u64>,
    pub lost_us: u64,
}

/// LLM measurements of one thread, merged like `Stats`.
#[derive(Clone)]
pub struct LlmStats {
    pub ttft: Histogram<u64>,
    pub tpot: Histogram<u64>,
    pub itl: Histogram<u64>,
    pub per_token: Histogram<u64>,
    pub tps_sum: f64,
    pub tps_n: u64,
    pub usage: Usage,
    pub estimated: u64,
    pub cost: Histogram<u64>,
    pub cost_total: f64,
    pub unpriced: u64,
    pub retry_after_n: u64,
    pub retry_after_sum: f64,
    pub retry_after_max: f64,
    pub tiers: Vec<TierStats>,
}

impl LlmStats {
    pub fn new(tiers: usize) -> LlmStats {
        LlmStats {
            ttft: new_histogram(),
            tpot: new_histogram(),
            itl: new_histogram(),
            per_token: new_histogram(),
            tps_sum: 0.0,
            tps_n: 0,
            usage: Usage::default(),
            estimated: 0,
            cost: cost_histogram(),
            cost_total: 0.0,
            unpriced: 0,
            retry_after_n: 0,
            retry_after_sum: 0.0,
            retry_after_max: 0.0,
            tiers: (0..tiers)
                .map(|_| TierStats {
                    served: 0,
                    failed_over: 0,
                    latency: new_histogram(),
                    lost_us: 0,
                })
                .collect(),
        }
    }

    /// One successful request: `e2e` from its start to the last byte, served by model `tier`
    /// after `lost` in failed attempts on earlier models.
    pub fn record_success(
        &mut self,
        m: &Measurement,
        e2e: Duration,
        tier: usize,
        lost: Duration,
        price: Option<&Price>,
    ) {
        let out = m.usage.output;
        if let Some(ttft) = m.ttft {
            let _ = self.ttft.record(micros(ttft));
            if out > 1 {
                let tpot = e2e.saturating_sub(ttft) / (out - 1).min(u32::MAX as u64) as u32;
                let _ = self.tpot.record(micros(tpot));
            }
        }
        for w in m.content_at.windows(2) {
            let _ = self.itl.record(micros(w[1].saturating_sub(w[0])));
        }
        if out > 0 {
            let _ = self
                .per_token
                .record(micros(e2e / out.min(u32::MAX as u64) as u32));
            self.tps_sum += out as f64 / e2e.as_secs_f64().max(1e-9);
            self.tps_n += 1;
        }
        self.usage.input += m.usage.input;
        self.usage.output += out;
        self.usage.cache_read += m.usage.cache_read;
        self.usage.cache_write += m.usage.cache_write;
        if m.estimated {
            self.estimated += 1;
        }
        match price {
            Some(p) => {
                let usd = p.cost(m.usage.input, out, m.usage.cache_read, m.usage.cache_write);
                self.cost_total += usd;
                let _ = self
                    .cost
                    .record(((usd * NANO_USD).round() as u64).clamp(1, 100_000_000_000));
            }
            None => self.unpriced += 1,
        }
        if let Some(t) = self.tiers.get_mut(tier) {
            t.served += 1;
            let _ = t.latency.record(micros(e2e));
            t.lost_us += lost.as_micros() as u64;
        }
    }

    pub fn record_retry_after(&mut self, secs: f64) {
        self.retry_after_n += 1;
        self.retry_after_sum += secs;
        self.retry_after_max = self.retry_after_max.max(secs);
    }

    pub fn merge(&mut self, o: &LlmStats) {
        for (a, b) in [
            (&mut self.ttft, &o.ttft),
            (&mut self.tpot, &o.tpot),
            (&mut self.itl, &o.itl),
            (&mut self.per_token, &o.per_token),
            (&mut self.cost, &o.cost),
        ] {
            let _ = a.add(b);
        }
        self.tps_sum += o.tps_sum;
        self.tps_n += o.tps_n;
        self.usage.input += o.usage.input;
        self.usage.output += o.usage.output;
        self.usage.cache_read += o.usage.cache_read;
        self.usage.cache_write += o.usage.cache_write;
        self.estimated += o.estimated;
        self.cost_total += o.cost_total;
        self.unpriced += o.unpriced;
        self.retry_after_n += o.retry_after_n;
        self.retry_after_sum += o.retry_after_sum;
        self.retry_after_max = self.retry_after_max.max(o.retry_after_max);
        for (a, b) in self.tiers.iter_mut().zip(&o.tiers) {
            a.served += b.served;
            a.failed_over += b.failed_over;
            let _ = a.latency.add(&b.latency);
            a.lost_us += b.lost_us;
        }
    }

    /// The record of one endpoint; `elapsed_s` is its measured time.
    pub fn to_record(&self, plan: &LlmPlan, elapsed_s: f64) -> LlmRecord {
        let priced = self.cost.len();
        let cost = (priced > 0).then(|| {
            let usd = |q: f64| self.cost.value_at_quantile(q) as f64 / NANO_USD;
            let mean = self.cost_total / priced as f64;
            CostRecord {
                total_usd: self.cost_total,
                p50_usd: usd(0.5),
                p95_usd: usd(0.95),
                per_1k_usd: mean * 1000.0,
                monthly_usd: plan.daily_requests.map(|d| mean * d as f64 * 30.0),
                daily_requests: plan.daily_requests,
                unpriced_requests: self.unpriced,
            }
        });
        LlmRecord {
            provider: plan.provider.name().into(),
            models: plan.models.clone(),
            fallback: plan.fallback,
            stream: plan.stream,
            ttft: LatencySummary::from_histogram(&self.ttft),
            tpot: LatencySummary::percentiles_of(&self.tpot),
            itl: LatencySummary::percentiles_of(&self.itl),
            time_per_token: LatencySummary::from_histogram(&self.per_token),
            output_tps_mean: if self.tps_n > 0 {
                self.tps_sum / self.tps_n as f64
            } else {
                0.0
            },
            output_tps_aggregate: self.usage.output as f64 / elapsed_s.max(1e-9),
            input_tokens: self.usage.input,
            output_tokens: self.usage.output,
            cache_read_tokens: self.usage.cache_read,
            cache_write_tokens: self.usage.cache_write,
            estimated_requests: self.estimated,
            cost,
            retry_after: (self.retry_after_n > 0).then(|| RetryAfterRecord {
                count: self.retry_after_n,
                mean_s: self.retry_after_sum / self.retry_after_n as f64,
                max_s: self.retry_after_max,
            }),
            tiers: if plan.fallback {
                self.tiers
                    .iter()
                    .zip(&plan.models)
                    .map(|(t, model)| {
                        let ms = |q: f64| {
                            if t.latency.is_empty() {
                                0.0
                            } else {
                                t.latency.value_at_quantile(q) as f64 / 1000.0
                            }
                        };
                        TierRecord {
                            model: model.clone(),
                            served: t.served,
                            failed_over: t.failed_over,
                            p50_ms: ms(0.5),
                            p95_ms: ms(0.95),
                            failover_ms_mean: if t.served > 0 {
                                t.lost_us as f64 / 1000.0 / t.served as f64
                            } else {
                                0.0
                            },
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sse::SseParser;
    use super::*;

    /// Feed a recorded-shape stream in one frame per event, each frame `step` ms after the last.
    fn run(provider: Provider, stream: &str, step_ms: u64) -> Result<Measurement, StreamFailure> {
        let mut p = SseParser::new();
        let mut d = Decoder::new(provider);
        let mut events = Vec::new();
        for (i, frame) in stream.split_inclusive("\n\n").enumerate() {
            p.feed(frame.as_bytes(), &mut events);
            for ev in events.drain(..) {
                d.on_event(&ev, Duration::from_millis((i as u64 + 1) * step_ms));
            }
        }
        d.finish()
    }

    /// The shape of a real Anthropic Messages stream (abridged ids), including a ping and a
    /// usage-bearing message_delta.
    pub const ANTHROPIC: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there, friend\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    pub const OPENAI: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":130,\"completion_tokens\":2,\"total_tokens\":132,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn anthropic_ttft_is_the_first_text_delta_and_usage_is_assigned() {
        let m = run(Provider::Anthropic, ANTHROPIC, 10).unwrap();
        // message_start (10), block start (20), ping (30), first delta at 40 ms.
        assert_eq!(m.ttft, Some(Duration::from_millis(40)));
        assert_eq!(m.content_at.len(), 2);
        // output_tokens: 1 in message_start, then the cumulative 15: assigned, not added (16).
        assert_eq!(
            m.usage,
            Usage {
                input: 25,
                output: 15,
                cache_read: 100,
                cache_write: 3
            }
        );
        assert!(!m.estimated);
    }

    #[test]
    fn openai_ttft_skips_the_role_prelude_and_cached_tokens_are_split_out() {
        let m = run(Provider::OpenAi, OPENAI, 10).unwrap();
        assert_eq!(m.ttft, Some(Duration::from_millis(20)));
        assert_eq!(m.usage.input, 30);
        assert_eq!(m.usage.cache_read, 100);
        assert_eq!(m.usage.output, 2);
        assert!(!m.estimated);
    }

    #[test]
    fn without_usage_deltas_are_counted_and_marked_estimated() {
        let no_usage: String = OPENAI
            .split_inclusive("\n\n")
            .filter(|f| !f.contains("\"usage\":{"))
            .collect();
        let m = run(Provider::OpenAi, &no_usage, 10).unwrap();
        assert!(m.estimated);
        assert_eq!(m.usage.output, 2);
        let no_delta_usage: String = ANTHROPIC
            .split_inclusive("\n\n")
            .filter(|f| !f.contains("usage"))
            .collect();
        let m = run(Provider::Anthropic, &no_delta_usage, 10).unwrap();
        assert!(m.estimated);
        assert_eq!(m.usage.output, 2);
    }

    #[test]
    fn thinking_and_tool_input_deltas_are_content_signatures_are_not() {
        let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"abc\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\"\"}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let m = run(Provider::Anthropic, s, 10).unwrap();
        assert_eq!(m.ttft, Some(Duration::from_millis(30)));
        assert_eq!(m.content_at.len(), 2);
        let tool = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n\
data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\ndata: [DONE]\n\n";
        let m = run(Provider::OpenAi, tool, 10).unwrap();
        assert_eq!(m.ttft, Some(Duration::from_millis(20)));
    }

    #[test]
    fn error_events_and_truncation_are_failures() {
        let overloaded = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(
            run(Provider::Anthropic, overloaded, 1),
            Err(StreamFailure::ErrorEvent(
                "overloaded_error: Overloaded".into()
            ))
        );
        let cut = ANTHROPIC.split("event: message_stop").next().unwrap();
        assert_eq!(
            run(Provider::Anthropic, cut, 1),
            Err(StreamFailure::Truncated)
        );
        let cut = OPENAI.split("data: [DONE]").next().unwrap();
        assert_eq!(run(Provider::OpenAi, cut, 1), Err(StreamFailure::Truncated));
        let err = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"server had an error\",\"type\":\"server_error\"}}\n\n";
        assert_eq!(
            run(Provider::OpenAi, err, 1),
            Err(StreamFailure::ErrorEvent(
                "server_error: server had an error".into()
            ))
        );
    }

    #[test]
    fn non_streaming_bodies_give_usage() {
        let a = br#"{"id":"msg","type":"message","content":[{"type":"text","text":"Hi"}],"usage":{"input_tokens":12,"output_tokens":7,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}"#;
        let m = decode_json(Provider::Anthropic, a).unwrap();
        assert_eq!((m.usage.input, m.usage.output, m.estimated), (12, 7, false));
        let o = br#"{"choices":[{"message":{"role":"assistant","content":"Hello there"}}],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#;
        let m = decode_json(Provider::OpenAi, o).unwrap();
        assert_eq!((m.usage.input, m.usage.output), (9, 3));
        let o = br#"{"choices":[{"message":{"role":"assistant","content":"Hello there"}}]}"#;
        let m = decode_json(Provider::OpenAi, o).unwrap();
        assert!(m.estimated);
        assert_eq!(m.usage.output, 3);
    }

    #[test]
    fn one_request_gives_tpot_itl_tok_s_and_cost_as_defined() {
        let ms = Duration::from_millis;
        let m = Measurement {
            ttft: Some(ms(300)),
            content_at: vec![ms(300), ms(310), ms(320), ms(330)],
            usage: Usage {
                input: 1000,
                output: 4,
                cache_read: 2000,
                cache_write: 0,
            },
            estimated: false,
        };
        let price = Price {
            input: 3.0,
            output: 15.0,
            cache_read: 0.3,
            cache_write: 3.75,
        };
        let mut s = LlmStats::new(1);
        s.record_success(&m, ms(340), 0, Duration::ZERO, Some(&price));
        // TPOT = (E2E − TTFT) / (tokens − 1) = 40 ms / 3.
        let tpot = s.tpot.value_at_quantile(0.5);
        assert!((13_320..=13_340).contains(&tpot), "{tpot}");
        assert_eq!(s.itl.len(), 3);
        assert_eq!(s.itl.value_at_quantile(1.0) / 100, 100, "10 ms gaps");
        assert_eq!(
            s.per_token.value_at_quantile(0.5) / 100,
            850,
            "85 ms per token"
        );
        assert!((s.tps_sum - 4.0 / 0.34).abs() < 1e-9);
        // 1000 × $3 + 4 × $15 + 2000 × $0.3 per million.
        assert!((s.cost_total - 0.00366).abs() < 1e-12);
        let plan = LlmPlan {
            provider: Provider::Anthropic,
            models: vec!["m".into()],
            fallback: false,
            bodies: vec![],
            headers: vec![],
            stream: true,
            max_tokens: 8,
            timeouts: crate::config::LlmTimeouts {
                connect: ms(1),
                first_token: ms(1),
                between_tokens: ms(1),
            },
            prices: vec![Some(price)],
            daily_requests: Some(1000),
        };
        let r = s.to_record(&plan, 2.0);
        assert_eq!(r.output_tokens, 4);
        assert!(
            (r.output_tps_aggregate - 2.0).abs() < 1e-9,
            "4 tokens in 2 s"
        );
        let c = r.cost.unwrap();
        assert!((c.per_1k_usd - 3.66).abs() < 1e-9);
        assert!((c.monthly_usd.unwrap() - 0.00366 * 1000.0 * 30.0).abs() < 1e-9);
        assert!((c.p50_usd - 0.00366).abs() < 0.00001);
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(retry_after_secs(" 12 "), Some(12.0));
        assert_eq!(
            retry_after_secs("1.5"),
            None,
            "delta-seconds is digits only"
        );
        assert_eq!(
            retry_after_secs("1e20"),
            None,
            "issue 12: this panicked a load thread"
        );
        assert_eq!(
            retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(0.0),
            "a date in the past: retry now"
        );
        assert_eq!(retry_after_secs("whenever"), None);
    }
}
