//! The top-level error: each room's error, mapped to an exit code in one place.

use crate::exit::{Failure, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Chart(#[from] crate::chart::ChartError),
    #[error(transparent)]
    Publish(crate::publish::PublishError),
    #[error("{flag}: {message}")]
    Usage { flag: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The async runtime (GitHub calls) could not start: threads or file descriptors exhausted.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A publishing setting that cannot be used (a flag, an Actions variable, a bundle) is the
/// user's to fix: a usage error, like any other flag.
impl From<crate::publish::PublishError> for Error {
    fn from(e: crate::publish::PublishError) -> Self {
        match e {
            crate::publish::PublishError::Setting { flag, message } => {
                Error::Usage { flag, message }
            }
            e => Error::Publish(e),
        }
    }
}

impl Error {
    pub fn usage(flag: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Usage {
            flag: flag.into(),
            message: message.into(),
        }
    }

    pub fn outcome(&self) -> Outcome {
        Failure::outcome(self)
    }

    pub fn hint(&self) -> Option<String> {
        Failure::hint(self)
    }
}

impl Failure for Error {
    fn outcome(&self) -> Outcome {
        match self {
            Error::Config(_) | Error::Usage { .. } => Outcome::BadInput,
            Error::Engine(e) if e.is_bad_input() => Outcome::BadInput,
            Error::Store(e) if e.is_bad_input() => Outcome::BadInput,
            Error::Store(_) => Outcome::Infrastructure,
            Error::Engine(_)
            | Error::Demo(_)
            | Error::Write { .. }
            | Error::Runtime(_)
            | Error::Chart(_)
            | Error::Publish(_) => Outcome::Infrastructure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Error::Engine(e) => e.hint(),
            Error::Config(e) => e.hint.clone(),
            Error::Store(e) => e.hint(),
            _ => None,
        }
    }
}
