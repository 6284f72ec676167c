//! One thin file per subcommand; the steps they share (measure → save → judge → chart) live in
//! `pipeline`, which is not a subcommand. Commands write to the writers they are given, so
//! tests run them in-process.

mod calibrate;
mod chart;
mod ci;
mod compare;
mod completions;
mod dashboard;
mod demo;
mod history;
mod init;
mod merge;
mod notify;
mod paired;
mod pipeline;
mod publish;
mod run;
mod serve_demo;
#[cfg(test)]
mod tests;

pub use pipeline::Output;

use crate::cli::Command;
use crate::{Error, Outcome};

pub fn dispatch(command: Command, io: &mut Output<'_>) -> Result<Outcome, Error> {
    match command {
        Command::Run(args) => run::run(args, io),
        Command::Compare(args) => compare::compare(args, io),
        Command::Chart(args) => chart::chart(args, io),
        Command::Calibrate(args) => calibrate::calibrate(args, io),
        Command::Demo(args) => demo::demo(args, io),
        Command::ServeDemo(args) => serve_demo::serve_demo(args, io),
        Command::Ci(args) => ci::ci(args, io),
        Command::Publish(args) => publish::publish(args, io),
        Command::Merge(args) => merge::merge(args, io),
        Command::History(cmd) => history::history(cmd, io),
        Command::Dashboard(args) => dashboard::dashboard(args, io),
        Command::Init(args) => init::init(args, io),
        Command::Completions { shell } => completions::completions(shell, io),
        Command::Man { out } => completions::man(out.as_deref(), io),
    }
}
