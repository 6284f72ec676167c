//! Anthropic Messages, `POST /v1/messages`:
//! <https://docs.anthropic.com/en/api/messages>, streamed as
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>.
//!
//! A stream is `message_start` (usage: input, cache, and a first `output_tokens`),
//! `content_block_start`, `ping`, `content_block_delta` (`text_delta`, `thinking_delta`,
//! `input_json_delta` carry content; `signature_delta` does not), `content_block_stop`,
//! `message_delta` (usage with the *cumulative* `output_tokens`), `message_stop`; or an `error`
//! event at any point. Every count is a total so far. The key travels in `x-api-key`, the API
//! version in `anthropic-version`; overload is the non-standard 529.
//!
//! The `Serialize` types below are the shapes the mock provider sends. They are structs rather
//! than `json!` values so that keys come out in Anthropic's order (`"type"` first), byte for
//! byte what a real stream looks like. gate's own decoding reads a `serde_json::Value` instead,
//! so that events and fields it does not know are skipped rather than fatal.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::protocol::{
    Chat, Content, Decoded, Protocol, Reply, Status, UsageReport, lenient, non_empty_str, read,
    to_json,
};
use super::sse::{self, SseEvent};

/// The Messages API.
pub struct Anthropic;

pub const PATH: &str = "/v1/messages";
/// The API version gate speaks; the Messages API requires the header.
pub const VERSION: &str = "2023-06-01";
pub const VERSION_HEADER: &str = "anthropic-version";
pub const API_KEY_HEADER: &str = "x-api-key";
/// Anthropic's own status for "overloaded"; it is not in the IANA registry.
pub const OVERLOADED: u16 = super::protocol::OVERLOADED;

// Event names. Anthropic sets the SSE `event:` equal to the JSON `type`.
pub const MESSAGE_START: &str = "message_start";
pub const CONTENT_BLOCK_START: &str = "content_block_start";
pub const PING: &str = "ping";
pub const CONTENT_BLOCK_DELTA: &str = "content_block_delta";
pub const CONTENT_BLOCK_STOP: &str = "content_block_stop";
pub const MESSAGE_DELTA: &str = "message_delta";
pub const MESSAGE_STOP: &str = "message_stop";
pub const ERROR: &str = "error";

// `stop_reason` values.
pub const END_TURN: &str = "end_turn";
pub const MAX_TOKENS: &str = "max_tokens";

impl Protocol for Anthropic {
    fn path(&self) -> &'static str {
        PATH
    }

    fn body(&self, chat: &Chat<'_>) -> Bytes {
        Bytes::from(to_json(&MessagesRequest {
            max_tokens: chat.max_tokens,
            messages: chat.messages,
            model: chat.model.to_owned(),
            stream: Some(chat.stream),
            system: chat.system.map(|s| Content::Text(s.to_owned())),
        }))
    }

    fn headers(&self, stream: bool) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        if stream {
            out.push((ACCEPT, HeaderValue::from_static(sse::CONTENT_TYPE)));
        }
        out.push((
            HeaderName::from_static(VERSION_HEADER),
            HeaderValue::from_static(VERSION),
        ));
        out
    }

    fn api_key(&self, key: &str) -> (HeaderName, String) {
        (HeaderName::from_static(API_KEY_HEADER), key.to_owned())
    }

    fn status(&self, status: u16) -> Status {
        Status::common(status)
    }

    fn event(&self, ev: &SseEvent) -> Decoded {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return Decoded::default();
        };
        // The JSON `type` is authoritative; the `event:` line repeats it.
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(&ev.event);
        match kind {
            MESSAGE_START => Decoded {
                usage: usage(v.pointer("/message/usage")),
                ..Decoded::default()
            },
            CONTENT_BLOCK_DELTA => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                Decoded {
                    content: non_empty_str(d.get("text"))
                        || non_empty_str(d.get("thinking"))
                        || non_empty_str(d.get("partial_json")),
                    ..Decoded::default()
                }
            }
            MESSAGE_DELTA => Decoded {
                usage: usage(v.get("usage")),
                ..Decoded::default()
            },
            MESSAGE_STOP => Decoded {
                end: true,
                ..Decoded::default()
            },
            ERROR => {
                let e = v.get("error").unwrap_or(&Value::Null);
                let kind = e.get("type").and_then(Value::as_str).unwrap_or("error");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                Decoded {
                    error: Some(format!("{kind}: {msg}")),
                    ..Decoded::default()
                }
            }
            _ => Decoded::default(), // content_block_start/stop, ping, future events
        }
    }

    fn reply(&self, body: &Value) -> Reply {
        let text_bytes = body
            .get("content")
            .and_then(Value::as_array)
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .map(str::len)
                    .sum::<usize>()
            })
            .unwrap_or(0);
        Reply {
            usage: usage(body.get("usage")),
            text_bytes,
        }
    }
}

fn usage(v: Option<&Value>) -> Option<UsageReport> {
    read::<Usage>(v).map(|u| UsageReport {
        input: u.input_tokens,
        output: u.output_tokens,
        cache_read: u.cache_read_input_tokens,
        cache_write: u.cache_creation_input_tokens,
    })
}

/// The request body. `M` is the `messages` array: passed through as written by gate, read
/// as [`super::Message`]s by the mock. Fields are in alphabetical order because the body's
/// bytes are part of a scenario's definition hash, first computed from JSON with sorted keys.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessagesRequest<M> {
    pub max_tokens: u32,
    pub messages: M,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
}

/// Token counts, in a message, `message_start` or `message_delta`; each a total so far.
/// `input_tokens` excludes the cache reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

/// Every stream event, and (as `Error`) the body of an error response.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    MessageStart {
        message: MessageBody<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: TextBlock<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: TextDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopInfo,
        /// Only `output_tokens`: the cumulative count, not an increment.
        usage: Usage,
    },
    MessageStop,
    Error {
        error: ErrorDetail<'a>,
    },
}

impl Event<'_> {
    /// The SSE event name, equal to the `type` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => MESSAGE_START,
            Event::ContentBlockStart { .. } => CONTENT_BLOCK_START,
            Event::Ping => PING,
            Event::ContentBlockDelta { .. } => CONTENT_BLOCK_DELTA,
            Event::ContentBlockStop { .. } => CONTENT_BLOCK_STOP,
            Event::MessageDelta { .. } => MESSAGE_DELTA,
            Event::MessageStop => MESSAGE_STOP,
            Event::Error { .. } => ERROR,
        }
    }

    /// The event as the stream carries it.
    pub fn frame(&self) -> String {
        sse::frame(Some(self.name()), &to_json(self))
    }
}

/// A complete message (a non-streamed response), or the empty shell in `message_start`.
#[derive(Serialize)]
pub struct MessageBody<'a> {
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<TextBlock<'a>>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'static str>,
    pub usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "text")]
pub struct TextBlock<'a> {
    pub text: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "text_delta")]
pub struct TextDelta<'a> {
    pub text: &'a str,
}

#[derive(Serialize)]
pub struct StopInfo {
    pub stop_reason: &'static str,
    pub stop_sequence: Option<&'static str>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub message: &'a str,
}

/// `error.type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    OverloadedError,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::provider::{Decoder, Provider, Usage as Tokens};

    #[test]
    fn the_body_is_byte_for_byte_what_the_definition_hash_was_computed_from() {
        let messages = json!([{ "role": "user", "content": "Hi" }]);
        let chat = Chat {
            model: "m-a",
            system: Some("terse"),
            messages: &messages,
            max_tokens: 64,
            stream: true,
        };
        assert_eq!(
            Anthropic.body(&chat),
            r#"{"max_tokens":64,"messages":[{"content":"Hi","role":"user"}],"model":"m-a","stream":true,"system":"terse"}"#
        );
        let chat = Chat {
            system: None,
            stream: false,
            ..chat
        };
        assert_eq!(
            Anthropic.body(&chat),
            r#"{"max_tokens":64,"messages":[{"content":"Hi","role":"user"}],"model":"m-a","stream":false}"#
        );
    }

    #[test]
    fn what_the_mock_sends_decodes_to_what_it_meant() {
        let usage = Usage {
            input_tokens: Some(11),
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(0),
            output_tokens: Some(1),
        };
        let events = [
            Event::MessageStart {
                message: MessageBody {
                    id: "msg_1".into(),
                    kind: "message",
                    role: "assistant",
                    model: "m",
                    content: Vec::new(),
                    stop_reason: None,
                    stop_sequence: None,
                    usage,
                },
            },
            Event::Ping,
            Event::ContentBlockDelta {
                index: 0,
                delta: TextDelta { text: "Hi" },
            },
            Event::MessageDelta {
                delta: StopInfo {
                    stop_reason: END_TURN,
                    stop_sequence: None,
                },
                usage: Usage {
                    output_tokens: Some(7),
                    ..Usage::default()
                },
            },
            Event::MessageStop,
        ];
        let stream: String = events.iter().map(Event::frame).collect();
        let mut parser = sse::SseParser::new();
        let mut parsed = Vec::new();
        parser.feed(stream.as_bytes(), &mut parsed);
        let mut d = Decoder::new(Provider::Anthropic.protocol());
        for (i, ev) in parsed.iter().enumerate() {
            assert_eq!(ev.event, events[i].name());
            d.on_event(ev, Duration::from_millis(i as u64));
        }
        let m = d.finish().unwrap();
        assert_eq!(m.ttft, Some(Duration::from_millis(2)));
        assert_eq!(
            m.usage,
            Tokens {
                input: 11,
                output: 7,
                cache_read: 0,
                cache_write: 0
            }
        );
        let error = Event::Error {
            error: ErrorDetail {
                kind: ErrorType::OverloadedError,
                message: "Overloaded",
            },
        };
        assert_eq!(
            to_json(&error),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        );
        let decoded = Anthropic.event(&SseEvent {
            event: ERROR.into(),
            data: to_json(&error),
            id: String::new(),
        });
        assert_eq!(
            decoded.error.as_deref(),
            Some("overloaded_error: Overloaded")
        );
    }

    #[test]
    fn odd_counts_are_skipped_not_fatal() {
        let u = usage(Some(
            &json!({"input_tokens": 5, "output_tokens": -1, "cache_read_input_tokens": 1.5}),
        ));
        assert_eq!(
            u,
            Some(UsageReport {
                input: Some(5),
                ..UsageReport::default()
            })
        );
        assert_eq!(usage(Some(&json!([1, 2, 3, 4]))), None);
        assert_eq!(usage(Some(&json!(null))), None);
    }
}
