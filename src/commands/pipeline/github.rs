//! Publish: the GitHub settings `ci` and `publish` share, from their flags and the Actions
//! environment, validated before any load is sent.

use std::path::PathBuf;

use crate::Error;
use crate::cli::GitHubArgs;
use crate::publish::GitHubConfig;
use crate::publish::actions::{self, GitHubFlags};
use crate::report::markdown::valid_comment_key;

/// The Actions environment as gate reads it: an empty variable is an unset one.
pub(crate) fn actions_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The repository, API and token to publish with.
pub(crate) fn github_config(
    a: &GitHubArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GitHubConfig, Error> {
    let flags = GitHubFlags {
        repo: a.repo.clone(),
        api_url: a.api_url.clone(),
        server_url: a.server_url.clone(),
    };
    Ok(actions::github_config(&flags, env)?)
}

/// `--comment-key`, checked: it ends up inside an HTML comment.
pub(crate) fn comment_key(a: &GitHubArgs) -> Result<Option<String>, Error> {
    match &a.comment_key {
        Some(k) if !valid_comment_key(k) => Err(Error::usage(
            "--comment-key",
            format!("`{k}`: use 1-40 letters, digits, `-`, `_` or `.`"),
        )),
        k => Ok(k.clone()),
    }
}

/// `--summary`, else `GITHUB_STEP_SUMMARY`.
pub(crate) fn summary_path(
    a: &GitHubArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    a.summary
        .clone()
        .or_else(|| env("GITHUB_STEP_SUMMARY").map(PathBuf::from))
}
