//! What the dashboard takes (`Input`) and gives (`Site`), apart from the pages' logic, so that
//! model and pages depend on it and not on the room's facade.

use crate::chart::ChartError;
use crate::config::Threshold;
use crate::record::StoredRun;

/// What the site is built from, besides the runs.
pub struct Input<'a> {
    /// All loaded runs of the branch, oldest first. The newest `shown` are drawn; the older ones
    /// only serve as baselines for the first runs drawn.
    pub runs: &'a [StoredRun],
    pub shown: usize,
    pub branch: &'a str,
    /// SLO thresholds of an endpoint (empty without a suite).
    pub thresholds: &'a dyn Fn(&str) -> Vec<Threshold>,
    /// Tolerance (fraction) of an endpoint's comparison.
    pub tolerance: &'a dyn Fn(&str) -> f64,
}

/// The generated files: (path relative to the site root, bytes).
pub struct Site {
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("a dashboard chart could not be drawn: {0}")]
    Chart(#[from] ChartError),
}
