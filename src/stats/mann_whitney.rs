//! The Mann-Whitney U test, computed from histograms.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::buckets::{Buckets, Representative, tie_term};
use super::null::{ExactU, exact_applies, normal_cdf, normal_sf, u_variance};

/// Which way the one-sided test looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    /// HEAD is stochastically greater than the baseline: a regression (slower).
    Greater,
    /// HEAD is stochastically less than the baseline: an improvement (faster).
    Less,
}

/// The outcome of a one-sided Mann-Whitney U test of HEAD against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U for HEAD: the number of (base, head) pairs where the head sample is larger, ties
    /// counting one half. Ranges over `0 ..= n_base * n_head`; `n_base * n_head / 2` under the
    /// null hypothesis. This is scipy's `mannwhitneyu(head, base).statistic`.
    pub u: f64,
    /// The standardized statistic `(U - n_base n_head / 2 -+ 1/2) / sigma`, tie-corrected, with
    /// the continuity correction pulling towards zero. Positive means HEAD ranks slower,
    /// whichever the alternative. 0 when all samples are equal.
    pub z: f64,
    /// One-sided p-value for `alternative`.
    pub p_value: f64,
    pub n_base: u64,
    pub n_head: u64,
    /// Whether `p_value` comes from the exact permutation distribution (small samples without
    /// ties) rather than the normal approximation.
    pub exact: bool,
    pub alternative: Alternative,
    /// U / (n_base n_head): the probability that a random HEAD request is slower than a random
    /// baseline request, plus half the probability of a tie (the "common-language effect size";
    /// 0.5 = no difference).
    pub prob_head_slower: f64,
}

/// One-sided Mann-Whitney U test (Mann & Whitney 1947; Wilcoxon 1945) of the baseline against
/// HEAD, computed from their histograms.
///
/// The null hypothesis is that both runs draw their latencies from the same distribution; the
/// alternative is that HEAD's latencies are stochastically greater ([`Alternative::Greater`],
/// slower) or less ([`Alternative::Less`], faster). The test assumes requests are independent
/// draws within each run and nothing about the shape of the distribution, which suits latency
/// (skewed, multi-modal, heavy-tailed) far better than a t-test. It is sensitive to any shift of
/// the bulk of the distribution, much less to a change confined to the far tail: pair it with
/// [`quantile_change`](super::quantile_change) for that.
///
/// Samples in one HDR bucket are ties. Ranks are midranks over the merged buckets of both
/// histograms (the bucket's highest equivalent value stands for its samples, so equal buckets tie
/// across histograms); the null variance carries the tie correction of the permutation
/// distribution. The p-value comes from:
/// - the exact distribution of U when both samples are smaller than 50 and nothing ties (the rule
///   of R's `wilcox.test`; scipy's `method="auto"` goes exact only when a sample has at most 8
///   values);
/// - otherwise the normal approximation with a continuity correction, as
///   `scipy.stats.mannwhitneyu(head, base, alternative=..., method="asymptotic")` computes it.
///
/// When every sample of both runs falls in one bucket, U equals its null mean under every
/// permutation: the data carry no evidence either way and the p-value is 1.
///
/// Returns `None` when either histogram is empty.
pub fn mann_whitney(
    base: &Histogram<u64>,
    head: &Histogram<u64>,
    alternative: Alternative,
) -> Option<MannWhitney> {
    let base = Buckets::from_histogram(base, Representative::Highest)?;
    let head = Buckets::from_histogram(head, Representative::Highest)?;
    Some(test_buckets(&base, &head, alternative))
}

/// U and the tie structure of the pooled sample.
struct Ranked {
    /// 2U for HEAD, an integer: U itself is a multiple of 1/2.
    twice_u: u128,
    /// `sum(t^3 - t)` over groups of equal values in the pooled sample.
    tie_term: f64,
    ties: bool,
    distinct: usize,
}

/// Merges the two bucket lists (both ascending) and accumulates U for HEAD directly as
/// `sum over head samples of (#base below + 1/2 #base equal)`, which equals the midrank form
/// `R_head - n_head (n_head + 1) / 2` without its cancellation.
fn rank(base: &Buckets, head: &Buckets) -> Ranked {
    let (mut i, mut j) = (0, 0);
    let mut base_below: u128 = 0;
    let mut ranked = Ranked {
        twice_u: 0,
        tie_term: 0.0,
        ties: false,
        distinct: 0,
    };
    while i < base.values.len() || j < head.values.len() {
        let value = match (base.values.get(i), head.values.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let mut at_base = 0;
        if base.values.get(i) == Some(&value) {
            at_base = base.counts[i];
            i += 1;
        }
        let mut at_head = 0;
        if head.values.get(j) == Some(&value) {
            at_head = head.counts[j];
            j += 1;
        }
        ranked.twice_u += u128::from(at_head) * (2 * base_below + u128::from(at_base));
        let tied = at_base.saturating_add(at_head);
        if tied > 1 {
            ranked.ties = true;
            ranked.tie_term += tie_term(tied);
        }
        base_below += u128::from(at_base);
        ranked.distinct += 1;
    }
    ranked
}

fn test_buckets(base: &Buckets, head: &Buckets, alternative: Alternative) -> MannWhitney {
    let (n_base, n_head) = (base.total(), head.total());
    let ranked = rank(base, head);
    let pairs = n_base as f64 * n_head as f64;
    let u = ranked.twice_u as f64 / 2.0;
    let mean = pairs / 2.0;
    let sigma = u_variance(n_base, n_head, ranked.tie_term).sqrt();
    let mut result = MannWhitney {
        u,
        z: 0.0,
        p_value: 1.0,
        n_base,
        n_head,
        exact: false,
        alternative,
        prob_head_slower: u / pairs,
    };
    if ranked.distinct < 2 || sigma <= 0.0 || !sigma.is_finite() {
        return result;
    }
    let correction = match alternative {
        Alternative::Greater => -0.5,
        Alternative::Less => 0.5,
    };
    result.z = (u - mean + correction) / sigma;
    if exact_applies(n_base, n_head, ranked.ties) {
        // Without ties 2U is even.
        let u_int = (ranked.twice_u / 2) as u64;
        let null = ExactU::new(n_base, n_head);
        result.exact = true;
        result.p_value = match alternative {
            Alternative::Greater => null.sf(u_int),
            Alternative::Less => null.cdf(u_int),
        };
    } else {
        result.p_value = match alternative {
            Alternative::Greater => normal_sf(result.z),
            Alternative::Less => normal_cdf(result.z),
        };
    }
    result.p_value = result.p_value.clamp(0.0, 1.0);
    result
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, histogram};
    use super::*;

    fn test(base: &[u64], head: &[u64], alternative: Alternative) -> MannWhitney {
        mann_whitney(&histogram(base), &histogram(head), alternative).expect("non-empty")
    }

    #[test]
    fn empty_is_none() {
        let some = histogram(&[1, 2, 3]);
        let none = histogram(&[]);
        assert!(mann_whitney(&none, &some, Alternative::Greater).is_none());
        assert!(mann_whitney(&some, &none, Alternative::Less).is_none());
    }

    #[test]
    fn all_equal_is_p_one() {
        for alt in [Alternative::Greater, Alternative::Less] {
            let r = test(&[700; 40], &[700; 90], alt);
            assert_eq!(r.u, 40.0 * 90.0 / 2.0);
            assert_eq!(r.p_value, 1.0);
            assert_eq!(r.z, 0.0);
            assert_eq!(r.prob_head_slower, 0.5);
        }
        let r = test(&[5], &[5], Alternative::Greater);
        assert_eq!((r.u, r.p_value), (0.5, 1.0));
    }

    #[test]
    fn single_values() {
        let r = test(&[5], &[6], Alternative::Greater);
        assert_eq!((r.u, r.p_value, r.exact), (1.0, 0.5, true));
        let r = test(&[5], &[6], Alternative::Less);
        assert_eq!((r.u, r.p_value), (1.0, 1.0));
    }

    #[test]
    fn large_values_rank_by_bucket() {
        // 10_000_000 and 10_000_001 share a bucket at 3 significant digits: a tie, not a shift.
        let r = test(&[10_000_000; 10], &[10_000_001; 10], Alternative::Greater);
        assert_eq!(r.p_value, 1.0);
        let r = test(&[10_000_000; 10], &[20_000_000; 10], Alternative::Greater);
        assert_eq!(r.u, 100.0);
        assert!(r.p_value < 1e-4);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let mut base = histogram(&[]);
        let mut head = histogram(&[]);
        base.record_n(1_000, 3_000_000_000).expect("in range");
        head.record_n(1_000, 1_000_000_000).expect("in range");
        head.record_n(1_001, 2_000_000_000).expect("in range");
        let r = mann_whitney(&base, &head, Alternative::Greater).expect("non-empty");
        assert!(r.p_value.is_finite() && r.p_value < 1e-300, "{r:?}");
        assert_close(r.prob_head_slower, (1.0 / 3.0) * 0.5 + 2.0 / 3.0, 1e-12);
    }

    // ---------------------------------------------------------------------------------------------
    // Reference values from scipy 1.17.1 (numpy 2.4.6, Python 3.11.7), each computed as
    //     scipy.stats.mannwhitneyu(head, base, alternative=ALT, method=METHOD)
    // with the `head` and `base` lists written out below (µs values < 2048, so every HDR bucket
    // holds one value and histogram ranks equal sample ranks). Asymptotic results use scipy's
    // defaults: continuity correction on, tie-corrected variance.
    // ---------------------------------------------------------------------------------------------

    /// Checks U and the p-value for both alternatives against scipy's:
    /// `expected` = (U, p for "greater", p for "less").
    fn check(base: &[u64], head: &[u64], exact: bool, expected: (f64, f64, f64)) {
        let (u, p_greater, p_less) = expected;
        for (alternative, p) in [(Greater, p_greater), (Less, p_less)] {
            let got = test(base, head, alternative);
            assert_eq!(got.exact, exact, "{got:?}");
            assert_eq!(got.u, u, "{got:?}");
            assert_close(got.p_value, p, 1e-9);
        }
    }

    /// The generator both the Python script and these tests use for the larger datasets:
    /// `x <- (1103515245 x + 12345) mod 2^31`, value = `lo + x mod span`.
    fn lcg(seed: u64, count: usize, lo: u64, span: u64) -> Vec<u64> {
        let mut x = seed;
        (0..count)
            .map(|_| {
                x = (1_103_515_245 * x + 12_345) % (1 << 31);
                lo + x % span
            })
            .collect()
    }

    use Alternative::{Greater, Less};

    const SMALL_BASE: &[u64] = &[101, 115, 98, 130, 122, 109, 94];
    const SMALL_HEAD: &[u64] = &[125, 140, 118, 133, 151, 112];

    #[test]
    fn scipy_small_exact_no_ties() {
        // method="exact" (scipy's "auto" also picks exact here).
        check(
            SMALL_BASE,
            SMALL_HEAD,
            true,
            (36.0, 0.01748251748251748, 0.9889277389277389),
        );
    }

    #[test]
    fn normal_approximation_matches_scipy_asymptotic() {
        // The same data through the asymptotic path:
        // mannwhitneyu(head, base, alternative="greater", method="asymptotic").pvalue
        let base = Buckets::from_histogram(&histogram(SMALL_BASE), Representative::Highest);
        let head = Buckets::from_histogram(&histogram(SMALL_HEAD), Representative::Highest);
        let (Some(base), Some(head)) = (base, head) else {
            panic!("non-empty")
        };
        let ranked = rank(&base, &head);
        let sigma = u_variance(7, 6, ranked.tie_term).sqrt();
        let z = (ranked.twice_u as f64 / 2.0 - 21.0 - 0.5) / sigma;
        assert_close(normal_sf(z), 0.01915938157470678, 1e-9);
    }

    #[test]
    fn scipy_exact_below_50_no_ties() {
        // method="exact"; 30 vs 45 distinct values drawn by Python's random.Random(42).
        const BASE: &[u64] = &[
            51, 54, 61, 65, 178, 191, 209, 228, 285, 407, 447, 457, 476, 501, 563, 864, 1034, 1116,
            1149, 1209, 1232, 1309, 1330, 1385, 1436, 1466, 1508, 1516, 1518, 1827,
        ];
        const HEAD: &[u64] = &[
            163, 242, 316, 344, 353, 364, 411, 477, 485, 601, 612, 702, 730, 761, 850, 857, 866,
            897, 902, 937, 940, 1021, 1027, 1082, 1103, 1265, 1283, 1297, 1351, 1375, 1406, 1437,
            1458, 1604, 1669, 1729, 1738, 1825, 1828, 1833, 1874, 1911, 1940, 1956, 1989,
        ];
        check(
            BASE,
            HEAD,
            true,
            (873.0, 0.016045818856590118, 0.984393297459205),
        );
    }

    #[test]
    fn scipy_small_with_ties() {
        // method="asymptotic" (ties rule out exact).
        let base = &[100, 100, 105, 110, 110, 110, 120];
        let head = &[105, 110, 120, 120, 125, 130];
        check(
            base,
            head,
            false,
            (34.0, 0.03390225022320518, 0.9757184864729825),
        );
    }

    #[test]
    fn scipy_large_heavy_ties() {
        // method="asymptotic"; base = lcg(1, 500, 300, 50), head = lcg(2, 600, 302, 50):
        // integers on 50 values, so every value ties ~10 times; head shifted up by 2 µs.
        let base = &lcg(1, 500, 300, 50);
        let head = &lcg(2, 600, 302, 50);
        check(
            base,
            head,
            false,
            (170014.0, 6.794981924074563e-05, 0.9999321026277211),
        );
    }

    #[test]
    fn scipy_large_equal_distributions() {
        // method="asymptotic"; base = lcg(3, 800, 200, 1500), head = lcg(4, 700, 200, 1500).
        let base = &lcg(3, 800, 200, 1500);
        let head = &lcg(4, 700, 200, 1500);
        check(
            base,
            head,
            false,
            (284172.0, 0.3090926471712594, 0.6909494505550824),
        );
    }

    #[test]
    fn scipy_large_shifted_far_tail() {
        // method="asymptotic"; base = lcg(5, 1000, 200, 1000), head = lcg(6, 1000, 450, 1000).
        // The p-value of 1.8e-67 checks that the upper tail is computed without `1 - cdf`.
        let base = &lcg(5, 1000, 200, 1000);
        let head = &lcg(6, 1000, 450, 1000);
        check(base, head, false, (723606.5, 1.777181581560048e-67, 1.0));
    }
}
