//! The table a person reads at a terminal (and in a CI log).

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

use super::{Format, RunReport};
use crate::config::duration::format_ms;
use crate::verdict::slo::Check;

pub struct Terminal;

impl Format for Terminal {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8> {
        let run = report.run;
        let mut table = Table::new();
        table
            .load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header([
                "Endpoint",
                "p50",
                "p95",
                "p99",
                "Throughput",
                "Errors",
                "Status",
            ]);
        for (e, slo) in run.endpoints.iter().zip(&report.slo.endpoints) {
            let has = e.latency.count > 0;
            let lat = |v: f64| if has { format_ms(v) } else { "—".to_string() };
            let errors = if e.failures == 0 {
                "0".to_string()
            } else {
                format!("{} ({:.1}%)", e.failures, e.error_rate * 100.0)
            };
            let status = if slo.pass {
                "✅ PASS".to_string()
            } else {
                let broken: Vec<String> = slo
                    .checks
                    .iter()
                    .filter(|c| !c.pass)
                    .map(describe_failure)
                    .collect();
                format!("❌ FAIL {}", broken.join(", "))
            };
            table.add_row(vec![
                Cell::new(&e.name),
                Cell::new(lat(e.latency.p50_ms)).set_alignment(CellAlignment::Right),
                Cell::new(lat(e.latency.p95_ms)).set_alignment(CellAlignment::Right),
                Cell::new(lat(e.latency.p99_ms)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.1}/s", e.throughput_rps)).set_alignment(CellAlignment::Right),
                Cell::new(errors).set_alignment(CellAlignment::Right),
                Cell::new(status),
            ]);
        }
        let mut out = format!("{table}\n");
        for e in &run.endpoints {
            if !e.errors.is_empty() {
                let kinds: Vec<String> = e.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push_str(&format!(
                    "  {}: errors by kind: {}\n",
                    e.name,
                    kinds.join(", ")
                ));
            }
            if e.dropped_arrivals > 0 || e.late_starts > 0 {
                out.push_str(&format!(
                    "  {}: the target fell behind the arrival rate: {} late starts, {} arrivals never sent\n",
                    e.name, e.late_starts, e.dropped_arrivals
                ));
            }
            if e.requests == 0 {
                out.push_str(&format!(
                    "  {}: no request completed in the measured window\n",
                    e.name
                ));
            }
        }
        let n = report.slo.endpoints.len();
        let failed = report.slo.failed_count();
        if !run.complete {
            out.push_str("⚠️  the run was interrupted: results are partial and do not pass\n");
        }
        if failed == 0 && run.complete {
            out.push_str(&format!("✅ all {n} endpoint(s) within their thresholds\n"));
        } else if failed > 0 {
            out.push_str(&format!(
                "❌ {failed} of {n} endpoint(s) broke a threshold\n"
            ));
        }
        out.into_bytes()
    }
}

/// "p95 312ms ≥ 300ms", "error_rate 2.5% ≥ 1%", "p95: no successful request".
pub fn describe_failure(c: &Check) -> String {
    let Some(actual) = c.actual else {
        return format!("{}: no data", c.metric);
    };
    let fmt = |v: f64| match c.metric.as_str() {
        "error_rate" => format!("{:.2}%", v * 100.0).replace(".00%", "%"),
        "throughput" => format!("{v:.1}/s"),
        _ => format_ms(v),
    };
    let negated = c.op.negated_symbol();
    format!("{} {} {negated} {}", c.metric, fmt(actual), fmt(c.limit))
}
