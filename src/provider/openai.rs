//! OpenAI chat completions, `POST /v1/chat/completions`:
//! <https://platform.openai.com/docs/api-reference/chat/create>, streamed as
//! <https://platform.openai.com/docs/api-reference/chat-streaming>.
//!
//! A stream is unnamed `data:` events holding `chat.completion.chunk` objects. The first
//! carries only `delta.role` (a prelude, not content); content comes in `delta.content`,
//! `delta.refusal`, `delta.reasoning_content` or `delta.tool_calls[].function.arguments`. With
//! `stream_options.include_usage` a last chunk with empty `choices` carries `usage`; then
//! `data: [DONE]`. An object with an `error` key is an error inside the stream. The key
//! travels as `Authorization: Bearer …`; overload is a 503 (OpenAI has no 529).
//!
//! As in [`super::anthropic`], the `Serialize` types are what the mock provider sends, and
//! gate's decoding reads a `serde_json::Value` so that unknown fields are skipped.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protocol::{
    Chat, Decoded, Protocol, Reply, Status, UsageReport, lenient, lenient_object, non_empty_str,
    read, to_json,
};
use super::sse::{self, SseEvent};

/// Chat completions.
pub struct OpenAi;

pub const PATH: &str = "/v1/chat/completions";
/// How the key is written in the `authorization` header.
pub const BEARER: &str = "Bearer ";
/// OpenAI has no 529: its "engine is currently overloaded" is a 503.
pub const OVERLOADED: u16 = 503;
/// The data of a stream's last event.
pub const DONE: &str = "[DONE]";
/// `object` of a stream chunk and of a whole completion.
pub const CHUNK: &str = "chat.completion.chunk";
pub const COMPLETION: &str = "chat.completion";

// `finish_reason` values.
pub const STOP: &str = "stop";
pub const LENGTH: &str = "length";

impl Protocol for OpenAi {
    fn path(&self) -> &'static str {
        PATH
    }

    fn body(&self, chat: &Chat<'_>) -> Bytes {
        let mut messages: Vec<Value> = Vec::new();
        if let Some(s) = chat.system {
            messages.push(json!({ "role": "system", "content": s }));
        }
        messages.extend(chat.messages.as_array().cloned().unwrap_or_default());
        Bytes::from(to_json(&ChatRequest {
            max_completion_tokens: None,
            max_tokens: Some(chat.max_tokens),
            messages,
            model: chat.model.to_owned(),
            stream: Some(chat.stream),
            // Without this the stream carries no usage and token counts are estimates.
            stream_options: chat.stream.then_some(StreamOptions {
                include_usage: Some(true),
            }),
        }))
    }

    fn headers(&self, stream: bool) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        if stream {
            out.push((ACCEPT, HeaderValue::from_static(sse::CONTENT_TYPE)));
        }
        out
    }

    fn api_key(&self, key: &str) -> (HeaderName, String) {
        (AUTHORIZATION, format!("{BEARER}{key}"))
    }

    fn status(&self, status: u16) -> Status {
        match status {
            OVERLOADED => Status::Overloaded,
            other => Status::common(other),
        }
    }

    fn event(&self, ev: &SseEvent) -> Decoded {
        if ev.data.trim() == DONE {
            return Decoded {
                end: true,
                ..Decoded::default()
            };
        }
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return Decoded::default();
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
            return Decoded {
                error: Some(format!("{kind}: {msg}")),
                ..Decoded::default()
            };
        }
        let choices = v.get("choices").and_then(Value::as_array);
        let content = choices.is_some_and(|cs| {
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
        Decoded {
            content,
            usage: usage(v.get("usage")),
            ..Decoded::default()
        }
    }

    fn reply(&self, body: &Value) -> Reply {
        Reply {
            usage: usage(body.get("usage")),
            text_bytes: body
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map_or(0, str::len),
        }
    }
}

fn usage(v: Option<&Value>) -> Option<UsageReport> {
    read::<Usage>(v).map(|u| {
        let cached = u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        UsageReport {
            input: u.prompt_tokens.map(|n| n.saturating_sub(cached)),
            output: u.completion_tokens,
            cache_read: u.prompt_tokens.map(|_| cached),
            cache_write: None,
        }
    })
}

/// The request body. `M` is the `messages` array, as in
/// [`super::anthropic::MessagesRequest`]; fields in alphabetical order for the same reason.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChatRequest<M> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    pub messages: M,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
}

/// Token counts of a completion or of a stream's usage chunk. `prompt_tokens` includes
/// `prompt_tokens_details.cached_tokens`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_object")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default, deserialize_with = "lenient")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
}

/// One `chat.completion.chunk` of a stream.
#[derive(Serialize)]
pub struct ChatChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChunkChoice<'a>>,
    /// Absent without `include_usage`; with it, `null` on every chunk but the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
pub struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: ChunkDelta<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
pub struct ChunkDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// A whole `chat.completion` (a non-streamed response).
#[derive(Serialize)]
pub struct ChatCompletion<'a> {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [CompletionChoice; 1],
    pub usage: Usage,
}

#[derive(Serialize)]
pub struct CompletionChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
    pub refusal: Option<()>,
}

/// The body of an error response, and an error inside a stream.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<()>,
    pub code: Option<&'static str>,
}

/// A chunk, an error or [`DONE`] as the stream carries it.
pub fn frame(data: &str) -> String {
    sse::frame(None, data)
}

impl ChatChunk<'_> {
    pub fn frame(&self) -> String {
        frame(&to_json(self))
    }
}

impl ErrorBody<'_> {
    pub fn frame(&self) -> String {
        frame(&to_json(self))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::provider::{Decoder, Provider};

    #[test]
    fn the_body_is_byte_for_byte_what_the_definition_hash_was_computed_from() {
        let messages = json!([{ "role": "user", "content": "Hi" }]);
        let chat = Chat {
            model: "small",
            system: Some("terse"),
            messages: &messages,
            max_tokens: 256,
            stream: true,
        };
        assert_eq!(
            OpenAi.body(&chat),
            r#"{"max_tokens":256,"messages":[{"content":"terse","role":"system"},{"content":"Hi","role":"user"}],"model":"small","stream":true,"stream_options":{"include_usage":true}}"#
        );
        let chat = Chat {
            system: None,
            stream: false,
            ..chat
        };
        assert_eq!(
            OpenAi.body(&chat),
            r#"{"max_tokens":256,"messages":[{"content":"Hi","role":"user"}],"model":"small","stream":false}"#
        );
    }

    #[test]
    fn what_the_mock_sends_decodes_to_what_it_meant() {
        let chunk = |role, content, finish_reason, usage: Option<Usage>| ChatChunk {
            id: "c",
            object: CHUNK,
            created: 1,
            model: "m",
            choices: if usage.is_some() {
                Vec::new()
            } else {
                vec![ChunkChoice {
                    index: 0,
                    delta: ChunkDelta { role, content },
                    logprobs: None,
                    finish_reason,
                }]
            },
            usage: Some(usage),
        };
        let usage = Usage {
            prompt_tokens: Some(130),
            completion_tokens: Some(2),
            total_tokens: Some(132),
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(100),
            }),
        };
        let stream = [
            chunk(Some("assistant"), Some(""), None, None).frame(),
            chunk(None, Some("Hello"), None, None).frame(),
            chunk(None, None, Some(STOP), None).frame(),
            chunk(None, None, None, Some(usage)).frame(),
            frame(DONE),
        ]
        .concat();
        let mut parser = sse::SseParser::new();
        let mut parsed = Vec::new();
        parser.feed(stream.as_bytes(), &mut parsed);
        let mut d = Decoder::new(Provider::OpenAi.protocol());
        for (i, ev) in parsed.iter().enumerate() {
            d.on_event(ev, Duration::from_millis(i as u64));
        }
        let m = d.finish().unwrap();
        assert_eq!(
            m.ttft,
            Some(Duration::from_millis(1)),
            "the prelude is not content"
        );
        assert_eq!(
            (m.usage.input, m.usage.cache_read, m.usage.output),
            (30, 100, 2)
        );
        let error = ErrorBody {
            error: ErrorDetail {
                message: "The server is overloaded",
                kind: "server_error",
                param: None,
                code: None,
            },
        };
        let decoded = OpenAi.event(&SseEvent {
            event: "message".into(),
            data: to_json(&error),
            id: String::new(),
        });
        assert_eq!(
            decoded.error.as_deref(),
            Some("server_error: The server is overloaded")
        );
    }
}
