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

impl Outcome {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Print an error chain (`{:#}` style, one line) and turn the result into the process exit code.
pub fn finish(result: Result<Outcome, crate::Error>) -> ExitCode {
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
