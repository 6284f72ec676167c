//! The pages: the index (every endpoint at a glance, the runs), a page per endpoint, a page per
//! LLM scenario. Flat layout: every page sits at the site root, so every link is a bare file name.

use std::fmt::Write as _;

use crate::chart::{self, ChartSize, LinesChart, SparkChart, SparkPoint, TrendChart, TrendPoint};
use crate::record::EndpointRecord;
use crate::verdict::Call;

use super::html::{esc, ms, page, percent, stylesheet};
use super::model::{EndpointView, LlmView, Model, RunCall, RunView};
use super::site::{DashboardError, Site};

const SMALL: ChartSize = ChartSize {
    width: 480,
    height: 240,
};
const LARGE: ChartSize = ChartSize {
    width: 1200,
    height: 560,
};

pub(super) fn render(m: &Model<'_>) -> Result<Site, DashboardError> {
    let mut files = vec![("assets/gate.css".to_string(), stylesheet())];
    files.push(("index.html".into(), index(m)?));
    for e in &m.endpoints {
        files.push((e.file.clone(), endpoint_page(m, e)?));
    }
    for l in &m.llm {
        files.push((l.file.clone(), llm_page(m, l)?));
    }
    Ok(Site { files })
}

fn nav(m: &Model<'_>) -> Vec<(String, String)> {
    let mut out = vec![("index.html".to_string(), "Overview".to_string())];
    for l in &m.llm {
        out.push((l.file.clone(), format!("LLM: {}", l.scenario)));
    }
    out
}

fn svg(bytes: Vec<u8>) -> String {
    // The chart room writes UTF-8; a lossy conversion can only ever replace, never inject.
    String::from_utf8_lossy(&bytes).into_owned()
}

fn badge(call: &RunCall) -> String {
    let list = |v: &[String]| v.iter().map(|n| esc(n)).collect::<Vec<_>>().join(", ");
    match call {
        RunCall::Pass => "<span class=\"badge pass\">pass</span>".into(),
        RunCall::Regression(names) => format!(
            "<span class=\"badge fail\">regression</span> {}",
            list(names)
        ),
        RunCall::SloBroken(names) => format!(
            "<span class=\"badge fail\">SLO broken</span> {}",
            list(names)
        ),
        RunCall::Inconclusive => "<span class=\"badge warn\">inconclusive</span>".into(),
        RunCall::NoBaseline => "<span class=\"badge none\">no baseline yet</span>".into(),
        RunCall::Partial => "<span class=\"badge warn\">partial run</span>".into(),
    }
}

fn call_badge(call: Option<Call>) -> &'static str {
    match call {
        Some(Call::Regression) => "<span class=\"badge fail\">regression</span>",
        Some(Call::Improvement) => "<span class=\"badge pass\">faster</span>",
        Some(Call::NoChange) => "<span class=\"badge pass\">no change</span>",
        Some(Call::Inconclusive) => "<span class=\"badge warn\">inconclusive</span>",
        None => "<span class=\"badge none\">–</span>",
    }
}

fn slo_badge(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "<span class=\"badge pass\">PASS</span>",
        Some(false) => "<span class=\"badge fail\">FAIL</span>",
        None => "<span class=\"badge none\">no SLO</span>",
    }
}

/// The newest run that measured this endpoint.
fn latest<'m, 'a>(m: &'m Model<'a>, name: &str) -> Option<(&'m RunView<'a>, &'m EndpointRecord)> {
    m.runs
        .iter()
        .rev()
        .find_map(|r| r.endpoint(name).map(|e| (r, e)))
}

/// "2026-11-08 10:00" from RFC 3339.
fn when(started_at: &str) -> String {
    started_at.get(..16).unwrap_or(started_at).replace('T', " ")
}

fn run_cells(r: &RunView<'_>) -> String {
    let g = r.record.git.as_ref();
    let commit = match r.commit() {
        Some(c) => format!(
            "<code>{}</code>{}",
            esc(c),
            if g.is_some_and(|g| g.dirty) {
                " (dirty)"
            } else {
                ""
            }
        ),
        None => "–".into(),
    };
    let pr = r.record.pr.map_or("–".to_string(), |p| format!("#{p}"));
    format!(
        "<td class=\"num\">#{}</td><td>{}</td><td>{commit}</td><td>{}</td><td>{}</td>",
        r.id,
        esc(&when(&r.record.started_at)),
        esc(&pr),
        esc(r.record.label.as_deref().unwrap_or("–")),
    )
}

fn index(m: &Model<'_>) -> Result<Vec<u8>, DashboardError> {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>Performance dashboard</h1>");
    let (first, last) = (m.runs.first(), m.runs.last());
    let _ = writeln!(
        b,
        "<p class=\"meta\">Branch <code>{}</code> · {} run(s){}{}</p>",
        esc(&m.branch),
        m.runs.len(),
        first.map_or(String::new(), |r| format!(
            " · from {}",
            esc(&when(&r.record.started_at))
        )),
        last.map_or(String::new(), |r| format!(
            " to {}",
            esc(&when(&r.record.started_at))
        )),
    );
    match last {
        Some(r) => {
            let _ = writeln!(
                b,
                "<div class=\"banner\">Latest run #{} ({}): {} <span class=\"meta\">· target {}</span></div>",
                r.id,
                esc(&r.label()),
                badge(&r.call),
                esc(&r.record.target)
            );
        }
        None => {
            let _ = writeln!(
                b,
                "<div class=\"banner\">No runs of this branch in the history yet: run <code>gate run</code> on it, then build the dashboard again.</div>"
            );
        }
    }

    let _ = writeln!(b, "<h2>Endpoints</h2>");
    if !m.endpoints.is_empty() {
        b.push_str("<table class=\"endpoints\">\n<tr><th>Endpoint</th><th>p50 (ms)</th><th>p95 (ms)</th><th>p99 (ms)</th><th>Throughput (req/s)</th><th>Errors</th><th>SLO</th><th>Latest call</th></tr>\n");
        for e in &m.endpoints {
            let Some((run, rec)) = latest(m, &e.name) else {
                continue;
            };
            let _ = writeln!(
                b,
                "<tr><td><a href=\"{}\">{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.file),
                esc(&e.name),
                ms(rec.latency.p50_ms),
                ms(rec.latency.p95_ms),
                ms(rec.latency.p99_ms),
                rec.throughput_rps,
                percent(rec.error_rate),
                slo_badge(run.slo_pass(&e.name)),
                call_badge(run.comparison(&e.name).map(|c| c.call)),
            );
        }
        b.push_str("</table>\n");

        let _ = writeln!(
            b,
            "<h2>p95 trend per endpoint</h2>\n<p class=\"meta\">Oldest run on the left; a red ring marks a run flagged as a regression against the runs before it. Click a chart for the endpoint's page.</p>\n<div class=\"grid\">"
        );
        for e in &m.endpoints {
            let chart = SparkChart {
                title: e.name.clone(),
                measure: "p95".into(),
                points: m
                    .runs
                    .iter()
                    .map(|r| SparkPoint {
                        label: format!("run #{} {}", r.id, r.label()),
                        value: r
                            .endpoint(&e.name)
                            .filter(|x| x.latency.count > 0)
                            .map(|x| x.latency.p95_ms),
                        regression: r.regressed(&e.name),
                    })
                    .collect(),
                slo_ms: e.slo_p95_ms(),
            };
            let _ = writeln!(
                b,
                "<a href=\"{}\" title=\"{}\">{}</a>",
                esc(&e.file),
                esc(&e.name),
                svg(chart::spark_svg(&chart, SMALL)?)
            );
        }
        b.push_str("</div>\n");
    } else {
        b.push_str("<p>No endpoints measured yet.</p>\n");
    }

    if !m.llm.is_empty() {
        let _ = writeln!(b, "<h2>LLM scenarios</h2>\n<ul>");
        for l in &m.llm {
            let models: Vec<String> = l.models.iter().map(|(n, _)| esc(n)).collect();
            let _ = writeln!(
                b,
                "<li><a href=\"{}\">{}</a>: {}</li>",
                esc(&l.file),
                esc(&l.scenario),
                models.join(", ")
            );
        }
        b.push_str("</ul>\n");
    }

    let _ = writeln!(
        b,
        "<h2>Runs</h2>\n<p class=\"meta\">Newest first. Each run is compared with up to 5 complete runs before it in the same environment, and checked against its SLO thresholds.</p>"
    );
    b.push_str("<table class=\"runs\">\n<tr><th>Run</th><th>Started (UTC)</th><th>Commit</th><th>PR</th><th>Label</th><th>Verdict</th></tr>\n");
    for r in m.runs.iter().rev() {
        let _ = writeln!(b, "<tr>{}<td>{}</td></tr>", run_cells(r), badge(&r.call));
    }
    b.push_str("</table>\n");
    Ok(page(&format!("gate dashboard · {}", m.branch), &nav(m), &b))
}

fn endpoint_page(m: &Model<'_>, e: &EndpointView) -> Result<Vec<u8>, DashboardError> {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", esc(&e.name));
    if let Some((_, rec)) = latest(m, &e.name) {
        let _ = writeln!(
            b,
            "<p class=\"meta\"><code>{} {}</code> · {}</p>",
            esc(&rec.method),
            esc(&rec.url),
            esc(&rec.scenario_file)
        );
    }
    if e.thresholds.is_empty() {
        b.push_str("<p class=\"meta\">No SLO thresholds for this endpoint in the suite.</p>\n");
    } else {
        let list: Vec<String> = e
            .thresholds
            .iter()
            .map(|t| format!("<code>{}</code>", esc(&t.text)))
            .collect();
        let _ = writeln!(b, "<p>SLO thresholds: {}</p>", list.join(" "));
    }
    let points: Vec<TrendPoint> = m
        .runs
        .iter()
        .filter_map(|r| {
            let x = r.endpoint(&e.name).filter(|x| x.latency.count > 0)?;
            Some(TrendPoint {
                label: format!("#{} {}", r.id, chart::series::run_label(r.record)),
                p50_ms: x.latency.p50_ms,
                p95_ms: x.latency.p95_ms,
                p99_ms: x.latency.p99_ms,
                highlight: false,
                regression: r.regressed(&e.name),
            })
        })
        .collect();
    let trend = TrendChart {
        endpoint: e.name.clone(),
        points,
        slo_p95_ms: e.slo_p95_ms(),
        noise_band_ms: None,
        measure: "latency",
    };
    let _ = writeln!(
        b,
        "<div class=\"wide\">{}</div>",
        svg(chart::trend_svg(&trend, LARGE)?)
    );

    b.push_str("<h2>Runs</h2>\n<table class=\"runs\">\n<tr><th>Run</th><th>Started (UTC)</th><th>Commit</th><th>PR</th><th>Label</th><th>p50</th><th>p95</th><th>p99</th><th>req/s</th><th>Errors</th><th>SLO</th><th>vs runs before</th></tr>\n");
    for r in m.runs.iter().rev() {
        let Some(x) = r.endpoint(&e.name) else {
            continue;
        };
        let change = r.comparison(&e.name).map_or(String::new(), |c| {
            let delta = c
                .p95_change
                .as_ref()
                .map_or(String::new(), |d| format!(" p95 {:+.1}%", d.point * 100.0));
            format!(
                "{}{} <span class=\"meta\">({} base runs)</span>",
                call_badge(Some(c.call)),
                esc(&delta),
                r.base_runs
            )
        });
        let change = if change.is_empty() {
            call_badge(None).to_string()
        } else {
            change
        };
        let _ = writeln!(
            b,
            "<tr>{}<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td>{}</td><td>{change}</td></tr>",
            run_cells(r),
            ms(x.latency.p50_ms),
            ms(x.latency.p95_ms),
            ms(x.latency.p99_ms),
            x.throughput_rps,
            percent(x.error_rate),
            slo_badge(r.slo_pass(&e.name)),
        );
    }
    b.push_str("</table>\n");
    Ok(page(&format!("{} · gate dashboard", e.name), &nav(m), &b))
}

fn llm_page(m: &Model<'_>, l: &LlmView) -> Result<Vec<u8>, DashboardError> {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>LLM: {}</h1>", esc(&l.scenario));
    let models: Vec<String> = l
        .models
        .iter()
        .map(|(n, _)| format!("<code>{}</code>", esc(n)))
        .collect();
    let _ = writeln!(
        b,
        "<p class=\"meta\">Models: {} · one line per model, oldest run on the left</p>",
        models.join(" ")
    );
    let runs: Vec<&RunView<'_>> = m
        .runs
        .iter()
        .filter(|r| l.models.iter().any(|(_, n)| r.endpoint(n).is_some()))
        .collect();
    let labels: Vec<String> = runs
        .iter()
        .map(|r| chart::series::run_label(r.record))
        .collect();
    type Pick = fn(&EndpointRecord) -> Option<f64>;
    let charts: [(&str, &str, &str, &str, Pick); 3] = [
        (
            "Time to first token (p95)",
            "TTFT p95",
            "ms",
            "TTFT p95 (ms)",
            |e| {
                e.llm
                    .as_ref()
                    .filter(|l| l.ttft.count > 0)
                    .map(|l| l.ttft.p95_ms)
            },
        ),
        (
            "Output tokens per second (mean per request)",
            "tok/s",
            "tok/s",
            "output tok/s",
            |e| {
                e.llm
                    .as_ref()
                    .filter(|_| e.successes > 0)
                    .map(|l| l.output_tps_mean)
            },
        ),
        (
            "Cost per 1,000 requests",
            "cost per 1k requests",
            "USD",
            "USD per 1k requests",
            |e| {
                e.llm
                    .as_ref()
                    .and_then(|l| l.cost.as_ref())
                    .map(|c| c.per_1k_usd)
            },
        ),
    ];
    for (title, measure, unit, axis, pick) in charts {
        let chart = LinesChart {
            title: format!("{} — {title}", l.scenario),
            measure: measure.into(),
            per: "model".into(),
            unit: unit.into(),
            axis: axis.into(),
            run_labels: labels.clone(),
            series: l
                .models
                .iter()
                .map(|(model, name)| {
                    let values = runs
                        .iter()
                        .map(|r| r.endpoint(name).and_then(pick))
                        .collect();
                    (model.clone(), values)
                })
                .collect(),
        };
        let _ = writeln!(
            b,
            "<div class=\"wide\">{}</div>",
            svg(chart::lines_svg(&chart, LARGE)?)
        );
    }

    b.push_str("<h2>Latest figures</h2>\n<table>\n<tr><th>Model</th><th>Endpoint</th><th>Run</th><th>TTFT p50</th><th>TTFT p95</th><th>tok/s</th><th>Cost / 1k req</th><th>Errors</th></tr>\n");
    for (model, name) in &l.models {
        let Some((r, e)) = latest(m, name) else {
            continue;
        };
        let Some(x) = &e.llm else { continue };
        let ttft = |v: f64| {
            if x.ttft.count > 0 {
                ms(v)
            } else {
                "–".into()
            }
        };
        let endpoint_file = m
            .endpoints
            .iter()
            .find(|v| v.name == *name)
            .map_or("index.html", |v| v.file.as_str());
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td class=\"num\">#{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(model),
            esc(endpoint_file),
            esc(name),
            r.id,
            ttft(x.ttft.p50_ms),
            ttft(x.ttft.p95_ms),
            x.output_tps_mean,
            x.cost
                .as_ref()
                .map_or("–".to_string(), |c| format!("${:.4}", c.per_1k_usd)),
            percent(e.error_rate),
        );
    }
    b.push_str("</table>\n");
    Ok(page(
        &format!("LLM {} · gate dashboard", l.scenario),
        &nav(m),
        &b,
    ))
}
