//! Absolute SLO thresholds (`p95 < 300ms`): a simple PASS/FAIL per endpoint, separate from the
//! statistical comparison with a baseline.
//!
//! Two defaults apply whatever the scenario writes, so a gate is never green on a dead target:
//! an endpoint with no successful request fails, and one with no `error_rate` threshold of its
//! own fails above [`DEFAULT_ERROR_RATE_CEILING`]. Ramp steps are exempt from the ceiling (a
//! ramp is meant to push past capacity) and need one success somewhere in their ramp.

use serde::{Deserialize, Serialize};

use crate::config::{Metric, Op, Threshold};
use crate::exit::Outcome;
use crate::record::{EndpointRecord, RunRecord};

/// With no `error_rate` threshold of its own, an endpoint fails when more than this fraction of
/// its requests failed. A scenario that expects more writes its own (`error_rate < 50%`).
pub const DEFAULT_ERROR_RATE_CEILING: f64 = 0.10;

/// The metric name of the "at least one successful request" check.
pub const SUCCESSES: &str = "successes";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub threshold: String,
    /// Not written by the user: one of gate's defaults (see the module docs).
    #[serde(default)]
    pub default: bool,
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

impl EndpointSlo {
    /// The checks worth showing: every threshold the user wrote, and a default only when it
    /// failed (a met default is noise in every table).
    pub fn shown(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.default || !c.pass)
    }
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
            let written = thresholds(&e.name);
            let mut checks: Vec<Check> = written.iter().map(|t| check(e, t)).collect();
            checks.extend(default_checks(run, e, &written));
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

/// gate's own checks (module docs): at least one successful request, and the error-rate
/// ceiling unless the scenario set its own `error_rate` threshold.
fn default_checks(run: &RunRecord, e: &EndpointRecord, written: &[Threshold]) -> Vec<Check> {
    let mut out = Vec::new();
    let (successes, threshold) = match &e.ramp {
        // A ramp step at a concurrency past capacity may fail whole; the ramp may not.
        Some(step) => (
            run.endpoints
                .iter()
                .filter(|o| o.ramp.as_ref().is_some_and(|r| r.group == step.group))
                .map(|o| o.successes)
                .sum::<u64>(),
            format!("successful requests in ramp {} > 0", step.group),
        ),
        None => (e.successes, "successful requests > 0".to_string()),
    };
    out.push(Check {
        threshold,
        default: true,
        metric: SUCCESSES.into(),
        actual: Some(successes as f64),
        limit: 0.0,
        op: Op::Gt,
        pass: successes > 0,
    });
    let own_ceiling = written.iter().any(|t| t.metric == Metric::ErrorRate);
    if !own_ceiling && e.ramp.is_none() && e.requests > 0 {
        out.push(Check {
            threshold: format!("error_rate < {}%", DEFAULT_ERROR_RATE_CEILING * 100.0),
            default: true,
            metric: "error_rate".into(),
            actual: Some(e.error_rate),
            limit: DEFAULT_ERROR_RATE_CEILING,
            op: Op::Lt,
            pass: e.error_rate < DEFAULT_ERROR_RATE_CEILING,
        });
    }
    out
}

fn check(e: &EndpointRecord, t: &Threshold) -> Check {
    let actual = actual(e, t.metric);
    // A latency threshold with no successful request cannot be met: "no data" is a failure,
    // never a silent pass.
    let pass = actual.is_some_and(|a| t.op.holds(a, t.limit));
    Check {
        threshold: t.text.clone(),
        default: false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_threshold;

    /// An endpoint of `requests` requests of which `failures` failed.
    fn endpoint(
        name: &str,
        requests: u64,
        failures: u64,
        ramp: Option<(&str, u32)>,
    ) -> EndpointRecord {
        let mut h = crate::record::new_histogram();
        for _ in 0..requests - failures {
            h.record(1000).unwrap();
        }
        let latency =
            serde_json::to_value(crate::record::LatencySummary::from_histogram(&h)).unwrap();
        let mut e: EndpointRecord = serde_json::from_value(serde_json::json!({
            "name": name, "scenario_file": "s.yml", "scenario_hash": "h", "method": "GET", "url": "/",
            "load": { "model": "closed", "users": 1, "rate_per_s": null, "duration_s": 1.0, "warmup_s": 0.0 },
            "requests": requests, "successes": requests - failures, "failures": failures,
            "elapsed_s": 1.0, "throughput_rps": (requests - failures) as f64,
            "error_rate": if requests > 0 { failures as f64 / requests as f64 } else { 0.0 },
            "latency": latency.clone(), "ttfb": latency,
            "status_counts": {}, "errors": {}, "server_timing": {},
            "late_starts": 0, "dropped_arrivals": 0, "bytes_received": 0
        }))
        .expect("a valid endpoint record");
        e.ramp = ramp.map(|(group, users)| crate::record::RampStepInfo {
            group: group.into(),
            users,
        });
        e
    }

    fn run(endpoints: Vec<EndpointRecord>) -> RunRecord {
        RunRecord::of_endpoints(endpoints)
    }

    fn slo(run: &RunRecord, written: &[&str]) -> SloReport {
        let ts: Vec<Threshold> = written
            .iter()
            .map(|t| parse_threshold(t).unwrap())
            .collect();
        evaluate_slo(run, &|_| ts.clone())
    }

    #[test]
    fn an_endpoint_where_every_request_failed_fails_without_any_threshold() {
        let r = run(vec![
            endpoint("dead", 40, 40, None),
            endpoint("fine", 40, 0, None),
        ]);
        let report = slo(&r, &[]);
        assert!(!report.pass);
        let dead = &report.endpoints[0];
        assert!(!dead.pass);
        let failed: Vec<&str> = dead
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(failed, [SUCCESSES, "error_rate"]);
        assert!(dead.checks.iter().all(|c| c.default));
        assert!(report.endpoints[1].pass);
        assert_eq!(
            report.endpoints[1].shown().count(),
            0,
            "met defaults are not shown"
        );
    }

    #[test]
    fn no_request_at_all_is_no_successful_request() {
        let report = slo(&run(vec![endpoint("empty", 0, 0, None)]), &["p95 < 1s"]);
        assert!(!report.pass);
        let failed: Vec<&str> = report.endpoints[0]
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.threshold.as_str())
            .collect();
        assert_eq!(failed, ["p95 < 1s", "successful requests > 0"]);
    }

    #[test]
    fn the_error_rate_ceiling_is_a_default_a_scenario_can_replace() {
        let r = run(vec![endpoint("flaky", 100, 20, None)]);
        let default = slo(&r, &[]);
        assert!(!default.pass, "20% errors is above the 10% default");
        let c = default.endpoints[0]
            .checks
            .iter()
            .find(|c| !c.pass)
            .unwrap();
        assert_eq!(
            (c.metric.as_str(), c.default, c.limit),
            ("error_rate", true, DEFAULT_ERROR_RATE_CEILING)
        );
        assert!(
            slo(&r, &["error_rate < 50%"]).pass,
            "the scenario's own ceiling wins"
        );
        assert!(!slo(&r, &["error_rate < 5%"]).pass);
        assert!(
            slo(&run(vec![endpoint("ok", 100, 9, None)]), &[]).pass,
            "9% is under the default"
        );
    }

    #[test]
    fn a_ramp_may_fail_whole_at_a_step_but_not_everywhere() {
        let past_capacity = run(vec![
            endpoint("r@1", 10, 0, Some(("r", 1))),
            endpoint("r@50", 10, 10, Some(("r", 50))),
        ]);
        assert!(
            slo(&past_capacity, &[]).pass,
            "errors past the knee are what a ramp finds"
        );
        let dead = run(vec![
            endpoint("r@1", 10, 10, Some(("r", 1))),
            endpoint("r@50", 10, 10, Some(("r", 50))),
        ]);
        let report = slo(&dead, &[]);
        assert!(!report.pass);
        assert!(report.endpoints.iter().all(|e| !e.pass));
    }
}
