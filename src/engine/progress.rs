//! Progress while a run is under way, on stderr: a bar on a terminal, plain lines elsewhere
//! (CI logs, pipes), nothing when quiet. Reads the workers' relaxed counters; never slows them.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::worker::Progress;
use crate::config::ScenarioPlan;
use crate::record::EndpointRecord;
use crate::units::format_ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Lines,
    Quiet,
}

impl ProgressMode {
    /// A bar only for a person at a terminal: not in CI, not when stderr is redirected.
    pub fn detect(no_bar: bool) -> ProgressMode {
        use std::io::IsTerminal;
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
        if no_bar || ci || !std::io::stderr().is_terminal() {
            ProgressMode::Lines
        } else {
            ProgressMode::Bar
        }
    }
}

pub struct Display {
    mode: ProgressMode,
    total: usize,
    bar: Option<ProgressBar>,
    start: Instant,
    measure_start: Instant,
    end: Instant,
    last_line: Instant,
}

/// Plain-mode heartbeat for long scenarios, so a CI log shows the run is alive.
const LINE_EVERY: Duration = Duration::from_secs(10);

impl Display {
    pub fn new(mode: ProgressMode, total: usize) -> Display {
        let now = Instant::now();
        Display {
            mode,
            total,
            bar: None,
            start: now,
            measure_start: now,
            end: now,
            last_line: now,
        }
    }

    pub fn scenario_started(
        &mut self,
        index: usize,
        s: &ScenarioPlan,
        start: Instant,
        measure_start: Instant,
        end: Instant,
    ) {
        self.start = start;
        self.measure_start = measure_start;
        self.end = end;
        self.last_line = Instant::now();
        let label = format!("[{}/{}] {}", index + 1, self.total, s.name);
        match self.mode {
            ProgressMode::Bar => {
                let bar = ProgressBar::new(end.duration_since(start).as_millis() as u64);
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold} {bar:30.cyan/blue} {msg}")
                        .expect("constant template")
                        .progress_chars("█▉▊▋▌▍▎▏ "),
                );
                bar.set_prefix(label);
                self.bar = Some(bar);
            }
            ProgressMode::Lines => {
                // A request budget usually ends the scenario long before its duration does.
                let budget = match s.load.max_requests {
                    Some(n) => format!("{n} requests, at most "),
                    None => String::new(),
                };
                eprintln!(
                    "{label}: {} {} for {budget}{:.1}s (+{:.1}s warmup)",
                    s.request.method,
                    s.request.url_text,
                    s.load.duration.as_secs_f64(),
                    s.load.warmup.as_secs_f64()
                );
            }
            ProgressMode::Quiet => {}
        }
    }

    pub fn tick(&mut self, progress: &[Arc<Progress>], now: Instant) {
        let done: u64 = progress
            .iter()
            .map(|p| p.done.load(Ordering::Relaxed))
            .sum();
        let failed: u64 = progress
            .iter()
            .map(|p| p.failed.load(Ordering::Relaxed))
            .sum();
        let measuring = now
            .saturating_duration_since(self.measure_start)
            .as_secs_f64();
        let rps = if measuring > 0.0 {
            done as f64 / measuring
        } else {
            0.0
        };
        let phase = if now < self.measure_start {
            "warmup"
        } else {
            "measuring"
        };
        match (&self.bar, self.mode) {
            (Some(bar), ProgressMode::Bar) => {
                bar.set_position(now.saturating_duration_since(self.start).as_millis() as u64);
                bar.set_message(format!(
                    "{phase} · {done} requests · {rps:.0}/s · {failed} errors"
                ));
            }
            (_, ProgressMode::Lines) if now.duration_since(self.last_line) >= LINE_EVERY => {
                self.last_line = now;
                eprintln!("  … {phase}: {done} requests, {rps:.0}/s, {failed} errors");
            }
            _ => {}
        }
    }

    pub fn scenario_finished(&mut self, index: usize, r: &EndpointRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode == ProgressMode::Quiet {
            return;
        }
        eprintln!(
            "[{}/{}] {}: {} requests, {:.0}/s, p95 {}, {} errors",
            index + 1,
            self.total,
            r.name,
            r.requests,
            r.throughput_rps,
            format_ms(r.latency.p95_ms),
            r.failures
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
