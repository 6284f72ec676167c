//! Terminal views of the history: the run list and one run in detail.

use comfy_table::{Cell, CellAlignment};

use crate::record::{RunSummary, StoredRun};
use crate::units::format_ms;

use super::cells::table;

pub fn list(runs: &[RunSummary]) -> String {
    let mut t = table();
    t.set_header([
        "Run",
        "Started (UTC)",
        "Branch",
        "Commit",
        "PR",
        "Label",
        "Endpoints",
        "Complete",
    ]);
    for r in runs {
        let commit = match r.git.short_commit() {
            Some(c) if r.git.dirty => format!("{c}+dirty"),
            Some(c) => c.to_string(),
            None => "—".into(),
        };
        t.add_row(vec![
            Cell::new(format!("#{}", r.id)).set_alignment(CellAlignment::Right),
            Cell::new(
                r.started_at
                    .get(..19)
                    .unwrap_or(&r.started_at)
                    .replace('T', " "),
            ),
            Cell::new(r.git.branch.as_deref().unwrap_or("—")),
            Cell::new(commit),
            Cell::new(r.pr.map(|p| format!("#{p}")).unwrap_or_default()),
            Cell::new(r.label.as_deref().unwrap_or("")),
            Cell::new(r.endpoints).set_alignment(CellAlignment::Right),
            Cell::new(if r.complete { "yes" } else { "partial" }),
        ]);
    }
    format!("{t}\n")
}

pub fn show(run: &StoredRun) -> String {
    let r = &run.record;
    let mut out = format!("run #{} ({})\n", run.id, r.uid);
    out.push_str(&format!(
        "  started   {}\n  finished  {}\n",
        r.started_at, r.finished_at
    ));
    match &r.git {
        Some(g) => out.push_str(&format!(
            "  git       {} @ {}{}{}\n",
            g.branch.as_deref().unwrap_or("(detached)"),
            g.commit.as_deref().unwrap_or("(no commit)"),
            if g.dirty { " (dirty)" } else { "" },
            g.merge_base
                .as_deref()
                .map(|m| format!(", merge-base {}", crate::git::short(m)))
                .unwrap_or_default(),
        )),
        None => out.push_str("  git       (not a git checkout)\n"),
    }
    if let Some(pr) = r.pr {
        out.push_str(&format!("  PR        #{pr}\n"));
    }
    out.push_str(&format!(
        "  target    {}\n  suite     {}\n",
        r.target, r.suite
    ));
    if let Some(e) = &r.environment {
        out.push_str(&format!(
            "  machine   {} (fingerprint {})\n",
            e.describe(),
            e.fingerprint
        ));
    }
    out.push_str(&format!(
        "  gate      {}{}{}\n",
        r.gate_version,
        r.label
            .as_deref()
            .map(|l| format!(", label {l}"))
            .unwrap_or_default(),
        if r.complete {
            ""
        } else {
            ", PARTIAL (interrupted)"
        }
    ));
    let mut t = table();
    t.set_header([
        "Endpoint",
        "Requests",
        "p50",
        "p95",
        "p99",
        "Throughput",
        "Errors",
        "Scenario hash",
    ]);
    for e in &r.endpoints {
        let has = e.latency.count > 0;
        let lat = |v: f64| if has { format_ms(v) } else { "—".into() };
        t.add_row(vec![
            Cell::new(&e.name),
            Cell::new(e.requests).set_alignment(CellAlignment::Right),
            Cell::new(lat(e.latency.p50_ms)).set_alignment(CellAlignment::Right),
            Cell::new(lat(e.latency.p95_ms)).set_alignment(CellAlignment::Right),
            Cell::new(lat(e.latency.p99_ms)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}/s", e.throughput_rps)).set_alignment(CellAlignment::Right),
            Cell::new(e.failures).set_alignment(CellAlignment::Right),
            Cell::new(&e.scenario_hash),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    out.push_str(&super::llm::terminal(r));
    out
}
