//! The data that goes into each chart, built from run records and a verdict. Kept apart from
//! drawing so tests can check the series (what a chart says) without comparing pixels.

use crate::config::{Metric, Op, Threshold};
use crate::record::{RunRecord, decode_histogram, new_histogram};
use crate::verdict::compare::CompareMetric;
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
    trend_of(
        CompareMetric::Latency,
        endpoint,
        history,
        head,
        verdict,
        thresholds,
    )
}

/// The trend of one metric of an endpoint: latency, or an LLM endpoint's time to first token
/// (its verdict row is `endpoint · TTFT`, its SLO line a `ttft_p95` threshold).
pub fn trend_of(
    metric: CompareMetric,
    endpoint: &str,
    history: &[RunRecord],
    head: Option<&RunRecord>,
    verdict: Option<&Verdict>,
    thresholds: &[Threshold],
) -> TrendChart {
    let point = |r: &RunRecord, highlight: bool| {
        r.endpoints
            .iter()
            .filter(|e| e.name == endpoint)
            .filter_map(|e| metric.summary(e))
            .find(|s| s.count > 0)
            .map(|s| TrendPoint {
                label: run_label(r),
                p50_ms: s.p50_ms,
                p95_ms: s.p95_ms,
                p99_ms: s.p99_ms,
                highlight,
                regression: false,
            })
    };
    let row = metric.label(endpoint);
    let mut points: Vec<TrendPoint> = history.iter().filter_map(|r| point(r, false)).collect();
    let comparison = verdict.and_then(|v| v.endpoints.iter().find(|e| e.endpoint == row));
    if let Some(h) = head.and_then(|h| point(h, true)) {
        points.push(TrendPoint {
            regression: comparison.is_some_and(|c| c.call == Call::Regression),
            ..h
        });
    }
    let p95 = match metric {
        CompareMetric::Ttft => Metric::TtftPercentile(95.0),
        _ => Metric::Percentile(95.0),
    };
    let slo_p95_ms = thresholds
        .iter()
        .find(|t| t.metric == p95 && matches!(t.op, Op::Lt | Op::Le))
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
        measure: match metric {
            CompareMetric::Ttft => "time to first token",
            _ => "latency",
        },
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

/// p50/p95 and throughput per step of one ramp, knee marked.
pub fn ramp(summary: &crate::verdict::ramp::RampSummary) -> super::RampChart {
    super::RampChart {
        endpoint: summary.group.clone(),
        steps: summary
            .rows
            .iter()
            .map(|r| super::RampStep {
                concurrency: r.users,
                p50_ms: r.p50_ms,
                p95_ms: r.p95_ms,
                throughput_rps: r.throughput_rps,
                error_rate: r.error_rate,
            })
            .collect(),
        knee: summary.knee,
    }
}

/// One model-comparison chart per LLM scenario of a run (its models side by side); ramp steps
/// are left to the ramp chart. The scenario is the endpoint name before its `/model`.
pub fn models(run: &RunRecord) -> Vec<super::ModelChart> {
    let mut out: Vec<super::ModelChart> = Vec::new();
    for e in run.endpoints.iter().filter(|e| e.ramp.is_none()) {
        let Some(l) = &e.llm else { continue };
        let (scenario, model) = match e.name.rsplit_once('/') {
            Some((s, m)) if !l.fallback => (s.to_string(), m.to_string()),
            _ => (e.name.clone(), l.models.join(" → ")),
        };
        let bar = super::ModelBar {
            name: model,
            ttft_p50_ms: if l.ttft.count > 0 {
                l.ttft.p50_ms
            } else {
                f64::NAN
            },
            ttft_p95_ms: if l.ttft.count > 0 {
                l.ttft.p95_ms
            } else {
                f64::NAN
            },
            tokens_per_s: if e.successes > 0 {
                l.output_tps_mean
            } else {
                f64::NAN
            },
            cost_per_1k: l.cost.as_ref().map(|c| c.per_1k_usd),
            error_rate: e.error_rate,
        };
        match out.iter_mut().find(|c| c.title == scenario) {
            Some(c) => c.models.push(bar),
            None => out.push(super::ModelChart {
                title: scenario,
                models: vec![bar],
            }),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::GitInfo;
    use crate::record::{EndpointRecord, LatencySummary, LoadRecord, RECORD_VERSION};

    fn run(commit: &str, day: u32, p: [(&str, f64); 2]) -> RunRecord {
        let endpoints = p
            .iter()
            .map(|(name, ms)| {
                let mut h = new_histogram();
                for i in 0..200u64 {
                    h.record((ms * 1000.0) as u64 + i * 10).unwrap();
                }
                EndpointRecord {
                    name: name.to_string(),
                    scenario_file: String::new(),
                    scenario_hash: "h".into(),
                    method: "GET".into(),
                    url: "/".into(),
                    load: LoadRecord {
                        model: "open".into(),
                        users: None,
                        rate_per_s: Some(100.0),
                        duration_s: 1.0,
                        warmup_s: 0.0,
                    },
                    requests: 200,
                    successes: 200,
                    failures: 0,
                    elapsed_s: 1.0,
                    throughput_rps: 200.0,
                    error_rate: 0.0,
                    latency: LatencySummary::from_histogram(&h),
                    ttfb: LatencySummary::percentiles_of(&h),
                    status_counts: Default::default(),
                    errors: Default::default(),
                    server_timing: Default::default(),
                    late_starts: 0,
                    dropped_arrivals: 0,
                    bytes_received: 0,
                    ramp: None,
                    llm: None,
                    transport: None,
                }
            })
            .collect();
        RunRecord {
            version: RECORD_VERSION,
            uid: String::new(),
            gate_version: String::new(),
            started_at: format!("2026-11-{day:02}T10:00:00.000Z"),
            finished_at: String::new(),
            target: String::new(),
            suite: String::new(),
            label: None,
            complete: true,
            faults: Vec::new(),
            git: Some(GitInfo {
                commit: Some(commit.into()),
                branch: Some("main".into()),
                merge_base: None,
                dirty: false,
            }),
            pr: None,
            environment: None,
            endpoints,
        }
    }

    #[test]
    fn an_llm_endpoint_has_a_ttft_trend_of_its_own() {
        let with_ttft = |commit: &str, day: u32, latency_ms: f64, ttft_ms: f64| {
            let mut r = run(commit, day, [("chat", latency_ms), ("list", 2.0)]);
            let mut h = new_histogram();
            for i in 0..50u64 {
                h.record((ttft_ms * 1000.0) as u64 + i).unwrap();
            }
            r.endpoints[0].llm = Some(crate::record::LlmRecord {
                ttft: LatencySummary::from_histogram(&h),
                ..Default::default()
            });
            r
        };
        let history = vec![
            with_ttft("a1", 18, 900.0, 150.0),
            with_ttft("b2", 19, 910.0, 152.0),
        ];
        let head = with_ttft("c3", 20, 905.0, 400.0);
        let thresholds = vec![
            crate::config::parse_threshold("p95 < 5s").unwrap(),
            crate::config::parse_threshold("ttft_p95 < 1s").unwrap(),
        ];
        let t = trend_of(
            CompareMetric::Ttft,
            "chat",
            &history,
            Some(&head),
            None,
            &thresholds,
        );
        assert_eq!(t.measure, "time to first token");
        let p50: Vec<f64> = t.points.iter().map(|p| p.p50_ms.round()).collect();
        assert_eq!(p50, [150.0, 152.0, 400.0], "TTFT, not latency");
        assert_eq!(
            t.slo_p95_ms,
            Some(1000.0),
            "the ttft_p95 threshold, not p95"
        );
        assert!(t.points[2].highlight);
        let l = trend("chat", &history, Some(&head), None, &thresholds);
        assert_eq!((l.measure, l.slo_p95_ms), ("latency", Some(5000.0)));
        // An endpoint without TTFT has no TTFT points.
        let none = trend_of(
            CompareMetric::Ttft,
            "list",
            &history,
            Some(&head),
            None,
            &[],
        );
        assert!(none.points.is_empty());
    }

    /// The series that go into the charts, as a reader of the chart would describe them.
    #[test]
    fn series_snapshot() {
        let history = vec![
            run("aaaaaaa1", 18, [("orders", 10.0), ("list", 2.0)]),
            run("bbbbbbb2", 19, [("orders", 11.0), ("list", 2.1)]),
        ];
        let head = run("ccccccc3", 20, [("orders", 25.0), ("list", 2.0)]);
        let thresholds = vec![
            crate::config::parse_threshold("p95 < 300ms").unwrap(),
            crate::config::parse_threshold("p50 < 100ms").unwrap(),
        ];
        let trend = trend("orders", &history, Some(&head), None, &thresholds);
        let mut all = history.clone();
        all.push(head.clone());
        let ov = overview("p95", &all);
        let dist = distribution(
            "orders",
            &history,
            std::slice::from_ref(&head),
            "base",
            "head",
        );
        let spectrum = |s: &crate::chart::Spectrum| {
            s.points
                .iter()
                .filter(|(p, _)| [50.0, 90.0, 99.0].contains(p))
                .map(|(p, ms)| format!("p{p}={ms:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text = format!(
            "trend {} slo={:?} noise={:?}\n{}\noverview labels={:?}\n{}\ndistribution base: {}\ndistribution head: {}\n",
            trend.endpoint,
            trend.slo_p95_ms,
            trend.noise_band_ms,
            trend
                .points
                .iter()
                .map(|p| format!(
                    "  {:?} p50={:.2} p95={:.2} p99={:.2} highlight={} regression={}",
                    p.label, p.p50_ms, p.p95_ms, p.p99_ms, p.highlight, p.regression
                ))
                .collect::<Vec<_>>()
                .join("\n"),
            ov.run_labels,
            ov.series
                .iter()
                .map(|(n, v)| format!("  {n}: {v:?}"))
                .collect::<Vec<_>>()
                .join("\n"),
            spectrum(&dist.base),
            spectrum(&dist.head),
        );
        insta::assert_snapshot!(text);
    }
}
