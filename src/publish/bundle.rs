//! The fork-safe hand-over: a PR from a fork runs `gate ci --bundle DIR` with a read-only
//! token and uploads DIR as an artifact; a trusted `workflow_run` job, which never runs the
//! fork's code, reads it back with `gate publish` and posts it.
//!
//! The bundle was written by code from the fork, so it is read as untrusted input: sizes are
//! bounded, only PNG files with plain names are attached, and every text goes through the
//! markdown escaping when the comment is rendered.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PublishError;
use super::pr::{Publication, file_name};
use crate::record::RunRecord;
use crate::verdict::Verdict;

const BUNDLE_FILE: &str = "bundle.json";
const BUNDLE_FORMAT: &str = "gate-bundle";
const BUNDLE_VERSION: u32 = 1;
const MAX_BUNDLE_BYTES: u64 = 16 << 20;
const MAX_CHART_BYTES: u64 = 4 << 20;
const MAX_CHARTS: usize = 200;

#[derive(Serialize, Deserialize)]
pub struct Bundle {
    format: String,
    version: u32,
    pub pr: Option<u64>,
    pub head_sha: Option<String>,
    pub footer: String,
    pub folder: String,
    pub verdict: Verdict,
    pub head: RunRecord,
}

/// Write `p` to `dir`: `bundle.json` plus the charts under `charts/`.
pub fn write_bundle(
    dir: &Path,
    p: &Publication,
    head_sha: Option<&str>,
) -> Result<(), PublishError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| PublishError::Write { path, source }
    };
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts).map_err(err(&charts))?;
    for f in &p.charts {
        let to = charts.join(file_name(f));
        std::fs::copy(f, &to).map_err(err(&to))?;
    }
    let bundle = Bundle {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        pr: p.pr,
        head_sha: head_sha.map(str::to_string),
        footer: p.footer.clone(),
        folder: p.folder.clone(),
        verdict: p.verdict.clone(),
        head: p.head.clone(),
    };
    let path = dir.join(BUNDLE_FILE);
    let json = serde_json::to_vec_pretty(&bundle).expect("a verdict serializes");
    std::fs::write(&path, json).map_err(err(&path))
}

fn bad(dir: &Path, message: impl Into<String>) -> PublishError {
    PublishError::Setting {
        flag: dir.display().to_string(),
        message: message.into(),
    }
}

/// Read a bundle as untrusted input; returns it with the plain PNG charts found beside it.
/// What is skipped is said on `err`.
pub fn read_bundle(
    dir: &Path,
    err: &mut dyn Write,
) -> Result<(Bundle, Vec<PathBuf>), PublishError> {
    let path = dir.join(BUNDLE_FILE);
    let meta = std::fs::metadata(&path).map_err(|e| {
        bad(
            dir,
            format!("no {BUNDLE_FILE} ({e}): is this a `gate ci --bundle` directory?"),
        )
    })?;
    if meta.len() > MAX_BUNDLE_BYTES {
        return Err(bad(
            dir,
            format!("{BUNDLE_FILE} is over {MAX_BUNDLE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read(&path).map_err(|e| bad(dir, e.to_string()))?;
    let bundle: Bundle =
        serde_json::from_slice(&text).map_err(|e| bad(dir, format!("{BUNDLE_FILE}: {e}")))?;
    if bundle.format != BUNDLE_FORMAT || bundle.version != BUNDLE_VERSION {
        return Err(bad(
            dir,
            format!(
                "{BUNDLE_FILE} is `{}` v{}, this gate reads `{BUNDLE_FORMAT}` v{BUNDLE_VERSION}",
                bundle.format, bundle.version
            ),
        ));
    }
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !plain(&bundle.folder) {
        return Err(bad(dir, "the bundle's chart folder name is not plain"));
    }
    let mut charts = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("charts")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().ok();
            let is_png = name.ends_with(".png")
                && plain(&name)
                && meta.is_some_and(|m| m.is_file() && m.len() <= MAX_CHART_BYTES)
                && std::fs::read(entry.path()).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"));
            if is_png {
                charts.push(entry.path());
            } else {
                let _ = writeln!(
                    err,
                    "notice: skipping {name} in the bundle: not a plain PNG chart"
                );
            }
        }
    }
    charts.sort();
    charts.truncate(MAX_CHARTS);
    Ok((bundle, charts))
}
