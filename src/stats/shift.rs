//! The Hodges-Lehmann shift between two histograms, with its distribution-free confidence interval.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::buckets::{Buckets, Representative};
use super::null::{ExactU, exact_applies, normal_quantile, u_variance};

/// How far HEAD's latencies moved relative to the baseline's, in milliseconds (positive = slower).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// Median of all pairwise differences `head - base`.
    pub estimate_ms: f64,
    pub ci_low_ms: f64,
    pub ci_high_ms: f64,
    /// The confidence level asked for, e.g. 0.95.
    pub confidence: f64,
    /// Whether the interval comes from the exact null distribution of U (small samples without
    /// ties) rather than the normal approximation.
    pub exact: bool,
}

/// Hodges-Lehmann estimate of the location shift from the baseline to HEAD (Hodges & Lehmann
/// 1963): the median of the `n_base * n_head` pairwise differences `head_j - base_i`, with the
/// confidence interval obtained by inverting the two-sided Mann-Whitney test (Moses 1965;
/// Lehmann 1975, "Nonparametrics", ch. 2).
///
/// Model: HEAD's latencies are distributed as the baseline's plus a constant shift `d`. The
/// interval is the set of shifts `d` that a two-sided Mann-Whitney test of `head - d` against
/// `base` does not reject at level `1 - confidence`. Because the test statistic only changes at
/// pairwise differences, the interval's ends are order statistics of the differences:
/// `[D(k), D(N + 1 - k)]` with `N = n_base n_head` and `k` the lower `(1 - confidence) / 2`
/// critical value of U. This is distribution-free: it needs no assumption about the shape of the
/// latency distribution, only the shift model and independent requests. When latencies change
/// shape rather than shift (a slowdown that scales, or hits only the tail), the estimate is still
/// a robust "typical difference" (the median of `head - base` over random pairs of requests),
/// but the interval's coverage is then only approximate; for the tail, use
/// [`quantile_change`](super::quantile_change).
///
/// The critical value `k`:
/// - exact (R's `qwilcox`, as `wilcox.test(head, base, conf.int = TRUE)` uses) when both samples
///   are smaller than 50 and neither has repeated values;
/// - otherwise from the normal approximation with continuity correction,
///   `k = ceil(N/2 - 1/2 - z sigma)`. Ties are handled as the test inversion sees them: at a shift
///   `d` between two distinct differences, no shifted baseline value equals a HEAD value, so the
///   only ties are within each histogram (samples in the same bucket), and `sigma` carries the
///   tie correction for exactly those.
///
/// If the samples are too small for the requested confidence (`k < 1`), the interval is the full
/// range of differences (as R does), whose actual coverage is below the level asked for.
///
/// Each histogram's samples are represented by their bucket midpoints, so the estimate is exact
/// up to the histogram's resolution (0.05% at 3 significant digits). Weighted by count products,
/// the order statistics of the differences are found by bisection on the difference value with
/// a linear merge per step: O((B1 + B2) log(range)) for B1, B2 recorded buckets, never
/// `n_base * n_head`.
///
/// Returns `None` when either histogram is empty or `confidence` is not strictly between 0 and 1.
pub fn hodges_lehmann(
    base: &Histogram<u64>,
    head: &Histogram<u64>,
    confidence: f64,
) -> Option<Shift> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let base = Buckets::from_histogram(base, Representative::Median)?;
    let head = Buckets::from_histogram(head, Representative::Median)?;
    let differences = Differences::new(&base, &head);
    let pairs = differences.pairs;

    let estimate_us = if pairs % 2 == 1 {
        differences.order_statistic(pairs.div_ceil(2)) as f64
    } else {
        let low = differences.order_statistic(pairs / 2) as f64;
        let high = differences.order_statistic(pairs / 2 + 1) as f64;
        (low + high) / 2.0
    };

    let (n_base, n_head) = (base.total(), head.total());
    let alpha = 1.0 - confidence;
    let exact = exact_applies(n_base, n_head, base.has_ties() || head.has_ties());
    let k = if exact {
        u128::from(ExactU::new(n_base, n_head).quantile(alpha / 2.0))
    } else {
        let sigma = u_variance(n_base, n_head, base.tie_term() + head.tie_term()).sqrt();
        let z = normal_quantile(1.0 - alpha / 2.0);
        let k = (pairs as f64 / 2.0 - 0.5 - z * sigma).ceil();
        // Saturating float-to-int conversion: negative and NaN become 0, clamped below.
        k as u128
    };
    let k = k.clamp(1, pairs.div_ceil(2));
    let ci_low_us = differences.order_statistic(k) as f64;
    let ci_high_us = differences.order_statistic(pairs + 1 - k) as f64;

    Some(Shift {
        estimate_ms: crate::units::ms_from_us_f64(estimate_us),
        ci_low_ms: crate::units::ms_from_us_f64(ci_low_us),
        ci_high_ms: crate::units::ms_from_us_f64(ci_high_us),
        confidence,
        exact,
    })
}

/// The multiset of pairwise differences `head_j - base_i`, each with weight `count_i * count_j`,
/// without materializing it.
struct Differences {
    base: Vec<(i64, u64)>,
    head: Vec<(i64, u64)>,
    n_base: u128,
    /// Total weight: n_base * n_head.
    pairs: u128,
}

impl Differences {
    fn new(base: &Buckets, head: &Buckets) -> Self {
        let weighted = |b: &Buckets| -> Vec<(i64, u64)> {
            b.values
                .iter()
                .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
                .zip(b.counts.iter().copied())
                .collect()
        };
        Self {
            base: weighted(base),
            head: weighted(head),
            n_base: u128::from(base.total()),
            pairs: u128::from(base.total()) * u128::from(head.total()),
        }
    }

    /// Total weight of the differences `<= d`, by one merge: for HEAD values in ascending order
    /// the threshold `y - d` ascends, so one pointer sweeps the baseline once.
    fn weight_at_most(&self, d: i64) -> u128 {
        let mut below: u128 = 0; // baseline weight with x < y - d
        let mut i = 0;
        let mut total: u128 = 0;
        for &(y, count) in &self.head {
            let threshold = i128::from(y) - i128::from(d);
            while let Some(&(x, c)) = self.base.get(i) {
                if i128::from(x) >= threshold {
                    break;
                }
                below += u128::from(c);
                i += 1;
            }
            // y - x <= d  <=>  x >= y - d
            total += u128::from(count) * (self.n_base - below);
        }
        total
    }

    /// The `rank`-th smallest difference (1-based; `rank` in `1..=pairs`), by bisection on the
    /// difference value: differences of integer µs values are integers.
    fn order_statistic(&self, rank: u128) -> i64 {
        let first = |v: &Vec<(i64, u64)>| v.first().map_or(0, |&(x, _)| x);
        let last = |v: &Vec<(i64, u64)>| v.last().map_or(0, |&(x, _)| x);
        let mut low = first(&self.head).saturating_sub(last(&self.base));
        let mut high = last(&self.head).saturating_sub(first(&self.base));
        // Invariant: weight_at_most(high) >= rank; the answer is in [low, high].
        while low < high {
            // Floor of the midpoint, in i128: `high - low` can exceed i64 for extreme values.
            let mid = ((i128::from(low) + i128::from(high)) >> 1) as i64;
            if self.weight_at_most(mid) >= rank {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, histogram};
    use super::*;

    /// All n1 * n2 differences, sorted: the definition, for checking the weighted search.
    fn brute_differences(base: &[u64], head: &[u64]) -> Vec<i64> {
        let mut d: Vec<i64> = head
            .iter()
            .flat_map(|&y| base.iter().map(move |&x| y as i64 - x as i64))
            .collect();
        d.sort_unstable();
        d
    }

    fn brute_median(d: &[i64]) -> f64 {
        let n = d.len();
        if n % 2 == 1 {
            d[n / 2] as f64
        } else {
            (d[n / 2 - 1] + d[n / 2]) as f64 / 2.0
        }
    }

    fn shift(base: &[u64], head: &[u64], confidence: f64) -> Shift {
        hodges_lehmann(&histogram(base), &histogram(head), confidence).expect("valid input")
    }

    fn lcg(seed: u64, count: usize, lo: u64, span: u64) -> Vec<u64> {
        let mut x = seed;
        (0..count)
            .map(|_| {
                x = (1_103_515_245 * x + 12_345) % (1 << 31);
                lo + x % span
            })
            .collect()
    }

    #[test]
    fn invalid_input_is_none() {
        let h = histogram(&[1, 2]);
        assert!(hodges_lehmann(&histogram(&[]), &h, 0.95).is_none());
        assert!(hodges_lehmann(&h, &histogram(&[]), 0.95).is_none());
        for c in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(hodges_lehmann(&h, &h, c).is_none());
        }
    }

    #[test]
    fn weighted_order_statistics_match_brute_force() {
        // Ties within and across samples, odd and even numbers of pairs.
        let cases: Vec<(Vec<u64>, Vec<u64>)> = vec![
            (vec![5], vec![9]),
            (vec![5, 5, 5], vec![5, 5]),
            (vec![10, 20, 20, 30, 45], vec![12, 12, 50, 7]),
            (lcg(1, 37, 100, 40), lcg(2, 23, 110, 60)),
            (lcg(3, 60, 0, 2000), lcg(4, 51, 0, 2000)),
        ];
        for (base, head) in cases {
            let brute = brute_differences(&base, &head);
            let b = Buckets::from_histogram(&histogram(&base), Representative::Median);
            let h = Buckets::from_histogram(&histogram(&head), Representative::Median);
            let (Some(b), Some(h)) = (b, h) else {
                panic!("non-empty")
            };
            let d = Differences::new(&b, &h);
            assert_eq!(d.pairs as usize, brute.len());
            for (rank, &expected) in brute.iter().enumerate() {
                assert_eq!(d.order_statistic(rank as u128 + 1), expected, "rank {rank}");
            }
            assert_eq!(
                shift(&base, &head, 0.9).estimate_ms,
                brute_median(&brute) / 1000.0
            );
        }
    }

    #[test]
    fn identical_samples_straddle_zero() {
        let v = lcg(9, 300, 500, 800);
        let s = shift(&v, &v, 0.95);
        assert_eq!(s.estimate_ms, 0.0);
        assert!(s.ci_low_ms < 0.0 && s.ci_high_ms > 0.0, "{s:?}");
        assert_close(s.ci_low_ms, -s.ci_high_ms, 1e-12);
    }

    #[test]
    fn single_values_and_all_ties() {
        let s = shift(&[500], &[1500], 0.95);
        assert_eq!((s.estimate_ms, s.ci_low_ms, s.ci_high_ms), (1.0, 1.0, 1.0));
        // Above 2048 µs buckets are wider than 1 µs; samples stand at their bucket's midpoint.
        let s = shift(&[1000], &[3000], 0.95);
        assert_eq!(s.estimate_ms, 2.001);
        let s = shift(&[1000; 50], &[1500; 70], 0.95);
        assert_eq!((s.estimate_ms, s.ci_low_ms, s.ci_high_ms), (0.5, 0.5, 0.5));
        assert!(!s.exact);
    }

    #[test]
    fn moses_interval_matches_brute_force_order_statistics() {
        // Normal-approximation k computed by hand, interval read off the sorted differences.
        let base = lcg(11, 120, 300, 400);
        let head = lcg(12, 90, 330, 400);
        let brute = brute_differences(&base, &head);
        let s = shift(&base, &head, 0.9);
        let b = Buckets::from_histogram(&histogram(&base), Representative::Median);
        let h = Buckets::from_histogram(&histogram(&head), Representative::Median);
        let (Some(b), Some(h)) = (b, h) else {
            panic!("non-empty")
        };
        let sigma = u_variance(120, 90, b.tie_term() + h.tie_term()).sqrt();
        let k = (120.0 * 90.0 / 2.0 - 0.5 - 1.644_853_626_951_472 * sigma).ceil() as usize;
        assert_eq!(s.ci_low_ms, brute[k - 1] as f64 / 1000.0);
        assert_eq!(s.ci_high_ms, brute[brute.len() - k] as f64 / 1000.0);
    }

    // ---------------------------------------------------------------------------------------------
    // Reference values from R 4.2.2, `wilcox.test(head, base, conf.int = TRUE, conf.level = C)`
    // (which reports confidence intervals for the location shift of `head - base`). Exact cases
    // (no ties, both samples below 50) use qwilcox and must agree exactly. In the asymptotic case
    // R finds each end by `uniroot` on the continuity-corrected, tie-corrected z statistic as a
    // function of the shift; the root lands within 1e-4 of a pairwise difference, which must be
    // the one chosen here. R's asymptotic *estimate* is a root of that function too (not the
    // median of the differences), so it is checked against R only in exact cases.
    // ---------------------------------------------------------------------------------------------

    /// (conf.level, estimate, conf.int) as R prints them, for the exact cases.
    fn check_r_exact(base: &[u64], head: &[u64], rows: &[(f64, f64, f64, f64)]) {
        for &(confidence, estimate, low, high) in rows {
            let s = shift(base, head, confidence);
            assert!(s.exact);
            assert_eq!(
                (s.estimate_ms, s.ci_low_ms, s.ci_high_ms),
                (estimate / 1e3, low / 1e3, high / 1e3)
            );
        }
    }

    /// (conf.level, conf.int) for the asymptotic cases: each end within 1e-3 µs of R's root.
    fn check_r_asymptotic(base: &[u64], head: &[u64], rows: &[(f64, f64, f64)]) {
        for &(confidence, low, high) in rows {
            let s = shift(base, head, confidence);
            assert!(!s.exact);
            assert!(
                (s.ci_low_ms * 1e3 - low).abs() < 1e-3,
                "{s:?} vs R [{low}, {high}]"
            );
            assert!(
                (s.ci_high_ms * 1e3 - high).abs() < 1e-3,
                "{s:?} vs R [{low}, {high}]"
            );
        }
    }

    #[test]
    fn r_exact_small() {
        let base = &[101, 115, 98, 130, 122, 109, 94];
        let head = &[125, 140, 118, 133, 151, 112];
        check_r_exact(
            base,
            head,
            &[(0.9, 19.0, 3.0, 36.0), (0.95, 19.0, 3.0, 39.0)],
        );
    }

    #[test]
    fn r_exact_30_vs_45() {
        const BASE: &[u64] = &[
            51, 54, 61, 65, 178, 191, 209, 228, 285, 407, 447, 457, 476, 501, 563, 864, 1034, 1116,
            1149, 1209, 1232, 1309, 1330, 1385, 1436, 1466, 1508, 1516, 1518, 1827,
        ];
        const HEAD: &[u64] = &[
            163, 242, 316, 344, 353, 364, 411, 477, 485, 601, 612, 702, 730, 761, 850, 857, 866,
            897, 902, 937, 940, 1021, 1027, 1082, 1103, 1265, 1283, 1297, 1351, 1375, 1406, 1437,
            1458, 1604, 1669, 1729, 1738, 1825, 1828, 1833, 1874, 1911, 1940, 1956, 1989,
        ];
        check_r_exact(
            BASE,
            HEAD,
            &[(0.9, 315.5, 86.0, 533.0), (0.95, 315.5, 33.0, 573.0)],
        );
    }

    #[test]
    fn r_asymptotic_small_ties() {
        let base = &[100, 100, 105, 110, 110, 110, 120];
        let head = &[105, 110, 120, 120, 125, 130];
        let rows = [
            (0.9, 6.110289958e-05, 19.99994411),
            (0.95, -7.751591426e-05, 20.00007055),
        ];
        check_r_asymptotic(base, head, &rows);
        assert_eq!(shift(base, head, 0.9).estimate_ms, 0.01);
    }

    #[test]
    fn r_asymptotic_large_ties() {
        // base = lcg(1, 500, 300, 50), head = lcg(2, 600, 302, 50)
        let rows = [
            (0.9, 1.999928467, 4.999977045),
            (0.95, 1.999986207, 5.00004339),
        ];
        check_r_asymptotic(&lcg(1, 500, 300, 50), &lcg(2, 600, 302, 50), &rows);
    }

    #[test]
    fn r_asymptotic_moderate_ties() {
        // base = lcg(11, 120, 300, 400), head = lcg(12, 90, 330, 400)
        let rows = [
            (0.9, -28.00002051, 24.00003125),
            (0.95, -33.99994617, 29.99993249),
        ];
        check_r_asymptotic(&lcg(11, 120, 300, 400), &lcg(12, 90, 330, 400), &rows);
        // base = lcg(3, 800, 200, 1500), head = lcg(4, 700, 200, 1500)
        let rows = [
            (0.9, -26.00001261, 48.00008659),
            (0.95, -33.00004603, 55.99996485),
        ];
        check_r_asymptotic(&lcg(3, 800, 200, 1500), &lcg(4, 700, 200, 1500), &rows);
    }
}
