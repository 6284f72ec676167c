//! A noisy neighbour for calibration and tests: threads that burn CPU on and off at random, like
//! the other jobs of a shared CI runner.
//!
//! Each of `threads` workers alternates busy periods (a spin loop) and idle ones (a sleep), each
//! drawn uniformly from `period` (default 100 ms to 2 s), independently of the other workers, so
//! the machine's spare CPU changes at random moments by random amounts with a duty of about 50%.
//! The neighbour stops by itself when dropped (or on [`Neighbour::stop`]), at most one short
//! slice later: a busy period checks the stop flag every millisecond, an idle one sleeps in
//! slices of at most 50 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How a [`Neighbour`] behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseShape {
    /// Busy threads at most (each switches on and off by itself).
    pub threads: usize,
    /// Shortest and longest on or off period.
    pub period: (Duration, Duration),
}

impl Default for NoiseShape {
    /// Two threads, periods of 100 ms to 2 s: on a 2-core runner, from nothing to everything.
    fn default() -> Self {
        NoiseShape {
            threads: 2,
            period: (Duration::from_millis(100), Duration::from_secs(2)),
        }
    }
}

/// Running CPU hogs; they stop when this value is dropped.
pub struct Neighbour {
    stop: Arc<AtomicBool>,
    busy_ms: Arc<AtomicU64>,
    started: Instant,
    shape: NoiseShape,
    workers: Vec<JoinHandle<()>>,
}

impl Neighbour {
    /// Start `shape.threads` workers; `seed` makes the on/off schedule reproducible.
    pub fn start(shape: NoiseShape, seed: u64) -> Neighbour {
        let stop = Arc::new(AtomicBool::new(false));
        let busy_ms = Arc::new(AtomicU64::new(0));
        let (lo, hi) = (
            shape.period.0.min(shape.period.1),
            shape.period.0.max(shape.period.1),
        );
        let workers = (0..shape.threads)
            .filter_map(|i| {
                let stop = Arc::clone(&stop);
                let busy_ms = Arc::clone(&busy_ms);
                let mut rng = SmallRng::seed_from_u64(seed.wrapping_add(i as u64 * 0x9e37_79b9));
                std::thread::Builder::new()
                    .name(format!("gate-noise-{i}"))
                    .spawn(move || {
                        // Start in a random phase, so the workers are not in step.
                        let mut on = rng.random::<bool>();
                        while !stop.load(Ordering::Relaxed) {
                            let span = if hi > lo {
                                rng.random_range(lo..=hi)
                            } else {
                                lo
                            };
                            if on {
                                spin(span, &stop);
                                busy_ms.fetch_add(span.as_millis() as u64, Ordering::Relaxed);
                            } else {
                                idle(span, &stop);
                            }
                            on = !on;
                        }
                    })
                    .ok()
            })
            .collect();
        Neighbour {
            stop,
            busy_ms,
            started: Instant::now(),
            shape,
            workers,
        }
    }

    /// The fraction of the workers' time spent busy so far (about 0.5).
    pub fn duty(&self) -> f64 {
        let total = self.started.elapsed().as_secs_f64() * 1000.0 * self.workers.len() as f64;
        if total > 0.0 {
            (self.busy_ms.load(Ordering::Relaxed) as f64 / total).min(1.0)
        } else {
            0.0
        }
    }

    /// "2 threads, on/off 100ms-2000ms": for a report.
    pub fn describe(&self) -> String {
        format!(
            "{} CPU-burning thread(s) switched on and off at random every {}-{} ms",
            self.workers.len(),
            self.shape.period.0.as_millis(),
            self.shape.period.1.as_millis()
        )
    }

    /// Stop the workers and wait for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Burn CPU for `span`, checking `stop` every millisecond or so.
fn spin(span: Duration, stop: &AtomicBool) {
    let end = Instant::now() + span;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        for _ in 0..20_000 {
            // xorshift: work the optimiser cannot remove.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
}

/// Sleep for `span` in slices, so a stop is noticed quickly.
fn idle(span: Duration, stop: &AtomicBool) {
    let end = Instant::now() + span;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_neighbour_stops_when_dropped_and_reports_its_shape() {
        let n = Neighbour::start(
            NoiseShape {
                threads: 1,
                period: (Duration::from_millis(5), Duration::from_millis(20)),
            },
            7,
        );
        assert!(n.describe().starts_with("1 CPU-burning thread"));
        std::thread::sleep(Duration::from_millis(100));
        let duty = n.duty();
        assert!((0.0..=1.0).contains(&duty), "{duty}");
        // Joins every worker: returning at all is the test.
        n.stop();
    }

    #[test]
    fn no_threads_is_no_noise() {
        let n = Neighbour::start(
            NoiseShape {
                threads: 0,
                ..NoiseShape::default()
            },
            1,
        );
        assert_eq!(n.duty(), 0.0);
    }
}
