//! Measure: a plan run by the engine, described (git, PR, environment), its table printed and
//! its JSON document written; `gate run`, `gate ci` share it, `gate demo` its pieces.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::output::Output;
use crate::cli::{LoadArgs, RunArgs};
use crate::config::{ConfigError, Overrides, Plan};
use crate::engine::{self, EngineOptions, ProgressMode, Threads};
use crate::environment::{Environment, Sentinel, TimerDelay};
use crate::git::{self, GitInfo};
use crate::publish::actions;
use crate::record::RunRecord;
use crate::report::{Format, RunReport, json::Json, terminal::Terminal};
use crate::units::parse_duration;
use crate::verdict::evaluate_slo;
use crate::{Error, Outcome};

/// `RunArgs`, validated.
pub struct RunSettings {
    pub suite: PathBuf,
    pub overrides: Overrides,
    pub json: Option<PathBuf>,
    pub threads: Threads,
    pub label: Option<String>,
    pub progress: ProgressMode,
    /// Where to save the run; None with `--no-save`.
    pub db: Option<PathBuf>,
    pub env_tag: Option<String>,
    pub charts: Option<PathBuf>,
    /// Print the run table to stderr (stdout carries something else, e.g. `gate ci`'s verdict).
    pub table_to_stderr: bool,
    /// `--shard I/N`: send this shard's share, write its document, judge and save nothing.
    pub shard: Option<crate::config::Shard>,
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
            Some(n) => Threads::Fixed(n),
            None => Threads::Auto,
        };
        Ok(RunSettings {
            shard: None,
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

/// First Ctrl-C: stop sending, report what was measured (marked partial). Second: exit now.
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let spawned = std::thread::Builder::new()
        .name("gate-signal".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    f.store(true, Ordering::Relaxed);
                    eprintln!(
                        "\ninterrupted: finishing in-flight requests (Ctrl-C again to abort)"
                    );
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(crate::exit::INTERRUPTED);
                    }
                }
            });
        });
    // Without the handler, Ctrl-C still stops the process; only the partial report is lost.
    let _ = spawned;
    flag
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

/// The git context of the working tree; in an Actions pull request, whose HEAD is detached,
/// the branch is the PR's (`GITHUB_HEAD_REF`).
pub(crate) fn git_context(cwd: &Path, baseline_branch: &str) -> Option<GitInfo> {
    let mut info = git::context(cwd, baseline_branch)?;
    if let Some(branch) = actions::head_ref(&|name| std::env::var(name).ok()) {
        info.branch = Some(branch);
    }
    Some(info)
}

/// Git, PR and environment context of a run made here and now.
pub(crate) fn describe_context(
    record: &mut RunRecord,
    plan: &Plan,
    env_tag: Option<String>,
    timer_delay: Option<TimerDelay>,
) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    record.git = git_context(&cwd, &plan.baseline.branch);
    record.pr = actions::pr_from_event(
        std::env::var_os("GITHUB_EVENT_PATH")
            .as_deref()
            .map(Path::new),
    );
    record.environment = Some(Environment {
        timer_delay,
        ..Environment::detect(env_tag)
    });
}

/// Run a plan, print the table, write the JSON document; shared by `run` and `ci`.
pub(crate) fn execute_and_report(
    plan: &Plan,
    settings: &RunSettings,
    io: &mut Output<'_>,
) -> Result<(Outcome, RunRecord), Error> {
    let opts = EngineOptions {
        threads: settings.threads,
        progress: settings.progress,
        cancel: interrupt_flag(),
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
        io.bytes(true, &table)?;
        if json_to_stdout {
            io.bytes(false, &Json.render_run(&report))?;
        } else if let Some(path) = &settings.json {
            // `gate ci --json FILE`: the table went to stderr, the document to its file.
            std::fs::write(path, Json.render_run(&report)).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
            io.note(format_args!("wrote {}", path.display()));
        }
    } else {
        io.bytes(false, &table)?;
        if let Some(path) = &settings.json {
            std::fs::write(path, Json.render_run(&report)).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
            io.note(format_args!("wrote {}", path.display()));
        }
    }
    Ok((slo.outcome(), record))
}
