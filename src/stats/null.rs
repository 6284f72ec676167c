//! The null distribution of the Mann-Whitney U statistic: exact for small untied samples, normal
//! otherwise.

use statrs::distribution::{ContinuousCDF, Normal};

/// Exact distributions are used when both samples are smaller than this and nothing ties: the
/// rule of R's `wilcox.test`. Beyond it the normal approximation is within ~1e-3 of the exact
/// p-value, and histograms of real runs (hundreds of requests, bucketed) always tie anyway.
pub(super) const EXACT_BELOW: u64 = 50;

/// Whether the exact null distribution applies to samples of these sizes.
pub(super) fn exact_applies(n1: u64, n2: u64, ties: bool) -> bool {
    !ties && n1 < EXACT_BELOW && n2 < EXACT_BELOW
}

/// The exact null distribution of U for two untied samples of sizes `m` and `n`: every one of
/// the C(m+n, m) assignments of ranks to the samples is equally likely, and `counts[u]` is how
/// many of them give U = u.
///
/// The counts are the coefficients of the Gaussian binomial coefficient
/// `[m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)` (Mann & Whitney 1947; Andrews
/// 1976, "The Theory of Partitions", ch. 3), built one factor at a time in exact integer
/// arithmetic: C(98, 49) ~ 2.5e28 fits an i128 with room to spare.
pub(super) struct ExactU {
    counts: Vec<i128>,
    total: i128,
}

impl ExactU {
    pub fn new(m: u64, n: u64) -> Self {
        let (m, n) = (m as usize, n as usize);
        let top = m * n;
        let mut counts = vec![0i128; top + 1];
        counts[0] = 1;
        for i in 1..=m {
            // Multiply by (1 - q^(n+i)), highest degree first so each term reads the old value.
            for u in (n + i..=top).rev() {
                counts[u] -= counts[u - n - i];
            }
            // Divide by (1 - q^i): multiply by 1 + q^i + q^2i + ..., lowest degree first.
            for u in i..=top {
                counts[u] += counts[u - i];
            }
        }
        let total = counts.iter().sum();
        Self { counts, total }
    }

    /// P(U >= u).
    pub fn sf(&self, u: u64) -> f64 {
        let from = (u as usize).min(self.counts.len());
        let tail: i128 = self.counts[from..].iter().sum();
        tail as f64 / self.total as f64
    }

    /// P(U <= u).
    pub fn cdf(&self, u: u64) -> f64 {
        let to = (u as usize).saturating_add(1).min(self.counts.len());
        let head: i128 = self.counts[..to].iter().sum();
        head as f64 / self.total as f64
    }

    /// The smallest u with P(U <= u) >= p: R's `qwilcox(p, m, n)`.
    pub fn quantile(&self, p: f64) -> u64 {
        let mut running: i128 = 0;
        for (u, &c) in self.counts.iter().enumerate() {
            running += c;
            if running as f64 >= p * self.total as f64 {
                return u as u64;
            }
        }
        (self.counts.len() as u64).saturating_sub(1)
    }
}

/// Standard normal distribution (statrs).
pub(super) fn standard_normal() -> Normal {
    Normal::standard()
}

/// P(Z > z) for a standard normal Z, accurate in the far tail (no `1 - cdf` cancellation).
pub(super) fn normal_sf(z: f64) -> f64 {
    standard_normal().sf(z)
}

/// P(Z <= z) for a standard normal Z, accurate in the far lower tail.
pub(super) fn normal_cdf(z: f64) -> f64 {
    standard_normal().cdf(z)
}

/// The z with P(Z <= z) = p.
pub(super) fn normal_quantile(p: f64) -> f64 {
    standard_normal().inverse_cdf(p)
}

/// Variance of U under the null hypothesis with the tie correction of the permutation
/// distribution: `n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1)))`, n = n1 + n2, where the
/// sum runs over groups of tied values in the pooled sample (Lehmann 1975, "Nonparametrics",
/// ch. 1).
pub(super) fn u_variance(n1: u64, n2: u64, tie_term: f64) -> f64 {
    let (n1, n2) = (n1 as f64, n2 as f64);
    let n = n1 + n2;
    if n < 2.0 {
        return 0.0;
    }
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    variance.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binomial(n: u64, k: u64) -> i128 {
        (0..k).fold(1i128, |acc, i| acc * (n - i) as i128 / (i + 1) as i128)
    }

    #[test]
    fn exact_counts_by_hand() {
        // m = 2, n = 2: the 6 rank assignments give U = 0, 1, 2, 2, 3, 4.
        let d = ExactU::new(2, 2);
        assert_eq!(d.counts, vec![1, 1, 2, 1, 1]);
        assert_eq!(d.sf(3), 2.0 / 6.0);
        assert_eq!(d.cdf(1), 2.0 / 6.0);
        assert_eq!(d.quantile(0.3), 1);
    }

    #[test]
    fn exact_counts_are_symmetric_and_sum_to_binomial() {
        for (m, n) in [(1, 1), (3, 7), (7, 3), (12, 20), (49, 49)] {
            let d = ExactU::new(m, n);
            assert_eq!(d.total, binomial(m + n, m), "m={m} n={n}");
            let reversed: Vec<i128> = d.counts.iter().rev().copied().collect();
            assert_eq!(d.counts, reversed);
            assert!(d.counts.iter().all(|&c| c > 0));
            assert_eq!(d.counts, ExactU::new(n, m).counts);
        }
    }

    #[test]
    fn r_qwilcox_reference() {
        // R 4.2.2: qwilcox(0.025, 10, 12) = 30; qwilcox(0.025, 5, 5) = 3;
        // pwilcox(2, 5, 5) = 0.01587302
        assert_eq!(ExactU::new(10, 12).quantile(0.025), 30);
        assert_eq!(ExactU::new(5, 5).quantile(0.025), 3);
        assert!((ExactU::new(5, 5).cdf(2) - 0.015_873_02).abs() < 1e-8);
    }

    #[test]
    fn variance_without_ties() {
        assert_eq!(u_variance(3, 4, 0.0), 3.0 * 4.0 * 8.0 / 12.0);
        // All tied: no variance left.
        assert_eq!(u_variance(3, 4, 7.0 * 7.0 * 7.0 - 7.0), 0.0);
    }
}
