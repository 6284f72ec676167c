//! Turns measurements and SLO thresholds into a verdict and its exit outcome. Knows nothing of
//! how the verdict is shown.

pub mod compare;
pub mod paired;
pub mod ramp;
pub mod slo;

pub use slo::{Check, EndpointSlo, SloReport, evaluate_slo};

use serde::{Deserialize, Serialize};

use crate::exit::Outcome;
pub use compare::{
    Call, CompareSettings, EndpointComparison, Finding, Limit, PairedFinding, Reason,
};

/// How paired mode measured: per scenario, `2 × rounds` time blocks of both sides at once.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedShape {
    pub rounds: u32,
    /// Measured time of one block, in seconds.
    pub block_s: f64,
}

/// Everything one comparison concluded: per-endpoint calls, the SLO checks of HEAD, and which
/// runs were compared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// Which baseline runs were used, in words.
    pub base: String,
    /// Which HEAD runs were used, in words.
    pub head: String,
    pub endpoints: Vec<EndpointComparison>,
    pub slo: Option<SloReport>,
    /// Inconclusive endpoints fail the gate (`--strict`).
    pub strict: bool,
    /// Notes worth a reader's attention (different environments, dirty trees, partial runs).
    pub notes: Vec<String>,
    /// Set in paired mode (`--base-target`): how base and head were measured side by side.
    /// The headline says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<PairedShape>,
}

impl Verdict {
    pub fn count(&self, call: Call) -> usize {
        self.endpoints.iter().filter(|e| e.call == call).count()
    }

    pub fn slo_failures(&self) -> usize {
        self.slo.as_ref().map_or(0, |s| s.failed_count())
    }

    /// Endpoints (not rows: an LLM endpoint has rows for latency, TTFT and tok/s) with a row
    /// of this call.
    pub fn endpoints_with(&self, call: Call) -> usize {
        let mut names: Vec<&str> = self
            .endpoints
            .iter()
            .filter(|e| e.call == call)
            .map(|e| e.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    pub fn outcome(&self) -> Outcome {
        let failed = self.count(Call::Regression) > 0
            || self.slo.as_ref().is_some_and(|s| !s.pass)
            || (self.strict && self.count(Call::Inconclusive) > 0);
        if failed {
            Outcome::GateFailed
        } else {
            Outcome::Pass
        }
    }
}
