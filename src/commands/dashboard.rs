//! `gate dashboard`: the branch's recent runs as a static site.

use super::pipeline::{Output, suite_settings};
use crate::cli::DashboardArgs;
use crate::config::DEFAULT_TOLERANCE;
use crate::dashboard::{self, DashboardError, Input};
use crate::store::{ListFilter, Store, StoredRun};
use crate::{Error, Outcome};

/// Earlier runs loaded beyond `--last`, so the first runs shown have a baseline too.
const BASELINE_LOOKBACK: usize = 5;

pub fn dashboard(args: DashboardArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    if args.last == 0 {
        return Err(Error::usage("--last", "must be at least 1"));
    }
    let store = Store::open(&args.db.db)?;
    let plan = suite_settings(&args.suite);
    let branch = args.branch.clone().unwrap_or_else(|| {
        plan.as_ref()
            .map_or_else(|| "main".to_string(), |p| p.baseline.branch.clone())
    });
    let summaries = store.list(&ListFilter {
        branch: Some(branch.clone()),
        last: Some(args.last + BASELINE_LOOKBACK),
    })?;
    if summaries.is_empty() && !store.has_branch(&branch)? {
        io.note(format_args!(
            "note: no runs of `{branch}` in {}; the site says so (pick another with --branch)",
            store.path()
        ));
    }
    let runs: Vec<StoredRun> = summaries
        .iter()
        .map(|s| store.load(s.id))
        .collect::<Result<_, _>>()?;
    let thresholds = |name: &str| {
        plan.as_ref()
            .map(|p| p.thresholds_for(name))
            .unwrap_or_default()
    };
    let tolerance = |name: &str| {
        plan.as_ref()
            .and_then(|p| p.scenarios.iter().find(|s| s.name == name))
            .map_or(DEFAULT_TOLERANCE, |s| s.tolerance)
    };
    let site = dashboard::build(&Input {
        runs: &runs,
        shown: args.last,
        branch: &branch,
        thresholds: &thresholds,
        tolerance: &tolerance,
    })
    .map_err(|e| match e {
        DashboardError::Chart(c) => Error::Chart(c),
    })?;
    for (rel, bytes) in &site.files {
        let path = args.out.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&path, bytes));
        written.map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    io.note(format_args!(
        "wrote the dashboard ({} file(s), {} run(s) of `{branch}`) to {}; open {}",
        site.files.len(),
        runs.len().min(args.last),
        args.out.display(),
        args.out.join("index.html").display()
    ));
    Ok(Outcome::Pass)
}
