//! `gate run`: load-test every scenario of a suite and check its SLO thresholds.

use crate::cli::RunArgs;
use crate::config;
use crate::engine;
use crate::store::Store;
use crate::{Error, Outcome};

use super::pipeline::{
    Output, RunSettings, check_shard_flags, execute_and_report, print_written, run_shard,
    saved_line, shard_flag, write_run_charts,
};

pub fn run(args: RunArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let after = super::notify::AfterRun::of(&args);
    let shard = shard_flag(args.shard.as_deref())?;
    let junit = args.junit.is_some();
    let mut settings = RunSettings::try_from(args)?;
    if shard.is_some() {
        settings.shard = shard;
        check_shard_flags(&settings, junit)?;
        // A shard is not a run of the suite: only the merged run is saved (`gate merge --save`).
        settings.db = None;
    }
    let (suite, scenarios) = config::read_suite(&settings.suite)?;
    let plan = config::build_plan(
        &settings.suite.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &settings.overrides,
        &|name| std::env::var(name).ok(),
    )?;
    if settings.shard.is_some() {
        // Not judged, not saved: `gate merge` does both for the whole.
        return run_shard(&plan, &settings, io);
    }
    // Open the history first: a database that is not gate's (or is newer) stops us before
    // minutes of load. One that cannot be written (a read-only or full disk) does not: the run's
    // table and JSON are what the user came for, so they are written, and gate exits 3 after.
    let (mut store, unsaved) = match settings.db.as_deref().map(Store::open).transpose() {
        Ok(store) => (store, None),
        Err(e) if e.is_refusal() => return Err(e.into()),
        Err(e) => {
            io.note(format_args!(
                "warning: {e}; the run goes on and its report is written, but it cannot be saved (exit 3 at the end)"
            ));
            (None, Some(e))
        }
    };
    let (outcome, record) = execute_and_report(&plan, &settings, io)?;
    if let Some(store) = &mut store {
        let id = store.save(&record)?;
        io.note(format_args!("{}", saved_line(id, store.path(), &record)));
    }
    if let Some(e) = unsaved {
        return Err(e.into());
    }
    engine::died(&record)?;
    if let Some(dir) = &settings.charts {
        let files = write_run_charts(dir, &record, io)?;
        print_written(&files, io);
    }
    after.finish(&plan, &record)?;
    Ok(outcome)
}
