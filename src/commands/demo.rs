//! `gate demo`: the whole story on the bundled sample service, in-process, no network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::chart::ChartSize;
use crate::cli::DemoArgs;
use crate::config::{self, ConfigError, LoadModel, Overrides, Plan, Source};
use crate::demo::{DemoOptions, DemoServer, Regression};
use crate::engine::{self, EngineOptions, ProgressMode, Threads};
use crate::environment::{Environment, Sentinel};
use crate::git::GitInfo;
use crate::record::RunRecord;
use crate::report::markdown::{COMMENT_LIMIT, ChartLink, PrComment, pr_comment};
use crate::report::{Format, RunReport, terminal::Terminal};
use crate::store::Store;
use crate::units::parse_duration;
use crate::verdict::paired::{compare_paired, pairs_by_endpoint};
use crate::verdict::{Call, CompareSettings, Verdict, evaluate_slo};
use crate::{Error, Outcome};

use super::paired::{BASE_LABEL, Measured, PairedSettings, measure_blocks};
use super::pipeline::{
    ChartJob, Output, demo_sources, interrupt_flag, write_charts, write_run_charts,
};

/// Fake but well-formed commits, so the story reads like a real repository's.
const MAIN_COMMIT: &str = "3f2a1c94b7e0d5a6c8f1e2d3b4a5968778695a4b";
const PR_COMMIT: &str = "9c1e7d20a4b6c8e0f2a4b6c8d0e2f4a6b8c0d2e4";
const PR_BRANCH: &str = "feature/order-history";
const DEMO_RATE_FACTOR: f64 = 4.0;
/// Paired rounds of the PR step: 12 block pairs per endpoint, so that one pair the machine
/// turned around (a neighbour's burst inside one block) still leaves the signed-rank test
/// significant after Holm across the 4 endpoints' 8 tests (8 pairs did not: one reversed pair
/// gave p 0.008, 0.062 after Holm, on a machine whose threads waited for a CPU 80% of the time).
const DEMO_ROUNDS: u32 = 6;
/// Shortest block of the PR step: a few hundred requests at the demo's rates.
const MIN_DEMO_BLOCK: Duration = Duration::from_millis(350);

pub fn demo(args: DemoArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let duration =
        parse_duration(&args.duration).map_err(|m| ConfigError::flag("--duration", m))?;
    if duration.is_zero() {
        return Err(Error::usage("--duration", "must be above zero"));
    }
    if args.baseline_runs == 0 {
        return Err(Error::usage("--baseline-runs", "must be at least 1"));
    }
    // A private history: the demo never touches the user's `.gate/`.
    let scratch = tempfile::tempdir().map_err(|source| Error::Write {
        path: "temporary directory".into(),
        source,
    })?;
    let mut store = Store::open(&scratch.path().join("history.db"))?;

    io.println(format_args!(
        "gate demo: a pull request makes `user-orders` slower with an N+1 query. Does the gate catch it?\n"
    ))?;
    io.println(format_args!(
        "① Baseline: {} run(s) of `main` against the sample service",
        args.baseline_runs
    ))?;
    let server = start_service(io)?;
    let plan = demo_plan(&server, duration)?;
    // A fresh process is cold (page cache, statement caches, thread pools): its first run is
    // slower and noisier than the rest. Deployments get the same treatment: warm up, then measure.
    io.note(format_args!("   warming the service up (not recorded)"));
    let mut warm = plan.clone();
    for s in &mut warm.scenarios {
        s.load.duration = duration.min(Duration::from_millis(500));
    }
    measure(&warm, git_info("main", MAIN_COMMIT, None), "warm-up")?;
    let mut baseline_ids = Vec::new();
    let mut last_table = Vec::new();
    for i in 0..args.baseline_runs {
        let (record, table) = measure(&plan, git_info("main", MAIN_COMMIT, None), "demo baseline")?;
        baseline_ids.push(store.save(&record)?);
        io.note(format_args!(
            "   baseline run {}/{} saved as #{}",
            i + 1,
            args.baseline_runs,
            baseline_ids.last().unwrap_or(&0)
        ));
        last_table = table;
    }
    io.print(format_args!("{}", String::from_utf8_lossy(&last_table)))?;

    io.println(format_args!(
        "\n② The pull request `{PR_BRANCH}` deployed beside `main`: a second sample service, with --regress n-plus-one"
    ))?;
    // The PR's build runs next to main's, and gate measures both at the same moments (paired
    // mode, `gate ci --base-target`): whatever else the machine does hits both sides alike.
    let pr_server = start_service(io)?;
    pr_server.set_regression(Some(Regression::NPlusOne));
    let paired = PairedSettings {
        base_target: server.url(),
        rounds: DEMO_ROUNDS,
        block: (duration / 2).max(MIN_DEMO_BLOCK),
    };
    io.note(format_args!(
        "   measuring main and the PR side by side, both at once: {} blocks of {} ms per endpoint",
        2 * paired.rounds,
        paired.block.as_millis()
    ));
    let head_plan = Plan {
        target: config::parse_target(&pr_server.url()).map_err(|m| Error::usage("--target", m))?,
        scenarios: plan
            .scenarios
            .iter()
            .map(|s| {
                let mut s = config::ScenarioPlan {
                    target: config::parse_target(&pr_server.url())
                        .unwrap_or_else(|_| s.target.clone()),
                    ..s.clone()
                };
                // The suite's own rates, not the demo's fourfold ones: two services now share
                // the machine, and an N+1 head at four times the rate can starve the base
                // beside it (a slow build then measures two saturated services alike).
                if let LoadModel::Open { rate, .. } = &mut s.load.model {
                    *rate /= DEMO_RATE_FACTOR;
                }
                s
            })
            .collect(),
        ..plan.clone()
    };
    let base_target = plan.target.clone();
    let sentinel = Sentinel::start();
    let Measured {
        base: mut base_run,
        head: mut record,
        pairs: blocks,
        stopped,
    } = measure_blocks(
        &head_plan,
        &base_target,
        &paired,
        Threads::Auto,
        ProgressMode::Quiet,
        io,
    )?;
    let timer_delay = sentinel.finish();
    let environment = Environment {
        timer_delay,
        ..Environment::detect(Some("demo".into()))
    };
    base_run.complete = !stopped;
    record.complete = !stopped;
    base_run.label = Some(BASE_LABEL.into());
    base_run.git = Some(git_info("main", MAIN_COMMIT, None));
    base_run.environment = Some(environment.clone());
    record.label = Some("demo candidate".into());
    record.git = Some(git_info(PR_BRANCH, PR_COMMIT, Some(MAIN_COMMIT)));
    record.environment = Some(environment);
    engine::died(&base_run)?;
    engine::died(&record)?;
    let base_id = store.save(&base_run)?;
    let head_id = store.save(&record)?;
    let slo = evaluate_slo(&record, &|name| plan.thresholds_for(name));
    io.print(format_args!(
        "{}",
        String::from_utf8_lossy(&Terminal.render_run(&RunReport {
            run: &record,
            slo: &slo,
        }))
    ))?;

    io.println(format_args!(
        "\n③ gate ci --base-target <main's deployment> --target <the PR's deployment>"
    ))?;
    let tolerance = |name: &str| {
        plan.scenarios
            .iter()
            .find(|s| s.name == name)
            .map_or(config::DEFAULT_TOLERANCE, |s| s.tolerance)
    };
    let grouped = pairs_by_endpoint(&blocks);
    let endpoints = compare_paired(&grouped, &tolerance, &CompareSettings::default());
    let mut notes = Vec::new();
    if stopped {
        notes.push(
            "the paired measurement stopped early (interrupted): judged on the blocks measured"
                .into(),
        );
    }
    let verdict = Verdict {
        base: format!(
            "baseline: main at {} (run #{base_id}), measured side by side",
            &MAIN_COMMIT[..7]
        ),
        head: format!("head: run #{head_id} ({PR_BRANCH} @ {})", &PR_COMMIT[..7]),
        endpoints,
        slo: Some(slo),
        strict: false,
        notes,
        paired: Some(paired.shape()),
    };
    pr_server.shutdown();
    io.print(format_args!(
        "{}",
        String::from_utf8_lossy(&Terminal.render_verdict(&verdict))
    ))?;
    // The trend charts show main's history runs, then this PR's.
    let mut base_records: Vec<RunRecord> = baseline_ids
        .iter()
        .map(|id| store.load(*id).map(|r| r.record))
        .collect::<Result<Vec<_>, _>>()?;
    base_records.push(base_run);
    let head = [store.load(head_id)?];
    let job = ChartJob {
        history: &base_records,
        base: &base_records[base_records.len() - 1..],
        head: std::slice::from_ref(&head[0].record),
        verdict: Some(&verdict),
        plan: Some(&plan),
        endpoint: None,
        base_label: format!("base (main {})", &MAIN_COMMIT[..7]),
        head_label: format!("head ({PR_BRANCH} {})", &PR_COMMIT[..7]),
    };
    let files = write_charts(&args.charts, &job, ChartSize::default())?;
    io.println(format_args!(
        "\n④ Charts: {} PNGs in {} (an overview, and a trend and a distribution per endpoint)",
        files.len(),
        args.charts.display()
    ))?;
    llm_comparison(&server, &args.charts, io)?;
    server.shutdown();
    let caught = verdict
        .endpoints
        .iter()
        .any(|e| e.endpoint == "user-orders" && e.call == Call::Regression);
    // The comment `gate ci` would post, with the charts linked by relative path so a markdown
    // viewer opened in the charts directory shows them.
    let links: Vec<ChartLink> = files
        .iter()
        .filter_map(|f| f.file_name())
        .map(|n| ChartLink {
            file_name: n.to_string_lossy().into_owned(),
            url: n.to_string_lossy().replace(' ', "%20"),
        })
        .collect();
    let comment = pr_comment(
        &PrComment {
            verdict: &verdict,
            charts: &links,
            notices: &[],
            footer: format!("gate {} · gate demo", env!("CARGO_PKG_VERSION")),
            key: None,
            marker: true,
            head: None,
        },
        COMMENT_LIMIT,
    );
    let comment_path = args.charts.join("pr-comment.md");
    std::fs::write(&comment_path, comment).map_err(|source| Error::Write {
        path: comment_path.display().to_string(),
        source,
    })?;
    if caught {
        io.println(format_args!(
            "\nIn CI, `gate ci` would fail this pull request (exit {}) and post this comment on it\n(edited in place on every push): {}",
            verdict.outcome().code(),
            comment_path.display()
        ))?;
        Ok(Outcome::Pass)
    } else {
        io.println(format_args!(
            "\nThe regression was not caught this time: the runs were too short or too noisy for the tolerance."
        ))?;
        io.println(format_args!("Try a longer run: `gate demo --duration 5s`."))?;
        Ok(Outcome::GateFailed)
    }
}

fn start_service(io: &mut Output<'_>) -> Result<DemoServer, Error> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("constant address");
    let opts = DemoOptions {
        // A database across a network (50 µs a statement) and an upstream call (~2 ms): the
        // latencies of a real service, and what makes an N+1 expensive.
        db_latency: Some(Duration::from_micros(50)),
        latency: Some(Duration::from_millis(2)),
        jitter: Some(0.1),
        ..DemoOptions::default()
    };
    let server = DemoServer::start(addr, opts)?;
    let s = server.seed_stats();
    io.note(format_args!(
        "   sample service on {} ({} products, {} users, {} orders; seeded in {} ms)",
        server.url(),
        s.products,
        s.users,
        s.orders,
        s.seed_time.as_millis()
    ));
    Ok(server)
}

fn demo_plan(server: &DemoServer, duration: Duration) -> Result<Plan, Error> {
    let sources = demo_sources();
    let overrides = Overrides {
        target: Some(server.url()),
        duration: Some(duration),
        warmup: Some(Duration::from_millis(300)),
        only: Vec::new(),
        ..Overrides::default()
    };
    let mut plan = config::build_plan(
        "<demo suite>",
        Some(&sources[0]),
        &sources[1..],
        &overrides,
        &|name| std::env::var(name).ok(),
    )?;
    // Short runs need more arrivals per second to estimate p95 well: four times the suite's
    // rates still leaves the sample service (and its single writer) far from saturation on two
    // cores, which keeps run-to-run noise low.
    // A scenario at half the suite's rate (create-order, the write path) would get half the
    // samples and a CI too wide to call "no change" in a short run: it runs longer instead, so
    // every endpoint is judged on the same number of requests.
    let rate_of = |s: &config::ScenarioPlan| match s.load.model {
        LoadModel::Open { rate, .. } => Some(rate),
        _ => None,
    };
    let top = plan
        .scenarios
        .iter()
        .filter_map(rate_of)
        .fold(0.0_f64, f64::max);
    for s in &mut plan.scenarios {
        if let Some(rate) = rate_of(s).filter(|r| *r > 0.0) {
            s.load.duration = s.load.duration.mul_f64((top / rate).clamp(1.0, 4.0));
        }
        if let LoadModel::Open { rate, .. } = &mut s.load.model {
            *rate *= DEMO_RATE_FACTOR;
        }
    }
    Ok(plan)
}

fn git_info(branch: &str, commit: &str, merge_base: Option<&str>) -> GitInfo {
    GitInfo {
        commit: Some(commit.into()),
        branch: Some(branch.into()),
        merge_base: merge_base.map(str::to_string),
        dirty: false,
    }
}

/// One run of the demo suite, recorded as if made on `git`; returns the record and its table.
fn measure(plan: &Plan, git: GitInfo, label: &str) -> Result<(RunRecord, Vec<u8>), Error> {
    let opts = EngineOptions {
        threads: Threads::Auto,
        progress: ProgressMode::Quiet,
        cancel: interrupt_flag(),
        fault: crate::engine::Fault::from_env(),
    };
    let sentinel = Sentinel::start();
    let executed = engine::execute(plan, &opts);
    let timer_delay = sentinel.finish();
    let mut record = executed?;
    engine::died(&record)?;
    record.label = Some(label.into());
    record.environment = Some(Environment {
        timer_delay,
        ..Environment::detect(Some("demo".into()))
    });
    record.git = Some(git);
    let slo = evaluate_slo(&record, &|name| plan.thresholds_for(name));
    let table = Terminal.render_run(&RunReport {
        run: &record,
        slo: &slo,
    });
    Ok((record, table))
}

/// The LLM scenario `gate demo` runs: two mock models of the sample service compared.
const DEMO_LLM: (&str, &str) = (
    "scenarios/llm/compare.yml",
    include_str!("../../scenarios/llm/compare.yml"),
);

/// ⑤: the same engine, history record and charts for an LLM API: two mock models of the sample
/// service side by side (a few seconds: 12 short requests per model).
fn llm_comparison(
    server: &DemoServer,
    charts: &std::path::Path,
    io: &mut Output<'_>,
) -> Result<(), Error> {
    io.println(format_args!(
        "\n⑤ LLM APIs: two models of the sample service's mock provider, side by side"
    ))?;
    let overrides = Overrides {
        target: Some(server.url()),
        ..Overrides::default()
    };
    let plan = config::build_plan(
        "<demo llm scenario>",
        None,
        &[Source {
            path: PathBuf::from(DEMO_LLM.0),
            text: DEMO_LLM.1.to_string(),
        }],
        &overrides,
        &|name| std::env::var(name).ok(),
    )?;
    let opts = EngineOptions {
        threads: Threads::Auto,
        progress: ProgressMode::Quiet,
        cancel: interrupt_flag(),
        fault: crate::engine::Fault::from_env(),
    };
    let record = engine::execute(&plan, &opts)?;
    engine::died(&record)?;
    io.print(format_args!("{}", crate::report::llm::terminal(&record)))?;
    let files = write_run_charts(charts, &record, io)?;
    if let Some(f) = files.first() {
        io.println(format_args!("   chart: {}", f.display()))?;
    }
    Ok(())
}
