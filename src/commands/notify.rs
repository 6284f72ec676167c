//! What `gate run`, `gate compare` and `gate ci` do after their verdict: `--junit FILE`, and
//! `--notify`, which tells Slack. Never fails the command: a webhook that is down or
//! misconfigured is a warning on stderr, with the webhook's secret path redacted.

use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
use crate::cli::{NotifyArgs, NotifyOn, RunArgs};
use crate::config::Plan;
use crate::publish::slack::{self, Message, Webhook};
use crate::record::RunRecord;
use crate::report::junit::Junit;
use crate::report::{Format, RunReport};
use crate::store::StoredRun;
use crate::verdict::{Verdict, evaluate_slo};

const TIMEOUT: Duration = Duration::from_secs(10);

/// After `gate compare` / `gate ci`.
pub(crate) fn verdict(
    args: &NotifyArgs,
    verdict: &Verdict,
    base: &[StoredRun],
    head: &[StoredRun],
) {
    if args.notify.is_none() {
        return;
    }
    let records = |runs: &[StoredRun]| runs.iter().map(|r| r.record.clone()).collect::<Vec<_>>();
    let message = Message::from_verdict(verdict, &records(base), &records(head), link(args));
    send(args, &message);
}

/// What `gate run` does after its report: the JUnit file, the Slack message.
pub(crate) struct AfterRun {
    notify: NotifyArgs,
    junit: Option<PathBuf>,
}

impl AfterRun {
    pub(crate) fn of(args: &RunArgs) -> AfterRun {
        AfterRun {
            notify: args.notify.clone(),
            junit: args.junit.clone(),
        }
    }

    pub(crate) fn finish(&self, plan: &Plan, record: &RunRecord) -> Result<(), Error> {
        if self.notify.notify.is_none() && self.junit.is_none() {
            return Ok(());
        }
        let slo = evaluate_slo(record, &|name| plan.thresholds_for(name));
        if let Some(path) = &self.junit {
            let report = RunReport {
                run: record,
                slo: &slo,
            };
            std::fs::write(path, Junit.render_run(&report)).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
            eprintln!("wrote JUnit XML to {}", path.display());
        }
        if self.notify.notify.is_some() {
            send(
                &self.notify,
                &Message::from_run(record, &slo, link(&self.notify)),
            );
        }
        Ok(())
    }
}

/// `--notify-link`, else this GitHub Actions run.
fn link(args: &NotifyArgs) -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    args.notify_link.clone().or_else(|| {
        Some(format!(
            "{}/{}/actions/runs/{}",
            env("GITHUB_SERVER_URL")?.trim_end_matches('/'),
            env("GITHUB_REPOSITORY")?,
            env("GITHUB_RUN_ID")?
        ))
    })
}

fn send(args: &NotifyArgs, message: &Message) {
    let Some(spec) = &args.notify else { return };
    if args.notify_on == NotifyOn::Regression && !message.failed {
        eprintln!(
            "notify: the gate passed; nothing posted (--notify-on always posts every verdict)"
        );
        return;
    }
    let result = Webhook::parse(spec).and_then(|hook| {
        slack::post(&hook, &slack::payload(message), TIMEOUT)?;
        Ok(hook)
    });
    match result {
        Ok(hook) => eprintln!("notify: posted the verdict to Slack ({})", hook.redacted()),
        Err(e) => eprintln!("warning: notify: {e} (the exit code is unaffected)"),
    }
}
