//! Slack incoming webhooks: one short Block Kit message per verdict (what was judged, the
//! regressions, the worst p95, the cost change of LLM endpoints, a link), for scheduled checks
//! that must tell someone without a pull request to comment on.
//!
//! A webhook URL is a credential: everything after the host is the secret. It is kept in
//! `Webhook`, whose `Debug` shows only the origin, and no message gate prints contains the path.
//! Transport is octocrab's client (rustls and bundled web PKI roots), so https works
//! on a bare machine and plain http serves loopback tests; no GitHub token is attached.

use std::time::Duration;

use serde_json::{Value, json};

use crate::record::RunRecord;
use crate::verdict::compare::CompareMetric;
use crate::verdict::{Call, SloReport, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("`{0}` is not a webhook: use slack:https://hooks.slack.com/services/…")]
    BadSpec(String),
    #[error("the Slack webhook {0} could not be set up: {1}")]
    Setup(String, String),
    #[error("the Slack webhook {0} did not answer within {1} s")]
    Timeout(String, u64),
    #[error("the Slack webhook {0} could not be reached: {1}")]
    Transport(String, String),
    #[error("the Slack webhook {0} answered {1}: {2}")]
    Status(String, u16, String),
}

/// A Slack incoming webhook. Only `redacted()` is ever shown.
#[derive(Clone)]
pub struct Webhook {
    /// `scheme://host[:port]`
    origin: String,
    /// The secret part: path and query.
    path: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({})", self.redacted())
    }
}

impl Webhook {
    /// `slack:URL`, or a bare http(s) URL (as `GATE_SLACK_WEBHOOK` usually holds).
    pub fn parse(spec: &str) -> Result<Webhook, SlackError> {
        let url = spec.trim();
        let url = url.strip_prefix("slack:").unwrap_or(url);
        // Never echo the spec: it may be a real URL with a typo.
        let bad = || SlackError::BadSpec(redact(url));
        let uri: http::Uri = url.parse().map_err(|_| bad())?;
        let scheme = uri.scheme_str().ok_or_else(bad)?;
        if scheme != "https" && scheme != "http" {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        let path = uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        Ok(Webhook {
            origin: format!("{scheme}://{authority}"),
            path,
        })
    }

    /// `https://hooks.slack.com/…`: what logs and errors may show.
    pub fn redacted(&self) -> String {
        format!("{}/…", self.origin)
    }
}

/// `scheme://host/…` of anything URL-like, for error messages about unparseable specs.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}/…")
        }
        None => "…".to_string(),
    }
}

/// What one message says, before it becomes Block Kit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// The gate failed (a regression or a broken SLO).
    pub failed: bool,
    /// One line: "❌ 1 of 4 endpoints regressed · …".
    pub headline: String,
    /// What was compared with what.
    pub context: String,
    /// "user-orders: p95 +118% (48.6 → 106 ms)"
    pub regressions: Vec<String>,
    /// "user-orders: p95 < 60ms (106 ms)"
    pub slo_broken: Vec<String>,
    pub worst_p95: Option<String>,
    /// Per LLM endpoint: "chat/claude-x: $1.25 → $1.40 per 1k requests (+12.0%)".
    pub cost: Vec<String>,
    pub link: Option<String>,
}

/// Three significant digits, no trailing zeros: "106 ms", "48.6 ms", "5 ms".
fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "– ms".into();
    }
    let a = v.abs();
    let decimals = if a == 0.0 || a >= 100.0 {
        0
    } else {
        (2 - a.log10().floor() as i32).clamp(0, 3) as usize
    };
    format!("{} ms", trim(&format!("{v:.decimals$}")))
}

fn slo_lines(slo: Option<&SloReport>) -> Vec<String> {
    let Some(slo) = slo else { return Vec::new() };
    slo.endpoints
        .iter()
        .filter(|e| !e.pass)
        .map(|e| {
            let broken: Vec<String> = e
                .checks
                .iter()
                .filter(|c| !c.pass)
                .map(|c| match c.actual {
                    Some(a) => format!("{} (measured {})", c.threshold, measured(&c.metric, a)),
                    None => format!("{} (no data)", c.threshold),
                })
                .collect();
            format!("{}: {}", e.endpoint, broken.join(", "))
        })
        .collect()
}

/// A check's measured value in its metric's unit: latencies in ms, error rates in percent.
fn measured(metric: &str, v: f64) -> String {
    if metric.contains("error") {
        format!("{}%", trim(&format!("{:.2}", v * 100.0)))
    } else if metric.contains("throughput") {
        format!("{} req/s", trim(&format!("{v:.1}")))
    } else {
        ms(v)
    }
}

fn trim(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Cost per 1k requests of each LLM endpoint of the newest head run, against the mean of the
/// base runs' when they priced it too.
fn cost_lines(base: &[RunRecord], head: &[RunRecord]) -> Vec<String> {
    let Some(newest) = head.last() else {
        return Vec::new();
    };
    newest
        .endpoints
        .iter()
        .filter_map(|e| {
            let now = e.llm.as_ref()?.cost.as_ref()?.per_1k_usd;
            let before: Vec<f64> = base
                .iter()
                .flat_map(|r| &r.endpoints)
                .filter(|b| b.name == e.name)
                .filter_map(|b| Some(b.llm.as_ref()?.cost.as_ref()?.per_1k_usd))
                .collect();
            Some(if before.is_empty() || !now.is_finite() {
                format!("{}: ${now:.4} per 1k requests", e.name)
            } else {
                let was = before.iter().sum::<f64>() / before.len() as f64;
                let change = if was > 0.0 {
                    format!(" ({:+.1}%)", (now / was - 1.0) * 100.0)
                } else {
                    String::new()
                };
                format!("{}: ${was:.4} → ${now:.4} per 1k requests{change}", e.name)
            })
        })
        .collect()
}

impl Message {
    /// From a comparison's verdict; `base`/`head` are the runs compared (for LLM cost).
    pub fn from_verdict(
        verdict: &Verdict,
        base: &[RunRecord],
        head: &[RunRecord],
        link: Option<String>,
    ) -> Message {
        let latency = || {
            verdict
                .endpoints
                .iter()
                .filter(|c| c.metric == CompareMetric::Latency)
        };
        let regressions = verdict
            .endpoints
            .iter()
            .filter(|c| c.call == Call::Regression)
            .map(|c| {
                let change = c.p95_change.as_ref().map_or(String::new(), |d| {
                    format!(
                        ": p95 {:+.1}% ({} → {})",
                        d.point * 100.0,
                        ms(d.base_ms),
                        ms(d.head_ms)
                    )
                });
                format!("{}{change}", c.endpoint)
            })
            .collect();
        let worst = latency()
            .filter_map(|c| Some((c, c.p95_change.as_ref()?)))
            .max_by(|a, b| a.1.point.total_cmp(&b.1.point))
            .map(|(c, d)| {
                format!(
                    "{}: {} ({:+.1}% vs {})",
                    c.endpoint,
                    ms(d.head_ms),
                    d.point * 100.0,
                    ms(d.base_ms)
                )
            })
            .or_else(|| {
                latency()
                    .filter_map(|c| Some((c, c.head.as_ref()?.p95_ms)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(c, p95)| format!("{}: {}", c.endpoint, ms(p95)))
            });
        Message {
            failed: verdict.outcome() != crate::exit::Outcome::Pass,
            headline: crate::report::cells::headline(verdict),
            context: format!("{} vs {}", verdict.head, verdict.base),
            regressions,
            slo_broken: slo_lines(verdict.slo.as_ref()),
            worst_p95: worst,
            cost: cost_lines(base, head),
            link,
        }
    }

    /// From a run on its own (`gate run`): its SLO checks, its slowest endpoint, its cost.
    pub fn from_run(run: &RunRecord, slo: &SloReport, link: Option<String>) -> Message {
        let broken = slo_lines(Some(slo));
        let n = run.endpoints.len();
        let headline = if broken.is_empty() {
            format!(
                "✅ every SLO threshold kept across {n} endpoint{}",
                if n == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "❌ {} of {n} endpoints broke an SLO threshold",
                broken.len()
            )
        };
        let worst = run
            .endpoints
            .iter()
            .filter(|e| e.latency.count > 0)
            .max_by(|a, b| a.latency.p95_ms.total_cmp(&b.latency.p95_ms))
            .map(|e| format!("{}: {}", e.name, ms(e.latency.p95_ms)));
        let branch = run
            .git
            .as_ref()
            .and_then(|g| {
                Some(format!(
                    " ({} @ {})",
                    g.branch.as_deref()?,
                    g.short_commit()?
                ))
            })
            .unwrap_or_default();
        Message {
            failed: !slo.pass,
            headline,
            context: format!("run of {}{branch} against {}", run.suite, run.target),
            regressions: Vec::new(),
            slo_broken: broken,
            worst_p95: worst,
            cost: cost_lines(&[], std::slice::from_ref(run)),
            link,
        }
    }
}

/// Slack's mrkdwn needs only these three escaped; names come from scenario files and targets.
fn mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Block Kit limits: a header's text is at most 150 characters, a section's 3000.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// At most this many names per list; the rest are counted.
const LIST_MAX: usize = 10;

fn list(title: &str, items: &[String]) -> Value {
    let mut text = format!("*{title}*");
    for item in items.iter().take(LIST_MAX) {
        text.push_str(&format!("\n• {}", mrkdwn(item)));
    }
    if items.len() > LIST_MAX {
        text.push_str(&format!("\n…and {} more", items.len() - LIST_MAX));
    }
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(&text, 3000) } })
}

/// The message as a Block Kit payload: `text` (the notification's fallback) and `blocks`.
pub fn payload(m: &Message) -> Value {
    let status = if m.failed { "❌ failed" } else { "✅ passed" };
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": cut(&format!("gate: {status}"), 150), "emoji": true } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(&format!("*{}*\n{}", mrkdwn(&m.headline), mrkdwn(&m.context)), 3000) } }),
    ];
    if !m.regressions.is_empty() {
        blocks.push(list("Regressions", &m.regressions));
    }
    if !m.slo_broken.is_empty() {
        blocks.push(list("SLO broken", &m.slo_broken));
    }
    let mut fields = Vec::new();
    if let Some(w) = &m.worst_p95 {
        fields.push(
            json!({ "type": "mrkdwn", "text": cut(&format!("*Worst p95*\n{}", mrkdwn(w)), 2000) }),
        );
    }
    if !m.cost.is_empty() {
        let lines: Vec<String> = m.cost.iter().take(LIST_MAX).map(|c| mrkdwn(c)).collect();
        fields.push(json!({ "type": "mrkdwn", "text": cut(&format!("*Cost (LLM)*\n{}", lines.join("\n")), 2000) }));
    }
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if let Some(link) = &m.link {
        blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": format!("<{}|Open the run>", mrkdwn(link)) } ] }));
    }
    json!({ "text": cut(&format!("gate: {}", m.headline), 3000), "blocks": blocks })
}

/// POST the payload. Blocking: runs its own small runtime on a separate thread, so callers need
/// no runtime and may be inside one.
pub fn post(hook: &Webhook, body: &Value, timeout: Duration) -> Result<(), SlackError> {
    let hook = hook.clone();
    let body = body.clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SlackError::Setup(hook.redacted(), e.to_string()))?;
            rt.block_on(async {
                match tokio::time::timeout(timeout, send(&hook, &body)).await {
                    Ok(r) => r,
                    Err(_) => Err(SlackError::Timeout(hook.redacted(), timeout.as_secs())),
                }
            })
        })
        .join()
        .unwrap_or_else(|_| Err(SlackError::Transport(String::new(), "panicked".into())))
    })
}

async fn send(hook: &Webhook, body: &Value) -> Result<(), SlackError> {
    let scrub = |s: String| s.replace(&hook.path, "/…");
    let client = super::http::client(hook.origin.as_str(), None, Vec::new())
        .map_err(|e| SlackError::Setup(hook.redacted(), scrub(e)))?;
    let response = client
        ._post(hook.path.as_str(), Some(body))
        .await
        .map_err(|e| SlackError::Transport(hook.redacted(), scrub(chain(&e))))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = match client.body_to_string(response).await {
        Ok(t) => scrub(t.chars().take(200).collect()),
        Err(_) => String::new(),
    };
    Err(SlackError::Status(hook.redacted(), status.as_u16(), text))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_path_is_never_shown() {
        let h = Webhook::parse("slack:https://hooks.slack.com/services/T0/B0/SECRET").unwrap();
        assert_eq!(h.redacted(), "https://hooks.slack.com/…");
        assert!(!format!("{h:?}").contains("SECRET"));
        let plain = Webhook::parse("http://127.0.0.1:9/hook?token=SECRET").unwrap();
        assert_eq!(plain.redacted(), "http://127.0.0.1:9/…");
        for bad in [
            "slack:ftp://x/SECRET",
            "slack:hooks.slack.com/SECRET",
            "slack:https://user:SECRET@host/x",
        ] {
            let e = Webhook::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn names_are_escaped_and_lists_cut() {
        let m = Message {
            failed: true,
            headline: "h".into(),
            context: "c".into(),
            regressions: (0..15).map(|i| format!("<b>{i}</b> & co")).collect(),
            link: Some("http://x/?a=1&b=2".into()),
            ..Default::default()
        };
        let p = payload(&m);
        let text = p["blocks"][2]["text"]["text"].as_str().unwrap();
        assert!(text.contains("&lt;b&gt;0&lt;/b&gt; &amp; co"));
        assert!(text.ends_with("…and 5 more"));
        assert_eq!(p["blocks"][0]["text"]["text"], "gate: ❌ failed");
        assert_eq!(
            p["blocks"][3]["elements"][0]["text"],
            "<http://x/?a=1&amp;b=2|Open the run>"
        );
    }

    #[test]
    fn milliseconds_read_short() {
        assert_eq!(ms(106.4), "106 ms");
        assert_eq!(ms(48.61), "48.6 ms");
        assert_eq!(ms(5.0), "5 ms");
        assert_eq!(ms(0.512), "0.512 ms");
    }
}
