//! SLO threshold expressions: `p95 < 300ms`, `error_rate < 1%`, `throughput > 200/s`.
//!
//! Grammar: `<metric> <op> <value>`; metric is `pNN[.N]`, `mean`, `max`, `ttfb_pNN`,
//! `error_rate` or `throughput`; op is `<`, `<=`, `>`, `>=`; latency values need a unit
//! (us, ms, s), error rates a `%` (or a fraction), throughput `/s` (or a bare number).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::units::{ms_from_duration, parse_duration};

pub const THRESHOLD_HELP: &str =
    "write `<metric> <op> <value>`, e.g. `p95 < 300ms`, `error_rate < 1%`, `throughput > 100/s`";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "q")]
pub enum Metric {
    /// Latency percentile (0-100).
    Percentile(f64),
    /// Time-to-first-byte percentile (0-100).
    TtfbPercentile(f64),
    Mean,
    Max,
    /// Failed requests / all requests, as a fraction.
    ErrorRate,
    /// Successful requests per second.
    Throughput,
    /// LLM: time-to-first-token percentile (0-100), read from the TTFT histogram.
    TtftPercentile(f64),
    /// LLM: mean output tokens per second of successful requests (Avg tok/s).
    TokensPerSecond,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// The symbol of the broken side, for "p95 312ms ≥ 300ms".
    pub fn negated_symbol(self) -> &'static str {
        match self {
            Op::Lt => "≥",
            Op::Le => ">",
            Op::Gt => "≤",
            Op::Ge => "<",
        }
    }
}

/// A parsed threshold. `limit` is in the metric's unit: milliseconds for latencies, a fraction
/// for error_rate, requests/second for throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub limit: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Threshold {
    /// The metric's short name as written by users (`p95`, `error_rate`).
    pub fn metric_name(&self) -> String {
        metric_name(self.metric)
    }
}

pub fn metric_name(metric: Metric) -> String {
    match metric {
        Metric::Percentile(q) => format!("p{}", trim_float(q)),
        Metric::TtfbPercentile(q) => format!("ttfb_p{}", trim_float(q)),
        Metric::Mean => "mean".into(),
        Metric::Max => "max".into(),
        Metric::ErrorRate => "error_rate".into(),
        Metric::Throughput => "throughput".into(),
        Metric::TtftPercentile(q) => format!("ttft_p{}", trim_float(q)),
        Metric::TokensPerSecond => "tok_s".into(),
    }
}

fn trim_float(q: f64) -> String {
    let s = format!("{q}");
    s.trim_end_matches(".0").to_string()
}

pub fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let s = text.trim();
    let op_start = s
        .find(['<', '>', '='])
        .ok_or_else(|| format!("`{text}` has no comparison; {THRESHOLD_HELP}"))?;
    let metric_text = s[..op_start].trim();
    let rest = &s[op_start..];
    let op_len = rest
        .find(|c: char| !matches!(c, '<' | '>' | '=' | '!'))
        .unwrap_or(rest.len());
    let op = match &rest[..op_len] {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        other => {
            return Err(format!(
                "`{text}`: unknown comparison `{other}`; use <, <=, > or >="
            ));
        }
    };
    let value_text = rest[op_len..].trim();
    let metric = parse_metric(metric_text).map_err(|e| format!("`{text}`: {e}"))?;
    let limit = parse_limit(metric, value_text).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(Threshold {
        text: s.to_string(),
        metric,
        op,
        limit,
    })
}

fn parse_metric(m: &str) -> Result<Metric, String> {
    let percentile = |q: &str| -> Result<f64, String> {
        let v: f64 = q
            .parse()
            .map_err(|_| format!("unknown metric `{m}`; {METRICS}"))?;
        if v > 0.0 && v < 100.0 {
            Ok(v)
        } else {
            Err(format!("percentile `{m}` must be between p0 and p100"))
        }
    };
    match m {
        "mean" | "avg" => Ok(Metric::Mean),
        "max" => Ok(Metric::Max),
        "error_rate" | "errors" => Ok(Metric::ErrorRate),
        "throughput" | "rps" => Ok(Metric::Throughput),
        "tok_s" | "tokens_per_s" => Ok(Metric::TokensPerSecond),
        "" => Err(format!("missing metric; {METRICS}")),
        _ => {
            if let Some(q) = m.strip_prefix("ttft_p") {
                Ok(Metric::TtftPercentile(percentile(q)?))
            } else if let Some(q) = m.strip_prefix("ttfb_p") {
                // Only TTFB summaries are kept (no histogram), so only their percentiles exist.
                let q = percentile(q)?;
                if ![50.0, 90.0, 95.0, 99.0, 99.9].contains(&q) {
                    return Err(format!(
                        "`{m}`: TTFB thresholds take p50, p90, p95, p99 or p99.9"
                    ));
                }
                Ok(Metric::TtfbPercentile(q))
            } else if let Some(q) = m.strip_prefix('p') {
                Ok(Metric::Percentile(percentile(q)?))
            } else {
                Err(format!("unknown metric `{m}`; {METRICS}"))
            }
        }
    }
}

const METRICS: &str = "known metrics: p50, p95, p99, p99.9 (any pNN), mean, max, ttfb_p95, error_rate, throughput; for LLM scenarios ttft_p95 (any ttft_pNN), tok_s";

fn parse_limit(metric: Metric, v: &str) -> Result<f64, String> {
    match metric {
        Metric::ErrorRate => {
            let (num, scale) = match v.strip_suffix('%') {
                Some(n) => (n.trim(), 0.01),
                None => (v, 1.0),
            };
            let x: f64 = num
                .parse()
                .map_err(|_| format!("`{v}` is not a rate; write e.g. 1% or 0.01"))?;
            let rate = x * scale;
            if (0.0..=1.0).contains(&rate) {
                Ok(rate)
            } else {
                Err(format!("error rate `{v}` must be between 0% and 100%"))
            }
        }
        Metric::Throughput | Metric::TokensPerSecond => {
            let num = v
                .strip_suffix("/s")
                .or_else(|| v.strip_suffix("rps"))
                .unwrap_or(v)
                .trim();
            num.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("`{v}` is not a rate; write e.g. 100/s"))
        }
        _ => parse_duration(v)
            .map(ms_from_duration)
            .map_err(|_| format!("`{v}` is not a latency; write e.g. 300ms or 1.5s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_suite_defaults() {
        let t = parse_threshold("p95 < 300ms").unwrap();
        assert_eq!(t.metric, Metric::Percentile(95.0));
        assert_eq!(t.op, Op::Lt);
        assert_eq!(t.limit, 300.0);
        let t = parse_threshold("error_rate < 1%").unwrap();
        assert_eq!(t.metric, Metric::ErrorRate);
        assert!((t.limit - 0.01).abs() < 1e-12);
        let t = parse_threshold("p99.9<=1.5s").unwrap();
        assert_eq!(t.metric, Metric::Percentile(99.9));
        assert_eq!(t.op, Op::Le);
        assert_eq!(t.limit, 1500.0);
        let t = parse_threshold("throughput >= 200/s").unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::Throughput, Op::Ge, 200.0)
        );
        let t = parse_threshold("ttft_p95 < 800ms").unwrap();
        assert_eq!(
            (t.metric, t.limit, metric_name(t.metric)),
            (Metric::TtftPercentile(95.0), 800.0, "ttft_p95".to_string())
        );
        let t = parse_threshold("tok_s > 40").unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::TokensPerSecond, Op::Gt, 40.0)
        );
        let t = parse_threshold("ttfb_p50 < 20ms").unwrap();
        assert_eq!(t.metric, Metric::TtfbPercentile(50.0));
        assert_eq!(metric_name(t.metric), "ttfb_p50");
    }

    #[test]
    fn refuses_malformed_expressions_with_a_reason() {
        let cases = [
            ("p95 << 3", "unknown comparison `<<`"),
            ("p95 = 3ms", "unknown comparison `=`"),
            ("p95 300ms", "no comparison"),
            ("p95 < 300", "not a latency"),
            ("p200 < 3ms", "between"),
            ("latency < 3ms", "unknown metric"),
            ("error_rate < 150%", "between"),
            ("< 3ms", "missing metric"),
            ("throughput > fast", "not a rate"),
            ("ttfb_p97 < 3ms", "TTFB thresholds take"),
        ];
        for (text, want) in cases {
            let err = parse_threshold(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn op_semantics() {
        assert!(Op::Lt.holds(1.0, 2.0));
        assert!(!Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0));
        assert!(Op::Gt.holds(3.0, 2.0));
        assert!(!Op::Ge.holds(1.0, 2.0));
    }
}
