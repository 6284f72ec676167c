//! Where a problem in a suite is: the error type every part of `config` reports with (file,
//! line, column and field, or the flag), and the YAML reader that locates its own errors.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// A problem with the suite, located as precisely as we know: file, line, column and field,
/// or the flag that carried the bad value.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub origin: String,
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl ConfigError {
    pub(super) fn at(
        file: &Path,
        loc: Option<Location>,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            origin: origin(file, loc),
            field: Some(field.to_string()),
            message: message.into(),
            hint: None,
        }
    }

    pub(super) fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            origin: file.display().to_string(),
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn flag(flag: &str, message: impl Into<String>) -> Self {
        ConfigError {
            origin: flag.to_string(),
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub(super) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

fn origin(file: &Path, loc: Option<Location>) -> String {
    match loc.filter(|l| l.line() > 0) {
        Some(l) => format!("{}:{}:{}", file.display(), l.line(), l.column()),
        None => file.display().to_string(),
    }
}

/// One YAML document and the name to report it by.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

pub(super) fn parse_yaml<T: serde::de::DeserializeOwned>(src: &Source) -> Result<T, ConfigError> {
    serde_saphyr::from_str(&src.text).map_err(|e| {
        let loc = e.location();
        let message = e.without_snippet().to_string();
        // saphyr's message may carry its own "at line X column Y"; we already say where.
        let mut message = message
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .trim()
            .to_string();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        ConfigError {
            origin: origin(&src.path, loc),
            field: None,
            message,
            hint: None,
        }
    })
}
