//! Git context of a run: commit, branch, merge-base with the baseline branch, dirty flag; nothing
//! else (the CI environment is read by `publish::actions`).
//! Uses the `git` command (what every CI image has) rather than a library: it honours the
//! user's config, worktrees and safe.directory rules exactly as their own git does.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Full commit hash of HEAD.
    pub commit: Option<String>,
    /// Branch name (in an Actions pull request, whose HEAD is detached, `commands` sets the PR's).
    pub branch: Option<String>,
    /// Merge-base of HEAD with the baseline branch, when both exist.
    pub merge_base: Option<String>,
    /// Uncommitted changes to tracked files.
    pub dirty: bool,
}

impl GitInfo {
    pub fn short_commit(&self) -> Option<&str> {
        self.commit.as_deref().map(short)
    }
}

pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// None when `dir` is not inside a git work tree (or git is missing).
pub fn context(dir: &Path, baseline_branch: &str) -> Option<GitInfo> {
    git(dir, &["rev-parse", "--is-inside-work-tree"]).filter(|s| s == "true")?;
    let commit = git(dir, &["rev-parse", "--verify", "-q", "HEAD"]);
    let branch = git(dir, &["symbolic-ref", "-q", "--short", "HEAD"]);
    let merge_base = commit.as_ref().and_then(|_| {
        let base = resolve(dir, baseline_branch)?;
        git(dir, &["merge-base", "HEAD", &base])
    });
    let dirty = git(dir, &["status", "--porcelain", "--untracked-files=no"]).is_some();
    Some(GitInfo {
        commit,
        branch,
        merge_base,
        dirty,
    })
}

/// Resolve a branch, tag or commit-ish to a full commit hash. Tries the name as given, then
/// `origin/NAME` (CI checkouts often have only the remote-tracking branch).
pub fn resolve(dir: &Path, name: &str) -> Option<String> {
    if name.starts_with('-') {
        return None;
    }
    git(
        dir,
        &["rev-parse", "--verify", "-q", &format!("{name}^{{commit}}")],
    )
    .or_else(|| {
        git(
            dir,
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("origin/{name}^{{commit}}"),
            ],
        )
    })
}

/// The merge-base of two commits.
pub fn merge_base(dir: &Path, a: &str, b: &str) -> Option<String> {
    git(dir, &["merge-base", a, b])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn reads_commit_branch_merge_base_and_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(context(d, "main"), None, "not a checkout");
        sh(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a"), "1").unwrap();
        sh(d, &["add", "a"]);
        sh(d, &["commit", "-q", "-m", "one"]);
        let main_commit = resolve(d, "main").unwrap();
        sh(d, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(d.join("a"), "2").unwrap();
        sh(d, &["commit", "-q", "-am", "two"]);
        // The branch is the repository's even inside an Actions PR job (`GITHUB_HEAD_REF` is
        // read by `commands`, not here).
        let info = context(d, "main").unwrap();
        assert_eq!(info.branch.as_deref(), Some("feature"));
        assert_eq!(info.merge_base.as_deref(), Some(main_commit.as_str()));
        assert_ne!(info.commit, Some(main_commit.clone()));
        assert!(!info.dirty);
        std::fs::write(d.join("a"), "3").unwrap();
        assert!(context(d, "main").unwrap().dirty);
        assert_eq!(context(d, "no-such-branch").unwrap().merge_base, None);
        assert_eq!(resolve(d, "--help"), None);
        assert_eq!(info.short_commit().unwrap().len(), 7);
    }
}
