//! `gate history export` / `import`: a versioned JSON file of whole runs (histograms included),
//! for teams whose CI cannot keep the database between jobs (`baselines/example-main.json`).

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::record::RunRecord;

pub const EXPORT_FORMAT: &str = "gate-history";
pub const EXPORT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub format: String,
    pub version: u32,
    pub exported_at: String,
    /// The branch that was exported; None for all branches.
    pub branch: Option<String>,
    pub runs: Vec<RunRecord>,
}

impl Export {
    pub fn new(branch: Option<String>, runs: Vec<RunRecord>) -> Export {
        Export {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: crate::record::now_rfc3339(),
            branch,
            runs,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("plain data serialises");
        v.push(b'\n');
        v
    }

    /// Parse an export file, checking its format and version; `path` is only for messages.
    pub fn parse(path: &str, text: &str) -> Result<Export, StoreError> {
        let bad = |message: String| StoreError::BadImport {
            path: path.to_string(),
            message,
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "not JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(EXPORT_FORMAT) {
            return Err(bad(format!(
                "not a gate history export (expected \"format\": \"{EXPORT_FORMAT}\")"
            )));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(EXPORT_VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "export version {v} is not supported (this gate reads version {EXPORT_VERSION})"
                )));
            }
            None => return Err(bad("missing \"version\"".into())),
        }
        let export: Export =
            serde_json::from_value(value).map_err(|e| bad(format!("malformed export: {e}")))?;
        for (i, run) in export.runs.iter().enumerate() {
            for e in &run.endpoints {
                crate::record::decode_histogram(&e.latency.histogram)
                    .map_err(|m| bad(format!("runs[{i}] endpoint `{}`: latency {m}", e.name)))?;
            }
        }
        Ok(export)
    }
}
