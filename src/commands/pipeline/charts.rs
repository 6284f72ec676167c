//! Chart: the one place that turns the chart room's PNG bytes into files. Shared by `chart`,
//! `compare --charts`, `run --charts`, `ci` and `demo`.

use std::path::{Path, PathBuf};

use super::output::Output;
use crate::Error;
use crate::chart::{self, ChartSize, series};
use crate::config::Plan;
use crate::record::RunRecord;
use crate::verdict::Verdict;

pub(crate) struct ChartJob<'a> {
    /// Runs drawn before the head on the trend (oldest first).
    pub history: &'a [RunRecord],
    pub base: &'a [RunRecord],
    pub head: &'a [RunRecord],
    pub verdict: Option<&'a Verdict>,
    pub plan: Option<&'a Plan>,
    pub endpoint: Option<&'a str>,
    pub base_label: String,
    pub head_label: String,
}

pub(crate) fn parse_size(text: &str) -> Result<ChartSize, Error> {
    let bad = || {
        Error::usage(
            "--size",
            format!("`{text}` is not WIDTHxHEIGHT (e.g. 1200x600)"),
        )
    };
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (width, height) = (
        w.trim().parse::<u32>().map_err(|_| bad())?,
        h.trim().parse::<u32>().map_err(|_| bad())?,
    );
    if !(200..=4096).contains(&width) || !(150..=4096).contains(&height) {
        return Err(Error::usage(
            "--size",
            format!("`{text}`: width 200-4096 and height 150-4096 pixels"),
        ));
    }
    Ok(ChartSize { width, height })
}

/// Write the overview, and a trend and a distribution chart per endpoint. Returns the files.
pub(crate) fn write_charts(
    dir: &Path,
    job: &ChartJob<'_>,
    size: ChartSize,
) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    let mut write =
        |name: String, bytes: Result<Vec<u8>, chart::ChartError>| -> Result<(), Error> {
            let path = dir.join(name);
            std::fs::write(&path, bytes?).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
            written.push(path);
            Ok(())
        };
    let mut all_runs: Vec<RunRecord> = job.history.to_vec();
    all_runs.extend(job.head.iter().cloned());
    if job.endpoint.is_none() {
        write(
            "overview.png".into(),
            chart::overview(
                &series::overview("p95 per endpoint, last runs", &all_runs),
                size,
            ),
        )?;
    }
    let head = job.head.last();
    let mut names: Vec<&str> = head
        .map(|h| h.endpoints.iter().map(|e| e.name.as_str()).collect())
        .unwrap_or_default();
    if let Some(only) = job.endpoint {
        let ramp_group = head.is_some_and(|h| {
            h.endpoints
                .iter()
                .any(|e| e.ramp.as_ref().is_some_and(|r| r.group == only))
        });
        names.retain(|n| *n == only);
        if names.is_empty() && !ramp_group {
            return Err(Error::usage(
                "--endpoint",
                format!("no endpoint named `{only}` in the charted runs"),
            ));
        }
    }
    // LLM scenarios of the head run: their models side by side.
    if let (None, Some(h)) = (job.endpoint, head) {
        for m in series::models(h) {
            write(
                chart::file_name("models", &m.title),
                chart::models(&m, size),
            )?;
        }
    }
    for name in names {
        let thresholds = job.plan.map(|p| p.thresholds_for(name)).unwrap_or_default();
        let trend = series::trend(name, job.history, head, job.verdict, &thresholds);
        write(chart::file_name("trend", name), chart::trend(&trend, size))?;
        // An LLM endpoint's time to first token has a trend of its own (streamed runs only).
        let has_ttft = |r: &RunRecord| {
            r.endpoints
                .iter()
                .any(|e| e.name == name && e.llm.as_ref().is_some_and(|l| l.ttft.count > 0))
        };
        if head.is_some_and(has_ttft) {
            let ttft = series::trend_of(
                crate::verdict::compare::CompareMetric::Ttft,
                name,
                job.history,
                head,
                job.verdict,
                &thresholds,
            );
            write(
                chart::file_name("trend-ttft", name),
                chart::trend(&ttft, size),
            )?;
        }
        if !job.base.is_empty() {
            let d =
                series::distribution(name, job.base, job.head, &job.base_label, &job.head_label);
            write(
                chart::file_name("distribution", name),
                chart::distribution(&d, size),
            )?;
        }
    }
    Ok(written)
}

pub(crate) fn print_written(files: &[PathBuf], io: &mut Output<'_>) {
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        io.note(format_args!(
            "wrote {} chart(s) to {}:",
            files.len(),
            dir.display()
        ));
        for f in files {
            io.note(format_args!("  {}", f.display()));
        }
    }
}

/// `gate run --charts DIR`: what one run can show on its own (its ramps, its LLM models).
pub(crate) fn write_run_charts(
    dir: &Path,
    run: &RunRecord,
    io: &mut Output<'_>,
) -> Result<Vec<PathBuf>, Error> {
    let ramps = crate::verdict::ramp::ramps(run);
    let model_charts = series::models(run);
    if ramps.is_empty() && model_charts.is_empty() {
        io.note(format_args!(
            "note: no ramp in this run; trend and distribution charts need history: `gate chart`"
        ));
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for r in ramps {
        let path = dir.join(chart::file_name("ramp", &r.group));
        let bytes = chart::ramp(&series::ramp(&r), ChartSize::default())?;
        std::fs::write(&path, bytes).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
        files.push(path);
    }
    for m in model_charts {
        let path = dir.join(chart::file_name("models", &m.title));
        let bytes = chart::models(&m, ChartSize::default())?;
        std::fs::write(&path, bytes).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
        files.push(path);
    }
    Ok(files)
}

/// `gate ci`'s charts: base (the baseline branch's runs) against this run, plus the head run's
/// ramps, in a directory emptied of older PNGs so only this run's charts are attached.
pub(crate) fn write_pr_charts(
    dir: &Path,
    plan: &Plan,
    base: &[RunRecord],
    head: &[RunRecord],
    verdict: &Verdict,
    io: &mut Output<'_>,
) -> Result<Vec<PathBuf>, Error> {
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let job = ChartJob {
        history: base,
        base,
        head,
        verdict: Some(verdict),
        plan: Some(plan),
        endpoint: None,
        base_label: format!("base ({})", plan.baseline.branch),
        head_label: "head (this PR)".into(),
    };
    let mut files = write_charts(dir, &job, ChartSize::default())?;
    // Ramps are drawn from the head run alone (latency and throughput per step, the knee).
    if let Some(run) = head
        .last()
        .filter(|r| !crate::verdict::ramp::ramps(r).is_empty())
    {
        for f in write_run_charts(dir, run, io)? {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    print_written(&files, io);
    Ok(files)
}
