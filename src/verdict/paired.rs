//! The paired verdict: base and head deployments measured at the same time in the same job,
//! compared pair by pair.
//!
//! Rule: a regression only when HEAD is slower with statistical significance in **both** the
//! Wilcoxon signed-rank test over the per-pair log p95 ratios and the pooled Mann-Whitney U over
//! the merged histograms, after Holm correction across every test of the verdict, **and** the
//! Hodges-Lehmann CI of the median p95 ratio lies entirely above `1 + tolerance`. Improvements
//! mirror it; "no change" needs the CI inside `±tolerance`; anything else is inconclusive with
//! the reason. The CI is the 90% one (for the default confidence of 95%): each of those calls is a
//! one-sided test at 5% against the tolerance, and "no change" is Schuirmann's two one-sided
//! tests (TOST), whose textbook interval is the `1 - 2 alpha` one. Each block's p95 is the
//! Harrell-Davis estimate (`stats::harrell_davis_ln`), steadier than one order statistic.
//!
//! Why both tests: the signed-rank test is the one the pairing protects from the machine's drift
//! (each pair shares its moment), but with a handful of pairs it sees only block p95s; the pooled
//! Mann-Whitney sees every request. Requiring both is an intersection-union test (Berger 1982):
//! its p-value is the larger of the two, and it keeps the level of each without any correction
//! between them. Holm then runs over those combined p-values, one per endpoint and direction.
//!
//! The threshold is the tolerance alone: the pairing cancels the run-to-run drift that history
//! mode has to allow for with its noise band.

use hdrhistogram::Histogram;

use super::compare::{
    Call, CompareMetric, CompareSettings, EndpointComparison, PairedFinding, Percentiles, Reason,
    components,
};
use crate::record::{EndpointRecord, RunRecord, decode_histogram, new_histogram};
use crate::stats::{self, Alternative, RelChange};

/// One block of the baseline deployment and the adjacent block of HEAD, for one endpoint.
#[derive(Clone, Copy, Debug)]
pub struct BlockPair<'a> {
    pub base: &'a EndpointRecord,
    pub head: &'a EndpointRecord,
}

/// The block pairs of each endpoint, in the order endpoints first appear in HEAD's blocks.
/// `blocks` holds (base block, head block) runs that were measured next to each other; an
/// endpoint missing from either side of a block pair is left out of that pair.
pub fn pairs_by_endpoint(blocks: &[(RunRecord, RunRecord)]) -> Vec<(String, Vec<BlockPair<'_>>)> {
    let mut out: Vec<(String, Vec<BlockPair<'_>>)> = Vec::new();
    for (base, head) in blocks {
        for h in &head.endpoints {
            let Some(b) = base.endpoints.iter().find(|b| b.name == h.name) else {
                continue;
            };
            let pair = BlockPair { base: b, head: h };
            match out.iter_mut().find(|(name, _)| *name == h.name) {
                Some((_, pairs)) => pairs.push(pair),
                None => out.push((h.name.clone(), vec![pair])),
            }
        }
    }
    out
}

/// What one endpoint's paired tests found, before Holm.
struct Tested {
    c: EndpointComparison,
    pairs: usize,
    p_signed_rank: [Option<f64>; 2],
    p_pooled: [Option<f64>; 2],
}

/// Compare each endpoint's block pairs. `tolerance` gives each endpoint's tolerance (a fraction).
pub fn compare_paired(
    endpoints: &[(String, Vec<BlockPair<'_>>)],
    tolerance: &dyn Fn(&str) -> f64,
    settings: &CompareSettings,
) -> Vec<EndpointComparison> {
    let mut tested: Vec<Tested> = endpoints
        .iter()
        .map(|(name, pairs)| test_endpoint(name, pairs, tolerance(name), settings))
        .collect();
    let mut ps = Vec::new();
    for t in &tested {
        ps.extend(t.c.p_slower);
        ps.extend(t.c.p_faster);
    }
    let tests = ps.len();
    let mut adjusted = stats::holm(&ps).into_iter();
    for t in &mut tested {
        if t.c.p_slower.is_some() {
            t.c.p_slower_adjusted = adjusted.next();
        }
        if t.c.p_faster.is_some() {
            t.c.p_faster_adjusted = adjusted.next();
        }
        decide(t, tests, settings);
    }
    tested.into_iter().map(|t| t.c).collect()
}

/// Merge the latency histograms of one side's blocks (all share `record::new_histogram`'s
/// bounds; a foreign one that does not fit is skipped rather than trusted).
fn pooled<'a>(blocks: impl Iterator<Item = &'a EndpointRecord>) -> Histogram<u64> {
    let mut h = new_histogram();
    for e in blocks {
        if let Ok(one) = decode_histogram(&e.latency.histogram) {
            let _ = h.add(&one);
        }
    }
    h
}

fn test_endpoint(
    name: &str,
    pairs: &[BlockPair<'_>],
    tolerance: f64,
    settings: &CompareSettings,
) -> Tested {
    let base_h = pooled(pairs.iter().map(|p| p.base));
    let head_h = pooled(pairs.iter().map(|p| p.head));
    let base_eps: Vec<&EndpointRecord> = pairs.iter().map(|p| p.base).collect();
    let head_eps: Vec<&EndpointRecord> = pairs.iter().map(|p| p.head).collect();
    // Per-pair log p95 ratios, each block's p95 by Harrell-Davis (a smoother estimate of the
    // same quantile than one order statistic; see `stats::harrell_davis_ln`). A block without a
    // successful request has no p95 and its pair says nothing.
    let ln_p95 = |e: &EndpointRecord| -> Option<f64> {
        if e.latency.count == 0 {
            return None;
        }
        match decode_histogram(&e.latency.histogram) {
            Ok(h) => stats::harrell_davis_ln(&h, 0.95),
            // A record without its histogram: its reported p95.
            Err(_) => (e.latency.p95_ms > 0.0).then(|| (e.latency.p95_ms * 1000.0).ln()),
        }
    };
    let diffs: Vec<f64> = pairs
        .iter()
        .filter_map(|p| Some(ln_p95(p.head)? - ln_p95(p.base)?))
        .filter(|d| d.is_finite())
        .collect();
    let c = EndpointComparison {
        endpoint: CompareMetric::Latency.label(name),
        metric: CompareMetric::Latency,
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
        base_runs: 1,
        outlier_runs: Vec::new(),
        call: Call::Inconclusive,
        reason: Reason::Pending,
        components: components(&base_eps, &head_eps),
    };
    let mut t = Tested {
        c,
        pairs: diffs.len(),
        p_signed_rank: [None, None],
        p_pooled: [None, None],
    };
    let c = &mut t.c;
    let (nb, nh) = (base_h.len(), head_h.len());
    if nb < settings.min_samples || nh < settings.min_samples {
        c.reason = Reason::TooFewSamples {
            base: nb,
            head: nh,
            min: settings.min_samples,
        };
        return t;
    }
    if diffs.len() < 2 {
        c.reason = Reason::TooFewPairs { pairs: diffs.len() };
        return t;
    }
    let sr = |a| stats::signed_rank(&diffs, a).map(|r| r.p_value);
    let mw = |a| stats::mann_whitney(&base_h, &head_h, a).map(|m| m.p_value);
    t.p_signed_rank = [sr(Alternative::Greater), sr(Alternative::Less)];
    t.p_pooled = [mw(Alternative::Greater), mw(Alternative::Less)];
    // The intersection-union p-value: significant only when both are.
    let both = |a: Option<f64>, b: Option<f64>| Some(a?.max(b?));
    c.p_slower = both(t.p_signed_rank[0], t.p_pooled[0]);
    c.p_faster = both(t.p_signed_rank[1], t.p_pooled[1]);
    // Each call is a one-sided test against the tolerance (a regression: the change exceeds
    // +tolerance; an improvement: below -tolerance; no change: both at once, Schuirmann's two
    // one-sided tests). At level alpha = 1 - confidence each, that is the two-sided interval of
    // level 1 - 2 alpha (90% for the default 95%), the textbook equivalence interval.
    let level = (2.0 * settings.confidence - 1.0).clamp(0.5, 0.999);
    c.p95_change = stats::hodges_lehmann_paired(&diffs, level).map(|hl| RelChange {
        point: hl.estimate.exp() - 1.0,
        ci_low: hl.ci_low.exp() - 1.0,
        ci_high: hl.ci_high.exp() - 1.0,
        confidence: hl.confidence,
        quantile: 0.95,
        base_ms: base_h.value_at_quantile(0.95) as f64 / 1000.0,
        head_ms: head_h.value_at_quantile(0.95) as f64 / 1000.0,
    });
    c.shift = stats::hodges_lehmann(&base_h, &head_h, settings.confidence);
    t
}

fn decide(t: &mut Tested, tests: usize, settings: &CompareSettings) {
    let c = &mut t.c;
    if c.reason != Reason::Pending {
        c.call = Call::Inconclusive;
        return;
    }
    let Some(rel) = c.p95_change else {
        c.call = Call::Inconclusive;
        c.reason = Reason::NoEstimate;
        return;
    };
    let tol = c.tolerance;
    let n = t.pairs;
    let slower = c.p_slower_adjusted.is_some_and(|p| p < settings.alpha);
    let faster = c.p_faster_adjusted.is_some_and(|p| p < settings.alpha);
    // Which direction's p-values explain the call: faster only when the change points there.
    let dir = usize::from(rel.ci_high < -tol || (faster && !slower));
    let (call, finding) = if slower && rel.ci_low > tol {
        (Call::Regression, PairedFinding::Slower)
    } else if faster && rel.ci_high < -tol {
        (Call::Improvement, PairedFinding::Faster)
    } else if rel.ci_low >= -tol && rel.ci_high <= tol {
        (Call::NoChange, PairedFinding::Within)
    } else if stats::smallest_p(n) * tests as f64 > settings.alpha {
        // Too few pairs to ever be significant across this many tests.
        (Call::Inconclusive, PairedFinding::Unreachable)
    } else if rel.ci_low > tol || rel.ci_high < -tol {
        (Call::Inconclusive, PairedFinding::NotConfirmed)
    } else {
        (Call::Inconclusive, PairedFinding::CannotRuleOut)
    };
    c.call = call;
    c.reason = Reason::Paired {
        finding,
        tolerance: tol,
        pairs: n,
        tests,
        p_signed_rank: t.p_signed_rank[dir],
        p_pooled: t.p_pooled[dir],
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{LatencySummary, LoadRecord};
    use rand::{Rng, SeedableRng};

    /// One block of one endpoint: `n` log-normal latencies around `median_us`.
    fn block(name: &str, median_us: f64, n: usize, seed: u64) -> EndpointRecord {
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
            scenario_hash: "h".into(),
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
            server_timing: Default::default(),
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

    /// `pairs` block pairs of two endpoints, "steady" and "changed". The machine's load
    /// multiplies both sides of a pair alike by `drift(i)`; "changed" is `factor` slower on HEAD.
    fn blocks(
        pairs: usize,
        factor: f64,
        n: usize,
        drift: &dyn Fn(usize) -> f64,
    ) -> Vec<(RunRecord, RunRecord)> {
        blocks_seeded(pairs, factor, n, drift, 0)
    }

    /// [`blocks`] with the random draws offset by `seed`.
    fn blocks_seeded(
        pairs: usize,
        factor: f64,
        n: usize,
        drift: &dyn Fn(usize) -> f64,
        seed: u64,
    ) -> Vec<(RunRecord, RunRecord)> {
        (0..pairs)
            .map(|i| {
                let m = drift(i);
                let s = seed + i as u64 * 10;
                (
                    run(vec![
                        block("steady", 2000.0 * m, n, s),
                        block("changed", 5000.0 * m, n, s + 1),
                    ]),
                    run(vec![
                        block("steady", 2000.0 * m, n, s + 2),
                        block("changed", 5000.0 * m * factor, n, s + 3),
                    ]),
                )
            })
            .collect()
    }

    fn verdict(blocks: &[(RunRecord, RunRecord)]) -> Vec<EndpointComparison> {
        compare_paired(
            &pairs_by_endpoint(blocks),
            &|_| 0.05,
            &CompareSettings::default(),
        )
    }

    #[test]
    fn a_wide_slowdown_is_a_regression_and_the_rest_no_change() {
        let v = verdict(&blocks(10, 1.5, 2000, &|_| 1.0));
        assert_eq!(v[0].name, "steady");
        assert_eq!(v[0].call, Call::NoChange, "{:?}", v[0].reason);
        assert_eq!(v[1].call, Call::Regression, "{:?}", v[1].reason);
        let rel = v[1].p95_change.unwrap();
        assert!(rel.ci_low > 0.4 && rel.ci_high < 0.6, "{rel:?}");
        assert!(
            matches!(
                v[1].reason,
                Reason::Paired {
                    finding: PairedFinding::Slower,
                    pairs: 10,
                    ..
                }
            ),
            "{:?}",
            v[1].reason
        );
        assert_eq!(v[1].threshold, 0.05, "the tolerance alone");
        assert!(v[1].p_slower_adjusted.unwrap() >= v[1].p_slower.unwrap());
    }

    #[test]
    fn an_improvement_mirrors() {
        let v = verdict(&blocks(10, 0.6, 2000, &|_| 1.0));
        assert_eq!(v[1].call, Call::Improvement, "{:?}", v[1].reason);
        assert_eq!(v[0].call, Call::NoChange, "{:?}", v[0].reason);
    }

    /// The machine's load swings each pair's latency by up to 3x (a neighbour burning CPU on and
    /// off): the pairing cancels it, for the null effect and the real one alike.
    #[test]
    fn noisy_blocks_hit_both_sides_and_cancel() {
        let drift = |i: usize| [1.0, 2.7, 1.3, 3.0, 1.0, 1.9, 1.1, 2.4, 1.0, 1.6][i % 10];
        let v = verdict(&blocks(10, 1.0, 2000, &drift));
        for c in &v {
            assert_eq!(c.call, Call::NoChange, "{}: {:?}", c.name, c.reason);
        }
        let v = verdict(&blocks(10, 1.3, 2000, &drift));
        assert_eq!(v[0].call, Call::NoChange, "{:?}", v[0].reason);
        assert_eq!(v[1].call, Call::Regression, "{:?}", v[1].reason);
        // Pooled alone, the drift would swamp a 30% shift: the pooled p95s are far apart from
        // the per-pair ratio's spread, but the paired CI stays narrow.
        let rel = v[1].p95_change.unwrap();
        assert!(rel.ci_high - rel.ci_low < 0.2, "{rel:?}");
    }

    /// The default shape of a paired run (13 rounds of 2 blocks of 1.5 s: 26 pairs of 150
    /// requests a side at 100/s), with a neighbour swinging each pair by up to 3x, over several seeds: A/A
    /// is never a regression nor an improvement, and mostly "no change"; a 20% slowdown is a
    /// regression, and a 10% one mostly.
    #[test]
    fn the_default_shape_under_drift_flags_twenty_percent_and_never_a_a() {
        let drift = |i: usize| [1.0, 2.7, 1.3, 3.0, 1.0, 1.9, 1.1, 2.4, 1.0, 1.6][i % 10];
        let (mut covered, mut aa, mut no_change, mut found_10) = (0, 0, 0, 0);
        for seed in 0..8u64 {
            let shape = |factor: f64| blocks_seeded(26, factor, 150, &drift, seed * 10_000);
            for c in verdict(&shape(1.0)) {
                let r = c.p95_change.unwrap();
                assert_ne!(c.call, Call::Regression, "seed {seed} {}", c.name);
                assert_ne!(c.call, Call::Improvement, "seed {seed} {}", c.name);
                aa += 1;
                covered += usize::from(r.ci_low < 0.0 && r.ci_high > 0.0);
                no_change += usize::from(c.call == Call::NoChange);
            }
            let v10 = verdict(&shape(1.10));
            found_10 += usize::from(v10[1].call == Call::Regression);
            let v = verdict(&shape(1.20));
            assert_eq!(
                v[1].call,
                Call::Regression,
                "seed {seed}: {:?}",
                v[1].reason
            );
            assert_ne!(v[0].call, Call::Regression);
        }
        eprintln!(
            "A/A: {covered}/{aa} 90% CIs cover 0, {no_change}/{aa} no change; +10%: {found_10}/8"
        );
        // A 90% interval misses now and then; most cover the truth.
        assert!(covered * 10 >= aa * 7, "{covered} of {aa}");
        assert!(no_change * 10 >= aa * 8, "{no_change} of {aa}");
        // At this spread (log-normal sigma 0.3), +10% is resolved in 7 of these 8 (5 of 8 with
        // the earlier 14 pairs of 250); `gate calibrate --paired` measures it on the sample
        // service (docs/paired.md).
        assert!(found_10 >= 4, "+10% found in {found_10} of 8");
    }

    #[test]
    fn too_few_pairs_or_requests_are_inconclusive_with_the_reason() {
        // Three pairs: the smallest signed-rank p is 1/8, never significant.
        let v = verdict(&blocks(3, 2.0, 2000, &|_| 1.0));
        assert_eq!(v[1].call, Call::Inconclusive, "{:?}", v[1].reason);
        assert!(
            matches!(
                v[1].reason,
                Reason::Paired {
                    finding: PairedFinding::Unreachable,
                    pairs: 3,
                    ..
                }
            ),
            "{:?}",
            v[1].reason
        );
        let v = verdict(&blocks(1, 2.0, 2000, &|_| 1.0));
        assert_eq!(v[1].reason, Reason::TooFewPairs { pairs: 1 });
        let v = verdict(&blocks(10, 2.0, 2, &|_| 1.0));
        assert_eq!(v[1].call, Call::Inconclusive);
        assert!(
            matches!(v[1].reason, Reason::TooFewSamples { .. }),
            "{:?}",
            v[1].reason
        );
        assert!(verdict(&[]).is_empty());
    }

    #[test]
    fn a_wide_ci_is_inconclusive_not_no_change() {
        // Few requests per block and large per-block scatter: a 5% window cannot be resolved.
        let v = verdict(&blocks(10, 1.08, 40, &|_| 1.0));
        assert_eq!(v[1].call, Call::Inconclusive, "{:?}", v[1].reason);
        assert!(
            matches!(v[1].reason, Reason::Paired { pairs: 10, .. }),
            "{:?}",
            v[1].reason
        );
    }

    #[test]
    fn pairs_are_matched_by_endpoint_name() {
        let mut b = blocks(2, 1.0, 100, &|_| 1.0);
        b[1].0.endpoints.retain(|e| e.name == "steady");
        let grouped = pairs_by_endpoint(&b);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].1.len(), 2);
        assert_eq!(grouped[1].1.len(), 1, "the pair missing a side is left out");
    }
}
