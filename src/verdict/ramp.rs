//! Ramp tests (`users: [1, 5, 10, 25]`): each step's figures, and the knee.

use serde::Serialize;

use crate::record::RunRecord;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RampRow {
    pub users: u32,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub throughput_rps: f64,
    pub error_rate: f64,
    /// LLM ramps: output tokens per second of the step (aggregate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RampSummary {
    pub group: String,
    pub rows: Vec<RampRow>,
    /// Concurrency of the knee, if the ramp reached one.
    pub knee: Option<u32>,
}

/// Throughput that grows by less than this between steps has stopped rising.
const FLAT_THROUGHPUT: f64 = 0.10;
/// p95 that grows by more than this between steps is climbing.
const CLIMBING_P95: f64 = 0.20;
/// An error rate up by more than this (absolute) between steps is climbing.
const CLIMBING_ERRORS: f64 = 0.01;

/// The knee: the first step where throughput stops rising while p95 or the error rate climbs,
/// i.e. where more concurrency only buys queueing.
pub fn knee(rows: &[RampRow]) -> Option<u32> {
    rows.windows(2).find_map(|w| {
        let (prev, this) = (&w[0], &w[1]);
        let flat = prev.throughput_rps > 0.0
            && this.throughput_rps < prev.throughput_rps * (1.0 + FLAT_THROUGHPUT);
        let climbing = this.p95_ms > prev.p95_ms * (1.0 + CLIMBING_P95)
            || this.error_rate > prev.error_rate + CLIMBING_ERRORS;
        (flat && climbing).then_some(this.users)
    })
}

/// Every ramp of a run, steps in rising concurrency.
pub fn ramps(run: &RunRecord) -> Vec<RampSummary> {
    let mut out: Vec<RampSummary> = Vec::new();
    for e in &run.endpoints {
        let Some(r) = &e.ramp else { continue };
        let row = RampRow {
            users: r.users,
            p50_ms: e.latency.p50_ms,
            p95_ms: e.latency.p95_ms,
            throughput_rps: e.throughput_rps,
            error_rate: e.error_rate,
            tokens_per_s: e.llm.as_ref().map(|l| l.output_tps_aggregate),
        };
        match out.iter_mut().find(|s| s.group == r.group) {
            Some(s) => s.rows.push(row),
            None => out.push(RampSummary {
                group: r.group.clone(),
                rows: vec![row],
                knee: None,
            }),
        }
    }
    for s in &mut out {
        s.rows.sort_by_key(|r| r.users);
        s.knee = knee(&s.rows);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(users: u32, rps: f64, p95: f64, err: f64) -> RampRow {
        RampRow {
            users,
            p50_ms: p95 / 2.0,
            p95_ms: p95,
            throughput_rps: rps,
            error_rate: err,
            tokens_per_s: None,
        }
    }

    #[test]
    fn the_knee_is_where_throughput_flattens_and_latency_climbs() {
        let rows = [
            row(1, 100.0, 10.0, 0.0),
            row(5, 480.0, 11.0, 0.0),
            row(10, 900.0, 12.0, 0.0),
            row(25, 950.0, 30.0, 0.0),
            row(50, 960.0, 60.0, 0.0),
        ];
        assert_eq!(knee(&rows), Some(25));
        // Errors climbing count too.
        let rows = [row(1, 100.0, 10.0, 0.0), row(5, 105.0, 10.5, 0.05)];
        assert_eq!(knee(&rows), Some(5));
        // Still scaling: no knee.
        let rows = [
            row(1, 100.0, 10.0, 0.0),
            row(5, 500.0, 10.0, 0.0),
            row(10, 990.0, 11.0, 0.0),
        ];
        assert_eq!(knee(&rows), None);
        // Flat but not climbing (a client-side limit, say): not a knee.
        let rows = [row(1, 100.0, 10.0, 0.0), row(5, 102.0, 10.0, 0.0)];
        assert_eq!(knee(&rows), None);
        assert_eq!(knee(&[]), None);
    }
}
