//! The few continuous distributions the bootstrap draws from. `rand` 0.9 without `rand_distr`
//! only gives uniforms, so the standard exact methods are written out here.

use rand::Rng;

/// A uniform draw in (0, 1]: safe to take the logarithm of.
fn open_unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    1.0 - rng.random::<f64>()
}

/// A standard normal draw by Marsaglia's polar method (Marsaglia & Bray 1964).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let v = 2.0 * rng.random::<f64>() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// A Gamma(shape, 1) draw by Marsaglia & Tsang (2000), "A simple method for generating gamma
/// variables", ACM TOMS 26(3): exact, with acceptance above 95% for every shape >= 1. Shapes
/// below 1 use the boost `Gamma(a) = Gamma(a + 1) * U^(1/a)` from the same paper.
pub(super) fn gamma<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        return gamma(rng, shape + 1.0) * open_unit(rng).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = open_unit(rng);
        let x2 = x * x;
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A Beta(a, b) draw as `X / (X + Y)` with independent `X ~ Gamma(a)`, `Y ~ Gamma(b)`.
pub(super) fn beta<R: Rng + ?Sized>(rng: &mut R, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    let sum = x + y;
    if sum > 0.0 { x / sum } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn mean_and_variance(draws: &[f64]) -> (f64, f64) {
        let n = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let variance = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, variance)
    }

    #[test]
    fn moments_match() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 20_000;

        let normal: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let (m, v) = mean_and_variance(&normal);
        assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.04, "normal {m} {v}");

        for shape in [0.5, 1.0, 3.0, 250.0] {
            let draws: Vec<f64> = (0..n).map(|_| gamma(&mut rng, shape)).collect();
            let (m, v) = mean_and_variance(&draws);
            // Gamma(k, 1): mean k, variance k; standard error of the mean sqrt(k / n).
            assert!(
                (m - shape).abs() < 5.0 * (shape / n as f64).sqrt(),
                "gamma {shape}: {m}"
            );
            assert!((v / shape - 1.0).abs() < 0.1, "gamma {shape}: {v}");
        }

        let (a, b) = (95.0, 6.0);
        let draws: Vec<f64> = (0..n).map(|_| beta(&mut rng, a, b)).collect();
        let (m, v) = mean_and_variance(&draws);
        let expected_var = a * b / ((a + b).powi(2) * (a + b + 1.0));
        assert!((m - a / (a + b)).abs() < 5.0 * (expected_var / n as f64).sqrt());
        assert!((v / expected_var - 1.0).abs() < 0.1);
    }
}
