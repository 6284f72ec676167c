//! `--notify`: after a verdict, tell Slack. Never fails the command: a webhook that is down or
//! misconfigured is a warning on stderr, with the webhook's secret path redacted.

use std::time::Duration;

use crate::cli::{NotifyArgs, NotifyOn};
use crate::config::Plan;
use crate::publish::slack::{self, Message, Webhook};
use crate::record::RunRecord;
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

/// After `gate run`: the run's SLO checks.
pub(crate) fn run(args: &NotifyArgs, plan: &Plan, record: &RunRecord) {
    if args.notify.is_none() {
        return;
    }
    let slo = evaluate_slo(record, &|name| plan.thresholds_for(name));
    send(args, &Message::from_run(record, &slo, link(args)));
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
