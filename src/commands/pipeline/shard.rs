//! Shard: one machine's share of a suite's load (`gate run --shard I/N`, `gate ci --shard I/N`),
//! measured and written as a document for `gate merge`, neither judged nor saved: a share of the
//! load says nothing about the thresholds, which hold for the whole.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::measure::{RunSettings, describe_context, interrupt_flag};
use super::output::Output;
use crate::config::{self, Plan, Shard, ShardError};
use crate::engine::{self, EngineOptions};
use crate::environment::Sentinel;
use crate::record::{RECORD_VERSION, RunRecord};
use crate::report::{cells, json::FORMAT_NAME};
use crate::verdict::EndpointSlo;
use crate::{Error, Outcome};

/// A run document (`gate run --json`) as `gate merge` reads it, and as a shard writes it: the
/// same `format`, `version` and `run`, plus `shard`; a shard's `pass` is null (not judged) and
/// it has no `slo`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ShardDocument {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub pass: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    pub run: RunRecord,
}

/// Which shard wrote a document, and the scenarios it had no share of.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// Scenarios whose share was 0 on this shard (nothing sent, on purpose).
    #[serde(default)]
    pub idle: Vec<String>,
}

/// `--shard`, parsed; a bad Kubernetes variable is named as the variable, not the flag.
pub(crate) fn parse_shard(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Shard, Error> {
    Shard::parse(text, env).map_err(|e| match e {
        ShardError::Flag(m) => Error::usage("--shard", m),
        ShardError::Variable(m) => Error::usage(config::shard::K8S_INDEX_VAR, m),
    })
}

/// `--shard`, if given, with the process environment (`k8s/N`).
pub(crate) fn shard_flag(text: Option<&str>) -> Result<Option<Shard>, Error> {
    text.map(|t| parse_shard(t, &|name| std::env::var(name).ok()))
        .transpose()
}

/// The flags a shard needs, and those it cannot honour.
pub(crate) fn check_shard_flags(settings: &RunSettings, junit: bool) -> Result<(), Error> {
    if settings.json.is_none() {
        return Err(Error::usage(
            "--shard",
            "a shard's document is what `gate merge` reads: add --json FILE (e.g. --json shard-1.json)",
        ));
    }
    if junit {
        return Err(Error::usage(
            "--junit",
            "a shard is not judged (its share of the load says nothing about the thresholds): check the merged run, `gate merge`",
        ));
    }
    Ok(())
}

/// Send this shard's share of `plan`, print its table, write its document. Exit 0 when it
/// measured, 3 when it did not (target unreachable, interrupted, a load thread died).
pub(crate) fn run_shard(
    plan: &Plan,
    settings: &RunSettings,
    io: &mut Output<'_>,
) -> Result<Outcome, Error> {
    let shard = settings
        .shard
        .expect("run_shard is called for --shard runs");
    let split = config::split_plan(plan, shard);
    io.note(format_args!(
        "shard {shard}: sending its share of {} scenario(s); not judged, not saved (merge the shards with `gate merge`)",
        split.plan.scenarios.len()
    ));
    for name in &split.idle {
        io.note(format_args!(
            "shard {shard}: `{name}` has fewer users or requests than there are shards: nothing sent for it here"
        ));
    }
    let opts = EngineOptions {
        threads: settings.threads,
        progress: settings.progress,
        cancel: interrupt_flag(),
        fault: engine::Fault::from_env(),
    };
    let sentinel = Sentinel::start();
    let executed = engine::execute_with(&split.plan, &opts, true);
    let timer_delay = sentinel.finish();
    let mut record = executed?;
    record.label = settings.label.clone();
    describe_context(&mut record, plan, settings.env_tag.clone(), timer_delay);

    let table = shard_table(&record, shard);
    let doc = ShardDocument {
        format: FORMAT_NAME.into(),
        version: RECORD_VERSION,
        pass: None,
        shard: Some(ShardInfo {
            index: shard.index,
            count: shard.count,
            idle: split.idle,
        }),
        run: record,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("plain data always serialises");
    bytes.push(b'\n');
    let path = settings
        .json
        .as_deref()
        .expect("checked: a shard has --json");
    if path == Path::new("-") {
        io.bytes(true, &table)?;
        io.bytes(false, &bytes)?;
    } else {
        io.bytes(settings.table_to_stderr, &table)?;
        write_whole(path, &bytes)?;
        io.note(format_args!(
            "wrote {}: shard {shard}'s document, for `gate merge`",
            path.display()
        ));
    }
    engine::died(&doc.run)?;
    if !doc.run.complete {
        io.note(format_args!(
            "shard {shard} did not finish: its document is marked partial, and so will the merged run be"
        ));
        return Ok(Outcome::Infrastructure);
    }
    Ok(Outcome::Pass)
}

/// What a shard measured, one line per endpoint, without a verdict: the thresholds hold for the
/// merged run, not for a share of the load.
fn shard_table(run: &RunRecord, shard: Shard) -> Vec<u8> {
    let unjudged = |name: &str| EndpointSlo {
        endpoint: name.to_string(),
        checks: Vec::new(),
        pass: true,
    };
    let rows: Vec<[String; 7]> = run
        .endpoints
        .iter()
        .map(|e| {
            let c = cells::run_row(e, &unjudged(&e.name));
            let load = match (e.load.users, e.load.rate_per_s) {
                (Some(u), _) => format!("{u} users"),
                (None, Some(r)) => format!("{r:.1}/s"),
                (None, None) => String::new(),
            };
            [
                e.name.clone(),
                load,
                e.requests.to_string(),
                c.p50,
                c.p95,
                c.p99,
                format!("{} · errors {}", c.throughput, c.errors),
            ]
        })
        .collect();
    let header = [
        "Endpoint",
        "Share",
        "Requests",
        "p50",
        "p95",
        "p99",
        "Throughput",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "shard {shard} (not judged: `gate merge` checks the thresholds on the merged run)\n"
    );
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if !run.complete {
        out.push_str("⚠️  the shard was interrupted: its document is marked partial\n");
    }
    out.into_bytes()
}

/// Write `bytes` to `path` whole or not at all (a temporary file beside it, renamed), so a merge
/// waiting for the shards' documents on a shared volume never reads half of one.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let failed = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(e)
    })
}
