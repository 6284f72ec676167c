//! Putting a verdict where reviewers look: one sticky PR comment (found by a hidden marker and
//! edited in place), the charts committed to an assets branch and linked by commit, the
//! Actions job summary, and the bundle that carries a fork PR's verdict to a trusted job. Also
//! reads the Actions environment (`actions`). Knows nothing of how the verdict was made.

pub mod actions;
mod assets;
mod bundle;
mod client;
mod comment;
mod http;
mod pr;
pub mod slack;
mod summary;

pub use assets::{Asset, Uploaded, upload_assets};
pub use bundle::{Bundle, read_bundle, write_bundle};
pub use client::{GitHub, RetryPolicy};
pub use comment::{CommentOutcome, upsert_comment};
pub use pr::{Destination, Publication, Publish, check_head, publish};
pub use summary::append_summary;

/// `owner/name`, as in `GITHUB_REPOSITORY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
}

impl std::str::FromStr for Repository {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        match s.split_once('/') {
            Some((owner, name)) if ok(owner) && ok(name) => Ok(Repository {
                owner: owner.into(),
                name: name.into(),
            }),
            _ => Err(format!("`{s}` is not OWNER/NAME (as in GITHUB_REPOSITORY)")),
        }
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The API token. Its `Debug` and `Display` never show the value, so no log line, error or
/// panic message can carry it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: String) -> Token {
        Token(value)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Where and as whom to publish.
#[derive(Clone, Debug)]
pub struct GitHubConfig {
    /// REST base, e.g. `https://api.github.com` or a GHES `https://HOST/api/v3` (`GITHUB_API_URL`).
    pub api_url: String,
    /// Web base for links to committed files (`GITHUB_SERVER_URL`).
    pub server_url: String,
    pub repository: Repository,
    pub token: Token,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The token may not do this here: a fork PR's read-only token, missing `permissions:`,
    /// a repository it cannot see. Not a failure of the gate: fall back to the job summary.
    #[error("cannot {what}: GitHub answered {status} ({message})")]
    Forbidden {
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("cannot {what}: rate limited: {message}")]
    RateLimited { what: &'static str, message: String },
    #[error("cannot {what}: GitHub answered {status} ({message})")]
    Api {
        what: &'static str,
        status: u16,
        message: String,
    },
    #[error("cannot {what}: {message}")]
    Network { what: &'static str, message: String },
    #[error("GitHub answered in an unexpected shape: {0}")]
    Shape(String),
    #[error("cannot set up the GitHub client: {0}")]
    Setup(String),
    /// A setting (flag, variable or bundle) that cannot be used; a usage error (exit 2).
    #[error("{flag}: {message}")]
    Setting { flag: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to the job summary {path}: {source}")]
    Summary {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl PublishError {
    /// The token lacks permission: expected on fork PRs, so gate falls back instead of failing.
    pub fn is_permission(&self) -> bool {
        matches!(self, PublishError::Forbidden { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_and_token() {
        let r: Repository = "acme/shop-api".parse().unwrap();
        assert_eq!((r.owner.as_str(), r.name.as_str()), ("acme", "shop-api"));
        assert_eq!(r.to_string(), "acme/shop-api");
        for bad in ["acme", "/x", "a/", "a/b/c", "a b/c", ""] {
            assert!(bad.parse::<Repository>().is_err(), "{bad}");
        }
        let t = Token::new("ghs_secret".into());
        assert_eq!(format!("{t:?}"), "Token(***)");
        let cfg = GitHubConfig {
            api_url: "http://127.0.0.1:1".into(),
            server_url: "http://127.0.0.1:1".into(),
            repository: r,
            token: t,
        };
        assert!(!format!("{cfg:?}").contains("ghs_secret"));
    }
}
