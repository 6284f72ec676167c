//! The GitHub REST client: octocrab for transport and authentication, plus the status handling
//! gate needs and octocrab's typed calls hide: retries on 5xx and rate limits that honour
//! `Retry-After` / `x-ratelimit-reset`, and a clear line between "the token may not write here"
//! (a fork PR: fall back, do not fail) and "GitHub is broken" (exit 3).
//!
//! Every request uses a path relative to the API base: octocrab only attaches the token to
//! requests for its own base URI, so an absolute URL (a `Link` header, say) would go out
//! unauthenticated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, StatusCode};
use octocrab::Octocrab;
use serde_json::Value;

use super::{GitHubConfig, PublishError};

/// How hard to try before giving up on one call.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// First backoff when the response says nothing about when to retry; doubles each time.
    pub base_delay: Duration,
    /// A wait longer than this (a rate limit resetting in 40 minutes) is not worth a CI job's
    /// time: give up and say until when.
    pub max_wait: Duration,
    /// Per-request deadline (connect + response).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A response: status, headers, and the body parsed as JSON (`Value::Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub struct GitHub {
    client: Octocrab,
    pub(super) config: GitHubConfig,
    retry: RetryPolicy,
}

impl GitHub {
    /// Must be called inside a tokio runtime (octocrab's connector spawns on it).
    pub fn new(config: GitHubConfig, retry: RetryPolicy) -> Result<GitHub, PublishError> {
        let client = super::http::client(
            config.api_url.as_str(),
            Some(config.token.expose()),
            vec![
                (
                    http::header::HeaderName::from_static("x-github-api-version"),
                    http::HeaderValue::from_static("2022-11-28"),
                ),
                (
                    http::header::ACCEPT,
                    http::HeaderValue::from_static("application/vnd.github+json"),
                ),
            ],
        )
        .map_err(|e| PublishError::Setup(format!("GitHub client for {}: {e}", config.api_url)))?;
        Ok(GitHub {
            client,
            config,
            retry,
        })
    }

    /// `/repos/OWNER/NAME` + `rest`.
    pub fn repo_path(&self, rest: &str) -> String {
        format!(
            "/repos/{}/{}{rest}",
            self.config.repository.owner, self.config.repository.name
        )
    }

    /// One call, retried per the policy. `what` names the operation in errors ("list the PR's
    /// comments"). Returns any non-retryable reply, success or not: callers decide what a 404
    /// means for them.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &'static str,
    ) -> Result<Reply, PublishError> {
        self.request(method, path, body, what, true).await
    }

    /// Like [`call`](Self::call), for a request that must not be sent twice blindly (creating a
    /// comment): a 5xx or a lost connection may mean it landed, so it is returned as an error
    /// at once for the caller to check; rate limits (which GitHub answers before acting) are
    /// still waited out and retried.
    pub async fn call_unrepeatable(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &'static str,
    ) -> Result<Reply, PublishError> {
        self.request(method, path, body, what, false).await
    }

    /// Backoff before the `attempt`-th retry of a caller's own retry loop.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.retry.base_delay * 2u32.saturating_pow(attempt.saturating_sub(1))
    }

    pub fn attempts(&self) -> u32 {
        self.retry.attempts
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &'static str,
        repeatable: bool,
    ) -> Result<Reply, PublishError> {
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        loop {
            let outcome = tokio::time::timeout(self.retry.timeout, self.once(&method, path, body))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no response within {} s",
                        self.retry.timeout.as_secs()
                    ))
                });
            let wait = match &outcome {
                Ok(reply) => match retry_after(reply, SystemTime::now()) {
                    Some(RetryAdvice::After(d)) => d,
                    Some(RetryAdvice::Backoff) => self.backoff(attempt),
                    None => return Ok(outcome.expect("matched Ok")),
                },
                Err(_) => self.backoff(attempt),
            };
            let may_have_landed = match &outcome {
                Ok(reply) => reply.status.is_server_error(),
                Err(_) => true,
            };
            let give_up = attempt >= self.retry.attempts
                || waited + wait > self.retry.max_wait
                || (!repeatable && may_have_landed);
            if give_up {
                return Err(match outcome {
                    Ok(reply) => status_error(what, &reply, wait, attempt),
                    Err(message) => PublishError::Network {
                        what,
                        message: format!("{message} (after {attempt} attempts)"),
                    },
                });
            }
            let why = match &outcome {
                Ok(r) => format!("HTTP {}", r.status.as_u16()),
                Err(m) => m.clone(),
            };
            eprintln!(
                "GitHub: {what}: {why}; retrying in {:.1} s (attempt {} of {})",
                wait.as_secs_f64(),
                attempt + 1,
                self.retry.attempts
            );
            tokio::time::sleep(wait).await;
            waited += wait;
            attempt += 1;
        }
    }

    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let response = match *method {
            Method::GET => self.client._get(path).await,
            Method::POST => self.client._post(path, body).await,
            Method::PATCH => self.client._patch(path, body).await,
            Method::PUT => self.client._put(path, body).await,
            _ => return Err(format!("gate does not send {method} requests")),
        }
        .map_err(|e| describe_transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = self
            .client
            .body_to_string(response)
            .await
            .map_err(|e| describe_transport(&e))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            // A proxy's HTML error page is not JSON; keep its first line as the message.
            serde_json::from_str(&text).unwrap_or_else(|_| {
                serde_json::json!({ "message": text.lines().next().unwrap_or("").chars().take(200).collect::<String>() })
            })
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// octocrab's transport errors, in one line. They name the URL at most, never headers, so the
/// token cannot leak through them.
fn describe_transport(e: &octocrab::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(Debug, PartialEq)]
enum RetryAdvice {
    /// The server said when (Retry-After, or a rate limit's reset time).
    After(Duration),
    /// A transient failure with no advice: exponential backoff.
    Backoff,
}

/// Whether a reply is worth retrying, and when. GitHub signals its primary rate limit with 403
/// or 429 and `x-ratelimit-remaining: 0` (+ `x-ratelimit-reset`, epoch seconds), its secondary
/// limit with 403/429 and `Retry-After`; 5xx are transient. A plain 403 is a permission answer
/// and is final.
fn retry_after(reply: &Reply, now: SystemTime) -> Option<RetryAdvice> {
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let status = reply.status;
    let limited = status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::FORBIDDEN;
    if let Some(wait) = header("retry-after").and_then(|v| crate::http_date::retry_after(v, now))
        && (limited || status.is_server_error())
    {
        return Some(RetryAdvice::After(wait));
    }
    if limited && header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        return Some(match reset {
            // One extra second: the reset instant is rounded down.
            Some(reset) => RetryAdvice::After(Duration::from_secs(reset.saturating_sub(now) + 1)),
            None => RetryAdvice::Backoff,
        });
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Some(RetryAdvice::Backoff);
    }
    None
}

/// The error for a reply that stayed bad (or a limit that resets too late to wait for).
fn status_error(what: &'static str, reply: &Reply, wait: Duration, attempts: u32) -> PublishError {
    let message = reply.body["message"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    let status = reply.status.as_u16();
    if retry_after(reply, SystemTime::now()).is_some()
        && (reply.status == StatusCode::FORBIDDEN || reply.status == StatusCode::TOO_MANY_REQUESTS)
    {
        return PublishError::RateLimited {
            what,
            message: format!(
                "{message} (HTTP {status}; retry possible in {} s, gave up after {attempts} attempt(s))",
                wait.as_secs()
            ),
        };
    }
    PublishError::Api {
        what,
        status,
        message: if attempts > 1 {
            format!("{message} (after {attempts} attempts)")
        } else {
            message
        },
    }
}

/// Turn a final reply into a result: 2xx is the body, 401/403/404 on a write are "this token
/// cannot write here", anything else is GitHub failing.
pub fn expect_success(what: &'static str, reply: Reply) -> Result<Value, PublishError> {
    if reply.status.is_success() {
        return Ok(reply.body);
    }
    let message = reply.body["message"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    let status = reply.status.as_u16();
    match reply.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            Err(PublishError::Forbidden {
                what,
                status,
                message,
            })
        }
        _ => Err(PublishError::Api {
            what,
            status,
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn reply(status: u16, headers: &[(&'static str, &str)]) -> Reply {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Value::Null,
        }
    }

    #[test]
    fn retries_transient_failures_and_rate_limits_but_not_permissions() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            retry_after(&reply(502, &[]), now),
            Some(RetryAdvice::Backoff)
        );
        assert_eq!(
            retry_after(&reply(503, &[("retry-after", "3")]), now),
            Some(RetryAdvice::After(Duration::from_secs(3)))
        );
        assert_eq!(
            retry_after(&reply(429, &[("retry-after", "7")]), now),
            Some(RetryAdvice::After(Duration::from_secs(7)))
        );
        // Retry-After as an HTTP-date.
        assert_eq!(
            retry_after(
                &reply(503, &[("retry-after", "Thu, 01 Jan 1970 00:16:50 GMT")]),
                now
            ),
            Some(RetryAdvice::After(Duration::from_secs(10)))
        );
        // Secondary rate limit: 403 with Retry-After.
        assert_eq!(
            retry_after(&reply(403, &[("retry-after", "60")]), now),
            Some(RetryAdvice::After(Duration::from_secs(60)))
        );
        // Primary rate limit: remaining 0 and the reset time, in epoch seconds.
        assert_eq!(
            retry_after(
                &reply(
                    403,
                    &[
                        ("x-ratelimit-remaining", "0"),
                        ("x-ratelimit-reset", "1004")
                    ]
                ),
                now
            ),
            Some(RetryAdvice::After(Duration::from_secs(5)))
        );
        // A plain 403 is the token's permissions: final. So are 404 and 422.
        assert_eq!(retry_after(&reply(403, &[]), now), None);
        assert_eq!(
            retry_after(&reply(403, &[("x-ratelimit-remaining", "12")]), now),
            None
        );
        assert_eq!(retry_after(&reply(404, &[]), now), None);
        assert_eq!(retry_after(&reply(422, &[]), now), None);
        assert_eq!(retry_after(&reply(200, &[("retry-after", "1")]), now), None);
    }

    #[test]
    fn permission_answers_are_told_apart_from_failures() {
        for status in [401, 403, 404] {
            let err = expect_success("x", reply(status, &[])).unwrap_err();
            assert!(err.is_permission(), "{status}");
        }
        let err = expect_success("x", reply(422, &[])).unwrap_err();
        assert!(!err.is_permission());
        assert!(expect_success("x", reply(201, &[])).is_ok());
    }
}
