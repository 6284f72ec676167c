//! The one trait the rest of gate speaks to a provider through, and the types every protocol
//! shares: what a request asks ([`Chat`]), what a status means ([`Status`]), what an event or
//! a body says ([`Decoded`], [`Reply`], [`UsageReport`]), the tokens a request is priced by
//! ([`Usage`]), the prompt shapes a reader of requests needs ([`Content`], [`Message`]), and
//! Retry-After.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::sse;

/// One LLM wire protocol: all that gate does differently per provider.
pub trait Protocol: Sync {
    /// The endpoint, under the target's base path.
    fn path(&self) -> &'static str;
    /// The JSON request body for one model and prompt.
    fn body(&self, chat: &Chat<'_>) -> Bytes;
    /// The headers every request carries before the scenario's own: content type, `accept`
    /// for a stream, the API version.
    fn headers(&self, stream: bool) -> Vec<(HeaderName, HeaderValue)>;
    /// The header that carries the API key, and its value.
    fn api_key(&self, key: &str) -> (HeaderName, String);
    /// What a status other than 200 means.
    fn status(&self, status: u16) -> Status;
    /// What one SSE event of a 200 stream says.
    fn event(&self, event: &sse::SseEvent) -> Decoded;
    /// What the whole JSON body of a `stream: false` 200 response says.
    fn reply(&self, body: &Value) -> Reply;
}

/// What one request asks: the parts of the body a scenario sets.
#[derive(Clone, Copy, Debug)]
pub struct Chat<'a> {
    pub model: &'a str,
    pub system: Option<&'a str>,
    /// A `messages` array of `{ role, content }` objects, passed through as written.
    pub messages: &'a Value,
    pub max_tokens: u32,
    pub stream: bool,
}

/// What a status other than 200 means, whichever code the provider chose for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The client's own rate limit; `retry-after` says when to come back.
    RateLimited,
    /// The provider itself is saturated.
    Overloaded,
    /// Another 5xx.
    ServerError,
    /// Another 4xx.
    ClientError,
    /// Not an error status at all (1xx, 3xx, a 2xx other than 200).
    Unexpected,
}

/// 429 Too Many Requests, as both providers use it for rate limits.
pub const RATE_LIMITED: u16 = 429;
/// 529, the unregistered "site overloaded": Anthropic's overload status.
pub const OVERLOADED: u16 = 529;

impl Status {
    /// The meanings both providers share. 529 is Anthropic's own "overloaded"; gateways in
    /// front of other providers use it too, so it means overload whoever sends it.
    pub fn common(status: u16) -> Status {
        match status {
            RATE_LIMITED => Status::RateLimited,
            OVERLOADED => Status::Overloaded,
            500..=599 => Status::ServerError,
            400..=499 => Status::ClientError,
            _ => Status::Unexpected,
        }
    }
}

/// Seconds a rate-limited client is asked to wait: the `retry-after` header of a
/// [`Status::RateLimited`] answer, in delta-seconds or as an HTTP-date (RFC 9110 §10.2.3).
/// Other answers' pauses are not recorded.
pub fn retry_after(status: Status, header: Option<&str>) -> Option<f64> {
    if status == Status::RateLimited {
        header.and_then(retry_after_secs)
    } else {
        None
    }
}

/// Seconds from a `retry-after` value: delta-seconds or an HTTP-date.
pub fn retry_after_secs(value: &str) -> Option<f64> {
    crate::http_date::retry_after(value, std::time::SystemTime::now()).map(|d| d.as_secs_f64())
}

/// What one SSE event says, in the terms of a measurement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// It carries content (text, thinking, tool input, a refusal): a token or more. The first
    /// such event is the first token; a role prelude or a ping is not.
    pub content: bool,
    /// Token counts it reported.
    pub usage: Option<UsageReport>,
    /// The stream's last word (`message_stop`, `[DONE]`).
    pub end: bool,
    /// An error inside the stream, as `kind: message`.
    pub error: Option<String>,
}

/// What a non-streamed 200 body says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub usage: Option<UsageReport>,
    /// Bytes of output text, for an estimate when there is no usage.
    pub text_bytes: usize,
}

/// Token counts one event or body reported; `None` where it said nothing. Providers report
/// totals so far, never increments, so a later report replaces an earlier one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageReport {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
}

/// Tokens of one request, the inputs of its cost. `input` excludes cache reads and writes
/// (Anthropic reports them apart; OpenAI's `prompt_tokens` includes `cached_tokens`, which
/// are subtracted), so each token is priced once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// Message content in a request: a string, or blocks (Anthropic) / parts (OpenAI) of which
/// only `text` is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    #[serde(default)]
    pub text: Option<String>,
}

/// One entry of a request's `messages`, as far as a reader of prompts needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Null for an OpenAI assistant turn that only made tool calls.
    #[serde(default)]
    pub content: Option<Content>,
}

/// A JSON value of the wire types, as text. Serializing these plain structs cannot fail; an
/// empty object is still valid JSON should that ever change.
pub fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// `T` read from a JSON object, or `None` when `v` is absent, not an object, or not shaped
/// like `T`. Providers add fields and events over time; an odd one must not cost the
/// measurement.
pub(super) fn read<T: DeserializeOwned>(v: Option<&Value>) -> Option<T> {
    v.filter(|v| v.is_object())
        .and_then(|v| T::deserialize(v).ok())
}

/// A field read when it has the expected type and ignored otherwise (a count that is not a
/// non-negative integer, say), without failing the object around it.
pub(super) fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(T::deserialize(Value::deserialize(d)?).ok())
}

/// Like [`lenient`], for a nested object: anything but an object is ignored.
pub(super) fn lenient_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(read(Some(&v)))
}

pub(super) fn non_empty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}
