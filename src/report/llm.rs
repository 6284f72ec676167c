//! The LLM part of a run's report: the per-model table, the figures behind it, and fallback
//! chains. Shared by the terminal and markdown formats so both say the same thing.

use comfy_table::{Cell, CellAlignment};

use crate::record::{EndpointRecord, LlmRecord, RunRecord};
use crate::units::format_ms;

pub const MODEL_HEADER: [&str; 8] = [
    "Model",
    "P50",
    "P95",
    "TTFT p50/p95",
    "Avg tok/s",
    "Total tokens",
    "Cost",
    "Errors",
];

/// USD: cents from a dollar up, three significant digits below (a request can cost $0.000261).
pub fn usd(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        "$0".into()
    } else if v.abs() >= 1.0 {
        format!("${v:.2}")
    } else {
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(2, 12) as usize;
        format!("${v:.decimals$}")
    }
}

/// Every LLM endpoint of a run that is not a ramp step (ramp steps have their own table).
pub fn model_endpoints(run: &RunRecord) -> Vec<(&EndpointRecord, &LlmRecord)> {
    run.endpoints
        .iter()
        .filter(|e| e.ramp.is_none())
        .filter_map(|e| e.llm.as_ref().map(|l| (e, l)))
        .collect()
}

/// The cells of one row of the per-model table.
pub fn model_row(e: &EndpointRecord, l: &LlmRecord) -> [String; 8] {
    let has = e.latency.count > 0;
    let lat = |v: f64| if has { format_ms(v) } else { "—".into() };
    let ttft = if l.ttft.count > 0 {
        format!(
            "{} / {}",
            format_ms(l.ttft.p50_ms),
            format_ms(l.ttft.p95_ms)
        )
    } else if l.stream {
        "—".into()
    } else {
        "(not streamed)".into()
    };
    let est = if l.estimated_requests > 0 {
        " (est.)"
    } else {
        ""
    };
    let cost = match &l.cost {
        Some(c) => format!("{} ({}/1k)", usd(c.total_usd), usd(c.per_1k_usd)),
        None => "no price".into(),
    };
    [
        e.name.clone(),
        lat(e.latency.p50_ms),
        lat(e.latency.p95_ms),
        ttft,
        if has {
            format!("{:.1}", l.output_tps_mean)
        } else {
            "—".into()
        },
        format!("{} in / {} out{est}", l.input_tokens, l.output_tokens),
        cost,
        if e.failures == 0 {
            "0".into()
        } else {
            format!("{} ({:.1}%)", e.failures, e.error_rate * 100.0)
        },
    ]
}

/// Lines under the table: the figures that do not fit in it, one endpoint at a time.
pub fn detail_lines(e: &EndpointRecord, l: &LlmRecord) -> Vec<String> {
    let mut out = Vec::new();
    if e.successes > 0 {
        let mut parts = Vec::new();
        if l.tpot.count > 0 {
            parts.push(format!("TPOT p50 {}", format_ms(l.tpot.p50_ms)));
        }
        if l.itl.count > 0 {
            parts.push(format!(
                "inter-token p50/p95 {} / {}",
                format_ms(l.itl.p50_ms),
                format_ms(l.itl.p95_ms)
            ));
        }
        parts.push(format!("aggregate {:.1} tok/s", l.output_tps_aggregate));
        parts.push(format!("TTFB p50 {}", format_ms(e.ttfb.p50_ms)));
        out.push(parts.join(", "));
    }
    match &l.cost {
        Some(c) => {
            let mut s = format!(
                "cost per request p50 {} / p95 {}, {} per 1k requests, run total {}",
                usd(c.p50_usd),
                usd(c.p95_usd),
                usd(c.per_1k_usd),
                usd(c.total_usd)
            );
            if let (Some(m), Some(d)) = (c.monthly_usd, c.daily_requests) {
                s.push_str(&format!(", projected {}/month at {d} requests/day", usd(m)));
            }
            if c.unpriced_requests > 0 {
                s.push_str(&format!(
                    " ({} requests served by a model without a price left out)",
                    c.unpriced_requests
                ));
            }
            out.push(s);
        }
        None => out.push(format!(
            "no price for {} in the price table: cost not reported",
            l.models.join(", ")
        )),
    }
    if l.estimated_requests > 0 {
        out.push(format!(
            "{} of {} successful requests carried no usage: their output tokens are counted from deltas (estimated)",
            l.estimated_requests, e.successes
        ));
    }
    let refused: u64 = ["401", "403"]
        .iter()
        .filter_map(|c| e.status_counts.get(*c))
        .sum();
    if refused > 0 {
        out.push(format!(
            "{refused} requests refused as unauthorised (401/403): check `llm.api_key` and the variable it reads"
        ));
    }
    if let Some(r) = &l.retry_after {
        out.push(format!(
            "429 retry-after: {} responses, mean {:.1}s, max {:.1}s",
            r.count, r.mean_s, r.max_s
        ));
    }
    if let Some(h) = headroom(e, l) {
        out.push(format!("rate-limit headroom (lowest remaining): {h}"));
    }
    out
}

/// `requests 3/8 left, tokens 30000/80000 left · 12 × 429`: the lowest remaining count of each
/// quota the provider reported, next to the 429s they predict. None when it sent none.
pub fn headroom(e: &EndpointRecord, l: &LlmRecord) -> Option<String> {
    if l.rate_limits.is_empty() {
        return None;
    }
    let quotas: Vec<String> = l
        .rate_limits
        .iter()
        .map(|h| {
            let kind = h.kind.replace('_', " ");
            match h.limit {
                Some(limit) => format!("{kind} {}/{limit} left", h.remaining_min),
                None => format!("{kind} {} left", h.remaining_min),
            }
        })
        .collect();
    let limited = e.status_counts.get("429").copied().unwrap_or(0);
    Some(format!("{} · {limited} × 429", quotas.join(", ")))
}

/// Ramp steps of LLM scenarios with the providers' rate-limit headers: one line per step,
/// `  chat@8: requests 0/8 left, tokens 0/80000 left · 12 × 429`.
fn ramp_headroom(run: &RunRecord) -> Vec<(String, String)> {
    run.endpoints
        .iter()
        .filter(|e| e.ramp.is_some())
        .filter_map(|e| Some((e.name.clone(), headroom(e, e.llm.as_ref()?)?)))
        .collect()
}

/// Rows of a fallback chain's table: tier, model, served, share, p50, p95, failed over, cost.
pub const TIER_HEADER: [&str; 8] = [
    "Tier",
    "Model",
    "Served",
    "Share",
    "P50",
    "P95",
    "Failed over",
    "Failover cost",
];

pub fn tier_rows(e: &EndpointRecord, l: &LlmRecord) -> Vec<[String; 8]> {
    let served: u64 = l.tiers.iter().map(|t| t.served).sum();
    l.tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let lat = |v: f64| {
                if t.served > 0 {
                    format_ms(v)
                } else {
                    "—".into()
                }
            };
            [
                (i + 1).to_string(),
                t.model.clone(),
                t.served.to_string(),
                if e.requests > 0 {
                    format!("{:.1}%", 100.0 * t.served as f64 / e.requests as f64)
                } else {
                    "—".into()
                },
                lat(t.p50_ms),
                lat(t.p95_ms),
                t.failed_over.to_string(),
                if i == 0 || t.served == 0 {
                    "—".into()
                } else {
                    format!("+{} mean", format_ms(t.failover_ms_mean))
                },
            ]
        })
        .chain((served < e.requests).then(|| {
            let failed = e.requests - served;
            [
                "".into(),
                "(failed)".into(),
                failed.to_string(),
                format!("{:.1}%", 100.0 * failed as f64 / e.requests as f64),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
            ]
        }))
        .collect()
}

/// The terminal form: the per-model table, its detail lines, then each fallback chain.
pub fn terminal(run: &RunRecord) -> String {
    let eps = model_endpoints(run);
    let steps = ramp_headroom(run);
    let mut out = String::new();
    if !steps.is_empty() {
        out.push_str("LLM rate-limit headroom per ramp step (lowest remaining)\n");
        for (name, h) in &steps {
            out.push_str(&format!("  {name}: {h}\n"));
        }
    }
    if eps.is_empty() {
        return out;
    }
    let mut table = super::cells::table();
    table.set_header(MODEL_HEADER);
    for (e, l) in &eps {
        let row = model_row(e, l);
        table.add_row(row.iter().enumerate().map(|(i, c)| {
            let cell = Cell::new(c);
            if i == 0 || i == 5 || i == 6 {
                cell
            } else {
                cell.set_alignment(CellAlignment::Right)
            }
        }));
    }
    out.push_str(&format!("LLM models\n{table}\n"));
    for (e, l) in &eps {
        for line in detail_lines(e, l) {
            out.push_str(&format!("  {}: {line}\n", e.name));
        }
    }
    for (e, l) in eps.iter().filter(|(_, l)| l.fallback) {
        let mut t = super::cells::table();
        t.set_header(TIER_HEADER);
        for row in tier_rows(e, l) {
            t.add_row(row.iter().enumerate().map(|(i, c)| {
                let cell = Cell::new(c);
                if i == 1 {
                    cell
                } else {
                    cell.set_alignment(CellAlignment::Right)
                }
            }));
        }
        out.push_str(&format!(
            "fallback {}: {}\n{t}\n",
            e.name,
            l.models.join(" → ")
        ));
    }
    out
}

/// The markdown form of the same.
pub fn markdown(run: &RunRecord) -> String {
    use super::cells::escape;
    let eps = model_endpoints(run);
    let steps = ramp_headroom(run);
    let mut out = String::new();
    if !steps.is_empty() {
        out.push_str(
            "\n| Ramp step | Rate-limit headroom (lowest remaining) · 429s |\n|---|---|\n",
        );
        for (name, h) in &steps {
            out.push_str(&format!("| {} | {} |\n", escape(name), escape(h)));
        }
    }
    if eps.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "\n| {} |\n|---|--:|--:|--:|--:|--:|--:|--:|\n",
        MODEL_HEADER.join(" | ")
    ));
    for (e, l) in &eps {
        let row: Vec<String> = model_row(e, l).iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    for (e, l) in &eps {
        if let Some(h) = headroom(e, l) {
            out.push_str(&format!(
                "\n{}: rate-limit headroom {}\n",
                escape(&e.name),
                escape(&h)
            ));
        }
    }
    for (e, l) in eps.iter().filter(|(_, l)| l.fallback) {
        out.push_str(&format!(
            "\n**Fallback {}**: {}\n\n| {} |\n|--:|---|--:|--:|--:|--:|--:|--:|\n",
            escape(&e.name),
            escape(&l.models.join(" → ")),
            TIER_HEADER.join(" | ")
        ));
        for row in tier_rows(e, l) {
            let row: Vec<String> = row.iter().map(|c| escape(c)).collect();
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn usd_keeps_three_significant_digits_below_a_dollar() {
        assert_eq!(super::usd(1234.5), "$1234.50");
        assert_eq!(super::usd(0.261), "$0.261");
        assert_eq!(super::usd(0.003132), "$0.00313");
        assert_eq!(super::usd(0.000261), "$0.000261");
        assert_eq!(super::usd(0.0), "$0");
    }

    use crate::record::{CostRecord, EndpointRecord, LlmRecord, RunRecord, TierRecord};

    fn endpoint(name: &str, llm: LlmRecord, requests: u64, failures: u64) -> EndpointRecord {
        let mut e: EndpointRecord = serde_json::from_value(serde_json::json!({
            "name": name, "scenario_file": "s.yml", "scenario_hash": "h", "method": "POST",
            "url": "/v1/messages",
            "load": { "model": "closed", "users": 2, "rate_per_s": null, "duration_s": 1.0, "warmup_s": 0.0 },
            "requests": requests, "successes": requests - failures, "failures": failures,
            "elapsed_s": 1.0, "throughput_rps": 1.0,
            "error_rate": failures as f64 / requests as f64,
            "latency": { "count": 3, "min_ms": 1.0, "mean_ms": 300.0, "stdev_ms": 1.0, "p50_ms": 300.0,
                         "p90_ms": 310.0, "p95_ms": 320.0, "p99_ms": 330.0, "p999_ms": 330.0, "max_ms": 330.0 },
            "ttfb": { "count": 3, "min_ms": 1.0, "mean_ms": 1.0, "stdev_ms": 0.0, "p50_ms": 1.0,
                      "p90_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0, "p999_ms": 1.0, "max_ms": 1.0 },
            "status_counts": {}, "errors": {}, "server_timing": {},
            "late_starts": 0, "dropped_arrivals": 0, "bytes_received": 0
        }))
        .unwrap();
        e.llm = Some(llm);
        e
    }

    fn run(endpoints: Vec<EndpointRecord>) -> RunRecord {
        RunRecord::of_endpoints(endpoints)
    }

    #[test]
    fn model_table_fallback_tiers_and_markdown_escaping() {
        let mut plain = LlmRecord {
            provider: "anthropic".into(),
            models: vec!["m|a".into()],
            stream: true,
            output_tps_mean: 57.75,
            input_tokens: 40,
            output_tokens: 300,
            estimated_requests: 1,
            cost: Some(CostRecord {
                total_usd: 0.0125,
                per_1k_usd: 4.1667,
                ..Default::default()
            }),
            ..Default::default()
        };
        plain.ttft.count = 3;
        plain.ttft.p50_ms = 301.8;
        plain.ttft.p95_ms = 303.6;
        let chain = LlmRecord {
            provider: "openai".into(),
            models: vec!["big".into(), "small".into()],
            fallback: true,
            stream: true,
            tiers: vec![
                TierRecord {
                    model: "big".into(),
                    served: 2,
                    failed_over: 1,
                    p50_ms: 900.0,
                    p95_ms: 950.0,
                    failover_ms_mean: 0.0,
                },
                TierRecord {
                    model: "small".into(),
                    served: 1,
                    failed_over: 0,
                    p50_ms: 310.0,
                    p95_ms: 310.0,
                    failover_ms_mean: 2.5,
                },
            ],
            ..Default::default()
        };
        let r = run(vec![
            endpoint("chat/m|a", plain, 3, 0),
            endpoint("chain", chain, 4, 1),
        ]);
        let t = super::terminal(&r);
        let row = t.lines().find(|l| l.starts_with("│ chat/m|a")).unwrap();
        for cell in [
            "300ms",
            "320ms",
            "302ms / 304ms",
            "57.8",
            "40 in / 300 out (est.)",
            "$0.0125 ($4.17/1k)",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert!(t.contains("fallback chain: big → small"), "{t}");
        let small = t.lines().find(|l| l.contains("┆ small")).unwrap();
        assert!(
            small.contains("25.0%") && small.contains("+2.5ms mean"),
            "{small}"
        );
        let failed = t.lines().find(|l| l.contains("(failed)")).unwrap();
        assert!(failed.contains("25.0%"), "{failed}");
        assert!(t.contains("no price for big, small"), "{t}");
        let md = super::markdown(&r);
        assert!(md.contains("| chat/m\\|a | 300ms | 320ms |"), "{md}");
        assert!(md.contains("**Fallback chain**: big → small"), "{md}");
        assert_eq!(super::markdown(&run(vec![])), "");
    }
}
