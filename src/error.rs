//! The top-level error: each room's error, mapped to an exit code in one place.

use crate::exit::Outcome;

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
    Publish(#[from] crate::publish::PublishError),
    #[error("{flag}: {message}")]
    Usage { flag: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn usage(flag: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Usage {
            flag: flag.into(),
            message: message.into(),
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Config(_) | Error::Usage { .. } => Outcome::BadInput,
            Error::Engine(e) if e.is_bad_input() => Outcome::BadInput,
            Error::Store(e) if e.is_bad_input() => Outcome::BadInput,
            Error::Store(_) => Outcome::Infrastructure,
            Error::Engine(_)
            | Error::Demo(_)
            | Error::Write { .. }
            | Error::Chart(_)
            | Error::Publish(_) => Outcome::Infrastructure,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Engine(e) => e.hint(),
            Error::Config(e) => e.hint.clone(),
            Error::Store(e) => e.hint(),
            _ => None,
        }
    }
}
