//! gate: a performance regression gate for HTTP APIs.
//!
//! Data flows one way: scenarios → `config` (a `Plan`) → `engine` → `record::RunRecord` →
//! `verdict` → `report`. `commands` is the only place the rooms meet.

pub mod chart;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod engine;
pub mod environment;
mod error;
pub mod exit;
pub mod git;
pub mod http_date;
pub mod publish;
pub mod record;
pub mod report;
pub mod stats;
pub mod store;
pub mod verdict;

pub use error::Error;
pub use exit::Outcome;

/// Run one parsed command line.
pub fn run(cli: cli::Cli) -> Result<Outcome, Error> {
    commands::dispatch(cli.command)
}
