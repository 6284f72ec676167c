//! The provider room: each LLM wire protocol, whole.
//!
//! gate benchmarks two APIs, Anthropic Messages ([`anthropic`]) and OpenAI chat completions
//! ([`openai`]). Everything that differs between them lives here, one file each: the request
//! body and headers, what a status other than 200 means, how the SSE events of a 200 stream
//! decode into content deltas, usage and an ending, and the usage of a non-streamed body. The
//! rest of gate reaches a protocol through one trait, [`Protocol`]: `config` renders bodies and
//! headers with it once per plan; the engine classifies statuses and decodes bodies with it
//! (through [`Decoder`] and [`decode_json`]) on every request. The SSE framing is the same for
//! both ([`sse`]); Retry-After is read here ([`retry_after`]).
//!
//! The wire types (paths, header names, event names, body and usage structs, error shapes,
//! status codes) are public so that the mock provider of the sample service (`demo::llm`)
//! speaks the protocols from these definitions instead of from a copy that could drift.
//!
//! Files: `protocol.rs` holds the trait and the types every protocol shares, `anthropic.rs`
//! and `openai.rs` implement it, `decode.rs` turns what a protocol says into a measurement,
//! `sse.rs` frames events; this file only names the providers. The children never import it.
//!
//! Knows nothing of scheduling, connections or storage; times come in as arguments.

pub mod anthropic;
mod decode;
pub mod openai;
mod protocol;
pub mod ratelimit;
pub mod sse;

pub use decode::{Decoder, Measurement, StreamFailure, decode_json};
pub use protocol::{
    Block, Chat, Content, Decoded, Message, Protocol, RATE_LIMITED, Reply, Status, Usage,
    UsageReport, retry_after, retry_after_secs, to_json,
};
pub use ratelimit::RateLimits;

/// The wire format of an LLM API: a scenario's `provider:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// OpenAI chat completions (`POST /v1/chat/completions`).
    OpenAi,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Anthropic, Provider::OpenAi];

    /// The name in scenario files and records.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn protocol(self) -> &'static dyn Protocol {
        match self {
            Provider::Anthropic => &anthropic::Anthropic,
            Provider::OpenAi => &openai::OpenAi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_name(p.name()), Some(p));
        }
        assert_eq!(Provider::from_name("gemini"), None);
    }

    #[test]
    fn statuses_mean_the_same_to_gate_and_to_the_mock() {
        let a = Provider::Anthropic.protocol();
        let o = Provider::OpenAi.protocol();
        assert_eq!(a.status(anthropic::OVERLOADED), Status::Overloaded);
        assert_eq!(o.status(openai::OVERLOADED), Status::Overloaded);
        // OpenAI has no 529 of its own, but a gateway's 529 is still overload.
        assert_eq!(o.status(529), Status::Overloaded);
        assert_eq!(a.status(503), Status::ServerError);
        for p in [a, o] {
            assert_eq!(p.status(RATE_LIMITED), Status::RateLimited);
            assert_eq!(p.status(500), Status::ServerError);
            assert_eq!(p.status(404), Status::ClientError);
            assert_eq!(p.status(302), Status::Unexpected);
        }
    }

    #[test]
    fn retry_after_reads_seconds_of_rate_limits_only() {
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
        assert_eq!(retry_after(Status::RateLimited, Some("3")), Some(3.0));
        assert_eq!(retry_after(Status::Overloaded, Some("3")), None);
        assert_eq!(retry_after(Status::RateLimited, None), None);
    }
}
