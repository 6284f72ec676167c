//! `gate merge`: the documents of a sharded run (`gate run --shard I/N --json FILE`) into one
//! run, as if one machine had sent the whole load: latency histograms added bucket by bucket
//! (so percentiles are those of every request), counts, errors, Server-Timing, TTFB, LLM tokens
//! and cost summed. Refuses shards that do not belong together (exit 2); a missing shard makes
//! the merged run partial (saved as such with --save, never a pass: exit 3). The thresholds and
//! the usual output then run on the merged run, as `gate run` does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cli::MergeArgs;
use crate::config::Plan;
use crate::engine::new_uid;
use crate::record::RunRecord;
use crate::report::{Format, RunReport, json::FORMAT_NAME, json::Json, terminal::Terminal};
use crate::store::Store;
use crate::verdict::{SloReport, evaluate_slo};
use crate::{Error, Outcome};

use super::pipeline::{Output, ShardDocument, saved_line, suite_settings};

/// One shard's document, read and checked on its own.
struct Part {
    file: PathBuf,
    index: u32,
    count: u32,
    idle: Vec<String>,
    run: RunRecord,
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

fn read_part(file: &Path) -> Result<Part, Error> {
    let bad = |m: String| Error::usage(name(file), m);
    let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot read: {e}")))?;
    let doc: ShardDocument = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a gate run document (line {}: {e})", e.line())))?;
    if doc.format != FORMAT_NAME {
        return Err(bad(format!(
            "a `{}` document, not a run (`{FORMAT_NAME}`)",
            doc.format
        )));
    }
    if doc.version != crate::record::RECORD_VERSION {
        return Err(bad(format!(
            "document version {} (this gate reads {})",
            doc.version,
            crate::record::RECORD_VERSION
        )));
    }
    let shard = doc.shard.ok_or_else(|| {
        bad(
            "not a shard's document: it was written without --shard (a whole run needs no merge)"
                .into(),
        )
    })?;
    if shard.index == 0 || shard.index > shard.count {
        return Err(bad(format!(
            "shard {}/{} is not a shard (1 to N)",
            shard.index, shard.count
        )));
    }
    Ok(Part {
        file: file.to_path_buf(),
        index: shard.index,
        count: shard.count,
        idle: shard.idle,
        run: doc.run,
    })
}

/// Refuse shards that are not parts of one run: mixed N, a shard twice, another suite, another
/// commit, another scenario definition, another choice of scenarios. Exit 2, naming both files.
fn check_together(parts: &[Part]) -> Result<(), Error> {
    let pair = |a: &Part, b: &Part| format!("{} and {}", name(&a.file), name(&b.file));
    let first = &parts[0];
    for p in &parts[1..] {
        if p.count != first.count {
            return Err(Error::usage(
                pair(first, p),
                format!(
                    "mixed shard counts: shard {}/{} and shard {}/{} are not parts of one run",
                    first.index, first.count, p.index, p.count
                ),
            ));
        }
        if p.run.suite != first.run.suite {
            return Err(Error::usage(
                pair(first, p),
                format!(
                    "different suites: `{}` and `{}`",
                    first.run.suite, p.run.suite
                ),
            ));
        }
        let commit = |r: &RunRecord| r.git.as_ref().and_then(|g| g.commit.clone());
        if commit(&p.run) != commit(&first.run) {
            let show = |c: Option<String>| {
                c.map_or("no commit (not a git checkout)".to_string(), |c| {
                    crate::git::short(&c).to_string()
                })
            };
            return Err(Error::usage(
                pair(first, p),
                format!(
                    "different commits: {} and {}",
                    show(commit(&first.run)),
                    show(commit(&p.run))
                ),
            ));
        }
    }
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[i + 1..] {
            if a.index == b.index {
                return Err(Error::usage(
                    pair(a, b),
                    format!("both are shard {}/{}", a.index, a.count),
                ));
            }
            for ea in &a.run.endpoints {
                if let Some(eb) = b.run.endpoints.iter().find(|e| e.name == ea.name)
                    && eb.scenario_hash != ea.scenario_hash
                {
                    return Err(Error::usage(
                        pair(a, b),
                        format!(
                            "different definitions of scenario `{}` (scenario hash {} and {})",
                            ea.name,
                            short_hash(&ea.scenario_hash),
                            short_hash(&eb.scenario_hash)
                        ),
                    ));
                }
            }
        }
    }
    // Every complete shard accounts for every scenario: measured, or a zero share.
    let all: BTreeSet<&str> = parts.iter().flat_map(scenarios_of).collect();
    for p in parts.iter().filter(|p| p.run.complete) {
        let mine: BTreeSet<&str> = scenarios_of(p).collect();
        if let Some(missing) = all.difference(&mine).next() {
            let other = parts
                .iter()
                .find(|o| scenarios_of(o).any(|n| n == *missing))
                .expect("the name came from some part");
            return Err(Error::usage(
                pair(other, p),
                format!(
                    "different scenarios: `{missing}` is in shard {}/{} but not in shard {}/{} (run every shard with the same --scenario flags)",
                    other.index, other.count, p.index, p.count
                ),
            ));
        }
    }
    Ok(())
}

fn scenarios_of(p: &Part) -> impl Iterator<Item = &str> {
    p.run
        .endpoints
        .iter()
        .map(|e| e.name.as_str())
        .chain(p.idle.iter().map(String::as_str))
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// The shards, checked and merged into one run (partial when a shard is missing).
pub(super) fn merged_run(files: &[PathBuf], io: &mut Output<'_>) -> Result<RunRecord, Error> {
    let mut parts = files
        .iter()
        .map(|f| read_part(f))
        .collect::<Result<Vec<Part>, Error>>()?;
    check_together(&parts)?;
    parts.sort_by_key(|p| p.index);
    let count = parts[0].count;
    let records: Vec<RunRecord> = parts.iter().map(|p| p.run.clone()).collect();
    let mut run = RunRecord::merge_shards(&records)
        .map_err(|m| Error::usage("gate merge", m))?
        .expect("at least one file (clap requires it)");
    let present: BTreeSet<u32> = parts.iter().map(|p| p.index).collect();
    for i in (1..=count).filter(|i| !present.contains(i)) {
        run.complete = false;
        run.faults.push(format!("shard {i}/{count} missing"));
    }
    for p in parts.iter().filter(|p| !p.run.complete) {
        let why = if p.run.faults.is_empty() {
            "did not finish (interrupted)"
        } else {
            "has faults"
        };
        run.faults.push(format!(
            "shard {}/{count} ({}) {why}",
            p.index,
            name(&p.file)
        ));
    }
    run.uid = new_uid();
    io.note(format_args!(
        "merged {} of {count} shard(s) of `{}`{}: {} requests",
        parts.len(),
        run.suite,
        run.git
            .as_ref()
            .and_then(|g| g.short_commit())
            .map(|c| format!(" @ {c}"))
            .unwrap_or_default(),
        run.endpoints.iter().map(|e| e.requests).sum::<u64>()
    ));
    Ok(run)
}

pub fn merge(args: MergeArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let mut run = merged_run(&args.files, io)?;
    if let Some(label) = args.label {
        run.label = Some(label);
    }
    // The history first: one that is not gate's stops us before anything is written.
    let mut store = args.save.then(|| Store::open(&args.db.db)).transpose()?;
    let plan = suite_settings(&args.suite);
    if plan.is_none() {
        io.note(format_args!(
            "note: no readable suite at {} (--suite): the merged run is checked against gate's default checks only, not your thresholds",
            args.suite.display()
        ));
    }
    let slo = report_merged(&run, plan.as_ref(), args.json.as_deref(), false, io)?;
    if let Some(store) = &mut store {
        let id = store.save(&run)?;
        io.note(format_args!("{}", saved_line(id, store.path(), &run)));
    }
    if let Some(outcome) = partial(&run, io) {
        return Ok(outcome);
    }
    Ok(slo.outcome())
}

/// A merged run with a shard missing (or unfinished) never passes: exit 3, saying why.
pub(super) fn partial(run: &RunRecord, io: &mut Output<'_>) -> Option<Outcome> {
    if run.complete {
        return None;
    }
    io.note(format_args!(
        "error: the merged run is partial, never a pass: {}",
        run.faults.join("; ")
    ));
    Some(Outcome::Infrastructure)
}

/// The merged run checked against `plan`'s thresholds, its table printed (to stderr when
/// `table_to_stderr` or when the document goes to stdout) and its document written.
pub(super) fn report_merged(
    run: &RunRecord,
    plan: Option<&Plan>,
    json: Option<&Path>,
    table_to_stderr: bool,
    io: &mut Output<'_>,
) -> Result<SloReport, Error> {
    if let Some(plan) = plan {
        for e in &run.endpoints {
            if let Some(s) = plan.scenarios.iter().find(|s| s.name == e.name)
                && s.hash != e.scenario_hash
            {
                io.note(format_args!(
                    "warning: scenario `{}` has changed since the shards ran: its thresholds are today's",
                    e.name
                ));
            }
        }
    }
    let slo = evaluate_slo(run, &|name| {
        plan.map(|p| p.thresholds_for(name)).unwrap_or_default()
    });
    let report = RunReport { run, slo: &slo };
    let json_to_stdout = json == Some(Path::new("-"));
    io.bytes(
        json_to_stdout || table_to_stderr,
        &Terminal.render_run(&report),
    )?;
    match json {
        Some(_) if json_to_stdout => io.bytes(false, &Json.render_run(&report))?,
        Some(path) => {
            std::fs::write(path, Json.render_run(&report)).map_err(|source| Error::Write {
                path: name(path),
                source,
            })?;
            io.note(format_args!("wrote {}", path.display()));
        }
        None => {}
    }
    Ok(slo)
}
