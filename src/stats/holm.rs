//! Holm's correction for testing many endpoints at once.

/// Holm-Bonferroni step-down adjusted p-values (Holm 1979), in the input order.
///
/// A verdict runs one test per endpoint and metric; with 20 tests at level 0.05, one false alarm
/// per run is expected from chance alone. Holm's procedure controls the family-wise error rate
/// (the probability of *any* false alarm) at the chosen level under any dependence between the
/// tests, and is uniformly more powerful than plain Bonferroni. With the m p-values sorted,
/// `p(1) <= ... <= p(m)`, the adjusted values are
/// `p~(i) = max over j <= i of min(1, (m - j + 1) p(j))`:
/// monotone in the raw p-values, never below them, capped at 1. Rejecting every test whose
/// adjusted p-value is at most alpha is exactly Holm's step-down rule at level alpha.
///
/// Ties keep their input order (the result does not depend on it). A NaN p-value counts as 1
/// (no evidence) and values outside `[0, 1]` are clamped, so one bad input cannot hide or fake a
/// regression elsewhere.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));

    let mut adjusted = vec![1.0; m];
    let mut running_max: f64 = 0.0;
    for (position, &index) in order.iter().enumerate() {
        let multiplier = (m - position) as f64;
        running_max = running_max.max((multiplier * clean[index]).min(1.0));
        adjusted[index] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_all_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} != {expected:?}");
        }
    }

    #[test]
    fn empty_and_single() {
        assert!(holm(&[]).is_empty());
        assert_eq!(holm(&[0.03]), vec![0.03]);
    }

    #[test]
    fn by_hand() {
        // Sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06
        // by monotonicity). Back in input order.
        assert_all_close(&holm(&[0.03, 0.01, 0.04, 0.02]), &[0.06, 0.04, 0.06, 0.06]);
        // Capped at 1, and the cap carries through monotonicity.
        assert_all_close(&holm(&[0.5, 0.001, 0.3]), &[0.6, 0.003, 0.6]);
        assert_all_close(&holm(&[0.9, 0.8]), &[1.0, 1.0]);
        // Ties get the same adjusted value.
        assert_all_close(&holm(&[0.01, 0.01, 0.2]), &[0.03, 0.03, 0.2]);
    }

    #[test]
    fn matches_r_p_adjust() {
        // R 4.2.2: p.adjust(c(0.0005, 0.2, 0.011, 0.049, 0.0125, 0.7), method = "holm")
        let p = [0.0005, 0.2, 0.011, 0.049, 0.0125, 0.7];
        assert_all_close(&holm(&p), &[0.003, 0.4, 0.055, 0.147, 0.055, 0.7]);
    }

    #[test]
    fn bad_inputs_do_not_propagate() {
        assert_all_close(&holm(&[f64::NAN, 0.01, -0.2, 3.0]), &[1.0, 0.03, 0.0, 1.0]);
    }
}
