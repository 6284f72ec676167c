//! Statistics behind the verdict: is HEAD slower than the baseline, by how much, and can we tell?
//!
//! Everything here is a pure function of latency histograms (HdrHistogram, values in
//! microseconds) or of plain numbers: no I/O, no clock, no global state, and no panics on any
//! input. Functions that cannot say anything meaningful (an empty histogram, a confidence level
//! outside `(0, 1)`) return `None` rather than a made-up number.
//!
//! The pieces, and the question each one answers:
//!
//! - [`mann_whitney`]: is HEAD's latency distribution stochastically greater (slower) than the
//!   baseline's? A rank test (Mann & Whitney 1947), so it assumes nothing about the shape of the
//!   distribution; only that requests are independent draws within each run.
//! - [`hodges_lehmann`]: by how many milliseconds did latency shift? The Hodges-Lehmann estimator
//!   (Hodges & Lehmann 1963) with the distribution-free confidence interval that inverts the
//!   Mann-Whitney test (Moses; Lehmann 1975).
//! - [`quantile_change`]: by what fraction did a tail quantile (p95, p99) change? A percentile
//!   bootstrap (Efron 1979) that draws resampled order statistics exactly instead of resampling.
//! - [`holm`]: which of many tests stay significant when they are looked at together? Holm's
//!   step-down correction of the family-wise error rate (Holm 1979).
//! - [`signed_rank`] and [`hodges_lehmann_paired`]: in paired mode, do the per-pair differences
//!   (base and head blocks measured side by side) lean one way, and by how much? The Wilcoxon
//!   signed-rank test and the one-sample Hodges-Lehmann estimate with its CI.
//! - [`noise_band`]: how much does a metric move between runs of the same code? A robust spread of
//!   the baseline's run history, used as a floor for "practically significant".
//!
//! Histograms are read bucket by bucket, weighting by counts: a run of 10^6 requests costs no more
//! than the number of distinct buckets it fills. All samples in one HDR bucket are treated as equal
//! (they are, to the histogram's precision: 3 significant digits is at most 0.1% apart), so the
//! rank methods see them as ties and correct for that.

mod buckets;
mod harrell_davis;
mod holm;
mod mann_whitney;
mod noise;
mod null;
mod paired;
mod proportion;
mod quantile;
mod random;
mod shift;

pub use harrell_davis::harrell_davis_ln;
pub use holm::holm;
pub use mann_whitney::{Alternative, MannWhitney, mann_whitney};
pub use noise::{NoiseBand, noise_band};
pub use paired::{PairedShift, SignedRank, hodges_lehmann_paired, signed_rank, smallest_p};
pub use proportion::wilson;
pub use quantile::{RelChange, quantile_change};
pub use random::standard_normal;
pub use shift::{Shift, hodges_lehmann};

#[cfg(test)]
pub(crate) mod test_support {
    use hdrhistogram::Histogram;

    /// A histogram configured as gate records latencies: microseconds, 1 µs .. 1 h, 3 digits.
    pub fn histogram(values_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
            .expect("static histogram bounds are valid");
        for &v in values_us {
            h.record(v)
                .expect("test values are within the histogram's bounds");
        }
        h
    }

    pub fn assert_close(actual: f64, expected: f64, rel_tol: f64) {
        let scale = expected.abs().max(f64::MIN_POSITIVE);
        assert!(
            ((actual - expected) / scale).abs() <= rel_tol,
            "actual {actual:e}, expected {expected:e} (relative tolerance {rel_tol:e})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    /// Odd histograms through every function: no panic, no NaN where a number is returned.
    #[test]
    fn extreme_inputs_do_not_panic() {
        let mut wide = Histogram::<u64>::new_with_bounds(1, u64::MAX, 2).expect("valid bounds");
        for v in [0, 1, u64::MAX / 3, u64::MAX - 1] {
            wide.record(v).expect("in range");
        }
        let mut zeros = Histogram::<u64>::new(3).expect("valid");
        zeros.record_n(0, 1000).expect("in range");
        let single = test_support::histogram(&[42]);
        let empty = test_support::histogram(&[]);
        let all = [&wide, &zeros, &single, &empty];
        for base in all {
            for head in all {
                for alternative in [Alternative::Greater, Alternative::Less] {
                    if let Some(r) = mann_whitney(base, head, alternative) {
                        assert!(r.p_value.is_finite() && r.z.is_finite() && r.u.is_finite());
                        assert!((0.0..=1.0).contains(&r.p_value));
                    }
                }
                if let Some(s) = hodges_lehmann(base, head, 0.95) {
                    assert!(s.ci_low_ms <= s.estimate_ms && s.estimate_ms <= s.ci_high_ms);
                }
                if let Some(r) = quantile_change(base, head, 0.99, 50, 0.9, 1) {
                    assert!(!r.point.is_nan() && r.ci_low <= r.ci_high);
                }
            }
        }
        assert_eq!(holm(&[f64::NAN]), vec![1.0]);
        let band = noise_band(&[f64::MAX, f64::MAX]).expect("finite values");
        assert_eq!((band.median_ms, band.relative), (f64::MAX, 0.0));
    }
}
