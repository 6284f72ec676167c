//! Absolute SLO thresholds (`p95 < 300ms`): a simple PASS/FAIL per endpoint, separate from the
//! statistical comparison with a baseline.

use serde::{Deserialize, Serialize};

use crate::config::{Metric, Op, Threshold};
use crate::exit::Outcome;
use crate::record::{EndpointRecord, RunRecord};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub threshold: String,
    pub metric: String,
    /// The measured value in the metric's unit (ms, fraction, requests/s); None = no data.
    pub actual: Option<f64>,
    pub limit: f64,
    pub op: Op,
    pub pass: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointSlo {
    pub endpoint: String,
    pub checks: Vec<Check>,
    pub pass: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SloReport {
    pub endpoints: Vec<EndpointSlo>,
    pub pass: bool,
    /// The run was interrupted; an incomplete run never passes.
    pub complete: bool,
}

impl SloReport {
    pub fn outcome(&self) -> Outcome {
        if self.pass {
            Outcome::Pass
        } else {
            Outcome::GateFailed
        }
    }

    pub fn failed_count(&self) -> usize {
        self.endpoints.iter().filter(|e| !e.pass).count()
    }
}

/// Evaluate each endpoint against its thresholds (matched by endpoint name).
pub fn evaluate_slo(run: &RunRecord, thresholds: &dyn Fn(&str) -> Vec<Threshold>) -> SloReport {
    let endpoints: Vec<EndpointSlo> = run
        .endpoints
        .iter()
        .map(|e| {
            let checks: Vec<Check> = thresholds(&e.name).iter().map(|t| check(e, t)).collect();
            let pass = checks.iter().all(|c| c.pass);
            EndpointSlo {
                endpoint: e.name.clone(),
                checks,
                pass,
            }
        })
        .collect();
    let pass = run.complete && endpoints.iter().all(|e| e.pass);
    SloReport {
        endpoints,
        pass,
        complete: run.complete,
    }
}

fn check(e: &EndpointRecord, t: &Threshold) -> Check {
    let actual = actual(e, t.metric);
    // A latency threshold with no successful request cannot be met: "no data" is a failure,
    // never a silent pass.
    let pass = actual.is_some_and(|a| t.op.holds(a, t.limit));
    Check {
        threshold: t.text.clone(),
        metric: t.metric_name(),
        actual,
        limit: t.limit,
        op: t.op,
        pass,
    }
}

pub fn actual(e: &EndpointRecord, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Percentile(q) => e.latency.percentile_ms(q),
        Metric::TtfbPercentile(q) => e.ttfb.percentile_ms(q),
        Metric::Mean => (e.latency.count > 0).then_some(e.latency.mean_ms),
        Metric::Max => (e.latency.count > 0).then_some(e.latency.max_ms),
        Metric::ErrorRate => (e.requests > 0).then_some(e.error_rate),
        Metric::Throughput => Some(e.throughput_rps),
        // LLM metrics: no data (a failure) on an endpoint that is not an LLM one.
        Metric::TtftPercentile(q) => e.llm.as_ref().and_then(|l| l.ttft.percentile_ms(q)),
        Metric::TokensPerSecond => e
            .llm
            .as_ref()
            .filter(|_| e.successes > 0)
            .map(|l| l.output_tps_mean),
    }
}
