//! `gate ci`: what a GitHub Actions step runs on every PR. Run the suite, save it, compare with
//! the baseline branch, draw the charts, publish the verdict (sticky comment, charts on the
//! assets branch, job summary), exit per the verdict.
//!
//! A GitHub failure (5xx after retries, network) exits 3 only when the verdict itself passed,
//! so a broken API cannot hide a regression behind "infrastructure".

use std::path::{Path, PathBuf};

use crate::cli::CiArgs;
use crate::config;
use crate::publish::{self, Destination, GitHubConfig, Publication, Publish};
use crate::record::RunRecord;
use crate::report::{Format, terminal::Terminal};
use crate::store::Store;
use crate::{Error, Outcome};

use super::pipeline::{
    Output, RunSettings, actions_env, against_baseline_branch, comment_key, execute_and_report,
    github_config, runtime, saved_line, summary_path, write_pr_charts,
};

/// `CiArgs` and the Actions environment, validated before any load is sent.
struct CiSettings {
    run: RunSettings,
    pr: Option<u64>,
    dry_run: bool,
    baseline: Option<String>,
    tolerance: Option<f64>,
    strict: bool,
    /// None in a dry run, or when there is no PR to comment on.
    github: Option<GitHubConfig>,
    summary: Option<PathBuf>,
    assets_branch: String,
    charts: Option<PathBuf>,
    bundle: Option<PathBuf>,
    /// The commit GitHub built (`GITHUB_SHA`), recorded in a bundle.
    head_sha: Option<String>,
    comment_key: Option<String>,
    /// `--base-target`: paired mode instead of the history's baseline.
    paired: Option<super::paired::PairedSettings>,
    /// `--merge FILE…`: the shards' documents to merge instead of measuring.
    merge: Vec<PathBuf>,
}

impl CiSettings {
    fn new(a: CiArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<CiSettings, Error> {
        let tolerance = a
            .tolerance
            .as_deref()
            .map(|t| config::parse_tolerance(t).map_err(|m| Error::usage("--tolerance", m)))
            .transpose()?;
        let pr = a.pr.or_else(|| {
            publish::actions::pr_from_event(env("GITHUB_EVENT_PATH").as_deref().map(Path::new))
        });
        if a.pr == Some(0) {
            return Err(Error::usage("--pr", "PR numbers start at 1"));
        }
        if !a.merge.is_empty() && a.paired.base_target.is_some() {
            return Err(Error::usage(
                "--merge",
                "paired mode (--base-target) measures both sides itself: there is nothing to merge",
            ));
        }
        if a.shard.is_some() && a.paired.base_target.is_some() {
            return Err(Error::usage(
                "--shard",
                "paired mode (--base-target) measures both sides itself: it is not sharded",
            ));
        }
        let github = if a.dry_run || a.bundle.is_some() || pr.is_none() || a.shard.is_some() {
            None
        } else {
            Some(github_config(&a.github, env)?)
        };
        let key = comment_key(&a.github)?;
        let paired = super::paired::PairedSettings::new(&a.paired)?;
        let mut run = RunSettings::from_load(a.load)?;
        run.label = Some(match pr {
            Some(n) => format!("ci: PR #{n}"),
            None => "ci".into(),
        });
        run.db = Some(a.db.db);
        run.table_to_stderr = true;
        run.json = a.json;
        run.shard = super::pipeline::shard_flag(a.shard.as_deref())?;
        if run.shard.is_some() {
            // A shard measures and writes its document; `gate merge` saves and judges the whole.
            super::pipeline::check_shard_flags(&run, false)?;
            run.db = None;
        }
        Ok(CiSettings {
            run,
            pr,
            dry_run: a.dry_run,
            baseline: a.baseline.or_else(|| env("GITHUB_BASE_REF")),
            tolerance,
            strict: a.strict,
            github,
            summary: summary_path(&a.github, env),
            assets_branch: a.github.assets_branch,
            bundle: a.bundle,
            head_sha: env("GITHUB_SHA"),
            comment_key: key,
            paired,
            merge: a.merge,
            charts: (!a.no_charts).then_some(a.charts),
        })
    }
}

pub fn ci(args: CiArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let notify = args.notify.clone();
    let s = CiSettings::new(args, &actions_env)?;
    let (suite, scenarios) = config::read_suite(&s.run.suite)?;
    let merging = !s.merge.is_empty();
    let mut overrides = s.run.overrides.clone();
    if merging && overrides.target.is_none() {
        // A merge job sends no request: any target does for the plan (the shards' is recorded).
        overrides.target = Some("http://127.0.0.1:9".into());
    }
    let mut plan = config::build_plan(
        &s.run.suite.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &overrides,
        // A merge job sends no request: the suite's secrets need not be set there.
        &|name| {
            std::env::var(name)
                .ok()
                .or_else(|| merging.then(String::new))
        },
    )?;
    if let Some(branch) = &s.baseline {
        plan.baseline.branch = branch.clone();
    }
    if s.run.shard.is_some() {
        return super::pipeline::run_shard(&plan, &s.run, io);
    }
    let db = s
        .run
        .db
        .as_deref()
        .expect("ci always saves (but shards, gone above)");
    let mut store = Store::open(db)?;

    let (record, id, verdict, chart_files) = if let Some(paired) = &s.paired {
        // 1-3, paired: measure base and head side by side, save both, judge, draw.
        let m = super::paired::measure_and_judge(
            &plan,
            paired,
            &s.run,
            &mut store,
            s.tolerance,
            s.strict,
            io,
        )?;
        io.note_part(format_args!(
            "{}",
            String::from_utf8_lossy(&Terminal.render_verdict(&m.verdict))
        ));
        let head = vec![store.load(m.head_id)?];
        super::notify::verdict(&notify, &m.verdict, &[], &head);
        let files = match &s.charts {
            Some(dir) => super::paired::ci_charts(dir, &plan, &m, io)?,
            None => Vec::new(),
        };
        (m.head, m.head_id, m.verdict, files)
    } else {
        // 1. Measure (or merge the shards that measured) and save.
        let record = if merging {
            let mut run = super::merge::merged_run(&s.merge, io)?;
            run.label = s.run.label.clone();
            super::merge::report_merged(&run, Some(&plan), s.run.json.as_deref(), true, io)?;
            run
        } else {
            execute_and_report(&plan, &s.run, io)?.1
        };
        let id = store.save(&record)?;
        io.note(format_args!("{}", saved_line(id, store.path(), &record)));
        if let Some(outcome) = merging
            .then(|| super::merge::partial(&record, io))
            .flatten()
        {
            return Ok(outcome);
        }
        crate::engine::died(&record)?;
        let head = vec![store.load(id)?];

        // 2. Judge against the baseline branch.
        let (verdict, base) = against_baseline_branch(&store, &plan, &head, s.tolerance, s.strict)?;
        io.note_part(format_args!(
            "{}",
            String::from_utf8_lossy(&Terminal.render_verdict(&verdict))
        ));
        super::notify::verdict(&notify, &verdict, &[], &head);

        // 3. Charts.
        let chart_files = match &s.charts {
            Some(dir) => {
                let base: Vec<RunRecord> = base.into_iter().map(|r| r.record).collect();
                let head: Vec<RunRecord> = head.iter().map(|r| r.record.clone()).collect();
                write_pr_charts(dir, &plan, &base, &head, &verdict, io)?
            }
            None => Vec::new(),
        };
        (record, id, verdict, chart_files)
    };

    // 4. Publish, or hand over to `gate publish`.
    let publication = Publication {
        verdict,
        head: record.clone(),
        pr: s.pr,
        charts: chart_files,
        footer: footer(&record, id, s.pr),
        folder: short_uid(&record.uid),
        key: s.comment_key.clone(),
    };
    if let Some(dir) = &s.bundle {
        let head_sha = s
            .head_sha
            .clone()
            .or_else(|| record.git.as_ref().and_then(|g| g.commit.clone()));
        publish::write_bundle(dir, &publication, head_sha.as_deref())?;
        io.note(format_args!(
            "wrote the verdict bundle to {} (post it with `gate publish {}` from a trusted job)",
            dir.display(),
            dir.display()
        ));
    }
    let target = if s.dry_run {
        Destination::DryRun
    } else if s.bundle.is_some() {
        Destination::SummaryOnly(None)
    } else {
        match (&s.github, s.pr) {
            (Some(gh), Some(pr)) => Destination::Pr(gh.clone(), pr),
            _ => Destination::SummaryOnly(Some(
                "not a pull request (no pull_request event and no --pr): the verdict is in the job summary only",
            )),
        }
    };
    let to = Publish {
        target,
        summary: s.summary.as_deref(),
        assets_branch: &s.assets_branch,
        chart_dir: s.charts.as_deref(),
    };
    let infra_failure = runtime()?.block_on(publish::publish(
        &publication,
        to,
        &mut *io.out,
        &mut *io.err,
    ))?;
    let outcome = publication.verdict.outcome();
    Ok(if infra_failure && outcome == Outcome::Pass {
        Outcome::Infrastructure
    } else {
        outcome
    })
}

fn footer(record: &RunRecord, id: i64, pr: Option<u64>) -> String {
    let commit = record
        .git
        .as_ref()
        .and_then(|g| g.short_commit())
        .unwrap_or("no commit");
    let pr = pr.map(|n| format!(" · PR #{n}")).unwrap_or_default();
    format!(
        "gate {} · run #{id} at {commit}{pr} · {}",
        env!("CARGO_PKG_VERSION"),
        record.finished_at
    )
}

fn short_uid(uid: &str) -> String {
    if uid.is_empty() {
        format!("run-{}", std::process::id())
    } else {
        uid.chars().take(12).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], vars: &[(&str, &str)]) -> Result<CiSettings, Error> {
        let mut argv = vec!["gate", "ci"];
        argv.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::Ci(a) = cli.command else {
            unreachable!()
        };
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CiSettings::new(a, &move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn settings_come_from_the_actions_environment_and_flags_win() {
        let vars = [
            ("GITHUB_TOKEN", "ghs_abc"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_API_URL", "http://127.0.0.1:9/api/v3/"),
            ("GITHUB_BASE_REF", "develop"),
            ("GITHUB_STEP_SUMMARY", "/tmp/summary.md"),
        ];
        let s = settings(&["--pr", "7"], &vars).unwrap();
        let gh = s.github.unwrap();
        assert_eq!(gh.api_url, "http://127.0.0.1:9/api/v3");
        assert_eq!(gh.server_url, crate::publish::actions::DEFAULT_SERVER_URL);
        assert_eq!(gh.repository.to_string(), "acme/shop");
        assert_eq!(s.baseline.as_deref(), Some("develop"));
        assert_eq!(s.summary, Some(PathBuf::from("/tmp/summary.md")));
        assert_eq!(s.run.label.as_deref(), Some("ci: PR #7"));

        let s = settings(&["--pr", "7", "--repo", "o/r", "--baseline", "main"], &vars).unwrap();
        assert_eq!(s.github.unwrap().repository.to_string(), "o/r");
        assert_eq!(s.baseline.as_deref(), Some("main"));
    }

    #[test]
    fn what_is_missing_is_named_before_any_load() {
        let err = |args: &[&str], vars: &[(&str, &str)]| match settings(args, vars) {
            Err(Error::Usage { flag, message }) => format!("{flag}: {message}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {args:?}"),
        };
        let e = err(&["--pr", "3"], &[("GITHUB_REPOSITORY", "a/b")]);
        assert!(e.starts_with("GITHUB_TOKEN: not set"), "{e}");
        let e = err(&["--pr", "3"], &[("GITHUB_TOKEN", "t")]);
        assert!(e.starts_with("--repo: no repository"), "{e}");
        let e = err(&["--pr", "3", "--repo", "nope"], &[("GITHUB_TOKEN", "t")]);
        assert!(e.contains("not OWNER/NAME"), "{e}");
        let e = err(
            &["--pr", "3", "--api-url", "ftp://x"],
            &[("GITHUB_TOKEN", "t"), ("GITHUB_REPOSITORY", "a/b")],
        );
        assert!(e.starts_with("--api-url:"), "{e}");
        let e = err(&["--pr", "0", "--dry-run"], &[]);
        assert!(e.starts_with("--pr:"), "{e}");
        // A dry run and a push build need no token.
        assert!(settings(&["--pr", "3", "--dry-run"], &[]).is_ok());
        assert!(settings(&[], &[]).unwrap().github.is_none());
    }
}
