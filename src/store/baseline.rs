//! Baseline selection and retention, in one place.
//!
//! Selection: complete runs of the baseline branch (default `main`) measured in the same
//! environment (fingerprint) with at least one scenario of the same definition (hash) as HEAD.
//! Prefer the runs at the merge-base of HEAD with the baseline branch (what the PR branched
//! from); else the latest K (default 5). The choice is explained in words for the report.

use rusqlite::{Connection, params_from_iter};

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

pub(super) fn select(
    conn: &Connection,
    policy: &BaselinePolicy,
    head: &HeadInfo,
) -> rusqlite::Result<BaselineSelection> {
    let k = policy.runs.max(1);
    let query = |commit: Option<&str>| -> rusqlite::Result<Vec<i64>> {
        let placeholders = vec!["?"; head.scenario_hashes.len().max(1)].join(",");
        let sql = format!(
            "SELECT r.id FROM runs r
             WHERE r.git_branch = ? AND r.complete = 1 AND r.env_fingerprint = ?
               AND r.id != ? AND (? IS NULL OR r.git_commit = ?)
               AND EXISTS (SELECT 1 FROM endpoints e WHERE e.run_id = r.id AND e.scenario_hash IN ({placeholders}))
             ORDER BY r.id DESC LIMIT ?"
        );
        let mut values: Vec<rusqlite::types::Value> = vec![
            policy.branch.clone().into(),
            head.env_fingerprint.clone().into(),
            head.exclude_run.unwrap_or(-1).into(),
            commit.map(str::to_string).into(),
            commit.map(str::to_string).into(),
        ];
        if head.scenario_hashes.is_empty() {
            values.push(rusqlite::types::Value::Null);
        }
        values.extend(head.scenario_hashes.iter().map(|h| h.clone().into()));
        values.push((k as i64).into());
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut ids: Vec<i64> = stmt
            .query_map(params_from_iter(values), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
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

/// Keep the newest `keep` runs per branch (runs without a branch count as one group), and
/// never delete what a current baseline needs: the newest K complete runs of the baseline
/// branch in each environment, and the baseline-branch runs at the merge-base of any run kept on
/// another branch (an open PR's baseline).
pub(super) fn prune(
    conn: &Connection,
    keep: usize,
    policy: &BaselinePolicy,
) -> rusqlite::Result<PruneReport> {
    let doomed: Vec<(i64, Option<String>)> = conn
        .prepare(
            "SELECT id, git_commit FROM (
                 SELECT id, git_commit, git_branch,
                        row_number() OVER (PARTITION BY coalesce(git_branch, '') ORDER BY id DESC) AS rank
                 FROM runs)
             WHERE rank > ?1",
        )?
        .query_map([keep as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let protected_latest: Vec<i64> = conn
        .prepare(
            "SELECT id FROM (
                 SELECT id, row_number() OVER (PARTITION BY env_fingerprint ORDER BY id DESC) AS rank
                 FROM runs WHERE git_branch = ?1 AND complete = 1)
             WHERE rank <= ?2",
        )?
        .query_map(rusqlite::params![policy.branch, policy.runs.max(1) as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let doomed_ids: std::collections::HashSet<i64> = doomed.iter().map(|(id, _)| *id).collect();
    // Merge-bases referenced by runs that stay (on other branches).
    let needed_commits: std::collections::HashSet<String> = conn
        .prepare("SELECT id, merge_base FROM runs WHERE merge_base IS NOT NULL AND coalesce(git_branch, '') != ?1")?
        .query_map([&policy.branch], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .filter_map(Result::ok)
        .filter(|(id, _)| !doomed_ids.contains(id))
        .map(|(_, mb)| mb)
        .collect();
    let branch_of = |id: i64| -> rusqlite::Result<Option<String>> {
        conn.query_row("SELECT git_branch FROM runs WHERE id = ?1", [id], |r| {
            r.get(0)
        })
    };
    let mut report = PruneReport::default();
    let mut delete = conn.prepare("DELETE FROM runs WHERE id = ?1")?;
    for (id, commit) in doomed {
        let on_baseline_branch = branch_of(id)?.as_deref() == Some(policy.branch.as_str());
        let needed = protected_latest.contains(&id)
            || (on_baseline_branch && commit.as_ref().is_some_and(|c| needed_commits.contains(c)));
        if needed {
            report.protected += 1;
        } else {
            delete.execute([id])?;
            report.deleted += 1;
        }
    }
    Ok(report)
}
