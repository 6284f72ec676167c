//! Output formats. Each format is one file; each takes the report data and returns bytes, and
//! callers decide where the bytes go (stdout, a file, a PR comment).

pub mod cells;
pub mod history;
pub mod json;
pub mod junit;
pub mod llm;
pub mod markdown;
pub mod terminal;

use crate::record::RunRecord;
use crate::verdict::SloReport;

/// What `gate run` reports: the measurements and their SLO verdict.
pub struct RunReport<'a> {
    pub run: &'a RunRecord,
    pub slo: &'a SloReport,
}

pub trait Format {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8>;
    fn render_verdict(&self, verdict: &crate::verdict::Verdict) -> Vec<u8>;
}
