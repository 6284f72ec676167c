//! `gate publish BUNDLE`: the trusted half of the fork-safe workflow (see `publish::bundle`):
//! read the bundle a fork's `gate ci --bundle` wrote, check with `--expect-head-sha` that the PR
//! it names really is the one that ran, and post it.

use crate::cli::PublishArgs;
use crate::publish::{self, Destination, Publication, Publish};
use crate::{Error, Outcome};

use super::pipeline::{Output, actions_env, comment_key, github_config, runtime, summary_path};

pub fn publish(args: PublishArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let (bundle, charts) = publish::read_bundle(&args.bundle, &mut *io.err)?;
    let pr = args.pr.or(bundle.pr).ok_or_else(|| {
        Error::usage(
            "--pr",
            "the bundle names no PR (it came from a push build); pass --pr N",
        )
    })?;
    if pr == 0 {
        return Err(Error::usage("--pr", "PR numbers start at 1"));
    }
    let gh = github_config(&args.github, &actions_env)?;
    let rt = runtime()?;
    if let Some(expected) = &args.expect_head_sha {
        rt.block_on(publish::check_head(&gh, pr, expected))?;
    }
    let summary = summary_path(&args.github, &actions_env);
    let p = Publication {
        verdict: bundle.verdict,
        head: bundle.head,
        pr: Some(pr),
        charts,
        footer: bundle.footer,
        folder: bundle.folder,
        key: comment_key(&args.github)?,
    };
    let to = Publish {
        target: Destination::Pr(gh, pr),
        summary: summary.as_deref(),
        assets_branch: &args.github.assets_branch,
        chart_dir: None,
    };
    let infra = rt.block_on(publish::publish(&p, to, &mut *io.out, &mut *io.err))?;
    // The measuring job already failed or passed on the verdict; this one reports publishing.
    Ok(if infra {
        Outcome::Infrastructure
    } else {
        Outcome::Pass
    })
}
