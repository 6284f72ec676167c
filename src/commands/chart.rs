//! `gate chart`: the last N runs of a branch; the newest is the head, compared with its baseline.

use std::path::PathBuf;

use crate::cli::ChartArgs;
use crate::record::RunRecord;
use crate::store::{ListFilter, Store, StoredRun};
use crate::{Error, Outcome};

use super::pipeline::{
    ChartJob, Output, build_verdict, git_context, head_info, parse_size, print_written,
    suite_settings, write_charts,
};

/// `gate chart`: the last N runs of a branch; the newest is the head, compared with its baseline.
pub fn chart(args: ChartArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let size = parse_size(&args.size)?;
    if args.last == 0 {
        return Err(Error::usage("--last", "must be at least 1"));
    }
    let store = Store::open(&args.db.db)?;
    let plan = suite_settings(&args.suite);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let policy = plan
        .as_ref()
        .map(|p| p.baseline.clone())
        .unwrap_or_default();
    let branch = args
        .branch
        .clone()
        .or_else(|| git_context(&cwd, &policy.branch).and_then(|g| g.branch))
        .unwrap_or_else(|| policy.branch.clone());
    let summaries = store.list(&ListFilter {
        branch: Some(branch.clone()),
        last: Some(args.last),
    })?;
    let mut runs: Vec<StoredRun> = summaries
        .iter()
        .filter(|s| s.complete)
        .map(|s| store.load(s.id))
        .collect::<Result<_, _>>()?;
    let Some(head) = runs.pop() else {
        return Err(Error::usage(
            "--branch",
            format!("no complete runs of `{branch}` in {}", store.path()),
        ));
    };
    let selection = store.select_baseline(&policy, &head_info(&head.record, Some(head.id)))?;
    let base: Vec<StoredRun> = selection
        .runs
        .iter()
        .map(|id| store.load(*id))
        .collect::<Result<_, _>>()?;
    let head_label = format!("head: run #{} ({branch})", head.id);
    let verdict = if base.is_empty() {
        io.note(format_args!(
            "note: {}; drawing trends only",
            selection.explanation
        ));
        None
    } else {
        build_verdict(
            &base,
            std::slice::from_ref(&head),
            selection.explanation.clone(),
            head_label.clone(),
            plan.as_ref(),
            None,
            false,
        )
        .ok()
    };
    let history: Vec<RunRecord> = runs.into_iter().map(|r| r.record).collect();
    let base_records: Vec<RunRecord> = base.into_iter().map(|r| r.record).collect();
    let job = ChartJob {
        history: &history,
        base: &base_records,
        head: std::slice::from_ref(&head.record),
        verdict: verdict.as_ref(),
        plan: plan.as_ref(),
        endpoint: args.endpoint.as_deref(),
        base_label: format!("base ({} run(s) of {})", base_records.len(), policy.branch),
        head_label: format!("head (run #{})", head.id),
    };
    let files = write_charts(&args.out, &job, size)?;
    print_written(&files, io);
    Ok(Outcome::Pass)
}
