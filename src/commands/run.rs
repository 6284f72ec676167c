//! `gate run`: load-test every scenario of a suite and check its SLO thresholds.

use crate::cli::RunArgs;
use crate::config;
use crate::store::Store;
use crate::{Error, Outcome};

use super::pipeline::{
    Output, RunSettings, execute_and_report, print_written, saved_line, write_run_charts,
};

pub fn run(args: RunArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let settings = RunSettings::try_from(args)?;
    let (suite, scenarios) = config::read_suite(&settings.suite)?;
    let plan = config::build_plan(
        &settings.suite.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &settings.overrides,
        &|name| std::env::var(name).ok(),
    )?;
    // Open the history first: a database problem should stop us before minutes of load, not after.
    let mut store = settings.db.as_deref().map(Store::open).transpose()?;
    let (outcome, record) = execute_and_report(&plan, &settings, io)?;
    if let Some(store) = &mut store {
        let id = store.save(&record)?;
        io.note(format_args!("{}", saved_line(id, store.path(), &record)));
    }
    if let Some(dir) = &settings.charts {
        let files = write_run_charts(dir, &record, io)?;
        print_written(&files, io);
    }
    Ok(outcome)
}
