//! `gate history list | show | prune | export | import | copy`.

use std::io::Read;

use crate::cli::HistoryCommand;
use crate::config::BaselinePolicy;
use crate::report::history as view;
use crate::store::{Export, ListFilter, Store};
use crate::{Error, Outcome};

use super::pipeline::Output;

pub fn history(cmd: HistoryCommand, io: &mut Output<'_>) -> Result<Outcome, Error> {
    match cmd {
        HistoryCommand::List { db, branch, last } => {
            let store = Store::open(&db.db)?;
            let runs = store.list(&ListFilter {
                branch: branch.clone(),
                last: Some(last),
            })?;
            if runs.is_empty() {
                let scope = branch
                    .map(|b| format!(" of branch {b}"))
                    .unwrap_or_default();
                io.println(format_args!("no runs{scope} in {}", store.path()))?;
            } else {
                io.print(format_args!("{}", view::list(&runs)))?;
            }
        }
        HistoryCommand::Show { db, run } => {
            let store = Store::open(&db.db)?;
            let stored = store.load(run)?;
            io.print(format_args!("{}", view::show(&stored)))?;
        }
        HistoryCommand::Prune {
            db,
            keep,
            baseline_branch,
            baseline_runs,
        } => {
            if keep == 0 {
                return Err(Error::usage(
                    "--keep",
                    "must be at least 1 (delete the file to drop everything)",
                ));
            }
            let mut store = Store::open(&db.db)?;
            let policy = BaselinePolicy {
                branch: baseline_branch,
                runs: baseline_runs.max(1),
            };
            let r = store.prune(keep, &policy)?;
            io.println(format_args!(
                "deleted {} run(s); kept {} older run(s) that a baseline of {} needs",
                r.deleted, r.protected, policy.branch
            ))?;
        }
        HistoryCommand::Export { db, branch, out } => {
            let store = Store::open(&db.db)?;
            let export = store.export(branch.as_deref())?;
            let bytes = export.to_json();
            match out {
                Some(path) => {
                    std::fs::write(&path, bytes).map_err(|source| Error::Write {
                        path: path.display().to_string(),
                        source,
                    })?;
                    io.note(format_args!(
                        "exported {} run(s) to {}",
                        export.runs.len(),
                        path.display()
                    ));
                }
                None => io.bytes(false, &bytes)?,
            }
        }
        HistoryCommand::Import { db, file } => {
            let shown = file.display().to_string();
            let mut text = String::new();
            let read = if shown == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(&file).map(|t| text = t)
            };
            read.map_err(|e| Error::usage("FILE", format!("cannot read {shown}: {e}")))?;
            let export = Export::parse(&shown, &text)?;
            let mut store = Store::open(&db.db)?;
            let (added, present) = store.import(&export)?;
            io.println(format_args!(
                "imported {added} run(s) into {} ({present} already present)",
                store.path()
            ))?;
        }
        HistoryCommand::Copy { from, to } => {
            if from == to {
                return Err(Error::usage("--to", "is the same history as --from"));
            }
            let from_url = from.to_str().is_some_and(crate::store::is_postgres_url);
            if !from_url && !from.is_file() {
                return Err(Error::usage(
                    "--from",
                    format!("{} does not exist (nothing to copy)", from.display()),
                ));
            }
            let source = Store::open(&from)?;
            if source.count()? == 0 {
                io.note(format_args!("{} holds no runs", source.path()));
            }
            let mut target = Store::open(&to)?;
            let (copied, skipped) = source.copy_to(&mut target)?;
            io.println(format_args!(
                "copied {copied} run(s) from {} to {} ({skipped} already there, skipped)",
                source.path(),
                target.path()
            ))?;
        }
    }
    Ok(Outcome::Pass)
}
