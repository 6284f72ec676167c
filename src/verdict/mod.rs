//! Turns measurements and SLO thresholds into a verdict and its exit outcome. Knows nothing of
//! how the verdict is shown.

pub mod slo;

pub use slo::{Check, EndpointSlo, SloReport, evaluate_slo};
