//! `gate publish BUNDLE`: the trusted half of the fork-safe workflow. A PR from a fork runs
//! `gate ci --bundle DIR` with a read-only token and uploads DIR as an artifact; a
//! `workflow_run` job, which never runs the fork's code, downloads it and posts it here.
//!
//! The bundle was written by code from the fork, so it is read as untrusted input: sizes are
//! bounded, only PNG files with plain names are attached, every text goes through the markdown
//! escaping, and `--expect-head-sha` checks that the PR it names really is the one that ran.

use std::path::{Path, PathBuf};

use hyper::Method;
use serde::{Deserialize, Serialize};

use crate::cli::PublishArgs;
use crate::publish::{GitHub, RetryPolicy};
use crate::record::RunRecord;
use crate::verdict::Verdict;
use crate::{Error, Outcome};

use super::ci::{Destination, Publication, github_config, publish as publish_verdict};

const BUNDLE_FILE: &str = "bundle.json";
const BUNDLE_FORMAT: &str = "gate-bundle";
const BUNDLE_VERSION: u32 = 1;
const MAX_BUNDLE_BYTES: u64 = 16 << 20;
const MAX_CHART_BYTES: u64 = 4 << 20;
const MAX_CHARTS: usize = 200;

#[derive(Serialize, Deserialize)]
struct Bundle {
    format: String,
    version: u32,
    pr: Option<u64>,
    head_sha: Option<String>,
    footer: String,
    folder: String,
    verdict: Verdict,
    head: RunRecord,
}

/// Write `p` to `dir`: `bundle.json` plus the charts under `charts/`.
pub(crate) fn write_bundle(
    dir: &Path,
    p: &Publication,
    head_sha: Option<&str>,
) -> Result<(), Error> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Write { path, source }
    };
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts).map_err(err(&charts))?;
    for f in &p.charts {
        let to = charts.join(super::ci::file_name(f));
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

fn bad(dir: &Path, message: impl Into<String>) -> Error {
    Error::usage(dir.display().to_string(), message)
}

fn read_bundle(dir: &Path) -> Result<(Bundle, Vec<PathBuf>), Error> {
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
                eprintln!("notice: skipping {name} in the bundle: not a plain PNG chart");
            }
        }
    }
    charts.sort();
    charts.truncate(MAX_CHARTS);
    Ok((bundle, charts))
}

pub fn publish(args: PublishArgs) -> Result<Outcome, Error> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (bundle, charts) = read_bundle(&args.bundle)?;
    let pr = args.pr.or(bundle.pr).ok_or_else(|| {
        Error::usage(
            "--pr",
            "the bundle names no PR (it came from a push build); pass --pr N",
        )
    })?;
    if pr == 0 {
        return Err(Error::usage("--pr", "PR numbers start at 1"));
    }
    let gh = github_config(&args.github, &env)?;
    if let Some(expected) = &args.expect_head_sha {
        check_head(&gh, pr, expected)?;
    }
    let summary = args
        .github
        .summary
        .clone()
        .or_else(|| env("GITHUB_STEP_SUMMARY").map(PathBuf::from));
    let p = Publication {
        verdict: bundle.verdict,
        head: bundle.head,
        pr: Some(pr),
        charts,
        footer: bundle.footer,
        folder: bundle.folder,
        key: super::ci::comment_key(&args.github)?,
    };
    let infra = publish_verdict(
        &p,
        Destination::Pr(gh),
        summary.as_deref(),
        &args.github.assets_branch,
        None,
    )?;
    // The measuring job already failed or passed on the verdict; this one reports publishing.
    Ok(if infra {
        Outcome::Infrastructure
    } else {
        Outcome::Pass
    })
}

/// The PR must be the one whose head commit ran: a bundle cannot steer the comment elsewhere.
fn check_head(gh: &crate::publish::GitHubConfig, pr: u64, expected: &str) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Write {
            path: "<tokio runtime>".into(),
            source,
        })?;
    runtime.block_on(async {
        let client = GitHub::new(gh.clone(), RetryPolicy::default()).map_err(publish_err)?;
        let reply = client
            .call(
                Method::GET,
                &client.repo_path(&format!("/pulls/{pr}")),
                None,
                "read the PR",
            )
            .await
            .map_err(publish_err)?;
        let status = reply.status.as_u16();
        if status != 200 {
            return Err(Error::usage(
                "--pr",
                format!("cannot read PR #{pr} (GitHub answered {status})"),
            ));
        }
        let head = reply.body["head"]["sha"].as_str().unwrap_or_default();
        if head.is_empty() || !head.eq_ignore_ascii_case(expected.trim()) {
            return Err(Error::usage(
                "--expect-head-sha",
                format!(
                    "PR #{pr}'s head is {head}, not {expected}: refusing to post a bundle on a PR it does not belong to"
                ),
            ));
        }
        Ok(())
    })
}

fn publish_err(e: crate::publish::PublishError) -> Error {
    Error::Publish(e)
}
