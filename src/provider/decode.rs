//! A provider's response → one request's measurement, protocol-free.
//!
//! The [`Protocol`](super::Protocol) says what each SSE event (or a non-streamed body) means;
//! the [`Decoder`] notes, with the arrival time of the frame that completed each event, what
//! the README defines: the first content-bearing delta (TTFT), every later one (inter-token
//! latency), the provider's usage, and how the stream ended. It keeps no clock of its own.

use std::time::Duration;

use serde_json::Value;

use super::protocol::{Decoded, Protocol, Usage, UsageReport};
use super::sse::SseEvent;

/// A response that ended well, as measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// From the request's start to the first content-bearing delta; None for `stream: false`.
    pub ttft: Option<Duration>,
    /// Arrival (from the request's start) of every content-bearing delta, in order.
    pub content_at: Vec<Duration>,
    pub usage: Usage,
    /// The response carried no output usage: `usage.output` is counted from deltas (or
    /// estimated from the text) instead.
    pub estimated: bool,
}

/// How a 200 response can still fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFailure {
    /// An `error` event (Anthropic) or an `error` object (OpenAI) inside the stream.
    ErrorEvent(String),
    /// The body ended before `message_stop` / `[DONE]`.
    Truncated,
}

/// Per-request stream state.
pub struct Decoder {
    protocol: &'static dyn Protocol,
    ttft: Option<Duration>,
    content_at: Vec<Duration>,
    usage: Usage,
    output_reported: bool,
    done: bool,
    error: Option<String>,
}

impl Decoder {
    pub fn new(protocol: &'static dyn Protocol) -> Decoder {
        Decoder {
            protocol,
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

    /// One SSE event, received `at` after the request's start.
    pub fn on_event(&mut self, ev: &SseEvent, at: Duration) {
        if self.finished() {
            return; // nothing after the end counts
        }
        let Decoded {
            content,
            usage,
            end,
            error,
        } = self.protocol.event(ev);
        if error.is_some() {
            self.error = error;
            return;
        }
        if content {
            self.ttft.get_or_insert(at);
            self.content_at.push(at);
        }
        if let Some(u) = usage {
            self.report(u);
        }
        self.done |= end;
    }

    /// Counts are totals so far: assign, never add.
    fn report(&mut self, u: UsageReport) {
        if let Some(n) = u.input {
            self.usage.input = n;
        }
        if let Some(n) = u.cache_read {
            self.usage.cache_read = n;
        }
        if let Some(n) = u.cache_write {
            self.usage.cache_write = n;
        }
        if let Some(n) = u.output {
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
pub fn decode_json(
    protocol: &'static dyn Protocol,
    body: &[u8],
) -> Result<Measurement, StreamFailure> {
    let v: Value = serde_json::from_slice(body).map_err(|_| StreamFailure::Truncated)?;
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(StreamFailure::ErrorEvent(e.to_string()));
    }
    let reply = protocol.reply(&v);
    let mut d = Decoder::new(protocol);
    if let Some(u) = reply.usage {
        d.report(u);
    }
    let mut usage = d.usage;
    let estimated = !d.output_reported;
    if estimated {
        // No usage: a rough count, four characters a token, of the returned text.
        usage.output = reply.text_bytes.div_ceil(4) as u64;
    }
    Ok(Measurement {
        ttft: None,
        content_at: Vec::new(),
        usage,
        estimated,
    })
}

#[cfg(test)]
mod tests {
    use super::super::sse::SseParser;
    use super::*;
    use crate::provider::Provider;

    /// Feed a recorded-shape stream in one frame per event, each frame `step` ms after the last.
    fn run(provider: Provider, stream: &str, step_ms: u64) -> Result<Measurement, StreamFailure> {
        let mut p = SseParser::new();
        let mut d = Decoder::new(provider.protocol());
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
        let m = decode_json(Provider::Anthropic.protocol(), a).unwrap();
        assert_eq!((m.usage.input, m.usage.output, m.estimated), (12, 7, false));
        let o = br#"{"choices":[{"message":{"role":"assistant","content":"Hello there"}}],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#;
        let m = decode_json(Provider::OpenAi.protocol(), o).unwrap();
        assert_eq!((m.usage.input, m.usage.output), (9, 3));
        let o = br#"{"choices":[{"message":{"role":"assistant","content":"Hello there"}}]}"#;
        let m = decode_json(Provider::OpenAi.protocol(), o).unwrap();
        assert!(m.estimated);
        assert_eq!(m.usage.output, 3);
    }
}
