//! Mock LLM provider: the Anthropic Messages (`POST /v1/messages`) and OpenAI chat
//! completions (`POST /v1/chat/completions`) endpoints of the sample service.
//!
//! gate's LLM benchmarks measure time to first token, inter-token latency, output
//! tokens per second and errors by kind. Checking those numbers needs a provider
//! whose timing is known in advance and whose failures can be produced on demand,
//! on loopback, without keys or network. So this mock speaks the real wire formats
//! (SSE events exactly as the providers send them, error bodies in each provider's
//! shape) and takes its timing from a fixed table of model profiles ([`PROFILES`]).
//!
//! # Model profiles
//!
//! | model                  | prelude | TTFT   | tok/s | capacity | over capacity        | natural length | tokens per delta | ending                      |
//! |------------------------|---------|--------|-------|----------|----------------------|----------------|------------------|-----------------------------|
//! | `mock-fast`            | 20 ms   | 150 ms | 200   | 8        | 429 rate limit       | 64–256         | 1                | complete                    |
//! | `mock-smart`           | 50 ms   | 400 ms | 60    | 4        | 529 / 503 overloaded | 32–128         | 1                | complete                    |
//! | `mock-prelude`         | 1 ms    | 300 ms | 100   | 8        | 429 rate limit       | 16–64          | 1                | complete                    |
//! | `mock-chunky`          | 20 ms   | 150 ms | 200   | 8        | 429 rate limit       | 64–256         | 1, 2, 3, 1, …    | complete                    |
//! | `mock-midstream-error` | 20 ms   | 150 ms | 200   | 8        | 429 rate limit       | 64–256         | 1                | error event after 10 tokens |
//! | `mock-truncated`       | 20 ms   | 150 ms | 200   | 8        | 429 rate limit       | 64–256         | 1                | body ends after 10 tokens   |
//!
//! * **prelude**: when `message_start` + `content_block_start` + `ping` (Anthropic) or the
//!   role chunk `delta: {"role":"assistant","content":""}` (OpenAI) is sent. It carries no
//!   content, so a correct client does not count it as the first token.
//! * **TTFT**: when the first content delta is sent. Token `i` (0-based) is due at
//!   `start + TTFT + i / tok/s`, `start` being the moment the handler got the request. Every
//!   event is sent with `sleep_until` against that one instant, so timing does not drift.
//! * **natural length**: output tokens the model "wants" to write, `min + fnv1a(prompt) %
//!   (max - min + 1)`, so one prompt always gives one length. The output is `min(max_tokens,
//!   natural)`; stopping at `max_tokens` gives `stop_reason: "max_tokens"` / `finish_reason:
//!   "length"`, otherwise `"end_turn"` / `"stop"`.
//! * **tokens per delta**: `mock-chunky` packs 1, 2, 3, 1, 2, 3… tokens into successive
//!   deltas (a delta is sent when its last token is due), so counting deltas undercounts and
//!   only the usage fields are the truth. All other profiles send one token per delta, so
//!   the delta count equals the usage count.
//! * **capacity**: concurrent requests (streaming or not) per model across both APIs. A
//!   request arriving while `capacity` are in flight is refused at once: `429` with
//!   `retry-after: 1` (Anthropic `rate_limit_error`, OpenAI `rate_limit_exceeded`), or for
//!   `mock-smart` "overloaded" (Anthropic `529 overloaded_error`, OpenAI `503 server_error`;
//!   OpenAI has no 529). A slot is freed when the response ends or the client goes away.
//! * **ending**: `mock-midstream-error` sends 10 tokens, then, in the same HTTP 200 stream,
//!   Anthropic's `event: error` with an `overloaded_error` / OpenAI's `data: {"error":…}`
//!   chunk, and ends the body. `mock-truncated` sends 10 tokens and ends the body cleanly
//!   without `message_stop` / `data: [DONE]`. Without streaming, the midstream error is a 529
//!   (Anthropic) / 503 (OpenAI) at the time of the 11th token, and truncation is a 200 whose
//!   JSON body stops halfway.
//!
//! # Token counts
//!
//! One token is one word of a fixed lorem list (with its leading space after the first), so
//! the output text has exactly as many words as tokens. Input tokens are the
//! whitespace-separated words of `system` and of every message's text (string content or
//! `text` of content blocks/parts; other blocks count nothing), divided by 0.75 and rounded
//! to the nearest integer, at least 1.
//!
//! # Test headers
//!
//! Optional request headers override a profile for one request (a bad value is a 400):
//! * `x-mock-ttft-ms: N`: TTFT (the prelude moves earlier if it would come later).
//! * `x-mock-output-tokens: N` (N ≥ 1): the natural length; `max_tokens` still caps it.
//! * `x-mock-tokens-per-sec: N` (N ≥ 1): the token rate.
//!
//! # Requests
//!
//! Anthropic needs a non-empty `x-api-key` (else 401 `authentication_error`) and an
//! `anthropic-version` header (else 400), and a body with `model`, `max_tokens` (≥ 1) and
//! non-empty `messages`. OpenAI needs `Authorization: Bearer <non-empty>` (else 401), and
//! `model` and non-empty `messages`; `max_completion_tokens` or `max_tokens` is optional.
//! An unknown model is a 404 (Anthropic `not_found_error`, OpenAI `model_not_found`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper::body::Frame;
use serde::Serialize;
use tokio::time::{Instant, Sleep};

use crate::provider::{Content, Message, RATE_LIMITED, anthropic, openai, sse, to_json};

/// How a model answers a request that finds it at capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OverCapacity {
    /// 429 with `retry-after`: the client's own rate limit, worth retrying after the pause.
    RateLimited,
    /// Anthropic 529 `overloaded_error` / OpenAI 503: the provider itself is saturated.
    Overloaded,
}

/// How output tokens are grouped into content deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deltas {
    /// One token per delta: the delta count equals the usage count.
    One,
    /// 1, 2, 3, 1, 2, 3… tokens per delta: counting deltas undercounts.
    Cycle123,
}

/// How a response ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// All tokens, then the provider's closing events.
    Complete,
    /// This many tokens (at most), then an overloaded error inside the 200 stream.
    ErrorAfter(u32),
    /// This many tokens (at most), then the body ends without the closing events.
    TruncateAfter(u32),
}

/// Timing and behaviour of one mock model; see the table in the module docs.
#[derive(Debug)]
pub(crate) struct Profile {
    pub name: &'static str,
    /// When the content-free opening events are sent, from the request's arrival.
    pub prelude: Duration,
    /// When the first content delta is sent, from the request's arrival.
    pub ttft: Duration,
    pub tokens_per_sec: u32,
    /// Concurrent requests served; the next one is refused.
    pub capacity: u32,
    pub over_capacity: OverCapacity,
    /// Range of the natural output length (inclusive), picked by a hash of the prompt.
    pub min_tokens: u32,
    pub max_tokens: u32,
    pub deltas: Deltas,
    pub ending: Ending,
}

/// Tokens sent before `mock-midstream-error` fails and `mock-truncated` stops.
pub(crate) const CUT_AFTER_TOKENS: u32 = 10;

/// Seconds a rate-limited client is told to wait (`retry-after`).
pub(crate) const RETRY_AFTER_SECS: u32 = 1;

/// The models the mock serves, under both APIs.
pub(crate) const PROFILES: &[Profile] = &[
    Profile {
        name: "mock-fast",
        prelude: Duration::from_millis(20),
        ttft: Duration::from_millis(150),
        tokens_per_sec: 200,
        capacity: 8,
        over_capacity: OverCapacity::RateLimited,
        min_tokens: 64,
        max_tokens: 256,
        deltas: Deltas::One,
        ending: Ending::Complete,
    },
    Profile {
        name: "mock-smart",
        prelude: Duration::from_millis(50),
        ttft: Duration::from_millis(400),
        tokens_per_sec: 60,
        capacity: 4,
        over_capacity: OverCapacity::Overloaded,
        min_tokens: 32,
        max_tokens: 128,
        deltas: Deltas::One,
        ending: Ending::Complete,
    },
    Profile {
        name: "mock-prelude",
        prelude: Duration::from_millis(1),
        ttft: Duration::from_millis(300),
        tokens_per_sec: 100,
        capacity: 8,
        over_capacity: OverCapacity::RateLimited,
        min_tokens: 16,
        max_tokens: 64,
        deltas: Deltas::One,
        ending: Ending::Complete,
    },
    Profile {
        name: "mock-chunky",
        prelude: Duration::from_millis(20),
        ttft: Duration::from_millis(150),
        tokens_per_sec: 200,
        capacity: 8,
        over_capacity: OverCapacity::RateLimited,
        min_tokens: 64,
        max_tokens: 256,
        deltas: Deltas::Cycle123,
        ending: Ending::Complete,
    },
    Profile {
        name: "mock-midstream-error",
        prelude: Duration::from_millis(20),
        ttft: Duration::from_millis(150),
        tokens_per_sec: 200,
        capacity: 8,
        over_capacity: OverCapacity::RateLimited,
        min_tokens: 64,
        max_tokens: 256,
        deltas: Deltas::One,
        ending: Ending::ErrorAfter(CUT_AFTER_TOKENS),
    },
    Profile {
        name: "mock-truncated",
        prelude: Duration::from_millis(20),
        ttft: Duration::from_millis(150),
        tokens_per_sec: 200,
        capacity: 8,
        over_capacity: OverCapacity::RateLimited,
        min_tokens: 64,
        max_tokens: 256,
        deltas: Deltas::One,
        ending: Ending::TruncateAfter(CUT_AFTER_TOKENS),
    },
];

/// The vocabulary of the generated text; one entry is one token.
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
];

/// Request headers that override a profile for one request (see the module docs).
pub(crate) const TTFT_HEADER: &str = "x-mock-ttft-ms";
pub(crate) const OUTPUT_TOKENS_HEADER: &str = "x-mock-output-tokens";
pub(crate) const TOKENS_PER_SEC_HEADER: &str = "x-mock-tokens-per-sec";

/// The two mock endpoints, with their own in-flight counters. No fallback, so the
/// router can be merged into the sample service's.
/// Where the mock notes its requests: the sample service's request log.
pub(super) type RequestLog = Arc<dyn Fn(String) + Send + Sync>;

pub(super) fn router(log: Option<RequestLog>) -> Router {
    let mut mock = Mock::new();
    mock.log = log;
    app(Arc::new(mock))
}

fn app(mock: Arc<Mock>) -> Router {
    Router::new()
        .route(anthropic::PATH, post(messages))
        .route(openai::PATH, post(chat_completions))
        .with_state(mock)
}

fn find_profile(model: &str) -> Option<(usize, &'static Profile)> {
    PROFILES.iter().enumerate().find(|(_, p)| p.name == model)
}

// ---------------------------------------------------------------------------
// State: in-flight requests per model

struct Mock {
    /// Requests holding a [`Slot`], indexed like [`PROFILES`].
    in_flight: Vec<AtomicU32>,
    /// Makes response ids unique within the process.
    next_id: AtomicU64,
    /// The sample service's request log: one line per mock request (`llm anthropic
    /// model=M key=…WXYZ`, the key's last 4 characters), so tests can tell which provider
    /// entry a request came from.
    log: Option<RequestLog>,
}

impl Mock {
    fn new() -> Mock {
        Mock {
            in_flight: PROFILES.iter().map(|_| AtomicU32::new(0)).collect(),
            next_id: AtomicU64::new(1),
            log: None,
        }
    }

    /// Note a request in the sample service's log, with the key's last 4 characters only.
    fn note(&self, provider: &str, model: &str, key: &str) {
        if let Some(log) = &self.log {
            let tail: String = key
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            log(format!("llm {provider} model={model} key=…{tail}"));
        }
    }

    /// Take one of the model's slots, or refuse as its profile says.
    fn admit(self: &Arc<Self>, model: usize) -> Result<Slot, Refusal> {
        let (Some(profile), Some(counter)) = (PROFILES.get(model), self.in_flight.get(model))
        else {
            return Err(Refusal::Overloaded);
        };
        let admitted = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < profile.capacity).then_some(n + 1)
        });
        if let Ok(before) = admitted {
            return Ok(Slot {
                mock: Arc::clone(self),
                model,
                remaining: profile.capacity - before - 1,
                limit: profile.capacity,
            });
        }
        Err(match profile.over_capacity {
            OverCapacity::RateLimited => Refusal::RateLimited {
                model: profile.name,
                capacity: profile.capacity,
            },
            OverCapacity::Overloaded => Refusal::Overloaded,
        })
    }

    #[cfg(test)]
    fn in_flight(&self, model: &str) -> u32 {
        find_profile(model)
            .and_then(|(i, _)| self.in_flight.get(i))
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// One admitted request. Dropping it frees the slot, whether the response finished or the
/// client went away (hyper drops the body, and the slot with it, when a write fails).
struct Slot {
    mock: Arc<Mock>,
    model: usize,
    /// Free slots of the model once this one was taken, and its capacity: what the
    /// rate-limit headers report.
    remaining: u32,
    limit: u32,
}

/// The mock's token quotas follow its request quota: this many tokens per slot.
const TOKENS_PER_SLOT: u32 = 10_000;

/// The providers' rate-limit headers, from the model's free slots: `anthropic-ratelimit-*`
/// (requests, tokens, input and output tokens) or `x-ratelimit-*` (requests, tokens).
fn rate_limit_headers(response: &mut Response, anthropic_api: bool, remaining: u32, limit: u32) {
    let h = response.headers_mut();
    let quotas = [
        ("requests", remaining, limit),
        (
            "tokens",
            remaining * TOKENS_PER_SLOT,
            limit * TOKENS_PER_SLOT,
        ),
        (
            "input-tokens",
            remaining * TOKENS_PER_SLOT,
            limit * TOKENS_PER_SLOT,
        ),
        (
            "output-tokens",
            remaining * TOKENS_PER_SLOT,
            limit * TOKENS_PER_SLOT,
        ),
    ];
    for (kind, left, quota) in quotas {
        let names = if anthropic_api {
            [
                format!("anthropic-ratelimit-{kind}-remaining"),
                format!("anthropic-ratelimit-{kind}-limit"),
            ]
        } else if matches!(kind, "requests" | "tokens") {
            [
                format!("x-ratelimit-remaining-{kind}"),
                format!("x-ratelimit-limit-{kind}"),
            ]
        } else {
            continue;
        };
        for (name, value) in names.into_iter().zip([left, quota]) {
            if let Ok(name) = axum::http::HeaderName::try_from(name) {
                h.insert(name, HeaderValue::from(value));
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(counter) = self.mock.in_flight.get(self.model) {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

// ---------------------------------------------------------------------------
// Errors, rendered in each provider's shape

#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("model: {0}")]
    UnknownModel(String),
    #[error(
        "{model} is serving its limit of {capacity} concurrent requests; retry after {RETRY_AFTER_SECS} s"
    )]
    RateLimited { model: &'static str, capacity: u32 },
    #[error("Overloaded")]
    Overloaded,
}

/// A status the provider room names; 529 is not in the IANA registry, hence the fallback.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// The error response, with `retry-after` when the client should come back later.
fn error_response(
    api: Api,
    status: StatusCode,
    refusal: &Refusal,
    body: &impl Serialize,
) -> Response {
    let mut response = json_response(to_json(body));
    *response.status_mut() = status;
    if let Refusal::RateLimited { capacity, .. } = refusal {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        rate_limit_headers(&mut response, api == Api::Anthropic, 0, *capacity);
    }
    response
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAi,
}

fn anthropic_error(refusal: &Refusal) -> Response {
    use anthropic::ErrorType;
    let (code, kind) = match refusal {
        Refusal::Unauthenticated(_) => (401, ErrorType::AuthenticationError),
        Refusal::BadRequest(_) => (400, ErrorType::InvalidRequestError),
        Refusal::UnknownModel(_) => (404, ErrorType::NotFoundError),
        Refusal::RateLimited { .. } => (RATE_LIMITED, ErrorType::RateLimitError),
        Refusal::Overloaded => (anthropic::OVERLOADED, ErrorType::OverloadedError),
    };
    let message = refusal.to_string();
    let body = anthropic::Event::Error {
        error: anthropic::ErrorDetail {
            kind,
            message: &message,
        },
    };
    error_response(Api::Anthropic, status(code), refusal, &body)
}

/// OpenAI's message for an overloaded server, in a 503 or inside a stream.
const OPENAI_OVERLOADED: &str = "The server is overloaded, please try again later.";

fn openai_error(refusal: &Refusal) -> Response {
    let (code, kind, error_code, message) = match refusal {
        Refusal::Unauthenticated(_) => (
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            refusal.to_string(),
        ),
        Refusal::BadRequest(_) => (400, "invalid_request_error", None, refusal.to_string()),
        Refusal::UnknownModel(model) => (
            404,
            "invalid_request_error",
            Some("model_not_found"),
            format!("The model `{model}` does not exist or you do not have access to it."),
        ),
        Refusal::RateLimited { .. } => (
            RATE_LIMITED,
            "requests",
            Some("rate_limit_exceeded"),
            refusal.to_string(),
        ),
        Refusal::Overloaded => (
            openai::OVERLOADED,
            "server_error",
            None,
            OPENAI_OVERLOADED.to_owned(),
        ),
    };
    let body = openai::ErrorBody {
        error: openai::ErrorDetail {
            message: &message,
            kind,
            param: None,
            code: error_code,
        },
    };
    error_response(Api::OpenAi, status(code), refusal, &body)
}

// ---------------------------------------------------------------------------
// Requests

/// What the token counts are derived from: a hash (for the output length and words) and
/// the word count (for input tokens) of all prompt text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prompt {
    hash: u64,
    words: u64,
}

impl Prompt {
    fn of<'a>(contents: impl IntoIterator<Item = &'a Content>) -> Prompt {
        // Every text, each ended by a newline, hashed with FNV-1a: stable across processes and
        // Rust versions, unlike `DefaultHasher`.
        let mut bytes = Vec::new();
        let mut words = 0;
        let mut feed = |text: &str| {
            bytes.extend_from_slice(text.as_bytes());
            bytes.push(b'\n');
            words += text.split_whitespace().count() as u64;
        };
        for content in contents {
            match content {
                Content::Text(text) => feed(text),
                Content::Blocks(blocks) => blocks
                    .iter()
                    .filter_map(|b| b.text.as_deref())
                    .for_each(&mut feed),
            }
        }
        Prompt {
            hash: crate::hash::fnv1a(&bytes),
            words,
        }
    }

    /// words / 0.75, rounded to the nearest integer, at least 1.
    fn input_tokens(self) -> u32 {
        let tokens = (self.words.saturating_mul(4).saturating_add(1)) / 3;
        u32::try_from(tokens).unwrap_or(u32::MAX).max(1)
    }

    fn natural_tokens(self, profile: &Profile) -> u32 {
        let span = u64::from(profile.max_tokens.saturating_sub(profile.min_tokens)) + 1;
        // The remainder is below `span`, which fits in u32.
        profile.min_tokens + u32::try_from(self.hash % span).unwrap_or(0)
    }
}

/// Per-request profile overrides from the `x-mock-*` headers.
#[derive(Debug, Default)]
struct Overrides {
    ttft: Option<Duration>,
    output_tokens: Option<u32>,
    tokens_per_sec: Option<u32>,
}

impl Overrides {
    fn from_headers(headers: &HeaderMap) -> Result<Overrides, Refusal> {
        Ok(Overrides {
            ttft: header_number(headers, TTFT_HEADER, 0)?
                .map(|ms| Duration::from_millis(u64::from(ms))),
            output_tokens: header_number(headers, OUTPUT_TOKENS_HEADER, 1)?,
            tokens_per_sec: header_number(headers, TOKENS_PER_SEC_HEADER, 1)?,
        })
    }
}

fn header_number(headers: &HeaderMap, name: &str, min: u32) -> Result<Option<u32>, Refusal> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= min)
        .map(Some)
        .ok_or_else(|| Refusal::BadRequest(format!("{name}: expected an integer >= {min}")))
}

// ---------------------------------------------------------------------------
// Generation: what is sent when

/// One response's plan, fixed when the request is admitted.
struct Generation {
    profile: &'static Profile,
    model: String,
    id: u64,
    start: Instant,
    prelude: Duration,
    ttft: Duration,
    tokens_per_sec: u32,
    seed: u64,
    input_tokens: u32,
    output_tokens: u32,
    /// Stopped by `max_tokens` rather than at the natural end.
    hit_limit: bool,
}

/// A content delta: its due time and text (one or more tokens).
struct Delta {
    due: Instant,
    text: String,
}

impl Generation {
    fn new(
        profile: &'static Profile,
        model: String,
        id: u64,
        start: Instant,
        prompt: Prompt,
        max_tokens: Option<u32>,
        overrides: &Overrides,
    ) -> Generation {
        let natural = overrides
            .output_tokens
            .unwrap_or_else(|| prompt.natural_tokens(profile));
        let output_tokens = max_tokens.map_or(natural, |m| m.min(natural));
        let ttft = overrides.ttft.unwrap_or(profile.ttft);
        Generation {
            profile,
            model,
            id,
            start,
            prelude: profile.prelude.min(ttft),
            ttft,
            tokens_per_sec: overrides.tokens_per_sec.unwrap_or(profile.tokens_per_sec),
            seed: prompt.hash,
            input_tokens: prompt.input_tokens(),
            output_tokens,
            hit_limit: output_tokens < natural,
        }
    }

    fn prelude_due(&self) -> Instant {
        self.start + self.prelude
    }

    /// When token `i` (0-based) is due; also defined past the last token.
    fn token_due(&self, i: u32) -> Instant {
        let nanos = u64::from(i) * 1_000_000_000 / u64::from(self.tokens_per_sec.max(1));
        self.start + self.ttft + Duration::from_nanos(nanos)
    }

    fn token_text(&self, i: u32) -> String {
        let index = (self.seed.wrapping_add(u64::from(i)) % WORDS.len() as u64) as usize;
        let word = WORDS.get(index).copied().unwrap_or("lorem");
        if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        }
    }

    /// Tokens actually sent: all of them, or those before a cut.
    fn streamed_tokens(&self) -> u32 {
        match self.profile.ending {
            Ending::Complete => self.output_tokens,
            Ending::ErrorAfter(n) | Ending::TruncateAfter(n) => n.min(self.output_tokens),
        }
    }

    /// When the last token is due: the closing events go out with it.
    fn finish_due(&self) -> Instant {
        self.token_due(self.output_tokens.saturating_sub(1))
    }

    /// When a mid-stream error happens: when the first unsent token would have been due.
    fn cut_due(&self) -> Instant {
        self.token_due(self.streamed_tokens())
    }

    fn deltas(&self) -> Vec<Delta> {
        let total = self.streamed_tokens();
        let mut deltas = Vec::new();
        let mut next = 0;
        let mut size = 1;
        while next < total {
            let take = match self.profile.deltas {
                Deltas::One => 1,
                Deltas::Cycle123 => size.min(total - next),
            };
            let last = next + take - 1;
            deltas.push(Delta {
                due: self.token_due(last),
                text: (next..=last).map(|i| self.token_text(i)).collect(),
            });
            next += take;
            size = size % 3 + 1;
        }
        deltas
    }

    fn full_text(&self) -> String {
        (0..self.output_tokens)
            .map(|i| self.token_text(i))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Both APIs: admission and the answer

/// Admit a request for `model`: its generation plan and the slot it holds.
fn admit(
    mock: &Arc<Mock>,
    headers: &HeaderMap,
    model: String,
    prompt: Prompt,
    max_tokens: Option<u32>,
    start: Instant,
) -> Result<(Generation, Slot), Refusal> {
    let (index, profile) =
        find_profile(&model).ok_or_else(|| Refusal::UnknownModel(model.clone()))?;
    let overrides = Overrides::from_headers(headers)?;
    let slot = mock.admit(index)?;
    let generation = Generation::new(
        profile,
        model,
        mock.id(),
        start,
        prompt,
        max_tokens,
        &overrides,
    );
    Ok((generation, slot))
}

/// The answer to an admitted request: the event stream, or without streaming the whole body
/// (JSON text from `whole`) when the last token is due, as a real provider answers only once
/// generation is over. The slot is held until then.
async fn answer(
    generation: &Generation,
    slot: Slot,
    stream: Option<Schedule>,
    whole: impl Fn(&Generation) -> String,
) -> Result<Response, Refusal> {
    if let Some(schedule) = stream {
        return Ok(event_stream(schedule, slot));
    }
    let due = match generation.profile.ending {
        Ending::Complete => generation.finish_due(),
        Ending::ErrorAfter(_) | Ending::TruncateAfter(_) => generation.cut_due(),
    };
    tokio::time::sleep_until(due).await;
    drop(slot);
    match generation.profile.ending {
        Ending::Complete => Ok(json_response(whole(generation))),
        Ending::ErrorAfter(_) => Err(Refusal::Overloaded),
        Ending::TruncateAfter(_) => Ok(half_json(whole(generation))),
    }
}

// ---------------------------------------------------------------------------
// Anthropic Messages

async fn messages(State(mock): State<Arc<Mock>>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    anthropic_reply(&mock, &headers, &body, start)
        .await
        .unwrap_or_else(|refusal| anthropic_error(&refusal))
}

async fn anthropic_reply(
    mock: &Arc<Mock>,
    headers: &HeaderMap,
    body: &[u8],
    start: Instant,
) -> Result<Response, Refusal> {
    if headers
        .get(anthropic::API_KEY_HEADER)
        .is_none_or(|v| v.is_empty())
    {
        return Err(Refusal::Unauthenticated("x-api-key header is required"));
    }
    if headers.get(anthropic::VERSION_HEADER).is_none() {
        return Err(Refusal::BadRequest(
            "anthropic-version: header is required".to_owned(),
        ));
    }
    let request: anthropic::MessagesRequest<Vec<Message>> =
        serde_json::from_slice(body).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let key = headers
        .get(anthropic::API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    mock.note("anthropic", &request.model, key);
    if request.max_tokens == 0 {
        return Err(Refusal::BadRequest(
            "max_tokens: must be greater than or equal to 1".to_owned(),
        ));
    }
    if request.messages.is_empty() {
        return Err(Refusal::BadRequest(
            "messages: at least one message is required".to_owned(),
        ));
    }
    let prompt = Prompt::of(
        request
            .system
            .iter()
            .chain(request.messages.iter().filter_map(|m| m.content.as_ref())),
    );
    let (generation, slot) = admit(
        mock,
        headers,
        request.model,
        prompt,
        Some(request.max_tokens),
        start,
    )?;
    let stream = request
        .stream
        .unwrap_or(false)
        .then(|| anthropic_events(&generation));
    let (remaining, limit) = (slot.remaining, slot.limit);
    let mut response = answer(&generation, slot, stream, |g| {
        to_json(&anthropic_message(g, Some(&g.full_text())))
    })
    .await?;
    rate_limit_headers(&mut response, true, remaining, limit);
    Ok(response)
}

fn anthropic_stop_reason(generation: &Generation) -> &'static str {
    if generation.hit_limit {
        anthropic::MAX_TOKENS
    } else {
        anthropic::END_TURN
    }
}

/// The complete message (non-streaming), or the empty shell of `message_start`.
fn anthropic_message<'a>(
    generation: &'a Generation,
    text: Option<&'a str>,
) -> anthropic::MessageBody<'a> {
    anthropic::MessageBody {
        id: format!("msg_mock{:016x}", generation.id),
        kind: "message",
        role: "assistant",
        model: &generation.model,
        content: text
            .map(|text| anthropic::TextBlock { text })
            .into_iter()
            .collect(),
        stop_reason: text.map(|_| anthropic_stop_reason(generation)),
        stop_sequence: None,
        usage: anthropic::Usage {
            input_tokens: Some(generation.input_tokens.into()),
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(0),
            // message_start reports 1, as the real API does; the final count comes later.
            output_tokens: Some(if text.is_some() {
                generation.output_tokens.into()
            } else {
                1
            }),
        },
    }
}

fn anthropic_events(generation: &Generation) -> Schedule {
    use anthropic::{Event, StopInfo, TextBlock, TextDelta};
    let mut schedule = Schedule::default();
    let mut event = |due: Instant, event: Event<'_>| schedule.push(due, event.frame().as_bytes());
    let opened = generation.prelude_due();
    event(
        opened,
        Event::MessageStart {
            message: anthropic_message(generation, None),
        },
    );
    event(
        opened,
        Event::ContentBlockStart {
            index: 0,
            content_block: TextBlock { text: "" },
        },
    );
    event(opened, Event::Ping);
    for delta in generation.deltas() {
        event(
            delta.due,
            Event::ContentBlockDelta {
                index: 0,
                delta: TextDelta { text: &delta.text },
            },
        );
    }
    match generation.profile.ending {
        Ending::Complete => {
            let at = generation.finish_due();
            event(at, Event::ContentBlockStop { index: 0 });
            event(
                at,
                Event::MessageDelta {
                    delta: StopInfo {
                        stop_reason: anthropic_stop_reason(generation),
                        stop_sequence: None,
                    },
                    usage: anthropic::Usage {
                        output_tokens: Some(generation.output_tokens.into()),
                        ..anthropic::Usage::default()
                    },
                },
            );
            event(at, Event::MessageStop);
        }
        Ending::ErrorAfter(_) => event(
            generation.cut_due(),
            Event::Error {
                error: anthropic::ErrorDetail {
                    kind: anthropic::ErrorType::OverloadedError,
                    message: "Overloaded",
                },
            },
        ),
        Ending::TruncateAfter(_) => {}
    }
    schedule
}

// ---------------------------------------------------------------------------
// OpenAI chat completions

async fn chat_completions(
    State(mock): State<Arc<Mock>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    openai_reply(&mock, &headers, &body, start)
        .await
        .unwrap_or_else(|refusal| openai_error(&refusal))
}

async fn openai_reply(
    mock: &Arc<Mock>,
    headers: &HeaderMap,
    body: &[u8],
    start: Instant,
) -> Result<Response, Refusal> {
    let has_key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(openai::BEARER))
        .is_some_and(|key| !key.trim().is_empty());
    if !has_key {
        return Err(Refusal::Unauthenticated(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        ));
    }
    let request: openai::ChatRequest<Vec<Message>> =
        serde_json::from_slice(body).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(openai::BEARER))
        .unwrap_or("");
    mock.note("openai", &request.model, key.trim());
    if request.messages.is_empty() {
        return Err(Refusal::BadRequest(
            "messages: must contain at least one message".to_owned(),
        ));
    }
    let max_tokens = request.max_completion_tokens.or(request.max_tokens);
    if max_tokens == Some(0) {
        return Err(Refusal::BadRequest(
            "max_tokens: must be at least 1".to_owned(),
        ));
    }
    let prompt = Prompt::of(request.messages.iter().filter_map(|m| m.content.as_ref()));
    let include_usage = request
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let (generation, slot) = admit(mock, headers, request.model, prompt, max_tokens, start)?;
    let stream = request
        .stream
        .unwrap_or(false)
        .then(|| openai_events(&generation, include_usage));
    let (remaining, limit) = (slot.remaining, slot.limit);
    let mut response = answer(&generation, slot, stream, |g| {
        to_json(&openai_completion(g))
    })
    .await?;
    rate_limit_headers(&mut response, false, remaining, limit);
    Ok(response)
}

fn openai_id(generation: &Generation) -> String {
    format!("chatcmpl-mock{:016x}", generation.id)
}

fn openai_finish_reason(generation: &Generation) -> &'static str {
    if generation.hit_limit {
        openai::LENGTH
    } else {
        openai::STOP
    }
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn openai_usage(generation: &Generation) -> openai::Usage {
    let (input, output) = (generation.input_tokens, generation.output_tokens);
    openai::Usage {
        prompt_tokens: Some(input.into()),
        completion_tokens: Some(output.into()),
        total_tokens: Some(input.saturating_add(output).into()),
        prompt_tokens_details: None,
    }
}

fn openai_completion(generation: &Generation) -> openai::ChatCompletion<'_> {
    openai::ChatCompletion {
        id: openai_id(generation),
        object: openai::COMPLETION,
        created: unix_time(),
        model: &generation.model,
        choices: [openai::CompletionChoice {
            index: 0,
            message: openai::AssistantMessage {
                role: "assistant",
                content: generation.full_text(),
                refusal: None,
            },
            logprobs: None,
            finish_reason: openai_finish_reason(generation),
        }],
        usage: openai_usage(generation),
    }
}

fn openai_events(generation: &Generation, include_usage: bool) -> Schedule {
    use openai::{ChatChunk, ChunkChoice, ChunkDelta};
    let id = openai_id(generation);
    let created = unix_time();
    let chunk = |choices: Vec<ChunkChoice<'_>>, usage: Option<openai::Usage>| {
        ChatChunk {
            id: &id,
            object: openai::CHUNK,
            created,
            model: &generation.model,
            choices,
            // With `include_usage`, `null` on every chunk but the usage chunk.
            usage: include_usage.then_some(usage),
        }
        .frame()
    };
    let delta = |delta: ChunkDelta<'_>, finish_reason: Option<&'static str>| {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        chunk(vec![choice], None)
    };

    let mut schedule = Schedule::default();
    let role = ChunkDelta {
        role: Some("assistant"),
        content: Some(""),
    };
    schedule.push(generation.prelude_due(), delta(role, None).as_bytes());
    for d in generation.deltas() {
        let content = ChunkDelta {
            role: None,
            content: Some(&d.text),
        };
        schedule.push(d.due, delta(content, None).as_bytes());
    }
    match generation.profile.ending {
        Ending::Complete => {
            let at = generation.finish_due();
            let empty = ChunkDelta {
                role: None,
                content: None,
            };
            let finish = delta(empty, Some(openai_finish_reason(generation)));
            schedule.push(at, finish.as_bytes());
            if include_usage {
                let usage = chunk(Vec::new(), Some(openai_usage(generation)));
                schedule.push(at, usage.as_bytes());
            }
            schedule.push(at, openai::frame(openai::DONE).as_bytes());
        }
        Ending::ErrorAfter(_) => {
            let error = openai::ErrorBody {
                error: openai::ErrorDetail {
                    message: OPENAI_OVERLOADED,
                    kind: "server_error",
                    param: None,
                    code: None,
                },
            };
            schedule.push(generation.cut_due(), error.frame().as_bytes());
        }
        Ending::TruncateAfter(_) => {}
    }
    schedule
}

// ---------------------------------------------------------------------------
// Bodies

fn json_response(text: String) -> Response {
    ([(CONTENT_TYPE, "application/json")], text).into_response()
}

/// A 200 whose JSON body stops halfway: what a non-streaming client sees of a response
/// cut off mid-generation.
fn half_json(text: String) -> Response {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    json_response(text.get(..cut).unwrap_or_default().to_owned())
}

/// Byte chunks with the instant each is due; events due together share one chunk.
#[derive(Default)]
struct Schedule {
    chunks: VecDeque<(Instant, Vec<u8>)>,
}

impl Schedule {
    fn push(&mut self, due: Instant, bytes: &[u8]) {
        match self.chunks.back_mut() {
            Some((last, chunk)) if *last == due => chunk.extend_from_slice(bytes),
            _ => self.chunks.push_back((due, bytes.to_vec())),
        }
    }
}

fn event_stream(schedule: Schedule, slot: Slot) -> Response {
    (
        [
            (CONTENT_TYPE, sse::CONTENT_TYPE),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::new(Scheduled::new(schedule, slot)),
    )
        .into_response()
}

/// A response body that releases each chunk at its due instant. It holds the request's
/// slot, so the in-flight count drops when the last chunk is handed over or when hyper drops
/// the body because the client went away. A hand-written body rather than a stream adapter:
/// gate has no `futures` dependency, and one timer per body keeps the timing exact.
struct Scheduled {
    chunks: VecDeque<(Instant, Bytes)>,
    timer: Pin<Box<Sleep>>,
    slot: Option<Slot>,
}

impl Scheduled {
    fn new(schedule: Schedule, slot: Slot) -> Scheduled {
        let chunks: VecDeque<(Instant, Bytes)> = schedule
            .chunks
            .into_iter()
            .map(|(due, bytes)| (due, Bytes::from(bytes)))
            .collect();
        let first = chunks.front().map_or_else(Instant::now, |(due, _)| *due);
        Scheduled {
            chunks,
            timer: Box::pin(tokio::time::sleep_until(first)),
            slot: Some(slot),
        }
    }
}

impl HttpBody for Scheduled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(&(due, _)) = this.chunks.front() else {
            this.slot = None;
            return Poll::Ready(None);
        };
        if Instant::now() < due {
            if this.timer.deadline() != due {
                this.timer.as_mut().reset(due);
            }
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let Some((_, bytes)) = this.chunks.pop_front() else {
            return Poll::Ready(None);
        };
        if this.chunks.is_empty() {
            this.slot = None;
        }
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }
}
#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::header::HOST;
    use hyper::{HeaderMap, Request, StatusCode};
    use hyper_util::rt::TokioIo;
    use serde_json::{Value, json};
    use tokio::task::JoinHandle;
    use tokio::time::Instant;

    use super::{Bytes, Mock, PROFILES, Prompt, app, find_profile};

    const ANTHROPIC: &str = "/v1/messages";
    const OPENAI: &str = "/v1/chat/completions";
    const ANTHROPIC_AUTH: &[(&str, &str)] = &[
        ("x-api-key", "test-key"),
        ("anthropic-version", "2023-06-01"),
    ];
    const OPENAI_AUTH: &[(&str, &str)] = &[("authorization", "Bearer test-key")];
    /// 8 words in both request shapes below: round(8 / 0.75) = 11 input tokens.
    const INPUT_TOKENS: u64 = 11;

    fn anthropic_body(model: &str, max_tokens: u32, stream: bool) -> Value {
        json!({
            "model": model,
            "max_tokens": max_tokens,
            "stream": stream,
            "system": "You are terse.",
            "messages": [
                { "role": "user", "content": [{ "type": "text", "text": "Say something about performance gates" }] },
            ],
        })
    }

    fn openai_body(model: &str, stream: bool, include_usage: bool) -> Value {
        let mut body = json!({
            "model": model,
            "stream": stream,
            "messages": [
                { "role": "system", "content": "You are terse." },
                { "role": "user", "content": "Say something about performance gates" },
            ],
        });
        if include_usage {
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }

    async fn serve() -> (SocketAddr, Arc<Mock>) {
        let mock = Arc::new(Mock::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(axum::serve(listener, app(Arc::clone(&mock))).into_future());
        (addr, mock)
    }

    /// A response whose body has not been read yet, on its own connection.
    struct Exchange {
        sent: Instant,
        status: StatusCode,
        headers: HeaderMap,
        body: Incoming,
        conn: JoinHandle<()>,
    }

    async fn post(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Exchange {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the mock");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut request = Request::post(path)
            .header(HOST, addr.to_string())
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("valid request");
        let sent = Instant::now();
        let response = sender.send_request(request).await.expect("response head");
        let (parts, body) = response.into_parts();
        Exchange {
            sent,
            status: parts.status,
            headers: parts.headers,
            body,
            conn,
        }
    }

    impl Exchange {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }

        async fn json(self) -> Value {
            let bytes = self.body.collect().await.expect("body").to_bytes();
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        }

        /// Read the whole SSE body, noting when each event was complete.
        async fn events(mut self) -> Stream {
            let mut buffer = String::new();
            let mut events = Vec::new();
            let mut clean_end = true;
            loop {
                match self.body.frame().await {
                    None => break,
                    Some(Err(_)) => {
                        clean_end = false;
                        break;
                    }
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        buffer.push_str(std::str::from_utf8(&data).expect("UTF-8 body"));
                        let at = self.sent.elapsed();
                        while let Some(end) = buffer.find("\n\n") {
                            let block: String = buffer.drain(..end + 2).collect();
                            events.push(Event::parse(&block, at));
                        }
                    }
                }
            }
            Stream {
                events,
                rest: buffer,
                clean_end,
            }
        }
    }

    struct Event {
        /// From sending the request to the arrival of the event's last byte.
        at: Duration,
        name: Option<String>,
        data: String,
    }

    impl Event {
        fn parse(block: &str, at: Duration) -> Event {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                } else if !line.is_empty() {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event {
                at,
                name,
                data: data.join("\n"),
            }
        }

        fn json(&self) -> Value {
            serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
        }
    }

    struct Stream {
        events: Vec<Event>,
        /// Bytes after the last complete event.
        rest: String,
        clean_end: bool,
    }

    impl Stream {
        fn names(&self) -> Vec<&str> {
            self.events
                .iter()
                .map(|e| e.name.as_deref().expect("Anthropic events are named"))
                .collect()
        }

        fn text_deltas(&self) -> Vec<String> {
            self.events
                .iter()
                .filter(|e| e.name.as_deref() == Some("content_block_delta"))
                .map(|e| {
                    let delta = e.json();
                    delta["delta"]["text"]
                        .as_str()
                        .expect("text delta")
                        .to_owned()
                })
                .collect()
        }

        /// OpenAI chunks before `[DONE]`, parsed.
        fn chunks(&self) -> Vec<Value> {
            self.events
                .iter()
                .inspect(|e| assert_eq!(e.name, None, "OpenAI events are unnamed"))
                .filter(|e| e.data != "[DONE]")
                .map(Event::json)
                .collect()
        }

        fn done(&self) -> bool {
            self.events.last().is_some_and(|e| e.data == "[DONE]")
        }
    }

    fn content_deltas(chunks: &[Value]) -> Vec<String> {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn words(texts: &[String]) -> usize {
        texts.concat().split_whitespace().count()
    }

    async fn wait_for_idle(mock: &Mock, model: &str) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while mock.in_flight(model) > 0 {
            assert!(
                Instant::now() < deadline,
                "{model}: {} requests still in flight",
                mock.in_flight(model)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // -----------------------------------------------------------------------
    // Pure logic

    #[test]
    fn profile_table_is_consistent() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert_eq!(find_profile(p.name).map(|(j, _)| j), Some(i), "{}", p.name);
            assert!(p.prelude <= p.ttft && p.tokens_per_sec > 0 && p.capacity > 0);
            assert!(p.min_tokens >= 1 && p.min_tokens <= p.max_tokens);
        }
        assert!(find_profile("gpt-4o").is_none());
    }

    #[test]
    fn token_counts_are_deterministic() {
        let one = Prompt::of(&[super::Content::Text("a b c".to_owned())]);
        assert_eq!(one.words, 3);
        assert_eq!(one.input_tokens(), 4);
        let empty = Prompt::of(&[super::Content::Text(String::new())]);
        assert_eq!(empty.input_tokens(), 1);
        let two = Prompt::of(&[super::Content::Text("a b".to_owned())]);
        assert_eq!(two.input_tokens(), 3);
        assert_ne!(one.hash, two.hash);

        let (_, fast) = find_profile("mock-fast").expect("profile");
        for prompt in [one, two, empty] {
            let n = prompt.natural_tokens(fast);
            assert!((fast.min_tokens..=fast.max_tokens).contains(&n));
            assert_eq!(n, prompt.natural_tokens(fast));
        }
    }

    // -----------------------------------------------------------------------
    // Anthropic

    #[tokio::test]
    async fn anthropic_stream_follows_the_wire_format() {
        let (addr, mock) = serve().await;
        let headers = [ANTHROPIC_AUTH, &[("x-mock-output-tokens", "12")]].concat();
        let reply = post(
            addr,
            ANTHROPIC,
            &headers,
            &anthropic_body("mock-fast", 100, true),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("text/event-stream"));
        let stream = reply.events().await;
        assert!(stream.clean_end && stream.rest.is_empty());

        let mut expected = vec!["message_start", "content_block_start", "ping"];
        expected.extend(std::iter::repeat_n("content_block_delta", 12));
        expected.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(stream.names(), expected);

        let start = stream.events[0].json();
        let id = start["message"]["id"].as_str().expect("id");
        assert!(id.starts_with("msg_"), "{id}");
        assert_eq!(
            start,
            json!({
                "type": "message_start",
                "message": {
                    "id": id, "type": "message", "role": "assistant", "model": "mock-fast",
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {
                        "input_tokens": INPUT_TOKENS, "output_tokens": 1,
                        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                    },
                },
            })
        );
        assert_eq!(
            stream.events[1].json(),
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } })
        );
        assert_eq!(stream.events[2].json(), json!({ "type": "ping" }));
        let first = &stream.events[3].data;
        assert!(
            first.starts_with(
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""#
            ),
            "{first}"
        );
        let deltas = stream.text_deltas();
        assert_eq!(deltas.len(), 12);
        assert_eq!(words(&deltas), 12, "one word per token: {deltas:?}");

        let n = stream.events.len();
        assert_eq!(
            stream.events[n - 3].json(),
            json!({ "type": "content_block_stop", "index": 0 })
        );
        assert_eq!(
            stream.events[n - 2].data,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}"#
        );
        assert_eq!(
            stream.events[n - 2].json(),
            json!({
                "type": "message_delta",
                "delta": { "stop_reason": "end_turn", "stop_sequence": null },
                "usage": { "output_tokens": 12 },
            })
        );
        assert_eq!(
            stream.events[n - 1].json(),
            json!({ "type": "message_stop" })
        );
        wait_for_idle(&mock, "mock-fast").await;
    }

    #[tokio::test]
    async fn anthropic_stream_stops_at_max_tokens() {
        let (addr, _) = serve().await;
        let body = anthropic_body("mock-fast", 5, true);
        let stream = post(addr, ANTHROPIC, ANTHROPIC_AUTH, &body)
            .await
            .events()
            .await;
        assert_eq!(stream.text_deltas().len(), 5);
        let delta = stream
            .events
            .iter()
            .find(|e| e.name.as_deref() == Some("message_delta"))
            .expect("message_delta")
            .json();
        assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
        assert_eq!(delta["usage"]["output_tokens"], 5);
    }

    #[tokio::test]
    async fn anthropic_without_stream_returns_the_whole_message() {
        let (addr, _) = serve().await;
        let body = anthropic_body("mock-fast", 8, false);
        let reply = post(addr, ANTHROPIC, ANTHROPIC_AUTH, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
        // Answered once the last token is due: TTFT + 7 token intervals.
        assert!(reply.sent.elapsed() >= Duration::from_millis(150 + 35));
        let message = reply.json().await;
        assert_eq!(message["type"], "message");
        assert_eq!(message["role"], "assistant");
        assert_eq!(message["model"], "mock-fast");
        assert_eq!(message["stop_reason"], "max_tokens");
        assert_eq!(message["content"][0]["type"], "text");
        let text = message["content"][0]["text"].as_str().expect("text");
        assert_eq!(text.split_whitespace().count(), 8);
        assert_eq!(
            message["usage"],
            json!({
                "input_tokens": INPUT_TOKENS, "output_tokens": 8,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            })
        );
    }

    #[tokio::test]
    async fn anthropic_prelude_comes_at_once_and_the_first_token_at_300ms() {
        let (addr, _) = serve().await;
        let headers = [ANTHROPIC_AUTH, &[("x-mock-output-tokens", "3")]].concat();
        let body = anthropic_body("mock-prelude", 100, true);
        let stream = post(addr, ANTHROPIC, &headers, &body).await.events().await;
        let start = &stream.events[0];
        assert_eq!(start.name.as_deref(), Some("message_start"));
        assert!(start.at < Duration::from_millis(50), "{:?}", start.at);
        let first = stream
            .events
            .iter()
            .find(|e| e.name.as_deref() == Some("content_block_delta"))
            .expect("a text delta");
        assert!(
            first.at >= Duration::from_millis(295) && first.at < Duration::from_millis(400),
            "{:?}",
            first.at
        );
    }

    #[tokio::test]
    async fn header_overrides_set_ttft_and_rate_and_tokens_do_not_drift() {
        let (addr, _) = serve().await;
        let headers = [
            ANTHROPIC_AUTH,
            &[
                (super::TTFT_HEADER, "50"),
                (super::TOKENS_PER_SEC_HEADER, "100"),
                (super::OUTPUT_TOKENS_HEADER, "21"),
            ],
        ]
        .concat();
        let body = anthropic_body("mock-smart", 100, true);
        let stream = post(addr, ANTHROPIC, &headers, &body).await.events().await;
        let deltas: Vec<Duration> = stream
            .events
            .iter()
            .filter(|e| e.name.as_deref() == Some("content_block_delta"))
            .map(|e| e.at)
            .collect();
        assert_eq!(deltas.len(), 21);
        let (first, last) = (deltas[0], deltas[20]);
        assert!(first >= Duration::from_millis(50), "{first:?}");
        // 20 intervals of 10 ms, each due against the start instant, not after the last.
        let span = last - first;
        assert!(
            span >= Duration::from_millis(195) && span <= Duration::from_millis(230),
            "{span:?}"
        );
    }

    fn mock_capacity(model: &str) -> u32 {
        find_profile(model).map_or(0, |(_, p)| p.capacity)
    }

    #[tokio::test]
    async fn anthropic_over_capacity_is_429_or_529_as_the_profile_says() {
        let (addr, mock) = serve().await;
        // mock-fast: capacity 8, then 429 with retry-after.
        let headers = [ANTHROPIC_AUTH, &[("x-mock-output-tokens", "40")]].concat();
        let body = anthropic_body("mock-fast", 100, true);
        let mut open = Vec::new();
        for _ in 0..9 {
            open.push(post(addr, ANTHROPIC, &headers, &body).await);
        }
        let statuses: Vec<u16> = open.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [[200; 8].as_slice(), &[429]].concat());
        assert_eq!(mock.in_flight("mock-fast"), 8);
        // The rate-limit headers count down the free slots, to none on the 429.
        let remaining: Vec<Option<&str>> = open
            .iter()
            .map(|r| r.header("anthropic-ratelimit-requests-remaining"))
            .collect();
        let expected: Vec<String> = (0..8).rev().chain([0]).map(|n| n.to_string()).collect();
        assert_eq!(
            remaining,
            expected
                .iter()
                .map(|s| Some(s.as_str()))
                .collect::<Vec<_>>()
        );
        let capacity = mock_capacity("mock-fast").to_string();
        for r in &open {
            assert_eq!(
                r.header("anthropic-ratelimit-requests-limit"),
                Some(capacity.as_str())
            );
            assert!(
                r.header("anthropic-ratelimit-output-tokens-remaining")
                    .is_some()
            );
        }
        let refused = open.pop().expect("the ninth reply");
        assert_eq!(refused.header("retry-after"), Some("1"));
        let error = refused.json().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "rate_limit_error");
        assert!(error["error"]["message"].is_string());

        // mock-smart: capacity 4, then 529 overloaded_error.
        let body = anthropic_body("mock-smart", 100, true);
        let mut smart = Vec::new();
        for _ in 0..5 {
            smart.push(post(addr, ANTHROPIC, &headers, &body).await);
        }
        let statuses: Vec<u16> = smart.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [200, 200, 200, 200, 529]);
        let error = smart.pop().expect("the fifth reply").json().await;
        assert_eq!(
            error,
            json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })
        );

        // The streams finish (mock-fast) or are abandoned (mock-smart): all slots come back.
        for reply in open {
            let stream = reply.events().await;
            assert_eq!(stream.names().last(), Some(&"message_stop"));
        }
        for reply in smart {
            reply.conn.abort();
        }
        wait_for_idle(&mock, "mock-fast").await;
        wait_for_idle(&mock, "mock-smart").await;
    }

    #[tokio::test]
    async fn anthropic_midstream_error_arrives_inside_the_200() {
        let (addr, mock) = serve().await;
        let body = anthropic_body("mock-midstream-error", 100, true);
        let reply = post(addr, ANTHROPIC, ANTHROPIC_AUTH, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
        let stream = reply.events().await;
        assert!(stream.clean_end);
        assert_eq!(stream.text_deltas().len(), 10);
        let last = stream.events.last().expect("events");
        assert_eq!(last.name.as_deref(), Some("error"));
        // Byte for byte, keys in Anthropic's order.
        assert_eq!(
            last.data,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        );
        assert!(!stream.names().contains(&"message_stop"));
        wait_for_idle(&mock, "mock-midstream-error").await;
    }

    #[tokio::test]
    async fn anthropic_truncated_stream_ends_without_message_stop() {
        let (addr, mock) = serve().await;
        let body = anthropic_body("mock-truncated", 100, true);
        let stream = post(addr, ANTHROPIC, ANTHROPIC_AUTH, &body)
            .await
            .events()
            .await;
        assert!(stream.clean_end && stream.rest.is_empty());
        assert_eq!(stream.text_deltas().len(), 10);
        assert_eq!(stream.names().last(), Some(&"content_block_delta"));
        wait_for_idle(&mock, "mock-truncated").await;
    }

    #[tokio::test]
    async fn anthropic_refusals_have_the_anthropic_shape() {
        let (addr, _) = serve().await;
        let body = anthropic_body("mock-fast", 10, true);

        let reply = post(
            addr,
            ANTHROPIC,
            &[("anthropic-version", "2023-06-01")],
            &body,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let error = reply.json().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "authentication_error");
        assert!(error["error"]["message"].is_string());

        let reply = post(addr, ANTHROPIC, &[("x-api-key", "k")], &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json().await["error"]["type"], "invalid_request_error");

        let unknown = anthropic_body("claude-nope", 10, true);
        let reply = post(addr, ANTHROPIC, ANTHROPIC_AUTH, &unknown).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json().await["error"]["type"], "not_found_error");

        let headers = [ANTHROPIC_AUTH, &[("x-mock-output-tokens", "0")]].concat();
        let reply = post(addr, ANTHROPIC, &headers, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let reply = post(
            addr,
            ANTHROPIC,
            ANTHROPIC_AUTH,
            &json!({ "model": "mock-fast" }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json().await["error"]["type"], "invalid_request_error");
    }

    // -----------------------------------------------------------------------
    // OpenAI

    #[tokio::test]
    async fn openai_stream_follows_the_wire_format_with_usage() {
        let (addr, mock) = serve().await;
        let headers = [OPENAI_AUTH, &[("x-mock-output-tokens", "6")]].concat();
        let reply = post(
            addr,
            OPENAI,
            &headers,
            &openai_body("mock-fast", true, true),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("text/event-stream"));
        let stream = reply.events().await;
        assert!(stream.clean_end && stream.rest.is_empty() && stream.done());
        let chunks = stream.chunks();
        // Role prelude, 6 content chunks, the finish chunk, the usage chunk.
        assert_eq!(chunks.len(), 9);

        let id = chunks[0]["id"].as_str().expect("id");
        assert!(id.starts_with("chatcmpl-"), "{id}");
        for chunk in &chunks {
            assert_eq!(chunk["id"], id);
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], "mock-fast");
            assert!(chunk["created"].is_u64());
        }
        assert_eq!(
            chunks[0]["choices"],
            json!([{ "index": 0, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null }])
        );
        for chunk in &chunks[..8] {
            assert_eq!(chunk["usage"], Value::Null);
            assert!(
                chunk.get("usage").is_some(),
                "usage: null with include_usage"
            );
        }
        let deltas = content_deltas(&chunks);
        assert_eq!(deltas.len(), 6);
        assert_eq!(words(&deltas), 6);
        assert_eq!(
            chunks[7]["choices"],
            json!([{ "index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop" }])
        );
        assert_eq!(chunks[8]["choices"], json!([]));
        assert_eq!(
            chunks[8]["usage"],
            json!({ "prompt_tokens": INPUT_TOKENS, "completion_tokens": 6, "total_tokens": INPUT_TOKENS + 6 })
        );
        wait_for_idle(&mock, "mock-fast").await;
    }

    #[tokio::test]
    async fn openai_stream_without_include_usage_has_no_usage() {
        let (addr, _) = serve().await;
        let mut body = openai_body("mock-fast", true, false);
        body["max_tokens"] = json!(4);
        let stream = post(addr, OPENAI, OPENAI_AUTH, &body).await.events().await;
        assert!(stream.done());
        let chunks = stream.chunks();
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(content_deltas(&chunks).len(), 4);
        let last = chunks.last().expect("chunks");
        assert_eq!(last["choices"][0]["finish_reason"], "length");
    }

    #[tokio::test]
    async fn openai_without_stream_returns_a_chat_completion() {
        let (addr, _) = serve().await;
        let mut body = openai_body("mock-fast", false, false);
        body["max_completion_tokens"] = json!(7);
        let reply = post(addr, OPENAI, OPENAI_AUTH, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
        let completion = reply.json().await;
        assert_eq!(completion["object"], "chat.completion");
        assert_eq!(completion["choices"][0]["finish_reason"], "length");
        assert_eq!(completion["choices"][0]["message"]["role"], "assistant");
        let text = completion["choices"][0]["message"]["content"]
            .as_str()
            .expect("content");
        assert_eq!(text.split_whitespace().count(), 7);
        assert_eq!(
            completion["usage"],
            json!({ "prompt_tokens": INPUT_TOKENS, "completion_tokens": 7, "total_tokens": INPUT_TOKENS + 7 })
        );
    }

    #[tokio::test]
    async fn openai_role_prelude_comes_at_once_and_the_first_token_at_300ms() {
        let (addr, _) = serve().await;
        let headers = [OPENAI_AUTH, &[("x-mock-output-tokens", "3")]].concat();
        let body = openai_body("mock-prelude", true, true);
        let stream = post(addr, OPENAI, &headers, &body).await.events().await;
        let prelude = &stream.events[0];
        assert_eq!(prelude.json()["choices"][0]["delta"]["role"], "assistant");
        assert!(prelude.at < Duration::from_millis(50), "{:?}", prelude.at);
        let first = stream
            .events
            .iter()
            .find(|e| {
                e.data != "[DONE]"
                    && e.json()["choices"][0]["delta"]["content"]
                        .as_str()
                        .is_some_and(|t| !t.is_empty())
            })
            .expect("a content chunk");
        assert!(
            first.at >= Duration::from_millis(295) && first.at < Duration::from_millis(400),
            "{:?}",
            first.at
        );
    }

    #[tokio::test]
    async fn openai_over_capacity_is_429_or_503_as_the_profile_says() {
        let (addr, mock) = serve().await;
        let headers = [OPENAI_AUTH, &[("x-mock-output-tokens", "40")]].concat();
        let body = openai_body("mock-fast", true, true);
        let mut open = Vec::new();
        for _ in 0..9 {
            open.push(post(addr, OPENAI, &headers, &body).await);
        }
        let statuses: Vec<u16> = open.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [[200; 8].as_slice(), &[429]].concat());
        let refused = open.pop().expect("the ninth reply");
        assert_eq!(refused.header("retry-after"), Some("1"));
        let error = refused.json().await;
        assert_eq!(error["error"]["type"], "requests");
        assert_eq!(error["error"]["code"], "rate_limit_exceeded");
        assert!(error["error"]["message"].is_string());

        let body = openai_body("mock-smart", true, true);
        let mut smart = Vec::new();
        for _ in 0..5 {
            smart.push(post(addr, OPENAI, &headers, &body).await);
        }
        let statuses: Vec<u16> = smart.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [200, 200, 200, 200, 503]);
        let error = smart.pop().expect("the fifth reply").json().await;
        assert_eq!(error["error"]["type"], "server_error");

        for reply in open.into_iter().chain(smart) {
            reply.conn.abort();
        }
        wait_for_idle(&mock, "mock-fast").await;
        wait_for_idle(&mock, "mock-smart").await;
    }

    #[tokio::test]
    async fn openai_midstream_error_arrives_inside_the_200() {
        let (addr, _) = serve().await;
        let body = openai_body("mock-midstream-error", true, true);
        let reply = post(addr, OPENAI, OPENAI_AUTH, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
        let stream = reply.events().await;
        assert!(stream.clean_end && !stream.done());
        let chunks = stream.chunks();
        assert_eq!(content_deltas(&chunks).len(), 10);
        let last = chunks.last().expect("chunks");
        assert_eq!(last["error"]["type"], "server_error");
        assert!(last["error"]["message"].is_string());
    }

    #[tokio::test]
    async fn openai_truncated_stream_ends_without_done() {
        let (addr, _) = serve().await;
        let body = openai_body("mock-truncated", true, true);
        let stream = post(addr, OPENAI, OPENAI_AUTH, &body).await.events().await;
        assert!(stream.clean_end && stream.rest.is_empty() && !stream.done());
        let chunks = stream.chunks();
        assert_eq!(content_deltas(&chunks).len(), 10);
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"][0]["finish_reason"].is_null())
        );
    }

    #[tokio::test]
    async fn openai_chunky_deltas_undercount_and_usage_is_the_truth() {
        let (addr, _) = serve().await;
        let headers = [OPENAI_AUTH, &[("x-mock-output-tokens", "10")]].concat();
        let body = openai_body("mock-chunky", true, true);
        let stream = post(addr, OPENAI, &headers, &body).await.events().await;
        let chunks = stream.chunks();
        let deltas = content_deltas(&chunks);
        let sizes: Vec<usize> = deltas
            .iter()
            .map(|d| d.split_whitespace().count())
            .collect();
        assert_eq!(sizes, [1, 2, 3, 1, 2, 1]);
        let usage = &chunks.last().expect("usage chunk")["usage"];
        assert_eq!(usage["completion_tokens"], 10);
    }

    #[tokio::test]
    async fn openai_refusals_have_the_openai_shape() {
        let (addr, _) = serve().await;
        let body = openai_body("mock-fast", true, false);
        for auth in [
            &[][..],
            &[("authorization", "Basic abc")],
            &[("authorization", "Bearer ")],
        ] {
            let reply = post(addr, OPENAI, auth, &body).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            let error = reply.json().await;
            assert!(error["error"]["message"].is_string());
            assert_eq!(error["error"]["type"], "invalid_request_error");
            assert!(error["error"].get("code").is_some());
        }
        let reply = post(
            addr,
            OPENAI,
            OPENAI_AUTH,
            &openai_body("gpt-nope", true, false),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json().await["error"]["code"], "model_not_found");
    }

    // -----------------------------------------------------------------------
    // Both

    #[tokio::test]
    async fn a_client_disconnect_frees_the_slot() {
        let (addr, mock) = serve().await;
        for (path, auth, body) in [
            (
                ANTHROPIC,
                ANTHROPIC_AUTH,
                anthropic_body("mock-smart", 200, true),
            ),
            (OPENAI, OPENAI_AUTH, openai_body("mock-smart", true, false)),
        ] {
            let headers = [auth, &[("x-mock-ttft-ms", "10")]].concat();
            let mut reply = post(addr, path, &headers, &body).await;
            assert_eq!(reply.status, StatusCode::OK);
            // Wait for the prelude and a few content deltas, then hang up mid-stream.
            let mut seen = String::new();
            while seen.matches("\n\n").count() < 6 {
                let frame = reply.body.frame().await.expect("more body").expect("frame");
                if let Ok(data) = frame.into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
            assert_eq!(mock.in_flight("mock-smart"), 1, "{path}");
            reply.conn.abort();
            drop(reply);
            wait_for_idle(&mock, "mock-smart").await;
        }
    }

    #[tokio::test]
    async fn non_streaming_cuts_are_an_error_status_or_half_a_body() {
        let (addr, mock) = serve().await;
        let reply = post(
            addr,
            ANTHROPIC,
            ANTHROPIC_AUTH,
            &anthropic_body("mock-midstream-error", 100, false),
        )
        .await;
        assert_eq!(reply.status.as_u16(), 529);
        let reply = post(
            addr,
            OPENAI,
            OPENAI_AUTH,
            &openai_body("mock-midstream-error", false, false),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        let reply = post(
            addr,
            OPENAI,
            OPENAI_AUTH,
            &openai_body("mock-truncated", false, false),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        let bytes = reply.body.collect().await.expect("body").to_bytes();
        assert!(serde_json::from_slice::<Value>(&bytes).is_err());
        assert!(bytes.starts_with(b"{"));
        wait_for_idle(&mock, "mock-midstream-error").await;
        wait_for_idle(&mock, "mock-truncated").await;
    }
}
