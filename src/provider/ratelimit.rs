//! The providers' rate-limit headers: how much of the client's quota is left after a response.
//! Anthropic sends `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
//! remaining}`; OpenAI and most OpenAI-compatible gateways `x-ratelimit-{limit,remaining}-
//! {requests,tokens}`. A 429 follows when a remaining count reaches zero, so the lowest
//! remaining value seen is the headroom a load left.

/// The quotas gate reads, in report order.
pub const KINDS: [&str; 4] = ["requests", "tokens", "input_tokens", "output_tokens"];

/// One response's rate-limit headers: per kind of [`KINDS`], (remaining, limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimits(pub [(Option<u64>, Option<u64>); 4]);

impl RateLimits {
    pub fn read(headers: &http::HeaderMap) -> RateLimits {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut out = RateLimits::default();
        for (i, kind) in KINDS.iter().enumerate() {
            let dashed = kind.replace('_', "-");
            let anthropic = (
                num(&format!("anthropic-ratelimit-{dashed}-remaining")),
                num(&format!("anthropic-ratelimit-{dashed}-limit")),
            );
            let openai = (
                num(&format!("x-ratelimit-remaining-{dashed}")),
                num(&format!("x-ratelimit-limit-{dashed}")),
            );
            out.0[i] = (anthropic.0.or(openai.0), anthropic.1.or(openai.1));
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(r, l)| r.is_none() && l.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_families_and_ignores_what_is_not_a_count() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "anthropic-ratelimit-requests-remaining",
            "49".parse().unwrap(),
        );
        h.insert("anthropic-ratelimit-requests-limit", "50".parse().unwrap());
        h.insert(
            "anthropic-ratelimit-output-tokens-remaining",
            "7000".parse().unwrap(),
        );
        h.insert("x-ratelimit-remaining-tokens", "123".parse().unwrap());
        h.insert("x-ratelimit-limit-tokens", "soon".parse().unwrap());
        let r = RateLimits::read(&h);
        assert_eq!(r.0[0], (Some(49), Some(50)));
        assert_eq!(r.0[1], (Some(123), None));
        assert_eq!(r.0[2], (None, None));
        assert_eq!(r.0[3], (Some(7000), None));
        assert!(!r.is_empty());
        assert!(RateLimits::read(&http::HeaderMap::new()).is_empty());
    }
}
