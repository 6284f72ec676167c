//! `gate calibrate`: the gate's false-alarm rate and power, measured rather than assumed.
//!
//! A pool of runs per arm is measured in interleaved rounds (A, A+10%, A+20%, A, …) so slow
//! drift of the machine hits every arm alike. Comparisons then reuse the pool: each head run is
//! compared with many distinct K-run baseline subsets drawn from the other A runs, exactly as
//! `gate compare` would judge it. A/A comparisons count false alarms; A/B ones, detections.
//! Comparisons that share runs are correlated, so the intervals printed (Wilson, per endpoint
//! comparison) are optimistic; the pool size is printed beside them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::cli::CalibrateArgs;
use crate::config::{self, ConfigError, Overrides, Plan};
use crate::demo::{DemoOptions, DemoServer, Neighbour, NoiseShape};
use crate::engine::{self, EngineOptions, ProgressMode, Threads};
use crate::environment::Environment;
use crate::record::RunRecord;
use crate::units::parse_duration;
use crate::verdict::paired::{compare_paired, pairs_by_endpoint};
use crate::verdict::{Call, CompareSettings, compare::compare as compare_runs};
use crate::{Error, Outcome};

use super::paired::PairedSettings;
use super::pipeline::{Output, demo_sources, interrupt_flag};

/// The calibration service: a 20 ms upstream call with a log-normal spread dominates latency,
/// so scaling it by 1.1 slows p95 by about 10%.
const UPSTREAM: Duration = Duration::from_millis(20);
const UPSTREAM_SIGMA: f64 = 0.25;

#[derive(serde::Serialize, serde::Deserialize)]
struct Arm {
    name: String,
    factor: f64,
    runs: Vec<RunRecord>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pool {
    format: String,
    arms: Vec<Arm>,
}

const POOL_FORMAT: &str = "gate-calibration-pool-v1";

pub fn calibrate(args: CalibrateArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    if args.paired && args.trials == 0 {
        return Err(Error::usage("--trials", "must be at least 1"));
    }
    if !args.paired && args.trials < args.baseline_runs + 1 {
        return Err(Error::usage(
            "--trials",
            format!(
                "needs at least K+1 = {} runs per arm to form a comparison",
                args.baseline_runs + 1
            ),
        ));
    }
    if args.baseline_runs == 0 {
        return Err(Error::usage("--baseline-runs", "must be at least 1"));
    }
    if let Some(bad) = args.slowdowns.iter().find(|s| !(0.0..=10.0).contains(*s)) {
        return Err(Error::usage(
            "--slowdowns",
            format!("{bad} is not a fraction between 0 and 10"),
        ));
    }
    let flag = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| parse_duration(s).map_err(|m| ConfigError::flag(name, m)))
            .transpose()
    };
    let overrides_base = Overrides {
        target: None,
        duration: flag("--duration", &args.duration)?,
        warmup: flag("--warmup", &args.warmup)?,
        only: args.scenarios.clone(),
        ..Overrides::default()
    };
    // The neighbour runs for the whole measurement and stops when this value goes.
    let neighbour = (args.noise && args.from.is_none()).then(|| {
        Neighbour::start(
            NoiseShape {
                threads: args.noise_threads,
                ..NoiseShape::default()
            },
            0x0015_e0ff,
        )
    });
    if let Some(n) = &neighbour {
        io.note(format_args!("noise: {}", n.describe()));
    }
    if args.paired {
        return calibrate_paired(&args, overrides_base, neighbour, io);
    }
    if let Some(path) = &args.from {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage("--from", format!("cannot read {shown}: {e}")))?;
        let pool: Pool = serde_json::from_str(&text)
            .ok()
            .filter(|p: &Pool| p.format == POOL_FORMAT && !p.arms.is_empty())
            .ok_or_else(|| {
                Error::usage(
                    "--from",
                    format!("{shown} is not a calibration pool saved by --save"),
                )
            })?;
        let plan = load_plan(
            args.suite.as_ref(),
            Overrides {
                target: Some("http://127.0.0.1:9".into()),
                ..overrides_base
            },
        )?;
        io.print(format_args!(
            "{}",
            evaluate(&pool.arms, &plan, args.baseline_runs, args.subsets)
        ))?;
        return Ok(Outcome::Pass);
    }
    let server = match &args.target {
        Some(_) => None,
        None => Some(DemoServer::start(
            "127.0.0.1:0"
                .parse::<SocketAddr>()
                .expect("constant address"),
            DemoOptions {
                latency: Some(UPSTREAM),
                jitter: Some(UPSTREAM_SIGMA),
                ..DemoOptions::default()
            },
        )?),
    };
    let target = args
        .target
        .clone()
        .or_else(|| server.as_ref().map(|s| s.url()))
        .expect("one of them is set");
    let plan = load_plan(
        args.suite.as_ref(),
        Overrides {
            target: Some(target.clone()),
            ..overrides_base
        },
    )?;
    let mut arms = vec![Arm {
        name: "A (no change)".into(),
        factor: 1.0,
        runs: Vec::new(),
    }];
    if server.is_some() {
        for s in &args.slowdowns {
            arms.push(Arm {
                name: format!("A+{:.0}% upstream", s * 100.0),
                factor: 1.0 + s,
                runs: Vec::new(),
            });
        }
    } else {
        io.note(format_args!(
            "note: --target given: measuring false alarms (A/A) only"
        ));
    }
    let per_run: f64 = plan
        .scenarios
        .iter()
        .map(|s| (s.load.duration + s.load.warmup).as_secs_f64())
        .sum();
    io.note(format_args!(
        "calibrating against {target}: {} arm(s) × {} runs, ~{:.0}s per run, ~{:.0} min in all",
        arms.len(),
        args.trials,
        per_run,
        per_run * (arms.len() * args.trials) as f64 / 60.0
    ));
    let opts = EngineOptions {
        threads: Threads::Auto,
        progress: ProgressMode::Quiet,
        cancel: interrupt_flag(),
        fault: crate::engine::Fault::from_env(),
    };
    let env = Environment::detect(Some("calibration".into()));
    'rounds: for round in 0..args.trials {
        for arm in &mut arms {
            if let Some(s) = &server {
                s.set_latency_factor(arm.factor);
            }
            let mut record = engine::execute(&plan, &opts)?;
            engine::died(&record)?;
            if !record.complete {
                io.note(format_args!(
                    "interrupted: reporting the runs measured so far"
                ));
                break 'rounds;
            }
            record.environment = Some(env.clone());
            io.note(format_args!(
                "  round {}/{} {}: {}",
                round + 1,
                args.trials,
                arm.name,
                record
                    .endpoints
                    .iter()
                    .map(|e| format!("{} p95 {:.2}ms", e.name, e.latency.p95_ms))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            arm.runs.push(record);
        }
    }
    if let Some(s) = server {
        s.shutdown();
    }
    let noise = neighbour.map(|n| {
        let line = format!(
            "noise: {}, busy {:.0}% of the time\n",
            n.describe(),
            n.duty() * 100.0
        );
        n.stop();
        line
    });
    if let Some(path) = &args.save {
        let pool = Pool {
            format: POOL_FORMAT.into(),
            arms,
        };
        let bytes = serde_json::to_vec(&pool).expect("plain data serialises");
        std::fs::write(path, bytes).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
        io.note(format_args!("saved the pool to {}", path.display()));
        arms = pool.arms;
    }
    let report = evaluate(&arms, &plan, args.baseline_runs, args.subsets);
    io.print(format_args!("{report}{}", noise.unwrap_or_default()))?;
    Ok(Outcome::Pass)
}

/// What the paired comparisons of one arm found, endpoint by endpoint.
#[derive(Default)]
struct PairedTally {
    n: u64,
    regressions: u64,
    improvements: u64,
    inconclusive: u64,
    no_change: u64,
    deltas: Vec<f64>,
    widths: Vec<f64>,
    /// Per endpoint: comparisons, regressions, inconclusive calls and the Δp95s. A slowed
    /// upstream moves each endpoint's p95 by its own amount (less where the database takes
    /// a larger share), so detection is read against each endpoint's measured change.
    endpoints: std::collections::BTreeMap<String, (u64, u64, u64, Vec<f64>)>,
}

impl PairedTally {
    fn add(&mut self, c: &crate::verdict::EndpointComparison) {
        let e = self.endpoints.entry(c.endpoint.clone()).or_default();
        e.0 += 1;
        e.1 += u64::from(c.call == Call::Regression);
        e.2 += u64::from(c.call == Call::Inconclusive);
        if let Some(r) = c.p95_change {
            e.3.push(r.point);
        }
        self.n += 1;
        match c.call {
            Call::Regression => self.regressions += 1,
            Call::Improvement => self.improvements += 1,
            Call::Inconclusive => self.inconclusive += 1,
            Call::NoChange => self.no_change += 1,
        }
        if let Some(r) = c.p95_change {
            self.deltas.push(r.point);
            self.widths.push(r.ci_high - r.ci_low);
        }
    }
}

fn word(c: Call) -> &'static str {
    match c {
        Call::Regression => "regression",
        Call::Improvement => "improvement",
        Call::NoChange => "no change",
        Call::Inconclusive => "inconclusive",
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `gate calibrate --paired`: two sample services, base and head, measured side by side as
/// `gate compare --base-target` does, `--trials` times per arm with the arms interleaved
/// (A/A, A+10%, A+20%, A/A, …); head's upstream delay is scaled by each arm's factor. Every
/// comparison uses fresh blocks, so comparisons are independent (unlike history mode's pool).
fn calibrate_paired(
    args: &CalibrateArgs,
    overrides: Overrides,
    neighbour: Option<Neighbour>,
    io: &mut Output<'_>,
) -> Result<Outcome, Error> {
    let settings = PairedSettings::new(&crate::cli::PairedArgs {
        base_target: Some("http://127.0.0.1:9".into()),
        rounds: args.rounds,
        block: args.block.clone(),
    })?
    .expect("a base target is given");
    let start = || {
        DemoServer::start(
            "127.0.0.1:0"
                .parse::<SocketAddr>()
                .expect("constant address"),
            DemoOptions {
                latency: Some(UPSTREAM),
                jitter: Some(UPSTREAM_SIGMA),
                ..DemoOptions::default()
            },
        )
    };
    let (base, head) = (start()?, start()?);
    let plan = load_plan(
        args.suite.as_ref(),
        Overrides {
            target: Some(head.url()),
            ..overrides
        },
    )?;
    let base_target = config::parse_target(&base.url()).map_err(|m| Error::usage("--target", m))?;
    let mut arms: Vec<(String, f64, PairedTally)> =
        vec![("A/A (no change)".into(), 1.0, PairedTally::default())];
    for s in &args.slowdowns {
        arms.push((
            format!("A/A+{:.0}% upstream", s * 100.0),
            1.0 + s,
            PairedTally::default(),
        ));
    }
    let per_comparison: f64 = plan
        .scenarios
        .iter()
        .map(|s| (s.load.warmup + settings.block * (2 * settings.rounds)).as_secs_f64())
        .sum();
    io.note(format_args!(
        "calibrating paired mode: {} arm(s) × {} comparisons of {} scenario(s), {} rounds of 2 blocks of {}ms side by side, ~{:.0}s per comparison, ~{:.0} min in all",
        arms.len(),
        args.trials,
        plan.scenarios.len(),
        settings.rounds,
        settings.block.as_millis(),
        per_comparison,
        per_comparison * (arms.len() * args.trials) as f64 / 60.0
    ));
    let tolerance = |name: &str| {
        plan.scenarios
            .iter()
            .find(|s| s.name == name)
            .map_or(config::DEFAULT_TOLERANCE, |s| s.tolerance)
    };
    let threads = Threads::Auto;
    let mut done = 0;
    'trials: for trial in 0..args.trials {
        for (name, factor, tally) in &mut arms {
            head.set_latency_factor(*factor);
            let measured = super::paired::measure_blocks(
                &plan,
                &base_target,
                &settings,
                threads,
                ProgressMode::Quiet,
                io,
            )?;
            let (blocks, stopped) = (measured.pairs, measured.stopped);
            if stopped {
                io.note(format_args!(
                    "interrupted: reporting the comparisons finished so far"
                ));
                break 'trials;
            }
            let grouped = pairs_by_endpoint(&blocks);
            let found = compare_paired(&grouped, &tolerance, &CompareSettings::default());
            io.note(format_args!(
                "  {}/{} {name}: {}",
                trial + 1,
                args.trials,
                found
                    .iter()
                    .map(|c| match c.p95_change {
                        Some(r) => format!(
                            "{} {} {:+.1}% ({:+.1}% … {:+.1}%)",
                            c.endpoint,
                            word(c.call),
                            r.point * 100.0,
                            r.ci_low * 100.0,
                            r.ci_high * 100.0
                        ),
                        None => format!("{} {}", c.endpoint, word(c.call)),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for c in &found {
                tally.add(c);
            }
        }
        done = trial + 1;
    }
    base.shutdown();
    head.shutdown();
    let mut out = format!(
        "\npaired calibration: {done} full round(s) of the arms, comparisons of {} scenario(s) ({}), {} rounds × 2 blocks of {}ms side by side\n",
        plan.scenarios.len(),
        plan.scenarios
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        settings.rounds,
        settings.block.as_millis()
    );
    out.push_str(&format!(
        "{:<22} {:>9} {:>12} {:>7} {:>17} {:>13} {:>10} {:>12} {:>12}\n",
        "arm",
        "endpoint comparisons",
        "regressions",
        "rate",
        "95% CI (Wilson)",
        "inconclusive",
        "no change",
        "median Δp95",
        "median CI width"
    ));
    for (name, _, t) in &arms {
        let (lo, hi) =
            crate::stats::wilson(t.regressions, t.n, 1.96).unwrap_or((f64::NAN, f64::NAN));
        let (ilo, ihi) =
            crate::stats::wilson(t.inconclusive, t.n, 1.96).unwrap_or((f64::NAN, f64::NAN));
        let pct = |k: u64| 100.0 * k as f64 / t.n.max(1) as f64;
        out.push_str(&format!(
            "{:<22} {:>20} {:>12} {:>6.1}% {:>7.1}% … {:>5.1}% {:>5} {:>4.1}% ({:.1}-{:.1}%) {:>10} {:>+11.1}% {:>11.1}%\n",
            name,
            t.n,
            t.regressions,
            pct(t.regressions),
            lo * 100.0,
            hi * 100.0,
            t.inconclusive,
            pct(t.inconclusive),
            ilo * 100.0,
            ihi * 100.0,
            t.no_change,
            median(t.deltas.clone()) * 100.0,
            median(t.widths.clone()) * 100.0,
        ));
        if t.improvements > 0 {
            out.push_str(&format!(
                "{:<22} ({} improvement calls)\n",
                "", t.improvements
            ));
        }
    }
    out.push_str(
        "A/A: regressions are false alarms. A/A+x%: regressions are detections (power).\n",
    );
    out.push_str("per endpoint (a slowed upstream moves each endpoint's p95 by its own amount):\n");
    for (name, _, t) in &arms {
        for (endpoint, (n, regressions, inconclusive, deltas)) in &t.endpoints {
            out.push_str(&format!(
                "  {name:<22} {endpoint:<16} {n:>4} comparisons {regressions:>4} regressions {inconclusive:>3} inconclusive  median Δp95 {:>+6.1}%\n",
                median(deltas.clone()) * 100.0
            ));
        }
    }
    if let Some(n) = neighbour {
        out.push_str(&format!(
            "noise: {}, busy {:.0}% of the time\n",
            n.describe(),
            n.duty() * 100.0
        ));
        n.stop();
    }
    io.print(format_args!("{out}"))?;
    Ok(Outcome::Pass)
}

fn load_plan(suite: Option<&PathBuf>, overrides: Overrides) -> Result<Plan, Error> {
    let lookup = |name: &str| std::env::var(name).ok();
    let plan = match suite {
        Some(path) => {
            let (s, scenarios) = config::read_suite(path)?;
            config::build_plan(
                &path.display().to_string(),
                s.as_ref(),
                &scenarios,
                &overrides,
                &lookup,
            )?
        }
        None => {
            let sources = demo_sources();
            config::build_plan(
                "<sample suite>",
                Some(&sources[0]),
                &sources[1..],
                &overrides,
                &lookup,
            )?
        }
    };
    Ok(plan)
}

/// Judge every (head run, baseline subset) pair as `gate compare` would, and tabulate.
fn evaluate(arms: &[Arm], plan: &Plan, k: usize, subsets: usize) -> String {
    let pool = &arms[0].runs;
    let tolerance = |name: &str| {
        plan.scenarios
            .iter()
            .find(|s| s.name == name)
            .map_or(config::DEFAULT_TOLERANCE, |s| s.tolerance)
    };
    let settings = CompareSettings::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x00ca_11b8);
    let mut out = String::new();
    out.push_str(&format!(
        "\ncalibration: {} runs per arm, baseline K = {k}, up to {subsets} baseline subsets per head run\n",
        pool.len()
    ));
    out.push_str(&format!(
        "{:<22} {:>11} {:>12} {:>8} {:>17} {:>13} {:>15}\n",
        "arm",
        "comparisons",
        "regressions",
        "rate",
        "95% CI (Wilson)",
        "inconclusive",
        "median Δp95"
    ));
    for arm in arms {
        let (mut n, mut flagged, mut inconclusive) = (0u64, 0u64, 0u64);
        let mut deltas = Vec::new();
        for (h, head) in arm.runs.iter().enumerate() {
            // Baseline candidates: the A runs other than the head itself.
            let others: Vec<&RunRecord> = pool
                .iter()
                .enumerate()
                .filter(|(i, _)| arm.factor != 1.0 || *i != h)
                .map(|(_, r)| r)
                .collect();
            if others.len() < k {
                continue;
            }
            let mut seen = std::collections::HashSet::new();
            for _ in 0..subsets * 4 {
                if seen.len() >= subsets {
                    break;
                }
                let mut idx: Vec<usize> = (0..others.len()).collect();
                idx.shuffle(&mut rng);
                let mut chosen: Vec<usize> = idx[..k].to_vec();
                chosen.sort_unstable();
                if !seen.insert(chosen.clone()) {
                    continue;
                }
                let base: Vec<RunRecord> = chosen.iter().map(|i| others[*i].clone()).collect();
                for c in compare_runs(&base, std::slice::from_ref(head), &tolerance, &settings) {
                    n += 1;
                    match c.call {
                        Call::Regression => flagged += 1,
                        Call::Inconclusive => inconclusive += 1,
                        _ => {}
                    }
                    if let Some(r) = c.p95_change {
                        deltas.push(r.point);
                    }
                }
            }
        }
        deltas.sort_by(f64::total_cmp);
        let median = deltas.get(deltas.len() / 2).copied().unwrap_or(f64::NAN);
        let (lo, hi) = crate::stats::wilson(flagged, n, 1.96).unwrap_or((f64::NAN, f64::NAN));
        out.push_str(&format!(
            "{:<22} {:>11} {:>12} {:>7.1}% {:>7.1}% … {:>5.1}% {:>12.1}% {:>+14.1}%\n",
            arm.name,
            n,
            flagged,
            100.0 * flagged as f64 / n.max(1) as f64,
            lo * 100.0,
            hi * 100.0,
            100.0 * inconclusive as f64 / n.max(1) as f64,
            median * 100.0
        ));
    }
    out.push_str("A: regressions are false alarms. A+x%: regressions are detections (power).\n");
    out
}
