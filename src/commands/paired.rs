//! Paired mode (`--base-target URL`) for `gate compare` and `gate ci`: the baseline deployment
//! and HEAD's measured in alternating blocks in the same job, so whatever the machine does hits
//! both alike (docs/paired.md).
//!
//! Per scenario, `rounds` rounds of four blocks: base, head, head, base (ABBA) in even rounds and
//! head, base, base, head (BAAB) in odd ones, so neither side is systematically first after a
//! pause or last before one, and a linear drift within a round cancels. Each block is one
//! `engine::execute` of a one-scenario plan, with the target swapped for the base side. Blocks
//! next to each other form the pairs the verdict compares: (1, 2) and (3, 4) of each round.
//! Both sides are then merged exactly into one run each and saved to the history.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::PairedArgs;
use crate::config::{self, Plan};
use crate::engine::{self, EngineOptions, Threads};
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

/// 7 rounds of 2 blocks: 14 block pairs per endpoint, about 3,500 requests a side at 100/s;
/// a 4-scenario suite takes about 3 minutes (docs/paired.md, "Choosing the defaults").
pub const DEFAULT_ROUNDS: u32 = 7;
pub const DEFAULT_BLOCK: Duration = Duration::from_millis(2500);
/// Warmup of every block: enough to open connections and refill caches after the other side ran.
pub const BLOCK_WARMUP: Duration = Duration::from_millis(200);
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

/// One block: the base plan and the head plan run at the same time on two threads, so both
/// sides see the same moment of the machine (a neighbour switching on, a CPU frequency change).
/// `base_first` only decides which thread is started first.
fn side_by_side(
    base: &Plan,
    head: &Plan,
    opts: &EngineOptions,
    base_first: bool,
) -> Result<(RunRecord, RunRecord), Error> {
    let (b, h) = std::thread::scope(|scope| {
        let (first, second) = if base_first {
            (base, head)
        } else {
            (head, base)
        };
        let first = scope.spawn(|| engine::execute(first, opts));
        let second = scope.spawn(|| engine::execute(second, opts));
        let first = first.join().expect("a load thread panicked");
        let second = second.join().expect("a load thread panicked");
        if base_first {
            (first, second)
        } else {
            (second, first)
        }
    });
    Ok((b?, h?))
}

/// Measure every scenario of `plan` (its target is HEAD) beside `base_target`: `rounds` rounds of
/// two blocks, both sides at once in each block. Returns the (base, head) block pairs in order,
/// and whether the measurement stopped early (interrupted, or a block incomplete).
pub(crate) fn measure_blocks(
    plan: &Plan,
    base_target: &config::Target,
    paired: &PairedSettings,
    threads: Threads,
    progress: bool,
    io: &mut Output<'_>,
) -> Result<(Vec<(RunRecord, RunRecord)>, bool), Error> {
    let mut head_plan = plan.clone();
    for s in &mut head_plan.scenarios {
        s.load.duration = paired.block;
        s.load.warmup = BLOCK_WARMUP;
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
    let opts = EngineOptions {
        threads,
        progress: engine::ProgressMode::Quiet,
        cancel: interrupt_flag(),
        fault: engine::Fault::from_env(),
    };
    let mut blocks: Vec<(RunRecord, RunRecord)> = Vec::new();
    for (i, scenario) in head_plan.scenarios.iter().enumerate() {
        let one = |p: &Plan| Plan {
            scenarios: vec![p.scenarios[i].clone()],
            ..p.clone()
        };
        let (base_one, head_one) = (one(&base_plan), one(&head_plan));
        for round in 0..paired.rounds {
            // Two blocks per round, each measuring both sides at once; who starts first
            // alternates (base first, then head first), as ABBA did for sequential blocks.
            if progress {
                io.note(format_args!(
                    "paired: {} round {}/{}: base and head side by side, 2 blocks",
                    scenario.name,
                    round + 1,
                    paired.rounds,
                ));
            }
            for block in 0..2 {
                let base_first = (round + block) % 2 == 0;
                let (base, head) = side_by_side(&base_one, &head_one, &opts, base_first)?;
                let whole = base.complete && head.complete;
                blocks.push((base, head));
                if !whole {
                    return Ok((blocks, true));
                }
            }
        }
    }
    Ok((blocks, false))
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
    let (blocks, stopped) = measure_blocks(plan, &base_target, paired, run.threads, true, io)?;
    let timer_delay = sentinel.finish();
    let base_blocks: Vec<RunRecord> = blocks.iter().map(|(b, _)| b.clone()).collect();
    let head_blocks: Vec<RunRecord> = blocks.iter().map(|(_, h)| h.clone()).collect();

    let merged = |blocks: &[RunRecord], side: &str| -> Result<RunRecord, Error> {
        RunRecord::merge(blocks)
            .map_err(|m| Error::usage("--base-target", format!("merging the {side} blocks: {m}")))?
            .ok_or_else(|| {
                Error::usage(
                    "--base-target",
                    format!("no {side} block was measured (interrupted?)"),
                )
            })
    };
    let mut base = merged(&base_blocks, "base")?;
    let mut head = merged(&head_blocks, "head")?;
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
    let grouped = pairs_by_endpoint(&blocks);
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
