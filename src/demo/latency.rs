//! Simulated upstream delay, standing in for the calls a real service makes to
//! other services. Real latency is right-skewed, hence the log-normal option.

use std::cell::RefCell;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

// One normal sampler in the crate: the one the bootstrap uses (Marsaglia's polar method).
use crate::stats::standard_normal;

/// Cap on a jittered draw, as a multiple of the median: the log-normal tail is
/// unbounded, and one 100x outlier would make a short demo run meaningless.
const MAX_FACTOR: f64 = 10.0;

#[derive(Clone, Copy, Debug)]
pub(super) struct Upstream {
    median: Duration,
    sigma: Option<f64>,
}

impl Upstream {
    /// `None` when no delay is configured (or it is zero).
    pub fn new(latency: Option<Duration>, jitter: Option<f64>) -> Option<Upstream> {
        let median = latency.filter(|d| !d.is_zero())?;
        // A non-positive or non-finite sigma cannot describe a spread; treat it as fixed.
        let sigma = jitter.filter(|s| s.is_finite() && *s > 0.0);
        Some(Upstream { median, sigma })
    }

    /// The delay for one request.
    pub fn sample(&self) -> Duration {
        let Some(sigma) = self.sigma else {
            return self.median;
        };
        let z = RNG.with(|rng| standard_normal(&mut *rng.borrow_mut()));
        lognormal(self.median, sigma, z)
    }
}

/// exp(ln(median) + sigma * z), i.e. median * exp(sigma * z), clamped to
/// [0, MAX_FACTOR * median].
fn lognormal(median: Duration, sigma: f64, z: f64) -> Duration {
    let factor = (sigma * z).exp().min(MAX_FACTOR);
    median.mul_f64(factor)
}

thread_local! {
    // Per worker thread, so drawing a delay never contends on a lock.
    static RNG: RefCell<SmallRng> = RefCell::new(new_rng());
}

fn new_rng() -> SmallRng {
    SmallRng::try_from_os_rng().unwrap_or_else(|_| {
        // The draws only need to differ between runs, not be unpredictable.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        SmallRng::seed_from_u64(nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_delay_is_exact() {
        let up = Upstream::new(Some(Duration::from_millis(20)), None).expect("delay set");
        assert_eq!(up.sample(), Duration::from_millis(20));
        assert!(Upstream::new(Some(Duration::ZERO), Some(0.5)).is_none());
        assert!(Upstream::new(None, Some(0.5)).is_none());
    }

    #[test]
    fn lognormal_has_the_configured_median_and_cap() {
        let median = Duration::from_millis(10);
        assert_eq!(lognormal(median, 0.5, 0.0), median);
        assert_eq!(lognormal(median, 0.5, 100.0), median * 10);
        assert!(lognormal(median, 0.5, -100.0) < Duration::from_micros(1));

        let up = Upstream::new(Some(median), Some(0.5)).expect("delay set");
        let mut draws: Vec<Duration> = (0..2001).map(|_| up.sample()).collect();
        draws.sort();
        // Loose bounds: the sample median of 2001 draws is within a few percent.
        let med = draws[1000];
        assert!(med > Duration::from_millis(8) && med < Duration::from_millis(12));
        assert!(draws.iter().all(|d| *d <= median * 10));
    }
}
