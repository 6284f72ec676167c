//! `gate ci`: what a GitHub Actions step runs on every PR. Run the suite, save it, compare with
//! the baseline branch, draw the charts, publish the verdict (sticky comment, charts on the
//! assets branch, job summary), exit per the verdict.
//!
//! Publishing never decides the exit code when the token simply may not write (fork PRs get a
//! read-only token): the verdict lands in the job summary and the log says why the comment is
//! missing. A GitHub failure (5xx after retries, network) exits 3 only when the verdict itself
//! passed, so a broken API cannot hide a regression behind "infrastructure".

use std::path::{Path, PathBuf};

use crate::cli::{CiArgs, GitHubArgs};
use crate::config;
use crate::publish::{
    self, Asset, GitHub, GitHubConfig, PublishError, Repository, RetryPolicy, Token,
};
use crate::record::RunRecord;
use crate::report::markdown::{
    COMMENT_LIMIT, ChartLink, PrComment, comment_marker, pr_comment, valid_comment_key,
};
use crate::report::{Format, terminal::Terminal};
use crate::store::{Store, StoredRun};
use crate::verdict::Verdict;
use crate::{Error, Outcome};

use super::compare::{Sides, build_verdict, describe};
use super::run::{RunSettings, execute_and_report, saved_line};

/// The job summary allows 1 MiB per step; the full report, untrimmed, fits far below that.
const SUMMARY_LIMIT: usize = 900_000;
const DEFAULT_API_URL: &str = "https://api.github.com";
const DEFAULT_SERVER_URL: &str = "https://github.com";

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
}

impl CiSettings {
    fn new(a: CiArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<CiSettings, Error> {
        let tolerance = a
            .tolerance
            .as_deref()
            .map(|t| config::parse_tolerance(t).map_err(|m| Error::usage("--tolerance", m)))
            .transpose()?;
        let pr = a.pr.or_else(|| {
            crate::git::pr_from_event(env("GITHUB_EVENT_PATH").as_deref().map(Path::new))
        });
        if a.pr == Some(0) {
            return Err(Error::usage("--pr", "PR numbers start at 1"));
        }
        let github = if a.dry_run || a.bundle.is_some() || pr.is_none() {
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
        Ok(CiSettings {
            run,
            pr,
            dry_run: a.dry_run,
            baseline: a.baseline.or_else(|| env("GITHUB_BASE_REF")),
            tolerance,
            strict: a.strict,
            github,
            summary: a
                .github
                .summary
                .or_else(|| env("GITHUB_STEP_SUMMARY").map(PathBuf::from)),
            assets_branch: a.github.assets_branch,
            bundle: a.bundle,
            head_sha: env("GITHUB_SHA"),
            comment_key: key,
            charts: (!a.no_charts).then_some(a.charts),
            paired,
        })
    }
}

/// The repository, API and token to publish with, from the flags and the Actions environment.
pub(crate) fn github_config(
    a: &GitHubArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GitHubConfig, Error> {
    let repo = a.repo.clone().or_else(|| env("GITHUB_REPOSITORY")).ok_or_else(|| {
        Error::usage(
            "--repo",
            "no repository to comment on: set GITHUB_REPOSITORY or --repo OWNER/NAME (or use --dry-run)",
        )
    })?;
    let repository: Repository = repo
        .parse()
        .map_err(|m: String| Error::usage("--repo", m))?;
    let token = env("GITHUB_TOKEN").ok_or_else(|| {
        Error::usage(
            "GITHUB_TOKEN",
            "not set: gate needs a token to comment (in a workflow: `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`), or use --dry-run",
        )
    })?;
    let url = |flag: Option<String>, var: &str, default: &str, name: &str| {
        let u = flag.or_else(|| env(var)).unwrap_or_else(|| default.into());
        if u.starts_with("http://") || u.starts_with("https://") {
            Ok(u.trim_end_matches('/').to_string())
        } else {
            Err(Error::usage(name, format!("`{u}` is not an http(s) URL")))
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

pub fn ci(args: CiArgs) -> Result<Outcome, Error> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let s = CiSettings::new(args, &env)?;
    let (suite, scenarios) = config::read_suite(&s.run.suite)?;
    let mut plan = config::build_plan(
        &s.run.suite.display().to_string(),
        suite.as_ref(),
        &scenarios,
        &s.run.overrides,
        &|name| std::env::var(name).ok(),
    )?;
    if let Some(branch) = &s.baseline {
        plan.baseline.branch = branch.clone();
    }
    let db = s.run.db.as_deref().expect("ci always saves");
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
        )?;
        eprint!(
            "{}",
            String::from_utf8_lossy(&Terminal.render_verdict(&m.verdict))
        );
        let files = match &s.charts {
            Some(dir) => super::paired::ci_charts(dir, &plan, &m)?,
            None => Vec::new(),
        };
        (m.head, m.head_id, m.verdict, files)
    } else {
        // 1. Measure and save.
        let (_, record) = execute_and_report(&plan, &s.run)?;
        let id = store.save(&record)?;
        eprintln!("{}", saved_line(id, store.path(), &record));
        crate::engine::died(&record)?;
        let head = vec![store.load(id)?];

        // 2. Judge against the baseline branch.
        let verdict = judge(&store, &plan, &head, &s)?;
        eprint!(
            "{}",
            String::from_utf8_lossy(&Terminal.render_verdict(&verdict))
        );

        // 3. Charts.
        let chart_files = match &s.charts {
            Some(dir) => charts(dir, &store, &plan, &head, &verdict)?,
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
        super::publish::write_bundle(dir, &publication, head_sha.as_deref())?;
        eprintln!(
            "wrote the verdict bundle to {} (post it with `gate publish {}` from a trusted job)",
            dir.display(),
            dir.display()
        );
    }
    let target = if s.dry_run {
        Destination::DryRun
    } else if s.bundle.is_some() {
        Destination::SummaryOnly(None)
    } else {
        match (&s.github, s.pr) {
            (Some(gh), Some(_)) => Destination::Pr(gh.clone()),
            _ => Destination::SummaryOnly(Some(
                "not a pull request (no pull_request event and no --pr): the verdict is in the job summary only",
            )),
        }
    };
    let infra_failure = publish(
        &publication,
        target,
        s.summary.as_deref(),
        &s.assets_branch,
        s.charts.as_deref(),
    )?;
    let outcome = publication.verdict.outcome();
    Ok(if infra_failure && outcome == Outcome::Pass {
        Outcome::Infrastructure
    } else {
        outcome
    })
}

/// A verdict ready to show: what `gate ci` made, or what `gate publish` read from a bundle.
pub(crate) struct Publication {
    pub verdict: Verdict,
    /// The head run (for the LLM model table).
    pub head: RunRecord,
    pub pr: Option<u64>,
    pub charts: Vec<PathBuf>,
    pub footer: String,
    /// Folder for this run's charts on the assets branch, under `pr-N/`.
    pub folder: String,
    /// `--comment-key`: which of several gate comments this is.
    pub key: Option<String>,
}

pub(crate) enum Destination {
    /// Print the comment to stdout.
    DryRun,
    /// No comment; the job summary only, with this notice if any.
    SummaryOnly(Option<&'static str>),
    Pr(GitHubConfig),
}

/// Comment (or print), then append the job summary. Returns true on an infrastructure failure
/// (GitHub failing, the summary unwritable), never for a token that may not write.
pub(crate) fn publish(
    p: &Publication,
    target: Destination,
    summary: Option<&Path>,
    assets_branch: &str,
    chart_dir: Option<&Path>,
) -> Result<bool, Error> {
    let mut notices = Vec::new();
    let mut infra_failure = false;
    match target {
        Destination::DryRun => {
            let links = local_links(&p.charts);
            let comment = pr_comment(
                &PrComment {
                    verdict: &p.verdict,
                    charts: &links,
                    notices: &notices,
                    footer: p.footer.clone(),
                    key: p.key.as_deref(),
                    marker: true,
                    head: Some(&p.head),
                },
                COMMENT_LIMIT,
            );
            print!("{comment}");
            eprintln!("dry run: the comment above was not posted");
        }
        Destination::SummaryOnly(notice) => notices.extend(notice.map(String::from)),
        Destination::Pr(gh) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Write {
                    path: "<tokio runtime>".into(),
                    source,
                })?;
            let pr = p.pr.expect("a PR destination has a PR number");
            infra_failure = runtime.block_on(publish_to_pr(gh, pr, p, assets_branch, &mut notices));
        }
    }
    for n in &notices {
        eprintln!("notice: {n}");
    }
    // The job summary, always, with the notices: the one place a fork PR's verdict shows.
    if let Some(path) = summary {
        let links = local_links(&p.charts);
        let text = pr_comment(
            &PrComment {
                verdict: &p.verdict,
                // The summary cannot show local images; it names the files instead.
                charts: &[],
                notices: &summary_notices(&notices, &links, chart_dir),
                footer: p.footer.clone(),
                key: p.key.as_deref(),
                marker: true,
                head: Some(&p.head),
            },
            SUMMARY_LIMIT,
        );
        match publish::append_summary(path, &text) {
            Ok(()) => eprintln!("appended the verdict to the job summary {}", path.display()),
            Err(e) => {
                eprintln!("warning: {e}");
                infra_failure = true;
            }
        }
    }
    Ok(infra_failure)
}

/// The verdict of this run against the baseline branch. A first PR (no runs of the baseline
/// yet) and a PR that changed every scenario get an honest "inconclusive", not an error.
fn judge(
    store: &Store,
    plan: &config::Plan,
    head: &[StoredRun],
    s: &CiSettings,
) -> Result<Verdict, Error> {
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
        s.tolerance,
        s.strict,
    ) {
        Err(Error::Usage { message, .. }) => {
            let mut v = build_verdict(
                &[],
                head,
                format!("baseline: none usable on {branch}"),
                head_label,
                Some(plan),
                s.tolerance,
                s.strict,
            )?;
            v.notes.push(message);
            Ok(v)
        }
        other => other,
    }
}

fn charts(
    dir: &Path,
    store: &Store,
    plan: &config::Plan,
    head: &[StoredRun],
    verdict: &Verdict,
) -> Result<Vec<PathBuf>, Error> {
    // Start from an empty directory, so only this run's charts are attached.
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let branch = plan.baseline.branch.clone();
    let base: Vec<RunRecord> = if store.has_branch(&branch)? {
        let (runs, _) = Sides {
            store,
            cwd: &cwd,
            policy: plan.baseline.clone(),
        }
        .base(&branch, head)?;
        runs.into_iter().map(|r| r.record).collect()
    } else {
        Vec::new()
    };
    let head: Vec<RunRecord> = head.iter().map(|r| r.record.clone()).collect();
    let job = super::charts::ChartJob {
        history: &base,
        base: &base,
        head: &head,
        verdict: Some(verdict),
        plan: Some(plan),
        endpoint: None,
        base_label: format!("base ({branch})"),
        head_label: "head (this PR)".into(),
    };
    let mut files = super::charts::write_charts(dir, &job, crate::chart::ChartSize::default())?;
    // Ramps are drawn from the head run alone (latency and throughput per step, the knee).
    if let Some(run) = head
        .last()
        .filter(|r| !crate::verdict::ramp::ramps(r).is_empty())
    {
        for f in super::charts::write_run_charts(dir, run)? {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    super::charts::print_written(&files);
    Ok(files)
}

fn local_links(files: &[PathBuf]) -> Vec<ChartLink> {
    files
        .iter()
        .map(|p| ChartLink {
            file_name: file_name(p),
            url: p.display().to_string().replace(' ', "%20"),
        })
        .collect()
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn summary_notices(notices: &[String], links: &[ChartLink], dir: Option<&Path>) -> Vec<String> {
    let mut out = notices.to_vec();
    if let (Some(dir), false) = (dir, links.is_empty()) {
        out.push(format!(
            "{} chart(s) written to {} (upload it as a workflow artifact to keep them)",
            links.len(),
            dir.display()
        ));
    }
    out
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

/// Charts to the assets branch, then the sticky comment. Returns true on an infrastructure
/// failure (not a permission answer). Everything worth saying goes into `notices`.
async fn publish_to_pr(
    config: GitHubConfig,
    pr: u64,
    p: &Publication,
    assets_branch: &str,
    notices: &mut Vec<String>,
) -> bool {
    let repo = config.repository.to_string();
    let gh = match GitHub::new(config, RetryPolicy::default()) {
        Ok(gh) => gh,
        Err(e) => {
            notices.push(format!("no PR comment: {e}"));
            return true;
        }
    };
    let mut infra = false;
    let mut explain = |e: &PublishError, what: &str, notices: &mut Vec<String>| {
        if e.is_permission() {
            notices.push(format!(
                "{what}: the token cannot write to {repo} ({e}). Fork PRs get a read-only token; see the README's fork-safe workflow."
            ));
        } else {
            infra = true;
            notices.push(format!("{what}: {e}"));
        }
    };

    let mut links = Vec::new();
    if !p.charts.is_empty() {
        let mut assets = Vec::new();
        for path in &p.charts {
            match std::fs::read(path) {
                Ok(bytes) => assets.push(Asset {
                    file_name: file_name(path),
                    bytes,
                }),
                Err(e) => notices.push(format!("chart {} unreadable: {e}", path.display())),
            }
        }
        let folder = format!("pr-{pr}/{}", p.folder);
        let message = format!("gate: charts for PR #{pr}");
        match publish::upload_assets(&gh, assets_branch, &folder, &assets, &message).await {
            Ok(up) => {
                eprintln!(
                    "committed {} chart(s) to {assets_branch}@{}",
                    up.links.len(),
                    crate::git::short(&up.commit)
                );
                links = up
                    .links
                    .into_iter()
                    .map(|(file_name, url)| ChartLink { file_name, url })
                    .collect();
            }
            Err(e) => explain(&e, "charts not attached", notices),
        }
    }
    let body = pr_comment(
        &PrComment {
            verdict: &p.verdict,
            charts: &links,
            notices,
            footer: p.footer.clone(),
            key: p.key.as_deref(),
            marker: true,
            head: Some(&p.head),
        },
        COMMENT_LIMIT,
    );
    let marker = comment_marker(p.key.as_deref());
    match publish::upsert_comment(&gh, pr, &marker, &body).await {
        Ok(c) => eprintln!(
            "{} gate's comment on PR #{pr}{}",
            if c.created { "created" } else { "updated" },
            if c.url.is_empty() {
                String::new()
            } else {
                format!(": {}", c.url)
            }
        ),
        Err(e) => explain(&e, "no PR comment", notices),
    }
    infra
}

pub(crate) fn short_uid(uid: &str) -> String {
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
        assert_eq!(gh.server_url, DEFAULT_SERVER_URL);
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
