//! A histogram seen as a weighted sample: the distinct values it can tell apart, with counts.

use hdrhistogram::Histogram;

/// Which value stands for all the samples of one HDR bucket.
///
/// Both histograms of a comparison must use the same choice so that equal buckets tie. Ranks do
/// not depend on the choice at all; differences and quantiles do, by at most half (`Median`) or one
/// (`Highest`) bucket width, i.e. 0.05% / 0.1% at 3 significant digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Representative {
    /// The bucket's highest equivalent value: what `Histogram::value_at_quantile` reports, so
    /// quantiles here match the percentiles gate prints elsewhere.
    Highest,
    /// The bucket's midpoint: unbiased for location differences between histograms.
    Median,
}

/// Recorded buckets in ascending value order. Never empty (construction returns `None` instead).
#[derive(Debug, Clone)]
pub(super) struct Buckets {
    pub values: Vec<u64>,
    pub counts: Vec<u64>,
    /// `cumulative[i]` = number of samples with value <= `values[i]`.
    pub cumulative: Vec<u64>,
}

impl Buckets {
    pub fn from_histogram(
        histogram: &Histogram<u64>,
        representative: Representative,
    ) -> Option<Self> {
        let mut values: Vec<u64> = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        for bucket in histogram.iter_recorded() {
            let count = bucket.count_at_value();
            if count == 0 {
                continue;
            }
            let highest = bucket.value_iterated_to();
            let value = match representative {
                Representative::Highest => highest,
                Representative::Median => histogram.median_equivalent(highest),
            };
            match (values.last(), counts.last_mut()) {
                (Some(&last), Some(last_count)) if last == value => {
                    *last_count = last_count.saturating_add(count);
                }
                _ => {
                    values.push(value);
                    counts.push(count);
                }
            }
        }
        let cumulative: Vec<u64> = counts
            .iter()
            .scan(0u64, |running, &c| {
                *running = running.saturating_add(c);
                Some(*running)
            })
            .collect();
        if cumulative.last().copied().unwrap_or(0) == 0 {
            return None;
        }
        Some(Self {
            values,
            counts,
            cumulative,
        })
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// Whether two samples share a value.
    pub fn has_ties(&self) -> bool {
        self.counts.iter().any(|&c| c > 1)
    }

    /// `sum(t^3 - t)` over groups of equal values: the tie term of the rank-sum variance.
    pub fn tie_term(&self) -> f64 {
        self.counts.iter().map(|&c| tie_term(c)).sum()
    }

    /// The `rank`-th smallest sample (1-based, clamped to `1..=total`).
    pub fn order_statistic(&self, rank: u64) -> u64 {
        let rank = rank.clamp(1, self.total());
        let index = self.cumulative.partition_point(|&c| c < rank);
        self.values
            .get(index)
            .or(self.values.last())
            .copied()
            .unwrap_or(0)
    }
}

/// `t^3 - t` for a group of `t` tied values, in floating point (t^3 overflows u64 past ~2.6e6).
pub(super) fn tie_term(t: u64) -> f64 {
    let t = t as f64;
    (t * t - 1.0) * t
}

#[cfg(test)]
mod tests {
    use super::super::test_support::histogram;
    use super::*;

    #[test]
    fn small_values_are_exact_and_ordered() {
        let h = histogram(&[5, 3, 3, 2047, 1000, 3]);
        for rep in [Representative::Highest, Representative::Median] {
            let b = Buckets::from_histogram(&h, rep).expect("non-empty");
            assert_eq!(b.values, vec![3, 5, 1000, 2047]);
            assert_eq!(b.counts, vec![3, 1, 1, 1]);
            assert_eq!(b.total(), 6);
            assert!(b.has_ties());
            assert_eq!(b.tie_term(), 24.0);
            let ordered: Vec<u64> = (0..=7).map(|r| b.order_statistic(r)).collect();
            assert_eq!(ordered, vec![3, 3, 3, 3, 5, 1000, 2047, 2047]);
        }
    }

    #[test]
    fn representative_matches_value_at_quantile() {
        let h = histogram(&[123_456, 98_765_432, 7]);
        let b = Buckets::from_histogram(&h, Representative::Highest).expect("non-empty");
        for (rank, q) in [(1, 0.2), (2, 0.5), (3, 1.0)] {
            assert_eq!(b.order_statistic(rank), h.value_at_quantile(q));
        }
        let m = Buckets::from_histogram(&h, Representative::Median).expect("non-empty");
        assert_eq!(m.values[1], h.median_equivalent(123_456));
    }

    #[test]
    fn empty_histogram_is_none() {
        assert!(Buckets::from_histogram(&histogram(&[]), Representative::Median).is_none());
    }
}
