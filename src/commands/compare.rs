//! `gate compare BASE HEAD`: resolve both sides against the history, compare, report.

use std::path::PathBuf;

use crate::chart::ChartSize;
use crate::cli::CompareArgs;
use crate::config;
use crate::record::RunRecord;
use crate::store::Store;
use crate::{Error, Outcome};

use super::pipeline::{
    ChartJob, Output, Sides, build_verdict, print_written, suite_settings, write_charts,
    write_verdict,
};

pub fn compare(args: CompareArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let tolerance_flag = args
        .tolerance
        .as_deref()
        .map(|t| config::parse_tolerance(t).map_err(|m| Error::usage("--tolerance", m)))
        .transpose()?;
    if let Some(paired) = super::paired::PairedSettings::new(&args.paired)? {
        return super::paired::compare(args, paired, tolerance_flag, io);
    }
    let base_spec = args.base.clone().unwrap_or_default();
    let plan = suite_settings(&args.suite);
    let store = Store::open(&args.db.db)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let policy = plan
        .as_ref()
        .map(|p| p.baseline.clone())
        .unwrap_or_default();
    let sides = Sides {
        store: &store,
        cwd: &cwd,
        policy,
    };
    let (head_runs, head_label) = sides.head(&args.head)?;
    let (base_runs, base_label) = sides.base(&base_spec, &head_runs)?;
    let verdict = build_verdict(
        &base_runs,
        &head_runs,
        base_label,
        head_label,
        plan.as_ref(),
        tolerance_flag,
        args.strict,
    )?;
    super::notify::verdict(&args.notify, &verdict, &base_runs, &head_runs);
    if let Some(dir) = &args.charts {
        let base: Vec<RunRecord> = base_runs.iter().map(|r| r.record.clone()).collect();
        let head: Vec<RunRecord> = head_runs.iter().map(|r| r.record.clone()).collect();
        let job = ChartJob {
            history: &base,
            base: &base,
            head: &head,
            verdict: Some(&verdict),
            plan: plan.as_ref(),
            endpoint: None,
            base_label: format!("base ({base_spec})"),
            head_label: format!("head ({})", args.head),
        };
        let files = write_charts(dir, &job, ChartSize::default())?;
        print_written(&files, io);
    }
    write_verdict(&verdict, args.format, io)?;
    Ok(verdict.outcome())
}
