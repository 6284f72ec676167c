//! `gate run`: load-test every scenario of a suite and check its SLO thresholds.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::config::{self, ConfigError, Overrides, Plan, duration::parse_duration};
use crate::engine::{self, EngineOptions, ProgressMode};
use crate::report::{Format, RunReport, json::Json, terminal::Terminal};
use crate::verdict::evaluate_slo;
use crate::{Error, Outcome};

/// `RunArgs`, validated.
pub struct RunSettings {
    pub suite: PathBuf,
    pub overrides: Overrides,
    pub json: Option<PathBuf>,
    pub threads: usize,
    pub label: Option<String>,
    pub progress: ProgressMode,
}

impl TryFrom<RunArgs> for RunSettings {
    type Error = Error;

    fn try_from(a: RunArgs) -> Result<Self, Error> {
        let flag_duration = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| parse_duration(s).map_err(|m| ConfigError::flag(flag, m)))
                .transpose()
        };
        let duration = flag_duration("--duration", &a.duration)?;
        if duration.is_some_and(|d| d.is_zero()) {
            return Err(Error::usage("--duration", "must be above zero"));
        }
        let warmup = flag_duration("--warmup", &a.warmup)?;
        let threads = match a.threads {
            Some(0) => return Err(Error::usage("--threads", "must be at least 1")),
            Some(n) => n,
            None => EngineOptions::default_threads(),
        };
        Ok(RunSettings {
            suite: a.suite,
            overrides: Overrides {
                target: a.target,
                duration,
                warmup,
                only: a.scenarios,
            },
            json: a.json,
            threads,
            label: a.label,
            progress: ProgressMode::detect(a.no_progress),
        })
    }
}

pub fn run(args: RunArgs) -> Result<Outcome, Error> {
    let settings = RunSettings::try_from(args)?;
    let (suite, scenarios) = config::read_suite(&settings.suite)?;
    let plan = config::build_plan(
        &settings.suite.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &settings.overrides,
        &|name| std::env::var(name).ok(),
    )?;
    execute_and_report(&plan, &settings)
}

/// Run a plan, print the table, write the JSON document; shared by `run` and `demo`.
pub(crate) fn execute_and_report(plan: &Plan, settings: &RunSettings) -> Result<Outcome, Error> {
    let opts = EngineOptions {
        threads: settings.threads,
        progress: settings.progress,
        cancel: super::interrupt_flag(),
    };
    let mut record = engine::execute(plan, &opts)?;
    record.label = settings.label.clone();
    let slo = evaluate_slo(&record, &|name| {
        plan.scenarios
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.thresholds.clone())
            .unwrap_or_default()
    });
    let report = RunReport {
        run: &record,
        slo: &slo,
    };
    let table = Terminal.render_run(&report);
    let json_to_stdout = settings.json.as_deref() == Some(Path::new("-"));
    if json_to_stdout {
        // stdout carries the document; the table goes to stderr for the person watching.
        write_stream(&mut std::io::stderr(), &table)?;
        write_stream(&mut std::io::stdout(), &Json.render_run(&report))?;
    } else {
        write_stream(&mut std::io::stdout(), &table)?;
        if let Some(path) = &settings.json {
            std::fs::write(path, Json.render_run(&report)).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(slo.outcome())
}

fn write_stream(w: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    w.write_all(bytes)
        .and_then(|_| w.flush())
        .map_err(|source| Error::Write {
            path: "<output>".into(),
            source,
        })
}
