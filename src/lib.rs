//! gate: a performance regression gate for HTTP APIs.
//!
//! Data flows one way: scenarios → `config` (a `Plan`) → `engine` → `record::RunRecord` →
//! `verdict` → `report`. `commands` is the only place the rooms meet.

#[cfg(test)]
mod architecture;
pub mod chart;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod demo;
#[cfg(test)]
mod docs_examples;
pub mod engine;
pub mod environment;
mod error;
pub mod exit;
pub mod git;
pub mod hash;
pub mod http_date;
pub mod init;
pub mod names;
pub mod provider;
pub mod publish;
pub mod record;
pub mod report;
pub mod stats;
pub mod store;
pub mod units;
pub mod verdict;

pub use error::Error;
pub use exit::Outcome;

/// Run one parsed command line, writing to the process's stdout and stderr.
pub fn run(cli: cli::Cli) -> Result<Outcome, Error> {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    run_with(
        cli,
        &mut commands::Output {
            out: &mut out,
            err: &mut err,
        },
    )
}

/// Run one parsed command line, writing to the given writers (tests read them).
pub fn run_with(cli: cli::Cli, io: &mut commands::Output<'_>) -> Result<Outcome, Error> {
    commands::dispatch(cli.command, io)
}
