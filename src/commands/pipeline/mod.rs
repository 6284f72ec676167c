//! The steps the subcommands share, in order: measure (run a plan, describe and print it), save
//! (the store, called directly), judge (resolve BASE and HEAD, choose the baseline, build the
//! verdict), chart (write PNG files), and the GitHub settings publishing needs. Not a
//! subcommand: `run`, `compare`, `chart`, `ci`, `publish` and `demo` are thin files that put
//! these steps together.

mod charts;
mod github;
mod judge;
mod measure;
mod output;
mod shard;
mod suite;

pub(crate) use charts::{
    ChartJob, parse_size, print_written, write_charts, write_pr_charts, write_run_charts,
};
pub(crate) use github::{actions_env, comment_key, github_config, summary_path};
pub(crate) use judge::{
    Sides, against_baseline_branch, build_verdict, head_info, suite_settings, write_verdict,
};
pub(crate) use measure::{
    RunSettings, describe_context, execute_and_report, git_context, interrupt_flag, saved_line,
};
pub use output::Output;
pub(crate) use shard::{ShardDocument, check_shard_flags, run_shard, shard_flag};
pub(crate) use suite::demo_sources;

/// A current-thread runtime for the GitHub calls of `ci` and `publish`.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, crate::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::Error::Runtime)
}
