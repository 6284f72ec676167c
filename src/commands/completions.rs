//! `gate completions SHELL` and `gate man`: generated from the clap definitions, so they never
//! drift from the real flags.

use std::path::Path;

use clap::CommandFactory;

use super::pipeline::Output;
use crate::cli::Cli;
use crate::{Error, Outcome};

pub fn completions(shell: clap_complete::Shell, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gate", &mut out);
    io.bytes(false, &out)?;
    Ok(Outcome::Pass)
}

pub fn man(out: Option<&Path>, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        let mut page = Vec::new();
        render(&cmd, &mut page)?;
        io.bytes(false, &page)?;
        return Ok(Outcome::Pass);
    };
    let write_err = |path: &Path, source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let mut written = 0;
    let mut pending = vec![("gate".to_string(), cmd)];
    while let Some((name, cmd)) = pending.pop() {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let full = format!("{name}-{}", sub.get_name());
            pending.push((
                full.clone(),
                sub.clone().display_name(full.clone()).bin_name(full),
            ));
        }
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        render(&cmd, &mut page)?;
        std::fs::write(&path, page).map_err(|e| write_err(&path, e))?;
        written += 1;
    }
    io.note(format_args!(
        "wrote {written} man page(s) to {}",
        dir.display()
    ));
    Ok(Outcome::Pass)
}

fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<(), Error> {
    let title = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    clap_mangen::Man::new(cmd.clone())
        .title(title)
        .render(out)
        .map_err(|source| Error::Write {
            path: "<man page>".into(),
            source,
        })
}
