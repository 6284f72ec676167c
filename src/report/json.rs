//! The versioned JSON document of a run (`gate run --json FILE`). Shape documented in the README:
//! `{ "format": "gate-run", "version": N, "run": RunRecord, "slo": SloReport }`.

use serde::Serialize;

use super::{Format, RunReport};
use crate::record::{RECORD_VERSION, RunRecord};
use crate::verdict::SloReport;

pub const FORMAT_NAME: &str = "gate-run";

pub struct Json;

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u32,
    pass: bool,
    run: &'a RunRecord,
    slo: &'a SloReport,
}

impl Format for Json {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8> {
        let doc = Document {
            format: FORMAT_NAME,
            version: RECORD_VERSION,
            pass: report.slo.pass,
            run: report.run,
            slo: report.slo,
        };
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("plain data always serialises");
        bytes.push(b'\n');
        bytes
    }

    fn render_verdict(&self, verdict: &crate::verdict::Verdict) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            format: &'static str,
            version: u32,
            pass: bool,
            headline: String,
            verdict: &'a crate::verdict::Verdict,
        }
        let doc = Doc {
            format: "gate-verdict",
            version: RECORD_VERSION,
            pass: verdict.outcome() == crate::exit::Outcome::Pass,
            headline: super::cells::headline(verdict),
            verdict,
        };
        // Each endpoint's reason as data (`reason`) and in the words the tables use
        // (`reason_text`), so a script need not reword it.
        let mut value = serde_json::to_value(&doc).expect("plain data always serialises");
        if let Some(rows) = value
            .pointer_mut("/verdict/endpoints")
            .and_then(serde_json::Value::as_array_mut)
        {
            for (row, e) in rows.iter_mut().zip(&verdict.endpoints) {
                if let Some(obj) = row.as_object_mut() {
                    obj.insert(
                        "reason_text".into(),
                        serde_json::Value::String(super::cells::reason(e)),
                    );
                }
            }
        }
        let mut bytes = serde_json::to_vec_pretty(&value).expect("plain data always serialises");
        bytes.push(b'\n');
        bytes
    }
}
