//! Exit codes: the one place they are defined (the README's "Exit codes" table mirrors this).

use std::process::ExitCode;

/// What a gate invocation ended with. The numeric values are a public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Pass = 0,
    /// The gate failed: a regression, or an SLO threshold broken.
    GateFailed = 1,
    /// Usage or bad input: a flag, a scenario file, a config value.
    BadInput = 2,
    /// Infrastructure: target unreachable, database, GitHub API, I/O.
    Infrastructure = 3,
}

/// The exit code after a second Ctrl-C: 128 + SIGINT, what shells report for a process the
/// interrupt ended. Not an `Outcome`: nothing was judged.
pub const INTERRUPTED: i32 = 130;

impl Outcome {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that knows its exit code and, perhaps, what to do about it (`crate::Error`). A trait,
/// so exit codes stay a leaf every room may name.
pub trait Failure: std::fmt::Display {
    fn outcome(&self) -> Outcome;
    fn hint(&self) -> Option<String>;
}

/// Print an error chain (`{:#}` style, one line) and turn the result into the process exit code.
pub fn finish(result: Result<Outcome, impl Failure>) -> ExitCode {
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("  hint: {hint}");
            }
            ExitCode::from(err.outcome().code())
        }
    }
}
