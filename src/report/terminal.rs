//! The table a person reads at a terminal (and in a CI log).

use comfy_table::{Cell, CellAlignment};

use super::cells::{self, describe_failure, table};
use super::{Format, RunReport};
use crate::verdict::{Call, Verdict};

pub struct Terminal;

impl Format for Terminal {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8> {
        let run = report.run;
        let mut table = table();
        table.set_header([
            "Endpoint",
            "p50",
            "p95",
            "p99",
            "Throughput",
            "Errors",
            "Status",
        ]);
        for (e, slo) in run.endpoints.iter().zip(&report.slo.endpoints) {
            let c = super::cells::run_row(e, slo);
            table.add_row(vec![
                Cell::new(&e.name),
                Cell::new(c.p50).set_alignment(CellAlignment::Right),
                Cell::new(c.p95).set_alignment(CellAlignment::Right),
                Cell::new(c.p99).set_alignment(CellAlignment::Right),
                Cell::new(c.throughput).set_alignment(CellAlignment::Right),
                Cell::new(c.errors).set_alignment(CellAlignment::Right),
                Cell::new(c.status),
            ]);
        }
        let mut out = format!("{table}\n");
        for e in &run.endpoints {
            if let Some(line) = transport_line(e) {
                out.push_str(&line);
            }
            if !e.errors.is_empty() {
                let kinds: Vec<String> = e.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push_str(&format!(
                    "  {}: errors by kind: {}\n",
                    e.name,
                    kinds.join(", ")
                ));
            }
            // A few late starts are the generator's own timer; more than 1% is the target.
            let many_late = e.late_starts as f64 > 0.01 * e.requests.max(1) as f64;
            if e.dropped_arrivals > 0 || many_late {
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
        if let Some(wait) = run
            .environment
            .as_ref()
            .and_then(|e| e.timer_delay)
            .and_then(|d| d.cpu_wait_permille)
            .filter(|w| *w > crate::environment::OVERLOADED_PERMILLE)
        {
            out.push_str(&format!(
                "⚠️  this machine was overloaded: gate's threads waited for a CPU {:.0}% of the time they were ready; latencies include that wait\n",
                wait as f64 / 10.0
            ));
        }
        if run
            .endpoints
            .iter()
            .any(|e| e.transport.as_ref().is_some_and(|t| t.insecure))
        {
            out.push_str(
                "⚠️  INSECURE: TLS certificates were not verified (--insecure / tls.insecure); the peer is unproven and the run is marked insecure\n",
            );
        }
        out.push_str(&super::llm::terminal(run));
        for ramp in crate::verdict::ramp::ramps(run) {
            out.push_str(&ramp_table(&ramp));
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

    fn render_verdict(&self, v: &Verdict) -> Vec<u8> {
        let mut out = Terminal::verdict_table(v);
        for e in &v.endpoints {
            out.push_str(&format!("  {}: {}\n", e.endpoint, super::cells::reason(e)));
            if e.call == Call::Regression
                && e.metric == crate::verdict::compare::CompareMetric::Latency
            {
                let w = e
                    .where_the_time_went()
                    .unwrap_or_else(|| "no Server-Timing from the target".into());
                out.push_str(&format!("    where the time went: {w}\n"));
            }
        }
        if let Some(slo) = &v.slo {
            for e in slo.endpoints.iter().filter(|e| !e.pass) {
                let broken: Vec<String> = e
                    .checks
                    .iter()
                    .filter(|c| !c.pass)
                    .map(describe_failure)
                    .collect();
                out.push_str(&format!(
                    "  {}: SLO broken: {}\n",
                    e.endpoint,
                    broken.join(", ")
                ));
            }
        }
        out.push_str(&format!("{}\n{}\n", v.base, v.head));
        for n in &v.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out.push_str(&format!("{}\n", super::cells::headline(v)));
        out.into_bytes()
    }
}

impl Terminal {
    pub fn verdict_table(v: &Verdict) -> String {
        let mut table = table();
        table.set_header([
            "Endpoint",
            "base p50/p95/p99",
            "head p50/p95/p99",
            cells::delta_header(v).as_str(),
            "p",
            "Verdict",
        ]);
        for e in &v.endpoints {
            let c = super::cells::verdict_row(e);
            table.add_row(vec![
                Cell::new(&e.endpoint),
                Cell::new(c.base).set_alignment(CellAlignment::Right),
                Cell::new(c.head).set_alignment(CellAlignment::Right),
                Cell::new(c.delta).set_alignment(CellAlignment::Right),
                Cell::new(c.p).set_alignment(CellAlignment::Right),
                Cell::new(super::cells::badge(e.call)),
            ]);
        }
        format!("{table}\n")
    }
}

fn ramp_table(r: &crate::verdict::ramp::RampSummary) -> String {
    let mut table = table();
    // LLM ramps also say how many output tokens a second each step delivered.
    let llm = r.rows.iter().any(|row| row.tokens_per_s.is_some());
    let mut header = vec!["Concurrency", "p50", "p95", "Throughput"];
    if llm {
        header.push("tok/s");
    }
    header.extend(["Errors", ""]);
    table.set_header(header);
    for row in &r.rows {
        let mut cells = vec![
            Cell::new(row.users).set_alignment(CellAlignment::Right),
            Cell::new(crate::units::format_ms(row.p50_ms)).set_alignment(CellAlignment::Right),
            Cell::new(crate::units::format_ms(row.p95_ms)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}/s", row.throughput_rps)).set_alignment(CellAlignment::Right),
        ];
        if llm {
            cells.push(
                Cell::new(format!("{:.1}", row.tokens_per_s.unwrap_or(0.0)))
                    .set_alignment(CellAlignment::Right),
            );
        }
        cells.extend([
            Cell::new(format!("{:.1}%", row.error_rate * 100.0))
                .set_alignment(CellAlignment::Right),
            Cell::new(if r.knee == Some(row.users) {
                "◀ knee"
            } else {
                ""
            }),
        ]);
        table.add_row(cells);
    }
    let knee = match r.knee {
        Some(k) => format!(
            "knee at {k} concurrent: throughput stopped rising while latency or errors climbed"
        ),
        None => "no knee: throughput still rose at every step".into(),
    };
    format!("ramp {}: {knee}\n{table}\n", r.group)
}

/// How an endpoint was reached, for https and HTTP/2 endpoints (plain HTTP/1.1 needs no line):
/// `  list-products: HTTP/2 over TLSv1.3 · 10 connections · connect p50 0.1ms · TLS handshake p50 2.4ms`.
fn transport_line(e: &crate::record::EndpointRecord) -> Option<String> {
    let t = e.transport.as_ref()?;
    if t.tls_version.is_none() && t.protocol != "HTTP/2" && t.proxy.is_none() {
        return None;
    }
    let mut parts = vec![match &t.tls_version {
        Some(v) => format!("{} over {v}", t.protocol),
        None if t.protocol == "HTTP/2" => format!("{} (h2c)", t.protocol),
        None => t.protocol.clone(),
    }];
    if let Some(p) = &t.proxy {
        parts.push(format!("through the proxy {p}"));
    }
    if t.insecure {
        parts.push("INSECURE (not verified)".into());
    }
    parts.push(format!("{} connections", t.connections));
    if t.streams_per_connection > 1 {
        parts.push(format!(
            "{} streams per connection",
            t.streams_per_connection
        ));
    }
    if let Some(d) = t.dns_ms {
        parts.push(format!("DNS {d:.1}ms"));
    }
    if t.connect.count > 0 {
        parts.push(format!("connect p50 {:.1}ms", t.connect.p50_ms));
    }
    if let Some(h) = t.tls_handshake.as_ref().filter(|h| h.count > 0) {
        parts.push(format!(
            "TLS handshake p50 {:.1}ms p95 {:.1}ms",
            h.p50_ms, h.p95_ms
        ));
    }
    Some(format!("  {}: {}\n", e.name, parts.join(" · ")))
}
