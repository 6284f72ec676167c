//! Run-to-run noise of a metric across the baseline's history.

use serde::{Deserialize, Serialize};

/// Consistency constant of the MAD: `1 / Phi^-1(3/4)`, so that `MAD_SCALE * MAD` estimates the
/// standard deviation of normally distributed values.
const MAD_SCALE: f64 = 1.482_602_218_505_602;

/// How many robust standard deviations the band spans on each side of the median.
const BAND_WIDTH: f64 = 3.0;

/// How much a metric moves between runs of unchanged code, relative to its median.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseBand {
    /// Number of runs the band was estimated from (finite, non-negative values only).
    pub runs: usize,
    /// Median of the runs' values, in milliseconds.
    pub median_ms: f64,
    /// Robust relative standard deviation between runs: `1.4826 * MAD / median`.
    pub spread: f64,
    /// Half-width of the band, relative to the median: `3 * spread` (0.08 = +-8%). A change
    /// smaller than this is within what rerunning the baseline produces.
    pub relative: f64,
}

/// Run-to-run noise of a metric (for example each baseline run's p95, in ms).
///
/// The within-run tests ([`mann_whitney`](super::mann_whitney),
/// [`quantile_change`](super::quantile_change)) treat each request as an independent draw, so they
/// cannot see variation *between* runs: a warmer cache, a noisier neighbour on the CI machine. A
/// change smaller than that variation would be a false alarm however small its p-value. This band
/// is the floor the verdict puts under "practically significant".
///
/// **Estimator.** `relative = 3 * 1.4826 * MAD / median`, MAD being the median absolute
/// deviation from the median: three robust standard deviations. Why these choices:
/// - *Median and MAD, not mean and standard deviation or the range:* one bad baseline run (a
///   noisy neighbour doubling its p95) must not widen the band until the gate can no longer see a
///   2x regression. Median and MAD ignore up to half the runs being outliers (50% breakdown
///   point; Hampel 1974, Rousseeuw & Croux 1993); the standard deviation, the range and the
///   "largest deviation from the median" are ruined by a single one.
/// - *Three, not two:* with few runs the MAD is itself uncertain and, on average, low
///   (E[1.4826 MAD] is about 0.82 sigma for 5 normal values). Simulating normal run-to-run noise,
///   the chance that a rerun of unchanged code lands above `median * (1 + relative)` is 7.7% for
///   5 runs (gate's default history), 2.6% for 10 and 1.1% for 20; with a band of 2 it would be
///   13%, 7% and 5%. The verdict's other conditions (Holm-corrected significance, the interval
///   rather than the point estimate beyond the floor, the tolerance) cut the false-alarm rate
///   further.
///
/// **Few runs.**
/// - 0 runs (or no finite, non-negative value): `None`, there is nothing to say.
/// - 1 run: `spread` and `relative` are 0: one run has no spread to measure. The band is
///   unknown, not zero; callers should rely on their tolerance and report the noise as unknown
///   (`runs < 2`).
/// - 2 runs: the MAD is half their difference, so `relative = 2.22 * |a - b| / mean`. Usable, but a
///   very rough estimate; it gets trustworthy around 5 runs.
///
/// `None` also when the median is 0: a spread relative to zero is undefined. Non-finite and
/// negative values are left out (a latency cannot be either).
pub fn noise_band(values_ms: &[f64]) -> Option<NoiseBand> {
    let mut values: Vec<f64> = values_ms
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .collect();
    let median_ms = median(&mut values)?;
    if median_ms <= 0.0 {
        return None;
    }
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median_ms).abs()).collect();
    let mad = median(&mut deviations).unwrap_or(0.0);
    let spread = MAD_SCALE * mad / median_ms;
    Some(NoiseBand {
        runs: values.len(),
        median_ms,
        spread,
        relative: BAND_WIDTH * spread,
    })
}

/// The median (mean of the middle two for an even count); sorts `values` in place.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        // Halve first: the sum of two huge values would overflow to infinity.
        _ => Some(values[n / 2 - 1] / 2.0 + values[n / 2] / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(values: &[f64]) -> NoiseBand {
        noise_band(values).expect("defined")
    }

    #[test]
    fn zero_and_one_run() {
        assert_eq!(noise_band(&[]), None);
        assert_eq!(noise_band(&[f64::NAN, -1.0, f64::INFINITY]), None);
        let b = band(&[120.0]);
        assert_eq!(
            (b.runs, b.median_ms, b.spread, b.relative),
            (1, 120.0, 0.0, 0.0)
        );
    }

    #[test]
    fn two_runs() {
        let b = band(&[100.0, 110.0]);
        assert_eq!((b.runs, b.median_ms), (2, 105.0));
        assert!((b.spread - MAD_SCALE * 5.0 / 105.0).abs() < 1e-15);
        assert!((b.relative - 3.0 * MAD_SCALE * 5.0 / 105.0).abs() < 1e-15);
    }

    #[test]
    fn by_hand_and_robust_to_one_outlier() {
        // Median 100; deviations 0, 2, 2, 4, 100 -> MAD 2.
        let b = band(&[100.0, 98.0, 102.0, 104.0, 200.0]);
        assert_eq!((b.runs, b.median_ms), (5, 102.0));
        // Deviations from 102: 2, 4, 0, 2, 98 -> MAD 2.
        assert!((b.relative - 3.0 * MAD_SCALE * 2.0 / 102.0).abs() < 1e-15);
        assert!(
            b.relative < 0.1,
            "one slow run must not blow the band up: {b:?}"
        );
    }

    #[test]
    fn identical_runs_have_no_noise() {
        let b = band(&[50.0; 5]);
        assert_eq!((b.spread, b.relative), (0.0, 0.0));
    }

    #[test]
    fn zero_median_is_undefined() {
        assert_eq!(noise_band(&[0.0, 0.0, 1.0]), None);
    }

    #[test]
    fn bad_values_are_ignored() {
        assert_eq!(band(&[100.0, f64::NAN, 110.0, -5.0]), band(&[100.0, 110.0]));
    }
}
