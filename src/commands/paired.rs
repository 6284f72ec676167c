//! Paired mode (`--base-target URL`) for `gate compare` and `gate ci`: the baseline deployment
//! and HEAD's measured at the same time in the same job, so whatever the machine does hits both
//! alike (docs/paired.md).
//!
//! Each side is one continuous `engine::execute_sliced` run of the plan (the base side's with the
//! target swapped), on two threads; every scenario starts on both at the same instant, and its
//! measurement (`2 × rounds` blocks) is cut into time blocks. Block k of the base and block k of
//! HEAD saw the same moment of the machine: they are the pairs the verdict compares. Both whole
//! runs are saved to the history.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::cli::PairedArgs;
use crate::config::{self, Plan};
use crate::engine::{self, EngineOptions, ProgressMode, Threads};
use crate::environment::Sentinel;
use crate::git::GitInfo;
use crate::record::RunRecord;
use crate::store::Store;
use crate::units::parse_duration;
use crate::verdict::paired::{compare_paired, pairs_by_endpoint};
use crate::verdict::{CompareSettings, Verdict, evaluate_slo};
use crate::{Error, Outcome};

use super::pipeline::{
    ChartJob, Output, RunSettings, describe_context, interrupt_flag, print_written, saved_line,
    write_charts, write_verdict,
};

/// 13 rounds of 2 blocks of 1.5 s: 26 block pairs per endpoint, 39 s measured on each side at
/// once, about 3,900 requests a side at 100/s; a 4-scenario suite with 3 s warmups takes under
/// 3 minutes (docs/paired.md, "Choosing the defaults").
pub const DEFAULT_ROUNDS: u32 = 13;
pub const DEFAULT_BLOCK: Duration = Duration::from_millis(1500);
/// The base side's label in the history.
pub const BASE_LABEL: &str = "paired-base";

/// `--base-target`, `--rounds`, `--block`, validated.
#[derive(Clone, Debug)]
pub(crate) struct PairedSettings {
    pub base_target: String,
    pub rounds: u32,
    pub block: Duration,
}

impl PairedSettings {
    /// None without `--base-target` (history mode).
    pub(crate) fn new(a: &PairedArgs) -> Result<Option<PairedSettings>, Error> {
        let Some(base_target) = a.base_target.clone() else {
            return Ok(None);
        };
        config::parse_target(&base_target).map_err(|m| Error::usage("--base-target", m))?;
        let rounds = a.rounds.unwrap_or(DEFAULT_ROUNDS);
        if rounds == 0 {
            return Err(Error::usage("--rounds", "must be at least 1"));
        }
        if rounds > 500 {
            return Err(Error::usage(
                "--rounds",
                "at most 500 (1000 block pairs per endpoint); longer blocks measure more",
            ));
        }
        let block = match &a.block {
            Some(text) => parse_duration(text).map_err(|m| Error::usage("--block", m))?,
            None => DEFAULT_BLOCK,
        };
        if block < Duration::from_millis(100) {
            return Err(Error::usage(
                "--block",
                "at least 100ms: a block must hold enough requests for its own p95",
            ));
        }
        Ok(Some(PairedSettings {
            base_target,
            rounds,
            block,
        }))
    }

    /// "5 rounds of 2 × 2s blocks per scenario": for the headline.
    pub(crate) fn shape(&self) -> crate::verdict::PairedShape {
        crate::verdict::PairedShape {
            rounds: self.rounds,
            block_s: self.block.as_secs_f64(),
        }
    }
}

/// What a paired measurement produced: each side merged into one run, the pairs, and the ids
/// the runs were saved under.
pub(crate) struct Paired {
    pub base: RunRecord,
    pub head: RunRecord,
    pub head_id: i64,
    pub verdict: Verdict,
}

/// `llm:` scenarios are not measured in paired mode (yet): their token figures do not merge
/// from records, and a streamed block is long enough that few fit in a job.
fn refuse_llm(plan: &Plan) -> Result<(), Error> {
    let llm: Vec<&str> = plan
        .scenarios
        .iter()
        .filter(|s| s.llm.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if llm.is_empty() {
        Ok(())
    } else {
        Err(Error::usage(
            "--base-target",
            format!(
                "paired mode does not measure `llm:` scenarios yet ({}); leave them out with --scenario, or compare them in history mode (without --base-target)",
                llm.join(", ")
            ),
        ))
    }
}

/// What [`measure_blocks`] measured.
pub(crate) struct Measured {
    /// Each side's whole measurement, every scenario in one run.
    pub base: RunRecord,
    pub head: RunRecord,
    /// The block pairs (base, head) in time order, scenario after scenario.
    pub pairs: Vec<(RunRecord, RunRecord)>,
    /// Interrupted, or a scenario did not run to its end: judged on what was measured.
    pub stopped: bool,
}

/// Both sides at once, on two threads, each one continuous run of the whole plan cut into
/// blocks of `block`: every scenario starts on both at the same instant, once both are ready
/// for it (a shared [`engine::Slicing`] clock), so block k of one side and block k of the other saw the same
/// moment of the machine (a neighbour switching on, a CPU frequency change). Progress shows the
/// head side.
fn side_by_side(
    base: &Plan,
    head: &Plan,
    opts: &EngineOptions,
    progress: ProgressMode,
    block: Duration,
) -> Result<(engine::Sliced, engine::Sliced), Error> {
    let slicing = engine::Slicing::new(block, 2);
    // One stop for both sides: Ctrl-C, or the other side failing (an unreachable base must not
    // leave the head measuring alone for minutes before the error is reported).
    let stop = Arc::new(AtomicBool::new(false));
    let running = AtomicUsize::new(2);
    let base_opts = EngineOptions {
        cancel: stop.clone(),
        ..*opts
    };
    let head_opts = EngineOptions {
        progress,
        cancel: stop.clone(),
        ..*opts
    };
    let side = |plan: &'_ Plan, opts: &'_ EngineOptions| {
        let r = engine::execute_sliced(plan, opts, &slicing);
        // Failed, or stopped short (a load thread died): the other side stops too.
        if !r.as_ref().is_ok_and(|r| r.whole.complete) {
            stop.store(true, Ordering::Relaxed);
        }
        running.fetch_sub(1, Ordering::Relaxed);
        r
    };
    let (b, h) = std::thread::scope(|scope| {
        let b = scope.spawn(|| side(base, &base_opts));
        let h = scope.spawn(|| side(head, &head_opts));
        while running.load(Ordering::Relaxed) > 0 {
            if opts.cancel.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (
            b.join().expect("a load thread panicked"),
            h.join().expect("a load thread panicked"),
        )
    });
    Ok((b?, h?))
}

/// Measure every scenario of `plan` (its target is HEAD) beside `base_target`: each scenario
/// on both sides at once for `2 × rounds` blocks after its own warmup, one continuous run per
/// side cut into blocks; block k of the base and block k of HEAD form a pair.
pub(crate) fn measure_blocks(
    plan: &Plan,
    base_target: &config::Target,
    paired: &PairedSettings,
    threads: Threads,
    progress: ProgressMode,
    io: &mut Output<'_>,
) -> Result<Measured, Error> {
    let blocks = 2 * paired.rounds;
    let mut head_plan = plan.clone();
    for s in &mut head_plan.scenarios {
        s.load.duration = paired.block * blocks;
    }
    let mut base_plan = head_plan.clone();
    base_plan.target = base_target.clone();
    for s in &mut base_plan.scenarios {
        s.target = base_target.clone();
    }
    if base_plan.target == head_plan.target {
        io.note(format_args!(
            "note: --base-target is the target itself ({}): an A/A comparison",
            head_plan.target.url()
        ));
    }
    if progress != ProgressMode::Quiet {
        io.note(format_args!(
            "paired: {} and {} side by side, both at once: each scenario {} blocks of {} ms after its warmup",
            base_target.url(),
            head_plan.target.url(),
            blocks,
            paired.block.as_millis(),
        ));
    }
    let opts = EngineOptions {
        threads,
        progress: ProgressMode::Quiet,
        cancel: interrupt_flag(),
        fault: engine::Fault::from_env(),
    };
    let (base, head) = side_by_side(&base_plan, &head_plan, &opts, progress, paired.block)?;
    let stopped = !(base.whole.complete && head.whole.complete);
    Ok(Measured {
        pairs: base.slices.into_iter().zip(head.slices).collect(),
        base: base.whole,
        head: head.whole,
        stopped,
    })
}

/// Measure both deployments side by side, save both sides, and judge.
/// `head_label` is HEAD's run label; the base side is labelled [`BASE_LABEL`].
pub(crate) fn measure_and_judge(
    plan: &Plan,
    paired: &PairedSettings,
    run: &RunSettings,
    store: &mut Store,
    tolerance_flag: Option<f64>,
    strict: bool,
    io: &mut Output<'_>,
) -> Result<Paired, Error> {
    refuse_llm(plan)?;
    if plan.scenarios.is_empty() {
        return Err(Error::usage("--scenario", "no scenario to measure"));
    }
    let base_target =
        config::parse_target(&paired.base_target).map_err(|m| Error::usage("--base-target", m))?;
    let sentinel = Sentinel::start();
    let Measured {
        mut base,
        mut head,
        pairs,
        stopped,
    } = measure_blocks(plan, &base_target, paired, run.threads, run.progress, io)?;
    let timer_delay = sentinel.finish();
    if stopped {
        base.complete = false;
        head.complete = false;
    }
    describe_context(&mut head, plan, run.env_tag.clone(), timer_delay);
    describe_context(&mut base, plan, run.env_tag.clone(), timer_delay);
    head.label = run.label.clone();
    base.label = Some(BASE_LABEL.into());
    base.target = base_target.url();
    // The base deployment is what the baseline branch built at the merge-base (the example
    // workflow's setup): record it so, never as HEAD's commit, or a later `gate compare main
    // HEAD` would pool the base deployment's figures into HEAD.
    base.git = head.git.as_ref().map(|g| GitInfo {
        commit: g.merge_base.clone(),
        branch: Some(plan.baseline.branch.clone()),
        merge_base: g.merge_base.clone(),
        dirty: false,
    });

    let base_id = store.save(&base)?;
    io.note(format_args!("{}", saved_line(base_id, store.path(), &base)));
    let head_id = store.save(&head)?;
    io.note(format_args!("{}", saved_line(head_id, store.path(), &head)));
    engine::died(&base)?;
    engine::died(&head)?;

    let scenario = |name: &str| plan.scenarios.iter().find(|s| s.name == name);
    let tolerance = |name: &str| {
        tolerance_flag
            .unwrap_or_else(|| scenario(name).map_or(config::DEFAULT_TOLERANCE, |s| s.tolerance))
    };
    let grouped = pairs_by_endpoint(&pairs);
    let endpoints = compare_paired(&grouped, &tolerance, &CompareSettings::default());
    let slo = Some(evaluate_slo(&head, &|name| plan.thresholds_for(name)));
    let mut notes = Vec::new();
    if head.git.as_ref().is_some_and(|g| g.dirty) {
        notes.push("HEAD was measured with uncommitted changes (dirty working tree)".into());
    }
    if stopped {
        notes.push(
            "the paired measurement stopped early (interrupted or a load thread died): judged on the blocks measured".into(),
        );
    }
    let verdict = Verdict {
        base: format!(
            "baseline: run #{base_id} ({BASE_LABEL}), {} measured side by side",
            base.target
        ),
        head: format!("head: run #{head_id}, {}", head.target),
        endpoints,
        slo,
        strict,
        notes,
        paired: Some(paired.shape()),
    };
    Ok(Paired {
        base,
        head,
        head_id,
        verdict,
    })
}

/// `gate compare --base-target URL`: measure, save, report.
pub(crate) fn compare(
    a: crate::cli::CompareArgs,
    paired: PairedSettings,
    tolerance_flag: Option<f64>,
    io: &mut Output<'_>,
) -> Result<Outcome, Error> {
    let mut run = RunSettings::from_load(crate::cli::LoadArgs {
        suite: a.suite.clone(),
        target: a.target.clone(),
        scenarios: a.scenarios.clone(),
        duration: None,
        warmup: None,
        threads: None,
        env_tag: None,
        cacert: None,
        insecure: false,
        resolve: Vec::new(),
        http2_prior_knowledge: false,
        http1_only: false,
    })?;
    run.db = Some(a.db.db.clone());
    let (suite, scenarios) = config::read_suite(&run.suite)?;
    let plan = config::build_plan(
        &run.suite.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &run.overrides,
        &|name| std::env::var(name).ok(),
    )?;
    let mut store = Store::open(&a.db.db)?;
    let m = measure_and_judge(
        &plan,
        &paired,
        &run,
        &mut store,
        tolerance_flag,
        a.strict,
        io,
    )?;
    if let Some(dir) = &a.charts {
        let base = [m.base.clone()];
        let head = [m.head.clone()];
        let job = ChartJob {
            history: &base,
            base: &base,
            head: &head,
            verdict: Some(&m.verdict),
            plan: Some(&plan),
            endpoint: None,
            base_label: format!("base ({})", m.base.target),
            head_label: format!("head ({})", m.head.target),
        };
        let files = write_charts(dir, &job, crate::chart::ChartSize::default())?;
        print_written(&files, io);
    }
    write_verdict(&m.verdict, a.format, io)?;
    Ok(m.verdict.outcome())
}

/// The chart directory for `gate ci` in paired mode: distribution and overview charts of the
/// two sides.
pub(crate) fn ci_charts(
    dir: &std::path::Path,
    plan: &Plan,
    m: &Paired,
    io: &mut Output<'_>,
) -> Result<Vec<PathBuf>, Error> {
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let base = [m.base.clone()];
    let head = [m.head.clone()];
    let job = ChartJob {
        history: &base,
        base: &base,
        head: &head,
        verdict: Some(&m.verdict),
        plan: Some(plan),
        endpoint: None,
        base_label: "base (side by side)".into(),
        head_label: "head (this PR)".into(),
    };
    let files = write_charts(dir, &job, crate::chart::ChartSize::default())?;
    print_written(&files, io);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(base: Option<&str>, rounds: Option<u32>, block: Option<&str>) -> PairedArgs {
        PairedArgs {
            base_target: base.map(String::from),
            rounds,
            block: block.map(String::from),
        }
    }

    #[test]
    fn settings_validate_before_any_load() {
        assert!(
            PairedSettings::new(&args(None, None, None))
                .unwrap()
                .is_none()
        );
        let s = PairedSettings::new(&args(Some("http://127.0.0.1:8081"), None, None))
            .unwrap()
            .unwrap();
        assert_eq!((s.rounds, s.block), (DEFAULT_ROUNDS, DEFAULT_BLOCK));
        let flag = |a: PairedArgs| match PairedSettings::new(&a) {
            Err(Error::Usage { flag, .. }) => flag,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert_eq!(flag(args(Some("ftp://x"), None, None)), "--base-target");
        assert_eq!(flag(args(Some("http://h:1"), Some(0), None)), "--rounds");
        assert_eq!(
            flag(args(Some("http://h:1"), None, Some("10ms"))),
            "--block"
        );
        assert_eq!(
            flag(args(Some("http://h:1"), None, Some("soon"))),
            "--block"
        );
    }
}
