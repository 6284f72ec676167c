//! Confidence interval of a proportion (false-alarm and detection rates of the calibration).

/// Wilson score interval (Wilson 1927) for `k` successes in `n` trials at normal quantile `z`
/// (1.96 for 95%). Unlike the normal approximation it stays inside [0, 1] and is honest at
/// k = 0, which is exactly the case a false-alarm rate should be in.
pub fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || k > n {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // 0 of 200: the upper bound is about 1.9% (z²/(n+z²)).
        let (lo, hi) = wilson(0, 200, 1.96).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.018_849).abs() < 1e-5, "{hi}");
        // 95 of 100 (textbook: 0.8883 .. 0.9785).
        let (lo, hi) = wilson(95, 100, 1.96).unwrap();
        assert!(
            (lo - 0.8883).abs() < 1e-3 && (hi - 0.9785).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(1, 0, 1.96), None);
        assert_eq!(wilson(3, 2, 1.96), None);
    }
}
