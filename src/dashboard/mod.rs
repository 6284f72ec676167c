//! The trend dashboard: a static site (HTML, inline SVG charts, one stylesheet with the embedded
//! font) built from history rows. No server and no script: it works from `file://` and from
//! GitHub Pages alike, every link is relative, and nothing is fetched from the network.
//!
//! This room takes runs and returns files as bytes (`Site`); where they are written is the
//! caller's business. Everything that comes from the target or the suite (endpoint names,
//! labels, URLs, models) is HTML-escaped here, and file names are sanitised slugs.

mod html;
mod model;
mod pages;

use crate::chart::ChartError;
use crate::config::Threshold;
use crate::store::StoredRun;

pub use model::{RunCall, RunView};

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

/// Build every page of the site.
pub fn build(input: &Input<'_>) -> Result<Site, DashboardError> {
    let model = model::Model::new(input);
    pages::render(&model)
}
