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
use crate::demo::{DemoOptions, DemoServer};
use crate::engine::{self, EngineOptions, ProgressMode};
use crate::environment::Environment;
use crate::record::RunRecord;
use crate::units::parse_duration;
use crate::verdict::{Call, CompareSettings, compare::compare as compare_runs};
use crate::{Error, Outcome};

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
    if args.trials < args.baseline_runs + 1 {
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
        only: Vec::new(),
        ..Overrides::default()
    };
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
        threads: EngineOptions::default_threads(),
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
    io.print(format_args!("{report}"))?;
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
