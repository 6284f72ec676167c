//! What the pages show, computed once from the runs: each run's verdict against the runs before
//! it, the endpoints and their latest figures, the LLM scenarios and their models.

use std::collections::HashSet;

use crate::chart::{self, series::run_label};
use crate::config::{Metric, Op, Threshold};
use crate::record::{EndpointRecord, RunRecord};
use crate::store::StoredRun;
use crate::verdict::compare::{CompareMetric, compare};
use crate::verdict::{Call, CompareSettings, EndpointComparison, SloReport, evaluate_slo};

use super::site::Input;

/// Runs of the same environment before a run that make its baseline (the history-mode default).
const BASELINE_RUNS: usize = 5;

/// How a run fared against the runs before it on the branch, and against its SLOs.
#[derive(Clone, Debug, PartialEq)]
pub enum RunCall {
    /// No regression and every SLO kept.
    Pass,
    /// Endpoints that regressed (and maybe SLO breaches too).
    Regression(Vec<String>),
    /// No regression, but endpoints that broke an SLO threshold.
    SloBroken(Vec<String>),
    /// Some endpoint could not be judged (too few requests); nothing failed.
    Inconclusive,
    /// The first runs: nothing earlier to compare with, every SLO kept.
    NoBaseline,
    /// The run was interrupted; it never passes.
    Partial,
}

/// One run as the dashboard shows it.
pub struct RunView<'a> {
    pub id: i64,
    pub record: &'a RunRecord,
    pub call: RunCall,
    /// Comparison rows of this run with its baseline runs (empty without a baseline).
    pub comparisons: Vec<EndpointComparison>,
    pub slo: SloReport,
    pub base_runs: usize,
}

impl RunView<'_> {
    pub(super) fn endpoint(&self, name: &str) -> Option<&EndpointRecord> {
        self.record.endpoints.iter().find(|e| e.name == name)
    }

    /// The latency comparison of one endpoint.
    pub(super) fn comparison(&self, name: &str) -> Option<&EndpointComparison> {
        self.comparisons
            .iter()
            .find(|c| c.name == name && c.metric == CompareMetric::Latency)
    }

    /// Any row (latency, TTFT, tok/s) of this endpoint was flagged.
    pub(super) fn regressed(&self, name: &str) -> bool {
        self.comparisons
            .iter()
            .any(|c| c.name == name && c.call == Call::Regression)
    }

    /// None when the endpoint has no thresholds or was not measured in this run.
    pub(super) fn slo_pass(&self, name: &str) -> Option<bool> {
        self.slo
            .endpoints
            .iter()
            .find(|e| e.endpoint == name && !e.checks.is_empty())
            .map(|e| e.pass)
    }

    pub(super) fn label(&self) -> String {
        run_label(self.record).replace('\n', " ")
    }

    pub(super) fn commit(&self) -> Option<&str> {
        self.record.git.as_ref().and_then(|g| g.short_commit())
    }
}

/// An endpoint of the site, with its page.
pub struct EndpointView {
    pub name: String,
    /// `endpoint-<slug>.html`, unique within the site.
    pub file: String,
    pub thresholds: Vec<Threshold>,
}

impl EndpointView {
    /// The p95 objective, for the SLO line.
    pub(super) fn slo_p95_ms(&self) -> Option<f64> {
        self.thresholds
            .iter()
            .find(|t| t.metric == Metric::Percentile(95.0) && matches!(t.op, Op::Lt | Op::Le))
            .map(|t| t.limit)
    }
}

/// An LLM scenario: its models, one line each on its charts.
pub struct LlmView {
    pub scenario: String,
    pub file: String,
    /// (model, endpoint name)
    pub models: Vec<(String, String)>,
}

pub struct Model<'a> {
    pub branch: String,
    /// The runs drawn, oldest first.
    pub runs: Vec<RunView<'a>>,
    pub endpoints: Vec<EndpointView>,
    pub llm: Vec<LlmView>,
}

impl<'a> Model<'a> {
    pub(super) fn new(input: &Input<'a>) -> Self {
        let first_shown = input.runs.len().saturating_sub(input.shown);
        let settings = CompareSettings::default();
        let runs: Vec<RunView<'a>> = input
            .runs
            .iter()
            .enumerate()
            .skip(first_shown)
            .map(|(i, r)| judge(&input.runs[..i], r, input, &settings))
            .collect();

        let mut used = HashSet::new();
        let mut endpoints: Vec<EndpointView> = Vec::new();
        for e in runs.iter().flat_map(|r| &r.record.endpoints) {
            if endpoints.iter().any(|v| v.name == e.name) {
                continue;
            }
            endpoints.push(EndpointView {
                name: e.name.clone(),
                file: unique_file(&mut used, "endpoint", &e.name),
                thresholds: (input.thresholds)(&e.name),
            });
        }

        let mut llm: Vec<LlmView> = Vec::new();
        for e in runs.iter().flat_map(|r| &r.record.endpoints) {
            let Some(l) = &e.llm else { continue };
            if e.ramp.is_some() {
                continue;
            }
            let (scenario, model) = match e.name.rsplit_once('/') {
                Some((s, m)) if !l.fallback && l.models.len() == 1 => {
                    (s.to_string(), m.to_string())
                }
                _ => (e.name.clone(), l.models.join(" → ")),
            };
            let view = match llm.iter_mut().position(|v| v.scenario == scenario) {
                Some(i) => &mut llm[i],
                None => {
                    let file = unique_file(&mut used, "llm", &scenario);
                    llm.push(LlmView {
                        scenario,
                        file,
                        models: Vec::new(),
                    });
                    llm.last_mut().expect("just pushed")
                }
            };
            if !view.models.iter().any(|(_, n)| *n == e.name) {
                view.models.push((model, e.name.clone()));
            }
        }

        Model {
            branch: input.branch.to_string(),
            runs,
            endpoints,
            llm,
        }
    }
}

/// A file name for a page that no other page of the site has: the chart room's slug, with a
/// counter when two names slug alike ("a b" and "a-b").
fn unique_file(used: &mut HashSet<String>, kind: &str, name: &str) -> String {
    let base = format!("{kind}-{}", chart::safe_name(name));
    let mut file = format!("{base}.html");
    let mut n = 2;
    while !used.insert(file.clone()) {
        file = format!("{base}-{n}.html");
        n += 1;
    }
    file
}

/// A run against up to `BASELINE_RUNS` complete runs before it in the same environment.
fn judge<'a>(
    before: &'a [StoredRun],
    run: &'a StoredRun,
    input: &Input<'_>,
    settings: &CompareSettings,
) -> RunView<'a> {
    let fingerprint = |r: &RunRecord| r.environment.as_ref().map(|e| e.fingerprint.clone());
    let mine = fingerprint(&run.record);
    let mut base: Vec<RunRecord> = before
        .iter()
        .rev()
        .filter(|b| b.record.complete && fingerprint(&b.record) == mine)
        .take(BASELINE_RUNS)
        .map(|b| b.record.clone())
        .collect();
    base.reverse();
    let comparisons = if base.is_empty() {
        Vec::new()
    } else {
        compare(
            &base,
            std::slice::from_ref(&run.record),
            input.tolerance,
            settings,
        )
    };
    let slo = evaluate_slo(&run.record, input.thresholds);
    let mut regressed: Vec<String> = Vec::new();
    for c in comparisons.iter().filter(|c| c.call == Call::Regression) {
        if !regressed.contains(&c.name) {
            regressed.push(c.name.clone());
        }
    }
    let broken: Vec<String> = slo
        .endpoints
        .iter()
        .filter(|e| !e.pass)
        .map(|e| e.endpoint.clone())
        .collect();
    let call = if !run.record.complete {
        RunCall::Partial
    } else if !regressed.is_empty() {
        RunCall::Regression(regressed)
    } else if !broken.is_empty() {
        RunCall::SloBroken(broken)
    } else if base.is_empty() {
        RunCall::NoBaseline
    } else if comparisons.iter().any(|c| c.call == Call::Inconclusive) {
        RunCall::Inconclusive
    } else {
        RunCall::Pass
    };
    RunView {
        id: run.id,
        record: &run.record,
        call,
        comparisons,
        slo,
        base_runs: base.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_files_are_unique_and_safe() {
        let mut used = HashSet::new();
        let a = unique_file(&mut used, "endpoint", "a b");
        let b = unique_file(&mut used, "endpoint", "a-b");
        let c = unique_file(&mut used, "endpoint", "../../etc/passwd");
        let d = unique_file(&mut used, "endpoint", "<script>");
        assert_eq!(a, "endpoint-a-b.html");
        assert_eq!(b, "endpoint-a-b-2.html");
        assert_eq!(c, "endpoint-etc-passwd.html");
        assert_eq!(d, "endpoint-script.html");
    }
}
