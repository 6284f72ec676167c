//! Turns measurements and SLO thresholds into a verdict and its exit outcome. Knows nothing of
//! how the verdict is shown.

pub mod compare;
pub mod paired;
pub mod ramp;
pub mod slo;

pub use slo::{Check, EndpointSlo, SloReport, evaluate_slo};

use serde::{Deserialize, Serialize};

use crate::exit::Outcome;
pub use compare::{Call, CompareSettings, EndpointComparison};

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
    /// Set in paired mode (`--base-target`): how base and head were measured side by side,
    /// e.g. "5 rounds of 2 s blocks, ABBA". The headline says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<String>,
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
    fn endpoints_with(&self, call: Call) -> usize {
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

    /// "❌ 1 of 4 endpoints regressed" / "✅ no regression across 4 endpoints", plus the rest.
    pub fn headline(&self) -> String {
        let mut all: Vec<&str> = self.endpoints.iter().map(|e| e.name.as_str()).collect();
        all.sort_unstable();
        all.dedup();
        let n = all.len();
        let regressed = self.endpoints_with(Call::Regression);
        let mut parts = vec![if regressed > 0 {
            format!(
                "❌ {regressed} of {n} endpoint{} regressed",
                if n == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "✅ no regression across {n} endpoint{}",
                if n == 1 { "" } else { "s" }
            )
        }];
        let improved = self.endpoints_with(Call::Improvement);
        if improved > 0 {
            parts.push(format!("🚀 {improved} improved"));
        }
        let inconclusive = self.endpoints_with(Call::Inconclusive);
        if inconclusive > 0 {
            parts.push(format!(
                "❔ {inconclusive} inconclusive{}",
                if self.strict {
                    " (fails: --strict)"
                } else {
                    ""
                }
            ));
        }
        let slo = self.slo_failures();
        if slo > 0 {
            parts.push(format!("❌ {slo} broke an SLO threshold"));
        }
        if let Some(how) = &self.paired {
            parts.push(format!("⇄ paired: base and head side by side, {how}"));
        }
        parts.join(" · ")
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
