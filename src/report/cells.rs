//! The shared cell model: cell texts for the table formats (terminal and markdown), so both say
//! the same thing, the terminal's table look, and markdown escaping. Every format depends on
//! this file and on nothing of each other's.

use comfy_table::{ContentArrangement, Table, presets};

use crate::record::EndpointRecord;
use crate::units::format_ms;
use crate::verdict::compare::CompareMetric;
use crate::verdict::slo::{Check, EndpointSlo};
use crate::verdict::{Call, EndpointComparison, Finding, Limit, PairedFinding, Reason, Verdict};

pub struct RunCells {
    pub p50: String,
    pub p95: String,
    pub p99: String,
    pub throughput: String,
    pub errors: String,
    pub status: String,
}

pub fn run_row(e: &EndpointRecord, slo: &EndpointSlo) -> RunCells {
    let has = e.latency.count > 0;
    let lat = |v: f64| if has { format_ms(v) } else { "—".to_string() };
    RunCells {
        p50: lat(e.latency.p50_ms),
        p95: lat(e.latency.p95_ms),
        p99: lat(e.latency.p99_ms),
        throughput: format!("{:.1}/s", e.throughput_rps),
        errors: if e.failures == 0 {
            "0".into()
        } else {
            format!("{} ({:.1}%)", e.failures, e.error_rate * 100.0)
        },
        status: if slo.pass {
            "✅ PASS".into()
        } else {
            let broken: Vec<String> = slo
                .checks
                .iter()
                .filter(|c| !c.pass)
                .map(describe_failure)
                .collect();
            format!("❌ FAIL {}", broken.join(", "))
        },
    }
}

pub struct VerdictCells {
    pub base: String,
    pub head: String,
    pub delta: String,
    pub p: String,
}

pub fn verdict_row(e: &EndpointComparison) -> VerdictCells {
    if e.metric == CompareMetric::TokensPerSecond {
        return tokens_per_second_row(e);
    }
    let triple = |p: &Option<crate::verdict::compare::Percentiles>| match p {
        Some(p) => format!(
            "{} / {} / {}",
            format_ms(p.p50_ms),
            format_ms(p.p95_ms),
            format_ms(p.p99_ms)
        ),
        None => "—".into(),
    };
    let delta = match e.p95_change {
        Some(r) => format!(
            "{:+.1}% ({:+.1} … {:+.1})",
            r.point * 100.0,
            r.ci_low * 100.0,
            r.ci_high * 100.0
        ),
        None => "—".into(),
    };
    VerdictCells {
        base: triple(&e.base),
        head: triple(&e.head),
        delta,
        p: p_cell(e),
    }
}

/// The Holm-adjusted p-value of the direction the estimate points to.
fn p_cell(e: &EndpointComparison) -> String {
    let faster = e.call == Call::Improvement || e.p95_change.is_some_and(|r| r.point < 0.0);
    match (faster, e.p_slower_adjusted, e.p_faster_adjusted) {
        (true, _, Some(p)) | (false, Some(p), _) => format_p(p),
        _ => "—".into(),
    }
}

/// tok/s is compared as time per token; people read it as tok/s. The time per token at p50,
/// p95 and p99 is tok/s at p50, p5 and p1 (the slow side), and a change `r` of time per token
/// is a change `1/(1+r) − 1` of tok/s (so the CI's ends swap).
fn tokens_per_second_row(e: &EndpointComparison) -> VerdictCells {
    let tps = |ms: f64| if ms > 0.0 { 1000.0 / ms } else { 0.0 };
    let triple = |p: &Option<crate::verdict::compare::Percentiles>| match p {
        Some(p) => format!(
            "{:.1} / {:.1} / {:.1} tok/s",
            tps(p.p50_ms),
            tps(p.p95_ms),
            tps(p.p99_ms)
        ),
        None => "—".into(),
    };
    let inv = |r: f64| 1.0 / (1.0 + r) - 1.0;
    let delta = match e.p95_change {
        Some(r) => format!(
            "{:+.1}% ({:+.1} … {:+.1})",
            inv(r.point) * 100.0,
            inv(r.ci_high) * 100.0,
            inv(r.ci_low) * 100.0
        ),
        None => "—".into(),
    };
    VerdictCells {
        base: triple(&e.base),
        head: triple(&e.head),
        delta,
        p: p_cell(e),
    }
}

pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// A threshold metric's value in its unit: `0.5%`, `12.3/s`, `124.2 tok/s`, `5.1ms`.
pub fn slo_value(metric: &str, v: f64) -> String {
    match metric {
        "error_rate" => format!("{:.2}%", v * 100.0).replace(".00%", "%"),
        "throughput" => format!("{v:.1}/s"),
        "tok_s" => format!("{v:.1} tok/s"),
        crate::verdict::slo::SUCCESSES => format!("{v:.0}"),
        _ => format_ms(v),
    }
}

/// A call as people read it, in both table formats.
pub fn badge(call: Call) -> &'static str {
    match call {
        Call::Regression => "❌ regression",
        Call::NoChange => "✅ no change",
        Call::Improvement => "🚀 improvement",
        Call::Inconclusive => "❔ inconclusive",
    }
}

/// "❌ 1 of 4 endpoints regressed" / "✅ no regression across 4 endpoints", plus the rest.
/// The Δp95 column's title, with the confidence of the verdict's intervals: 95% in history mode,
/// 90% in paired mode (whose calls are one-sided tests against the tolerance at 5% each).
pub fn delta_header(v: &Verdict) -> String {
    let level = v
        .endpoints
        .iter()
        .find_map(|e| e.p95_change.map(|r| r.confidence))
        .unwrap_or(0.95);
    format!("Δp95 ({:.0}% CI)", level * 100.0)
}

pub fn headline(v: &Verdict) -> String {
    let mut all: Vec<&str> = v.endpoints.iter().map(|e| e.name.as_str()).collect();
    all.sort_unstable();
    all.dedup();
    let n = all.len();
    let regressed = v.endpoints_with(Call::Regression);
    let mut parts = vec![if regressed > 0 {
        format!(
            "❌ {regressed} of {n} endpoint{} regressed",
            if n == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "✅ no regression across {n} endpoint{}",
            if n == 1 { "" } else { "s" }
        )
    }];
    let improved = v.endpoints_with(Call::Improvement);
    if improved > 0 {
        parts.push(format!("🚀 {improved} improved"));
    }
    let inconclusive = v.endpoints_with(Call::Inconclusive);
    if inconclusive > 0 {
        parts.push(format!(
            "❔ {inconclusive} inconclusive{}",
            if v.strict { " (fails: --strict)" } else { "" }
        ));
    }
    let slo = v.slo_failures();
    if slo > 0 {
        parts.push(format!("❌ {slo} broke an SLO threshold"));
    }
    if let Some(p) = &v.paired {
        parts.push(format!(
            "⇄ paired: base and head side by side, {} round{} of 2 × {:?} blocks per scenario",
            p.rounds,
            if p.rounds == 1 { "" } else { "s" },
            std::time::Duration::from_secs_f64(p.block_s)
        ));
    }
    parts.join(" · ")
}

/// Why an endpoint got its call, in words: "Δp95 +31.0% (CI +24.8% … +38.1%): slower beyond
/// the baseline's noise band of 12.0%".
pub fn reason(c: &EndpointComparison) -> String {
    let mut text = match &c.reason {
        Reason::Pending => "not decided".into(),
        Reason::NoBaseline => "no baseline for this endpoint".into(),
        Reason::DefinitionChanged => {
            "the scenario's definition changed since the baseline (request, expectation or load)"
                .into()
        }
        Reason::TooFewSamples { base, head, min } => format!(
            "too few successful requests to compare (base {base}, head {head}; at least {min} each)"
        ),
        Reason::NoEstimate => "p95 change could not be estimated (empty baseline p95)".into(),
        Reason::TooFewPairs { pairs } => {
            format!("paired: {pairs} usable block pair(s); at least 2 are needed (more --rounds)")
        }
        Reason::Paired {
            finding,
            tolerance,
            pairs,
            tests,
            p_signed_rank,
            p_pooled,
        } => {
            let pct = |x: f64| format!("{:+.1}%", x * 100.0);
            let p = |x: &Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
            let summary = match c.p95_change {
                Some(rel) => format!(
                    "paired: Δp95 {} ({:.0}% CI {} … {}) over {pairs} block pairs",
                    pct(rel.point),
                    rel.confidence * 100.0,
                    pct(rel.ci_low),
                    pct(rel.ci_high)
                ),
                None => format!("paired: over {pairs} block pairs"),
            };
            let limit = format!("the {:.0}% tolerance", tolerance * 100.0);
            let ps = format!(
                "signed-rank p {}, pooled Mann-Whitney p {}",
                p(p_signed_rank),
                p(p_pooled)
            );
            match finding {
                PairedFinding::Slower => format!("{summary}: slower beyond {limit} ({ps})"),
                PairedFinding::Faster => format!("{summary}: faster beyond {limit} ({ps})"),
                PairedFinding::Within => {
                    format!("{summary}: within ±{:.0}%", tolerance * 100.0)
                }
                PairedFinding::Unreachable => format!(
                    "{summary}: {pairs} block pairs cannot reach significance across {tests} tests; rerun with more --rounds"
                ),
                PairedFinding::NotConfirmed => format!(
                    "{summary}: beyond {limit}, but not significant after Holm in both tests ({ps})"
                ),
                PairedFinding::CannotRuleOut => format!(
                    "{summary}: cannot rule out a change beyond {limit}; rerun with more --rounds"
                ),
            }
        }
        Reason::Measured { finding, limit, .. } => {
            let pct = |x: f64| format!("{:+.1}%", x * 100.0);
            let ci = match c.p95_change {
                Some(rel) => format!(
                    "{} {} (CI {} … {})",
                    c.metric.what(),
                    pct(rel.point),
                    pct(rel.ci_low),
                    pct(rel.ci_high)
                ),
                None => c.metric.what().to_string(),
            };
            let limit = match *limit {
                Limit::Tolerance { fraction } => {
                    format!("the {:.0}% tolerance", fraction * 100.0)
                }
                Limit::NoiseBand { fraction } => {
                    format!("the baseline's noise band of {:.1}%", fraction * 100.0)
                }
                Limit::AssumedNoise { fraction, min_runs } => format!(
                    "the {:.0}% run-to-run noise allowed with fewer than {min_runs} baseline runs",
                    fraction * 100.0
                ),
            };
            match finding {
                Finding::Slower => format!("{ci}: slower beyond {limit}"),
                Finding::Faster => format!("{ci}: faster beyond {limit}"),
                Finding::Within => format!("{ci}: within {limit}"),
                Finding::CannotRuleOut => format!(
                    "{ci}: cannot rule out a slowdown beyond {limit}; rerun with more requests"
                ),
            }
        }
    };
    if let Reason::Measured {
        outliers_p95_ms, ..
    } = &c.reason
        && !outliers_p95_ms.is_empty()
    {
        let p: Vec<String> = outliers_p95_ms
            .iter()
            .map(|ms| format!("{ms:.1} ms"))
            .collect();
        text.push_str(&format!(
            " ({} baseline run(s) left out as outliers: p95 {})",
            p.len(),
            p.join(", ")
        ));
    }
    text
}

/// Every table gate prints has this look: box-drawing borders, never wrapped (logs keep lines).
pub fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    t
}

/// Escape text for a GFM table cell or a line of prose.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// "p95 312ms ≥ 300ms", "error_rate 2.5% ≥ 1%", "p95: no data", "no successful request",
/// "error_rate 100% ≥ 10% (default)".
pub fn describe_failure(c: &Check) -> String {
    if c.metric == crate::verdict::slo::SUCCESSES {
        return if c.threshold.contains("ramp") {
            "no successful request at any step of the ramp".into()
        } else {
            "no successful request".into()
        };
    }
    let Some(actual) = c.actual else {
        return format!("{}: no data", c.metric);
    };
    let fmt = |v: f64| slo_value(&c.metric, v);
    let negated = c.op.negated_symbol();
    let default = if c.default { " (default)" } else { "" };
    format!(
        "{} {} {negated} {}{default}",
        c.metric,
        fmt(actual),
        fmt(c.limit)
    )
}
