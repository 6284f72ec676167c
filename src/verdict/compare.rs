//! The comparison of HEAD with its baseline, per endpoint, and the rule that turns it into a
//! call people can trust.
//!
//! Rule (DESIGN.md): a regression only when HEAD is slower with statistical significance
//! (one-sided Mann-Whitney U, Holm-corrected across every test of the verdict) **and** the 95%
//! CI of the relative p95 change lies entirely above the practical threshold: the tolerance
//! (default 5%) or the baseline's own run-to-run noise band, whichever is larger. Improvements
//! mirror it. "No change" needs the data to rule a slowdown beyond the threshold out; when they
//! cannot, the call is "inconclusive" with the reason, never a silent pass.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::record::{EndpointRecord, LatencySummary, RunRecord, decode_histogram, new_histogram};
use crate::stats::{self, Alternative, NoiseBand, RelChange, Shift};

/// Baseline runs needed before their spread is trusted as the noise band.
pub const MIN_RUNS_FOR_NOISE: usize = 3;
/// Run-to-run noise of p95 assumed when the baseline has too few runs to measure it: typical of
/// repeated runs on one CI machine (see the calibration figures in the README).
pub const ASSUMED_NOISE: f64 = 0.10;

#[derive(Clone, Debug)]
pub struct CompareSettings {
    /// Family-wise error rate of the significance tests.
    pub alpha: f64,
    pub confidence: f64,
    pub bootstrap_iterations: u32,
    /// Below this many successful requests on either side, no call is made.
    pub min_samples: u64,
    pub seed: u64,
}

impl Default for CompareSettings {
    fn default() -> Self {
        CompareSettings {
            alpha: 0.05,
            confidence: 0.95,
            bootstrap_iterations: 2000,
            min_samples: 30,
            seed: 0x6761_7465,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    Regression,
    NoChange,
    Improvement,
    Inconclusive,
}

/// What a comparison is about. LLM endpoints are compared three ways, each like HTTP latency
/// (histograms, Mann-Whitney, bootstrap CI of p95, the same tolerance and noise band).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareMetric {
    /// End-to-end latency of successful requests.
    #[default]
    Latency,
    /// Time to first token.
    Ttft,
    /// Output tokens per second, compared as its inverse (E2E / output tokens per request), so
    /// that "slower" means the same thing as for latency: a drop in tok/s is a regression.
    TokensPerSecond,
}

impl CompareMetric {
    /// The summary (with its histogram) this metric reads from an endpoint.
    pub fn summary(self, e: &EndpointRecord) -> Option<&LatencySummary> {
        match self {
            CompareMetric::Latency => Some(&e.latency),
            CompareMetric::Ttft => e.llm.as_ref().map(|l| &l.ttft),
            CompareMetric::TokensPerSecond => e.llm.as_ref().map(|l| &l.time_per_token),
        }
    }

    /// The row name: the endpoint, plus the metric for LLM rows.
    pub fn label(self, endpoint: &str) -> String {
        match self {
            CompareMetric::Latency => endpoint.to_string(),
            CompareMetric::Ttft => format!("{endpoint} · TTFT"),
            CompareMetric::TokensPerSecond => format!("{endpoint} · tok/s"),
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            CompareMetric::Latency => "Δp95",
            CompareMetric::Ttft => "ΔTTFT p95",
            CompareMetric::TokensPerSecond => "Δtime per token p95",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Percentiles {
    pub(super) fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
        }
    }
}

/// One Server-Timing component, base vs head (means in ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub base_ms: f64,
    pub head_ms: f64,
}

impl Component {
    pub fn delta_ms(&self) -> f64 {
        self.head_ms - self.base_ms
    }
}

/// Why an endpoint got its call. Structured, so that every format words it the same way and a
/// program reading the JSON need not parse sentences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Not decided yet (only while the comparison is being built).
    Pending,
    /// The baseline has no endpoint of this name.
    NoBaseline,
    /// The baseline has this endpoint, but its scenario definition (hash) differs.
    DefinitionChanged,
    /// Fewer successful requests than `min` on a side.
    TooFewSamples { base: u64, head: u64, min: u64 },
    /// The relative p95 change could not be estimated (an empty baseline p95).
    NoEstimate,
    /// Paired mode: fewer than two usable block pairs.
    TooFewPairs { pairs: usize },
    /// Paired mode: the p95 ratio over block pairs against the tolerance, with the p-values of
    /// the direction that mattered (signed-rank over pairs, pooled Mann-Whitney).
    Paired {
        finding: PairedFinding,
        tolerance: f64,
        pairs: usize,
        /// Tests in the verdict (Holm's family), for "cannot reach significance".
        tests: usize,
        p_signed_rank: Option<f64>,
        p_pooled: Option<f64>,
    },
    /// The change was measured: what it showed against which limit.
    Measured {
        finding: Finding,
        limit: Limit,
        /// Baseline runs left out as outliers (their p95, ms).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        outliers_p95_ms: Vec<f64>,
    },
}

/// What paired mode found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedFinding {
    Slower,
    Faster,
    Within,
    /// Too few pairs for any p-value to be significant across this many tests.
    Unreachable,
    /// Beyond the tolerance, but not significant in both tests after Holm.
    NotConfirmed,
    CannotRuleOut,
}

/// What the CI of the change showed against the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Slower beyond the limit (and significant).
    Slower,
    /// Faster beyond the limit (and significant).
    Faster,
    /// Within the limit.
    Within,
    /// A slowdown beyond the limit cannot be ruled out.
    CannotRuleOut,
}

/// The practical threshold a change had to exceed, and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Limit {
    /// The scenario's (or `--tolerance`'s) tolerance.
    Tolerance { fraction: f64 },
    /// The baseline's measured run-to-run noise band.
    NoiseBand { fraction: f64 },
    /// The noise assumed when the baseline has fewer than `min_runs` runs.
    AssumedNoise { fraction: f64, min_runs: usize },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointComparison {
    /// The row's name: the endpoint, with ` · TTFT` or ` · tok/s` for LLM metrics.
    pub endpoint: String,
    /// What was compared; the endpoint's own name is `name`.
    pub metric: CompareMetric,
    pub name: String,
    pub base: Option<Percentiles>,
    pub head: Option<Percentiles>,
    /// Relative change of p95 with its bootstrap CI.
    pub p95_change: Option<RelChange>,
    /// Hodges-Lehmann shift of the whole distribution, with its CI.
    pub shift: Option<Shift>,
    pub p_slower: Option<f64>,
    pub p_faster: Option<f64>,
    /// After Holm correction across every test in the verdict.
    pub p_slower_adjusted: Option<f64>,
    pub p_faster_adjusted: Option<f64>,
    pub tolerance: f64,
    pub noise: Option<NoiseBand>,
    /// max(tolerance, noise band): what a change must exceed to count.
    pub threshold: f64,
    pub base_runs: usize,
    /// Baseline runs left out of this endpoint's comparison as outliers (their p95, ms).
    pub outlier_runs: Vec<f64>,
    pub call: Call,
    /// Why the call was made, as data; report puts it in words (`report::cells::reason`).
    pub reason: Reason,
    /// Server-Timing components, largest growth first (`total` left out: it is the sum).
    pub components: Vec<Component>,
}

impl EndpointComparison {
    /// "db +31.8 ms (4.1 → 35.9 ms), app +0.4 ms".
    pub fn where_the_time_went(&self) -> Option<String> {
        let parts: Vec<String> = self
            .components
            .iter()
            .filter(|c| c.delta_ms().abs() >= 0.05)
            .take(3)
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!(
                        "{} {:+.1} ms ({:.1} → {:.1} ms)",
                        c.name,
                        c.delta_ms(),
                        c.base_ms,
                        c.head_ms
                    )
                } else {
                    format!("{} {:+.1} ms", c.name, c.delta_ms())
                }
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Merge the histograms of one endpoint's metric across runs.
fn pooled(endpoints: &[&EndpointRecord], metric: CompareMetric) -> Histogram<u64> {
    let mut h = new_histogram();
    for e in endpoints {
        let Some(summary) = metric.summary(e) else {
            continue;
        };
        if let Ok(one) = decode_histogram(&summary.histogram) {
            // Same bounds everywhere (record::new_histogram); a foreign histogram that does not
            // fit is skipped rather than trusted.
            let _ = h.add(&one);
        }
    }
    h
}

pub(super) fn components(base: &[&EndpointRecord], head: &[&EndpointRecord]) -> Vec<Component> {
    let mean = |eps: &[&EndpointRecord]| -> BTreeMap<String, f64> {
        let mut acc: BTreeMap<String, (f64, u64)> = BTreeMap::new();
        for e in eps {
            for (name, agg) in &e.server_timing {
                let slot = acc.entry(name.clone()).or_default();
                slot.0 += agg.total_ms;
                slot.1 += agg.count;
            }
        }
        acc.into_iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(k, (sum, n))| (k, sum / n as f64))
            .collect()
    };
    let (b, h) = (mean(base), mean(head));
    let mut out: Vec<Component> = h
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("total"))
        .filter_map(|(name, head_ms)| {
            b.get(name).map(|base_ms| Component {
                name: name.clone(),
                base_ms: *base_ms,
                head_ms: *head_ms,
            })
        })
        .collect();
    out.sort_by(|x, y| y.delta_ms().abs().total_cmp(&x.delta_ms().abs()));
    out
}

/// Compare every endpoint of HEAD with the same endpoint (same name and definition) in the
/// baseline runs. `tolerance` gives each endpoint's tolerance (a fraction).
pub fn compare(
    base_runs: &[RunRecord],
    head_runs: &[RunRecord],
    tolerance: &dyn Fn(&str) -> f64,
    settings: &CompareSettings,
) -> Vec<EndpointComparison> {
    let mut names: Vec<&str> = Vec::new();
    for r in head_runs {
        for e in &r.endpoints {
            if !names.contains(&e.name.as_str()) {
                names.push(&e.name);
            }
        }
    }
    let mut out: Vec<EndpointComparison> = Vec::new();
    for name in &names {
        out.push(compare_endpoint(
            name,
            CompareMetric::Latency,
            base_runs,
            head_runs,
            tolerance(name),
            settings,
        ));
        // LLM endpoints: TTFT and tok/s too. Ramp steps are left to their ramp table.
        let llm = head_runs
            .iter()
            .flat_map(|r| &r.endpoints)
            .any(|e| e.name == *name && e.llm.is_some() && e.ramp.is_none());
        if llm {
            for metric in [CompareMetric::Ttft, CompareMetric::TokensPerSecond] {
                out.push(compare_endpoint(
                    name,
                    metric,
                    base_runs,
                    head_runs,
                    tolerance(name),
                    settings,
                ));
            }
        }
    }

    // Holm across every test made (slower and faster, every endpoint).
    let mut ps = Vec::new();
    for c in &out {
        ps.extend(c.p_slower);
        ps.extend(c.p_faster);
    }
    let adjusted = stats::holm(&ps);
    let mut it = adjusted.into_iter();
    for c in &mut out {
        if c.p_slower.is_some() {
            c.p_slower_adjusted = it.next();
        }
        if c.p_faster.is_some() {
            c.p_faster_adjusted = it.next();
        }
        decide(c, settings);
    }
    out
}

fn compare_endpoint(
    name: &str,
    metric: CompareMetric,
    base_runs: &[RunRecord],
    head_runs: &[RunRecord],
    tolerance: f64,
    settings: &CompareSettings,
) -> EndpointComparison {
    let head_eps: Vec<&EndpointRecord> = head_runs
        .iter()
        .flat_map(|r| r.endpoints.iter().filter(|e| e.name == name))
        .collect();
    let hash = head_eps
        .last()
        .map(|e| e.scenario_hash.clone())
        .unwrap_or_default();
    let same_name: Vec<&EndpointRecord> = base_runs
        .iter()
        .flat_map(|r| r.endpoints.iter().filter(|e| e.name == name))
        .collect();
    let base_eps: Vec<&EndpointRecord> = same_name
        .iter()
        .copied()
        .filter(|e| e.scenario_hash == hash)
        .collect();
    let (base_eps, outliers) = drop_outlier_runs(base_eps, metric);
    let head_h = pooled(&head_eps, metric);
    let base_h = pooled(&base_eps, metric);
    let mut c = EndpointComparison {
        endpoint: metric.label(name),
        metric,
        name: name.to_string(),
        base: (!base_h.is_empty()).then(|| Percentiles::of(&base_h)),
        head: (!head_h.is_empty()).then(|| Percentiles::of(&head_h)),
        p95_change: None,
        shift: None,
        p_slower: None,
        p_faster: None,
        p_slower_adjusted: None,
        p_faster_adjusted: None,
        tolerance,
        noise: None,
        threshold: tolerance,
        base_runs: base_eps.len(),
        outlier_runs: outliers,
        call: Call::Inconclusive,
        reason: Reason::Pending,
        components: if metric == CompareMetric::Latency {
            components(&base_eps, &head_eps)
        } else {
            Vec::new()
        },
    };
    if base_eps.is_empty() {
        c.reason = if same_name.is_empty() {
            Reason::NoBaseline
        } else {
            Reason::DefinitionChanged
        };
        return c;
    }
    let (nb, nh) = (base_h.len(), head_h.len());
    if nb < settings.min_samples || nh < settings.min_samples {
        c.reason = Reason::TooFewSamples {
            base: nb,
            head: nh,
            min: settings.min_samples,
        };
        return c;
    }
    // Noise band from each baseline run's own p95: how much p95 moves between runs of the same code.
    let per_run_p95: Vec<f64> = base_eps
        .iter()
        .filter_map(|e| metric.summary(e))
        .filter(|s| s.count > 0)
        .map(|s| s.p95_ms)
        .collect();
    c.noise = stats::noise_band(&per_run_p95);
    c.threshold = match c.noise {
        Some(n) if n.runs >= MIN_RUNS_FOR_NOISE => tolerance.max(n.relative),
        // Two runs say the noise is at least their spread, but not that it is no more: take
        // the larger of the two guesses.
        Some(n) if n.runs == 2 => tolerance.max(ASSUMED_NOISE).max(n.relative),
        // With one baseline run the run-to-run noise is unknown, not zero.
        _ => tolerance.max(ASSUMED_NOISE),
    };
    c.p_slower = stats::mann_whitney(&base_h, &head_h, Alternative::Greater).map(|m| m.p_value);
    c.p_faster = stats::mann_whitney(&base_h, &head_h, Alternative::Less).map(|m| m.p_value);
    c.p95_change = stats::quantile_change(
        &base_h,
        &head_h,
        0.95,
        settings.bootstrap_iterations,
        settings.confidence,
        settings.seed,
    );
    c.shift = stats::hodges_lehmann(&base_h, &head_h, settings.confidence);
    c
}

/// A baseline run whose p95 sits far from the others' (a noisy neighbour during one run of
/// main, say) would poison the pooled baseline and inflate the noise band. With at least three
/// runs, leave out any whose p95 is further from their median than 3 robust standard
/// deviations (1.4826 × MAD), and never closer than 10% of the median, so identical runs do not
/// make every small wobble an outlier.
fn drop_outlier_runs(
    eps: Vec<&EndpointRecord>,
    metric: CompareMetric,
) -> (Vec<&EndpointRecord>, Vec<f64>) {
    let p95 = |e: &EndpointRecord| metric.summary(e).filter(|s| s.count > 0).map(|s| s.p95_ms);
    let p95s: Vec<f64> = eps.iter().filter_map(|e| p95(e)).collect();
    if p95s.len() < MIN_RUNS_FOR_NOISE {
        return (eps, Vec::new());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let m = median(&mut p95s.clone());
    let mad = median(&mut p95s.iter().map(|x| (x - m).abs()).collect());
    let cut = (3.0 * 1.4826 * mad).max(0.10 * m);
    let (kept, dropped): (Vec<&EndpointRecord>, Vec<&EndpointRecord>) = eps
        .into_iter()
        .partition(|e| p95(e).is_none_or(|p| (p - m).abs() <= cut));
    (kept, dropped.iter().filter_map(|e| p95(e)).collect())
}

fn decide(c: &mut EndpointComparison, settings: &CompareSettings) {
    if c.reason != Reason::Pending {
        return; // already inconclusive, with its reason
    }
    let Some(rel) = c.p95_change else {
        c.reason = Reason::NoEstimate;
        return;
    };
    let t = c.threshold;
    let slower = c.p_slower_adjusted.is_some_and(|p| p < settings.alpha);
    let faster = c.p_faster_adjusted.is_some_and(|p| p < settings.alpha);
    let limit = match c.noise {
        _ if t <= c.tolerance => Limit::Tolerance { fraction: t },
        Some(n) if n.runs >= MIN_RUNS_FOR_NOISE => Limit::NoiseBand { fraction: t },
        _ => Limit::AssumedNoise {
            fraction: t,
            min_runs: MIN_RUNS_FOR_NOISE,
        },
    };
    let (call, finding) = if slower && rel.ci_low > t {
        (Call::Regression, Finding::Slower)
    } else if faster && rel.ci_high < -t {
        (Call::Improvement, Finding::Faster)
    } else if rel.ci_high <= t {
        (Call::NoChange, Finding::Within)
    } else {
        (Call::Inconclusive, Finding::CannotRuleOut)
    };
    c.call = call;
    c.reason = Reason::Measured {
        finding,
        limit,
        outliers_p95_ms: c.outlier_runs.clone(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{LatencySummary, LoadRecord, ServerTimingAgg};
    use rand::{Rng, SeedableRng};

    fn endpoint(
        name: &str,
        hash: &str,
        median_us: f64,
        n: usize,
        seed: u64,
        db_ms: f64,
    ) -> EndpointRecord {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut h = new_histogram();
        for _ in 0..n {
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            h.record((median_us * (0.3 * z).exp()).max(1.0) as u64)
                .unwrap();
        }
        EndpointRecord {
            name: name.into(),
            scenario_file: String::new(),
            scenario_hash: hash.into(),
            method: "GET".into(),
            url: "/".into(),
            load: LoadRecord {
                model: "closed".into(),
                users: Some(1),
                rate_per_s: None,
                duration_s: 1.0,
                warmup_s: 0.0,
            },
            requests: n as u64,
            successes: n as u64,
            failures: 0,
            elapsed_s: 1.0,
            throughput_rps: n as f64,
            error_rate: 0.0,
            latency: LatencySummary::from_histogram(&h),
            ttfb: LatencySummary::percentiles_of(&h),
            status_counts: Default::default(),
            errors: Default::default(),
            server_timing: [
                (
                    "db".to_string(),
                    ServerTimingAgg {
                        count: n as u64,
                        mean_ms: db_ms,
                        max_ms: db_ms,
                        total_ms: db_ms * n as f64,
                    },
                ),
                (
                    "app".to_string(),
                    ServerTimingAgg {
                        count: n as u64,
                        mean_ms: 1.0,
                        max_ms: 1.0,
                        total_ms: n as f64,
                    },
                ),
                (
                    "total".to_string(),
                    ServerTimingAgg {
                        count: n as u64,
                        mean_ms: db_ms + 1.0,
                        max_ms: 0.0,
                        total_ms: (db_ms + 1.0) * n as f64,
                    },
                ),
            ]
            .into(),
            late_starts: 0,
            dropped_arrivals: 0,
            bytes_received: 0,
            ramp: None,
            llm: None,
            transport: None,
        }
    }

    fn run(endpoints: Vec<EndpointRecord>) -> RunRecord {
        RunRecord::of_endpoints(endpoints)
    }

    fn base(seed: u64) -> RunRecord {
        run(vec![
            endpoint("fast", "h1", 2000.0, 4000, seed, 0.5),
            endpoint("orders", "h2", 10_000.0, 4000, seed + 100, 4.0),
        ])
    }

    #[test]
    fn a_clear_slowdown_is_a_regression_with_its_breakdown_and_the_rest_unchanged() {
        let baseline: Vec<RunRecord> = (0..5).map(base).collect();
        let head = run(vec![
            endpoint("fast", "h1", 2000.0, 4000, 77, 0.5),
            endpoint("orders", "h2", 13_000.0, 4000, 78, 7.0),
        ]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[0].call, Call::NoChange, "{:?}", v[0].reason);
        assert_eq!(v[1].call, Call::Regression, "{:?}", v[1].reason);
        let rel = v[1].p95_change.unwrap();
        assert!(rel.ci_low > 0.2 && rel.ci_high < 0.4, "{rel:?}");
        assert_eq!(
            v[1].components[0].name, "db",
            "the grown component comes first"
        );
        assert_eq!(
            v[1].where_the_time_went().unwrap(),
            "db +3.0 ms (4.0 → 7.0 ms)"
        );
        assert!(
            v[1].p_slower_adjusted.unwrap() >= v[1].p_slower.unwrap(),
            "Holm never lowers p"
        );
        assert_eq!(v[1].base_runs, 5);
    }

    #[test]
    fn improvements_and_missing_baselines() {
        let baseline: Vec<RunRecord> = (0..3).map(base).collect();
        let head = run(vec![
            endpoint("fast", "h1", 1400.0, 4000, 5, 0.5),
            endpoint("orders", "changed", 10_000.0, 4000, 6, 4.0),
            endpoint("brand-new", "h9", 1000.0, 4000, 7, 0.1),
        ]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[0].call, Call::Improvement, "{:?}", v[0].reason);
        assert_eq!(v[1].call, Call::Inconclusive);
        assert_eq!(v[1].reason, Reason::DefinitionChanged);
        assert_eq!(v[2].call, Call::Inconclusive);
        assert_eq!(v[2].reason, Reason::NoBaseline);
    }

    #[test]
    fn too_little_data_is_inconclusive_never_a_pass() {
        let baseline = vec![run(vec![endpoint("fast", "h1", 2000.0, 10, 1, 0.5)])];
        let head = run(vec![endpoint("fast", "h1", 4000.0, 10, 2, 0.5)]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[0].call, Call::Inconclusive);
        assert!(
            matches!(
                v[0].reason,
                Reason::TooFewSamples {
                    base: 10,
                    head: 10,
                    min: 30
                }
            ),
            "{:?}",
            v[0].reason
        );
        // Enough to compute, not enough to resolve 5%: inconclusive, not "no change".
        let baseline = vec![run(vec![endpoint("fast", "h1", 2000.0, 60, 1, 0.5)])];
        let head = run(vec![endpoint("fast", "h1", 2100.0, 60, 2, 0.5)]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[0].call, Call::Inconclusive, "{:?}", v[0].reason);
        assert!(
            matches!(
                v[0].reason,
                Reason::Measured {
                    finding: Finding::CannotRuleOut,
                    ..
                }
            ),
            "{:?}",
            v[0].reason
        );
    }

    #[test]
    fn the_noise_band_raises_the_bar() {
        // Baseline runs whose p95 swings ±20% from run to run: a +15% head is within the noise.
        let baseline: Vec<RunRecord> = [8000.0, 10_000.0, 12_000.0, 9000.0, 11_000.0]
            .iter()
            .enumerate()
            .map(|(i, m)| run(vec![endpoint("x", "h", *m, 4000, i as u64, 1.0)]))
            .collect();
        let head = run(vec![endpoint("x", "h", 11_500.0, 4000, 99, 1.0)]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert!(v[0].threshold > 0.15, "{}", v[0].threshold);
        assert_ne!(v[0].call, Call::Regression, "{:?}", v[0].reason);
        assert!(
            matches!(
                v[0].reason,
                Reason::Measured {
                    limit: Limit::NoiseBand { .. },
                    ..
                }
            ),
            "{:?}",
            v[0].reason
        );
    }

    #[test]
    fn few_baseline_runs_never_mean_no_noise() {
        let head = run(vec![endpoint("x", "h", 10_000.0, 4000, 99, 1.0)]);
        // One run: the noise is unknown, and the assumed 10% applies.
        let one = vec![run(vec![endpoint("x", "h", 10_000.0, 4000, 1, 1.0)])];
        let v = compare(
            &one,
            std::slice::from_ref(&head),
            &|_| 0.05,
            &CompareSettings::default(),
        );
        assert_eq!(v[0].threshold, ASSUMED_NOISE);
        // Two runs 40% apart: at least their spread.
        let two = vec![
            run(vec![endpoint("x", "h", 8_000.0, 4000, 1, 1.0)]),
            run(vec![endpoint("x", "h", 12_000.0, 4000, 2, 1.0)]),
        ];
        let v = compare(
            &two,
            std::slice::from_ref(&head),
            &|_| 0.05,
            &CompareSettings::default(),
        );
        assert!(v[0].threshold > 0.4, "{}", v[0].threshold);
        // Two runs that agree: still not below the assumed noise.
        let agree = vec![
            run(vec![endpoint("x", "h", 10_000.0, 4000, 1, 1.0)]),
            run(vec![endpoint("x", "h", 10_000.0, 4000, 2, 1.0)]),
        ];
        let v = compare(&agree, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[0].threshold, ASSUMED_NOISE);
    }

    /// An LLM endpoint: latency around 1 s, TTFT around `ttft_us`, time per token `tpt_us`.
    fn llm_endpoint(ttft_us: f64, tpt_us: f64, seed: u64) -> EndpointRecord {
        let mut e = endpoint("chat/m", "h", 1_000_000.0, 4000, seed, 0.0);
        let h = |median: f64, s: u64| {
            decode_histogram(&endpoint("x", "x", median, 4000, s, 0.0).latency.histogram).unwrap()
        };
        e.llm = Some(crate::record::LlmRecord {
            ttft: LatencySummary::from_histogram(&h(ttft_us, seed + 1)),
            time_per_token: LatencySummary::from_histogram(&h(tpt_us, seed + 2)),
            ..Default::default()
        });
        e
    }

    #[test]
    fn a_ttft_regression_fails_the_gate_and_tok_s_is_compared_too() {
        let baseline: Vec<RunRecord> = (0..4)
            .map(|i| run(vec![llm_endpoint(200_000.0, 5000.0, i * 10)]))
            .collect();
        let head = run(vec![llm_endpoint(300_000.0, 5000.0, 99)]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        let names: Vec<&str> = v.iter().map(|c| c.endpoint.as_str()).collect();
        assert_eq!(names, ["chat/m", "chat/m · TTFT", "chat/m · tok/s"]);
        assert_eq!(v[0].call, Call::NoChange, "{:?}", v[0].reason);
        assert_eq!(v[1].call, Call::Regression, "{:?}", v[1].reason);
        assert_eq!(v[1].metric, CompareMetric::Ttft);
        assert!(v[1].p95_change.is_some_and(|c| c.point > 0.0));
        assert_eq!(v[2].call, Call::NoChange, "{:?}", v[2].reason);
        assert!(v[1].components.is_empty());
        // Slower tokens (more time per token) are a tok/s regression.
        let head = run(vec![llm_endpoint(200_000.0, 7000.0, 98)]);
        let baseline: Vec<RunRecord> = (0..4)
            .map(|i| run(vec![llm_endpoint(200_000.0, 5000.0, i * 10)]))
            .collect();
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[1].call, Call::NoChange, "{:?}", v[1].reason);
        assert_eq!(v[2].call, Call::Regression, "{:?}", v[2].reason);
    }

    #[test]
    fn one_wild_baseline_run_is_left_out() {
        // Four calm runs and one taken during a noisy neighbour's burst (p95 3x).
        let mut baseline: Vec<RunRecord> = (0..4)
            .map(|i| run(vec![endpoint("x", "h", 10_000.0, 4000, i, 1.0)]))
            .collect();
        baseline.push(run(vec![endpoint("x", "h", 30_000.0, 4000, 9, 1.0)]));
        let head = run(vec![endpoint("x", "h", 13_000.0, 4000, 99, 1.0)]);
        let v = compare(&baseline, &[head], &|_| 0.05, &CompareSettings::default());
        assert_eq!(v[0].outlier_runs.len(), 1);
        assert_eq!(v[0].base_runs, 4);
        assert_eq!(v[0].call, Call::Regression, "{:?}", v[0].reason);
        assert!(
            matches!(&v[0].reason, Reason::Measured { outliers_p95_ms, .. } if outliers_p95_ms.len() == 1),
            "{:?}",
            v[0].reason
        );
    }
}
