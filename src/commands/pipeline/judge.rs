//! Compare: BASE and HEAD resolved against the history (run ids, branches, commits), the
//! baseline chosen by the suite's policy, and the verdict built from them.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::config::{self, BaselinePolicy, Overrides, Plan};
use crate::git;
use crate::record::RunRecord;
use crate::store::{HeadInfo, Store, StoredRun};
use crate::verdict::{CompareSettings, Verdict, compare::compare as compare_runs, evaluate_slo};

/// What the history needs to know of a head run to choose its baseline.
pub(crate) fn head_info(head: &RunRecord, exclude_run: Option<i64>) -> HeadInfo {
    HeadInfo {
        merge_base: head.git.as_ref().and_then(|g| g.merge_base.clone()),
        env_fingerprint: head
            .environment
            .as_ref()
            .map(|e| e.fingerprint.clone())
            .unwrap_or_default(),
        scenario_hashes: head
            .endpoints
            .iter()
            .map(|e| e.scenario_hash.clone())
            .collect(),
        exclude_run,
    }
}

/// The verdict of a saved head run against the plan's baseline branch. A first PR (no runs of
/// the baseline yet) and a PR that changed every scenario get an honest "inconclusive", not an
/// error. Returns the baseline runs too (the charts draw them).
pub(crate) fn against_baseline_branch(
    store: &Store,
    plan: &Plan,
    head: &[StoredRun],
    tolerance: Option<f64>,
    strict: bool,
) -> Result<(Verdict, Vec<StoredRun>), Error> {
    let branch = plan.baseline.branch.clone();
    let head_label = format!("head: run {}", describe(&head[0]));
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let (base, base_label) = if store.has_branch(&branch)? {
        Sides {
            store,
            cwd: &cwd,
            policy: plan.baseline.clone(),
        }
        .base(&branch, head)?
    } else {
        (
            Vec::new(),
            format!("baseline: no runs of {branch} in the history yet"),
        )
    };
    match build_verdict(
        &base,
        head,
        base_label,
        head_label.clone(),
        Some(plan),
        tolerance,
        strict,
    ) {
        Err(Error::Usage { message, .. }) => {
            let mut v = build_verdict(
                &[],
                head,
                format!("baseline: none usable on {branch}"),
                head_label,
                Some(plan),
                tolerance,
                strict,
            )?;
            v.notes.push(message);
            Ok((v, base))
        }
        other => other.map(|v| (v, base)),
    }
}

/// Compare and judge; shared by `compare`, `chart`, `ci` and `demo`. Errors only when BASE and
/// HEAD have nothing in common to compare.
pub(crate) fn build_verdict(
    base: &[StoredRun],
    head: &[StoredRun],
    base_label: String,
    head_label: String,
    plan: Option<&Plan>,
    tolerance_flag: Option<f64>,
    strict: bool,
) -> Result<Verdict, Error> {
    let base_records: Vec<RunRecord> = base.iter().map(|r| r.record.clone()).collect();
    let head_records: Vec<RunRecord> = head.iter().map(|r| r.record.clone()).collect();
    let scenario = |name: &str| plan.and_then(|p| p.scenarios.iter().find(|s| s.name == name));
    let tolerance = |name: &str| {
        tolerance_flag
            .unwrap_or_else(|| scenario(name).map_or(config::DEFAULT_TOLERANCE, |s| s.tolerance))
    };
    if !base_records.is_empty() {
        let shared = head_records.iter().flat_map(|r| &r.endpoints).any(|h| {
            base_records
                .iter()
                .flat_map(|r| &r.endpoints)
                .any(|b| b.name == h.name && b.scenario_hash == h.scenario_hash)
        });
        if !shared {
            return Err(Error::usage(
                "BASE/HEAD",
                format!(
                    "{} and {} share no scenario definition (same name and same request/expectation/load); nothing to compare",
                    base_label.trim_start_matches("baseline: "),
                    head_label.trim_start_matches("head: ")
                ),
            ));
        }
    }
    let endpoints = compare_runs(
        &base_records,
        &head_records,
        &tolerance,
        &CompareSettings::default(),
    );
    let newest_head = head_records
        .last()
        .expect("resolve_head returns at least one run");
    // gate's default checks (a dead endpoint fails) apply with or without a suite.
    let slo = Some(evaluate_slo(newest_head, &|name| {
        plan.map_or_else(Vec::new, |p| p.thresholds_for(name))
    }));
    let mut notes = Vec::new();
    if head_records
        .iter()
        .any(|r| r.git.as_ref().is_some_and(|g| g.dirty))
    {
        notes.push("HEAD was measured with uncommitted changes (dirty working tree)".into());
    }
    let delay = |r: &RunRecord| r.environment.as_ref().and_then(|e| e.timer_delay);
    let base_delays: Vec<_> = base_records.iter().filter_map(delay).collect();
    if let Some(note) = head_records
        .iter()
        .filter_map(delay)
        .max_by_key(|d| d.p99_us)
        .and_then(|h| crate::environment::busier_than_baseline(&h, &base_delays))
    {
        notes.push(note);
    }
    let fp = |r: &RunRecord| r.environment.as_ref().map(|e| e.fingerprint.clone());
    if base_records.iter().any(|b| fp(b) != fp(newest_head)) {
        notes.push("some baseline runs were measured in a different environment; differences may be the machine's".into());
    }
    Ok(Verdict {
        base: base_label,
        head: head_label,
        endpoints,
        slo,
        strict,
        notes,
        paired: None,
    })
}

/// The suite's settings (tolerances, thresholds, baseline policy), when a suite is there to
/// read. Secrets are not needed to compare, so unset `${ENV}` values are tolerated.
pub(crate) fn suite_settings(path: &Path) -> Option<Plan> {
    let (suite, scenarios) = config::read_suite(path).ok()?;
    let overrides = Overrides {
        target: Some("http://127.0.0.1:9".into()),
        ..Overrides::default()
    };
    config::build_plan(
        &path.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &overrides,
        &|name| Some(std::env::var(name).unwrap_or_default()),
    )
    .ok()
}

/// The two sides of a comparison, resolved against the history and the repository.
pub(crate) struct Sides<'a> {
    pub store: &'a Store,
    pub cwd: &'a Path,
    pub policy: BaselinePolicy,
}

fn run_id(spec: &str) -> Option<i64> {
    let digits = spec.strip_prefix('#').unwrap_or(spec);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

pub(crate) fn describe(r: &StoredRun) -> String {
    match &r.record.git {
        Some(g) => format!(
            "#{} ({} @ {}{})",
            r.id,
            g.branch.as_deref().unwrap_or("detached"),
            g.short_commit().unwrap_or("?"),
            if g.dirty { ", dirty" } else { "" }
        ),
        None => format!("#{}", r.id),
    }
}

fn unknown(spec: &str, side: &str) -> Error {
    Error::usage(
        side,
        format!(
            "`{spec}` is not a run id, a branch with runs in the history, or a commit of this repository"
        ),
    )
}

impl Sides<'_> {
    fn load(&self, ids: &[i64]) -> Result<Vec<StoredRun>, Error> {
        ids.iter()
            .map(|id| self.store.load(*id).map_err(Error::from))
            .collect()
    }

    pub(crate) fn head(&self, spec: &str) -> Result<(Vec<StoredRun>, String), Error> {
        if let Some(id) = run_id(spec) {
            let run = self.store.load(id)?;
            let label = format!("head: run {}", describe(&run));
            return Ok((vec![run], label));
        }
        if let Some(commit) = git::resolve(self.cwd, spec) {
            let ids = self.store.runs_at_commit(&commit)?;
            if ids.is_empty() {
                return Err(Error::usage(
                    "HEAD",
                    format!(
                        "no complete runs for {spec} (commit {}) in the history; run `gate run` first",
                        git::short(&commit)
                    ),
                ));
            }
            let mut runs = self.load(&ids)?;
            runs.reverse();
            // Pool only runs of the newest run's environment.
            let fp = |r: &StoredRun| r.record.environment.as_ref().map(|e| e.fingerprint.clone());
            let newest = fp(runs.last().expect("non-empty"));
            runs.retain(|r| fp(r) == newest);
            let ids: Vec<String> = runs.iter().map(|r| format!("#{}", r.id)).collect();
            let label = format!(
                "head: {} of {spec} at {} ({})",
                plural(runs.len()),
                git::short(&commit),
                ids.join(", ")
            );
            return Ok((runs, label));
        }
        if let Some(id) = self.store.latest_on_branch(spec)? {
            let run = self.store.load(id)?;
            let label = format!("head: latest run of {spec}, {}", describe(&run));
            return Ok((vec![run], label));
        }
        Err(unknown(spec, "HEAD"))
    }

    pub(crate) fn base(
        &self,
        spec: &str,
        head: &[StoredRun],
    ) -> Result<(Vec<StoredRun>, String), Error> {
        if let Some(id) = run_id(spec) {
            let run = self.store.load(id)?;
            let label = format!("baseline: run {}", describe(&run));
            return Ok((vec![run], label));
        }
        let newest = &head.last().expect("head has runs").record;
        let is_branch = self.store.has_branch(spec)?
            || git::resolve(self.cwd, &format!("refs/heads/{spec}")).is_some()
            || git::resolve(self.cwd, &format!("refs/remotes/origin/{spec}")).is_some();
        if is_branch {
            let head_commit = newest.git.as_ref().and_then(|g| g.commit.clone());
            let merge_base = match (&head_commit, git::resolve(self.cwd, spec)) {
                (Some(h), Some(b)) => git::merge_base(self.cwd, h, &b),
                _ => None,
            }
            .or_else(|| {
                newest
                    .git
                    .as_ref()
                    .and_then(|g| g.merge_base.clone())
                    .filter(|_| spec == self.policy.branch)
            });
            let info = HeadInfo {
                merge_base,
                ..head_info(newest, None)
            };
            let mut policy = self.policy.clone();
            policy.branch = spec.to_string();
            let mut selection = self.store.select_baseline(&policy, &info)?;
            let head_ids: Vec<i64> = head.iter().map(|r| r.id).collect();
            selection.runs.retain(|id| !head_ids.contains(id));
            let ids: Vec<String> = selection.runs.iter().map(|id| format!("#{id}")).collect();
            let label = if ids.is_empty() {
                selection.explanation
            } else {
                format!("{} ({})", selection.explanation, ids.join(", "))
            };
            return Ok((self.load(&selection.runs)?, label));
        }
        if let Some(commit) = git::resolve(self.cwd, spec) {
            let ids = self.store.runs_at_commit(&commit)?;
            if ids.is_empty() {
                return Err(Error::usage(
                    "BASE",
                    format!(
                        "no complete runs for {spec} (commit {}) in the history",
                        git::short(&commit)
                    ),
                ));
            }
            let mut runs = self.load(&ids)?;
            runs.reverse();
            let label = format!(
                "baseline: {} at {}",
                plural(runs.len()),
                git::short(&commit)
            );
            return Ok((runs, label));
        }
        Err(unknown(spec, "BASE"))
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 run".into()
    } else {
        format!("{n} runs")
    }
}

/// The verdict to stdout in the chosen format; shared with paired mode.
pub(crate) fn write_verdict(
    verdict: &crate::verdict::Verdict,
    format: crate::cli::CompareFormat,
    io: &mut super::Output<'_>,
) -> Result<(), Error> {
    use crate::cli::CompareFormat;
    use crate::report::{Format, json::Json, markdown::Markdown, terminal::Terminal};
    let bytes = match format {
        CompareFormat::Table => Terminal.render_verdict(verdict),
        CompareFormat::Markdown => Markdown.render_verdict(verdict),
        CompareFormat::Json => Json.render_verdict(verdict),
    };
    io.bytes(false, &bytes)
}
