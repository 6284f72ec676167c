//! A verdict put where reviewers look: charts to the assets branch, the sticky comment on the
//! PR (or printed, in a dry run), and the job summary, always. What `gate ci` made and what
//! `gate publish` read from a bundle go through the same steps.
//!
//! Publishing never decides the exit code when the token simply may not write (fork PRs get a
//! read-only token): the verdict lands in the job summary and the log says why the comment is
//! missing. A GitHub failure (5xx after retries, network) is reported as an infrastructure
//! failure for the caller to weigh against the verdict.

use std::io::Write;
use std::path::{Path, PathBuf};

use http::Method;

use super::{
    Asset, GitHub, GitHubConfig, PublishError, RetryPolicy, append_summary, upload_assets,
    upsert_comment,
};
use crate::record::RunRecord;
use crate::report::markdown::{COMMENT_LIMIT, ChartLink, PrComment, comment_marker, pr_comment};
use crate::verdict::Verdict;

/// The job summary allows 1 MiB per step; the full report, untrimmed, fits far below that.
const SUMMARY_LIMIT: usize = 900_000;

/// A verdict ready to show: what `gate ci` made, or what `gate publish` read from a bundle.
pub struct Publication {
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

pub enum Destination {
    /// Print the comment to `out`.
    DryRun,
    /// No comment; the job summary only, with this notice if any.
    SummaryOnly(Option<&'static str>),
    /// Comment on this PR.
    Pr(GitHubConfig, u64),
}

/// Where a publication goes, and the writers for what it says on the way.
pub struct Publish<'a> {
    pub target: Destination,
    pub summary: Option<&'a Path>,
    pub assets_branch: &'a str,
    /// Where the charts were written, named in the summary.
    pub chart_dir: Option<&'a Path>,
}

/// Comment (or print), then append the job summary. Returns true on an infrastructure failure
/// (GitHub failing, the summary unwritable), never for a token that may not write.
pub async fn publish(
    p: &Publication,
    to: Publish<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, PublishError> {
    let mut notices = Vec::new();
    let mut infra_failure = false;
    match to.target {
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
            out.write_all(comment.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|source| PublishError::Write {
                    path: "<stdout>".into(),
                    source,
                })?;
            let _ = writeln!(err, "dry run: the comment above was not posted");
        }
        Destination::SummaryOnly(notice) => notices.extend(notice.map(String::from)),
        Destination::Pr(gh, pr) => {
            infra_failure = publish_to_pr(gh, pr, p, to.assets_branch, &mut notices, err).await;
        }
    }
    for n in &notices {
        let _ = writeln!(err, "notice: {n}");
    }
    // The job summary, always, with the notices: the one place a fork PR's verdict shows.
    if let Some(path) = to.summary {
        let links = local_links(&p.charts);
        let text = pr_comment(
            &PrComment {
                verdict: &p.verdict,
                // The summary cannot show local images; it names the files instead.
                charts: &[],
                notices: &summary_notices(&notices, &links, to.chart_dir),
                footer: p.footer.clone(),
                key: p.key.as_deref(),
                marker: true,
                head: Some(&p.head),
            },
            SUMMARY_LIMIT,
        );
        match append_summary(path, &text) {
            Ok(()) => {
                let _ = writeln!(
                    err,
                    "appended the verdict to the job summary {}",
                    path.display()
                );
            }
            Err(e) => {
                let _ = writeln!(err, "warning: {e}");
                infra_failure = true;
            }
        }
    }
    Ok(infra_failure)
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

/// Charts to the assets branch, then the sticky comment. Returns true on an infrastructure
/// failure (not a permission answer). Everything worth saying goes into `notices`.
async fn publish_to_pr(
    config: GitHubConfig,
    pr: u64,
    p: &Publication,
    assets_branch: &str,
    notices: &mut Vec<String>,
    err: &mut dyn Write,
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
        match upload_assets(&gh, assets_branch, &folder, &assets, &message).await {
            Ok(up) => {
                let _ = writeln!(
                    err,
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
    match upsert_comment(&gh, pr, &marker, &body).await {
        Ok(c) => {
            let _ = writeln!(
                err,
                "{} gate's comment on PR #{pr}{}",
                if c.created { "created" } else { "updated" },
                if c.url.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.url)
                }
            );
        }
        Err(e) => explain(&e, "no PR comment", notices),
    }
    infra
}

/// The PR must be the one whose head commit ran: a bundle cannot steer the comment elsewhere.
pub async fn check_head(gh: &GitHubConfig, pr: u64, expected: &str) -> Result<(), PublishError> {
    let client = GitHub::new(gh.clone(), RetryPolicy::default())?;
    let reply = client
        .call(
            Method::GET,
            &client.repo_path(&format!("/pulls/{pr}")),
            None,
            "read the PR",
        )
        .await?;
    let status = reply.status.as_u16();
    if status != 200 {
        return Err(PublishError::Setting {
            flag: "--pr".into(),
            message: format!("cannot read PR #{pr} (GitHub answered {status})"),
        });
    }
    let head = reply.body["head"]["sha"].as_str().unwrap_or_default();
    if head.is_empty() || !head.eq_ignore_ascii_case(expected.trim()) {
        return Err(PublishError::Setting {
            flag: "--expect-head-sha".into(),
            message: format!(
                "PR #{pr}'s head is {head}, not {expected}: refusing to post a bundle on a PR it does not belong to"
            ),
        });
    }
    Ok(())
}
