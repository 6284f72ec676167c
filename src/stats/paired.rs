//! Statistics of paired measurements: the Wilcoxon signed-rank test and the one-sample
//! Hodges-Lehmann estimate, over per-pair differences.
//!
//! Paired mode measures the baseline and HEAD deployments at the same time in time blocks, so each
//! block of one side has a twin of the other side taken at the same moment: whatever the machine did then
//! (a noisy neighbour, a thermal throttle, a GC of the runner) hit both. The differences within
//! pairs (log p95 ratios, say) are what the tests below look at; the machine's drift cancels in
//! them. Pairs are assumed independent of each other and, under the null hypothesis, each
//! difference symmetric about zero (which holds when base and head are the same code and the
//! order within pairs alternates).

use serde::{Deserialize, Serialize};

use super::mann_whitney::Alternative;
use super::null::{normal_cdf, normal_quantile, normal_sf};

/// Exact null distributions up to this many non-zero differences (2^25 sign assignments, a
/// table of 326 counts); beyond, the normal approximation is within ~1e-3.
pub const EXACT_MAX_PAIRS: usize = 25;

/// The Hodges-Lehmann estimate enumerates all n (n + 1) / 2 Walsh averages; above this many
/// pairs (2 million averages, 16 MB) it declines rather than exhaust memory.
pub const HL_MAX_PAIRS: usize = 2000;

/// The outcome of a one-sided Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignedRank {
    /// Sum of the ranks of |d| over the positive differences (midranks for ties). R's `V`,
    /// scipy's `wilcoxon(d, alternative="greater").statistic`.
    pub w_plus: f64,
    /// Non-zero differences: the pairs the test uses.
    pub n: usize,
    /// Differences exactly zero, dropped (Wilcoxon's original rule, R's and scipy's default).
    pub zeros: usize,
    /// One-sided p-value for `alternative`: Greater means the differences tend to be positive.
    pub p_value: f64,
    /// Whether the p-value comes from the exact null distribution.
    pub exact: bool,
    pub alternative: Alternative,
}

/// One-sided Wilcoxon signed-rank test (Wilcoxon 1945) of per-pair differences `diffs`.
///
/// Null hypothesis: the differences are symmetric about zero. [`Alternative::Greater`]: they
/// tend to be positive (HEAD slower, for `head - base`); [`Alternative::Less`]: negative.
/// Zeros are dropped. Ranks are of |d|, midranks for ties. The p-value comes from:
/// - the exact distribution of W+ (every one of the 2^n sign assignments equally likely, counted
///   by dynamic programming) when at most [`EXACT_MAX_PAIRS`] differences remain and no two |d|
///   tie (R's `wilcox.test` rule, with its limit of 50 lowered);
/// - otherwise the normal approximation with the tie-corrected variance
///   `n (n + 1) (2n + 1) / 24 - sum(t^3 - t) / 48` and a continuity correction of 1/2, as
///   `scipy.stats.wilcoxon(d, alternative=..., method="approx", correction=True)` computes it.
///
/// With every difference zero the data carry no evidence either way: the p-value is 1 and `n` is
/// 0. Returns `None` for no differences at all or any non-finite difference.
pub fn signed_rank(diffs: &[f64], alternative: Alternative) -> Option<SignedRank> {
    if diffs.is_empty() || diffs.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let mut nonzero: Vec<f64> = diffs.iter().copied().filter(|&d| d != 0.0).collect();
    let zeros = diffs.len() - nonzero.len();
    let n = nonzero.len();
    if n == 0 {
        return Some(SignedRank {
            w_plus: 0.0,
            n: 0,
            zeros,
            p_value: 1.0,
            exact: true,
            alternative,
        });
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Midranks over groups of equal |d|, and the tie term sum(t^3 - t).
    let mut w_plus = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && nonzero[j].abs() == nonzero[i].abs() {
            j += 1;
        }
        let midrank = (i + 1 + j) as f64 / 2.0;
        for d in &nonzero[i..j] {
            if *d > 0.0 {
                w_plus += midrank;
            }
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let ties = tie_term > 0.0;
    let exact = !ties && n <= EXACT_MAX_PAIRS;
    let p_value = if exact {
        let dist = ExactW::new(n);
        // No ties: ranks are 1..n and W+ is an integer.
        let w = w_plus.round() as usize;
        match alternative {
            Alternative::Greater => dist.sf(w),
            Alternative::Less => dist.cdf(w),
        }
    } else {
        let nf = n as f64;
        let mean = nf * (nf + 1.0) / 4.0;
        let variance = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0).max(0.0);
        if variance == 0.0 {
            1.0
        } else {
            let sd = variance.sqrt();
            match alternative {
                Alternative::Greater => normal_sf((w_plus - mean - 0.5) / sd),
                Alternative::Less => normal_cdf((w_plus - mean + 0.5) / sd),
            }
        }
    };
    Some(SignedRank {
        w_plus,
        n,
        zeros,
        p_value: p_value.clamp(0.0, 1.0),
        exact,
        alternative,
    })
}

/// The smallest one-sided p-value the signed-rank test can give with `n` non-zero differences:
/// all of one sign, 2^-n. Fewer pairs than `log2(tests / alpha)` can never be significant.
pub fn smallest_p(n: usize) -> f64 {
    0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX))
}

/// The exact null distribution of W+ for `n` untied differences: `counts[w]` sign assignments of
/// ranks 1..n give W+ = w, out of 2^n. Built one rank at a time (the coefficients of
/// `prod_{r=1..n} (1 + q^r)`), in integers: 2^25 fits a u64 many times over.
struct ExactW {
    counts: Vec<u64>,
    total: f64,
}

impl ExactW {
    fn new(n: usize) -> ExactW {
        let n = n.min(EXACT_MAX_PAIRS);
        let max = n * (n + 1) / 2;
        let mut counts = vec![0u64; max + 1];
        counts[0] = 1;
        for r in 1..=n {
            for w in (r..=max).rev() {
                counts[w] += counts[w - r];
            }
        }
        ExactW {
            counts,
            total: (1u64 << n) as f64,
        }
    }

    /// P(W+ <= w).
    fn cdf(&self, w: usize) -> f64 {
        let end = w.min(self.counts.len() - 1);
        self.counts[..=end].iter().sum::<u64>() as f64 / self.total
    }

    /// P(W+ >= w).
    fn sf(&self, w: usize) -> f64 {
        if w >= self.counts.len() {
            return 0.0;
        }
        self.counts[w..].iter().sum::<u64>() as f64 / self.total
    }

    /// R's `qsignrank(p, n)`: the smallest w with P(W+ <= w) >= p.
    fn quantile(&self, p: f64) -> usize {
        let mut acc = 0u64;
        for (w, c) in self.counts.iter().enumerate() {
            acc += c;
            if acc as f64 / self.total >= p {
                return w;
            }
        }
        self.counts.len() - 1
    }
}

/// The one-sample Hodges-Lehmann estimate of the centre of the differences, with its
/// distribution-free confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedShift {
    /// Median of the Walsh averages `(d_i + d_j) / 2`, `i <= j`.
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The confidence level asked for, e.g. 0.95.
    pub confidence: f64,
    /// Whether the interval's ends come from the exact signed-rank distribution.
    pub exact: bool,
    /// Differences used (zeros included).
    pub n: usize,
}

/// Hodges-Lehmann estimate of the centre of symmetry of `diffs` (Hodges & Lehmann 1963): the
/// median of the M = n (n + 1) / 2 Walsh averages, with the confidence interval that inverts the
/// two-sided signed-rank test (Tukey; Hollander & Wolfe 1999, §3.3): `[A(k), A(M + 1 - k)]` of the
/// sorted Walsh averages A, with `k` the lower `(1 - confidence) / 2` critical value of W+. As
/// R's `wilcox.test(d, conf.int = TRUE)`: `k = qsignrank(alpha / 2, n)` (at least 1) when the
/// exact distribution applies (n <= [`EXACT_MAX_PAIRS`], no two differences equal); otherwise
/// `k = ceil(M/2 - 1/2 - z sigma)` from the normal approximation, with sigma tie-corrected for
/// equal differences. Distribution-free under the model that the differences are symmetric about
/// the centre; with few pairs (`k < 1`) the interval is the full range and covers less than asked.
///
/// Zeros are kept: they are real pairs whose sides agreed, and they pull the estimate towards
/// zero as they should.
///
/// Returns `None` for no differences, a non-finite one, more than [`HL_MAX_PAIRS`], or a
/// confidence not strictly between 0 and 1.
pub fn hodges_lehmann_paired(diffs: &[f64], confidence: f64) -> Option<PairedShift> {
    let n = diffs.len();
    if n == 0
        || n > HL_MAX_PAIRS
        || diffs.iter().any(|d| !d.is_finite())
        || !(confidence > 0.0 && confidence < 1.0)
    {
        return None;
    }
    let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            // Halve first: no overflow to infinity for values near f64::MAX.
            walsh.push(diffs[i] / 2.0 + diffs[j] / 2.0);
        }
    }
    walsh.sort_by(f64::total_cmp);
    let m = walsh.len();
    let estimate = if m % 2 == 1 {
        walsh[m / 2]
    } else {
        walsh[m / 2 - 1] / 2.0 + walsh[m / 2] / 2.0
    };

    let mut sorted = diffs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let alpha = 1.0 - confidence;
    let exact = tie_term == 0.0 && n <= EXACT_MAX_PAIRS;
    let k = if exact {
        ExactW::new(n).quantile(alpha / 2.0)
    } else {
        let nf = n as f64;
        let sigma = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0)
            .max(0.0)
            .sqrt();
        let z = normal_quantile(1.0 - alpha / 2.0);
        // Saturating float-to-int: negative and NaN become 0, clamped below.
        (m as f64 / 2.0 - 0.5 - z * sigma).ceil() as usize
    };
    let k = k.clamp(1, m.div_ceil(2));
    Some(PairedShift {
        estimate,
        ci_low: walsh[k - 1],
        ci_high: walsh[m - k],
        confidence,
        exact,
        n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_support::assert_close;

    /// Hollander & Wolfe's depression scores (R's `?wilcox.test` example): x - y.
    #[expect(clippy::approx_constant, reason = "3.14 is a patient's score, not pi")]
    fn depression() -> Vec<f64> {
        let x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        x.iter().zip(y).map(|(a, b)| a - b).collect()
    }

    #[test]
    fn r_wilcox_test_paired_reference() {
        // R: wilcox.test(x, y, paired = TRUE, alternative = "greater"): V = 40, p = 0.01953.
        let r = signed_rank(&depression(), Alternative::Greater).unwrap();
        assert_eq!(r.w_plus, 40.0);
        assert!(r.exact);
        assert_close(r.p_value, 10.0 / 512.0, 1e-12);
        let l = signed_rank(&depression(), Alternative::Less).unwrap();
        // P(V <= 40) = 1 - P(V >= 41); P(V = 40) = P(V = 5) = 3/512 by symmetry.
        assert_close(l.p_value, 1.0 - 7.0 / 512.0, 1e-12);
    }

    #[test]
    fn scipy_wilcoxon_reference() {
        // scipy docs (Cushny & Peebles via Fisher): wilcoxon(d, alternative="greater") gives
        // statistic 96, p = 0.0206298828125 exactly (169 / 8192).
        let d = [
            6.0, 8.0, 14.0, 16.0, 23.0, 24.0, 28.0, 29.0, 41.0, -48.0, 49.0, 56.0, 60.0, -67.0,
            75.0,
        ];
        let r = signed_rank(&d, Alternative::Greater).unwrap();
        assert_eq!(r.w_plus, 96.0);
        assert!(r.exact);
        assert_close(r.p_value, 0.020_629_882_812_5, 1e-12);
    }

    #[test]
    fn exact_matches_brute_force_enumeration() {
        let d = [0.3, -1.1, 2.5, 0.7, -0.2, 1.9, 0.05, -0.6, 1.4, 3.3, -2.7];
        let n = d.len();
        let mut ranked: Vec<f64> = d.to_vec();
        ranked.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
        let observed: usize = (0..n).filter(|&i| ranked[i] > 0.0).map(|i| i + 1).sum();
        let (mut ge, mut le) = (0u32, 0u32);
        for signs in 0u32..(1 << n) {
            let w: usize = (0..n).filter(|&i| signs >> i & 1 == 1).map(|i| i + 1).sum();
            ge += u32::from(w >= observed);
            le += u32::from(w <= observed);
        }
        let total = f64::from(1u32 << n);
        let g = signed_rank(&d, Alternative::Greater).unwrap();
        let l = signed_rank(&d, Alternative::Less).unwrap();
        assert_eq!(g.w_plus, observed as f64);
        assert_close(g.p_value, f64::from(ge) / total, 1e-12);
        assert_close(l.p_value, f64::from(le) / total, 1e-12);
    }

    #[test]
    fn normal_approximation_with_ties_and_zeros_by_hand() {
        // |d| = 1, 1, 2, 2, 2, 3 plus two zeros (dropped): midranks 1.5, 1.5, 4, 4, 4, 6.
        let d = [1.0, -1.0, 2.0, 2.0, -2.0, 3.0, 0.0, 0.0];
        let r = signed_rank(&d, Alternative::Greater).unwrap();
        assert_eq!((r.n, r.zeros, r.exact), (6, 2, false));
        assert_eq!(r.w_plus, 1.5 + 4.0 + 4.0 + 6.0);
        let mean = 6.0 * 7.0 / 4.0;
        let var = 6.0 * 7.0 * 13.0 / 24.0 - ((8.0 - 2.0) + (27.0 - 3.0)) / 48.0;
        assert_close(
            r.p_value,
            normal_sf((15.5 - mean - 0.5) / f64::sqrt(var)),
            1e-12,
        );
        // Beyond 25 pairs, the approximation (no ties): 30 positive differences.
        let d: Vec<f64> = (1..=30).map(f64::from).collect();
        let r = signed_rank(&d, Alternative::Greater).unwrap();
        assert!(!r.exact);
        let (mean, var) = (30.0 * 31.0 / 4.0, 30.0 * 31.0 * 61.0 / 24.0);
        assert_close(
            r.p_value,
            normal_sf((465.0 - mean - 0.5) / f64::sqrt(var)),
            1e-12,
        );
        assert!(r.p_value < 1e-5);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(signed_rank(&[], Alternative::Greater).is_none());
        assert!(signed_rank(&[1.0, f64::NAN], Alternative::Greater).is_none());
        assert!(signed_rank(&[f64::INFINITY], Alternative::Less).is_none());
        let z = signed_rank(&[0.0; 7], Alternative::Greater).unwrap();
        assert_eq!((z.n, z.zeros, z.p_value), (0, 7, 1.0));
        // One pair: half the sign assignments are at least as extreme.
        let one = signed_rank(&[5.0], Alternative::Greater).unwrap();
        assert_eq!(one.p_value, 0.5);
        let huge = signed_rank(&[f64::MAX, -f64::MAX, f64::MIN_POSITIVE], Alternative::Less);
        assert!(huge.is_some_and(|r| (0.0..=1.0).contains(&r.p_value)));
        assert_eq!(smallest_p(10), 1.0 / 1024.0);
        assert_eq!(smallest_p(0), 1.0);
    }

    #[test]
    fn qsignrank_reference() {
        // R: qsignrank(0.025, 9) = 6, qsignrank(0.025, 10) = 9, psignrank(5, 9) = 0.01953125.
        assert_eq!(ExactW::new(9).quantile(0.025), 6);
        assert_eq!(ExactW::new(10).quantile(0.025), 9);
        assert_close(ExactW::new(9).cdf(5), 0.019_531_25, 1e-12);
        assert_eq!(ExactW::new(25).counts.iter().sum::<u64>(), 1 << 25);
    }

    #[test]
    fn hodges_lehmann_by_enumeration() {
        let d = depression();
        let hl = hodges_lehmann_paired(&d, 0.95).unwrap();
        let mut walsh = Vec::new();
        for i in 0..d.len() {
            for j in i..d.len() {
                walsh.push((d[i] + d[j]) / 2.0);
            }
        }
        walsh.sort_by(f64::total_cmp);
        // 45 averages: the median is the 23rd; k = qsignrank(0.025, 9) = 6.
        assert_close(hl.estimate, walsh[22], 1e-12);
        assert_close(hl.ci_low, walsh[5], 1e-12);
        assert_close(hl.ci_high, walsh[39], 1e-12);
        assert!(hl.exact);
        // R: wilcox.test(x, y, paired = TRUE, alternative = "greater", conf.int = TRUE):
        // (pseudo)median 0.46, 95% one-sided interval from 0.175, which is the lower end of the
        // two-sided 90% interval (k = qsignrank(0.05, 9) = 9).
        assert_close(hl.estimate, 0.46, 1e-9);
        let ninety = hodges_lehmann_paired(&d, 0.90).unwrap();
        assert_close(ninety.ci_low, 0.175, 1e-9);
        assert_close(ninety.ci_low, walsh[8], 1e-12);
    }

    #[test]
    fn hodges_lehmann_edges() {
        assert!(hodges_lehmann_paired(&[], 0.95).is_none());
        assert!(hodges_lehmann_paired(&[1.0], 1.0).is_none());
        assert!(hodges_lehmann_paired(&[1.0, f64::NAN], 0.95).is_none());
        assert!(hodges_lehmann_paired(&vec![0.1; HL_MAX_PAIRS + 1], 0.95).is_none());
        // Too few pairs for 95%: the full range, as R does.
        let hl = hodges_lehmann_paired(&[1.0, 2.0, 4.0], 0.95).unwrap();
        assert_eq!((hl.ci_low, hl.ci_high), (1.0, 4.0));
        // Ties: the normal branch, still ordered, centre inside.
        let hl = hodges_lehmann_paired(&[0.1; 40], 0.95).unwrap();
        assert_eq!(
            (hl.estimate, hl.ci_low, hl.ci_high, hl.exact),
            (0.1, 0.1, 0.1, false)
        );
        let hl = hodges_lehmann_paired(&[f64::MAX, f64::MAX, -f64::MAX], 0.9).unwrap();
        assert!(hl.ci_low <= hl.estimate && hl.estimate <= hl.ci_high);
        // Many pairs around 0.2: the interval covers it and is narrow.
        let d: Vec<f64> = (0..200)
            .map(|i| 0.2 + 0.05 * ((i * 37 % 101) as f64 / 50.0 - 1.0))
            .collect();
        let hl = hodges_lehmann_paired(&d, 0.95).unwrap();
        assert!(hl.ci_low < 0.2 && 0.2 < hl.ci_high && hl.ci_high - hl.ci_low < 0.02);
    }
}
