//! Markdown for pull-request comments, job summaries and `gate compare --format markdown`.
//! Everything that came from the target or a scenario file is escaped: an endpoint called
//! `<img src=x>` or `a|b` must not break the table or inject HTML.

use super::{Format, RunReport, cells};
use crate::verdict::{Call, Verdict};

pub struct Markdown;

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

impl Format for Markdown {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8> {
        let mut out = String::from(
            "| Endpoint | p50 | p95 | p99 | Throughput | Errors | Status |\n|---|--:|--:|--:|--:|--:|---|\n",
        );
        for (e, slo) in report.run.endpoints.iter().zip(&report.slo.endpoints) {
            let c = cells::run_row(e, slo);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                escape(&e.name),
                c.p50,
                c.p95,
                c.p99,
                c.throughput,
                c.errors,
                escape(&c.status)
            ));
        }
        out.push_str(&super::llm::markdown(report.run));
        out.into_bytes()
    }

    fn render_verdict(&self, v: &Verdict) -> Vec<u8> {
        let mut out = format!("### {}\n\n", v.headline());
        out.push_str("| Endpoint | base p50 / p95 / p99 | head p50 / p95 / p99 | Δp95 (95% CI) | p | Verdict |\n");
        out.push_str("|---|--:|--:|--:|--:|---|\n");
        for e in &v.endpoints {
            let c = cells::verdict_row(e);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                escape(&e.endpoint),
                c.base,
                c.head,
                c.delta,
                c.p,
                e.call.badge()
            ));
        }
        let regressed: Vec<_> = v
            .endpoints
            .iter()
            .filter(|e| e.call == Call::Regression)
            .filter(|e| e.metric == crate::verdict::compare::CompareMetric::Latency)
            .collect();
        if !regressed.is_empty() {
            out.push_str("\n**Where the time went** (Server-Timing, mean per request)\n\n");
            for e in regressed {
                match e.where_the_time_went() {
                    Some(w) => out.push_str(&format!(
                        "- `{}`: {}\n",
                        e.endpoint.replace('`', "'"),
                        escape(&w)
                    )),
                    None => out.push_str(&format!(
                        "- `{}`: the target sent no Server-Timing\n",
                        e.endpoint.replace('`', "'")
                    )),
                }
            }
        }
        if let Some(slo) = &v.slo {
            let failed: Vec<_> = slo.endpoints.iter().filter(|e| !e.pass).collect();
            if !failed.is_empty() {
                out.push_str("\n**SLO thresholds broken**\n\n");
                for e in failed {
                    let broken: Vec<String> = e
                        .checks
                        .iter()
                        .filter(|c| !c.pass)
                        .map(super::terminal::describe_failure)
                        .collect();
                    out.push_str(&format!(
                        "- `{}`: {}\n",
                        e.endpoint.replace('`', "'"),
                        escape(&broken.join(", "))
                    ));
                }
            }
        }
        out.push_str(&format!("\n{} · {}\n", escape(&v.base), escape(&v.head)));
        for note in &v.notes {
            out.push_str(&format!("\n> {}\n", escape(note)));
        }
        out.push_str("\n<details><summary>Details per endpoint</summary>\n\n");
        for e in &v.endpoints {
            out.push_str(&format!(
                "- **{}** — {}: {}\n",
                escape(&e.endpoint),
                e.call.badge(),
                escape(&e.reason)
            ));
        }
        out.push_str("\n</details>\n");
        out.into_bytes()
    }
}
