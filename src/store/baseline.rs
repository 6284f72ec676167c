//! Baseline selection and retention, in one place.
//!
//! Selection: complete runs of the baseline branch (default `main`) measured in the same
//! environment (fingerprint) with at least one scenario of the same definition (hash) as HEAD.
//! Prefer the runs at the merge-base of HEAD with the baseline branch (what the PR branched
//! from); else the latest K (default 5). The choice is explained in words for the report.

use crate::config::BaselinePolicy;
use crate::git::short;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneReport {
    pub deleted: usize,
    /// Older than `--keep` but needed by a baseline, so kept.
    pub protected: usize,
}

/// What the baseline is chosen for.
#[derive(Clone, Debug, Default)]
pub struct HeadInfo {
    pub merge_base: Option<String>,
    pub env_fingerprint: String,
    pub scenario_hashes: Vec<String>,
    /// The head run itself, when it is already saved (never its own baseline).
    pub exclude_run: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BaselineSelection {
    /// Run ids, oldest first; empty when there is no comparable baseline.
    pub runs: Vec<i64>,
    /// The merge-base commit, when the runs were taken there.
    pub at_merge_base: Option<String>,
    /// "baseline: 5 runs of main at 3f2a1c9, same environment".
    pub explanation: String,
}

/// The rules, over a backend's `query(commit, k)`: the newest `k` complete runs of the baseline
/// branch in HEAD's environment with one of HEAD's scenarios (at `commit` when given), oldest
/// first.
pub(super) fn select<E>(
    policy: &BaselinePolicy,
    head: &HeadInfo,
    mut query: impl FnMut(Option<&str>, i64) -> Result<Vec<i64>, E>,
) -> Result<BaselineSelection, E> {
    let k = policy.runs.max(1) as i64;
    let mut query = |commit: Option<&str>| -> Result<Vec<i64>, E> {
        let mut ids = query(commit, k)?;
        ids.reverse();
        Ok(ids)
    };
    let branch = &policy.branch;
    if let Some(mb) = &head.merge_base {
        let ids = query(Some(mb))?;
        if !ids.is_empty() {
            return Ok(BaselineSelection {
                explanation: format!(
                    "baseline: {} of {branch} at {}, same environment",
                    runs(ids.len()),
                    short(mb)
                ),
                runs: ids,
                at_merge_base: Some(mb.clone()),
            });
        }
    }
    let ids = query(None)?;
    let where_not = head
        .merge_base
        .as_deref()
        .map(|mb| format!(" (none at the merge-base {})", short(mb)))
        .unwrap_or_default();
    let explanation = if ids.is_empty() {
        format!("no baseline: no complete run of {branch} with these scenarios in this environment")
    } else {
        format!(
            "baseline: latest {} of {branch}{where_not}, same environment",
            runs(ids.len())
        )
    };
    Ok(BaselineSelection {
        runs: ids,
        at_merge_base: None,
        explanation,
    })
}

fn runs(n: usize) -> String {
    if n == 1 {
        "1 run".into()
    } else {
        format!("{n} runs")
    }
}

/// What retention needs to know of a run.
#[derive(Clone, Debug)]
pub(super) struct PruneRow {
    pub id: i64,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub merge_base: Option<String>,
    pub env_fingerprint: String,
    pub complete: bool,
}

/// Keep the newest `keep` runs per branch (runs without a branch count as one group), and
/// never delete what a current baseline needs: the newest K complete runs of the baseline
/// branch in each environment, and the baseline-branch runs at the merge-base of any run kept on
/// another branch (an open PR's baseline). Returns the ids to delete.
pub(super) fn plan_prune(
    rows: &[PruneRow],
    keep: usize,
    policy: &BaselinePolicy,
) -> (Vec<i64>, PruneReport) {
    use std::collections::{HashMap, HashSet};
    let mut newest_first: Vec<&PruneRow> = rows.iter().collect();
    newest_first.sort_by_key(|r| std::cmp::Reverse(r.id));
    let mut per_branch: HashMap<&str, usize> = HashMap::new();
    let mut per_env: HashMap<&str, usize> = HashMap::new();
    let mut doomed = Vec::new();
    let mut protected_latest = HashSet::new();
    for r in &newest_first {
        let seen = per_branch
            .entry(r.branch.as_deref().unwrap_or(""))
            .or_default();
        *seen += 1;
        if *seen > keep {
            doomed.push(*r);
        }
        if r.complete && r.branch.as_deref() == Some(policy.branch.as_str()) {
            let seen = per_env.entry(r.env_fingerprint.as_str()).or_default();
            *seen += 1;
            if *seen <= policy.runs.max(1) {
                protected_latest.insert(r.id);
            }
        }
    }
    let doomed_ids: HashSet<i64> = doomed.iter().map(|r| r.id).collect();
    // Merge-bases referenced by runs that stay (on other branches).
    let needed_commits: HashSet<&str> = rows
        .iter()
        .filter(|r| r.branch.as_deref().unwrap_or("") != policy.branch)
        .filter(|r| !doomed_ids.contains(&r.id))
        .filter_map(|r| r.merge_base.as_deref())
        .collect();
    let mut report = PruneReport::default();
    let mut delete = Vec::new();
    for r in doomed {
        let on_baseline_branch = r.branch.as_deref() == Some(policy.branch.as_str());
        let needed = protected_latest.contains(&r.id)
            || (on_baseline_branch
                && r.commit
                    .as_deref()
                    .is_some_and(|c| needed_commits.contains(c)));
        if needed {
            report.protected += 1;
        } else {
            delete.push(r.id);
            report.deleted += 1;
        }
    }
    (delete, report)
}
