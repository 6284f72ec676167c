//! The GitHub Actions environment: who to publish as and where (`GITHUB_REPOSITORY`,
//! `GITHUB_TOKEN`, `GITHUB_API_URL`, `GITHUB_SERVER_URL`), the PR of the event
//! (`GITHUB_EVENT_PATH`), the PR's branch (`GITHUB_HEAD_REF`). Read here, so `git` keeps to the
//! repository and tests hand in their own variables.

use std::path::Path;

use super::{GitHubConfig, PublishError, Repository, Token};

const DEFAULT_API_URL: &str = "https://api.github.com";
pub const DEFAULT_SERVER_URL: &str = "https://github.com";

/// Flags that override the Actions variables (`--repo`, `--api-url`, `--server-url`).
#[derive(Clone, Debug, Default)]
pub struct GitHubFlags {
    pub repo: Option<String>,
    pub api_url: Option<String>,
    pub server_url: Option<String>,
}

fn setting(flag: &str, message: impl Into<String>) -> PublishError {
    PublishError::Setting {
        flag: flag.into(),
        message: message.into(),
    }
}

/// The repository, API and token to publish with, from the flags and the Actions environment.
pub fn github_config(
    a: &GitHubFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GitHubConfig, PublishError> {
    let repo = a.repo.clone().or_else(|| env("GITHUB_REPOSITORY")).ok_or_else(|| {
        setting(
            "--repo",
            "no repository to comment on: set GITHUB_REPOSITORY or --repo OWNER/NAME (or use --dry-run)",
        )
    })?;
    let repository: Repository = repo.parse().map_err(|m: String| setting("--repo", m))?;
    let token = env("GITHUB_TOKEN").ok_or_else(|| {
        setting(
            "GITHUB_TOKEN",
            "not set: gate needs a token to comment (in a workflow: `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`), or use --dry-run",
        )
    })?;
    let url = |flag: Option<String>, var: &str, default: &str, name: &str| {
        let u = flag.or_else(|| env(var)).unwrap_or_else(|| default.into());
        if u.starts_with("http://") || u.starts_with("https://") {
            Ok(u.trim_end_matches('/').to_string())
        } else {
            Err(setting(name, format!("`{u}` is not an http(s) URL")))
        }
    };
    Ok(GitHubConfig {
        api_url: url(
            a.api_url.clone(),
            "GITHUB_API_URL",
            DEFAULT_API_URL,
            "--api-url",
        )?,
        server_url: url(
            a.server_url.clone(),
            "GITHUB_SERVER_URL",
            DEFAULT_SERVER_URL,
            "--server-url",
        )?,
        repository,
        // A token pasted from a file often ends in a newline, which no header may carry.
        token: Token::new(token.trim().to_string()),
    })
}

/// The PR number from the GitHub Actions event payload (`GITHUB_EVENT_PATH`), if any.
pub fn pr_from_event(event_path: Option<&Path>) -> Option<u64> {
    let text = std::fs::read_to_string(event_path?).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["pull_request"]["number"]
        .as_u64()
        .or_else(|| v["number"].as_u64())
}

/// The PR's branch in an Actions pull request (`GITHUB_HEAD_REF`), where HEAD is detached.
pub fn head_ref(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env("GITHUB_HEAD_REF").filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_number_from_the_event_payload() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("event.json");
        std::fs::write(&p, r#"{"pull_request": {"number": 42}}"#).unwrap();
        assert_eq!(pr_from_event(Some(&p)), Some(42));
        std::fs::write(&p, r#"{"number": 7}"#).unwrap();
        assert_eq!(pr_from_event(Some(&p)), Some(7));
        std::fs::write(&p, "not json").unwrap();
        assert_eq!(pr_from_event(Some(&p)), None);
        assert_eq!(pr_from_event(None), None);
    }

    #[test]
    fn the_head_ref_only_when_set() {
        let set = |v: &'static str| move |n: &str| (n == "GITHUB_HEAD_REF").then(|| v.to_string());
        assert_eq!(head_ref(&set("feature/x")).as_deref(), Some("feature/x"));
        assert_eq!(head_ref(&set("")), None);
        assert_eq!(head_ref(&|_| None), None);
    }
}
