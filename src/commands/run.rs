//! `gate run`: load-test every scenario of a suite and check its SLO thresholds.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{LoadArgs, RunArgs};
use crate::config::{self, ConfigError, Overrides, Plan, duration::parse_duration};
use crate::engine::{self, EngineOptions, ProgressMode};
use crate::environment::{Environment, Sentinel};
use crate::git;
use crate::record::RunRecord;
use crate::report::{Format, RunReport, json::Json, terminal::Terminal};
use crate::store::Store;
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
    /// Where to save the run; None with `--no-save`.
    pub db: Option<PathBuf>,
    pub env_tag: Option<String>,
    pub charts: Option<PathBuf>,
    /// Print the run table to stderr (stdout carries something else, e.g. `gate ci`'s verdict).
    pub table_to_stderr: bool,
}

impl TryFrom<RunArgs> for RunSettings {
    type Error = Error;

    fn try_from(a: RunArgs) -> Result<Self, Error> {
        let mut settings = RunSettings::from_load(a.load)?;
        settings.json = a.json;
        settings.label = a.label;
        settings.progress = ProgressMode::detect(a.no_progress);
        settings.db = (!a.no_save).then_some(a.db.db);
        settings.charts = a.charts;
        Ok(settings)
    }
}

impl RunSettings {
    /// The load flags shared by `gate run` and `gate ci`, validated; the rest at defaults
    /// (no JSON, no label, saved to nowhere until the caller says where).
    pub(crate) fn from_load(a: LoadArgs) -> Result<RunSettings, Error> {
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
                cacert: a.cacert,
                insecure: a.insecure,
                resolve: a.resolve,
                http2_prior_knowledge: a.http2_prior_knowledge,
                http1_only: a.http1_only,
            },
            json: None,
            threads,
            label: None,
            progress: ProgressMode::detect(false),
            db: None,
            env_tag: a.env_tag,
            charts: None,
            table_to_stderr: false,
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
    // Open the history first: a database that is not gate's (or is newer) stops us before
    // minutes of load. One that cannot be written (a read-only or full disk) does not: the run's
    // table and JSON are what the user came for, so they are written, and gate exits 3 after.
    let (mut store, unsaved) = match settings.db.as_deref().map(Store::open).transpose() {
        Ok(store) => (store, None),
        Err(e) if e.is_refusal() => return Err(e.into()),
        Err(e) => {
            eprintln!(
                "warning: {e}; the run goes on and its report is written, but it cannot be saved (exit 3 at the end)"
            );
            (None, Some(e))
        }
    };
    let (outcome, record) = execute_and_report(&plan, &settings)?;
    if let Some(store) = &mut store {
        let id = store.save(&record)?;
        eprintln!("{}", saved_line(id, store.path(), &record));
    }
    if let Some(e) = unsaved {
        return Err(e.into());
    }
    engine::died(&record)?;
    if let Some(dir) = &settings.charts {
        super::charts::print_written(&super::charts::write_run_charts(dir, &record)?);
    }
    Ok(outcome)
}

/// "saved run #12 to .gate/history.db: feature @ 3f2a1c9 (dirty)".
pub(crate) fn saved_line(id: i64, path: &str, record: &RunRecord) -> String {
    let partial = if record.complete {
        ""
    } else {
        ", marked partial"
    };
    match &record.git {
        Some(g) => format!(
            "saved run #{id} to {path}: {} @ {}{}{partial}",
            g.branch.as_deref().unwrap_or("(detached HEAD)"),
            g.short_commit().unwrap_or("(no commit yet)"),
            if g.dirty { " (dirty)" } else { "" },
        ),
        None => format!(
            "saved run #{id} to {path}{partial} (not a git checkout: no commit or branch recorded)"
        ),
    }
}

/// Git, PR and environment context of a run made here and now.
pub(crate) fn describe_context(
    record: &mut RunRecord,
    plan: &Plan,
    env_tag: Option<String>,
    timer_delay: Option<crate::environment::TimerDelay>,
) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    record.git = git::context(&cwd, &plan.baseline.branch);
    record.pr = git::pr_from_event(
        std::env::var_os("GITHUB_EVENT_PATH")
            .as_deref()
            .map(Path::new),
    );
    record.environment = Some(Environment {
        timer_delay,
        ..Environment::detect(env_tag)
    });
}

/// Run a plan, print the table, write the JSON document; shared by `run` and `demo`.
pub(crate) fn execute_and_report(
    plan: &Plan,
    settings: &RunSettings,
) -> Result<(Outcome, RunRecord), Error> {
    let opts = EngineOptions {
        threads: settings.threads,
        progress: settings.progress,
        cancel: super::interrupt_flag(),
        fault: crate::engine::Fault::from_env(),
    };
    let sentinel = Sentinel::start();
    let executed = engine::execute(plan, &opts);
    let timer_delay = sentinel.finish();
    let mut record = executed?;
    record.label = settings.label.clone();
    describe_context(&mut record, plan, settings.env_tag.clone(), timer_delay);
    let slo = evaluate_slo(&record, &|name| plan.thresholds_for(name));
    let report = RunReport {
        run: &record,
        slo: &slo,
    };
    let table = Terminal.render_run(&report);
    let json_to_stdout = settings.json.as_deref() == Some(Path::new("-"));
    if json_to_stdout || settings.table_to_stderr {
        // stdout carries the document; the table goes to stderr for the person watching.
        write_stream(&mut std::io::stderr(), &table)?;
        if json_to_stdout {
            write_stream(&mut std::io::stdout(), &Json.render_run(&report))?;
        }
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
    Ok((slo.outcome(), record))
}

fn write_stream(w: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    w.write_all(bytes)
        .and_then(|_| w.flush())
        .map_err(|source| Error::Write {
            path: "<output>".into(),
            source,
        })
}
