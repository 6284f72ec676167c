//! The data that goes into each chart, built from run records and a verdict. Kept apart from
//! drawing so tests can check the series (what a chart says) without comparing pixels.

use crate::config::{Metric, Op, Threshold};
use crate::record::{RunRecord, decode_histogram, new_histogram};
use crate::verdict::{Call, Verdict};

use super::{DistributionChart, OverviewChart, TrendChart, TrendPoint, spectrum_from_histogram};

/// "3f2a1c9\n11-22" (short commit, then month-day), or the start time without git.
pub fn run_label(r: &RunRecord) -> String {
    let date = r.started_at.get(5..10).unwrap_or("");
    match r.git.as_ref().and_then(|g| g.short_commit()) {
        Some(c) => format!("{c}\n{date}"),
        None => format!("{}\n{date}", r.started_at.get(11..16).unwrap_or("")),
    }
}

/// Trend of one endpoint: the history runs (oldest first), then the head run, highlighted and
/// marked when the verdict called it a regression.
pub fn trend(
    endpoint: &str,
    history: &[RunRecord],
    head: Option<&RunRecord>,
    verdict: Option<&Verdict>,
    thresholds: &[Threshold],
) -> TrendChart {
    let point = |r: &RunRecord, highlight: bool| {
        r.endpoints
            .iter()
            .find(|e| e.name == endpoint && e.latency.count > 0)
            .map(|e| TrendPoint {
                label: run_label(r),
                p50_ms: e.latency.p50_ms,
                p95_ms: e.latency.p95_ms,
                p99_ms: e.latency.p99_ms,
                highlight,
                regression: false,
            })
    };
    let mut points: Vec<TrendPoint> = history.iter().filter_map(|r| point(r, false)).collect();
    let comparison = verdict.and_then(|v| v.endpoints.iter().find(|e| e.endpoint == endpoint));
    if let Some(h) = head.and_then(|h| point(h, true)) {
        points.push(TrendPoint {
            regression: comparison.is_some_and(|c| c.call == Call::Regression),
            ..h
        });
    }
    let slo_p95_ms = thresholds
        .iter()
        .find(|t| t.metric == Metric::Percentile(95.0) && matches!(t.op, Op::Lt | Op::Le))
        .map(|t| t.limit);
    let noise_band_ms = comparison.and_then(|c| {
        let n = c.noise?;
        (n.runs >= 2).then(|| {
            (
                n.median_ms * (1.0 - n.relative).max(0.0),
                n.median_ms * (1.0 + n.relative),
            )
        })
    });
    TrendChart {
        endpoint: endpoint.to_string(),
        points,
        slo_p95_ms,
        noise_band_ms,
    }
}

/// Base vs head percentile spectrum of one endpoint, from the pooled histograms.
pub fn distribution(
    endpoint: &str,
    base: &[RunRecord],
    head: &[RunRecord],
    base_label: &str,
    head_label: &str,
) -> DistributionChart {
    let pool = |runs: &[RunRecord]| {
        let mut h = new_histogram();
        for e in runs
            .iter()
            .flat_map(|r| &r.endpoints)
            .filter(|e| e.name == endpoint)
        {
            if let Ok(one) = decode_histogram(&e.latency.histogram) {
                let _ = h.add(&one);
            }
        }
        h
    };
    DistributionChart {
        endpoint: endpoint.to_string(),
        base: spectrum_from_histogram(base_label, &pool(base)),
        head: spectrum_from_histogram(head_label, &pool(head)),
    }
}

/// p95 of every endpoint over the runs (oldest first): the chart a team looks at first.
pub fn overview(title: &str, runs: &[RunRecord]) -> OverviewChart {
    let mut names: Vec<String> = Vec::new();
    for e in runs.iter().flat_map(|r| &r.endpoints) {
        if !names.contains(&e.name) {
            names.push(e.name.clone());
        }
    }
    let series = names
        .iter()
        .map(|n| {
            let values = runs
                .iter()
                .map(|r| {
                    r.endpoints
                        .iter()
                        .find(|e| &e.name == n && e.latency.count > 0)
                        .map(|e| e.latency.p95_ms)
                })
                .collect();
            (n.clone(), values)
        })
        .collect();
    OverviewChart {
        title: title.to_string(),
        run_labels: runs.iter().map(run_label).collect(),
        series,
    }
}
